"""``miragen demo [--dir DIR] [--seconds S] [--json]``: the whole pipeline, no hardware needed."""

from __future__ import annotations

import argparse
import json
import sys

from ..demo.run import DEFAULT_SECONDS, run_demo
from ..demo.summary import format_summary
from ._args import int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the built-in sounds: train, generate, judge, deliver "
        "(no hardware)",
        description="Make a studio folder, drop the built-in sounds into it (four classes of "
        "single cycles, one of one-shot hits), run the "
        "real daemon (ingest, train, judge, generate, postprocess), deliver the best sound of each "
        "class into a disk image and by SysEx to a simulated Mirage on a pseudo-terminal, and "
        "print a summary. Exit 0 when every stage succeeded "
        "(a judge verdict of FAIL is reported, not an error).",
    )
    p.add_argument(
        "--dir",
        default="miragen-demo",
        metavar="DIR",
        help="studio folder (default: ./miragen-demo); a rerun replaces the demo's own files in it",
    )
    p.add_argument(
        "--seconds",
        type=int_range(1, unit="s"),
        default=DEFAULT_SECONDS,
        metavar="S",
        help="training time in all, split among the rounds of training (two classes at a time "
        f"on two or more cores, else one; default: {DEFAULT_SECONDS})",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.seconds < 1:
        print(f"miragen: error: --seconds {args.seconds}: must be at least 1", file=sys.stderr)
        return 2

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    summary = run_demo(args.dir, args.seconds, progress=None if args.quiet else progress)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(format_summary(summary))
    return 0 if summary["ok"] else 1
