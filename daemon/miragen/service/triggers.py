"""MIDI triggers: listen on ``midi.input``, match ``[[trigger]]`` tables, fire requests.

Inputs (``midi.input``):
- ``midi:<port name part>``: a mido input port (USB-MIDI through rtmidi / the ALSA sequencer);
- ``serial:<device or pyserial URL>``: a UART at ``deliver.baud`` (31,250 for MIDI), e.g.
  ``serial:/dev/ttyTHS1`` on a Jetson, or a pty / ``loop://`` in tests;
- ``raw:/dev/snd/midiCxDy``: a raw ALSA MIDI device read as a byte stream.

Bytes go through the transport's bounded :class:`~miragen.transport.base.MidiStreamParser`
(running status, real-time bytes ignored, SysEx longer than ``midi.max_message_bytes``
dropped, a bounded queue), so a flood of input never grows memory. A trigger table matches on
the message kind, the channel (1..16, 0 any), and note / program / control / value (-1 any)
or, for SysEx, a hex pattern where ``*`` matches one byte; the first matching table fires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import MiragenError
from ..transport import open_transport
from ..transport.base import MidiStreamParser

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
    """Reads the MIDI input on a thread and calls ``fire(index, trigger, message)`` on a match.

    ``serial:`` and ``raw:`` inputs are opened with :func:`miragen.transport.open_transport`
    (its bounded :class:`~miragen.transport.base.MidiStreamParser` splits the stream). When
    ``shared`` is given, the input is the delivery transport itself (one UART both ways):
    ``shared()`` returns ``(transport, lock, delivering)`` and the listener reads only while no
    delivery holds the lock (messages that arrive during a dump are the delivery's).
    """

    def __init__(
        self,
        spec: str,
        triggers: list[dict[str, Any]],
        fire: Callable[[int, dict[str, Any], MidiMessage], None],
        *,
        cfg: dict[str, Any] | None = None,
        max_sysex: int = 4096,
        heartbeat: Callable[[], None] | None = None,
        shared: Callable[[], tuple[Any, threading.Lock, threading.Event]] | None = None,
    ):
        self.spec = spec
        self.triggers = triggers
        self.fire = fire
        self.cfg = cfg or {}
        self.max_sysex = max_sysex
        self.heartbeat = heartbeat or (lambda: None)
        self.shared = shared
        self.messages = 0
        self.fired = 0
        self.dropped = 0
        self.error = ""
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the input is open and read
        self._thread: threading.Thread | None = None
        self._close: Callable[[], None] = lambda: None

    def start(self) -> None:
        kind, _, target = self.spec.partition(":")
        if kind == "midi":
            self._open_mido(target)
            return
        if kind not in ("serial", "raw"):
            raise TriggerError(f"midi.input: unknown input '{self.spec}'")
        if self.shared is None:
            try:
                transport = open_transport(self.spec, self.cfg)
            except MiragenError as exc:
                raise TriggerError(f"midi.input: cannot open '{self.spec}': {exc}") from None
            transport.parser.max_message_bytes = self.max_sysex
            self._close = transport.close

            def own_transport():
                return (transport, None, None)

            get = own_transport
        else:
            get = self.shared
        self._thread = threading.Thread(target=self._loop, args=(get,), name="midi-in", daemon=True)
        self._thread.start()
        log.info(
            "listening for MIDI triggers on '%s'%s",
            self.spec,
            " (shared with delivery)" if self.shared else "",
        )

    def _loop(self, get: Callable[[], tuple[Any, Any, Any]]) -> None:
        while not self._stop.is_set():
            self.heartbeat()
            try:
                transport, lock, delivering = get()
                self.ready.set()
                if delivering is not None and delivering.is_set():
                    self._stop.wait(0.2)
                    continue
                if lock is None:
                    msg = transport.receive_message(0.5)
                else:
                    with lock:
                        msg = transport.receive_message(0.2)
                    time.sleep(0.001)  # let a waiting delivery take the lock
            except MiragenError as exc:
                if self._stop.is_set():
                    return
                self.error = str(exc)
                log.error("midi.input %s: %s; trying again in 5 s", self.spec, exc)
                self._stop.wait(5.0)
                continue
            if msg:
                self.handle(_message(msg))
            p = getattr(transport, "parser", None)
            if p is not None:
                self.dropped = p.oversize + p.aborted + p.overflow

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # the reader wakes within 0.5 s; then the port is closed
        try:
            self._close()
        except Exception:  # closing a dead port: nothing left to do
            log.debug("closing the MIDI input failed", exc_info=True)

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def handle(self, msg: MidiMessage) -> None:
        self.messages += 1
        idx = first_match(self.triggers, msg)
        if idx is not None:
            self.fired += 1
            log.info("trigger %d fired by %s", idx, msg.data[:16].hex(" "))
            self.fire(idx, self.triggers[idx], msg)

    def _open_mido(self, part: str) -> None:
        import mido

        names = mido.get_input_names()
        found = [n for n in names if part.lower() in n.lower()]
        if not found:
            raise TriggerError(
                f"midi.input: no MIDI input port matches '{part}' "
                f"(ports: {', '.join(names) or 'none'})"
            )
        parser = MidiStreamParser(self.max_sysex)
        lock = threading.Lock()

        def callback(m: Any) -> None:
            try:
                data = bytes(m.bin())
            except (AttributeError, ValueError):
                return
            with lock:
                parser.feed(data)
                msgs = []
                while (one := parser.pop()) is not None:
                    msgs.append(one)
                self.dropped = parser.oversize + parser.aborted + parser.overflow
            for one in msgs:
                self.handle(_message(one))

        port = mido.open_input(found[0], callback=callback)
        self._close = port.close
        self.ready.set()
        log.info("listening for MIDI triggers on port '%s'", found[0])
