"""The 625-byte sound parameter block (FORMAT.md §3.1): control blocks and programs.

The same block sits in sector 0 of a sound's first track on disk and travels as the payload
of a program dump (SysEx 0x05/0x15). Everything is kept byte for byte: parsing never loses
a byte, and :func:`set_program_field` changes exactly one byte of a program block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import FormatError

BLOCK_SIZE = 625
REVISION_OFFSET = 0
CONTROL_OFFSET = 1  # + 24·w
CONTROL_SIZE = 24
SEGMENT_OFFSET = 193  # + 32·w (internal OS data, kept as found)
SEGMENT_SIZE = 32
SPARE_SEGMENT_OFFSET = 449
PROGRAM_OFFSET = 481  # + 36·p
PROGRAM_SIZE = 36
WAVESAMPLES = 8
PROGRAMS = 4

assert PROGRAM_OFFSET + PROGRAMS * PROGRAM_SIZE == BLOCK_SIZE
assert SEGMENT_OFFSET + 8 * SEGMENT_SIZE == SPARE_SEGMENT_OFFSET
assert SPARE_SEGMENT_OFFSET + SEGMENT_SIZE == PROGRAM_OFFSET

#: Wavesample control block: field → byte offset within the 24-byte block.
#: Bytes 0-7 are four big-endian RAM pointers (internal), 21-23 spare.
CONTROL_FIELDS: dict[str, int] = {
    "loop_on": 8,
    "coarse_tune": 9,
    "fine_tune": 10,
    "relative_amplitude": 11,
    "relative_filter": 12,
    "max_filter": 13,
    "top_key": 14,
    "start_page": 15,
    "end_page": 16,  # inclusive
    "loop_start_page": 17,
    "loop_end_page": 18,
    "loop_end_fine": 19,
    "free_run": 20,
}

#: Program parameter block: field → (offset, scale). Scale: internal = panel × scale;
#: None where FORMAT.md gives no scale (then no panel value is reported).
PROGRAM_FIELDS: dict[str, tuple[int, int | None]] = {
    "mono_mode": (0, None),
    "lfo_freq": (1, None),
    "lfo_depth": (2, None),
    "osc_detune": (3, None),
    "osc_mix": (4, 4),
    "mix_velocity": (5, 4),
    "filter_cutoff": (6, 2),
    "resonance": (7, 4),
    "filter_keyboard_tracking": (8, None),
    "initial_wavesample": (10, None),  # 0-based; panel = stored + 1 (see program_panel)
    "mix_mode": (11, None),
    "filter_attack": (12, 1),
    "filter_peak": (13, 1),
    "filter_decay": (14, 1),
    "filter_sustain": (15, 1),
    "filter_release": (16, 1),
    "filter_attack_velocity": (17, 4),
    "filter_peak_velocity": (18, 4),
    "filter_decay_key_scaling": (19, 4),
    "filter_sustain_velocity": (20, 4),
    "filter_release_velocity": (21, 4),
    "amp_attack": (22, 1),
    "amp_peak": (23, 1),
    "amp_decay": (24, 1),
    "amp_sustain": (25, 1),
    "amp_release": (26, 1),
    "amp_attack_velocity": (27, 4),
    "amp_peak_velocity": (28, 4),
    "amp_decay_key_scaling": (29, 4),
    "amp_sustain_velocity": (30, 4),
    "amp_release_velocity": (31, 4),
}


def control_offset(number: int) -> int:
    """Offset in the block of wavesample ``number``'s (1..8) control block."""
    if not 1 <= number <= WAVESAMPLES:
        raise FormatError(f"wavesample number {number}: expected 1..{WAVESAMPLES}")
    return CONTROL_OFFSET + CONTROL_SIZE * (number - 1)


def program_offset(number: int) -> int:
    """Offset in the block of program ``number``'s (1..4) parameter block."""
    if not 1 <= number <= PROGRAMS:
        raise FormatError(f"program number {number}: expected 1..{PROGRAMS}")
    return PROGRAM_OFFSET + PROGRAM_SIZE * (number - 1)


@dataclass(frozen=True)
class WavesampleControl:
    """One 24-byte wavesample control block, integers as stored."""

    number: int  # 1..8
    raw: bytes

    def __getattr__(self, name: str) -> int:
        if name in CONTROL_FIELDS:
            return self.raw[CONTROL_FIELDS[name]]
        raise AttributeError(name)

    @property
    def used(self) -> bool:
        """An end page below the start page means "unused" (FORMAT.md §3.1)."""
        return self.raw[CONTROL_FIELDS["end_page"]] >= self.raw[CONTROL_FIELDS["start_page"]]

    @property
    def pages(self) -> int:
        return self.end_page + 1 - self.start_page if self.used else 0

    @property
    def length(self) -> int:
        """Bytes from start page to end page inclusive: (end + 1 − start) · 256."""
        return self.pages * 256

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "used": self.used}
        order = (
            "start_page",
            "end_page",
            "loop_start_page",
            "loop_end_page",
            "loop_end_fine",
            "loop_on",
            "coarse_tune",
            "fine_tune",
            "top_key",
            "relative_amplitude",
            "relative_filter",
            "max_filter",
            "free_run",
        )
        for name in order:
            out[name] = self.raw[CONTROL_FIELDS[name]]
        return out


@dataclass(frozen=True)
class Program:
    """One 36-byte program parameter block, integers as stored."""

    number: int  # 1..4
    raw: bytes

    def stored(self) -> dict[str, int]:
        return {name: self.raw[off] for name, (off, _scale) in PROGRAM_FIELDS.items()}

    def panel(self) -> dict[str, int]:
        """Panel values where the scale is known: stored // scale (internal = panel × scale);
        the initial wavesample is shown 1-based."""
        out: dict[str, int] = {}
        for name, (off, scale) in PROGRAM_FIELDS.items():
            if name == "initial_wavesample":
                out[name] = self.raw[off] + 1
            elif scale is not None:
                out[name] = self.raw[off] // scale
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, **self.stored(), "panel": self.panel()}


@dataclass(frozen=True)
class SoundParams:
    """The whole 625-byte block, parsed; ``raw`` keeps every byte."""

    raw: bytes

    @property
    def revision(self) -> int:
        return self.raw[REVISION_OFFSET]

    @property
    def wavesamples(self) -> list[WavesampleControl]:
        return [
            WavesampleControl(n, self.raw[control_offset(n) : control_offset(n) + CONTROL_SIZE])
            for n in range(1, WAVESAMPLES + 1)
        ]

    @property
    def programs(self) -> list[Program]:
        return [
            Program(n, self.raw[program_offset(n) : program_offset(n) + PROGRAM_SIZE])
            for n in range(1, PROGRAMS + 1)
        ]

    def wavesample(self, number: int) -> WavesampleControl:
        off = control_offset(number)
        return WavesampleControl(number, self.raw[off : off + CONTROL_SIZE])


def parse_sound_params(block: bytes) -> SoundParams:
    block = bytes(block)
    if len(block) != BLOCK_SIZE:
        raise FormatError(f"sound parameter block is {len(block)} bytes; expected {BLOCK_SIZE}")
    return SoundParams(block)


def set_program_field(block: bytes, program: int, name: str, value: int) -> bytes:
    """A copy of ``block`` with one program field set to ``value`` (as stored, 0..255)."""
    block = bytes(block)
    if len(block) != BLOCK_SIZE:
        raise FormatError(f"sound parameter block is {len(block)} bytes; expected {BLOCK_SIZE}")
    if name not in PROGRAM_FIELDS:
        raise FormatError(
            f"unknown program field {name!r}; known fields: {', '.join(PROGRAM_FIELDS)}"
        )
    if not 0 <= int(value) <= 255:
        raise FormatError(f"program field {name} = {value}: expected 0..255 (the value as stored)")
    off = program_offset(program) + PROGRAM_FIELDS[name][0]
    out = bytearray(block)
    out[off] = int(value)
    return bytes(out)


def make_control_block(
    start_page: int,
    end_page: int,
    *,
    loop_start_page: int | None = None,
    loop_end_page: int | None = None,
    loop_end_fine: int = 0xFF,
    loop_on: int = 0,
    **others: int,
) -> bytes:
    """A 24-byte control block with the given pages (pointers, spare bytes = 0). For the
    synthetic template and tests only: a real Mirage computes its pointers itself."""
    raw = bytearray(CONTROL_SIZE)
    values = {
        "start_page": start_page,
        "end_page": end_page,
        "loop_start_page": start_page if loop_start_page is None else loop_start_page,
        "loop_end_page": end_page if loop_end_page is None else loop_end_page,
        "loop_end_fine": loop_end_fine,
        "loop_on": loop_on,
        **others,
    }
    for name, v in values.items():
        if name not in CONTROL_FIELDS:
            raise FormatError(f"unknown control field {name!r}")
        if not 0 <= int(v) <= 255:
            raise FormatError(f"control field {name} = {v}: expected 0..255")
        raw[CONTROL_FIELDS[name]] = int(v)
    return bytes(raw)


# --------------------------------------------------------------------------- the keyboard

#: The Mirage's keyboard has 61 keys; a control block's top key is stored 0..60, key 0 the
#: lowest C. UNCERTAIN (FORMAT.md names the field only): the Mirage Sound Editor's key mapper
#: [S10] reads top key k as MIDI note 36 + k (C2..C7 with C4 = 60). This is the one place
#: that knows it.
KEYS = 61
TOP_KEY_MAX = KEYS - 1
LOWEST_KEY_NOTE = 36
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def key_note(key: int) -> int:
    """The MIDI note of keyboard key ``key`` (0..60): 36 + key (UNCERTAIN, see :data:`KEYS`)."""
    return LOWEST_KEY_NOTE + int(key)


def note_name(note: int) -> str:
    """MIDI note → name with octave, C4 = 60 (36 → ``C2``, 61 → ``C#4``)."""
    return f"{NOTE_NAMES[int(note) % 12]}{int(note) // 12 - 1}"


def key_name(key: int) -> str:
    """Keyboard key 0..60 as a note name (0 → ``C2``, 60 → ``C7``)."""
    return note_name(key_note(key))


def parse_key(text: str) -> int:
    """A keyboard key: a number 0..60, or a note name C2..C7 (``F#3``, ``Bb4``; C4 = 60).
    Raises :class:`FormatError` naming the range."""
    t = str(text).strip()
    want = f"expected a key number 0..{TOP_KEY_MAX} or a note name {key_name(0)}..{key_name(60)}"
    if t.lstrip("-").isdigit():
        key = int(t)
    else:
        name = t[:1].upper() + t[1:]
        i = 2 if len(name) > 2 and name[1] in "#b" else 1
        head, octave = name[:i], name[i:]
        flats = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
        head = flats.get(head, head)
        if head not in NOTE_NAMES or not octave.lstrip("-").isdigit():
            raise FormatError(f"key {text!r}: {want}")
        key = (int(octave) + 1) * 12 + NOTE_NAMES.index(head) - LOWEST_KEY_NOTE
    if not 0 <= key <= TOP_KEY_MAX:
        raise FormatError(f"key {text!r} is outside the Mirage's keyboard: {want}")
    return key


def key_ranges(block: SoundParams) -> dict[int, tuple[int, int] | None]:
    """Which keys each used wavesample plays: ``{number: (lowest, highest) or None}``.

    UNCERTAIN reading, isolated here: a key plays the first used wavesample (in number order)
    whose top key is at or above it, so wavesample n plays the keys above the highest top key
    of the used wavesamples before it, up to its own top key (``None``: no key reaches it).
    """
    out: dict[int, tuple[int, int] | None] = {}
    below = -1
    for ws in block.wavesamples:
        if not ws.used:
            continue
        top = min(ws.top_key, TOP_KEY_MAX)
        out[ws.number] = (below + 1, top) if top > below else None
        below = max(below, top)
    return out


# --------------------------------------------------------------------------- writing blocks


def os_state_offsets() -> frozenset[int]:
    """Offsets of the block that only the Mirage's operating system computes: the four RAM
    pointers (bytes 0-7) of each control block and the segment lists (193..480). A writer
    never sets them, and a read-back may differ there after the OS recomputed them."""
    offs = {CONTROL_OFFSET + CONTROL_SIZE * w + i for w in range(WAVESAMPLES) for i in range(8)}
    offs.update(range(SEGMENT_OFFSET, PROGRAM_OFFSET))
    return frozenset(offs)


def set_control_fields(block: bytes, number: int, **fields: int) -> bytes:
    """A copy of ``block`` with fields of wavesample ``number``'s (1..8) control block set
    (names of :data:`CONTROL_FIELDS`, values as stored 0..255). Pointers are never touched."""
    block = bytes(block)
    if len(block) != BLOCK_SIZE:
        raise FormatError(f"sound parameter block is {len(block)} bytes; expected {BLOCK_SIZE}")
    out = bytearray(block)
    base = control_offset(number)
    for name, value in fields.items():
        if name not in CONTROL_FIELDS:
            raise FormatError(f"unknown control field {name!r}; known: {', '.join(CONTROL_FIELDS)}")
        if not 0 <= int(value) <= 255:
            raise FormatError(f"control field {name} = {value}: expected 0..255 (as stored)")
        out[base + CONTROL_FIELDS[name]] = int(value)
    return bytes(out)


def block_problems(block: bytes) -> list[str]:
    """What a Mirage could not play in a parameter block, one phrase each (empty: none):
    for every used wavesample that loops, start ≤ loop start ≤ loop end ≤ end page (FORMAT.md
    §1: the sample end cannot lie before the loop end). Nothing else is judged (the ranges of
    the other bytes are UNCERTAIN)."""
    problems = []
    for ws in parse_sound_params(block).wavesamples:
        if not ws.used or not ws.loop_on:
            continue
        where = f"wavesample {ws.number} (pages {ws.start_page}..{ws.end_page})"
        if not ws.start_page <= ws.loop_start_page <= ws.end_page:
            problems.append(f"{where}: loop start page {ws.loop_start_page} lies outside it")
        if not ws.start_page <= ws.loop_end_page <= ws.end_page:
            problems.append(f"{where}: loop end page {ws.loop_end_page} lies outside it")
        if ws.loop_start_page > ws.loop_end_page:
            problems.append(
                f"{where}: loop start page {ws.loop_start_page} lies after the loop end page "
                f"{ws.loop_end_page}"
            )
    return problems


def overlapping(block: bytes) -> list[tuple[int, int]]:
    """Pairs of used wavesamples whose page ranges overlap (a real sound may share pages on
    purpose; a keyboard miragen lays out never does)."""
    used = [ws for ws in parse_sound_params(block).wavesamples if ws.used]
    return [
        (a.number, b.number)
        for i, a in enumerate(used)
        for b in used[i + 1 :]
        if a.start_page <= b.end_page and b.start_page <= a.end_page
    ]


def describe_offset(offset: int) -> str:
    """What byte ``offset`` of the block is, in words (``wavesample 3 top_key``, ``program 1
    filter_cutoff``, ``segment list 2``, ``revision byte``)."""
    if offset == REVISION_OFFSET:
        return "revision byte"
    if CONTROL_OFFSET <= offset < SEGMENT_OFFSET:
        w, i = divmod(offset - CONTROL_OFFSET, CONTROL_SIZE)
        names = {v: k for k, v in CONTROL_FIELDS.items()}
        what = names.get(i, "pointer" if i < 8 else "spare byte")
        return f"wavesample {w + 1} {what}"
    if SEGMENT_OFFSET <= offset < PROGRAM_OFFSET:
        s = (offset - SEGMENT_OFFSET) // SEGMENT_SIZE
        return "spare segment list" if s == WAVESAMPLES else f"segment list {s + 1}"
    if PROGRAM_OFFSET <= offset < BLOCK_SIZE:
        p, i = divmod(offset - PROGRAM_OFFSET, PROGRAM_SIZE)
        names = {off: k for k, (off, _scale) in PROGRAM_FIELDS.items()}
        return f"program {p + 1} {names.get(i, 'spare byte')}"
    return f"byte {offset} (outside the block)"
