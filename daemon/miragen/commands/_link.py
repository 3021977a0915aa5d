"""Shared by ``miragen keyboard``, ``backup`` and ``restore``: the way to the Mirage (the same
options as ``miragen deliver``), the handshake settings, and a one-line progress display.

:class:`ProgressLine` shows, on stderr, the bytes on the wire done of those planned (both
ways), the speed and the time left; on a terminal it rewrites one line at most ten times a
second, elsewhere (a log) it prints a line at every tenth. ``--quiet`` silences it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import MiragenError
from ..transport import Transport, open_transport
from ..transport.base import MIDI_BYTES_PER_S
from ..transport.simulated import Faults
from ._args import config_float, config_int, int_range

_DEVICE_OPTIONS = (  # option, transport kind, what it names
    ("port", "midi", "a part of a MIDI port name"),
    ("serial", "serial", "a serial device or pyserial URL (e.g. /dev/ttyTHS1)"),
    ("raw", "raw", "a raw MIDI device (e.g. /dev/snd/midiC1D0)"),
)


def add_link_options(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """--port/--serial/--raw/--sim (one of them; the group is returned for more), --baud and
    --sim-fault, as ``miragen deliver`` has them."""
    dest = p.add_mutually_exclusive_group()
    dest.add_argument(
        "--port", metavar="NAME", help="MIDI port whose name contains NAME (mido/rtmidi)"
    )
    dest.add_argument(
        "--serial", metavar="DEV", help="serial device or pyserial URL (e.g. /dev/ttyTHS1)"
    )
    dest.add_argument("--raw", metavar="DEV", help="raw MIDI device (/dev/snd/midiC1D0) or a pty")
    dest.add_argument("--sim", action="store_true", help="a simulated Mirage in this process")
    p.add_argument(
        "--baud",
        type=config_int("deliver", "baud", unit="baud"),
        metavar="B",
        help="serial speed, 300..4,000,000 (default: deliver.baud, 31250)",
    )
    p.add_argument(
        "--sim-fault",
        action="append",
        default=[],
        metavar="NAME[=N]",
        help="with --sim: a fault (see `miragen sim --help`)",
    )
    return dest


def add_handshake_options(p: argparse.ArgumentParser, *, verify: bool = True) -> None:
    """Tries, chunk sizes, the ACK wait; --no-verify and --no-ack when ``verify``."""
    p.add_argument(
        "--tries",
        type=config_int("deliver", "tries"),
        metavar="N",
        help="attempts per chunk or block, 1..20 (default: deliver.tries)",
    )
    p.add_argument(
        "--chunk-pages",
        type=int_range(1, 64),
        default=16,
        metavar="N",
        help="pages (256 bytes) per absolute-address message, 1..64 (default 16: 2.6 s on the "
        "wire; a retry resends one chunk)",
    )
    p.add_argument(
        "--chunk-size",
        type=config_int("deliver", "chunk_size", unit="bytes"),
        metavar="BYTES",
        help="bytes per paced write (default: deliver.chunk_size)",
    )
    p.add_argument(
        "--chunk-gap-ms",
        type=config_float("deliver", "chunk_gap_ms", unit="ms"),
        metavar="MS",
        help="pause after each paced write (default: deliver.chunk_gap_ms)",
    )
    p.add_argument(
        "--ack-margin",
        type=config_float("deliver", "ack_margin_s", unit="s"),
        metavar="S",
        help="seconds beyond the wire time to wait for an answer (default: deliver.ack_margin_s)",
    )
    if verify:
        p.add_argument(
            "--no-verify",
            dest="verify",
            action="store_false",
            help="do not read back what was sent (default: every chunk and block is read back)",
        )
        p.add_argument(
            "--no-ack",
            dest="ack",
            action="store_false",
            help="do not wait for ACK/NAK after absolute-address data (whether a Mirage answers "
            "0x0C is UNCERTAIN): the read-back is then the only proof",
        )


def add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps `miragen -q COMMAND` working too
        help="no progress line",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file")


def transport_spec(args: argparse.Namespace, d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The transport the options name (else ``deliver.transport``) and its overrides. An empty
    --port/--serial/--raw is an error: it never falls back to the simulated Mirage."""
    overrides: dict[str, Any] = {}
    for option, kind, what in _DEVICE_OPTIONS:
        value = getattr(args, option, None)
        if value is None:
            continue
        if not value.strip():
            raise MiragenError(
                f"--{option} {value!r}: no device given; name {what} "
                "(`miragen ports` lists what is here)"
            )
        spec = f"{kind}:{value}"
        break
    else:
        spec = "sim" if args.sim else d["transport"].strip()
    if args.sim_fault:
        if not args.sim:
            raise MiragenError("--sim-fault needs --sim")
        try:
            overrides["faults"] = Faults.parse(args.sim_fault)
        except ValueError as exc:
            raise MiragenError(f"--sim-fault: {exc}") from None
    if args.baud is not None:
        if spec.startswith("serial:"):
            overrides["baud"] = args.baud
        else:
            print(
                f"miragen: warning: --baud {args.baud} is ignored: the transport is {spec}, "
                "not a serial port",
                file=sys.stderr,
            )
    return spec, overrides


def open_link(args: argparse.Namespace, cfg: dict[str, Any]) -> Transport:
    """The transport the options name, paced as the options (else ``[deliver]``) say."""
    d = cfg["deliver"]
    spec, overrides = transport_spec(args, d)
    if spec == "sim" and not args.sim and not args.json:
        print(
            "miragen: note: deliver.transport is 'sim', a simulated Mirage; pass "
            "--raw/--serial/--port or set it in the configuration",
            file=sys.stderr,
        )
    size = args.chunk_size if args.chunk_size is not None else d["chunk_size"]
    gap = args.chunk_gap_ms if args.chunk_gap_ms is not None else d["chunk_gap_ms"]
    return open_transport(spec, cfg, chunk_size=size, chunk_gap_s=gap / 1000.0, **overrides)


def handshake(args: argparse.Namespace, d: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the transfers: tries, ack_margin_s, chunk_pages."""
    return {
        "tries": args.tries if args.tries is not None else d["tries"],
        "ack_margin_s": args.ack_margin if args.ack_margin is not None else d["ack_margin_s"],
        "chunk_pages": args.chunk_pages,
    }


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False)) or bool(getattr(args, "json", False))


def clock(seconds: float) -> str:
    """1:05, 12:00, 1:02:03."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressLine:
    """``label: 37.2%  48,640/130,698 bytes on the wire  3,118 B/s  0:26 left`` on stderr."""

    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None):
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.last = 0.0
        self.step = -1  # the last tenth printed (not a terminal)
        self.shown = False

    def text(self, done: int, total: int) -> str:
        spent = time.monotonic() - self.t0
        rate = done / spent if spent > 0 else 0.0
        speed = rate if spent >= 1.0 and rate > 0 else MIDI_BYTES_PER_S
        left = max(0, total - done) / speed
        pct = 100.0 * done / total if total else 100.0
        return (
            f"{self.label}: {pct:5.1f}%  {done:,}/{total:,} bytes on the wire  "
            f"{rate:,.0f} B/s  {clock(left)} left"
        )

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.1 and done < total:
                return
            self.last = now
            self.stream.write("\r" + self.text(done, total).ljust(79))
        else:
            step = int(10 * done / total) if total else 10
            if step <= self.step:
                return
            self.step = step
            self.stream.write(self.text(done, total) + "\n")
        self.shown = True
        self.stream.flush()

    def end(self) -> None:
        if self.enabled and self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def print_result(
    args: argparse.Namespace,
    res: dict[str, Any],
    what: str,
    done: Callable[[], None],
    remarks: str = "notes",
) -> int:
    """The end of a transfer (backup, restore, keyboard): ``--json`` prints ``res``; otherwise
    its ``remarks`` (``notes`` or ``warnings``, each on its own line), then ``done()`` (the
    success lines), or the failure with the hint to rerun a resumable one. Returns the exit
    status (1 on failure)."""
    if args.json:
        print(json.dumps(res))
    else:
        label = remarks.removesuffix("s")
        for remark in res[remarks]:
            print(f"miragen: {label}: {remark}", file=sys.stderr)
        if res["ok"]:
            done()
    if res["ok"]:
        return 0
    print(f"miragen: error: {what} failed: {res['error']}", file=sys.stderr)
    if res.get("resume") and not args.json:
        print(f"miragen: note: {res['resume']}", file=sys.stderr)
    return 1
