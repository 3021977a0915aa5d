"""``miragen status``: what the daemon holds and does (read-only)."""

from __future__ import annotations

import argparse
import json

from .. import config as configmod
from ..service.status import collect, render


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="show the daemon's queue, classes, models, deliveries and transport health"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $MIRAGEN_CONFIG, /etc/miragen/miragen.toml, or the "
        "embedded default)",
    )
    p.add_argument("--state", metavar="DIR", help="state folder (overrides paths.state)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)  # a ConfigError is printed by miragen.cli, one line a problem
    if args.state:
        cfg["paths"]["state"] = args.state
    info = collect(cfg)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
    else:
        print(render(info))
    return 0
