"""``miragen backup``: read a Mirage's memory over MIDI into a disk image, resumably.
docs/backup.md."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import config as configmod
from ..app import backup as B
from ..app import disk as disk_app
from ..fsutil import check_output
from . import _link
from ._args import int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backup",
        help="read both halves of a Mirage (wave memory and parameter blocks) into a disk image",
        description="Read both parameter blocks (0x03/0x13) and both halves' 64 KB of wave memory "
        "(0x0B, in chunks) and rebuild a disk image: the lower half in sound lower1 (--slot), the "
        "upper in upper1. Resumable: OUT.part and OUT.progress.json keep what was read; rerun the "
        "same command after a dropped connection. docs/backup.md.",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.img", help="the image to write")
    p.add_argument(
        "--template",
        metavar="T.img",
        help="image made on a real Mirage (its OS makes the result bootable); without one, the "
        "synthetic template: the image does NOT boot a Mirage",
    )
    p.add_argument(
        "--slot",
        type=int_range(1, 3),
        default=1,
        metavar="N",
        help="sounds of the image that receive the halves: lowerN and upperN (default 1)",
    )
    p.add_argument(
        "--restart", action="store_true", help="ignore an interrupted backup and start over"
    )
    _link.add_link_options(p)
    _link.add_handshake_options(p, verify=False)
    _link.add_report_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    d = cfg["deliver"]
    template = disk_app.load_template(args.template) if args.template else None
    part, prog = B.part_paths(args.output)
    inputs = [args.template] if args.template else []
    for path, what in ((args.output, "output image"), (part, "partial backup"), (prog, "progress")):
        check_output(path, inputs=inputs, what=what)
    with _link.open_link(args, cfg) as transport:
        show = _link.ProgressLine("backup", enabled=not _link.quiet(args))
        hs = _link.handshake(args, d)
        res = B.backup(
            transport,
            args.output,
            template=template,
            slot=args.slot,
            chunk_pages=hs["chunk_pages"],
            tries=hs["tries"],
            ack_margin_s=hs["ack_margin_s"],
            restart=args.restart,
            progress=show,
        )
        show.end()
    res["template"] = args.template
    return _print(args, res)


def _print(args: argparse.Namespace, res: dict[str, Any]) -> int:
    def done() -> None:
        sim = " of the simulated Mirage" if res["transport"] == "sim" else ""
        print(
            f"backed up both halves{sim} into {res['image']} (sounds lower{res['slot']}, "
            f"upper{res['slot']}) over {res['transport']} in {res['elapsed_s']:.1f} s "
            f"(wire floor {res['wire_floor_s']:.1f} s; {res['chunks_read']} chunk(s) read, "
            f"{res.get('resumed_chunks', 0)} resumed)"
        )
        if res["synthetic"]:
            print(
                "the image is built on the synthetic template: it has NO operating system "
                "and does NOT boot a Mirage (give --template for one that does)"
            )
        for p in res["problems"]:
            print(f"miragen: warning: {p}", file=sys.stderr)

    return _link.print_result(args, res, "backup", done)
