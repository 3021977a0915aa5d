"""Run one task in a child process (:mod:`.tasks`) and supervise it from a worker thread.

- the child's progress lines beat the worker thread's watchdog heartbeat and set its activity;
- a child silent for longer than :func:`silence_limit` (3 × ``daemon.watchdog_s``, below the 4 ×
  after which the daemon itself stops its systemd watchdog pings) is killed and the job gets
  the reason (retried, then failed);
- when the daemon stops, SIGTERM is forwarded; training checkpoints at its next step; a child
  still running :data:`STOP_GRACE_S` later is killed (its last checkpoint stays);
- a child that dies (a crash, the OOM killer) gives a clear reason naming the signal.

The child dies with the daemon (see :mod:`.tasks`), so a kill -9 of the daemon leaves no
orphan holding the GPU or the state folder.

A child can be started ahead of need (:class:`WarmChild`, ``daemon.warm_s``): it imports Python,
miragen, scipy and torch (3–4 s here, 5–15 s on a Jetson) and waits for its task, so that a
MIDI-triggered request does not pay for them. Each job still gets a fresh process; one is kept
warm for ``warm_s`` after the daemon starts and after each job that used one, then let go (it
holds ≈ 290 MB while it waits).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import MiragenError
from .context import Context

log = logging.getLogger(__name__)

STOP_GRACE_S = 7.0  # SIGTERM → this long for the child to checkpoint, then SIGKILL (10 s in all)
SILENCE_FACTOR = 3.0
TICK_S = 0.5  # how often the supervising thread looks at the stop flag while a child works
FINAL_EVENTS = ("done", "stopped", "error")

OnEvent = Callable[[dict[str, Any]], None]


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


def _child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC")
    }
    env["PYTHONUNBUFFERED"] = "1"  # systemd talks to the daemon only
    return env


def _spawn(*, warm: bool) -> subprocess.Popen:
    argv = [sys.executable, "-m", "miragen.service.tasks"]
    if warm:  # it imports everything, then waits for its task (it must know its parent now)
        argv += ["--warm", str(os.getpid())]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        close_fds=True,
        env=_child_env(),
    )


class WarmChild:
    """One child process started ahead of need, its imports done, waiting for its task.

    ``take`` hands it over (None when there is none, or it died waiting) and starts the next
    one; ``tick`` (the daemon's main loop) lets it go once ``linger_s`` has passed since the
    daemon started or since the last ``take``; ``close`` lets it go for good. A child that is let
    go reads the end of its stdin and exits.
    """

    def __init__(self, linger_s: float):
        self.linger_s = float(linger_s)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._until = 0.0
        self._closed = False

    def refill(self) -> None:
        """Start one now (unless one waits already), and keep it ``linger_s`` from now."""
        if self.linger_s <= 0:
            return
        with self._lock:
            self._until = time.monotonic() + self.linger_s
            if self._closed or self._proc is not None:
                return
            try:
                self._proc = _spawn(warm=True)
            except OSError as exc:  # out of processes or memory: jobs start their own
                log.warning("could not start a warm child process: %s", exc)

    def take(self) -> subprocess.Popen | None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is not None:  # it died while it waited
            log.warning("the warm child process %d had exited (%d)", proc.pid, proc.returncode)
            _let_go(proc)
            proc = None
        self.refill()
        return proc

    def tick(self) -> None:
        with self._lock:
            if self._proc is None or time.monotonic() < self._until:
                return
            proc, self._proc = self._proc, None
        log.debug("warm child process %d let go after %.0f s unused", proc.pid, self.linger_s)
        _let_go(proc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            _let_go(proc)

    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None


def _let_go(proc: subprocess.Popen) -> None:
    """Close a waiting child's stdin (it exits at once); kill it if it does not."""
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:  # still importing: nothing to lose
        proc.kill()
        proc.wait()


def worker_name(kind_worker: str) -> str:
    """The worker thread that runs this job: ``kind_worker``, or the numbered one of its kind
    running it now (``train-2`` with ``train.workers`` = 2); the name its child is kept under."""
    name = threading.current_thread().name
    return name if name.startswith(f"{kind_worker}-") else kind_worker


def run_child(
    d: Context,
    worker: str,
    task: str,
    spec: dict[str, Any],
    *,
    what: str,
    on_event: OnEvent | None = None,
) -> dict[str, Any]:
    """Run ``task`` in a child process for worker thread ``worker``; returns its result, or
    raises ChildFailed/ChildCrashed/ChildStopped."""
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
    t0 = time.monotonic()
    proc = d.warm.take() if d.warm is not None else None
    if proc is None:
        proc = _spawn(warm=False)
        log.debug("%s: child process %d started", what, proc.pid)
    else:
        log.debug("%s: warm child process %d takes it", what, proc.pid)
    d.heartbeats.child_started(worker, proc)
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
        d.heartbeats.child_ended(worker)
        proc.stdout.close()


def _supervise(
    d: Context,
    worker: str,
    proc: subprocess.Popen,
    what: str,
    on_event: OnEvent | None,
    t0: float,
) -> dict[str, Any]:
    """Follow the child's events until its final one (or its end); its result, or the raise."""
    watch = _Watch(proc, what, silence_limit(d.cfg))
    final = _follow(d, worker, watch, on_event)
    rc = _reap(proc, reported=final is not None)
    log.debug(
        "%s: child process %d exited %d after %.1f s", what, proc.pid, rc, time.monotonic() - t0
    )
    return _outcome(final, rc, what, watch.phase, stopping=d.stopping.is_set())


class _Watch:
    """The child's clocks: when it last spoke, and when it was asked to stop."""

    def __init__(self, proc: subprocess.Popen, what: str, limit: float):
        self.proc, self.what, self.limit = proc, what, limit
        self.last = time.monotonic()
        self.term_at: float | None = None
        self.phase = "starting"

    def heard(self) -> None:
        self.last = time.monotonic()

    def check(self, stopping: bool) -> None:
        """Forward a stop (SIGTERM); kill a child that outlives the grace after it, or that has
        been silent for longer than the limit (and raise)."""
        now = time.monotonic()
        if stopping and self.term_at is None:
            self.term_at = now
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.term_at is not None and now - self.term_at > STOP_GRACE_S:
            log.warning(
                "%s: child process %d did not stop within %.0f s; killed",
                self.what,
                self.proc.pid,
                STOP_GRACE_S,
            )
            self.proc.kill()
            raise ChildStopped()
        if self.term_at is None and now - self.last > self.limit:
            self.proc.kill()
            raise ChildCrashed(
                f"{self.what}: the child process was silent for {now - self.last:.0f} s (limit "
                f"{self.limit:.0f} s, 3 × daemon.watchdog_s) during '{self.phase}' and was killed"
            )


def _follow(
    d: Context, worker: str, watch: _Watch, on_event: OnEvent | None
) -> dict[str, Any] | None:
    """Read the child's event lines until a final one (returned) or its stdout closes (None)."""
    fd = watch.proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = b""
    final: dict[str, Any] | None = None
    try:
        while final is None:
            watch.check(d.stopping.is_set())
            if not sel.select(TICK_S):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            *lines, buf = (buf + chunk).split(b"\n")
            for ev in _events(lines, watch.what):
                watch.heard()
                d.heartbeats.beat(worker)
                if ev.get("ev") in FINAL_EVENTS:
                    final = ev
                elif ev.get("ev") in ("phase", "progress"):
                    watch.phase = str(ev.get("text", ""))
                    d.heartbeats.set_activity(worker, f"{watch.what}: {watch.phase}"[:160])
                    if on_event is not None:
                        on_event(ev)
    finally:
        sel.close()
    return final


def _events(lines: list[bytes], what: str) -> list[dict[str, Any]]:
    """The events of whole lines; a line that is not JSON (a library's print) is skipped."""
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            log.warning("%s: unreadable line from the child process: %r", what, line[:200])
    return out


def _reap(proc: subprocess.Popen, *, reported: bool) -> int:
    """The child's exit status; one that reported its end and hangs in its exit is killed."""
    try:
        return proc.wait(timeout=STOP_GRACE_S if reported else None)
    except subprocess.TimeoutExpired:  # nothing left to lose
        proc.kill()
        return proc.wait()


def _outcome(
    final: dict[str, Any] | None, rc: int, what: str, phase: str, *, stopping: bool
) -> dict[str, Any]:
    """The task's result, or the exception that says how it ended."""
    if final is None:
        if stopping:
            raise ChildStopped()
        why = (
            f"killed by {_signal_name(rc)}" + (" (out of memory?)" if rc == -signal.SIGKILL else "")
            if rc < 0
            else f"exit status {rc}"
        )
        raise ChildCrashed(f"{what}: the child process died ({why}) during '{phase}'")
    if final["ev"] == "stopped":
        raise ChildStopped(float(final.get("run_s", 0.0)))
    if final["ev"] == "error":
        reason = str(final.get("reason", "unknown error"))
        if final.get("input"):
            raise ChildFailed(f"{what}: {reason}")
        raise ChildCrashed(f"{what}: {reason}")
    return dict(final.get("result") or {})
