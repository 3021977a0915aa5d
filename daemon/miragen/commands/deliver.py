"""``miragen deliver``: put one sound into a Mirage wavesample, by SysEx or on a disk image."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .. import config as configmod
from ..app import disk as disk_app
from ..app.sysex import sysex_body
from ..audio.mirage8 import pad_to_pages
from ..errors import FormatError, InputError
from ..fsutil import check_output, prepare_output_dir, same_file
from ..mirage import disk
from ..mirage import sysex as S
from ..mirage.params import WavesampleControl
from ..transport import open_transport
from ..transport.deliver import deliver_wavesample
from . import _link, _wave
from ._args import config_float, config_int
from ._wave import add_convert_options, load_wave
from .sysex import decode_syx

SYSEX_MAX_BYTES = 255 * 256  # one 0x06 dump carries at most 255 pages


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deliver",
        help="send a sound to a Mirage wavesample (SysEx over MIDI/serial, or into a disk image)",
        description="Send IN (any audio file, or a Mirage-ready 8-bit .pcm) into wavesample N of a "
        "half: selects it with key presses, sends a paced 0x06 dump, waits for ACK/NAK, retries "
        "with backoff. Exit 0 only after an ACK (and a matching read-back with --verify).",
    )
    _add_target_options(p)
    _add_destination_options(p)
    _add_disk_options(p)
    _add_handshake_options(p)
    p.add_argument(
        "--tile-cycle",
        action="store_true",
        help="IN is one single cycle: a converted cycle is resampled (periodic, band-limited) to "
        "whole 256-byte pages, then repeated to fill the wavesample: deliver.cycle_pages pages by "
        "SysEx (default 8), the template wavesample's page range with --disk (no 0x80 tail)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"ok", "bytes_sent", "wire_floor_s", "elapsed_s", "tries", "verified", ...}',
    )
    p.add_argument("--config", metavar="FILE", help="configuration file")
    add_convert_options(p)
    p.set_defaults(func=_run)


def _add_target_options(p: argparse.ArgumentParser) -> None:
    """What goes where: IN, the half and the wavesample."""
    p.add_argument(
        "input",
        metavar="IN",
        help="audio file (WAV/AIFF/FLAC/...), 8-bit .pcm, or a .syx holding a 0x06 dump",
    )
    p.add_argument("--half", choices=("lower", "upper"), help="memory half (default: deliver.half)")
    p.add_argument(
        "--wavesample",
        type=config_int("deliver", "wavesample"),
        metavar="N",
        help="wavesample 1..8 (default: deliver.wavesample)",
    )


def _add_destination_options(p: argparse.ArgumentParser) -> None:
    """The way to the Mirage: one of --port/--serial/--raw/--sim/--disk, and its settings."""
    dest = _link.add_link_options(p)
    dest.add_argument(
        "--disk", metavar="OUT.img", help="write a disk image instead of sending SysEx"
    )


def _add_disk_options(p: argparse.ArgumentParser) -> None:
    """With --disk: the template image and the sound in it."""
    p.add_argument(
        "--template",
        metavar="T.img",
        help="with --disk: template image (default: deliver.template, else the synthetic one)",
    )
    p.add_argument(
        "--sound",
        choices=("lower1", "upper1", "lower2", "upper2", "lower3", "upper3"),
        help="with --disk: sound of the image (default: deliver.sound; --half alone picks that "
        "half's sound of the same number)",
    )


def _add_handshake_options(p: argparse.ArgumentParser) -> None:
    """The SysEx dump: read-back, tries, pacing and the ACK/NAK wait."""
    p.add_argument(
        "--verify",
        action="store_true",
        default=None,
        help="read the wavesample back (0x04) and compare (default: deliver.verify)",
    )
    p.add_argument(
        "--tries",
        type=config_int("deliver", "tries"),
        metavar="N",
        help="attempts per dump, 1..20 (default: deliver.tries)",
    )
    p.add_argument(
        "--chunk-size",
        type=config_int("deliver", "chunk_size", unit="bytes"),
        metavar="BYTES",
        help="bytes per paced chunk (default: deliver.chunk_size)",
    )
    p.add_argument(
        "--chunk-gap-ms",
        type=config_float("deliver", "chunk_gap_ms", unit="ms"),
        metavar="MS",
        help="pause after each chunk (default: deliver.chunk_gap_ms)",
    )
    p.add_argument(
        "--ack-margin",
        type=config_float("deliver", "ack_margin_s", unit="s"),
        metavar="S",
        help="seconds beyond the wire time to wait for ACK/NAK, 0.1..600 "
        "(default: deliver.ack_margin_s)",
    )


def _wave_bytes(args: argparse.Namespace, max_bytes: int) -> tuple[bytes, list[str], bool]:
    """IN → page-padded Mirage 8-bit bytes, warnings, converted?"""
    path = Path(args.input)
    if path.suffix.lower() == ".syx":
        # regular files only (a FIFO is refused, not waited on), message by message; what is
        # not the Mirage's (other makers' SysEx, real-time bytes) is skipped and counted
        stats = S.ScanStats()
        first: bytes | None = None
        dumps = 0
        for m in decode_syx(path, stats):
            if m.cmd == S.CMD_WAVESAMPLE_DUMP:
                dumps += 1
                if first is None:
                    first = m.data or b""
        if dumps != 1:
            raise InputError(path, f"holds {dumps} wavesample dumps (0x06); expected exactly one")
        args.syx_skipped = stats.to_dict()  # for the JSON result
        note = stats.summary()
        if note:
            print(f"miragen: note: {path}: {note}", file=sys.stderr)
        return first or b"", [], False
    if getattr(args, "tile_cycle", False):  # one cycle of whole pages, never padded: tiled later
        wave = _wave.load_cycle(path, args, max_bytes=max_bytes)
        return wave.data, list(wave.warnings), wave.converted
    wave = load_wave(path, args, max_bytes=max_bytes)
    return bytes(pad_to_pages(wave.data)), list(wave.warnings), wave.converted


def _progress_printer(enabled: bool):
    if not enabled:
        return None, lambda: None
    t0 = time.monotonic()
    state = {"last": 0.0}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - state["last"] < 0.1 and done < total:
            return
        state["last"] = now
        pct = 100.0 * done / max(1, total)
        bar = "#" * int(pct / 5)
        sys.stderr.write(f"\r[{bar:<20}] {done:,}/{total:,} bytes {pct:5.1f}% {now - t0:6.1f} s")
        sys.stderr.flush()

    def end() -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()

    return progress, end


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    d = cfg["deliver"]
    half = args.half or d["half"]
    number = args.wavesample if args.wavesample is not None else d["wavesample"]  # both 1..8
    if args.disk:
        return _to_disk(args, cfg, half, number)
    spec, overrides = _link.transport_spec(args, d)  # before reading IN: a bad device fails at once
    simulated = spec == "sim"
    data, warnings, converted = _wave_bytes(args, SYSEX_MAX_BYTES)
    if args.tile_cycle:
        data = sysex_body(data, cycle=True, cycle_pages=d["cycle_pages"])
    for w in warnings:
        print(f"miragen: warning: {w}", file=sys.stderr)

    if simulated and not args.sim and not args.json:
        print(
            "miragen: note: deliver.transport is 'sim', a simulated Mirage; pass "
            "--raw/--serial/--port or set it in the configuration (`miragen ports` lists what "
            "is here)",
            file=sys.stderr,
        )
    # Ranges are checked where they are read (argparse types, the configuration schema).
    chunk_size = args.chunk_size if args.chunk_size is not None else d["chunk_size"]
    gap_ms = args.chunk_gap_ms if args.chunk_gap_ms is not None else d["chunk_gap_ms"]
    show = not args.json and sys.stderr.isatty()
    progress, end = _progress_printer(show)
    # A transport that cannot be opened (no such device, empty name...) is a TransportError:
    # miragen.cli prints it on one line, exit 2.
    transport = open_transport(spec, cfg, **overrides)
    with transport:
        res = deliver_wavesample(
            transport,
            data,
            half=half,
            number=number,
            tries=args.tries if args.tries is not None else d["tries"],
            verify=d["verify"] if args.verify is None else args.verify,
            chunk_size=chunk_size,
            chunk_gap_s=gap_ms / 1000.0,
            ack_margin_s=args.ack_margin if args.ack_margin is not None else d["ack_margin_s"],
            progress=progress,
        )
    end()
    out = res.to_dict()
    out.update(
        transport=transport.name,
        simulated=simulated,
        half=half,
        wavesample=number,
        pages=len(data) // 256,
        converted=converted,
    )
    if getattr(args, "syx_skipped", None):
        out["syx_skipped"] = args.syx_skipped
    where = "simulated Mirage (no instrument was reached): " if simulated else ""
    if args.json:
        print(json.dumps(out))
    elif res.ok:
        pages = len(data) // 256
        print(
            f"{where}delivered {len(data):,} bytes ({pages} page{'' if pages == 1 else 's'}) "
            f"to {half} wavesample {number} over {transport.name} in {res.elapsed_s:.1f} s (wire "
            f"floor {res.wire_floor_s:.1f} s, {res.tries} {'try' if res.tries == 1 else 'tries'})"
            f"{', verified' if res.verified else ''}"
        )
    if not res.ok:
        to = " to the simulated Mirage" if simulated else ""
        print(f"miragen: error: delivery{to} failed: {res.error}", file=sys.stderr)
        return 1
    return 0


def _to_disk(args: argparse.Namespace, cfg: dict[str, Any], half: str, number: int) -> int:
    d = cfg["deliver"]
    sound = _disk_sound(args, d)
    template_path = args.template or d["template"]
    # the outputs first: never the template or IN under another name (a link), never a folder
    # or a device; the image's folder is created when missing (and said so)
    inputs = [template_path, args.input]
    out_dir = Path(args.disk).parent
    stick = cfg["paths"]["usb_stick"]
    _check_disk_outputs(args.disk, inputs, stick)
    template = disk_app.load_template(template_path)
    ws = disk_app.wavesample(template, sound, number)
    where = template_path or "the synthetic template"
    if not ws.used:
        raise InputError(
            where,
            f"{sound} wavesample {number} is unused in this template (end page "
            f"{ws.end_page} < start page {ws.start_page})",
        )
    data, warnings, converted, how, zero = _disk_wave(args, template, ws, sound, number)
    try:
        placed = disk_app.place(
            template, sound, number, data, cycle=bool(args.tile_cycle), allow_zero=True, force=True
        )
    except FormatError as exc:
        raise InputError(
            args.input, ("--tile-cycle: " if args.tile_cycle else "") + str(exc)
        ) from None
    _, created = prepare_output_dir(out_dir, what="folder of the image")
    check_output(args.disk, inputs=inputs, what="output image")
    try:
        about = disk_app.describe(
            sound, number, Path(args.input).name, template=template_path, by="miragen deliver"
        )
        pub = disk_app.publish(
            placed.image,
            args.disk,
            img_cfg=False,
            stick=stick,
            stick_keep=cfg["paths"]["stick_keep"],
            about=about,
        )
    except OSError as exc:
        raise InputError(args.disk, f"cannot write it: {exc.strerror or exc}") from None
    if created:
        print(f"miragen: note: created the folder {out_dir}", file=sys.stderr)
    result: dict[str, Any] = {
        "ok": pub["ok"],
        "image": str(Path(pub["image"])),
        "sound": sound,
        "wavesample": number,
        "converted": converted,
        "how": how,
        "warnings": warnings + ([zero] if zero else []) + placed.warnings + pub["warnings"],
        "report": disk_app.report_json(placed.report),
    }
    if getattr(args, "syx_skipped", None):
        result["syx_skipped"] = args.syx_skipped
    for key in ("usb_stick", "stick_removed", "error"):
        if key in pub:
            result[key] = pub[key]
    return _print_disk_result(args, result, placed.report["written"])


def _disk_sound(args: argparse.Namespace, d: dict[str, Any]) -> str:
    """--sound, else --half's sound of deliver.sound's number, else deliver.sound."""
    if args.sound:
        return args.sound
    if args.half:
        return f"{args.half}{d['sound'][-1]}"
    return d["sound"]


def _check_disk_outputs(image: str, inputs: list[str], stick: str | None) -> None:
    """Refuse an image (or its copy on the USB stick) that would replace an input."""
    out_dir = Path(image).parent
    if out_dir.exists() or out_dir.is_symlink():
        check_output(image, inputs=inputs, what="output image")
    if stick and any(same_file(Path(stick) / Path(image).name, i) for i in inputs if i):
        raise InputError(
            Path(stick) / Path(image).name,
            "the copy to the USB stick would replace an input (choose another image name)",
        )


def _disk_wave(
    args: argparse.Namespace, template: bytes, ws: WavesampleControl, sound: str, number: int
) -> tuple[bytes, list[str], bool, str, str | None]:
    """IN as the bytes for wavesample ``ws``: data, warnings, converted?, how, 0x00 warning."""
    if Path(args.input).suffix.lower() == ".syx":
        data, warnings, converted = _wave_bytes(args, ws.length)
        return data, warnings, converted, "taken byte for byte from the SysEx dump", None
    if args.tile_cycle:
        wave = _wave.load_cycle(args.input, args, max_bytes=ws.length, keep_zero=True)
    else:
        hint = _wave.TOO_LONG_HINT
        if disk.is_synthetic(template):
            hint += (
                ", or --template with an image whose wavesample is large enough (the "
                f"synthetic template gives {sound} wavesample {number} pages "
                f"{ws.start_page}..{ws.end_page})"
            )
        wave = _wave.load_wave(
            args.input, args, max_bytes=ws.length, keep_zero=True, too_long_hint=hint
        )
    zero = _wave.zero_warning(wave, sound, number)
    return wave.data, list(wave.warnings), wave.converted, wave.how, zero


def _print_disk_result(args: argparse.Namespace, result: dict[str, Any], written: int) -> int:
    """Print the result of --disk (JSON, or warnings and one line); the exit status."""
    if args.json:
        print(json.dumps(result))
    else:
        for w in result["warnings"]:
            print(f"miragen: warning: {w}", file=sys.stderr)
        if result["ok"]:
            print(
                f"wrote {result['sound']} wavesample {result['wavesample']} ({written:,} bytes; "
                f"{result['how']}) into {result['image']}"
                + (f", copied to {result['usb_stick']}" if "usb_stick" in result else "")
            )
    if not result["ok"]:
        print(f"miragen: error: {result['error']}", file=sys.stderr)
        return 1
    return 0
