"""``miragen deliver``: put one sound into a Mirage wavesample, by SysEx or on a disk image."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._wave import add_convert_options, load_wave

SYSEX_MAX_BYTES = 255 * 256  # one 0x06 dump carries at most 255 pages


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deliver",
        help="send a sound to a Mirage wavesample (SysEx over MIDI/serial, or into a disk image)",
        description="Send IN (any audio file, or a Mirage-ready 8-bit .pcm) into wavesample N of a half: "
                    "selects it with key presses, sends a paced 0x06 dump, waits for ACK/NAK, retries with "
                    "backoff. Exit 0 only after an ACK (and a matching read-back with --verify).",
    )
    p.add_argument("input", metavar="IN", help="audio file (WAV/AIFF/FLAC/...), 8-bit .pcm, or a .syx holding a 0x06 dump")
    p.add_argument("--half", choices=("lower", "upper"), help="memory half (default: deliver.half)")
    p.add_argument("--wavesample", type=int, metavar="N", help="wavesample 1..8 (default: deliver.wavesample)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--port", metavar="NAME", help="MIDI port whose name contains NAME (mido/rtmidi, ALSA sequencer)")
    dest.add_argument("--serial", metavar="DEV", help="serial device or pyserial URL (e.g. /dev/ttyTHS1, loop://)")
    dest.add_argument("--raw", metavar="DEV", help="raw MIDI device (/dev/snd/midiC1D0) or a pty")
    dest.add_argument("--sim", action="store_true", help="a simulated Mirage in this process")
    dest.add_argument("--disk", metavar="OUT.img", help="write a disk image instead of sending SysEx")
    p.add_argument("--baud", type=int, help="serial speed (default: deliver.baud, 31250)")
    p.add_argument("--sim-fault", action="append", default=[], metavar="NAME[=N]", help="with --sim: a fault (see `miragen sim --help`)")
    p.add_argument("--template", metavar="T.img", help="with --disk: template image (default: deliver.template, else the synthetic one)")
    p.add_argument("--sound", choices=("lower1", "upper1", "lower2", "upper2", "lower3", "upper3"),
                   help="with --disk: sound of the image (default: deliver.sound; --half alone picks that half's sound of the same number)")
    p.add_argument("--verify", action="store_true", default=None, help="read the wavesample back (0x04) and compare (default: deliver.verify)")
    p.add_argument("--tries", type=int, metavar="N", help="attempts per dump (default: deliver.tries)")
    p.add_argument("--chunk-size", type=int, metavar="BYTES", help="bytes per paced chunk (default: deliver.chunk_size)")
    p.add_argument("--chunk-gap-ms", type=float, metavar="MS", help="pause after each chunk (default: deliver.chunk_gap_ms)")
    p.add_argument("--ack-margin", type=float, metavar="S", help="seconds beyond the wire time to wait for ACK/NAK (default: deliver.ack_margin_s)")
    p.add_argument("--tile-cycle", action="store_true",
                   help="IN is one single cycle (whole 256-byte pages): repeat it to fill the wavesample, deliver.cycle_pages "
                        "pages by SysEx (default 8), the template wavesample's page range with --disk (no 0x80 tail)")
    p.add_argument("--json", action="store_true", help='print {"ok", "bytes_sent", "wire_floor_s", "elapsed_s", "tries", "verified", ...}')
    p.add_argument("--config", metavar="FILE", help="configuration file")
    add_convert_options(p)
    p.set_defaults(func=_run)


def _wave_bytes(args: argparse.Namespace, max_bytes: int) -> tuple[bytes, list[str], bool]:
    """IN → page-padded Mirage 8-bit bytes, warnings, converted?"""
    from ..errors import InputError

    path = Path(args.input)
    if path.suffix.lower() == ".syx":
        from ..mirage import sysex as S

        try:
            msgs = S.split_messages(path.read_bytes())
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
        dumps = [m for m in msgs if len(m) > 3 and m[3] == S.CMD_WAVESAMPLE_DUMP]
        if len(dumps) != 1:
            raise InputError(path, f"holds {len(dumps)} wavesample dumps (0x06); expected exactly one")
        return S.decode(dumps[0]).data or b"", [], False
    from ..audio.mirage8 import pad_to_pages

    wave = load_wave(path, args, max_bytes=max_bytes)
    if getattr(args, "tile_cycle", False) and len(wave.data) % 256:
        raise InputError(path, f"--tile-cycle: {len(wave.data):,} samples are not whole 256-byte pages "
                               "(a single cycle for the Mirage is 256 points: one page)")
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
    from .. import config as configmod

    cfg = configmod.load(args.config)
    d = cfg["deliver"]
    half = args.half or d["half"]
    number = args.wavesample if args.wavesample is not None else d["wavesample"]
    if not 1 <= number <= 8:
        print(f"miragen deliver: --wavesample {number}: expected 1..8", file=sys.stderr)
        return 2
    if args.disk:
        return _to_disk(args, cfg, half, number)
    if args.sim_fault and not args.sim:
        print("miragen deliver: --sim-fault needs --sim", file=sys.stderr)
        return 2
    data, warnings, converted = _wave_bytes(args, SYSEX_MAX_BYTES)
    if args.tile_cycle:
        from ..audio.loops import fill_with_cycle

        data = fill_with_cycle(data, max(len(data), 256 * d["cycle_pages"]))
    for w in warnings:
        print(f"miragen deliver: warning: {w}", file=sys.stderr)

    from ..transport import TransportError, open_transport
    from ..transport.deliver import deliver_wavesample

    overrides: dict[str, Any] = {}
    if args.port:
        spec = f"midi:{args.port}"
    elif args.serial:
        spec = f"serial:{args.serial}"
        if args.baud:
            overrides["baud"] = args.baud
    elif args.raw:
        spec = f"raw:{args.raw}"
    elif args.sim:
        spec = "sim"
        if args.sim_fault:
            from ..transport.simulated import Faults

            try:
                overrides["faults"] = Faults.parse(args.sim_fault)
            except ValueError as exc:
                print(f"miragen deliver: {exc}", file=sys.stderr)
                return 2
    else:
        spec = d["transport"]
        if spec.startswith("serial:") and args.baud:
            overrides["baud"] = args.baud
        if spec == "sim" and not args.json:
            print("miragen deliver: note: deliver.transport is 'sim', a simulated Mirage; pass --raw/--serial/--port "
                  "or set it in the configuration (`miragen ports` lists what is here)", file=sys.stderr)
    chunk_size = args.chunk_size if args.chunk_size is not None else d["chunk_size"]
    gap_ms = args.chunk_gap_ms if args.chunk_gap_ms is not None else d["chunk_gap_ms"]
    if chunk_size < 1 or gap_ms < 0:
        print("miragen deliver: --chunk-size must be ≥ 1 and --chunk-gap-ms ≥ 0", file=sys.stderr)
        return 2
    show = not args.json and sys.stderr.isatty()
    progress, end = _progress_printer(show)
    try:
        transport = open_transport(spec, cfg, **overrides)
    except TransportError as exc:
        print(f"miragen deliver: {exc}", file=sys.stderr)
        return 1
    with transport:
        res = deliver_wavesample(
            transport, data, half=half, number=number,
            tries=args.tries if args.tries is not None else d["tries"],
            verify=d["verify"] if args.verify is None else args.verify,
            chunk_size=chunk_size, chunk_gap_s=gap_ms / 1000.0,
            ack_margin_s=args.ack_margin if args.ack_margin is not None else d["ack_margin_s"],
            progress=progress,
        )
    end()
    out = res.to_dict()
    out.update(transport=transport.name, half=half, wavesample=number, pages=len(data) // 256, converted=converted)
    if args.json:
        print(json.dumps(out))
    elif res.ok:
        print(f"delivered {len(data):,} bytes ({len(data) // 256} pages) to {half} wavesample {number} over "
              f"{transport.name} in {res.elapsed_s:.1f} s (wire floor {res.wire_floor_s:.1f} s, "
              f"{res.tries} {'try' if res.tries == 1 else 'tries'}){', verified' if res.verified else ''}")
    if not res.ok:
        print(f"miragen deliver: failed: {res.error}", file=sys.stderr)
        return 1
    return 0


def _to_disk(args: argparse.Namespace, cfg: dict[str, Any], half: str, number: int) -> int:
    from ..fsutil import atomic_copy, atomic_write_bytes, atomic_write_text
    from ..mirage import disk
    from ..service.pipeline import IMG_CFG
    from ._wave import read_file

    d = cfg["deliver"]
    if args.sound:
        sound = args.sound
    elif args.half:
        sound = f"{args.half}{d['sound'][-1]}"
    else:
        sound = d["sound"]
    template_path = args.template or d["template"]
    template = read_file(template_path, max_bytes=disk.SIZE, what="template image") if template_path else disk.synthetic_template()
    data, warnings, converted = _wave_bytes(args, 65536)
    if args.tile_cycle:
        from ..audio.loops import fill_with_cycle
        from ..mirage import params

        ws = params.parse_sound_params(disk.read_param_block(template, sound)).wavesample(number)
        if ws.used:  # an unused wavesample: write_wavesample says so
            data = fill_with_cycle(data, ws.length)
    image, report = disk.write_wavesample(template, sound, number, data)
    out = atomic_write_bytes(args.disk, image)
    result: dict[str, Any] = {"ok": True, "image": str(out), "sound": sound, "wavesample": number,
                              "converted": converted, "warnings": warnings + list(report.get("warnings", [])),
                              "report": json.loads(json.dumps(report, default=str))}
    stick = cfg["paths"]["usb_stick"]
    if stick:
        try:
            copied = atomic_copy(out, Path(stick) / out.name)
            cfg_path = Path(stick) / "IMG.CFG"
            if not cfg_path.exists():
                atomic_write_text(cfg_path, IMG_CFG)
            elif "[::450560]" not in cfg_path.read_text(encoding="utf-8", errors="replace"):
                result["warnings"].append(f"{cfg_path} exists without a [::450560] section; FlashFloppy will not read the image (add the section from deploy/)")
            result["usb_stick"] = str(copied)
        except OSError as exc:
            result.update(ok=False, error=f"cannot copy to the USB stick {stick}: {exc.strerror or exc}")
    if args.json:
        print(json.dumps(result))
    else:
        for w in result["warnings"]:
            print(f"miragen deliver: warning: {w}", file=sys.stderr)
        if result["ok"]:
            print(f"wrote {sound} wavesample {number} ({len(data):,} bytes) into {out}"
                  + (f", copied to {result['usb_stick']}" if "usb_stick" in result else ""))
    if not result["ok"]:
        print(f"miragen deliver: failed: {result['error']}", file=sys.stderr)
        return 1
    return 0
