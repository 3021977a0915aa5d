"""One interface for every way bytes reach a Mirage, plus the pieces they share.

- :class:`Transport`: ``send(data, paced=True)``, ``receive_message(timeout)`` → one complete
  MIDI message (SysEx ``F0 … F7`` or a channel message) or ``None``, ``drain()``, ``close()``;
  a context manager. Every wait has a timeout.
- :class:`MidiStreamParser`: a bounded, incremental splitter of a raw MIDI byte stream into
  messages (running status, real-time bytes inside SysEx, over-long SysEx dropped), so a flood
  on the line cannot eat memory.
- :func:`paced_write`: writes in chunks against the wall clock so that the bytes never leave
  faster than the wire allows (31,250 baud = 3,125 bytes/s for MIDI), whatever the device
  underneath (a pty or ``loop://`` has no speed limit of its own).
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

from ..errors import MiragenError

log = logging.getLogger(__name__)

MIDI_BAUD = 31250
BITS_PER_BYTE = 10  # start bit, 8 data bits, stop bit
MIDI_BYTES_PER_S = MIDI_BAUD / BITS_PER_BYTE  # 3,125
# Largest legitimate Mirage message: 0x0C absolute dump of a whole half, 14 + 2*65536 bytes.
DEFAULT_MAX_MESSAGE_BYTES = 140_000
DEFAULT_MAX_QUEUED = 64

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class TransportError(MiragenError):
    """A port cannot be opened or used; the message names the port and the reason."""


class LinkLost(TransportError):
    """The other end went away in the middle of a conversation (cable pulled, pty closed)."""


def bytes_per_second(baud: int) -> float:
    """Bytes per second a UART at ``baud`` carries (10 bits per byte)."""
    return baud / BITS_PER_BYTE


_STATUS = re.compile(rb"[\x80-\xff]")


def _channel_length(status: int) -> int:
    return 2 if 0xC0 <= status <= 0xDF else 3


_SYSTEM_LENGTH = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1}


class MidiStreamParser:
    """Split a MIDI byte stream into complete messages, with bounded memory.

    - SysEx ``F0 … F7`` longer than ``max_message_bytes`` is discarded (counted in
      ``oversize``); a SysEx cut by another status byte is discarded (``aborted``).
    - Real-time bytes (``F8``-``FF``) are dropped, also inside SysEx, as MIDI allows.
    - Channel messages honour running status.
    - At most ``max_queued`` complete messages wait; older ones are dropped (``overflow``).
    """

    def __init__(
        self,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ):
        self.max_message_bytes = int(max_message_bytes)
        self.max_queued = int(max_queued)
        self._queue: deque[bytes] = deque()
        self._sysex: bytearray | None = None
        self._sysex_len = 0  # counted even when the content is no longer kept
        self._running = 0
        self._partial = bytearray()
        self._need = 0
        self.oversize = 0
        self.aborted = 0
        self.overflow = 0

    def __len__(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self._sysex = None
        self._sysex_len = 0
        self._running = 0
        self._partial.clear()
        self._need = 0

    def pop(self) -> bytes | None:
        return self._queue.popleft() if self._queue else None

    def _emit(self, msg: bytes) -> None:
        if len(self._queue) >= self.max_queued:
            self._queue.popleft()
            self.overflow += 1
        self._queue.append(msg)

    def _sysex_add(self, chunk: bytes) -> None:
        self._sysex_len += len(chunk)
        if self._sysex is None:
            return
        if self._sysex_len > self.max_message_bytes:
            log.warning("SysEx longer than %d bytes dropped", self.max_message_bytes)
            self.oversize += 1
            self._sysex = None  # keep counting until F7, keep nothing
            return
        self._sysex += chunk

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._sysex_len:  # inside a SysEx (kept or being skipped)
                m = _STATUS.search(data, i)
                end = m.start() if m else n
                if end > i:
                    self._sysex_add(data[i:end])
                if m is None:
                    return
                b = data[end]
                i = end + 1
                if b >= 0xF8:
                    continue
                if b == 0xF7:
                    if self._sysex is not None:
                        self._sysex.append(0xF7)
                        if len(self._sysex) <= self.max_message_bytes:
                            self._emit(bytes(self._sysex))
                        else:
                            self.oversize += 1
                else:
                    self.aborted += 1
                    i -= 1  # handle this status byte below, outside SysEx
                self._sysex = None
                self._sysex_len = 0
                continue
            b = data[i]
            i += 1
            if b >= 0x80:
                if b >= 0xF8:
                    continue
                self._partial.clear()
                if b == 0xF0:
                    self._sysex = bytearray(b"\xf0")
                    self._sysex_len = 1
                    self._running = 0
                elif b >= 0xF1:
                    self._running = 0
                    need = _SYSTEM_LENGTH.get(b, 0)
                    if need == 1:
                        self._emit(bytes([b]))
                    elif need:
                        self._partial.append(b)
                        self._need = need
                else:
                    self._running = b
                    self._partial.append(b)
                    self._need = _channel_length(b)
                continue
            # data byte
            if not self._partial:
                if not self._running:
                    continue  # stray data byte
                self._partial.append(self._running)
                self._need = _channel_length(self._running)
            self._partial.append(b)
            if len(self._partial) >= self._need:
                self._emit(bytes(self._partial))
                self._partial.clear()


def paced_write(
    write: Callable[[bytes], None],
    data: bytes,
    *,
    rate: float | None,
    chunk_size: int = 256,
    chunk_gap_s: float = 0.0,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    done: int = 0,
    total: int | None = None,
) -> float:
    """Write ``data`` in chunks, never ahead of ``rate`` bytes/s by more than one chunk.

    Chunk ``k`` (first byte at offset ``o``) is written no earlier than
    ``t0 + o / rate + k * chunk_gap_s``: everything before it would have left a real UART by
    then. After the last chunk it waits until the last byte would have left the wire
    (``t0 + len / rate + gaps``), so the call lasts at least the wire time. The schedule is
    absolute, so a late wake-up is caught up, not accumulated. ``rate=None``: no pacing
    (chunks and gaps still apply). Returns the seconds spent.
    """
    chunk_size = max(1, int(chunk_size))
    total = len(data) if total is None else total
    t0 = clock()
    n = len(data)
    k = 0
    for off in range(0, n, chunk_size):
        due = t0 + (off / rate if rate else 0.0) + k * chunk_gap_s
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        chunk = data[off : off + chunk_size]
        write(chunk)
        k += 1
        if progress is not None:
            progress(done + off + len(chunk), total)
    if rate:
        due = t0 + n / rate + max(0, k - 1) * chunk_gap_s
        wait = due - clock()
        if wait > 0:
            sleep(wait)
    return clock() - t0


class Transport(ABC):
    """How bytes reach a Mirage and how its answers come back.

    Subclasses that carry a raw byte stream implement ``_write`` and ``_read``; this class
    paces the writes and assembles the messages. ``rate`` is the wire speed in bytes/s used
    for pacing (``None``: the link needs no pacing of ours).
    """

    name: str = "transport"

    def __init__(
        self,
        name: str,
        *,
        rate: float | None = MIDI_BYTES_PER_S,
        chunk_size: int = 256,
        chunk_gap_s: float = 0.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        self.name = name
        self.rate = rate
        self.chunk_size = int(chunk_size)
        self.chunk_gap_s = float(chunk_gap_s)
        self.parser = MidiStreamParser(max_message_bytes)
        self.closed = False
        self.bytes_written = 0
        self.bytes_read = 0  # every byte that came in, junk included
        #: called after every counted write or read (a progress display follows the wire)
        self.on_bytes: Callable[[], None] | None = None

    # -- byte-stream hooks -------------------------------------------------------------
    @abstractmethod
    def _write(self, data: bytes) -> None:
        """Write all of ``data`` (may block briefly); raise LinkLost when the link is gone."""

    @abstractmethod
    def _read(self, timeout: float) -> bytes:
        """Return what arrives within ``timeout`` seconds (``b""`` if nothing)."""

    def _close(self) -> None:  # pragma: no cover - overridden where there is something to close
        pass

    # -- public interface --------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise TransportError(f"{self.name}: port is closed")

    def _counted_write(self, chunk: bytes) -> None:
        self._write(chunk)
        self.bytes_written += len(chunk)
        if self.on_bytes is not None:
            self.on_bytes()

    def _counted_read(self, timeout: float) -> bytes:
        chunk = self._read(timeout)
        if chunk:
            self.bytes_read += len(chunk)
            if self.on_bytes is not None:
                self.on_bytes()
        return chunk

    def send(
        self,
        data: bytes,
        *,
        paced: bool = True,
        progress: Progress | None = None,
        done: int = 0,
        total: int | None = None,
    ) -> float:
        """Send raw MIDI bytes (one or more complete messages); returns seconds spent.

        ``paced``: chunked at ``chunk_size`` with ``chunk_gap_s`` pauses, never faster than
        the wire (``rate``). Unpaced: one write.
        """
        self._check_open()
        data = bytes(data)
        if not paced:
            t0 = time.monotonic()
            self._counted_write(data)
            if progress is not None:
                progress(done + len(data), len(data) if total is None else total)
            return time.monotonic() - t0
        return paced_write(
            self._counted_write,
            data,
            rate=self.rate,
            chunk_size=self.chunk_size,
            chunk_gap_s=self.chunk_gap_s,
            progress=progress,
            done=done,
            total=total,
        )

    def receive_message(self, timeout: float) -> bytes | None:
        """The next complete message, or ``None`` when none arrives within ``timeout`` s."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            msg = self.parser.pop()
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            chunk = self._counted_read(min(remaining, 0.05))
            if chunk:
                self.parser.feed(chunk)

    def in_flight_s(self, nbytes: int) -> float:
        """Seconds ``nbytes`` may still be travelling after ``send`` returned: none when we
        paced them ourselves, their wire time when a backend took them whole."""
        return 0.0 if self.rate else nbytes / MIDI_BYTES_PER_S

    def reply_s(self, nbytes: int) -> float:
        """Seconds a reply of ``nbytes`` from the Mirage takes to arrive (MIDI speed)."""
        return nbytes / MIDI_BYTES_PER_S

    def drain(self, quiet_s: float = 0.0) -> int:
        """Discard queued messages and pending input; returns the bytes/messages dropped."""
        self._check_open()
        dropped = len(self.parser)
        self.parser.reset()
        deadline = time.monotonic() + quiet_s
        while True:
            chunk = self._counted_read(0.0)
            dropped += len(chunk)
            if not chunk and time.monotonic() >= deadline:
                break
            if not chunk:
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        return dropped

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
