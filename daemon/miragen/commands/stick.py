"""``miragen stick prepare|check|list``: the Gotek's USB stick (FlashFloppy)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import config as configmod
from ..app import stick as stick_app
from ..errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stick",
        help="prepare, check and list the Gotek's USB stick (FlashFloppy)",
        description=(
            "The USB stick of a Gotek running FlashFloppy: its configuration for the Mirage, "
            "its state, and the disk images Miragen put there (docs/delivery-disk.md)."
        ),
    )
    ssub = p.add_subparsers(dest="stick_command", metavar="ACTION")
    ssub.required = True
    prep = ssub.add_parser(
        "prepare",
        help="check the stick and write FF.CFG and IMG.CFG for the Mirage",
        description=(
            "Check the stick (mounted, FAT, writable, free space, nothing half-written) and put "
            "FlashFloppy's FF.CFG (settings for the Mirage) and IMG.CFG (the Mirage disk's "
            "geometry) where FlashFloppy reads them: the root folder, or FF/ when it exists. "
            "A file already there is kept: what it lacks is reported, and --merge adds it."
        ),
    )
    _add_common(prep)
    prep.add_argument(
        "--merge",
        action="store_true",
        help="add Miragen's missing lines to an FF.CFG or IMG.CFG already there (your values "
        "are kept)",
    )
    prep.add_argument(
        "--clean",
        action="store_true",
        help="remove the temp files an interrupted copy left (only Miragen's own)",
    )
    prep.set_defaults(func=_prepare)
    chk = ssub.add_parser("check", help="check the stick; writes nothing")
    _add_common(chk)
    chk.set_defaults(func=_check)
    lst = ssub.add_parser(
        "list", help="the images in the order the Gotek lists them, with what each holds"
    )
    _add_common(lst)
    lst.add_argument(
        "--verify",
        action="store_true",
        help="compare each of Miragen's images with the digest it wrote (reads them all)",
    )
    lst.set_defaults(func=_list)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", nargs="?", metavar="PATH", help="the mounted stick (default: paths.usb_stick)"
    )
    p.add_argument("--config", metavar="FILE", help="configuration file for paths.usb_stick")
    p.add_argument("--json", action="store_true", help="print JSON")


def _stick_path(args: argparse.Namespace) -> str:
    if args.path:
        return args.path
    path = configmod.load(args.config)["paths"]["usb_stick"]
    if not path:
        raise InputError("paths.usb_stick", "no stick named: give PATH, or set paths.usb_stick")
    return path


def _describe_check(c: dict[str, Any]) -> str:
    """One line: where the stick is mounted, its filesystem, room, writable."""
    bits = []
    if c.get("mount_point"):
        own = "" if c.get("own_mount") else " (a folder below it)"
        bits.append(f"mounted at {c['mount_point']}{own}, {c['fstype']}")
    if c.get("free_bytes") is not None:
        bits.append(
            f"{c['free_bytes'] / 1e9:.2f} GB free of {c['total_bytes'] / 1e9:.2f} GB "
            f"({c['images_fit']:,} Mirage images fit)"
        )
    bits.append("writable" if c.get("writable") else "NOT writable")
    return f"{c['path']}: " + ", ".join(bits)


def _print_notes(warnings: list[str], problems: list[str]) -> None:
    for w in warnings:
        print(f"miragen: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"miragen: error: {p}", file=sys.stderr)


def _prepare(args: argparse.Namespace) -> int:
    res = stick_app.prepare(_stick_path(args), merge=args.merge, clean_up=args.clean)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0 if res["ok"] else 1
    print(_describe_check(res["check"]))
    for line in res["done"]:
        print(line)
    _print_notes(res["warnings"], res["check"]["problems"])
    if res["ok"]:
        print(
            "ready: images delivered here are named NNNN-<name>.img (the Gotek lists them in "
            "delivery order), listed in MIRAGEN.TXT; eject with `sync; umount` before unplugging"
        )
    return 0 if res["ok"] else 1


def _check(args: argparse.Namespace) -> int:
    c = stick_app.check(_stick_path(args)).to_dict()
    if args.json:
        print(json.dumps(c, indent=2))
        return 0 if c["ok"] else 1
    print(_describe_check(c))
    notes = list(c["warnings"])
    notes += [
        f"{c['path']}/{rel}: left by an interrupted copy (`miragen stick prepare --clean` "
        "removes it)"
        for rel in c["leftovers"]
    ]
    notes += [
        f"{c['path']}/{rel}: looks like a cut-off copy, not Miragen's (remove it by hand)"
        for rel in c["foreign_leftovers"]
    ]
    _print_notes(notes, c["problems"])
    return 0 if c["ok"] else 1


def _list(args: argparse.Namespace) -> int:
    res = stick_app.listing(_stick_path(args), verify=args.verify)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    rows = res["images"]
    mine = sum(1 for r in rows if r["miragen"])
    print(
        f"{res['path']}: {len(rows)} image{'' if len(rows) == 1 else 's'} in the Gotek's order, "
        f"{mine} written by Miragen"
    )
    if rows:
        print("\n".join(stick_app.render_rows(rows)))
    for name in res["missing"]:
        print(f"miragen: note: {name} is in MIRAGEN.JSON but no longer on the stick")
    _print_notes(res["warnings"], [])
    bad = [r for r in rows if r["miragen"] and r["note"] and r["note"] != "verified"]
    return 1 if args.verify and bad else 0
