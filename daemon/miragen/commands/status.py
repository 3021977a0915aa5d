"""``miragen status``: what the daemon holds and does (read-only)."""

from __future__ import annotations

import argparse
import json
import sys

from .. import config as configmod
from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the daemon's queue, classes, models, deliveries and transport health")
    p.add_argument("--config", metavar="FILE", help="configuration file (default: $MIRAGEN_CONFIG, /etc/miragen/miragen.toml, or the embedded default)")
    p.add_argument("--state", metavar="DIR", help="state folder (overrides paths.state)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg = configmod.load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"miragen status: {exc.source}: {problem}", file=sys.stderr)
        return 2
    if args.state:
        cfg["paths"]["state"] = args.state
    from ..service.status import collect, render

    info = collect(cfg)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
    else:
        print(render(info))
    return 0
