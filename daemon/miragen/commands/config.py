"""``miragen config show|check``."""

from __future__ import annotations

import argparse
import sys

from .. import config as configmod
from ..engines.base import config_options
from ..errors import ConfigError, EngineError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show or check the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    show = csub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $MIRAGEN_CONFIG, /etc/miragen/miragen.toml, or the "
        "embedded default)",
    )
    show.add_argument(
        "--default", action="store_true", help="print the embedded default file, with its comments"
    )
    show.set_defaults(func=_show)
    check = csub.add_parser(
        "check", help="check a configuration file; lists every unknown key and bad value"
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_check)


def _show(args: argparse.Namespace) -> int:
    if args.default:
        sys.stdout.write(configmod.default_text())
        return 0
    cfg = configmod.load(args.config)
    sys.stdout.write(configmod.render(cfg))
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        cfg = configmod.load(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"miragen: error: {exc.source}: {problem}", file=sys.stderr)
        return 2
    try:  # train.set's keys and values, as the engine will read them when it trains
        config_options(cfg["train"]["engine"], cfg["train"]["set"], f"{args.file}: train.set")
    except EngineError as exc:
        print(f"miragen: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    return 0
