"""A simulated Mirage: speaks the host-facing SysEx of FORMAT.md §4 and misbehaves on request.

Memory model: two 64 KB halves (``lower``, ``upper``) of 256 pages. Each half has a 625-byte
sound parameter block (programs + 8 wavesample control blocks, :mod:`miragen.mirage.params`);
its control blocks say where each wavesample lies. The default layout gives wavesample ``n``
the 32 pages ``32·(n−1) … 32·n − 1``. Memory starts as silence (0x80).

Behaviour (what the host sees):

- 0x01 key presses: under MASOS, 0x15 / 0x14 followed by a digit 1..8 select a lower / upper
  wavesample (the pair may come in one message or two); other keys are counted and ignored.
- 0x04 → a 0x06 dump of the selected wavesample (its start page to its end page).
- 0x06 received: a checksum error → 0x0A (NAK); a good dump is stored from the selected
  wavesample's start page, its end page (and loop end) set to match, then 0x09 (ACK). A dump
  that would run past page 255 of the half gets a NAK. A malformed dump (wrong length, bad
  framing) gets no answer, like a Mirage still waiting for bytes that never come.
- 0x0B → a 0x0C dump of those bytes of the half's memory (end 0x10000 travels as 0x0000,
  :func:`miragen.mirage.sysex.absolute_end_nybbles`).
- 0x0C received: checked like 0x06 (checksum → NAK, malformed → no answer), stored at its
  address, ACK. Whether a real Mirage acknowledges 0x0C is UNCERTAIN (FORMAT.md §4).
- 0x03 / 0x13 → 0x05 / 0x15 program dump of that half; 0x05 / 0x15 received → checked
  (:func:`miragen.mirage.params.block_problems`: every looping wavesample keeps its loop inside
  its pages) and stored, or refused and not stored (``programs_refused``, ``last_refusal``);
  no answer either way (program dumps carry no checksum). 0x00 → 0x02 configuration dump;
  0x02 → stored.
- 0x09 / 0x0A from the host are counted; anything else is counted as ignored.

Faults (``Faults.parse(["nak=2", "slow"])``; a count ``N`` applies to the first N dumps (or
requests), no count means every time):

==================  ======================================================================
``drop[=N]``        one byte of a received dump (0x06, 0x0C, 0x05/0x15) is lost → malformed,
                    no answer (a program dump is not stored)
``corrupt[=N]``     one nybble of a received dump is changed → checksum bad, NAK (a program
                    dump has no checksum: it is stored changed, as a Mirage would)
``silent[=N]``      a received 0x06/0x0C dump is never answered (and not stored)
``nak[=N]``         a good 0x06/0x0C dump is answered NAK anyway (and not stored)
``mute[=N]``        a request (0x00, 0x03/0x13, 0x04, 0x0B) is never answered
``corrupt_reply[=N]`` one nybble of a 0x06/0x0C dump the sim sends is changed
``noise[=N]``       N junk bytes (real-time bytes, a stray unterminated SysEx) precede every
                    reply (default 64)
``slow``            true 31,250-baud speed both ways (3,125 bytes/s)
``disconnect[=N]``  the link drops after N bytes from the host (default 2,000: inside the
                    first dump)
==================  ======================================================================
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..fsutil import atomic_write_text
from ..mirage import params as P
from ..mirage import sysex as S
from .base import MIDI_BYTES_PER_S, LinkLost, MidiStreamParser, Transport

log = logging.getLogger(__name__)

HALVES = ("lower", "upper")
HALF_BYTES = 65536
PAGES_PER_HALF = 256
DEFAULT_PAGES_PER_WAVESAMPLE = 32
STATE_FORMAT = "miragen-sim-state/1"
ALWAYS = -1  # a fault count meaning "every time"
_RECEIVED_DUMPS = (
    S.CMD_WAVESAMPLE_DUMP,
    S.CMD_ABSOLUTE_DUMP,
    S.CMD_PROGRAM_DUMP,
    S.CMD_PROGRAM_DUMP | S.UPPER_FLAG,
)
_REQUESTS = ("wavesample_request", "absolute_request", "program_request", "config_request")

# Configuration bytes (CONFIG_FIELDS order in miragen.mirage.sysex): param 83 (thru) off,
# param 91 (external computer port) = 1, MIDI channel 1, software revision 2 (MASOS 2.0).
_DEFAULT_CONFIG = {
    "thru_mode_83": 0,
    "external_computer_91": 1,
    "midi_channel_82": 0,
    "software_rev_97": 2,
    "pitch_bend_range_22": 2,
    "sample_time_adjust_73": 34,
}


@dataclass
class Faults:
    """What the simulated Mirage does wrong, and how many more times (``-1``: always)."""

    drop: int = 0
    corrupt: int = 0
    silent: int = 0
    nak: int = 0
    mute: int = 0
    corrupt_reply: int = 0
    noise: int = 0
    slow: bool = False
    disconnect: int | None = None  # bytes from the host after which the link drops

    NAMES = (
        "drop",
        "corrupt",
        "silent",
        "nak",
        "mute",
        "corrupt_reply",
        "noise",
        "slow",
        "disconnect",
    )

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...] | None) -> Faults:
        """``["drop=1", "slow", "nak=2"]`` → Faults; raises ValueError naming a bad spec."""
        f = cls()
        for spec in specs or ():
            name, _, value = str(spec).partition("=")
            name = name.strip().lower().replace("-", "_")
            if name == "true_speed":
                name = "slow"
            if name not in cls.NAMES:
                raise ValueError(f"fault {spec!r}: unknown; known faults: {', '.join(cls.NAMES)}")
            if value.strip():
                try:
                    n = int(value)
                except ValueError:
                    raise ValueError(f"fault {spec!r}: {value!r} is not a whole number") from None
                if n < 0:
                    raise ValueError(f"fault {spec!r}: the count must be ≥ 0")
            else:
                n = None
            if name == "slow":
                f.slow = n is None or n > 0
            elif name == "disconnect":
                f.disconnect = 2000 if n is None else n
            elif name == "noise":
                f.noise = 64 if n is None else n
            else:
                setattr(f, name, ALWAYS if n is None else n)
        return f

    def take(self, name: str) -> bool:
        """Use one occurrence of fault ``name``; True when it fires now."""
        n = getattr(self, name)
        if n == 0:
            return False
        if n > 0:
            setattr(self, name, n - 1)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}


#: Coarse tune of the default control blocks: the Mirage Sound Editor's value for samples
#: taken at 20-40 kHz [S10], so octave keyboards (docs/keyboard.md) have room to go down.
DEFAULT_COARSE_TUNE = 2


def default_params_block(pages_per_wavesample: int = DEFAULT_PAGES_PER_WAVESAMPLE) -> bytes:
    """A 625-byte sound parameter block whose 8 control blocks tile the half evenly."""
    block = bytearray(P.BLOCK_SIZE)
    for n in range(1, P.WAVESAMPLES + 1):
        start = (n - 1) * pages_per_wavesample
        end = min(PAGES_PER_HALF - 1, start + pages_per_wavesample - 1)
        off = P.control_offset(n)
        block[off : off + P.CONTROL_SIZE] = P.make_control_block(
            start, end, top_key=60, coarse_tune=DEFAULT_COARSE_TUNE
        )
    return bytes(block)


def default_config() -> bytes:
    cfg = bytearray(S.CONFIG_SIZE)
    for name, value in _DEFAULT_CONFIG.items():
        cfg[S.CONFIG_FIELDS.index(name)] = value
    return bytes(cfg)


def _noise(n: int) -> bytes:
    """Junk a healthy parser must survive: real-time bytes, a stray SysEx cut short."""
    pattern = b"\xfe\xf8" + b"\xf0\x0f\x01\x7f" + bytes(range(1, 20))
    return (pattern * (n // len(pattern) + 1))[:n]


class SimulatedMirage:
    """The instrument, as pure state: ``feed(bytes_from_host)`` → list of reply messages."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        pages_per_wavesample: int = DEFAULT_PAGES_PER_WAVESAMPLE,
    ):
        self.faults = faults or Faults()
        self.memory: dict[str, bytearray] = {h: bytearray(b"\x80" * HALF_BYTES) for h in HALVES}
        self.params: dict[str, bytearray] = {
            h: bytearray(default_params_block(pages_per_wavesample)) for h in HALVES
        }
        self.config = bytearray(default_config())
        self.selected: tuple[str, int] = ("lower", 1)
        self._pending_half: str | None = None
        self.parser = MidiStreamParser()
        self.disconnected = False
        self.counters: dict[str, int] = {
            k: 0
            for k in (
                "bytes_received",
                "messages",
                "keys",
                "selections",
                "dumps_received",
                "dumps_stored",
                "acks_sent",
                "naks_sent",
                "dumps_malformed",
                "dumps_unanswered",
                "wavesample_requests",
                "dumps_sent",
                "absolute_requests",
                "absolute_sent",
                "absolute_received",
                "absolute_stored",
                "program_requests",
                "programs_received",
                "programs_stored",
                "programs_refused",
                "requests_unanswered",
                "config_requests",
                "configs_stored",
                "host_acks",
                "host_naks",
                "ignored",
                "bad_messages",
            )
        }
        self.last_refusal = ""  # why the last program dump was refused
        self.changes = 0  # bumped whenever memory, selection or counters change

    # -- memory views ------------------------------------------------------------------
    def control(self, half: str, number: int) -> P.WavesampleControl:
        return P.parse_sound_params(bytes(self.params[half])).wavesample(number)

    def wavesample_pages(self, half: str, number: int) -> tuple[int, int]:
        c = self.control(half, number)
        return c.start_page, c.end_page

    def wavesample_data(self, half: str, number: int) -> bytes:
        """The bytes of wavesample ``number`` of ``half`` (start page to end page)."""
        start, end = self.wavesample_pages(half, number)
        if end < start:
            return b""
        return bytes(self.memory[half][start * 256 : (end + 1) * 256])

    # -- protocol ----------------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes]:
        """Bytes from the host → reply messages. Raises LinkLost when the link is (or goes) down."""
        if self.disconnected:
            raise LinkLost("sim: the simulated Mirage's link is down")
        data = bytes(data)
        if self.faults.disconnect is not None:
            room = self.faults.disconnect - self.counters["bytes_received"]
            if room < len(data):
                self.counters["bytes_received"] += max(0, room)
                self.disconnected = True
                self.changes += 1
                log.info("sim: fault 'disconnect' after %d bytes", self.counters["bytes_received"])
                raise LinkLost(
                    f"sim: link dropped after {self.counters['bytes_received']} bytes "
                    "(fault 'disconnect')"
                )
        self.counters["bytes_received"] += len(data)
        self.parser.feed(data)
        replies: list[bytes] = []
        while (msg := self.parser.pop()) is not None:
            replies.extend(self.handle(msg))
        if self.faults.noise and replies:
            replies = [_noise(self.faults.noise) + r for r in replies]
        return replies

    def handle(self, msg: bytes) -> list[bytes]:
        """One complete message from the host → replies."""
        self.counters["messages"] += 1
        self.changes += 1
        if len(msg) < 5 or msg[0] != 0xF0 or msg[1:3] != bytes([S.MANUFACTURER, S.MODEL]):
            self.counters["ignored"] += 1
            return []
        cmd = msg[3]
        if cmd in _RECEIVED_DUMPS:
            return self._receive_dump(msg)
        try:
            m = S.decode(msg)
        except S.SysexError as exc:
            log.info("sim: bad message from host (%s)", exc)
            self.counters["bad_messages"] += 1
            return []
        if m.kind in _REQUESTS:
            if self.faults.take("mute"):
                log.info("sim: fault 'mute': no answer to a %s", m.kind)
                self.counters["requests_unanswered"] += 1
                return []
            return [self._answer(m)]
        if m.kind == "keys":
            self._keys(m.fields["codes"])
        elif m.kind == "config_dump":
            self.config[:] = m.data or b""
            self.counters["configs_stored"] += 1
        elif m.kind in ("ack", "nak"):
            self.counters[f"host_{m.kind}s"] += 1
        else:
            self.counters["ignored"] += 1
        return []

    def _answer(self, m: S.SysexMessage) -> bytes:
        """The reply to a request (0x00, 0x03/0x13, 0x04, 0x0B)."""
        if m.kind == "wavesample_request":
            self.counters["wavesample_requests"] += 1
            return self._wavesample_reply()
        if m.kind == "absolute_request":
            self.counters["absolute_requests"] += 1
            half, start, end = m.fields["half"], m.fields["start"], m.fields["end"]
            msg = S.encode_absolute_dump(
                start, bytes(self.memory[half][start:end]), half == "upper"
            )
            self.counters["absolute_sent"] += 1
            return self._maybe_corrupt_reply(msg)
        if m.kind == "program_request":
            self.counters["program_requests"] += 1
            half = m.fields["half"]
            return S.encode_program_dump(bytes(self.params[half]), half == "upper")
        self.counters["config_requests"] += 1
        return S.encode_config_dump(bytes(self.config))

    def _keys(self, codes: list[int]) -> None:
        self.counters["keys"] += len(codes)
        for code in codes:
            if code in (0x15, 0x14):
                self._pending_half = "lower" if code == 0x15 else "upper"
            elif self._pending_half is not None and 1 <= code <= 8:
                self.selected = (self._pending_half, code)
                self.counters["selections"] += 1
                self._pending_half = None
                log.info("sim: selected %s wavesample %d", *self.selected)
            else:
                self._pending_half = None

    def _nak(self) -> list[bytes]:
        self.counters["naks_sent"] += 1
        return [S.encode_nak()]

    def _line_faults(self, msg: bytes) -> bytes:
        """The faults of the line itself ('drop', 'corrupt') on a received dump."""
        if len(msg) > 16 and self.faults.take("drop"):
            k = len(msg) // 2
            msg = msg[:k] + msg[k + 1 :]
            log.info("sim: fault 'drop' lost byte %d of a dump", k)
        if len(msg) > 16 and self.faults.take("corrupt"):
            k = len(msg) // 3
            msg = msg[:k] + bytes([msg[k] ^ 0x01]) + msg[k + 1 :]
            log.info("sim: fault 'corrupt' changed byte %d of a dump", k)
        return msg

    def _receive_dump(self, msg: bytes) -> list[bytes]:
        """A dump from the host (0x06, 0x0C, 0x05/0x15): line faults, checks, handshake."""
        cmd = msg[3]
        if cmd in (S.CMD_PROGRAM_DUMP, S.CMD_PROGRAM_DUMP | S.UPPER_FLAG):
            return self._receive_program(self._line_faults(msg))
        self.counters["absolute_received" if cmd == S.CMD_ABSOLUTE_DUMP else "dumps_received"] += 1
        msg = self._line_faults(msg)
        try:
            m = S.decode(msg)
        except S.SysexError as exc:
            if "checksum" in exc.reason:
                log.info("sim: NAK (%s)", exc)
                return self._nak()
            log.info("sim: malformed dump, no answer (%s)", exc)
            self.counters["dumps_malformed"] += 1
            return []
        if self.faults.take("silent"):
            log.info("sim: fault 'silent': no answer to a good dump")
            self.counters["dumps_unanswered"] += 1
            return []
        if self.faults.take("nak"):
            log.info("sim: fault 'nak': NAK to a good dump")
            return self._nak()
        if m.kind == "absolute_dump":
            return self._store_absolute(m)
        return self._store_wavesample(m)

    def _store_absolute(self, m: S.SysexMessage) -> list[bytes]:
        half, start, end = m.fields["half"], m.fields["start"], m.fields["end"]
        self.memory[half][start:end] = m.data or b""
        self.counters["absolute_stored"] += 1
        self.counters["acks_sent"] += 1
        log.info("sim: stored bytes %d..%d of the %s half: ACK", start, end - 1, half)
        return [S.encode_ack()]

    def _store_wavesample(self, m: S.SysexMessage) -> list[bytes]:
        half, number = self.selected
        start, _end = self.wavesample_pages(half, number)
        pages = m.fields["pages"]
        if start + pages > PAGES_PER_HALF:
            log.info("sim: %d pages from page %d would cross the %s half: NAK", pages, start, half)
            return self._nak()
        self.memory[half][start * 256 : (start + pages) * 256] = m.data or b""
        off = P.control_offset(number)
        block = self.params[half]
        block[off + P.CONTROL_FIELDS["end_page"]] = start + pages - 1
        block[off + P.CONTROL_FIELDS["loop_end_page"]] = start + pages - 1
        if block[off + P.CONTROL_FIELDS["loop_start_page"]] > start + pages - 1:
            block[off + P.CONTROL_FIELDS["loop_start_page"]] = start
        self.counters["dumps_stored"] += 1
        self.counters["acks_sent"] += 1
        log.info("sim: stored %d pages into %s wavesample %d: ACK", pages, half, number)
        return [S.encode_ack()]

    def _receive_program(self, msg: bytes) -> list[bytes]:
        """A program dump: checked, then stored or refused; never answered."""
        self.counters["programs_received"] += 1
        try:
            m = S.decode(msg)
        except S.SysexError as exc:
            log.info("sim: malformed program dump, not stored (%s)", exc)
            self.counters["dumps_malformed"] += 1
            return []
        block = m.data or b""
        problems = P.block_problems(block)
        if problems:
            self.last_refusal = f"{m.fields['half']} program dump: " + "; ".join(problems)
            log.info("sim: refused a program dump (%s)", self.last_refusal)
            self.counters["programs_refused"] += 1
            return []
        self.params[m.fields["half"]][:] = block
        self.counters["programs_stored"] += 1
        return []

    def _wavesample_reply(self) -> bytes:
        data = self.wavesample_data(*self.selected)
        if not data:
            data = b"\x80" * 256
        msg = S.encode_wavesample_dump(data[: S.MAX_DUMP_PAGES * 256])
        self.counters["dumps_sent"] += 1
        return self._maybe_corrupt_reply(msg)

    def _maybe_corrupt_reply(self, msg: bytes) -> bytes:
        if self.faults.take("corrupt_reply"):
            k = len(msg) // 2
            msg = msg[:k] + bytes([msg[k] ^ 0x01]) + msg[k + 1 :]
            log.info("sim: fault 'corrupt_reply' changed byte %d of the dump sent", k)
        return msg

    # -- state file --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a test or demo wants to look at, JSON-ready (bytes as base64)."""

        def b64(b) -> str:
            return base64.b64encode(bytes(b)).decode("ascii")

        return {
            "format": STATE_FORMAT,
            "selected": {"half": self.selected[0], "number": self.selected[1]},
            "wavesamples": {
                h: [
                    {"number": n, "start_page": c.start_page, "end_page": c.end_page}
                    for n, c in ((n, self.control(h, n)) for n in range(1, 9))
                ]
                for h in HALVES
            },
            "memory": {h: b64(self.memory[h]) for h in HALVES},
            "params": {h: b64(self.params[h]) for h in HALVES},
            "config": b64(self.config),
            "counters": dict(self.counters),
            "faults_left": self.faults.to_dict(),
            "disconnected": self.disconnected,
            "last_refusal": self.last_refusal,
            "time": time.time(),
        }

    def save_state(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.state()))

    def load_state(self, path: str | os.PathLike) -> None:
        """Take the memory, parameter blocks, configuration and selection of a state file
        (``miragen sim --state``): the same instrument after a dropped link, on a new pty.
        Counters, faults and the link start afresh."""
        st = read_state(path)
        for h in HALVES:
            mem, block = st["memory"].get(h, b""), st["params"].get(h, b"")
            if len(mem) != HALF_BYTES or len(block) != P.BLOCK_SIZE:
                raise ValueError(f"{path}: the {h} half's memory or parameter block is damaged")
            self.memory[h][:] = mem
            self.params[h][:] = block
        if len(st["config"]) == S.CONFIG_SIZE:
            self.config[:] = st["config"]
        sel = st.get("selected") or {}
        if sel.get("half") in HALVES and sel.get("number") in range(1, 9):
            self.selected = (sel["half"], sel["number"])
        self.changes += 1


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a state file written by ``miragen sim --state``; memory/params/config as bytes.

    Adds ``wavesample_data[half][n]`` (the bytes of each wavesample, start to end page).
    """
    with open(path, encoding="utf-8") as fh:
        st = json.load(fh)
    if st.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a simulated-Mirage state file (format {st.get('format')!r})")
    for key in ("memory", "params"):
        st[key] = {h: base64.b64decode(v) for h, v in st[key].items()}
    st["config"] = base64.b64decode(st["config"])
    st["wavesample_data"] = {
        h: {
            w["number"]: (
                st["memory"][h][w["start_page"] * 256 : (w["end_page"] + 1) * 256]
                if w["end_page"] >= w["start_page"]
                else b""
            )
            for w in st["wavesamples"][h]
        }
        for h in HALVES
    }
    return st


class SimTransport(Transport):
    """A transport whose other end is a :class:`SimulatedMirage` in this process.

    Fast by default (no pacing); with the ``slow`` fault both directions run at 3,125 bytes/s
    on the wall clock.
    """

    def __init__(
        self,
        sim: SimulatedMirage | None = None,
        *,
        faults: Faults | None = None,
        chunk_size: int = 256,
        chunk_gap_s: float = 0.0,
        **kw: Any,
    ):
        self.sim = sim or SimulatedMirage(faults)
        rate = MIDI_BYTES_PER_S if self.sim.faults.slow else None
        super().__init__("sim", rate=rate, chunk_size=chunk_size, chunk_gap_s=chunk_gap_s, **kw)
        self._pending: list[list[Any]] = []  # [release start time, bytes, bytes already given]
        self._free_at = 0.0
        self._in_done = 0.0

    def in_flight_s(self, nbytes: int) -> float:
        return 0.0  # the simulated Mirage answers as soon as the last byte is fed

    def reply_s(self, nbytes: int) -> float:
        return nbytes / MIDI_BYTES_PER_S if self.rate else 0.0

    def _write(self, data: bytes) -> None:
        now = time.monotonic()
        if self.rate:  # the last of these bytes reaches the Mirage only after its wire time
            self._in_done = max(now, self._in_done) + len(data) / self.rate
        for reply in self.sim.feed(data):
            start = max(now, self._free_at, self._in_done)
            if self.rate:
                self._free_at = start + len(reply) / self.rate
            self._pending.append([start, reply, 0])

    def _available(self, now: float) -> bytes:
        out = bytearray()
        while self._pending:
            start, data, given = self._pending[0]
            ready = len(data) if not self.rate else min(len(data), int((now - start) * self.rate))
            if ready > given:
                out += data[given:ready]
                self._pending[0][2] = ready
            if ready >= len(data):
                self._pending.pop(0)
            else:
                break
        return bytes(out)

    def _read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            if self.sim.disconnected:
                raise LinkLost("sim: link dropped (fault 'disconnect')")
            out = self._available(time.monotonic())
            if out or time.monotonic() >= deadline:
                return out
            if not self._pending:
                time.sleep(max(0.0, min(0.01, deadline - time.monotonic())))
            else:
                time.sleep(max(0.0, min(0.005, deadline - time.monotonic())))
