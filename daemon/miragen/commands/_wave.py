"""Shared by ``miragen disk`` and ``miragen sysex``: read files, turn any input into wave bytes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

RAW_SUFFIXES = (".pcm", ".raw")


@dataclass
class Wave:
    data: bytes  # Mirage 8-bit, no 0x00, NOT padded to pages
    source: str
    converted: bool
    warnings: list[str] = field(default_factory=list)


def read_file(path: str | Path, *, max_bytes: int | None = None, what: str = "file") -> bytes:
    p = Path(path)
    try:
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputError(p, f"{what} is {size:,} bytes; expected at most {max_bytes:,}")
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(p, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(p, f"{what} is a folder, not a file") from None
    except PermissionError:
        raise InputError(p, f"{what} cannot be read (permission denied)") from None
    except OSError as exc:
        raise InputError(p, f"{what} cannot be read: {exc.strerror or exc}") from None


def add_convert_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=int, default=29411, help="target sample rate in Hz (default 29411 = 1 MHz / 34)")
    p.add_argument("--raw-rate", type=int, default=29411, help="rate of headerless .pcm/.raw inputs that need converting (default 29411)")
    p.add_argument("--dither", default="tpdf", choices=("tpdf", "none"), help="dither when quantising to 8 bits (default tpdf)")
    p.add_argument("--cut", action="store_true", help="cut inputs that are too long (with a fade-out) instead of refusing them")
    p.add_argument("--convert-pcm", action="store_true", help="convert .pcm/.raw inputs too (default: a .pcm with no 0x00 byte that fits is taken byte for byte)")


def load_wave(path: str | Path, args: argparse.Namespace, *, max_bytes: int) -> Wave:
    """Any input → Mirage 8-bit bytes of at most ``max_bytes``.

    A ``.pcm``/``.raw`` file that is already Mirage 8-bit (no 0x00 byte, fits) is taken byte
    for byte, unless ``--convert-pcm``; everything else goes through
    :func:`miragen.audio.convert.convert_file` (resample, quantise, 0x00 → never, pad).
    """
    p = Path(path)
    if p.suffix.lower() in RAW_SUFFIXES and not getattr(args, "convert_pcm", False):
        raw = read_file(p, max_bytes=64 * 2**20, what="input")
        if not raw:
            raise InputError(p, "empty file: no wave data")
        if b"\x00" not in raw and len(raw) <= max_bytes:
            return Wave(raw, str(p), False)
        if len(raw) > max_bytes and not args.cut:
            raise InputError(p, f"{len(raw):,} bytes do not fit the {max_bytes:,} bytes available (use --cut to cut it with a fade-out)")
    from ..audio.convert import convert_file

    prepared = convert_file(
        p,
        rate=args.rate,
        max_bytes=max_bytes,
        dither=args.dither,
        strict=not args.cut,
        raw_rate=args.raw_rate,
    )
    samples = prepared.samples or len(prepared.data)
    return Wave(prepared.data[:samples], str(p), True, list(prepared.warnings))
