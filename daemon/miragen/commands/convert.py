"""``miragen convert IN... -o DIR``: any accepted audio → Mirage 8-bit .pcm, .wav and .png,
with the loop each sound would get (loop points, click and level figures; docs/audio.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import config as configmod
from ..audio.convert import OutputWriter, convert_file
from ..audio.loops import XFADE_MAX_MS, XFADE_SHAPES, describe_loop
from ..errors import MiragenError
from ..fsutil import check_output, prepare_output_dir
from ._args import config_int, float_range, target_rate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert audio files to Mirage 8-bit wave data (.pcm, .wav, .png)",
        description=(
            "Convert WAV (8/16/24/32-bit, float), AIFF/AIFC, FLAC or raw unsigned 8-bit .pcm/.raw "
            "files to Mirage wave data: mono, resampled with an anti-aliasing filter, DC removed, "
            "peak-normalised, 8-bit unsigned with no 0x00 byte, padded to whole 256-byte pages. "
            "Writes DIR/<stem>.pcm, DIR/<stem>.wav and DIR/<stem>.png for each input, and prints "
            "the loop it would get (pages, click and level step at the jump). A bad input "
            "is reported on one line and skipped; the exit code is then 2."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files")
    p.add_argument(
        "-o", "--out", required=True, metavar="DIR", help="output folder (created when missing)"
    )
    p.add_argument(
        "--rate",
        type=target_rate(),
        metavar="HZ",
        help="target sample rate, 4,000..50,000 (default: config [audio] rate, 29411)",
    )
    p.add_argument(
        "--max-bytes",
        type=config_int("audio", "max_bytes", unit="bytes"),
        metavar="N",
        help="longest output in bytes, 256..65,536 (default: config [audio] max_bytes, 65536)",
    )
    p.add_argument(
        "--dither",
        choices=("tpdf", "none"),
        help="dither when quantising (default: config [audio] dither)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="refuse inputs longer than --max-bytes instead of cutting them",
    )
    p.add_argument(
        "--loop-xfade",
        type=float_range(0, XFADE_MAX_MS, unit="ms"),
        default=0.0,
        metavar="MS",
        help="crossfade the last MS of each loop into the samples before the loop start, "
        "baked into the wave (default 0: none)",
    )
    p.add_argument(
        "--loop-xfade-shape",
        choices=XFADE_SHAPES,
        default="auto",
        help="the crossfade's gains: auto (linear for material in phase, constant power for "
        "unrelated material, by their correlation), equal-power or linear (default auto)",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    audio = configmod.load(args.config)["audio"]
    rate = args.rate if args.rate is not None else audio["rate"]
    max_bytes = args.max_bytes if args.max_bytes is not None else audio["max_bytes"]
    dither = args.dither or audio["dither"]
    strict = audio["strict"] if args.strict is None else True
    # --rate and --max-bytes are checked by argparse, the configuration's by its schema.

    out, created = prepare_output_dir(args.out)
    if created:
        print(f"miragen: note: created the output folder {out}", file=sys.stderr)
    writer = OutputWriter(out, rate)  # atomic files, one filesystem flush per batch
    try:
        failed = _run(
            args, audio, writer, rate=rate, max_bytes=max_bytes, dither=dither, strict=strict
        )
        writer.close()
    except OSError as exc:
        writer.discard()
        print(
            f"miragen: error: {out}: cannot write the output: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    if failed:
        print(f"miragen: {failed} of {len(args.inputs)} input(s) not converted", file=sys.stderr)
        return 2
    return 0


def _run(
    args: argparse.Namespace,
    audio: dict,
    writer,
    *,
    rate: int,
    max_bytes: int,
    dither: str,
    strict: bool,
) -> int:
    """Convert every input; returns how many failed (each reported on one line)."""
    failed = 0
    used: set[str] = set()
    for src in args.inputs:
        try:
            prepared = convert_file(
                src,
                rate=rate,
                max_bytes=max_bytes,
                dither=dither,
                strict=strict,
                raw_rate=audio["raw_rate"],
                fade_ms=audio["fade_ms"],
                max_file_bytes=audio["max_input_mb"] * 2**20,
                too_long_hint="refused because of --strict ([audio] strict); without it the sound "
                "is cut with a fade-out",
                loop=True,
                xfade_ms=args.loop_xfade,
                xfade_shape=args.loop_xfade_shape,
            )
            stem = Path(src).stem
            n = 2
            while stem in used:  # two inputs with the same name: keep both
                stem = f"{Path(src).stem}-{n}"
                n += 1
            for suffix in (".pcm", ".wav", ".png"):  # never over an input, a folder or a device
                check_output(writer.out / f"{stem}{suffix}", inputs=args.inputs)
        except MiragenError as exc:
            print(f"miragen: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        used.add(stem)
        for w in prepared.warnings:
            print(f"miragen: warning: {w}", file=sys.stderr)
        files = writer.add(prepared, stem)
        print(
            f"{src} → {files[0].with_suffix('.{pcm,wav,png}')}  ({len(prepared.data)} bytes, "
            f"{prepared.pages} pages at {rate} Hz; {describe_loop(prepared.loop or {})})"
        )
    return failed
