"""Live events for the page: the state folder watched with inotify, fanned out to every open
event stream.

The daemon writes what changes into its state folder (the database, ``status.json``, the
result records, ``live/*.json``); a watchdog observer sees each write as it happens and this
hub tells every connected page which part changed. Delivery progress and MIDI learn carry
their data in the event itself (the page draws the progress bar from it without another
request); the rest are grouped for :data:`SETTLE_S` (a training run writes the database many
times a second) and the page fetches the part that changed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..service.state import StateDir
from . import views

log = logging.getLogger(__name__)

SETTLE_S = 0.25  # events of one kind within this are sent as one
REFRESH_S = 10.0  # the status is sent this often anyway (a daemon that died writes nothing)
QUEUE = 64  # events waiting for one slow page; beyond this it gets one "resync" instead

IMMEDIATE = ("delivery", "learned")


def kind_of(state: StateDir, path: str) -> str | None:
    """Which part of the page a changed file belongs to (None: no part)."""
    p = Path(path)
    name = p.name
    if name.startswith(".") or name.endswith((".part", ".tmp")):
        return None
    try:
        rel = p.relative_to(state.root)
    except ValueError:
        return None
    top = rel.parts[0] if rel.parts else ""
    if top == "live":
        if name == "delivery.json":
            return "delivery"
        if name == "learned.json":
            return "learned"
        if name.startswith("training-"):
            return "training"
        return None
    if top == "out" and len(rel.parts) >= 2 and rel.parts[1] == "requests":
        return "requests"
    if top == "corpus" or top == "rejected":
        return "sounds"
    if top == "web":
        return "choices"
    if p == state.triggers_file:
        return "triggers"
    if name in ("status.json", "miragen.db", "miragen.db-wal"):
        return "status"
    return None


class Hub:
    """Fans events out to the page's open streams (each an asyncio queue)."""

    def __init__(self, state: StateDir, read_status: Callable[[], dict[str, Any]]):
        self.state = state
        self.read_status = read_status
        self.clients: set[asyncio.Queue] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._observer: Any = None
        self._task: asyncio.Task | None = None
        self.sent = 0

    # -- the watcher thread -----------------------------------------------------------
    def start(self) -> None:
        """Start watching (inside the running event loop)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.loop = asyncio.get_running_loop()
        hub = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                try:
                    for path in (event.src_path, getattr(event, "dest_path", "")):
                        kind = kind_of(hub.state, os.fsdecode(path)) if path else None
                        if kind and hub.loop is not None:
                            hub.loop.call_soon_threadsafe(hub.changed, kind)
                except Exception:  # never let one odd event stop the watcher thread
                    log.exception("state folder event %r not handled", event)

        for sub in ("live", "out/requests", "web", "corpus", "rejected"):
            (self.state.root / sub).mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        handler = Handler()
        self._observer.schedule(handler, str(self.state.root), recursive=False)
        for sub, deep in (("live", False), ("out/requests", False), ("web", False)):
            self._observer.schedule(handler, str(self.state.root / sub), recursive=deep)
        for sub in ("corpus", "rejected"):
            self._observer.schedule(handler, str(self.state.root / sub), recursive=True)
        self._observer.daemon = True
        self._observer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 2.0)

    # -- the event loop ---------------------------------------------------------------
    def changed(self, kind: str) -> None:
        if kind in IMMEDIATE:
            self.publish(kind, self._payload(kind))
            return
        self._pending.setdefault(kind, time.monotonic())
        self._wake.set()

    async def _run(self) -> None:
        last_status = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=SETTLE_S)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            now = time.monotonic()
            if now - last_status >= REFRESH_S:
                self._pending.setdefault("status", now - SETTLE_S)
            due = [k for k, t in self._pending.items() if now - t >= SETTLE_S]
            for kind in due:
                del self._pending[kind]
                if kind == "status":
                    last_status = now
                    try:
                        data = await asyncio.to_thread(self.read_status)
                    except Exception as exc:  # a state folder being rewritten: next time
                        log.debug("status not read: %s", exc)
                        continue
                    self.publish("status", data)
                elif kind == "training":
                    self.publish(kind, await asyncio.to_thread(views.training, self.state))
                else:
                    self.publish(kind, {})

    def _payload(self, kind: str) -> dict[str, Any]:
        if kind == "delivery":
            return views.delivery(self.state) or {}
        return views.learned(self.state) or {}

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for q in list(self.clients):
            try:
                q.put_nowait((kind, data))
            except asyncio.QueueFull:  # a page that stopped reading: tell it to reload all
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(("resync", {}))
        self.sent += 1

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(QUEUE)
        self.clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.clients.discard(q)
