"""``miragen keyboard``: a whole playable sound (up to 8 wavesamples across one half), sent by
SysEx or written into a disk image. docs/keyboard.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import config as configmod
from ..app import disk as disk_app
from ..app import keyboard as K
from ..errors import FormatError, InputError
from ..fsutil import check_output, prepare_output_dir
from ..limits import PAGE
from ..mirage import params as P
from . import _link, _wave
from ._args import int_range

SOUNDS = ("lower1", "upper1", "lower2", "upper2", "lower3", "upper3")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keyboard",
        help="a whole playable sound: up to 8 wavesamples across a half, by SysEx or on a disk",
        description="Lay FILE... (lowest keys first; or one FILE at --octaves N) out across one "
        "half: wavesamples one after another in its 256 pages, top keys splitting the keyboard, "
        "loop points on whole pages, the program parameters of a --preset. Send it by SysEx "
        "(0x0C wave data, 0x05/0x15 parameter block, each read back) or write it into a disk "
        "image (--disk). docs/keyboard.md.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files (WAV/AIFF/FLAC/.pcm)")
    _add_layout_options(p)
    dest = _link.add_link_options(p)
    dest.add_argument("--disk", metavar="OUT.img", help="write a disk image instead of SysEx")
    p.add_argument(
        "--template",
        metavar="T.img",
        help="with --disk: template image (default: deliver.template, else the synthetic one)",
    )
    p.add_argument(
        "--sound", choices=SOUNDS, help="with --disk: sound of the image (default: HALF + 1)"
    )
    p.add_argument(
        "--force", action="store_true", help="with --disk: use a template that looks implausible"
    )
    _link.add_handshake_options(p)
    _link.add_report_options(p)
    _wave.add_convert_options(p)
    p.set_defaults(func=_run)


def _add_layout_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="organ",
        choices=tuple(K.PRESETS),
        help="program parameters (filter, envelopes; drum never loops): default organ",
    )
    p.add_argument("--list-presets", action="store_true", help="list the presets and stop")
    p.add_argument(
        "--octaves",
        type=int_range(1, 8),
        metavar="N",
        help="one FILE at N octaves: wavesample k is the sound k octaves up, half as long",
    )
    p.add_argument(
        "--top-keys",
        metavar="K,K,...",
        help="top key of each wavesample, rising: 0..60 or note names C2..C7 (default: even "
        "split of the 61 keys)",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto: the preset decides, the loop placed where the sound holds (default)",
    )
    p.add_argument(
        "--cycle", action="store_true", help="each FILE is one single cycle: it loops on its pages"
    )
    p.add_argument("--half", choices=("lower", "upper"), help="default: deliver.half")
    p.add_argument(
        "--program",
        type=int_range(1, 4),
        action="append",
        metavar="P",
        help="program the preset sets, repeatable (default: all four)",
    )


def _list_presets() -> int:
    for pre in K.PRESETS.values():
        fields = ", ".join(f"{k}={v}" for k, v in pre.program.items())
        print(f"{pre.name:<6} {pre.summary}; loop {pre.loop}\n       {fields}")
    return 0


def _sounds(args: argparse.Namespace) -> tuple[list[K.Sound], list[str]]:
    """FILE... (or one FILE at --octaves) → the keyboard's sounds and warnings."""
    loop = "cycle" if args.cycle else args.loop
    if args.octaves:
        if len(args.files) != 1:
            raise InputError("--octaves", f"takes one FILE (got {len(args.files)})")
        if args.cycle:
            raise InputError("--octaves", "does not go with --cycle")
        return K.octave_sounds(
            args.files[0],
            args.octaves,
            rate=args.rate,
            raw_rate=args.raw_rate,
            dither=args.dither,
            cut=args.cut,
            loop=loop,
        )
    if not 1 <= len(args.files) <= K.MAX_ZONES:
        raise InputError("keyboard", f"{len(args.files)} files; give 1 to {K.MAX_ZONES}")
    share = (K.PAGES // len(args.files)) * PAGE if args.cut else K.PAGES * PAGE
    sounds, warnings = [], []
    for f in args.files:
        if args.cycle:
            wave = _wave.load_cycle(f, args, max_bytes=share)
        else:
            wave = _wave.load_wave(f, args, max_bytes=share)
        warnings += wave.warnings
        sounds.append(K.Sound(wave.data, Path(f).name, loop))
    return sounds, warnings


def _top_keys(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [P.parse_key(t) for t in text.split(",")]
    except FormatError as exc:
        raise InputError("--top-keys", str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    if args.list_presets:
        return _list_presets()
    cfg = configmod.load(args.config)
    d = cfg["deliver"]
    half = args.half or d["half"]
    if not args.files:
        raise InputError("keyboard", "no FILE given (--list-presets lists the presets)")
    transport = None if args.disk else _link.open_link(args, cfg)  # a bad device fails first
    try:
        sounds, warnings = _sounds(args)
        keyboard = K.plan_keyboard(
            sounds,
            args.preset,
            top_keys=_top_keys(args.top_keys),
            programs=args.program or (1, 2, 3, 4),
        )
        if args.disk:
            return _to_disk(args, cfg, keyboard, half, warnings)
        show = _link.ProgressLine(f"keyboard → {half}", enabled=not _link.quiet(args))
        res = K.deliver_keyboard(
            transport,
            keyboard,
            half,
            verify=args.verify,
            require_ack=args.ack,
            progress=show,
            **_link.handshake(args, d),
        )
        show.end()
    finally:
        if transport is not None:
            transport.close()
    res["warnings"] = warnings + res.get("warnings", [])
    res["simulated"] = transport.name == "sim"
    return _print_result(args, res)


def _print_result(args: argparse.Namespace, res: dict[str, Any]) -> int:
    def done() -> None:
        kb = res["keyboard"]
        where = "the simulated Mirage's" if res["simulated"] else "the"
        print(
            f"keyboard '{kb['preset']}': {len(kb['zones'])} wavesample(s), {kb['pages']} "
            f"pages ({kb['bytes']:,} bytes) into {where} {res['half']} half over "
            f"{res['transport']} in {res['elapsed_s']:.1f} s (wire floor "
            f"{res['wire_floor_s']:.1f} s){', verified' if res['verified'] else ''}"
        )
        for line in zone_lines(kb["zones"]):
            print(line)

    return _link.print_result(args, res, "keyboard delivery", done, remarks="warnings")


def zone_lines(zones: list[dict[str, Any]]) -> list[str]:
    """One line per wavesample of a keyboard report."""
    lines, low = [], 0
    for z in zones:
        loop = (
            f"loop {z['loop_start_page']}→{z['loop_end_page']}.{z['loop_end_fine']}"
            if z["loop_on"]
            else "no loop"
        )
        keys = f"{P.key_name(low)}..{z['top_note']}"
        lines.append(
            f"  ws{z['wavesample']}  keys {low}..{z['top_key']} ({keys})  pages "
            f"{z['start_page']}..{z['end_page']}  {loop}  {z['name']}"
        )
        low = z["top_key"] + 1
    return lines


def _to_disk(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    keyboard: K.Keyboard,
    half: str,
    warnings: list[str],
) -> int:
    d = cfg["deliver"]
    sound = args.sound or f"{half}{d['sound'][-1]}"
    template_path = args.template or d["template"]
    inputs = [template_path, *args.files]
    if Path(args.disk).parent.exists():  # a missing folder is created below (and said so)
        check_output(args.disk, inputs=inputs, what="output image")
    template = disk_app.load_template(template_path, force=args.force)
    try:
        image, report = K.write_keyboard_image(template, keyboard, sound, force=True)
    except FormatError as exc:
        raise InputError(template_path or "the synthetic template", str(exc)) from None
    _, created = prepare_output_dir(Path(args.disk).parent, what="folder of the image")
    check_output(args.disk, inputs=inputs, what="output image")
    pub = disk_app.publish(image, args.disk, img_cfg=False, stick=cfg["paths"]["usb_stick"])
    report.update(ok=pub["ok"], image=pub["image"], template=template_path or None)
    report["warnings"] = warnings + report["warnings"] + pub["warnings"]
    if created:
        print(f"miragen: note: created the folder {Path(args.disk).parent}", file=sys.stderr)
    for key in ("usb_stick", "error"):
        if key in pub:
            report[key] = pub[key]
    if args.json:
        print(json.dumps(report))
        return 0 if report["ok"] else 1
    for w in report["warnings"]:
        print(f"miragen: warning: {w}", file=sys.stderr)
    print(
        f"wrote keyboard '{keyboard.preset.name}' ({len(keyboard.zones)} wavesample(s), "
        f"{keyboard.pages} pages) into {sound} of {report['image']}"
        + (f" ({report['note']})" if "note" in report else "")
        + (f", copied to {report['usb_stick']}" if "usb_stick" in report else "")
    )
    for line in zone_lines(report["zones"]):
        print(line)
    if not report["ok"]:
        print(f"miragen: error: {report['error']}", file=sys.stderr)
        return 1
    return 0
