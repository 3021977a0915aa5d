"""Shared by ``miragen disk``, ``miragen sysex`` and ``miragen deliver``: read files, turn any
input into wave bytes.

Byte for byte or converted:

- a ``.pcm``/``.raw`` with no 0x00 byte that fits is taken byte for byte (unless
  ``--convert-pcm``); anything else is converted (resampled, normalised, dithered);
- a ``.pcm`` that ``miragen disk extract`` wrote is recognised by its ``.json`` sidecar (which
  holds the file's SHA-256): where 0x00 bytes may be kept (``keep_zero``, disk images only),
  it is taken byte for byte, 0x00 bytes included, so extract then write back is the identity;
- ``--keep-bytes`` (where a command offers it) takes any raw file byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.convert import convert_file
from ..audio.io import read_audio
from ..audio.loops import cycle_to_pages
from ..errors import FormatError, InputError
from ..fsutil import read_regular
from ..limits import PAGE
from ..mirage import disk as D
from ._args import source_rate, target_rate

RAW_SUFFIXES = (".pcm", ".raw")
MAX_RAW_BYTES = 64 * 2**20
TOO_LONG_HINT = "use --cut to cut it with a fade-out"
EXTRACTED_BY = "miragen disk extract"  # the mark in the sidecars `disk extract` writes


@dataclass
class Wave:
    data: bytes  # Mirage 8-bit, NOT padded to pages; 0x00 only when kept on purpose (zeros)
    source: str
    converted: bool
    warnings: list[str] = field(default_factory=list)
    how: str = ""  # for the text output: "taken byte for byte" / "converted to ... (...)"
    zeros: int = 0  # 0x00 bytes taken as they are (a byte-for-byte file only)
    origin: dict[str, Any] | None = None  # the sidecar of a file `disk extract` wrote


def add_keep_bytes_option(p: argparse.ArgumentParser) -> None:
    """``--keep-bytes``, for commands that write disk images."""
    p.add_argument(
        "--keep-bytes",
        action="store_true",
        help="take .pcm/.raw inputs byte for byte as they are, 0x00 bytes included "
        "(the Mirage stops a voice on 0x00: a warning says where there are some); "
        "nothing is resampled, normalised, dithered or cut",
    )


# --------------------------------------------------------------------------- sidecars


def sidecar_path(pcm: str | Path) -> Path:
    """``lower1-ws3.pcm`` → ``lower1-ws3.json``."""
    return Path(pcm).with_suffix(".json")


def sidecar(kind: str, sound: str, data: bytes, image: str, **fields: Any) -> dict[str, Any]:
    """What ``disk extract`` writes beside each ``.pcm``: enough to recognise the file later
    (its SHA-256) and to say where it came from."""
    return {
        "extracted_by": EXTRACTED_BY,
        "kind": kind,  # "wavesample" or "wave area"
        "sound": sound,
        **fields,
        "length": len(data),
        "sha256": hashlib.sha256(bytes(data)).hexdigest(),
        "zero_bytes": bytes(data).count(0),
        "image": str(image),
    }


def extracted_origin(path: str | Path, data: bytes) -> dict[str, Any] | None:
    """The sidecar beside ``path`` when ``disk extract`` wrote it for exactly these bytes (same
    SHA-256 and length), else None (no sidecar, another file's, or the ``.pcm`` was edited)."""
    try:
        obj = json.loads(read_regular(sidecar_path(path), max_bytes=65536, what="sidecar"))
    except (InputError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("extracted_by") != EXTRACTED_BY:
        return None
    if obj.get("length") != len(data):
        return None
    if obj.get("sha256") != hashlib.sha256(bytes(data)).hexdigest():
        return None
    if obj.get("sound") not in D.SOUNDS:
        return None
    if obj.get("kind") == "wavesample" and obj.get("number") in range(1, 9):
        return obj
    if obj.get("kind") == "wave area":
        return obj
    return None


def origin_text(origin: dict[str, Any]) -> str:
    where = f"{origin['sound']} " + (
        f"wavesample {origin['number']}" if origin["kind"] == "wavesample" else "wave area"
    )
    return f"{where} of {origin.get('image', '?')}"


def same_place(origin: dict[str, Any] | None, sound: str, number: int | None) -> bool:
    """True when an extracted file is written back where it came from."""
    if not origin or origin.get("sound") != sound:
        return False
    if number is None:
        return origin.get("kind") == "wave area"
    return origin.get("kind") == "wavesample" and origin.get("number") == number


def zero_warning(wave: Wave, sound: str, number: int | None) -> str | None:
    """The warning for 0x00 bytes written into a disk image, or None (none, or an extracted
    file put back where it came from: the image keeps what it held)."""
    if not wave.zeros or same_place(wave.origin, sound, number):
        return None
    why = f"as extracted from {origin_text(wave.origin)}" if wave.origin else "--keep-bytes"
    return (
        f"{wave.source}: {wave.zeros:,} 0x00 byte(s) written as they are ({why}); the Mirage "
        "stops a voice on 0x00, so the sound may end early there"
    )


def _conversion_text(args: argparse.Namespace, cut: bool) -> str:
    dither = "dithered" if getattr(args, "dither", "tpdf") == "tpdf" else "not dithered"
    cut_text = ", cut" if cut else ""
    return f"converted to {args.rate:,} Hz (resampled, normalised, {dither}{cut_text})"


def _byte_for_byte_text(origin: dict[str, Any] | None) -> str:
    return "taken byte for byte" + (f" (extracted from {origin_text(origin)})" if origin else "")


def add_convert_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate",
        type=target_rate(),
        default=29411,
        metavar="HZ",
        help="target sample rate in Hz, 4,000..50,000 (default 29411 = 1 MHz / 34)",
    )
    p.add_argument(
        "--raw-rate",
        type=source_rate(),
        default=29411,
        metavar="HZ",
        help="rate of headerless .pcm/.raw inputs that need converting, "
        "1,000..1,000,000 (default 29411)",
    )
    p.add_argument(
        "--dither",
        default="tpdf",
        choices=("tpdf", "none"),
        help="dither when quantising to 8 bits (default tpdf)",
    )
    p.add_argument(
        "--cut",
        action="store_true",
        help="cut inputs that are too long (with a fade-out) instead of refusing them",
    )
    p.add_argument(
        "--convert-pcm",
        action="store_true",
        help="convert .pcm/.raw inputs too (default: a .pcm with no 0x00 byte that fits is taken "
        "byte for byte)",
    )


def _raw_input(
    p: Path, args: argparse.Namespace, *, keep_zero: bool
) -> tuple[bytes, int, Any, bool]:
    """(bytes, 0x00 count, sidecar or None, take them byte for byte?) of a raw input."""
    keep = bool(getattr(args, "keep_bytes", False))
    raw = read_regular(p, max_bytes=MAX_RAW_BYTES, what="input")
    if not raw:
        raise InputError(p, "empty file: no wave data")
    zeros = raw.count(0)
    origin = extracted_origin(p, raw)
    as_is = keep or not zeros or (origin is not None and keep_zero)
    if as_is and zeros and not keep_zero:
        raise InputError(
            p,
            f"holds {zeros:,} 0x00 byte(s); the Mirage stops a voice on 0x00 and "
            "they are never sent (drop --keep-bytes to convert the file)",
        )
    return raw, zeros, origin, as_is


def _is_raw(p: Path, args: argparse.Namespace) -> bool:
    convert = getattr(args, "convert_pcm", False) and not getattr(args, "keep_bytes", False)
    return p.suffix.lower() in RAW_SUFFIXES and not convert


def load_wave(
    path: str | Path,
    args: argparse.Namespace,
    *,
    max_bytes: int,
    keep_zero: bool = False,
    too_long_hint: str = TOO_LONG_HINT,
) -> Wave:
    """Any input → Mirage 8-bit bytes of at most ``max_bytes``.

    A ``.pcm``/``.raw`` file that is already Mirage 8-bit (no 0x00 byte, fits) is taken byte
    for byte, unless ``--convert-pcm``; so is, when ``keep_zero`` (the caller writes a disk
    image), a ``.pcm`` that ``disk extract`` wrote (0x00 bytes included), and with
    ``--keep-bytes`` any raw file. Everything else goes through
    :func:`miragen.audio.convert.convert_file` (resample, quantise, 0x00 → never); a too-long
    input is refused with ``too_long_hint`` unless ``--cut``.
    """
    p = Path(path)
    zeros = 0
    if _is_raw(p, args):
        raw, zeros, origin, as_is = _raw_input(p, args, keep_zero=keep_zero)
        if len(raw) > max_bytes and (getattr(args, "keep_bytes", False) or not args.cut):
            extra = (
                "--keep-bytes cuts nothing; without it, --cut converts the file and cuts it"
                if getattr(args, "keep_bytes", False)
                else too_long_hint
            )
            raise InputError(
                p, f"{len(raw):,} bytes do not fit the {max_bytes:,} bytes available; {extra}"
            )
        if as_is and len(raw) <= max_bytes:
            how = _byte_for_byte_text(origin)
            return Wave(raw, str(p), False, [], how, zeros if keep_zero else 0, origin)
    prepared = convert_file(
        p,
        rate=args.rate,
        max_bytes=max_bytes,
        dither=args.dither,
        strict=not args.cut,
        raw_rate=args.raw_rate,
        too_long_hint=too_long_hint,
    )
    samples = prepared.samples or len(prepared.data)
    how = _conversion_text(args, prepared.cut)
    if zeros and hasattr(args, "keep_bytes"):
        how += f"; it holds {zeros:,} 0x00 byte(s): --keep-bytes takes it as it is"
    return Wave(prepared.data[:samples], str(p), True, list(prepared.warnings), how)


def load_cycle(
    path: str | Path,
    args: argparse.Namespace,
    *,
    max_bytes: int,
    keep_zero: bool = False,
) -> Wave:
    """One single cycle (``--tile-cycle``) → Mirage 8-bit bytes, whole pages, ready to tile.

    A raw file taken byte for byte (see :func:`load_wave`) that is whole pages and fits is
    the cycle as it is. Anything else, a byte-for-byte file that is not whole pages included
    (at the target rate), is resampled periodically to 256·k points (k = max(1, round(n/256)),
    n its length at the target rate; a short stepped cycle, such as a 32-point console wave table,
    is held instead where 256·k is a whole multiple of its length: audio/levels.py) and
    quantised, never page-padded: tiling repeats the cycle, not the padding
    (:func:`miragen.audio.loops.cycle_to_pages`).
    """
    p = Path(path)
    x = None
    if _is_raw(p, args):
        raw, zeros, origin, as_is = _raw_input(p, args, keep_zero=keep_zero)
        if as_is and len(raw) % PAGE == 0 and len(raw) <= max_bytes:
            how = _byte_for_byte_text(origin) + ", tiled"
            return Wave(raw, str(p), False, [], how, zeros if keep_zero else 0, origin)
        if as_is and getattr(args, "keep_bytes", False):
            raise InputError(
                p,
                f"--tile-cycle --keep-bytes: {len(raw):,} bytes are not whole "
                f"256-byte pages of at most {max_bytes:,} bytes; drop --keep-bytes "
                "to resample the cycle to whole pages",
            )
        if as_is:  # Mirage 8-bit already, at the target rate, but not whole pages
            x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
            rate = args.rate
            what = f"{len(raw):,} bytes at {args.rate:,} Hz, not whole pages"
    if x is None:
        audio = read_audio(p, raw_rate=args.raw_rate)
        x, rate = audio.samples, audio.rate
        what = f"{len(x):,} samples at {rate:,} Hz"
    try:
        data = cycle_to_pages(x, rate, args.rate, max_bytes=max_bytes, dither=args.dither)
    except FormatError as exc:
        raise InputError(p, f"--tile-cycle: {exc}") from None
    dither = "dithered" if args.dither == "tpdf" else "not dithered"
    how = (
        f"converted as one cycle ({what}) to {len(data) // PAGE} page(s) at {args.rate:,} Hz "
        f"(resampled periodically, normalised, {dither}), tiled"
    )
    return Wave(data, str(p), True, [], how)


def read_disk_image(path: str, *, what: str = "disk image", force: bool = False) -> bytes:
    """A regular file of exactly 450,560 bytes (FIFOs and devices refused at once) that passes
    the plausibility check; with ``force`` an implausible one is read with a warning."""
    data = read_regular(path, max_bytes=4 * D.SIZE, what=what)
    try:
        D.check_image(data)
    except FormatError as exc:
        raise InputError(path, str(exc)) from None
    problems = D.plausibility_problems(data)
    if problems and not force:
        raise InputError(path, f"{D.describe_problems(problems)}; --force reads it anyway")
    if problems:
        print(
            f"miragen: warning: {path}: {D.describe_problems(problems)}; read anyway (--force)",
            file=sys.stderr,
        )
    return data


def sound_name(name: str) -> str:
    """A sound name of the disk (lower or upper), refused by name otherwise."""
    if name not in D.SOUNDS:
        raise InputError(name, f"unknown sound; expected one of {', '.join(D.SOUNDS)}")
    return name
