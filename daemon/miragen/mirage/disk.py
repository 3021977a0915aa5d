"""Mirage disk images (raw ``.img`` / ``.edm``, 450,560 bytes): read, list, extract, write.

Pure functions over bytes (FORMAT.md §2-3); the CLI reads and writes the files. This is the
one place that knows the disk geometry.

Writer rules (FORMAT.md §3): start from a template image made on a real Mirage, change only
the 64 KB wave areas (never writing 0x00) and, optionally, program parameter blocks; place
samples only where the template's control blocks already put wavesamples. Every other byte
(operating system, segment lists, pointers, configuration, directory) stays as found.

UNCERTAIN choices, each isolated here:

* :func:`synthetic_template` builds a layout-valid image with no operating system. Its OS
  area starts with :data:`SYNTHETIC_MARKER` (ASCII) and is otherwise zero; that marker is how
  :func:`is_synthetic` tells it apart. It does NOT boot a Mirage.
* Files that start with ``0D 0A`` (Giebler EDE/EDA family) are refused (:func:`check_not_ede`):
  their sector layout is not documented well enough to read them exactly.
* :func:`plausibility_problems`: any 450,560 bytes have the right size, so the readers and
  writers also check what FORMAT.md supports about a disk made on a real Mirage: the OS tracks
  hold an operating system (not one repeated byte), and every used, looping wavesample keeps its
  loop inside its pages (start ≤ loop start ≤ loop end ≤ end, FORMAT.md §1 and §3.1). Nothing else
  (revision byte, flags, tune bytes, program values) is judged: their ranges are UNCERTAIN.
  ``force=True`` reads or writes an image that fails the check anyway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .. import limits
from ..errors import FormatError
from . import params as P

# --------------------------------------------------------------------------- geometry

TRACKS = 80
SECTORS_PER_TRACK = 6
SECTOR_SIZES = (1024, 1024, 1024, 1024, 1024, 512)
TRACK_SIZE = sum(SECTOR_SIZES)  # 5,632
SIZE = TRACKS * TRACK_SIZE  # 450,560
assert SIZE == 450560

PAGE = limits.PAGE  # the Mirage's memory page (miragen.limits)
HALF = 65536  # one sound's wave area, 256 pages
TRACKS_PER_SOUND = 13

#: Sound name → first track (FORMAT.md §3, disk order).
SOUND_TRACKS: dict[str, int] = {
    "lower1": 2,
    "upper1": 15,
    "lower2": 28,
    "upper2": 41,
    "lower3": 54,
    "upper3": 67,
}
SOUNDS: tuple[str, ...] = tuple(SOUND_TRACKS)

CONFIG_TRACK = 11
EDE_MAGIC = b"\x0d\x0a"

SYNTHETIC_MARKER = (
    b"MIRAGEN SYNTHETIC TEMPLATE - NO OPERATING SYSTEM - "
    b"THIS IMAGE DOES NOT BOOT AN ENSONIQ MIRAGE\x00"
)


def sector_offset(track: int, sector: int) -> int:
    """Image offset of (track, sector): sectors 0-4 are 1,024 bytes, sector 5 is 512."""
    if not 0 <= track < TRACKS:
        raise FormatError(f"track {track}: expected 0..{TRACKS - 1}")
    if not 0 <= sector < SECTORS_PER_TRACK:
        raise FormatError(f"sector {sector}: expected 0..{SECTORS_PER_TRACK - 1}")
    return track * TRACK_SIZE + sector * 1024


def param_offset(sound: str) -> int:
    """Image offset of a sound's parameter sector (sector 0 of its first track)."""
    return sector_offset(_track(sound), 0)


def config_offset() -> int:
    """Image offset of the 512-byte configuration sector (track 11, sector 5) = 0x10600."""
    return sector_offset(CONFIG_TRACK, 5)


def wave_runs(sound: str) -> list[tuple[int, int, int]]:
    """Where a sound's 65,536 wave bytes lie: ``(wave_index, image_offset, length)`` runs
    in memory order. Sectors 1-4 of the first track (4,096 bytes), then sectors 0-4 of
    each of the next 12 tracks (5,120 bytes each)."""
    first = _track(sound)
    runs = [(0, first * TRACK_SIZE + 1024, 4096)]
    k = 4096
    for i in range(12):
        runs.append((k, (first + 1 + i) * TRACK_SIZE, 5120))
        k += 5120
    assert k == HALF
    return runs


def wave_offset(sound: str, k: int) -> int:
    """Image offset of wave byte ``k`` (0..65535) of ``sound`` (FORMAT.md §3 formula)."""
    if not 0 <= k < HALF:
        raise FormatError(f"wave byte {k}: expected 0..{HALF - 1}")
    first = _track(sound)
    if k < 4096:
        return first * TRACK_SIZE + 1024 + k
    j = k - 4096
    return first * TRACK_SIZE + TRACK_SIZE * (1 + j // 5120) + j % 5120


def _track(sound: str) -> int:
    try:
        return SOUND_TRACKS[sound]
    except KeyError:
        raise FormatError(f"unknown sound {sound!r}; expected one of {', '.join(SOUNDS)}") from None


def os_regions() -> list[tuple[int, int]]:
    """(offset, length) of the operating-system area: tracks 0-1 whole, sector 5 of 2-10."""
    regions = [(0, 2 * TRACK_SIZE)]
    regions += [(sector_offset(t, 5), 512) for t in range(2, 11)]
    return regions


# --------------------------------------------------------------------------- checks


def check_not_ede(image: bytes) -> None:
    """Refuse the Giebler EDE/EDA family (files starting ``0D 0A``)."""
    if bytes(image[:2]) == EDE_MAGIC:
        raise FormatError(
            "this looks like a Giebler EDE/EDA disk file (it starts with 0D 0A), not a raw "
            f"{SIZE:,}-byte Mirage image; convert it to a raw .img first (for example with HxC "
            "Floppy Emulator, which reads .ede and writes .img/.edm)",
            0,
        )


def check_image(image: bytes) -> None:
    check_not_ede(image)
    if len(image) != SIZE:
        raise FormatError(
            f"disk image is {len(image):,} bytes; a raw Mirage image (.img/.edm) is exactly "
            f"{SIZE:,} bytes"
        )


def is_synthetic(image: bytes) -> bool:
    """True for images made by :func:`synthetic_template` (marker at offset 0)."""
    return bytes(image[: len(SYNTHETIC_MARKER)]) == SYNTHETIC_MARKER


MAX_PROBLEMS_SHOWN = 4


def plausibility_problems(image: bytes) -> list[str]:
    """What makes a full-size image implausible as a Mirage disk, one phrase per problem
    (empty when it is plausible). Checked: the operating-system tracks are not one repeated
    byte (unless the image is a :func:`synthetic_template`), and for every used wavesample
    (end page ≥ start page) whose loop is on, start ≤ loop start ≤ loop end ≤ end page."""
    check_image(image)
    problems: list[str] = []
    os_area = bytes(image[: 2 * TRACK_SIZE])
    if not is_synthetic(image) and os_area.count(os_area[:1]) == len(os_area):
        problems.append(
            "tracks 0-1, where the Mirage operating system lies, hold nothing but "
            f"0x{os_area[0]:02X} bytes: no operating system (and not a miragen synthetic template)"
        )
    for sound in SOUNDS:
        block = P.parse_sound_params(read_param_block(image, sound))
        for ws in block.wavesamples:
            if not ws.used or not ws.loop_on:
                # loop points of a wavesample that does not loop are never used by the Mirage:
                # what a real disk leaves there is UNCERTAIN, so it is not judged
                continue
            where = f"{sound} wavesample {ws.number} (pages {ws.start_page}..{ws.end_page})"
            start_in = ws.start_page <= ws.loop_start_page <= ws.end_page
            end_in = ws.start_page <= ws.loop_end_page <= ws.end_page
            if not start_in:
                problems.append(
                    f"{where}: loop start page {ws.loop_start_page} lies outside its pages"
                )
            if not end_in:
                problems.append(f"{where}: loop end page {ws.loop_end_page} lies outside its pages")
            if start_in and end_in and ws.loop_start_page > ws.loop_end_page:
                problems.append(
                    f"{where}: loop start page {ws.loop_start_page} lies after the loop end page "
                    f"{ws.loop_end_page}"
                )
    return problems


def describe_problems(problems: list[str]) -> str:
    """One line for a list of :func:`plausibility_problems`: the first few, then the count."""
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = len(problems) - MAX_PROBLEMS_SHOWN
    tail = f" (and {more} more)" if more > 0 else ""
    return "not a plausible Mirage disk image: " + shown + tail


def check_plausible(image: bytes) -> None:
    """Raise :class:`FormatError` naming what is wrong (sound, wavesample, field) unless
    :func:`plausibility_problems` finds nothing."""
    problems = plausibility_problems(image)
    if problems:
        raise FormatError(describe_problems(problems))


# --------------------------------------------------------------------------- reading


def read_param_block(image: bytes, sound: str) -> bytes:
    off = param_offset(sound)
    return bytes(image[off : off + P.BLOCK_SIZE])


def read_wave(image: bytes, sound: str) -> bytes:
    """A sound's 65,536 wave bytes in memory order (0x00 bytes accepted as found)."""
    check_image(image)
    return b"".join(bytes(image[off : off + n]) for _k, off, n in wave_runs(sound))


def wavesample_bytes(wave: bytes, ws: P.WavesampleControl) -> bytes:
    """Bytes of a used wavesample: start page to end page inclusive."""
    if not ws.used:
        return b""
    return bytes(wave[ws.start_page * PAGE : (ws.end_page + 1) * PAGE])


@dataclass
class Sound:
    name: str
    params: P.SoundParams
    wave: bytes

    def info(self) -> dict[str, Any]:
        return {
            "param_sha256": hashlib.sha256(self.params.raw).hexdigest(),
            "wave_sha256": hashlib.sha256(self.wave).hexdigest(),
            "wavesamples": [w.to_dict() for w in self.params.wavesamples],
            "programs": [p.to_dict() for p in self.params.programs],
        }


@dataclass
class DiskImage:
    raw: bytes
    sounds: dict[str, Sound] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # plausibility (read with force=True)

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.raw)

    def info(self) -> dict[str, Any]:
        """``{"size", "sounds": {name: {param_sha256, wave_sha256, wavesamples, programs}}}``;
        a synthetic template adds ``"synthetic": true`` and a ``"note"``."""
        out: dict[str, Any] = {
            "size": len(self.raw),
            "sounds": {n: s.info() for n, s in self.sounds.items()},
        }
        if self.synthetic:
            out["synthetic"] = True
            out["note"] = (
                "synthetic template made by miragen: no operating system, it does not boot a Mirage"
            )
        if self.problems:
            out["plausible"] = False
            out["problems"] = list(self.problems)
        return out


def parse(image: bytes, *, force: bool = False) -> DiskImage:
    """Check the size (and refuse EDE files) and the plausibility (:func:`check_plausible`;
    ``force=True`` reads an implausible image anyway, its problems kept in
    :attr:`DiskImage.problems`), then read every sound."""
    image = bytes(image)
    check_image(image)
    problems = plausibility_problems(image)
    if problems and not force:
        raise FormatError(describe_problems(problems))
    sounds = {
        name: Sound(
            name, P.parse_sound_params(read_param_block(image, name)), read_wave(image, name)
        )
        for name in SOUNDS
    }
    return DiskImage(image, sounds, problems)


def training_samples(image: bytes, name: str) -> list[tuple[str, bytes]]:
    """One ``(f"{name}-{sound}-ws{n}", bytes)`` per used wavesample, in disk order, for the
    ingest path (bytes from start page to end page inclusive, 8-bit unsigned as stored).
    An implausible image (:func:`check_plausible`) is refused with :class:`FormatError`."""
    disk = parse(image)
    out = []
    for sname, snd in disk.sounds.items():
        for ws in snd.params.wavesamples:
            if ws.used:
                out.append((f"{name}-{sname}-ws{ws.number}", wavesample_bytes(snd.wave, ws)))
    return out


# --------------------------------------------------------------------------- writing


def _check_wave_data(data: bytes, what: str, allow_zero: bool = False) -> int:
    """The number of 0x00 bytes in ``data``; refused unless ``allow_zero``."""
    data = bytes(data)
    zero = data.find(b"\x00")
    if zero >= 0 and not allow_zero:
        raise FormatError(
            f"{what} holds a 0x00 byte (reserved: it stops the Mirage's oscillator); convert it to "
            "Mirage 8-bit first",
            zero,
        )
    return data.count(0) if zero >= 0 else 0


def _check_template(image: bytes, force: bool) -> None:
    check_image(image)
    if not force:
        check_plausible(image)


def write_wave_area(
    image: bytes, sound: str, data: bytes, *, allow_zero: bool = False, force: bool = False
) -> tuple[bytes, dict[str, Any]]:
    """Replace the whole 64 KB wave area of ``sound`` with ``data`` (≤ 65,536 bytes, no
    0x00 unless ``allow_zero``: bytes put back as a disk held them), padding with 0x80.
    An implausible template is refused unless ``force``. Returns the new image and a report
    (``zero_bytes``: the 0x00 bytes written)."""
    _check_template(image, force)
    data = bytes(data)
    if len(data) > HALF:
        raise FormatError(
            f"wave data for {sound} is {len(data):,} bytes; a sound holds at most {HALF:,}"
        )
    zeros = _check_wave_data(data, f"wave data for {sound}", allow_zero)
    padded = data + b"\x80" * (HALF - len(data))
    out = bytearray(image)
    for k, off, n in wave_runs(sound):
        out[off : off + n] = padded[k : k + n]
    report = {
        "sound": sound,
        "written": len(data),
        "capacity": HALF,
        "unused": HALF - len(data),
        "zero_bytes": zeros,
        "warnings": [],
    }
    return bytes(out), report


SYNTHETIC_TOO_SMALL_HINT = (
    "the synthetic template's wavesamples are 32 pages; use --template with an image whose "
    "wavesample is large enough, or --cut to cut the sound with a fade-out"
)


def write_wavesample(
    image: bytes,
    sound: str,
    number: int,
    data: bytes,
    *,
    allow_zero: bool = False,
    force: bool = False,
) -> tuple[bytes, dict[str, Any]]:
    """Write ``data`` into the page range the template's control block gives wavesample
    ``number`` (1..8) of ``sound``; a shorter ``data`` is padded with 0x80 to the end page.
    Control blocks are not changed. 0x00 bytes are refused unless ``allow_zero``; an
    implausible template unless ``force``. Returns the new image and a report (unused length,
    ``zero_bytes`` written, loop points that now lie in the padding)."""
    _check_template(image, force)
    data = bytes(data)
    block = P.parse_sound_params(read_param_block(image, sound))
    ws = block.wavesample(number)
    if not ws.used:
        raise FormatError(
            f"{sound} wavesample {number} is unused in this template (end page {ws.end_page} < "
            f"start page {ws.start_page}); pick a wavesample the template uses, or write the whole "
            f"wave area ({sound}=FILE)"
        )
    capacity = ws.length
    if len(data) > capacity:
        hint = f"; {SYNTHETIC_TOO_SMALL_HINT}" if is_synthetic(image) else ""
        raise FormatError(
            f"{len(data):,} bytes do not fit {sound} wavesample {number}: the template gives it "
            f"pages {ws.start_page}..{ws.end_page} ({capacity:,} bytes){hint}"
        )
    if not data:
        raise FormatError(f"no data for {sound} wavesample {number}")
    zeros = _check_wave_data(data, f"data for {sound} wavesample {number}", allow_zero)
    padded = data + b"\x80" * (capacity - len(data))
    base = ws.start_page * PAGE
    out = bytearray(image)
    for k, off, n in wave_runs(sound):
        lo = max(k, base)
        hi = min(k + n, base + capacity)
        if lo < hi:
            out[off + (lo - k) : off + (hi - k)] = padded[lo - base : hi - base]
    warnings = []
    data_end_page = ws.start_page + (len(data) - 1) // PAGE
    if ws.loop_on and ws.loop_end_page > data_end_page:
        warnings.append(
            f"loop end page {ws.loop_end_page} lies beyond the data (it ends in page "
            f"{data_end_page}); the loop plays 0x80 padding"
        )
    report = {
        "sound": sound,
        "number": number,
        "start_page": ws.start_page,
        "end_page": ws.end_page,
        "capacity": capacity,
        "written": len(data),
        "unused": capacity - len(data),
        "zero_bytes": zeros,
        "warnings": warnings,
    }
    return bytes(out), report


def set_program_field(image: bytes, sound: str, program: int, name: str, value: int) -> bytes:
    """Set one field (as stored) of program ``program`` (1..4) of ``sound``."""
    check_image(image)
    off = param_offset(sound)
    block = P.set_program_field(image[off : off + P.BLOCK_SIZE], program, name, value)
    out = bytearray(image)
    out[off : off + P.BLOCK_SIZE] = block
    return bytes(out)


def writable_ranges() -> list[tuple[int, int]]:
    """(offset, length) of every byte a writer may change: the six wave areas and the six
    program parameter blocks. Tests diff everything else."""
    ranges = []
    for s in SOUNDS:
        ranges += [(off, n) for _k, off, n in wave_runs(s)]
        ranges.append((param_offset(s) + P.PROGRAM_OFFSET, P.PROGRAMS * P.PROGRAM_SIZE))
    return sorted(ranges)


# --------------------------------------------------------------------------- synthetic


def synthetic_template() -> bytes:
    """A layout-valid image with NO operating system, for tests and the demo.

    The OS area holds :data:`SYNTHETIC_MARKER` then zeros; every sound's control blocks
    place 8 wavesamples of 32 pages each (wavesample w: pages 32(w−1)..32w−1, loop start =
    start page, loop end = end page, fine 0xFF, loop off), every other parameter byte is 0,
    and the wave areas are 0x80 (silence). It does not boot a Mirage.
    """
    img = bytearray(SIZE)
    img[: len(SYNTHETIC_MARKER)] = SYNTHETIC_MARKER
    wave_fill = b"\x80" * HALF
    for s in SOUNDS:
        block = bytearray(P.BLOCK_SIZE)
        for n in range(1, P.WAVESAMPLES + 1):
            start = 32 * (n - 1)
            off = P.control_offset(n)
            block[off : off + P.CONTROL_SIZE] = P.make_control_block(start, start + 31)
        po = param_offset(s)
        img[po : po + P.BLOCK_SIZE] = block
        for k, off, n in wave_runs(s):
            img[off : off + n] = wave_fill[k : k + n]
    return bytes(img)
