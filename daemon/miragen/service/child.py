"""Run one heavy job in a child process (:mod:`.worker`) and supervise it from a worker thread.

- the child's progress lines beat the worker's watchdog heartbeat and set its activity;
- a child silent for longer than :func:`silence_limit` (3 × ``daemon.watchdog_s``, below the 4 ×
  after which the daemon itself stops its systemd watchdog pings) is killed and the job gets
  the reason (retried, then failed);
- when the daemon stops, SIGTERM is forwarded; training checkpoints at its next step; a child
  still running :data:`STOP_GRACE_S` later is killed (its last checkpoint stays);
- a child that dies (a crash, the OOM killer) gives a clear reason naming the signal.

The child dies with the daemon (see :mod:`.worker`), so a kill -9 of the daemon leaves no
orphan holding the GPU or the state folder.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import MiragenError
from .context import Context

log = logging.getLogger(__name__)

STOP_GRACE_S = (
    7.0  # SIGTERM → this long for the child to checkpoint, then SIGKILL (10 s allowed in all)
)
SILENCE_FACTOR = 3.0
TICK_S = 0.5  # how often the supervising thread looks at the stop flag while a child works


class ChildFailed(MiragenError):
    """The child reported a problem with the material or the model (not worth a retry)."""


class ChildCrashed(RuntimeError):
    """The child died, hung or reported an internal error (retried, then the job fails)."""


class ChildStopped(Exception):
    """The daemon is stopping and the child stopped (``run_s``: training seconds done)."""

    def __init__(self, run_s: float = 0.0):
        super().__init__("stopped by shutdown")
        self.run_s = run_s


def silence_limit(cfg: dict[str, Any]) -> float:
    return SILENCE_FACTOR * float(cfg["daemon"]["watchdog_s"])


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def run_child(
    d: Context,
    worker: str,
    task: str,
    spec: dict[str, Any],
    *,
    what: str,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``task`` in a child; returns its result, or raises
    ChildFailed/ChildCrashed/ChildStopped."""
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    body = dict(
        spec,
        task=task,
        state=str(d.state.root),
        cfg=d.cfg,
        parent=os.getpid(),
        log_level=level,
        spawned=time.time(),
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC")
    }
    env["PYTHONUNBUFFERED"] = "1"  # systemd talks to the daemon only
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen.service.tasks"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        close_fds=True,
        env=env,
    )
    d.children[worker] = proc
    log.debug("%s: worker process %d started", what, proc.pid)
    try:
        try:
            proc.stdin.write((json.dumps(body, default=str) + "\n").encode())
            proc.stdin.close()
        except OSError:  # died at once: the exit status below says why
            pass
        return _supervise(d, worker, proc, what, on_event, t0)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        d.children.pop(worker, None)
        proc.stdout.close()


def _supervise(
    d: Context,
    worker: str,
    proc: subprocess.Popen,
    what: str,
    on_event: Callable[[dict[str, Any]], None] | None,
    t0: float,
) -> dict[str, Any]:
    limit = silence_limit(d.cfg)
    sel = selectors.DefaultSelector()
    fd = proc.stdout.fileno()
    sel.register(fd, selectors.EVENT_READ)
    buf = b""
    last = time.monotonic()
    term_at: float | None = None
    final: dict[str, Any] | None = None
    phase = "starting"
    try:
        while True:
            now = time.monotonic()
            if d.stopping.is_set() and term_at is None:
                term_at = now
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if term_at is not None and now - term_at > STOP_GRACE_S:
                log.warning(
                    "%s: worker process %d did not stop within %.0f s; killed",
                    what,
                    proc.pid,
                    STOP_GRACE_S,
                )
                proc.kill()
                raise ChildStopped()
            if term_at is None and now - last > limit:
                proc.kill()
                raise ChildCrashed(
                    f"{what}: the worker process was silent for {now - last:.0f} s (limit "
                    f"{limit:.0f} s, 3 × daemon.watchdog_s) during '{phase}' and was killed"
                )
            if not sel.select(TICK_S):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except ValueError:
                    log.warning("%s: unreadable line from the worker process: %r", what, line[:200])
                    continue
                last = time.monotonic()
                d.beat(worker)
                kind = ev.get("ev")
                if kind in ("phase", "progress"):
                    phase = str(ev.get("text", ""))
                    d.set_activity(worker, f"{what}: {phase}"[:160])
                    if on_event is not None:
                        on_event(ev)
                elif kind in ("done", "stopped", "error"):
                    final = ev
            if final is not None:
                break
    finally:
        sel.close()
    try:
        rc = proc.wait(timeout=STOP_GRACE_S if final is not None else None)
    except (
        subprocess.TimeoutExpired
    ):  # reported its end and hangs in its exit: nothing left to lose
        proc.kill()
        rc = proc.wait()
    log.debug(
        "%s: worker process %d exited %d after %.1f s", what, proc.pid, rc, time.monotonic() - t0
    )
    if final is None:
        if d.stopping.is_set():
            raise ChildStopped()
        why = (
            f"killed by {_signal_name(rc)}" + (" (out of memory?)" if rc == -signal.SIGKILL else "")
            if rc < 0
            else f"exit status {rc}"
        )
        raise ChildCrashed(f"{what}: the worker process died ({why}) during '{phase}'")
    if final["ev"] == "stopped":
        raise ChildStopped(float(final.get("run_s", 0.0)))
    if final["ev"] == "error":
        reason = str(final.get("reason", "unknown error"))
        if final.get("input"):
            raise ChildFailed(f"{what}: {reason}")
        raise ChildCrashed(f"{what}: {reason}")
    return dict(final.get("result") or {})
