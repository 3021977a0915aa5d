"""``miragen sim --pty``: a simulated Mirage on a pseudo-terminal, as a separate process.

The first line of stdout is the pty path (open it as ``serial:PATH`` or ``raw:PATH``); then it
serves until SIGTERM/SIGINT. ``--state FILE``: after every change the memory, selection and
counters are written atomically to FILE as JSON (read it with
``miragen.transport.simulated.read_state``). ``--load FILE`` starts from such a file: the same
instrument after a dropped link, reached on a new pty.
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
        help="misbehave: drop, corrupt, silent, nak, mute, corrupt_reply, noise, slow, disconnect "
        "(N: first N dumps or requests; disconnect=N: after N bytes); repeatable",
    )
    p.add_argument(
        "--state",
        metavar="FILE",
        help="write the memory, selection and counters to FILE (JSON) after every change",
    )
    p.add_argument(
        "--load",
        metavar="FILE",
        help="start with the memory, parameter blocks and selection of a --state FILE",
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
    if args.load:
        try:
            sim.load_state(args.load)
        except (OSError, ValueError, KeyError) as exc:
            print(f"miragen: error: --load {args.load}: {exc}", file=sys.stderr)
            return 2
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


class _Wire:
    """One direction of a MIDI cable at ``rate`` bytes/s: a run of bytes starts when the first
    of them is there and byte n of the run may pass at ``start + n / rate``. A late turn of the
    pump catches up (a real wire does not lose time when the receiver looks late); the run
    ends once the wire has been idle for :data:`IDLE_S`, so nothing passes early."""

    IDLE_S = 0.002

    def __init__(self, rate: float):
        self.rate = rate
        self.start: float | None = None
        self.passed = 0

    def allowed(self, now: float, waiting: bool) -> int:
        """Bytes that may pass now (``waiting``: some are there to pass)."""
        if self.start is not None and not waiting:
            if now - (self.start + self.passed / self.rate) > self.IDLE_S:
                self.start = None  # idle: the next byte starts a new run
        if not waiting:
            return 0
        if self.start is None:
            self.start, self.passed = now, 0
        return max(0, int((now - self.start) * self.rate) - self.passed)

    def took(self, n: int) -> None:
        self.passed += n


class _Pump:
    """Moves bytes between the pty and the simulated Mirage: at once, or with ``rate`` (the
    'slow' fault) at true MIDI speed each way (:class:`_Wire`). A 'disconnect' fault closes the
    pty (``link_up`` False) and the pump idles from then on."""

    def __init__(
        self,
        sim: SimulatedMirage,
        master: int,
        rate: float | None,
        save: Callable[[], None],
    ):
        self.sim, self.master, self.rate, self.save = sim, master, rate, save
        self.out = bytearray()  # replies not yet written
        self.wire_in = _Wire(rate) if rate else None
        self.wire_out = _Wire(rate) if rate else None
        self.link_up = True

    def step(self) -> None:
        """One turn: wait a little for the pty, read and write what the wires let pass."""
        if not self.link_up:
            time.sleep(0.05)
            return
        fd = self.master
        if not self.rate:
            want_write = bool(self.out)
            r, w, _ = select.select([fd], [fd] if want_write else [], [], 0.1)
            if r:
                self._read(65536)
            if w and self.link_up:
                self._write(len(self.out))
            return
        now = time.monotonic()
        readable = bool(select.select([fd], [], [], 0)[0])
        n_in = self.wire_in.allowed(now, readable)
        n_out = self.wire_out.allowed(now, bool(self.out))
        if n_in:
            self.wire_in.took(self._read(n_in))
        if n_out and self.link_up:
            self.wire_out.took(self._write(n_out))
        if not n_in and not n_out:
            select.select([fd], [], [], 0.0005 if (readable or self.out) else 0.002)

    def _read(self, n: int) -> int:
        try:
            data = os.read(self.master, max(1, n))
        except (BlockingIOError, OSError):
            data = b""
        if not data:
            return 0
        try:
            for reply in self.sim.feed(data):
                self.out += reply
        except LinkLost:
            os.close(self.master)
            self.link_up = False
            log.info("fault 'disconnect': pty closed")
        self.save()
        return len(data)

    def _write(self, n: int) -> int:
        try:
            k = os.write(self.master, bytes(self.out[: max(1, n)]))
        except BlockingIOError:
            return 0
        del self.out[:k]
        return k
