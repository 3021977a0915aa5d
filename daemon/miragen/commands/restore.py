"""``miragen restore``: send sounds of a disk image back to a Mirage over MIDI, verified and
resumable. docs/backup.md."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import config as configmod
from ..app import backup as B
from . import _link, _wave

SOUNDS = ("lower1", "upper1", "lower2", "upper2", "lower3", "upper3")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore",
        help="send sounds of a disk image to a Mirage (wave area and parameter block, verified)",
        description="Send each --sound of IMAGE to its half (or --half): the 64 KB wave area by "
        "0x0C in chunks, each acknowledged and read back, then the parameter block by 0x05/0x15, "
        "read back. Resumable: IMAGE.restore.progress.json keeps what was restored; rerun the "
        "same command after a dropped connection. docs/backup.md.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "--sound",
        action="append",
        choices=SOUNDS,
        metavar="SOUND",
        help="sound of the image, repeatable: lower1..upper3 (default: lower1 and upper1)",
    )
    p.add_argument(
        "--half", choices=("lower", "upper"), help="with one --sound: the half it goes to"
    )
    p.add_argument(
        "--restart", action="store_true", help="ignore an interrupted restore and start over"
    )
    p.add_argument("--force", action="store_true", help="read an image that looks implausible")
    _link.add_link_options(p)
    _link.add_handshake_options(p)
    _link.add_report_options(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    d = cfg["deliver"]
    image = _wave.read_disk_image(args.image, force=args.force)
    targets = B.restore_targets(args.sound or ["lower1", "upper1"], args.half)
    state_path = B.restore_state_path(args.image)
    notes = []
    if not os.access(state_path.parent, os.W_OK):
        notes.append(f"{state_path.parent} is not writable: this restore cannot be resumed")
        state_path = None
    with _link.open_link(args, cfg) as transport:
        show = _link.ProgressLine("restore", enabled=not _link.quiet(args))
        res = B.restore(
            transport,
            image,
            targets,
            state_path=state_path,
            verify=args.verify,
            require_ack=args.ack,
            restart=args.restart,
            progress=show,
            **_link.handshake(args, d),
        )
        show.end()
    res["notes"] = notes + res["notes"]
    res["image"] = args.image
    return _print(args, res)


def _print(args: argparse.Namespace, res: dict[str, Any]) -> int:
    def done() -> None:
        what = ", ".join(f"{t['sound']} → {t['half']}" for t in res["targets"])
        sim = "the simulated Mirage" if res["transport"] == "sim" else res["transport"]
        print(
            f"restored {what} from {res['image']} to {sim} in {res['elapsed_s']:.1f} s "
            f"(wire floor {res['wire_floor_s']:.1f} s){', verified' if res['verified'] else ''}"
        )

    return _link.print_result(args, res, "restore", done)
