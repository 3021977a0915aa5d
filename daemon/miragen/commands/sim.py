"""``miragen sim --pty``: a simulated Mirage on a pseudo-terminal, as a separate process.

The first line of stdout is the pty path (open it as ``serial:PATH`` or ``raw:PATH``); then it
serves until SIGTERM/SIGINT. ``--state FILE``: after every change the memory, selection and
counters are written atomically to FILE as JSON (read it with
``miragen.transport.simulated.read_state``).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import time

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim",
        help="run a simulated Mirage on a pseudo-terminal (for tests and demos)",
        description="Run a simulated Mirage on a pseudo-terminal. Prints the pty path as the first "
        "line, then serves until killed (SIGTERM).",
    )
    p.add_argument(
        "--pty",
        action="store_true",
        required=True,
        help="serve on a new pseudo-terminal (required)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=N]",
        help="misbehave: drop, corrupt, silent, nak, corrupt_reply, noise, slow, disconnect "
        "(N: first N dumps; disconnect=N: after N bytes); repeatable",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="write the memory, selection and counters to FILE (JSON) after every change",
    )
    from ._args import int_range

    p.add_argument(
        "--pages-per-wavesample",
        type=int_range(1, 32),
        default=32,
        metavar="N",
        help="initial layout: wavesample n starts at page N·(n−1) (default 32)",
    )
    p.set_defaults(func=_run)


class _Stop(Exception):
    pass


def _run(args: argparse.Namespace) -> int:
    import tty

    from ..transport.base import MIDI_BYTES_PER_S, LinkLost
    from ..transport.simulated import Faults, SimulatedMirage

    try:
        faults = Faults.parse(args.fault)
    except ValueError as exc:
        print(f"miragen: error: --fault: {exc}", file=sys.stderr)
        return 2
    if not 1 <= args.pages_per_wavesample <= 32:
        print("miragen: error: --pages-per-wavesample must be 1..32", file=sys.stderr)
        return 2
    sim = SimulatedMirage(faults, pages_per_wavesample=args.pages_per_wavesample)
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing, no ^C: a MIDI byte pipe
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    stop = {"flag": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    saved = -1

    def save() -> None:
        nonlocal saved
        if args.state and sim.changes != saved:
            sim.save_state(args.state)
            saved = sim.changes

    save()
    print(path, flush=True)
    log.info("simulated Mirage on %s (faults: %s)", path, ", ".join(args.fault) or "none")
    rate = MIDI_BYTES_PER_S if faults.slow else None
    out = bytearray()
    in_budget = out_budget = 0.0
    last = time.monotonic()
    link_up = True
    try:
        while not stop["flag"]:
            now = time.monotonic()
            if rate:  # true speed: a token bucket each way, at most 16 bytes of burst
                in_budget = min(16.0, in_budget + (now - last) * rate)
                out_budget = min(16.0, out_budget + (now - last) * rate)
            last = now
            if not link_up:
                time.sleep(0.05)
                continue
            want_read = not rate or in_budget >= 1
            want_write = bool(out) and (not rate or out_budget >= 1)
            timeout = 0.1 if (want_read or want_write) and not rate else 0.002
            r, w, _ = select.select(
                [master] if want_read else [], [master] if want_write else [], [], timeout
            )
            if r:
                n = int(in_budget) if rate else 65536
                try:
                    data = os.read(master, max(1, n))
                except BlockingIOError:
                    data = b""
                except OSError:
                    data = b""
                if rate:
                    in_budget -= len(data)
                if data:
                    try:
                        for reply in sim.feed(data):
                            out += reply
                    except LinkLost:
                        os.close(master)
                        link_up = False
                        log.info("fault 'disconnect': pty closed")
                    save()
            if w and link_up:
                n = int(out_budget) if rate else len(out)
                try:
                    k = os.write(master, bytes(out[: max(1, n)]))
                    del out[:k]
                    if rate:
                        out_budget -= k
                except BlockingIOError:
                    pass
    finally:
        if link_up:
            os.close(master)
        os.close(slave)
        save()
    return 0
