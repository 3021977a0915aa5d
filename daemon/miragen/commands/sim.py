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
from collections.abc import Callable

from ..transport.base import MIDI_BYTES_PER_S, LinkLost
from ..transport.simulated import Faults, SimulatedMirage
from ._args import int_range

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
    import tty  # POSIX only (termios): imported here, so `miragen` still starts elsewhere

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
    save = _state_saver(sim, args.state)
    save()
    print(path, flush=True)
    log.info("simulated Mirage on %s (faults: %s)", path, ", ".join(args.fault) or "none")
    pump = _Pump(sim, master, MIDI_BYTES_PER_S if faults.slow else None, save)
    try:
        while not stop["flag"]:
            pump.step()
    finally:
        if pump.link_up:
            os.close(master)
        os.close(slave)
        save()
    return 0


def _state_saver(sim: SimulatedMirage, state: str | None) -> Callable[[], None]:
    """A function that writes the simulator's state to ``state`` when it has changed."""
    saved = -1

    def save() -> None:
        nonlocal saved
        if state and sim.changes != saved:
            sim.save_state(state)
            saved = sim.changes

    return save


class _Pump:
    """Moves bytes between the pty and the simulated Mirage: at once, or with ``rate`` (the
    'slow' fault) at true MIDI speed, a token bucket each way with at most 16 bytes of burst.
    A 'disconnect' fault closes the pty (``link_up`` False) and the pump idles from then on."""

    def __init__(
        self,
        sim: SimulatedMirage,
        master: int,
        rate: float | None,
        save: Callable[[], None],
    ):
        self.sim, self.master, self.rate, self.save = sim, master, rate, save
        self.out = bytearray()  # replies not yet written
        self.in_budget = self.out_budget = 0.0
        self.last = time.monotonic()
        self.link_up = True

    def step(self) -> None:
        """One turn: refill the budgets, wait a little for the pty, read and write."""
        rate = self.rate
        now = time.monotonic()
        if rate:
            self.in_budget = min(16.0, self.in_budget + (now - self.last) * rate)
            self.out_budget = min(16.0, self.out_budget + (now - self.last) * rate)
        self.last = now
        if not self.link_up:
            time.sleep(0.05)
            return
        want_read = not rate or self.in_budget >= 1
        want_write = bool(self.out) and (not rate or self.out_budget >= 1)
        timeout = 0.1 if (want_read or want_write) and not rate else 0.002
        fd = self.master
        r, w, _ = select.select([fd] if want_read else [], [fd] if want_write else [], [], timeout)
        if r:
            self._read()
        if w and self.link_up:
            self._write()

    def _read(self) -> None:
        n = int(self.in_budget) if self.rate else 65536
        try:
            data = os.read(self.master, max(1, n))
        except BlockingIOError:
            data = b""
        except OSError:
            data = b""
        if self.rate:
            self.in_budget -= len(data)
        if not data:
            return
        try:
            for reply in self.sim.feed(data):
                self.out += reply
        except LinkLost:
            os.close(self.master)
            self.link_up = False
            log.info("fault 'disconnect': pty closed")
        self.save()

    def _write(self) -> None:
        n = int(self.out_budget) if self.rate else len(self.out)
        try:
            k = os.write(self.master, bytes(self.out[: max(1, n)]))
            del self.out[:k]
            if self.rate:
                self.out_budget -= k
        except BlockingIOError:
            pass
