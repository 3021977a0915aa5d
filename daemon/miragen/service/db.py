"""The daemon's database: one SQLite file (``miragen.db``, WAL) in the state folder.

Four records share the file, each with its own module and class that owns its table:

- ``jobs``: the job queue (:class:`.jobs.JobQueue`);
- ``files``: the corpus index, by content hash (:class:`.corpus_index.CorpusIndex`), and
  ``sounds``: the same files by the hash of their decoded samples;
- ``deliveries``: the delivery ledger (:class:`.deliveries.DeliveryLedger`);
- ``models``: the model registry (:class:`.models.ModelRegistry`).

They share one connection, guarded by a lock, used by all the daemon's threads (SQLite
serialises writers anyway; the lock keeps transactions whole), so that one transaction can span
them (a file indexed, its class's retrain scheduled and its ingest job finished, all or
nothing). ``miragen status`` and the demo open the file read-only.

The schema is the file's format: a state folder written by an older daemon opens unchanged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import MiragenError

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
CREATE TABLE IF NOT EXISTS sounds (
    key TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL
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


class DatabaseError(MiragenError):
    """The daemon's database cannot be opened or is not Miragen's."""


def storable(s: str) -> str:
    """A string SQLite can store: file names that are not UTF-8 reach us with surrogate escapes
    (``'\\udce9'``), which sqlite3 refuses to encode; they are kept as ``\\xe9`` text instead."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Database:
    """The shared connection (thread-safe); ``readonly`` for readers beside a running daemon."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._conn = self._connect(readonly)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: cannot open the job database ({exc})") from None

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if readonly:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=10,
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30
            )
        conn.row_factory = sqlite3.Row
        if readonly:
            conn.execute("SELECT count(*) FROM jobs").fetchone()  # is it Miragen's?
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA_SQL)
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction (writers wait for each other, never deadlock)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def write(
        self, sql: str, args: Sequence[Any] = (), conn: sqlite3.Connection | None = None
    ) -> sqlite3.Cursor:
        """One statement inside the caller's transaction ``conn``, or in one of its own."""
        if conn is not None:
            return conn.execute(sql, args)
        with self.transaction() as c:
            return c.execute(sql, args)

    def in_transaction(
        self, work: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection | None = None
    ) -> Any:
        """``work(conn)`` inside the caller's transaction ``conn``, or in one of its own."""
        if conn is not None:
            return work(conn)
        with self.transaction() as c:
            return work(c)

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def row(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()
