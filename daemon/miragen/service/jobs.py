"""The job queue: one SQLite database (WAL) in the state folder.

Every arrow of the pipeline is a row in ``jobs``: ``ingest`` (a claimed input file),
``request`` (a claimed request file or a MIDI trigger), ``train`` (retrain one class),
``generate`` (make candidates for one request) and ``deliver`` (send one request's best
candidate). A job moves ``queued`` → ``running`` → ``done`` | ``failed``; a job found
``running`` when the daemon starts was interrupted (power cut, kill -9) and goes back to
``queued`` (after ``MAX_INTERRUPTS[kind]`` interruptions it fails, so one poisonous input cannot
crash-loop the daemon).

Jobs that must never be created twice carry a unique ``key`` (``ingest:<claimed path>``,
``request:<name>``); the steps themselves are idempotent (they record where they are in the
job's ``payload`` before each irreversible step), so a kill at any moment loses and duplicates
nothing.

``files`` indexes the corpus by content hash (deduplication); ``deliveries`` records every
delivery attempt with a unique id *before* the bytes leave and its result *after*, so a
delivery is counted once; ``models`` lists each trained model with its judge report.

One connection, guarded by a lock, is shared by the daemon's threads (SQLite serialises
writers anyway; the lock keeps transactions whole). ``miragen status`` opens the file
read-only.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MiragenError

log = logging.getLogger(__name__)

KINDS = ("ingest", "request", "train", "generate", "deliver")
STATES = ("queued", "running", "done", "failed")
# How often a job may be interrupted (the daemon died while running it) before it is given up:
# an input that crashes the reader is quarantined soon; training keeps its progress (checkpoint
# and spent budget) across restarts, so it may be interrupted often and still finish.
MAX_INTERRUPTS = {"ingest": 3, "request": 3, "train": 20, "generate": 5, "deliver": 5}

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT UNIQUE,
    subject TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'queued',
    payload TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    not_before REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, kind, not_before);
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    job_id INTEGER NOT NULL,
    request TEXT NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class TEXT NOT NULL,
    path TEXT NOT NULL,
    created REAL NOT NULL,
    passed INTEGER NOT NULL,
    current INTEGER NOT NULL DEFAULT 0,
    report TEXT NOT NULL DEFAULT '{}'
);
"""


class QueueError(MiragenError):
    """The job database cannot be opened or is not Miragen's."""


@dataclass
class Job:
    id: int
    kind: str
    key: str | None
    subject: str
    state: str
    payload: dict[str, Any]
    attempts: int
    last_error: str
    not_before: float
    created: float
    updated: float


def _text(s: str) -> str:
    """A string SQLite can store: file names that are not UTF-8 reach us with surrogate escapes
    (``'\\udce9'``), which sqlite3 refuses to encode; they are kept as ``\\xe9`` text instead."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        subject=row["subject"],
        state=row["state"],
        payload=json.loads(row["payload"] or "{}"),
        attempts=row["attempts"],
        last_error=row["last_error"],
        not_before=row["not_before"],
        created=row["created"],
        updated=row["updated"],
    )


class JobQueue:
    """The daemon's queue (thread-safe). ``changed`` is notified whenever a job is added."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self._lock = threading.RLock()
        self.changed = threading.Condition(threading.Lock())
        self.version = 0  # bumped on every change a worker may wait for
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro"
                self.db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(
                    str(self.path), check_same_thread=False, isolation_level=None, timeout=30
                )
            self.db.row_factory = sqlite3.Row
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(SCHEMA_SQL)
            else:
                self.db.execute("SELECT count(*) FROM jobs").fetchone()
        except sqlite3.DatabaseError as exc:
            raise QueueError(f"{self.path}: cannot open the job database ({exc})") from None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction (writers wait for each other, never deadlock)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _notify(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def wake_all(self) -> None:
        """Wake every waiting worker (shutdown)."""
        self._notify()

    def wait_change(self, seen: int, timeout: float) -> None:
        """Sleep until the queue changes after version ``seen`` was read, or ``timeout``."""
        with self.changed:
            if self.version == seen:
                self.changed.wait(timeout)

    # -- jobs -----------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        subject: str = "",
        not_before: float = 0.0,
        conn: sqlite3.Connection | None = None,
    ) -> int | None:
        """Add a job; with a ``key`` already present nothing is added and None is returned."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        now = time.time()
        sql = (
            "INSERT OR IGNORE INTO jobs(kind, key, subject, state, payload, not_before, created, "
            "updated) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)"
        )
        args = (kind, key, subject, json.dumps(payload or {}), not_before, now, now)
        if conn is not None:
            cur = conn.execute(sql, args)
        else:
            with self.transaction() as c:
                cur = c.execute(sql, args)
        self._notify()
        return cur.lastrowid if cur.rowcount else None

    def schedule_train(
        self, cls: str, delay_s: float, conn: sqlite3.Connection | None = None
    ) -> None:
        """Debounce: one queued train job per class, due ``delay_s`` after the latest material."""
        due = time.time() + delay_s

        def work(c: sqlite3.Connection) -> None:
            row = c.execute(
                "SELECT id FROM jobs WHERE kind='train' AND subject=? AND state='queued'", (cls,)
            ).fetchone()
            if row:
                c.execute(
                    "UPDATE jobs SET not_before=?, updated=? WHERE id=?",
                    (due, time.time(), row["id"]),
                )
            else:
                self.add("train", {"class": cls}, subject=cls, not_before=due, conn=c)

        if conn is not None:
            work(conn)
        else:
            with self.transaction() as c:
                work(c)
        self._notify()

    def claim(self, kinds: tuple[str, ...]) -> Job | None:
        """Take the oldest due queued job of these kinds (marks it running, counts the attempt)."""
        now = time.time()
        marks = ",".join("?" * len(kinds))
        with self.transaction() as c:
            row = c.execute(
                f"SELECT * FROM jobs WHERE state='queued' AND kind IN ({marks}) AND not_before<=? "
                "ORDER BY not_before, id LIMIT 1",
                (*kinds, now),
            ).fetchone()
            if row is None:
                return None
            c.execute(
                "UPDATE jobs SET state='running', attempts=attempts+1, updated=? WHERE id=?",
                (now, row["id"]),
            )
            job = _job(row)
        job.state = "running"
        job.attempts += 1
        return job

    def next_due(self, kinds: tuple[str, ...]) -> float | None:
        """When the earliest queued job of these kinds becomes due (None: nothing queued)."""
        marks = ",".join("?" * len(kinds))
        with self._lock:
            row = self.db.execute(
                f"SELECT min(not_before) AS t FROM jobs WHERE state='queued' AND kind IN ({marks})",
                kinds,
            ).fetchone()
        return row["t"] if row and row["t"] is not None else None

    def save_payload(self, job: Job, conn: sqlite3.Connection | None = None) -> None:
        """Record progress inside a running job (before an irreversible step)."""
        sql, args = (
            "UPDATE jobs SET payload=?, updated=? WHERE id=?",
            (json.dumps(job.payload), time.time(), job.id),
        )
        if conn is not None:
            conn.execute(sql, args)
        else:
            with self.transaction() as c:
                c.execute(sql, args)

    def finish(self, job: Job, conn: sqlite3.Connection | None = None) -> None:
        sql = "UPDATE jobs SET state='done', payload=?, last_error='', updated=? WHERE id=?"
        args = (json.dumps(job.payload), time.time(), job.id)
        if conn is not None:
            conn.execute(sql, args)
        else:
            with self.transaction() as c:
                c.execute(sql, args)
        self._notify()

    def fail(self, job: Job, reason: str, conn: sqlite3.Connection | None = None) -> None:
        sql = "UPDATE jobs SET state='failed', payload=?, last_error=?, updated=? WHERE id=?"
        args = (json.dumps(job.payload), _text(reason[:2000]), time.time(), job.id)
        if conn is not None:
            conn.execute(sql, args)
        else:
            with self.transaction() as c:
                c.execute(sql, args)
        self._notify()

    def requeue(
        self, job: Job, *, delay_s: float = 0.0, error: str = "", uncount: bool = False
    ) -> None:
        """Put a running job back (shutdown checkpoint, retry after an error)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE jobs SET state='queued', payload=?, last_error=?, not_before=?, "
                "attempts=attempts-?, updated=? WHERE id=?",
                (
                    json.dumps(job.payload),
                    _text(error[:2000]),
                    time.time() + delay_s,
                    1 if uncount else 0,
                    time.time(),
                    job.id,
                ),
            )
        self._notify()

    def recover(self) -> list[Job]:
        """At start: jobs left ``running`` were interrupted; queue them again (or fail them)."""
        out: list[Job] = []
        with self.transaction() as c:
            rows = c.execute("SELECT * FROM jobs WHERE state='running'").fetchall()
            for row in rows:
                job = _job(row)
                if job.attempts >= MAX_INTERRUPTS.get(job.kind, 3):
                    c.execute(
                        "UPDATE jobs SET state='failed', last_error=?, updated=? WHERE id=?",
                        (
                            f"interrupted {job.attempts} times (the daemon died while running it); "
                            "given up",
                            time.time(),
                            job.id,
                        ),
                    )
                    job.state = "failed"
                else:
                    c.execute(
                        "UPDATE jobs SET state='queued', updated=? WHERE id=?",
                        (time.time(), job.id),
                    )
                    job.state = "queued"
                out.append(job)
        return out

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def by_key(self, key: str) -> Job | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM jobs WHERE key=?", (key,)).fetchone()
        return _job(row) if row else None

    def jobs(
        self, state: str | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[Job]:
        sql, args = "SELECT * FROM jobs WHERE 1", []
        if state:
            sql += " AND state=?"
            args.append(state)
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [_job(r) for r in self.db.execute(sql, args).fetchall()]

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: n}} over the whole queue."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for row in self.db.execute(
                "SELECT kind, state, count(*) AS n FROM jobs GROUP BY kind, state"
            ):
                out.setdefault(row["kind"], {})[row["state"]] = row["n"]
        return out

    def pending(self, kinds: tuple[str, ...] = KINDS) -> int:
        marks = ",".join("?" * len(kinds))
        with self._lock:
            row = self.db.execute(
                "SELECT count(*) AS n FROM jobs WHERE state IN ('queued','running') AND kind IN "
                f"({marks})",
                kinds,
            ).fetchone()
        return int(row["n"])

    # -- corpus index -----------------------------------------------------------------------
    def has_file(self, sha256: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM files WHERE sha256=?", (sha256,)).fetchone()
        return dict(row) if row else None

    def add_file(
        self, sha256: str, cls: str, path: str, source: str, conn: sqlite3.Connection
    ) -> bool:
        cur = conn.execute(
            "INSERT OR IGNORE INTO files(sha256, class, path, source, added) VALUES (?,?,?,?,?)",
            (sha256, cls, path, _text(source), time.time()),
        )
        return bool(cur.rowcount)

    def files_of(self, *classes: str, prefix: str | None = None) -> list[dict[str, Any]]:
        """Index rows (sha256, class, path, source, added) of these classes, and of the classes
        whose name starts with ``prefix``; oldest first."""
        marks = ",".join("?" * len(classes)) or "''"
        sql = (
            f"SELECT * FROM files WHERE class IN ({marks})"
            + (" OR substr(class, 1, ?) = ?" if prefix else "")
            + " ORDER BY added, sha256"
        )
        args: list[Any] = [*classes] + ([len(prefix), prefix] if prefix else [])
        with self._lock:
            return [dict(r) for r in self.db.execute(sql, args)]

    def class_counts(self) -> dict[str, int]:
        with self._lock:
            return {
                r["class"]: r["n"]
                for r in self.db.execute("SELECT class, count(*) AS n FROM files GROUP BY class")
            }

    # -- deliveries -------------------------------------------------------------------------
    def delivery_start(self, delivery_id: str, job_id: int, request: str, route: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR IGNORE INTO deliveries(id, job_id, request, route, state, started) "
                "VALUES (?,?,?,?, 'sending', ?)",
                (delivery_id, job_id, request, route, time.time()),
            )

    def delivery_end(
        self,
        delivery_id: str,
        ok: bool,
        result: dict[str, Any],
        conn: sqlite3.Connection | None = None,
    ) -> None:
        sql = "UPDATE deliveries SET state=?, finished=?, result=? WHERE id=?"
        args = (
            "done" if ok else "failed",
            time.time(),
            json.dumps(result, default=str),
            delivery_id,
        )
        if conn is not None:
            conn.execute(sql, args)
        else:
            with self.transaction() as c:
                c.execute(sql, args)

    def deliveries(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT * FROM deliveries ORDER BY started DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(r, result=json.loads(r["result"] or "{}")) for r in rows]

    # -- models -----------------------------------------------------------------------------
    def add_model(
        self, cls: str, path: str, passed: bool, report: dict[str, Any], make_current: bool
    ) -> int:
        with self.transaction() as c:
            if make_current:
                c.execute("UPDATE models SET current=0 WHERE class=?", (cls,))
            cur = c.execute(
                "INSERT INTO models(class, path, created, passed, current, report) VALUES "
                "(?,?,?,?,?,?)",
                (
                    cls,
                    path,
                    time.time(),
                    int(passed),
                    int(make_current),
                    json.dumps(report, default=str),
                ),
            )
            return int(cur.lastrowid)

    def current_model(self, cls: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute(
                "SELECT * FROM models WHERE class=? AND current=1 ORDER BY id DESC LIMIT 1", (cls,)
            ).fetchone()
        return dict(row, report=json.loads(row["report"])) if row else None

    def models(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM models ORDER BY id").fetchall()
        return [dict(r, report=json.loads(r["report"])) for r in rows]
