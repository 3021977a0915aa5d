"""The ``miragen`` command. Thin: parses, calls one function, prints.

Each subcommand lives in ``miragen/commands/<name>.py`` and exposes
``register(subparsers)``; this module discovers them, so adding a command never touches this
file. Command modules import heavy libraries (torch, pygan, mido) inside their handlers only,
so ``miragen --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from . import __version__
from .errors import ConfigError, MiragenError

log = logging.getLogger("miragen")

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, and its verdict is "no" (gate failed, NAK after retries…)
EXIT_BAD_INPUT = 2  # bad input, bad usage, bad config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miragen",
        description="Invent new sounds for the Ensoniq Mirage: convert, train, generate, judge, deliver.",
    )
    parser.add_argument("--version", action="version", version=f"miragen {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        rc = args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"miragen {args.command}: {exc.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MiragenError as exc:
        print(f"miragen: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("miragen: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
