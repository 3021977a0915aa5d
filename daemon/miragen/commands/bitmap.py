"""``miragen bitmap encode|decode``: the seed article's waveform ⇄ line-picture representation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..audio import bitmap
from ..audio.io import write_pcm
from ..errors import FormatError, InputError
from ..fsutil import atomic_write_bytes
from ._args import int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bitmap", help="draw a wave as a square line picture, or read one back")
    bsub = p.add_subparsers(dest="bitmap_command", metavar="ACTION")
    bsub.required = True
    enc = bsub.add_parser(
        "encode",
        help="wave → size×size grayscale PNG (white ground, black 1-pixel line, 255 at the top)",
        description="Draw an 8-bit wave (.pcm/.raw bytes, or any audio file Miragen reads) as a "
        "size×size grayscale PNG. Longer waves are averaged down to size columns.",
    )
    enc.add_argument("input", metavar="IN.pcm")
    enc.add_argument("output", metavar="OUT.png")
    enc.add_argument(
        "--size",
        type=int_range(2, 4096, unit="pixels"),
        default=256,
        help="picture size in pixels, 2..4096 (default 256)",
    )
    enc.set_defaults(func=_encode)
    dec = bsub.add_parser(
        "decode",
        help="line picture (PNG or .npy) → 8-bit .pcm",
        description="Read a line picture back into an 8-bit wave (values 1..255): one value per "
        "column (thick or blurred lines, any value range, 259×259 images cropped), then "
        "interpolated to --length samples.",
    )
    dec.add_argument("input", metavar="IN.png")
    dec.add_argument("output", metavar="OUT.pcm")
    dec.add_argument(
        "--length",
        type=int_range(1, 1 << 20),
        metavar="N",
        help="samples to write, 1..1,048,576 (default: one per column)",
    )
    dec.add_argument(
        "--interp",
        choices=("linear", "cubic"),
        default="linear",
        help="interpolation to --length (default linear)",
    )
    dec.set_defaults(func=_decode)


def _encode(args: argparse.Namespace) -> int:
    if not 2 <= args.size <= 4096:
        print(f"miragen: error: --size {args.size}: must be between 2 and 4096", file=sys.stderr)
        return 2
    u8 = bitmap.wave_bytes(args.input)
    atomic_write_bytes(args.output, bitmap.png_bytes(bitmap.encode(u8, args.size)))
    print(f"{args.input} ({len(u8)} samples) → {args.output} ({args.size}×{args.size})")
    return 0


def _decode(args: argparse.Namespace) -> int:
    if args.length is not None and not 1 <= args.length <= 1 << 20:
        print(
            f"miragen: error: --length {args.length}: must be between 1 and {1 << 20}",
            file=sys.stderr,
        )
        return 2
    img = bitmap.read_image(args.input)
    try:
        u8 = bitmap.decode(img, args.length, args.interp)
    except FormatError as exc:
        raise InputError(Path(args.input), exc.reason) from None
    write_pcm(args.output, u8.tobytes())
    print(f"{args.input} ({img.shape[1]}×{img.shape[0]}) → {args.output} ({len(u8)} samples)")
    return 0
