"""MIDI ports: mido ports chosen by a name part (python-rtmidi, needs the ALSA sequencer), and
raw ALSA MIDI devices (``/dev/snd/midiC*D*``) for kernels without the sequencer.

mido ports take whole messages only: python-rtmidi refuses a SysEx fragment on ALSA, so a
dump goes to the backend in one piece and cannot be paced from here (large SysEx through the
ALSA sequencer is known to drop data: rtmidi #214). For long dumps prefer the raw device,
which we pace byte by byte against the 31,250-baud wire.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import select
import stat
import sys
import time
from typing import Any

from ..mirage import sysex as S
from .base import MIDI_BYTES_PER_S, LinkLost, Transport, TransportError

log = logging.getLogger(__name__)

RAW_GLOB = "/dev/snd/midiC*D*"
SEQ_DEVICE = "/dev/snd/seq"


def _backend(backend: Any = None) -> Any:
    import mido

    if backend is None:
        return mido.Backend("mido.backends.rtmidi", load=True)
    if isinstance(backend, str):
        return mido.Backend(backend, load=True)
    return backend


def find_port_name(names: list[str], part: str, what: str) -> str:
    """The one name that contains ``part`` (case-insensitive); exact match wins."""
    if part in names:
        return part
    hits = [n for n in names if part.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(repr(n) for n in names) or "none"
    if not hits:
        raise TransportError(
            f"MIDI {what} port {part!r}: no port name contains it (ports: {known})"
        )
    raise TransportError(
        f"MIDI {what} port {part!r}: several ports match ({', '.join(map(repr, hits))}); give more "
        "of the name"
    )


class MidoTransport(Transport):
    """A mido input/output port pair chosen by a part of the port name.

    ``backend``: a mido Backend, or a module name (default ``mido.backends.rtmidi``); tests
    pass their own. Alternatively pass ready ``input_port`` and ``output_port`` objects.
    """

    def __init__(
        self,
        name_part: str = "",
        *,
        backend: Any = None,
        input_port: Any = None,
        output_port: Any = None,
        chunk_size: int = 256,
        chunk_gap_s: float = 0.0,
        **kw: Any,
    ):
        super().__init__(
            f"midi:{name_part}", rate=None, chunk_size=chunk_size, chunk_gap_s=chunk_gap_s, **kw
        )
        if input_port is None or output_port is None:
            if (
                backend is None
                and sys.platform.startswith("linux")
                and not os.path.exists(SEQ_DEVICE)
            ):
                raise TransportError(
                    f"MIDI port {name_part!r}: {SEQ_DEVICE} is missing, so there is no ALSA "
                    "sequencer for mido/rtmidi "
                    "(load snd-seq, or use raw:/dev/snd/midiC*D* or serial:)"
                )
            be = _backend(backend)
            try:
                out_names = be.get_output_names()
                in_names = be.get_input_names()
            except Exception as exc:  # rtmidi raises its own SystemError without a sequencer
                hint = (
                    ""
                    if os.path.exists(SEQ_DEVICE)
                    else f" ({SEQ_DEVICE} is missing: no ALSA sequencer; use raw:/dev/snd/midiC*D* "
                    "or serial:)"
                )
                raise TransportError(
                    f"MIDI port {name_part!r}: the MIDI backend does not work: {exc}{hint}"
                ) from None
            out_name = find_port_name(out_names, name_part, "output")
            in_name = find_port_name(in_names, name_part, "input")
            try:
                output_port = be.open_output(out_name)
                input_port = be.open_input(in_name)
            except Exception as exc:
                if output_port is not None:
                    output_port.close()
                raise TransportError(f"MIDI port {name_part!r}: cannot open ({exc})") from None
            self.name = f"midi:{out_name}"
        self._in = input_port
        self._out = output_port
        self._busy_until = 0.0

    def in_flight_s(self, nbytes: int) -> float:
        return max(0.0, self._busy_until - time.monotonic())

    def send(
        self,
        data: bytes,
        *,
        paced: bool = True,
        progress: Any = None,
        done: int = 0,
        total: int | None = None,
    ) -> float:
        """Send complete messages, each whole; paced: no message starts before the previous
        one has had its wire time (3,125 bytes/s) plus ``chunk_gap_s``."""
        import mido

        self._check_open()
        t0 = time.monotonic()
        data = bytes(data)
        total = len(data) if total is None else total
        msgs = S.split_messages(data) if data[:1] == b"\xf0" else [data]
        sent = 0
        for msg in msgs:
            if paced:
                wait = self._busy_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            try:
                self._out.send(mido.Message.from_bytes(msg))
            except (OSError, ValueError, RuntimeError) as exc:
                raise LinkLost(f"{self.name}: cannot send ({exc})") from None
            self.bytes_written += len(msg)
            if self.on_bytes is not None:
                self.on_bytes()
            sent += len(msg)
            start = max(time.monotonic(), self._busy_until)
            self._busy_until = start + len(msg) / MIDI_BYTES_PER_S + self.chunk_gap_s
            if progress is not None:
                progress(done + sent, total)
        return time.monotonic() - t0

    def _write(self, data: bytes) -> None:  # send() is overridden; kept for the interface
        self.send(data, paced=False)

    def _read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self._in.poll()
            except (OSError, RuntimeError) as exc:
                raise LinkLost(f"{self.name}: cannot read ({exc})") from None
            if msg is not None:
                return bytes(msg.bin())
            now = time.monotonic()
            if now >= deadline:
                return b""
            time.sleep(min(0.002, deadline - now))

    def _close(self) -> None:
        for port in (self._out, self._in):
            try:
                port.close()
            except Exception:
                log.debug("closing %s failed", self.name, exc_info=True)


class RawMidiTransport(Transport):
    """A raw MIDI device file (``/dev/snd/midiC1D0``), or any byte device such as a pty,
    paced against the 31,250-baud wire."""

    def __init__(
        self,
        path: str,
        *,
        chunk_size: int = 256,
        chunk_gap_s: float = 0.0,
        rate: float | None = MIDI_BYTES_PER_S,
        **kw: Any,
    ):
        super().__init__(
            f"raw:{path}", rate=rate, chunk_size=chunk_size, chunk_gap_s=chunk_gap_s, **kw
        )
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.ENOENT:
                found = sorted(glob.glob(RAW_GLOB))
                hint = f" (raw MIDI devices here: {', '.join(found) or 'none'})"
            elif exc.errno in (errno.EACCES, errno.EPERM):
                hint = " (add the user to the 'audio' group)"
            elif exc.errno == errno.EBUSY:
                hint = " (another program holds it; close it or use the ALSA sequencer port)"
            raise TransportError(
                f"raw MIDI device {path}: cannot open ({exc.strerror}){hint}"
            ) from None
        if stat.S_ISREG(os.fstat(self._fd).st_mode):  # never write SysEx into somebody's file
            os.close(self._fd)
            found = sorted(glob.glob(RAW_GLOB))
            raise TransportError(
                f"raw MIDI device {path}: is a regular file, not a device "
                f"(raw MIDI devices here: {', '.join(found) or 'none'})"
            )

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 10.0
        while view:
            try:
                n = os.write(self._fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                raise LinkLost(f"{self.name}: link lost while writing ({exc.strerror})") from None
            if time.monotonic() > deadline:
                raise LinkLost(f"{self.name}: write blocked for 10 s (device not draining)")
            select.select([], [self._fd], [], 0.05)

    def _read(self, timeout: float) -> bytes:
        try:
            r, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
            if not r:
                return b""
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise LinkLost(f"{self.name}: link lost while reading ({exc.strerror})") from None
        if not data:
            raise LinkLost(f"{self.name}: device closed")
        return data

    def _close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
