"""What a job handler may use of the running daemon: a small interface, not the Daemon class.

The handlers (``handlers``, ``classing``, ``child``) are written against :class:`Context`; the
daemon (``daemon.Daemon``) is one implementation of it, and a test can pass another. Keeping the
handlers off the ``Daemon`` class keeps the service free of import circles.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from .jobs import JobQueue
from .state import StateDir


class Stopping(Exception):
    """Raised inside a long step when the daemon is asked to stop (checkpoint and put back)."""


class Watching(Protocol):
    def busy(self) -> bool:
        """True while dropped files are still settling or being claimed."""
        ...


class Context(Protocol):
    """The daemon as a job handler sees it."""

    cfg: dict[str, Any]  # the validated configuration
    state: StateDir  # the state folder
    queue: JobQueue  # jobs, corpus index, deliveries, models
    stopping: threading.Event  # set when the daemon is asked to stop
    delivering: threading.Event  # set while a delivery holds the transport
    io_lock: (
        threading.Lock
    )  # held by a delivery; the MIDI input reads a shared port only without it
    children: dict[str, Any]  # worker name -> its running child process
    watcher: Watching | None  # the drop-folder watcher (None before it starts)

    def beat(self, name: str) -> None:
        """Tell the watchdog that worker ``name`` is alive."""
        ...

    def set_activity(self, name: str, text: str) -> None:
        """What worker ``name`` is doing, for ``miragen status``."""
        ...

    def transport(self) -> Any:
        """The open SysEx transport (opened on first use)."""
        ...

    def transport_ok(self) -> None:
        """Record that the transport worked."""
        ...

    def transport_failed(self, error: str) -> None:
        """Record that the transport failed, with the reason."""
        ...
