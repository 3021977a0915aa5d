"""Mirage MIDI System Exclusive: every message of ``shared/mirage/FORMAT.md`` §4.

Pure functions over bytes. A message is the whole ``F0 0F 01 <cmd> ... F7`` string.
Encoders build one message; :func:`decode` checks one message (framing, manufacturer and
model bytes, every data byte < 0x80, nybbles < 0x10 where nybbles are expected, the length
for its command, the checksum) and returns a :class:`SysexMessage`. Every error is a
:class:`SysexError` naming the byte offset and what was expected there.

Message layouts are kept as data (``_LAYOUT``) and checked in one place, in the manner of
mido's ``specs.py``/``checks.py``.

Streams (a ``.syx`` file, what a port received): :class:`MessageScanner` and
:func:`iter_decode` take the bytes in pieces and give the Mirage's messages one by one, with
bounded memory per message. What is not the Mirage's is skipped and counted
(:class:`ScanStats`): other manufacturers' SysEx, stray bytes between messages, and MIDI
real-time bytes (0xF8..0xFF), which MIDI allows anywhere, even inside a SysEx message (there
they are dropped and the message still decodes). A Mirage message that is malformed (bad
checksum, truncated, a status byte inside) is an error naming its byte offset in the stream.
:func:`split_messages` / :func:`decode_stream` stay strict: they accept nothing but
back-to-back messages.

Choices where FORMAT.md says UNCERTAIN (each isolated in one function, documented there):

* :func:`encode_wavesample_dump` refuses more than 255 pages (the page count is one byte; a
  256-page dump is UNCERTAIN). :func:`decode` reads a page count of 0 as 256 pages only when
  the message length says exactly 256 pages (the reading of one editor); it says so in
  ``fields["page_count_field"]``.
* :func:`select_wavesample_keys` gives the MASOS key codes that select a wavesample.
* :func:`absolute_end_nybbles`: the end address of 0x0B/0x0C is one past the last byte, so
  the end of a half (0x10000) travels as 0x0000.
* Configuration dump field names (``CONFIG_FIELDS``) follow the Mirage Sound Editor's table;
  the raw 29 bytes are always kept in ``data``.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import limits
from ..errors import FormatError
from .params import parse_sound_params

# --------------------------------------------------------------------------- constants

SOX = 0xF0
EOX = 0xF7
MANUFACTURER = 0x0F  # Ensoniq
MODEL = 0x01  # Mirage
HEADER = bytes([SOX, MANUFACTURER, MODEL])

UPPER_FLAG = 0x10  # bit that marks the upper half in a command or number byte

CMD_CONFIG_REQUEST = 0x00
CMD_KEYS = 0x01
CMD_CONFIG_DUMP = 0x02
CMD_PROGRAM_REQUEST = 0x03  # | 0x10 upper
CMD_WAVESAMPLE_REQUEST = 0x04
CMD_PROGRAM_DUMP = 0x05  # | 0x10 upper
CMD_WAVESAMPLE_DUMP = 0x06
CMD_PROGRAM_STATUS = 0x07
CMD_WAVESAMPLE_STATUS = 0x08
CMD_ACK = 0x09
CMD_NAK = 0x0A
CMD_ABSOLUTE_REQUEST = 0x0B
CMD_ABSOLUTE_DUMP = 0x0C
CMD_PROGRAM_PARAMETER = 0x0D
CMD_WAVESAMPLE_PARAMETER = 0x0E
CMD_WAVESAMPLE_FUNCTION = 0x0F

PAGE = limits.PAGE  # the Mirage's memory page (miragen.limits)
MAX_DUMP_PAGES = 255  # one-byte page count; 256 pages is UNCERTAIN (FORMAT.md §4)
PROGRAM_BLOCK_SIZE = 625
CONFIG_SIZE = 29
KEYS_END = 0x7F
MAX_KEYS = 5

#: Front-panel key codes for command 0x01 (FORMAT.md §4).
KEY_CODES: dict[str, int] = {
    **{str(d): d for d in range(10)},
    "enter": 0x0A,
    "cancel": 0x0B,
    "param": 0x0C,
    "value": 0x0D,
    "up": 0x0E,
    "down": 0x0F,
    "load-upper": 0x10,
    "load-lower": 0x11,
    "sample-upper": 0x12,
    "sample-lower": 0x13,
    "rec-seq": 0x14,
    "play-seq": 0x15,
    "load-seq": 0x16,
    "save-seq": 0x17,
}
KEY_NAMES: dict[int, str] = {v: k for k, v in KEY_CODES.items()}

#: Names of the 29 configuration bytes (command 0x02), panel parameter number in brackets.
#: Source: Mirage Sound Editor ``_config_dump_table_`` [S10]; UNCERTAIN beyond that source.
CONFIG_FIELDS: tuple[str, ...] = (
    "dummy",
    "master_tune_21",
    "pitch_bend_range_22",
    "velocity_sensitivity_23",
    "up_low_balance_24",
    "program_link_25",
    "sample_time_adjust_73",
    "input_filter_freq_74",
    "mic_line_75",
    "sample_threshold_76",
    "multisample_77",
    "omni_mode_81",
    "midi_channel_82",
    "thru_mode_83",
    "mod_enable_84",
    "source_start_msb_85",
    "source_start_lsb_86",
    "source_end_msb_87",
    "source_end_lsb_88",
    "dest_msb_89",
    "dest_lsb_90",
    "dest_bank_94",
    "scale_start_95",
    "scale_end_96",
    "external_computer_91",
    "baud_rate_92",
    "cartridge_filter_freq_93",
    "software_rev_97",
    "spare",
)
assert len(CONFIG_FIELDS) == CONFIG_SIZE

#: Wavesample manipulation functions (command 0x0F, low nybble of the function byte) [S11].
WAVESAMPLE_FUNCTIONS: dict[int, str] = {
    0: "copy",
    1: "scale",
    2: "add",
    3: "invert",
    4: "reverse",
    5: "replicate",
    6: "rotate-left",
    7: "rotate-right",
}


class SysexError(FormatError):
    """A SysEx message that does not follow FORMAT.md §4; names the byte offset."""


@dataclass
class SysexMessage:
    """One decoded message: ``kind`` (e.g. ``"wavesample_dump"``), the command byte, the
    decoded ``fields`` and, for dumps, the de-nybblized payload ``data``."""

    kind: str
    cmd: int
    fields: dict[str, Any] = field(default_factory=dict)
    data: bytes | None = None
    offset: int | None = None  # where its F0 lies in the stream it was read from, if known

    def to_dict(self, *, with_data: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (``data`` summarised by length and SHA-256 unless asked)."""
        out: dict[str, Any] = {"kind": self.kind, "cmd": self.cmd}
        if self.offset is not None:
            out["offset"] = self.offset
        out.update(self.fields)
        if self.data is not None:
            out["data_length"] = len(self.data)
            out["data_sha256"] = hashlib.sha256(self.data).hexdigest()
            if with_data:
                out["data_hex"] = self.data.hex()
        return out


# --------------------------------------------------------------------------- nybbles


_LOW_NYBBLE = bytes(b & 0x0F for b in range(256))
_HIGH_NYBBLE = bytes(b >> 4 for b in range(256))
_SHIFT_LEFT_4 = bytes((b << 4) & 0xFF for b in range(256))
_NOT_NYBBLE = re.compile(rb"[\x10-\xff]")
_HIGH_BIT = re.compile(rb"[\x80-\xff]")


def nybblize(data: bytes) -> bytes:
    """Each byte → two bytes ``0000LLLL 0000HHHH`` (low nybble first)."""
    data = bytes(data)
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_LOW_NYBBLE)
    out[1::2] = data.translate(_HIGH_NYBBLE)
    return bytes(out)


def denybblize(nybbles: bytes | bytearray | memoryview, offset: int = 0) -> bytes:
    """Inverse of :func:`nybblize`. ``offset`` is where ``nybbles`` start in the message,
    for error messages. Raises :class:`SysexError` on an odd length or a nybble ≥ 0x10."""
    nyb = bytes(nybbles)
    if len(nyb) % 2:
        raise SysexError(f"odd number of nybbles ({len(nyb)}); expected pairs (low, high)", offset)
    bad = _NOT_NYBBLE.search(nyb)
    if bad is not None:
        i = bad.start()
        raise SysexError(f"byte 0x{nyb[i]:02X} is not a nybble; expected 0x00..0x0F", offset + i)
    lo = nyb[0::2]
    hi = nyb[1::2].translate(_SHIFT_LEFT_4)
    # high << 4 and low share no bit, so one big-integer OR joins every pair at C speed
    return (int.from_bytes(hi, "big") | int.from_bytes(lo, "big")).to_bytes(len(lo), "big")


def _checksum(values: Iterable[int]) -> int:
    return sum(values) & 0x7F


def _addr_nybbles(value: int) -> bytes:
    """16-bit address → 4 nybbles, least significant first."""
    return bytes((value >> s) & 0x0F for s in (0, 4, 8, 12))


def _addr_value(nyb: bytes) -> int:
    return nyb[0] | (nyb[1] << 4) | (nyb[2] << 8) | (nyb[3] << 12)


def _frame(cmd: int, body: bytes | Sequence[int] = b"") -> bytes:
    body = bytes(body)
    for i, b in enumerate(body):
        if b > 0x7F:
            raise SysexError(f"data byte 0x{b:02X} ≥ 0x80 cannot travel in SysEx", 4 + i)
    return HEADER + bytes([cmd]) + body + bytes([EOX])


def _half_name(upper: bool) -> str:
    return "upper" if upper else "lower"


def _parse_half(half: str) -> bool:
    h = str(half).lower()
    if h in ("lower", "l"):
        return False
    if h in ("upper", "u"):
        return True
    raise SysexError(f"half {half!r}: expected 'lower' or 'upper'")


# --------------------------------------------------------------------------- encoders


def encode_config_request() -> bytes:
    """0x00: ask for the configuration parameters (5 bytes)."""
    return _frame(CMD_CONFIG_REQUEST)


def encode_keys(codes: Sequence[int | str]) -> bytes:
    """0x01: press 1..5 front-panel keys (codes or names of :data:`KEY_CODES`), then 0x7F."""
    resolved: list[int] = []
    for c in codes:
        if isinstance(c, str):
            name = c.strip().lower()
            if name not in KEY_CODES:
                raise SysexError(f"unknown key {c!r}; known keys: {', '.join(KEY_CODES)}")
            resolved.append(KEY_CODES[name])
        else:
            if int(c) not in KEY_NAMES:
                raise SysexError(f"key code {c!r} is not a Mirage key code (0x00..0x17)")
            resolved.append(int(c))
    if not 1 <= len(resolved) <= MAX_KEYS:
        raise SysexError(f"{len(resolved)} key codes; a key message holds 1 to {MAX_KEYS}")
    return _frame(CMD_KEYS, bytes(resolved) + bytes([KEYS_END]))


def select_wavesample_keys(half: str, number: int) -> list[int]:
    """Key codes that select wavesample ``number`` (1..8) of ``half`` under MASOS.

    FORMAT.md §4: under MASOS, key 0x15 followed by a digit selects a lower wavesample and
    0x14 followed by a digit an upper one. The digit is the 1-based wavesample number, as
    the Mirage Sound Editor sends it (``SampleNumber + 1``). UNCERTAIN: that editor sends
    the two keys as two separate 0x01 messages; :func:`encode_keys` of this list sends them
    in one. This is the only place that knows the sequence.
    """
    upper = _parse_half(half)
    if not 1 <= int(number) <= 8:
        raise SysexError(f"wavesample number {number}: expected 1..8")
    return [0x14 if upper else 0x15, int(number)]


def encode_config_dump(data29: bytes) -> bytes:
    """0x02: the 29 configuration bytes, nybblized (63 bytes)."""
    data29 = bytes(data29)
    if len(data29) != CONFIG_SIZE:
        raise SysexError(f"configuration data is {len(data29)} bytes; expected {CONFIG_SIZE}")
    return _frame(CMD_CONFIG_DUMP, nybblize(data29))


def encode_program_request(upper: bool) -> bytes:
    """0x03 / 0x13: ask for the lower / upper program dump."""
    return _frame(CMD_PROGRAM_REQUEST | (UPPER_FLAG if upper else 0))


def encode_wavesample_request() -> bytes:
    """0x04: ask for the currently selected wavesample."""
    return _frame(CMD_WAVESAMPLE_REQUEST)


def encode_program_dump(block: bytes, upper: bool) -> bytes:
    """0x05 / 0x15: the 625-byte sound parameter block, nybblized (1,255 bytes, no checksum)."""
    block = bytes(block)
    if len(block) != PROGRAM_BLOCK_SIZE:
        raise SysexError(f"program block is {len(block)} bytes; expected {PROGRAM_BLOCK_SIZE}")
    return _frame(CMD_PROGRAM_DUMP | (UPPER_FLAG if upper else 0), nybblize(block))


def encode_wavesample_dump(data: bytes) -> bytes:
    """0x06: one wavesample of whole pages (1..255 pages), page count (2 nybbles, low
    first), the data nybblized low first, and the checksum = (page-count nybbles + all data
    nybbles) mod 128. Total length 8 + 512·pages.

    More than 255 pages is refused: the page count is one byte and a 256-page dump is
    UNCERTAIN (FORMAT.md §4). Splitting is no answer, since every 0x06 dump replaces the
    whole selected wavesample; put a 64 KB wave into a disk image instead.
    """
    data = bytes(data)
    if not data:
        raise SysexError("wavesample is empty; expected 1..255 whole pages of 256 bytes")
    if len(data) % PAGE:
        raise SysexError(
            f"wavesample is {len(data)} bytes, not whole pages of {PAGE}; pad it to "
            f"{-(-len(data) // PAGE) * PAGE} bytes with 0x80 first"
        )
    pages = len(data) // PAGE
    if pages > MAX_DUMP_PAGES:
        raise SysexError(
            f"wavesample is {pages} pages ({len(data)} bytes); one SysEx dump carries at most "
            f"{MAX_DUMP_PAGES} pages ({MAX_DUMP_PAGES * PAGE} bytes) because the page count is "
            "one byte (a 256-page dump is UNCERTAIN, FORMAT.md §4): shorten it, or write it into a "
            "disk image"
        )
    count = nybblize(bytes([pages]))
    payload = nybblize(data)
    csum = _checksum(count) + _checksum(payload)
    return _frame(CMD_WAVESAMPLE_DUMP, count + payload + bytes([csum & 0x7F]))


def _status(cmd: int, upper: bool, number: int) -> bytes:
    if not 0 <= number <= 0x0F:
        raise SysexError(f"number {number}: expected 0..15")
    return _frame(cmd, bytes([(UPPER_FLAG if upper else 0) | number]))


def encode_program_status(upper: bool, number: int) -> bytes:
    """0x07: program status (high nybble half, low nybble number, as stored)."""
    return _status(CMD_PROGRAM_STATUS, upper, number)


def encode_wavesample_status(upper: bool, number: int) -> bytes:
    """0x08: wavesample status (high nybble half, low nybble number, as stored)."""
    return _status(CMD_WAVESAMPLE_STATUS, upper, number)


def encode_ack() -> bytes:
    """0x09: checksum good."""
    return _frame(CMD_ACK)


def encode_nak() -> bytes:
    """0x0A: checksum bad."""
    return _frame(CMD_NAK)


def _check_addr(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise SysexError(f"{name} address {value}: expected 0..65535")


def _start_nybbles(start: int, upper: bool) -> bytes:
    nyb = bytearray(_addr_nybbles(start))
    if upper:
        nyb[0] |= UPPER_FLAG
    return bytes(nyb)


HALF_END = 0x10000  # one past the last byte of a 64 KB half


def absolute_end_nybbles(end: int) -> bytes:
    """The 4 end-address nybbles of a 0x0B/0x0C message.

    FORMAT.md gives a 0x0C message 14 + 2·(end − start) bytes, so ``end`` is one past the last
    byte, and the last byte of a half (0xFFFF) needs end = 0x10000, which 16 bits cannot hold.
    UNCERTAIN choice, isolated here and in :func:`_absolute_end`: it travels as 0x0000 (the
    16-bit wrap a 6809 loop comparing its pointer with the end address would make). Nothing
    else ever encodes an end of 0 with a start above 0.
    """
    if not 0 <= end <= HALF_END:
        raise SysexError(f"end address {end}: expected 0..{HALF_END}")
    return _addr_nybbles(end & 0xFFFF)


def _absolute_end(start: int, end_field: int) -> int:
    """The end address an end field means: 0 after a start above 0 is 0x10000 (see
    :func:`absolute_end_nybbles`)."""
    return HALF_END if end_field == 0 and start > 0 else end_field


def encode_absolute_request(start: int, end: int, upper: bool = False) -> bytes:
    """0x0B: ask for bytes start..end−1 of a half (4+4 address nybbles, LS first; 0x10 in the
    first nybble = upper half; end 0x10000 = the half's last byte, sent as 0x0000)."""
    _check_addr("start", start)
    if end < start:
        raise SysexError(f"end address {end} lies before the start address {start}")
    return _frame(CMD_ABSOLUTE_REQUEST, _start_nybbles(start, upper) + absolute_end_nybbles(end))


def encode_absolute_dump(start: int, data: bytes, upper: bool = False) -> bytes:
    """0x0C: data at absolute address ``start`` (end = start + len(data), at most 0x10000);
    checksum = (the 8 address nybbles as sent + data nybbles) mod 128. Length 14 + 2·len(data)."""
    data = bytes(data)
    end = start + len(data)
    _check_addr("start", start)
    addr = _start_nybbles(start, upper) + absolute_end_nybbles(end)
    payload = nybblize(data)
    csum = (_checksum(addr) + _checksum(payload)) & 0x7F
    return _frame(CMD_ABSOLUTE_DUMP, addr + payload + bytes([csum]))


def _param_change(cmd: int, upper: bool, number: int, parameter: int, value: int) -> bytes:
    if not 0 <= number <= 0x0F:
        raise SysexError(f"number {number}: expected 0..15")
    if not 0 <= parameter <= 0x7F:
        raise SysexError(f"parameter {parameter}: expected 0..127")
    if not 0 <= value <= 0xFF:
        raise SysexError(f"value {value}: expected 0..255")
    num = (UPPER_FLAG if upper else 0) | number
    return _frame(cmd, bytes([num, parameter, value & 0x0F, value >> 4]))


def encode_program_parameter(upper: bool, number: int, parameter: int, value: int) -> bytes:
    """0x0D: program parameter change (number byte, parameter, value LS, MS nybble)."""
    return _param_change(CMD_PROGRAM_PARAMETER, upper, number, parameter, value)


def encode_wavesample_parameter(upper: bool, number: int, parameter: int, value: int) -> bytes:
    """0x0E: wavesample parameter change (number byte, parameter, value LS, MS nybble)."""
    return _param_change(CMD_WAVESAMPLE_PARAMETER, upper, number, parameter, value)


def encode_wavesample_function(
    function: int,
    src_start: int,
    src_end: int,
    scale_start: int = 0,
    scale_end: int = 0,
    dest_start: int = 0,
    *,
    upper: bool = False,
    dest_upper: bool = False,
) -> bytes:
    """0x0F: wavesample manipulation (22 bytes): function byte (low nybble, 0x10 = upper),
    source start/end (4 nybbles each), scale start/end factors (2 nybbles each), destination
    start (4 nybbles, 0x10 in the last = upper) [S11 da_mirage_sx.c]."""
    if function not in WAVESAMPLE_FUNCTIONS:
        raise SysexError(f"function {function}: expected one of {sorted(WAVESAMPLE_FUNCTIONS)}")
    for name, v in (
        ("source start", src_start),
        ("source end", src_end),
        ("destination start", dest_start),
    ):
        _check_addr(name, v)
    for name, v in (("scale start", scale_start), ("scale end", scale_end)):
        if not 0 <= v <= 0xFF:
            raise SysexError(f"{name} factor {v}: expected 0..255")
    dest = bytearray(_addr_nybbles(dest_start))
    if dest_upper:
        dest[3] |= UPPER_FLAG
    body = (
        bytes([(UPPER_FLAG if upper else 0) | function])
        + _addr_nybbles(src_start)
        + _addr_nybbles(src_end)
        + nybblize(bytes([scale_start]))
        + nybblize(bytes([scale_end]))
        + bytes(dest)
    )
    return _frame(CMD_WAVESAMPLE_FUNCTION, body)


# --------------------------------------------------------------------------- decoding


def _expect_len(msg: bytes, expected: int, what: str) -> None:
    if len(msg) != expected:
        where = min(len(msg), expected) - 1
        raise SysexError(f"{what} is {len(msg)} bytes long; expected {expected}", max(where, 0))


def _nyb(msg: bytes, start: int, count: int) -> bytes:
    part = msg[start : start + count]
    for i, b in enumerate(part):
        if b > 0x0F:
            raise SysexError(f"byte 0x{b:02X} is not a nybble; expected 0x00..0x0F", start + i)
    return part


def _dec_simple(kind: str) -> Callable[[bytes, int], SysexMessage]:
    def dec(msg: bytes, cmd: int) -> SysexMessage:
        if len(msg) != 5:  # (the message text only when it is needed)
            _expect_len(msg, 5, f"{kind} message (0x{cmd:02X})")
        fields: dict[str, Any] = {}
        if cmd in (CMD_PROGRAM_REQUEST, CMD_PROGRAM_REQUEST | UPPER_FLAG):
            fields["half"] = _half_name(bool(cmd & UPPER_FLAG))
        return SysexMessage(kind, cmd, fields)

    return dec


def _dec_keys(msg: bytes, cmd: int) -> SysexMessage:
    body = msg[4:-1]
    if KEYS_END not in body:
        raise SysexError("key message has no end code 0x7F before F7", len(msg) - 1)
    end = body.index(KEYS_END)
    if end + 1 != len(body):
        raise SysexError("bytes after the key end code 0x7F; expected F7", 4 + end + 1)
    codes = list(body[:end])
    if not 1 <= len(codes) <= MAX_KEYS:
        raise SysexError(f"key message holds {len(codes)} key codes; expected 1..{MAX_KEYS}", 4)
    names = [KEY_NAMES.get(c, f"unknown-0x{c:02X}") for c in codes]
    return SysexMessage("keys", cmd, {"codes": codes, "keys": names})


def _dec_config_dump(msg: bytes, cmd: int) -> SysexMessage:
    _expect_len(msg, 5 + 2 * CONFIG_SIZE, "configuration dump (0x02)")
    data = denybblize(msg[4:-1], 4)
    return SysexMessage("config_dump", cmd, {"config": dict(zip(CONFIG_FIELDS, data))}, data)


def _dec_program_dump(msg: bytes, cmd: int) -> SysexMessage:
    _expect_len(msg, 5 + 2 * PROGRAM_BLOCK_SIZE, f"program dump (0x{cmd:02X})")
    data = denybblize(msg[4:-1], 4)
    params = parse_sound_params(data)
    fields = {
        "half": _half_name(bool(cmd & UPPER_FLAG)),
        "revision": params.revision,
        "wavesamples": [w.to_dict() for w in params.wavesamples],
        "programs": [p.to_dict() for p in params.programs],
    }
    return SysexMessage("program_dump", cmd, fields, data)


def _dec_wavesample_dump(msg: bytes, cmd: int) -> SysexMessage:
    if len(msg) < 8 + PAGE * 2:
        raise SysexError(
            f"wavesample dump is {len(msg)} bytes long; expected at least {8 + 2 * PAGE} "
            "(one page)",
            len(msg) - 1,
        )
    count_nyb = _nyb(msg, 4, 2)
    field_value = count_nyb[0] | (count_nyb[1] << 4)
    pages = field_value
    if field_value == 0:
        # UNCERTAIN reading (FORMAT.md §4): one editor treats 0 as 64 KB. Accept it only
        # when the message length says exactly 256 pages.
        if len(msg) == 8 + 2 * PAGE * 256:
            pages = 256
        else:
            raise SysexError("wavesample dump page count is 0; expected 1..255", 4)
    expected = 8 + 2 * PAGE * pages
    if len(msg) != expected:
        raise SysexError(
            f"wavesample dump of {pages} pages must be {expected} bytes long; it is {len(msg)}",
            min(len(msg), expected) - 1,
        )
    payload = msg[6:-2]
    data = denybblize(payload, 6)
    csum_at = len(msg) - 2
    want = (_checksum(count_nyb) + _checksum(payload)) & 0x7F
    if msg[csum_at] != want:
        raise SysexError(
            f"wavesample dump checksum is 0x{msg[csum_at]:02X}; expected 0x{want:02X}", csum_at
        )
    fields = {"pages": pages, "page_count_field": field_value, "checksum": want}
    return SysexMessage("wavesample_dump", cmd, fields, data)


def _dec_status(kind: str) -> Callable[[bytes, int], SysexMessage]:
    def dec(msg: bytes, cmd: int) -> SysexMessage:
        if len(msg) != 6:  # (the message text only when it is needed)
            _expect_len(msg, 6, f"{kind} message (0x{cmd:02X})")
        b = msg[4]
        if b > 0x1F:
            raise SysexError(
                f"status byte 0x{b:02X}: expected 0x00..0x1F (0x10 = upper, low nybble = number)", 4
            )
        return SysexMessage(
            kind, cmd, {"half": _half_name(bool(b & UPPER_FLAG)), "number": b & 0x0F, "raw": b}
        )

    return dec


def _addr_field(msg: bytes, start: int, flag_at: int | None) -> tuple[int, bool]:
    part = bytearray(msg[start : start + 4])
    upper = False
    if flag_at is not None and part[flag_at] & UPPER_FLAG:
        upper = True
        part[flag_at] &= 0x0F
    for i, b in enumerate(part):
        if b > 0x0F:
            raise SysexError(
                f"address byte 0x{msg[start + i]:02X} is not a nybble; expected 0x00..0x0F"
                + (" (or 0x10..0x1F for the upper flag)" if i == flag_at else ""),
                start + i,
            )
    return _addr_value(bytes(part)), upper


def _dec_absolute_request(msg: bytes, cmd: int) -> SysexMessage:
    _expect_len(msg, 13, "absolute-address dump request (0x0B)")
    start, upper = _addr_field(msg, 4, 0)
    end_field, _ = _addr_field(msg, 8, None)
    end = _absolute_end(start, end_field)
    if end < start:
        raise SysexError(f"absolute-address request end {end} lies before start {start}", 8)
    return SysexMessage(
        "absolute_request", cmd, {"half": _half_name(upper), "start": start, "end": end}
    )


def _dec_absolute_dump(msg: bytes, cmd: int) -> SysexMessage:
    if len(msg) < 14:
        raise SysexError(
            f"absolute-address dump is {len(msg)} bytes long; expected at least 14", len(msg) - 1
        )
    start, upper = _addr_field(msg, 4, 0)
    end_field, _ = _addr_field(msg, 8, None)
    end = _absolute_end(start, end_field)
    if end < start:
        raise SysexError(f"absolute-address dump end {end} lies before start {start}", 8)
    expected = 14 + 2 * (end - start)
    if len(msg) != expected:
        raise SysexError(
            f"absolute-address dump of {end - start} bytes must be {expected} bytes long; it is "
            f"{len(msg)}",
            min(len(msg), expected) - 1,
        )
    payload = msg[12:-2]
    data = denybblize(payload, 12)
    csum_at = len(msg) - 2
    want = (_checksum(msg[4:12]) + _checksum(payload)) & 0x7F
    if msg[csum_at] != want:
        raise SysexError(
            f"absolute-address dump checksum is 0x{msg[csum_at]:02X}; expected 0x{want:02X}",
            csum_at,
        )
    return SysexMessage(
        "absolute_dump",
        cmd,
        {"half": _half_name(upper), "start": start, "end": end, "checksum": want},
        data,
    )


def _dec_param(kind: str) -> Callable[[bytes, int], SysexMessage]:
    def dec(msg: bytes, cmd: int) -> SysexMessage:
        if len(msg) != 9:  # (the message text only when it is needed)
            _expect_len(msg, 9, f"{kind} message (0x{cmd:02X})")
        num = msg[4]
        if num > 0x1F:
            raise SysexError(
                f"number byte 0x{num:02X}: expected 0x00..0x1F (0x10 = upper, low nybble = number)",
                4,
            )
        lo, hi = _nyb(msg, 6, 2)
        return SysexMessage(
            kind,
            cmd,
            {
                "half": _half_name(bool(num & UPPER_FLAG)),
                "number": num & 0x0F,
                "parameter": msg[5],
                "value": lo | (hi << 4),
            },
        )

    return dec


def _dec_function(msg: bytes, cmd: int) -> SysexMessage:
    _expect_len(msg, 22, "wavesample manipulation (0x0F)")
    fn = msg[4]
    if fn > 0x1F:
        raise SysexError(
            f"function byte 0x{fn:02X}: expected 0x00..0x1F (0x10 = upper, low nybble = function)",
            4,
        )
    src_start, _ = _addr_field(msg, 5, None)
    src_end, _ = _addr_field(msg, 9, None)
    s0 = _nyb(msg, 13, 2)
    s1 = _nyb(msg, 15, 2)
    dest, dest_upper = _addr_field(msg, 17, 3)
    code = fn & 0x0F
    return SysexMessage(
        "wavesample_function",
        cmd,
        {
            "half": _half_name(bool(fn & UPPER_FLAG)),
            "function": code,
            "function_name": WAVESAMPLE_FUNCTIONS.get(code, f"unknown-{code}"),
            "src_start": src_start,
            "src_end": src_end,
            "scale_start": s0[0] | (s0[1] << 4),
            "scale_end": s1[0] | (s1[1] << 4),
            "dest_start": dest,
            "dest_half": _half_name(dest_upper),
        },
    )


_LAYOUT: dict[int, Callable[[bytes, int], SysexMessage]] = {
    CMD_CONFIG_REQUEST: _dec_simple("config_request"),
    CMD_KEYS: _dec_keys,
    CMD_CONFIG_DUMP: _dec_config_dump,
    CMD_PROGRAM_REQUEST: _dec_simple("program_request"),
    CMD_PROGRAM_REQUEST | UPPER_FLAG: _dec_simple("program_request"),
    CMD_WAVESAMPLE_REQUEST: _dec_simple("wavesample_request"),
    CMD_PROGRAM_DUMP: _dec_program_dump,
    CMD_PROGRAM_DUMP | UPPER_FLAG: _dec_program_dump,
    CMD_WAVESAMPLE_DUMP: _dec_wavesample_dump,
    CMD_PROGRAM_STATUS: _dec_status("program_status"),
    CMD_WAVESAMPLE_STATUS: _dec_status("wavesample_status"),
    CMD_ACK: _dec_simple("ack"),
    CMD_NAK: _dec_simple("nak"),
    CMD_ABSOLUTE_REQUEST: _dec_absolute_request,
    CMD_ABSOLUTE_DUMP: _dec_absolute_dump,
    CMD_PROGRAM_PARAMETER: _dec_param("program_parameter"),
    CMD_WAVESAMPLE_PARAMETER: _dec_param("wavesample_parameter"),
    CMD_WAVESAMPLE_FUNCTION: _dec_function,
}


def check_framing(msg: bytes) -> None:
    """Framing, manufacturer, model, and every inner byte < 0x80."""
    if len(msg) < 5:
        raise SysexError(
            f"message is {len(msg)} bytes long; the shortest Mirage message is 5 (F0 0F 01 cmd F7)",
            max(len(msg) - 1, 0),
        )
    if msg[0] != SOX:
        raise SysexError(f"message starts with 0x{msg[0]:02X}; expected F0", 0)
    if msg[-1] != EOX:
        raise SysexError(
            f"message ends with 0x{msg[-1]:02X}; expected F7 (truncated?)", len(msg) - 1
        )
    if msg[1] != MANUFACTURER:
        raise SysexError(f"manufacturer byte 0x{msg[1]:02X}; expected 0x0F (Ensoniq)", 1)
    if msg[2] != MODEL:
        raise SysexError(f"model byte 0x{msg[2]:02X}; expected 0x01 (Mirage)", 2)
    bad = _HIGH_BIT.search(msg, 3, len(msg) - 1)
    if bad is not None:
        i = bad.start()
        raise SysexError(f"data byte 0x{msg[i]:02X} ≥ 0x80; expected 0x00..0x7F", i)


def decode(msg: bytes) -> SysexMessage:
    """Check and decode one whole message ``F0 … F7``."""
    msg = bytes(msg)
    check_framing(msg)
    cmd = msg[3]
    dec = _LAYOUT.get(cmd)
    if dec is None:
        raise SysexError(f"command byte 0x{cmd:02X} is not a Mirage command (FORMAT.md §4)", 3)
    return dec(msg, cmd)


def split_messages(stream: bytes) -> list[bytes]:
    """Cut back-to-back ``F0 … F7`` messages out of ``stream`` (a ``.syx`` file's bytes).

    Raises :class:`SysexError` on bytes outside a message, an F0 inside one, or a missing
    final F7; offsets are positions in ``stream``.
    """
    stream = bytes(stream)
    out: list[bytes] = []
    i = 0
    n = len(stream)
    if n == 0:
        raise SysexError("no SysEx messages (empty input)")
    while i < n:
        if stream[i] != SOX:
            raise SysexError(f"byte 0x{stream[i]:02X} outside a message; expected F0", i)
        m = _SOX_OR_EOX.search(stream, i + 1)
        if m is None:
            raise SysexError(f"message starting at byte {i} has no F7 (truncated)", n - 1)
        j = m.start()
        if stream[j] == SOX:
            raise SysexError("F0 inside a message; the message before it has no F7", j)
        out.append(stream[i : j + 1])
        i = j + 1
    return out


_SOX_OR_EOX = re.compile(rb"[\xf0\xf7]")


def decode_stream(stream: bytes) -> list[SysexMessage]:
    """Split and decode every message; errors carry offsets within ``stream``."""
    out = []
    pos = 0
    for msg in split_messages(stream):
        try:
            out.append(decode(msg))
        except SysexError as exc:
            off = None if exc.offset is None else pos + exc.offset
            raise SysexError(f"message {len(out) + 1}: {exc.reason}", off) from None
        pos += len(msg)
    return out


# --------------------------------------------------------------------------- streams

#: The longest Mirage message: a 0x0C dump of a whole 64 KB half (14 + 2 × 65,535 bytes).
#: A wavesample dump of 256 pages (8 + 512 × 256) is 4 bytes shorter. A message still without
#: F7 past this length cannot be the Mirage's, so the scanner never holds more than this.
MAX_MESSAGE = 14 + 2 * 0xFFFF

_REALTIME = bytes(range(0xF8, 0x100))  # MIDI real-time bytes: allowed anywhere, even in SysEx
_STATUS_NOT_REALTIME = re.compile(rb"[\x80-\xf7]")  # what ends another maker's message
_CLEAN_MESSAGE = re.compile(rb"\xf0\x0f\x01[\x00-\x7f]*\xf7")  # a whole one, nothing inside

_OUT, _HEAD, _MIRAGE, _OTHER = range(4)


@dataclass
class ScanStats:
    """What a scan read and what it skipped (every byte that is not part of a Mirage message).

    ``skipped_bytes`` = ``other_message_bytes`` (SysEx of other manufacturers or instruments)
    + ``realtime_bytes`` (0xF8..0xFF, anywhere, also inside Mirage messages) + ``stray_bytes``
    (anything else outside a message), and ``bytes`` = the Mirage messages' bytes +
    ``skipped_bytes``.
    """

    bytes: int = 0
    messages: int = 0
    skipped_messages: int = 0
    skipped_bytes: int = 0
    other_message_bytes: int = 0
    realtime_bytes: int = 0
    stray_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str | None:
        """One sentence on what was skipped, or None when nothing was."""
        if not self.skipped_bytes:
            return None
        parts = []
        if self.skipped_messages:
            parts.append(
                f"{_plural(self.skipped_messages, 'SysEx message')} of another "
                f"manufacturer or instrument ({self.other_message_bytes:,} bytes)"
            )
        if self.realtime_bytes:
            parts.append(f"{_plural(self.realtime_bytes, 'MIDI real-time byte')} (0xF8..0xFF)")
        if self.stray_bytes:
            parts.append(f"{_plural(self.stray_bytes, 'stray byte')} outside any message")
        return (
            f"skipped {_plural(self.skipped_bytes, 'byte')} that are not the Mirage's: "
            + ", ".join(parts)
        )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@dataclass(slots=True)
class RawMessage:
    """One Mirage message cut out of a stream: ``data`` is ``F0 0F 01 … F7`` without the
    real-time bytes that were inside it; ``offset`` is where its F0 lies in the stream."""

    offset: int
    data: bytes
    number: int = 0  # its place among the Mirage messages of the stream, from 1
    _at: list[int] | None = None  # indexes in data where real-time bytes were dropped
    _dropped: list[int] | None = None  # real-time bytes dropped up to that index (running sum)

    def stream_offset(self, index: int) -> int:
        """The stream offset of ``data[index]`` (real-time bytes dropped before it counted)."""
        before = 0
        if self._at:
            k = bisect_right(self._at, index)
            if k:
                before = self._dropped[k - 1]
        return self.offset + index + before


class MessageScanner:
    """Cut the Mirage's messages out of a byte stream given in pieces (:meth:`feed`, then
    :meth:`finish`), skipping and counting in :attr:`stats` what is not the Mirage's.

    Raises :class:`SysexError` (offsets in the stream) for a Mirage message (``F0 0F 01``)
    with a status byte inside (an F0, or 0x80..0xF6), longer than :data:`MAX_MESSAGE`, or
    cut off by the end of the stream. Memory: one message at most (:data:`MAX_MESSAGE`).
    """

    def __init__(self, stats: ScanStats | None = None):
        self.stats = stats if stats is not None else ScanStats()
        self._pos = 0  # stream offset of the next byte fed
        self._state = _OUT
        self._buf = bytearray()  # the message being collected, real-time bytes dropped
        self._start = 0  # stream offset of its F0
        self._at: list[int] = []
        self._dropped: list[int] = []

    # -- helpers
    def _skip(self, chunk: bytes, i: int, j: int, in_message: bool) -> None:
        if j <= i:
            return
        seg = chunk[i:j]
        rt = len(seg) - len(seg.translate(None, _REALTIME))
        st = self.stats
        st.skipped_bytes += len(seg)
        st.realtime_bytes += rt
        if in_message:
            st.other_message_bytes += len(seg) - rt
        else:
            st.stray_bytes += len(seg) - rt

    def _drop_realtime(self) -> None:
        self.stats.skipped_bytes += 1
        self.stats.realtime_bytes += 1
        here = len(self._buf)
        if self._at and self._at[-1] == here:
            self._dropped[-1] += 1
        else:
            self._at.append(here)
            self._dropped.append((self._dropped[-1] if self._dropped else 0) + 1)

    def _not_mirage(self) -> None:
        """The message being collected belongs to someone else: count it, skip the rest."""
        st = self.stats
        st.skipped_messages += 1
        st.skipped_bytes += len(self._buf)
        st.other_message_bytes += len(self._buf)
        self._buf = bytearray()
        self._at, self._dropped = [], []

    def _emit(self) -> RawMessage:
        self.stats.messages += 1
        raw = RawMessage(
            self._start,
            bytes(self._buf),
            self.stats.messages,
            self._at or None,
            self._dropped or None,
        )
        self._buf = bytearray()
        self._at, self._dropped = [], []
        self._state = _OUT
        return raw

    def _where(self) -> str:
        return f"message {self.stats.messages + 1} (from byte {self._start})"

    # -- the scan: one method per state, each returns where the scan goes on in the chunk
    def feed(self, chunk: bytes) -> Iterator[RawMessage]:
        """Scan the next piece of the stream; yields the Mirage messages it completes. Take
        every one before feeding the next piece (the scan advances as they are taken)."""
        chunk = bytes(chunk)
        base = self._pos
        n = len(chunk)
        i = 0
        while i < n:
            state = self._state
            if state == _OUT:
                i = yield from self._outside(chunk, i, base)
            elif state == _HEAD:
                i = self._head(chunk, i)
            elif state == _OTHER:
                i = self._other(chunk, i)
            else:
                i = yield from self._mirage(chunk, i, base)
        self._pos += n
        self.stats.bytes += n

    def _outside(self, chunk: bytes, i: int, base: int) -> Generator[RawMessage, None, int]:
        """Outside any message: whole clean messages at once, else skip to the next F0."""
        stats = self.stats
        clean = _CLEAN_MESSAGE.match
        n = len(chunk)
        m = clean(chunk, i)
        while m is not None:  # fast path: whole clean messages, back to back
            end = m.end()
            if end - i > MAX_MESSAGE:
                break
            stats.messages += 1
            yield RawMessage(base + i, chunk[i:end], stats.messages)
            i = end
            m = clean(chunk, i)
        if i >= n:
            return n
        j = chunk.find(b"\xf0", i)
        end = n if j < 0 else j
        self._skip(chunk, i, end, False)
        if j < 0:
            return n
        if j > i and clean(chunk, j) is not None:
            return j  # the fast path takes it
        self._start = base + j
        self._buf = bytearray(b"\xf0")
        self._state = _HEAD
        return j + 1

    def _head(self, chunk: bytes, i: int) -> int:
        """F0 seen; is it F0 0F 01?"""
        b = chunk[i]
        if b >= 0xF8:
            self._drop_realtime()
            return i + 1
        if b >= 0x80:  # ended before its maker was known: not the Mirage's
            self._not_mirage()
            self._state = _OUT
            if b == EOX:
                self.stats.skipped_bytes += 1
                self.stats.other_message_bytes += 1
                return i + 1
            return i
        self._buf.append(b)
        k = len(self._buf)
        if (k == 2 and b != MANUFACTURER) or (k == 3 and b != MODEL):
            self._not_mirage()
            self._state = _OTHER
        elif k == 3:
            self._state = _MIRAGE
        return i + 1

    def _other(self, chunk: bytes, i: int) -> int:
        """Another maker's message: skip to its end."""
        n = len(chunk)
        m = _STATUS_NOT_REALTIME.search(chunk, i)
        end = n if m is None else m.start()
        self._skip(chunk, i, end, True)
        if m is None:
            return n
        self._state = _OUT
        if chunk[end] == EOX:
            self._skip(chunk, end, end + 1, True)
            return end + 1
        return end  # F0 or a status byte ends it without F7: scanned again as outside

    def _mirage(self, chunk: bytes, i: int, base: int) -> Generator[RawMessage, None, int]:
        """A Mirage message: collect up to F7."""
        n = len(chunk)
        m = _HIGH_BIT.search(chunk, i)
        end = n if m is None else m.start()
        had = len(self._buf)
        if had + (end - i) >= MAX_MESSAGE:  # and the F7 still to come
            at = base + i + (MAX_MESSAGE - had)
            raise SysexError(
                f"{self._where()} is longer than any Mirage message "
                f"({MAX_MESSAGE:,} bytes) and has no F7",
                at,
            )
        self._buf += chunk[i:end]
        if m is None:
            return n
        b = chunk[end]
        if b == EOX:
            self._buf.append(b)
            yield self._emit()
        elif b >= 0xF8:
            self._drop_realtime()
        elif b == SOX:
            raise SysexError(
                f"{self._where()}: F0 inside a message; the message before it has no F7",
                base + end,
            )
        else:
            raise SysexError(
                f"{self._where()}: data byte 0x{b:02X} ≥ 0x80; expected 0x00..0x7F",
                base + end,
            )
        return end + 1

    def finish(self) -> None:
        """End of the stream: a Mirage message still open (or an F0 that may start one) is
        truncated, an error; another maker's unfinished message is skipped."""
        if self._state in (_HEAD, _MIRAGE):
            raise SysexError(f"{self._where()} has no F7 (truncated)", max(self._pos - 1, 0))
        if self._state == _OTHER:
            self._state = _OUT


def decode_raw(raw: RawMessage) -> SysexMessage:
    """:func:`decode` one scanned message; errors name the message and the offset in the
    stream."""
    try:
        msg = decode(raw.data)
    except SysexError as exc:
        off = None if exc.offset is None else raw.stream_offset(exc.offset)
        where = f"message {raw.number} (from byte {raw.offset})"
        raise SysexError(f"{where}: {exc.reason}", off) from None
    msg.offset = raw.offset
    return msg


def iter_decode(chunks: Iterable[bytes], stats: ScanStats | None = None) -> Iterator[SysexMessage]:
    """Decode the Mirage's messages of a stream given in pieces, one by one as they complete,
    skipping (and counting in ``stats``) what is not the Mirage's; see :class:`MessageScanner`.
    A malformed Mirage message raises :class:`SysexError` with its offset in the stream."""
    scanner = MessageScanner(stats)
    for chunk in chunks:
        for raw in scanner.feed(chunk):
            yield decode_raw(raw)
    scanner.finish()


def decode_lenient(stream: bytes, stats: ScanStats | None = None) -> list[SysexMessage]:
    """:func:`iter_decode` of one bytes object, as a list."""
    return list(iter_decode([stream], stats))


def wire_seconds(nbytes: int, baud: int = 31250) -> float:
    """Time the bytes take on a MIDI wire (10 bits per byte)."""
    return nbytes * 10.0 / baud


def to_mido(msg: bytes):  # -> mido.Message
    """One checked message as a ``mido.Message('sysex')`` (mido holds data without F0/F7)."""
    import mido

    check_framing(bytes(msg))
    return mido.Message("sysex", data=bytes(msg[1:-1]))


def from_mido(message) -> bytes:
    """A ``mido.Message('sysex')`` back to ``F0 … F7`` bytes."""
    if getattr(message, "type", None) != "sysex":
        raise SysexError(f"mido message of type {getattr(message, 'type', None)!r}; expected sysex")
    return bytes(message.bytes())
