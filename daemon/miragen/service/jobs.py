"""The job queue: the ``jobs`` table of the daemon's database (:mod:`.db`).

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

The corpus index, the delivery ledger and the model registry live in the same file
(:mod:`.corpus_index`, :mod:`.deliveries`, :mod:`.models`); a job's step and its records are
written in one transaction of the shared :class:`~.db.Database`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from .db import Database, storable

KINDS = ("ingest", "request", "train", "generate", "deliver")
STATES = ("queued", "running", "done", "failed")
# How often a job may be interrupted (the daemon died while running it) before it is given up:
# an input that crashes the reader is quarantined soon; training keeps its progress (checkpoint
# and spent budget) across restarts, so it may be interrupted often and still finish.
MAX_INTERRUPTS = {"ingest": 3, "request": 3, "train": 20, "generate": 5, "deliver": 5}


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
    """The daemon's queue (thread-safe). ``changed`` is notified whenever a job is added or ends,
    so that worker threads sleep on it instead of polling."""

    def __init__(self, db: Database):
        self.db = db
        self.changed = threading.Condition(threading.Lock())
        self.version = 0  # bumped on every change a worker thread may wait for

    def _notify(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def wake_all(self) -> None:
        """Wake every waiting worker thread (shutdown)."""
        self._notify()

    def wait_change(self, seen: int, timeout: float) -> None:
        """Sleep until the queue changes after version ``seen`` was read, or ``timeout``."""
        with self.changed:
            if self.version == seen:
                self.changed.wait(timeout)

    # -- writing ----------------------------------------------------------------------------
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
        cur = self.db.write(
            "INSERT OR IGNORE INTO jobs(kind, key, subject, state, payload, not_before, created, "
            "updated) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
            (kind, key, subject, json.dumps(payload or {}), not_before, now, now),
            conn,
        )
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

        self.db.in_transaction(work, conn)
        self._notify()

    def claim(self, kinds: tuple[str, ...], *, solo: str | None = None) -> Job | None:
        """Take the oldest due queued job of these kinds (marks it running, counts the attempt).

        For workers that share kinds (several training workers): a job whose subject already has
        a running job of these kinds waits, and a job whose subject is ``solo`` (the unsorted
        pool, whose sorting changes other classes) runs only while none of these kinds runs, and
        none starts while it runs."""
        now = time.time()
        marks = ",".join("?" * len(kinds))
        with self.db.transaction() as c:
            row = c.execute(
                f"SELECT * FROM jobs j WHERE state='queued' AND kind IN ({marks}) "
                "AND not_before<=? AND NOT EXISTS (SELECT 1 FROM jobs r WHERE "
                f"r.state='running' AND r.kind IN ({marks}) AND (r.subject=j.subject "
                "OR r.subject=? OR j.subject=?)) ORDER BY not_before, id LIMIT 1",
                (*kinds, now, *kinds, solo, solo),
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

    def save_payload(self, job: Job, conn: sqlite3.Connection | None = None) -> None:
        """Record progress inside a running job (before an irreversible step)."""
        self.db.write(
            "UPDATE jobs SET payload=?, updated=? WHERE id=?",
            (json.dumps(job.payload), time.time(), job.id),
            conn,
        )

    def finish(self, job: Job, conn: sqlite3.Connection | None = None) -> None:
        self.db.write(
            "UPDATE jobs SET state='done', payload=?, last_error='', updated=? WHERE id=?",
            (json.dumps(job.payload), time.time(), job.id),
            conn,
        )
        self._notify()

    def fail(self, job: Job, reason: str, conn: sqlite3.Connection | None = None) -> None:
        self.db.write(
            "UPDATE jobs SET state='failed', payload=?, last_error=?, updated=? WHERE id=?",
            (json.dumps(job.payload), storable(reason[:2000]), time.time(), job.id),
            conn,
        )
        self._notify()

    def requeue(
        self, job: Job, *, delay_s: float = 0.0, error: str = "", uncount: bool = False
    ) -> None:
        """Put a running job back (shutdown checkpoint, retry after an error)."""
        self.db.write(
            "UPDATE jobs SET state='queued', payload=?, last_error=?, not_before=?, "
            "attempts=attempts-?, updated=? WHERE id=?",
            (
                json.dumps(job.payload),
                storable(error[:2000]),
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
        with self.db.transaction() as c:
            for row in c.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
                job = _job(row)
                if job.attempts >= MAX_INTERRUPTS.get(job.kind, 3):
                    job.state = "failed"
                    c.execute(
                        "UPDATE jobs SET state='failed', last_error=?, updated=? WHERE id=?",
                        (
                            f"interrupted {job.attempts} times (the daemon died while running "
                            "it); given up",
                            time.time(),
                            job.id,
                        ),
                    )
                else:
                    job.state = "queued"
                    c.execute(
                        "UPDATE jobs SET state='queued', updated=? WHERE id=?",
                        (time.time(), job.id),
                    )
                out.append(job)
        return out

    # -- reading ----------------------------------------------------------------------------
    def next_due(self, kinds: tuple[str, ...]) -> float | None:
        """When the earliest queued job of these kinds becomes due (None: nothing queued)."""
        marks = ",".join("?" * len(kinds))
        row = self.db.row(
            f"SELECT min(not_before) AS t FROM jobs WHERE state='queued' AND kind IN ({marks})",
            kinds,
        )
        return row["t"] if row and row["t"] is not None else None

    def get(self, job_id: int) -> Job | None:
        row = self.db.row("SELECT * FROM jobs WHERE id=?", (job_id,))
        return _job(row) if row else None

    def by_key(self, key: str) -> Job | None:
        row = self.db.row("SELECT * FROM jobs WHERE key=?", (key,))
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
        return [_job(r) for r in self.db.rows(sql, args)]

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {state: n}} over the whole queue."""
        out: dict[str, dict[str, int]] = {}
        for row in self.db.rows("SELECT kind, state, count(*) AS n FROM jobs GROUP BY kind, state"):
            out.setdefault(row["kind"], {})[row["state"]] = row["n"]
        return out

    def pending(self, kinds: tuple[str, ...] = KINDS) -> int:
        marks = ",".join("?" * len(kinds))
        row = self.db.row(
            "SELECT count(*) AS n FROM jobs WHERE state IN ('queued','running') AND kind IN "
            f"({marks})",
            kinds,
        )
        return int(row["n"])
