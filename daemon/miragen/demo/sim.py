"""The simulated Mirage the demo delivers to: ``miragen sim --pty`` as a child process."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import MiragenError

SIM_START_S = 30.0


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the demo's finally still stops the sim
        pass


class SimProcess:
    """``miragen sim --pty --state FILE`` as a child process; always stopped by :meth:`stop`."""

    def __init__(self, state_file: Path, log_file: Path):
        self.state_file = state_file
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.pty = ""

    def start(self) -> str:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_file, "ab") as err:
            # its own session: a Ctrl-C in the terminal stops the daemon cleanly, and the demo then
            # stops the sim itself; it dies with the demo (SIGTERM) even if the demo is killed
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(self.state_file)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # noqa: PLW1509 (started before the daemon's threads)
        assert self.proc.stdout is not None
        line = b""
        deadline = time.monotonic() + SIM_START_S
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 256)
                if not chunk:
                    break
                line += chunk
        self.pty = line.decode("ascii", "replace").strip()
        if not self.pty.startswith("/dev/"):
            self.stop()
            raise MiragenError(
                f"the simulated Mirage did not start (no pty path within {SIM_START_S:.0f} s; see "
                f"{self.log_file})"
            )
        return self.pty

    def stop(self) -> int | None:
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()
        return p.returncode
