"""The transport the daemon delivers SysEx over, and its health.

Opened on first use (``deliver.transport``) and dropped after a failure, so the next delivery
opens it again. When ``midi.input`` names the same port (one UART both ways), the MIDI input
reads it too, but only while no delivery holds it: a delivery takes :meth:`TransportLink.exclusive`
(sets ``delivering`` and holds ``io_lock``), and the messages that arrive during a dump are the
delivery's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import MiragenError
from ..transport import open_transport

log = logging.getLogger(__name__)


class TransportLink:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.spec = cfg["deliver"]["transport"]
        self._transport: Any = None
        self._lock = threading.Lock()
        self.io_lock = threading.Lock()  # held by a delivery; the MIDI input reads only without it
        self.delivering = threading.Event()  # set while a delivery holds the transport
        self.health: dict[str, Any] = {
            "spec": self.spec,
            "state": "unused",
            "last_ok": None,
            "last_error": "",
        }

    def open(self) -> Any:
        """The open transport (opened on first use)."""
        with self._lock:
            if self._transport is None:
                self._transport = open_transport(self.spec, self.cfg)
            return self._transport

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """The transport, for one delivery: the MIDI input keeps off it meanwhile; a
        :class:`MiragenError` inside is recorded as the transport's failure (and raised)."""
        self.delivering.set()
        try:
            with self.io_lock:
                yield self.open()
        except MiragenError as exc:
            self.failed(str(exc))
            raise
        finally:
            self.delivering.clear()

    def shared(self) -> tuple[Any, threading.Lock, threading.Event]:
        """What the MIDI input needs to read the same port: (transport, io_lock, delivering)."""
        return (self.open(), self.io_lock, self.delivering)

    def ok(self) -> None:
        """Record that the transport worked."""
        self.health.update(state="ok", last_ok=time.strftime("%Y-%m-%dT%H:%M:%S%z"), last_error="")

    def failed(self, error: str) -> None:
        """Record that the transport failed, with the reason, and drop it (reopened next time)."""
        self.health.update(state="error", last_error=error)
        self.close()

    def close(self) -> None:
        with self._lock:
            t, self._transport = self._transport, None
        if t is not None:
            try:
                t.close()
            except Exception:  # a broken link may fail to close; it is dropped either way
                log.debug("closing the transport failed", exc_info=True)
