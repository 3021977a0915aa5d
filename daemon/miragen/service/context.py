"""What a job handler gets: the configuration, the state folder, the daemon's records, the
transport, the heartbeats and the stop flag; never the ``Daemon`` itself.

The handlers (``ingest``, ``handlers``, ``classing``, ``child``) are written against
:class:`Context`; the daemon (``daemon.Daemon``) builds one when it starts and passes it to
every handler, and a test can build its own. Keeping the handlers off the ``Daemon`` class keeps
the service free of import circles, and keeps what a job may touch in one place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from .corpus_index import CorpusIndex
from .db import Database
from .deliveries import DeliveryLedger
from .heartbeats import Heartbeats
from .jobs import JobQueue
from .link import TransportLink
from .models import ModelRegistry
from .state import StateDir


class Stopping(Exception):
    """Raised inside a long step when the daemon is asked to stop (checkpoint and put back)."""


class Watching(Protocol):
    def busy(self) -> bool:
        """True while dropped files are still settling or being claimed."""
        ...


class Prestarting(Protocol):
    def take(self) -> Any:
        """A child process started ahead of need (its imports done), or None (``.child``)."""
        ...


@dataclass(frozen=True)
class Context:
    """The daemon as a job handler sees it."""

    cfg: dict[str, Any]  # the validated configuration
    state: StateDir  # the state folder
    db: Database  # the one SQLite file: its transactions span the four records below
    queue: JobQueue  # the jobs
    corpus: CorpusIndex  # the accepted sounds, by content hash
    models: ModelRegistry  # the trained models, their judge reports, which one serves
    deliveries: DeliveryLedger  # every delivery, counted once
    stopping: threading.Event = field(default_factory=threading.Event)  # the daemon stops
    heartbeats: Heartbeats = field(default_factory=Heartbeats)  # each thread's beat, activity
    transport: TransportLink | None = None  # the SysEx transport (None: none configured yet)
    watcher: Watching | None = None  # the drop-folder watcher (None: not watching)
    warm: Prestarting | None = None  # the warm child process (None: each job starts its own)

    @classmethod
    def open(cls, cfg: dict[str, Any], state: StateDir, **rest: Any) -> Context:
        """A context on the state folder's database (created when missing)."""
        db = Database(state.db)
        return cls(
            cfg=cfg,
            state=state,
            db=db,
            queue=JobQueue(db),
            corpus=CorpusIndex(db),
            models=ModelRegistry(db),
            deliveries=DeliveryLedger(db),
            **rest,
        )

    def arriving(self) -> bool:
        """Is material still arriving: ingest jobs waiting, or dropped files settling?"""
        return self.queue.pending(("ingest",)) > 0 or (
            self.watcher is not None and self.watcher.busy()
        )
