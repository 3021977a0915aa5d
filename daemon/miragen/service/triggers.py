"""MIDI triggers: listen on ``midi.input``, match ``[[trigger]]`` tables, fire requests.

Inputs (``midi.input``):
- ``midi:<port name part>``: a mido input port (USB-MIDI through rtmidi / the ALSA sequencer);
- ``serial:<device or pyserial URL>``: a UART at ``deliver.baud`` (31,250 for MIDI), e.g.
  ``serial:/dev/ttyTHS1`` on a Jetson, or a pty / ``loop://`` in tests;
- ``raw:/dev/snd/midiCxDy``: a raw ALSA MIDI device read as a byte stream.

Bytes from serial and raw inputs go through :class:`MidiParser`, a small bounded parser
(running status, real-time bytes ignored, SysEx longer than ``midi.max_message_bytes``
dropped), so a flood of input never grows memory. A trigger table matches on the message
kind, the channel (1..16, 0 any), and note / program / control / value (-1 any) or, for
SysEx, a hex pattern where ``*`` matches one byte; the first matching table fires.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import MiragenError

log = logging.getLogger(__name__)


class TriggerError(MiragenError):
    """The MIDI input cannot be opened."""


@dataclass(frozen=True)
class MidiMessage:
    kind: str  # note_on, note_off, program_change, control_change, sysex, other
    channel: int  # 1..16 (0 for sysex)
    data: bytes  # the whole message as bytes

    @property
    def note(self) -> int:
        return self.data[1] if self.kind in ("note_on", "note_off") else -1

    @property
    def velocity(self) -> int:
        return self.data[2] if self.kind in ("note_on", "note_off") else -1

    @property
    def program(self) -> int:
        return self.data[1] if self.kind == "program_change" else -1

    @property
    def control(self) -> int:
        return self.data[1] if self.kind == "control_change" else -1

    @property
    def value(self) -> int:
        return self.data[2] if self.kind == "control_change" else -1


_LENGTHS = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}
_KINDS = {0x80: "note_off", 0x90: "note_on", 0xB0: "control_change", 0xC0: "program_change"}


def _message(data: bytes) -> MidiMessage:
    if data[0] == 0xF0:
        return MidiMessage("sysex", 0, data)
    status = data[0] & 0xF0
    kind = _KINDS.get(status, "other")
    if kind == "note_on" and data[2] == 0:
        kind = "note_off"
    return MidiMessage(kind, (data[0] & 0x0F) + 1, data)


class MidiParser:
    """Bytes in, whole MIDI messages out; bounded memory whatever arrives."""

    def __init__(self, max_sysex: int = 4096):
        self.max_sysex = max_sysex
        self._status = 0
        self._buf = bytearray()
        self._sysex: bytearray | None = None
        self._sysex_overflow = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[MidiMessage]:
        out: list[MidiMessage] = []
        for b in data:
            if b >= 0xF8:  # real-time: ignored, never interrupts anything
                continue
            if self._sysex is not None:
                if b == 0xF7:
                    if not self._sysex_overflow:
                        self._sysex.append(b)
                        out.append(_message(bytes(self._sysex)))
                    self._sysex = None
                    continue
                if b & 0x80:  # a status byte ends an unterminated SysEx: drop it
                    self._sysex = None
                    self.dropped += 1
                else:
                    if len(self._sysex) >= self.max_sysex:
                        if not self._sysex_overflow:
                            self.dropped += 1
                        self._sysex_overflow = True
                        self._sysex.clear()
                    elif not self._sysex_overflow:
                        self._sysex.append(b)
                    continue
            if b == 0xF0:
                self._sysex = bytearray([b])
                self._sysex_overflow = False
                self._status = 0
                continue
            if b & 0x80:
                if b >= 0xF1:  # system common (not SysEx): clears running status; ignored
                    self._status = 0
                    self._buf.clear()
                    continue
                self._status = b
                self._buf = bytearray([b])
                continue
            if not self._status:
                continue  # data byte with no status: ignored
            if not self._buf:
                self._buf = bytearray([self._status])
            self._buf.append(b)
            if len(self._buf) >= _LENGTHS[self._status & 0xF0]:
                out.append(_message(bytes(self._buf)))
                self._buf = bytearray()
        return out


def _pattern(text: str) -> list[int | None]:
    return [None if p == "*" else int(p, 16) for p in text.replace(",", " ").split()]


def matches(trigger: dict[str, Any], msg: MidiMessage) -> bool:
    """Does this ``[[trigger]]`` table fire on ``msg``?"""
    kind = trigger["message"]
    if kind != msg.kind:
        return False
    if kind == "sysex":
        pat = _pattern(trigger["pattern"])
        return len(pat) == len(msg.data) and all(p is None or p == b for p, b in zip(pat, msg.data))
    if trigger["channel"] and trigger["channel"] != msg.channel:
        return False
    if kind == "note_on":
        return trigger["note"] in (-1, msg.note)
    if kind == "program_change":
        return trigger["program"] in (-1, msg.program)
    if kind == "control_change":
        return trigger["control"] in (-1, msg.control) and trigger["value"] in (-1, msg.value)
    return False


def first_match(triggers: list[dict[str, Any]], msg: MidiMessage) -> int | None:
    for i, t in enumerate(triggers):
        if matches(t, msg):
            return i
    return None


class TriggerListener:
    """Reads the MIDI input on a thread and calls ``fire(index, trigger, message)`` on a match."""

    def __init__(self, spec: str, triggers: list[dict[str, Any]], fire: Callable[[int, dict[str, Any], MidiMessage], None],
                 *, baud: int = 31250, max_sysex: int = 4096, heartbeat: Callable[[], None] | None = None):
        self.spec = spec
        self.triggers = triggers
        self.fire = fire
        self.baud = baud
        self.parser = MidiParser(max_sysex)
        self.heartbeat = heartbeat or (lambda: None)
        self.messages = 0
        self.fired = 0
        self.error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port = None
        self._close: Callable[[], None] = lambda: None

    def start(self) -> None:
        kind, _, target = self.spec.partition(":")
        if kind == "midi":
            self._open_mido(target)
        elif kind == "serial":
            self._open_serial(target)
        elif kind == "raw":
            self._open_raw(target)
        else:
            raise TriggerError(f"midi.input: unknown input '{self.spec}'")

    def stop(self) -> None:
        self._stop.set()
        try:
            self._close()
        except Exception:  # closing a dead port: nothing left to do
            log.debug("closing the MIDI input failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def handle(self, msg: MidiMessage) -> None:
        self.messages += 1
        idx = first_match(self.triggers, msg)
        if idx is not None:
            self.fired += 1
            log.info("trigger %d fired by %s", idx, msg.data[:16].hex(" "))
            self.fire(idx, self.triggers[idx], msg)

    def feed(self, data: bytes) -> None:
        for msg in self.parser.feed(data):
            self.handle(msg)

    # -- inputs -------------------------------------------------------------------------
    def _open_mido(self, part: str) -> None:
        import mido

        names = mido.get_input_names()
        found = [n for n in names if part.lower() in n.lower()]
        if not found:
            raise TriggerError(f"midi.input: no MIDI input port matches '{part}' (ports: {', '.join(names) or 'none'})")

        def callback(m: Any) -> None:
            try:
                data = bytes(m.bin())
            except (AttributeError, ValueError):
                return
            if data[:1] == b"\xf0" and len(data) > self.parser.max_sysex:
                self.parser.dropped += 1
                return
            for msg in MidiParser(self.parser.max_sysex).feed(data):
                self.handle(msg)

        self._port = mido.open_input(found[0], callback=callback)
        self._close = self._port.close
        log.info("listening for MIDI triggers on port '%s'", found[0])

    def _open_serial(self, target: str) -> None:
        import serial

        try:
            port = serial.serial_for_url(target, baudrate=self.baud, timeout=0.5)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise TriggerError(f"midi.input: cannot open serial '{target}': {exc}") from None
        self._port = port
        self._close = port.close

        def loop() -> None:
            while not self._stop.is_set():
                self.heartbeat()
                try:
                    data = port.read(256)
                except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                    if self._stop.is_set():
                        return
                    self.error = f"serial read failed: {exc}"
                    log.error("midi.input %s: %s", target, self.error)
                    return
                if data:
                    self.feed(data)

        self._thread = threading.Thread(target=loop, name="midi-in", daemon=True)
        self._thread.start()
        log.info("listening for MIDI triggers on serial '%s' at %d baud", target, self.baud)

    def _open_raw(self, target: str) -> None:
        import select

        try:
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except OSError as exc:
            raise TriggerError(f"midi.input: cannot open '{target}': {exc.strerror or exc}") from None
        self._close = lambda: None

        def loop() -> None:
            try:
                while not self._stop.is_set():
                    self.heartbeat()
                    ready, _, _ = select.select([fd], [], [], 0.5)
                    if not ready:
                        continue
                    try:
                        data = os.read(fd, 256)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self.error = f"read failed: {exc.strerror or exc}"
                        log.error("midi.input %s: %s", target, self.error)
                        return
                    if not data:
                        time.sleep(0.5)  # writer closed (pty): wait for the next one
                        continue
                    self.feed(data)
            finally:
                os.close(fd)

        self._thread = threading.Thread(target=loop, name="midi-in", daemon=True)
        self._thread.start()
        log.info("listening for MIDI triggers on '%s'", target)
