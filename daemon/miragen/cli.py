"""The ``miragen`` command. Thin: parses, calls one function, prints.

Each subcommand lives in ``miragen/commands/<name>.py`` and exposes
``register(subparsers)``; this module discovers them, so adding a command never touches this
file, and loads only the one a command line names (all of them for ``--help``). Command modules
import heavy libraries (torch, pygan, mido) inside their handlers only, so ``miragen --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from typing import NoReturn

from . import __version__, commands
from .errors import ConfigError, InputError, MiragenError

log = logging.getLogger("miragen")

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, and its verdict is "no" (gate failed, NAK after retries…)
EXIT_BAD_INPUT = 2  # bad input, bad usage, bad config


class Parser(argparse.ArgumentParser):
    """argparse with the project's one error prefix: ``miragen: error: COMMAND: ...`` (exit 2),
    after the usage line, for every command and subcommand."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        words = self.prog.split()[1:]
        where = f"{' '.join(words)}: " if words else ""
        self.exit(EXIT_BAD_INPUT, f"miragen: error: {where}{message}\n")


def command_modules(argv: list[str] | None = None) -> list[str]:
    """The command modules to load: only the one ``argv`` names (``miragen convert …`` needs
    nothing of the daemon, the demo or the engines), every one for ``--help``, no command or an
    unknown one (so the usage lists them all). The top-level options take no value, so the
    command is the first word that is not an option."""
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if m.name[0] != "_")
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    return [first] if first in names else names


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="miragen",
        description="Invent new sounds for the Ensoniq Mirage: convert, train, generate, judge, "
        "deliver.",
    )
    parser.add_argument("--version", action="version", version=f"miragen {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in command_modules(argv):
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def error_object(exc: BaseException) -> dict:
    """The JSON form of an error, printed by ``--json`` commands instead of nothing."""
    obj: dict = {"ok": False, "error": str(exc)}
    if isinstance(exc, ConfigError):
        obj.update(source=exc.source, problems=exc.problems)
    elif isinstance(exc, InputError):
        obj.update(file=exc.path, reason=exc.reason)
    elif isinstance(exc, OSError):
        obj.update(file=exc.filename, reason=exc.strerror or str(exc))
    return obj


def _error_lines(exc: BaseException, command: str) -> list[str]:
    """What follows ``miragen: error:``: one line a problem of a configuration, else one line."""
    if isinstance(exc, ConfigError):
        return [f"{exc.source}: {problem}" for problem in exc.problems]
    if isinstance(exc, MemoryError):
        return [f"{command}: out of memory"]
    if isinstance(exc, OSError):  # a path the system refused (read-only, /proc, no space, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        return [f"{where}{exc.strerror or exc}"]
    return [str(exc)]


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every error a user can cause ends as one line on stderr naming the file
    (or key, or port) and the reason, exit 2; with ``--json`` also as an error object on stdout."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        rc = args.func(args)
    except (MiragenError, MemoryError, OSError) as exc:
        lines = _error_lines(exc, args.command)
        for line in lines:
            print(f"miragen: error: {line}", file=sys.stderr)
        if getattr(args, "json", False):
            print(
                json.dumps(
                    error_object(exc)
                    if not isinstance(exc, MemoryError)
                    else {"ok": False, "error": lines[0]}
                )
            )
        return EXIT_FAILED if isinstance(exc, MemoryError) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("miragen: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
