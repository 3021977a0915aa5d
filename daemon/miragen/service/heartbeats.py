"""What each of the daemon's threads is doing and when it last said so: the watchdog's view.

A thread *beats* while it is alive (each turn of its loop, each line from its child process,
each chunk of a dump) and sets its *activity* (``miragen status``, ``STATUS=``); a worker thread
that runs a task in a child process (:mod:`.child`) records the process here while it runs, so
that ``status.json`` names it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

IDLE = "idle"


class Heartbeats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._activity: dict[str, str] = {}
        self._children: dict[str, Any] = {}  # worker thread -> its running child process

    def beat(self, name: str) -> None:
        """Thread ``name`` is alive."""
        self._beats[name] = time.monotonic()

    def set_activity(self, name: str, text: str) -> None:
        """What thread ``name`` is doing now (``IDLE``: nothing)."""
        self._activity[name] = text

    def activity(self, name: str) -> str:
        return self._activity.get(name, IDLE)

    def silent_for(self, name: str, now: float | None = None) -> float:
        """Seconds since thread ``name`` last beat (0 when it never did)."""
        now = time.monotonic() if now is None else now
        return now - self._beats.get(name, now)

    def busy(self) -> dict[str, str]:
        """{thread: activity} of the threads that are not idle."""
        return {n: a for n, a in list(self._activity.items()) if a != IDLE}

    def child_started(self, worker: str, process: Any) -> None:
        with self._lock:
            self._children[worker] = process

    def child_ended(self, worker: str) -> None:
        with self._lock:
            self._children.pop(worker, None)

    def child_pids(self) -> dict[str, int]:
        """{worker thread: pid of the child process it runs now}."""
        with self._lock:
            return {n: p.pid for n, p in self._children.items()}
