"""``miragen daemon``: the long-running service (systemd unit ``miragen.service``)."""

from __future__ import annotations

import argparse
import logging

from .. import config as configmod
from ..service.daemon import Daemon
from ..service.triggers import check_trigger_tables
from ._args import float_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "daemon",
        help="run the service: drop folder, job queue, MIDI triggers, delivery",
        description="Run the Miragen service on the state folder of the configuration "
        "(see docs/daemon.md). Stops cleanly on SIGTERM.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $MIRAGEN_CONFIG, /etc/miragen/miragen.toml, or the "
        "embedded default)",
    )
    p.add_argument("--state", metavar="DIR", help="state folder (overrides paths.state)")
    p.add_argument(
        "--until-idle",
        action="store_true",
        help="process the drop folders and the queue, then exit",
    )
    p.add_argument(
        "--max-seconds",
        type=float_range(0, unit="s", lo_open=True),
        metavar="S",
        help="stop after S seconds whatever is left (queue kept)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)  # a ConfigError is printed by miragen.cli, one line a problem
    # each [[trigger]]'s request too (keyboard, kit, octaves together), before anything starts
    check_trigger_tables(cfg["trigger"], str(args.config or "configuration"))
    if args.state:
        cfg["paths"]["state"] = args.state
    if args.verbose == 0 and not args.quiet:
        logging.getLogger().setLevel(cfg["logging"]["level"])
    return Daemon(cfg).run(until_idle=args.until_idle, max_seconds=args.max_seconds)
