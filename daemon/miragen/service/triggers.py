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

With the state folder (docs/live-files.md):
- the tables are the *learned* ones first (``triggers.json``, ``{"triggers": [table, …]}``,
  written by the web process; each table has exactly the keys and rules of ``[[trigger]]``:
  :func:`check_trigger_tables`), then the configuration's; the file is read when the listener
  starts and again whenever it changes (looked at most every 0.5 s); a file with problems is
  logged and reported (``triggers_error``) and the previous tables stay;
- MIDI learn: while ``live/learn.json`` (``{"id", "until"}``) asks, the first note-on, program
  change, control change or SysEx message is written to ``live/learned.json`` instead of being
  matched (once per ``id``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import validate
from ..errors import ConfigError, InputError, MiragenError
from ..fsutil import atomic_write_text, read_regular
from ..transport import open_transport
from ..transport.base import MidiStreamParser
from .live import read_live, write_live
from .requests import RequestError, from_trigger
from .state import StateDir

log = logging.getLogger(__name__)

LEARN_KINDS = ("note_on", "program_change", "control_change", "sysex")  # what MIDI learn takes
TRIGGERS_CHECK_S = 0.5  # triggers.json is looked at no more often than this
MAX_TRIGGERS_BYTES = 2**20  # a triggers.json larger than this is refused
ANSWERED_KEPT = 64  # the learn ids remembered as answered


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


def message_fields(msg: MidiMessage) -> dict[str, Any]:
    """A message as ``live/learned.json`` shows it (-1: the field does not apply)."""
    return {
        "kind": msg.kind,
        "channel": msg.channel,
        "note": msg.note,
        "velocity": msg.velocity,
        "program": msg.program,
        "control": msg.control,
        "value": msg.value,
        "hex": msg.data.hex(" "),
    }


def table_for_message(message: dict[str, Any]) -> dict[str, Any]:
    """The trigger table that fires on a learned message (``learned.json``'s ``message``): its
    kind, channel and number (a control change: also its value; SysEx: its bytes as the
    pattern). The request keys (class, count, …) are the caller's to add."""
    kind = message["kind"]
    if kind == "sysex":
        return {"message": kind, "pattern": str(message["hex"]).upper()}
    table: dict[str, Any] = {"message": kind, "channel": int(message["channel"])}
    field = {"note_on": "note", "program_change": "program", "control_change": "control"}[kind]
    table[field] = int(message[field])
    if kind == "control_change":
        table["value"] = int(message["value"])
    return table


# ------------------------------------------------------------------------------ triggers.json
def check_trigger_tables(tables: Any, source: str = "triggers.json") -> list[dict[str, Any]]:
    """Trigger tables checked and defaulted by the configuration's own rules for ``[[trigger]]``
    (:func:`miragen.config.validate`), and each one's request (:func:`.requests.from_trigger`).
    Raises ConfigError listing every problem."""
    checked = validate({"trigger": tables}, source)["trigger"]
    problems = []
    for i, table in enumerate(checked):
        try:
            from_trigger(table)
        except RequestError as exc:
            problems.append(f"trigger[{i}]: {str(exc).removeprefix('trigger: ')}")
    if problems:
        raise ConfigError(problems, source)
    return checked


def parse_triggers(data: bytes, source: str = "triggers.json") -> list[dict[str, Any]]:
    """The tables of a ``triggers.json`` document (``{"triggers": [table, …]}``); raises
    ConfigError with the reason."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError([f"not valid JSON ({str(exc)[:200]})"], source) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("triggers"), list):
        raise ConfigError(['must be a JSON object {"triggers": [table, ...]}'], source)
    return check_trigger_tables(doc["triggers"], source)


def read_triggers_file(path: Path) -> list[dict[str, Any]]:
    """The learned trigger tables of ``path`` (none when it does not exist); raises ConfigError
    naming the file and the reason."""
    if not os.path.lexists(path):
        return []
    try:
        data = read_regular(path, max_bytes=MAX_TRIGGERS_BYTES, what="triggers file")
    except InputError as exc:
        raise ConfigError([exc.reason], str(path)) from None
    return parse_triggers(data, str(path))


def write_triggers_file(path: Path, tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check ``tables`` and write them as ``triggers.json`` (atomic and durable); returns them
    with every key filled. Raises ConfigError (nothing written) when one has a problem."""
    checked = check_trigger_tables(tables, str(path))
    atomic_write_text(path, json.dumps({"triggers": checked}, indent=2) + "\n")
    return checked


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (inode, mtime, size); None: absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _learn_request(data: dict[str, Any] | None) -> tuple[str, float] | None:
    """(id, until) of a ``live/learn.json`` document, or None when it is not one."""
    if data is None:
        return None
    lid, until = data.get("id"), data.get("until")
    if not isinstance(lid, str) or not lid or len(lid) > 200:
        return None
    if not isinstance(until, (int, float)) or isinstance(until, bool):
        return None
    return lid, float(until)


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
        state: StateDir | None = None,
    ):
        self.spec = spec
        self.config_triggers = list(triggers)  # the configuration's [[trigger]] tables
        self.learned: list[dict[str, Any]] = []  # triggers.json's tables
        self.triggers = list(triggers)  # learned first, then the configuration's
        self.triggers_error = ""  # why triggers.json was refused ("" when it was not)
        self.state = state
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
        self._refresh_lock = threading.Lock()
        self._checked = -1e9  # when triggers.json was last looked at (monotonic)
        self._triggers_sig: tuple[int, int, int] | None = None
        self._learn_sig: tuple[int, int, int] | None = None
        self._learn: tuple[str, float] | None = None
        self._answered: deque[str] = deque(maxlen=ANSWERED_KEPT)
        if state is not None:
            self.refresh_triggers(force=True)
            answered = (read_live(state.learned_file) or {}).get("id")  # before a restart
            if isinstance(answered, str):
                self._answered.append(answered)

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
        self.refresh_triggers()
        if self._learned(msg):
            return
        triggers = self.triggers
        idx = first_match(triggers, msg)
        if idx is not None:
            self.fired += 1
            log.info("trigger %d fired by %s", idx, msg.data[:16].hex(" "))
            self.fire(idx, triggers[idx], msg)

    def refresh_triggers(self, *, force: bool = False) -> None:
        """Read ``triggers.json`` again when it changed (looked at most every 0.5 s); a file
        with problems is logged once, reported in ``triggers_error``, and the tables stay."""
        if self.state is None:
            return
        path = self.state.triggers_file
        with self._refresh_lock:
            now = time.monotonic()
            if not force and now - self._checked < TRIGGERS_CHECK_S:
                return
            self._checked = now
            sig = _signature(path)
            if not force and sig == self._triggers_sig:
                return
            self._triggers_sig = sig
            try:
                learned = read_triggers_file(path)
            except ConfigError as exc:
                self.triggers_error = str(exc)
                log.error("learned triggers not read, the previous ones stay: %s", exc)
                return
            self.learned, self.triggers_error = learned, ""
            self.triggers = learned + self.config_triggers
            if sig is not None:
                log.info("%d learned triggers from %s", len(learned), path)

    def _learned(self, msg: MidiMessage) -> bool:
        """MIDI learn: is ``msg`` the answer to an open ``live/learn.json``? (Then it is written
        to ``live/learned.json`` and not matched.)"""
        if self.state is None or msg.kind not in LEARN_KINDS:
            return False
        sig = _signature(self.state.learn_file)
        if sig != self._learn_sig:  # read again only when it changed
            self._learn_sig = sig
            self._learn = _learn_request(read_live(self.state.learn_file)) if sig else None
        if self._learn is None:
            return False
        lid, until = self._learn
        if until <= time.time() or lid in self._answered:
            return False
        answer = {"id": lid, "message": message_fields(msg), "t": time.time()}
        if not write_live(self.state.learned_file, answer):
            return False  # the web cannot hear it: the message does what it always does
        self._answered.append(lid)
        log.info("MIDI learn %s: %s", lid[:40], msg.data[:16].hex(" "))
        return True

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
