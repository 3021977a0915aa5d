"""The daemon: drop folders, job queue, worker threads, MIDI triggers, systemd notification.

Threads:
- ``watcher``: the drop folders (see :mod:`.watcher`), claims files into jobs;
- worker thread ``ingest`` (ingest and request jobs: fast, never blocked by anything heavy);
- worker thread ``train`` (one class at a time, time-boxed; also sorts the unsorted pool);
- worker thread ``generate`` (requests → candidates; waits for a class's first model);
  both run their job's task in a child process (:mod:`.child` starts and supervises it,
  :mod:`.tasks` is what runs in it): torch, the engines and scikit-learn are never imported by
  the daemon, whose idle RSS stays ≈ 40 MB;
- worker thread ``deliver`` (SysEx dumps that may take 42 s, disk images);
- ``midi-in`` when ``midi.input`` is set;
- the main thread: signals, ``STATUS=`` lines, ``status.json`` and ``WATCHDOG=1`` pings, sent
  only while every worker thread has reported a heartbeat within ``WATCHDOG_FACTOR`` ×
  ``daemon.watchdog_s`` (a hung worker thread stops the pings and systemd restarts the service).

SIGTERM/SIGINT: the worker threads finish or checkpoint their current step (training stops at
its next step and saves a checkpoint; a SysEx dump in flight is abandoned and sent again after
the restart), the queue is left consistent, ``STOPPING=1`` is sent, exit 0.

``run(until_idle=True)`` processes everything in the drop folders and the queue, then exits:
the mode the demo, the tests and the benchmarks use (``miragen daemon --until-idle``).

Each job runs in a *handler* that gets a :class:`~.context.Context` (never the daemon). For
tests, ``handlers`` replaces the function that runs a job kind (the only seam).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MiragenError
from ..fsutil import atomic_write_text
from . import notify as sd
from .child import WarmChild
from .context import Context, Stopping
from .handlers import run_deliver, run_generate, run_request, run_train
from .heartbeats import IDLE, Heartbeats
from .ingest import ingest
from .jobs import Job, JobQueue
from .link import TransportLink
from .requests import RequestError, from_trigger, write_record
from .state import POOL, StateDir, printable, reject_file
from .triggers import MidiMessage, TriggerListener
from .watcher import DropWatcher, adopt_processing, is_temporary

log = logging.getLogger(__name__)

Handler = Callable[[Context, Job], Any]

# worker thread -> the job kinds it runs
WORKERS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest", "request"),
    "train": ("train",),
    "generate": ("generate",),
    "deliver": ("deliver",),
}


def worker_threads(cfg: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """:data:`WORKERS`, with ``train.workers`` training threads: train, train-2, train-3, …"""
    out = dict(WORKERS)
    for i in range(2, int(cfg["train"]["workers"]) + 1):
        out[f"train-{i}"] = WORKERS["train"]
    return out


MAX_ATTEMPTS = 3  # an unexpected error is retried (with backoff) this many times in all
WATCHDOG_FACTOR = 4.0
MAX_PENDING_TRIGGERS = 32  # MIDI floods: beyond this many waiting requests, triggers are dropped
STATUS_EVERY_S = 5.0

DEFAULT_HANDLERS: dict[str, Handler] = {
    "ingest": ingest,
    "request": run_request,
    "train": run_train,
    "generate": run_generate,
    "deliver": run_deliver,
}


class Daemon:
    def __init__(self, cfg: dict[str, Any], *, handlers: dict[str, Handler] | None = None):
        self.cfg = cfg
        self.state = StateDir(Path(cfg["paths"]["state"]))
        self.handlers = dict(DEFAULT_HANDLERS)
        self.handlers.update(handlers or {})
        self.stopping = threading.Event()
        self.heartbeats = Heartbeats()
        self.transport = TransportLink(cfg)
        self.context: Context | None = None  # made by start(): what every handler gets
        self.queue: JobQueue | None = None  # the context's queue, once started
        self.watcher: DropWatcher | None = None
        self.warm = WarmChild(cfg["daemon"]["warm_s"])  # started by start()
        self.listener: TriggerListener | None = None
        self._threads: dict[str, threading.Thread] = {}  # the worker threads
        self._trigger_seq = 0
        self._trigger_lock = threading.Lock()
        self._lock_fd: int | None = None
        self.started = time.time()
        self.idle_wait = max(1.0, min(10.0, float(cfg["daemon"]["watchdog_s"]) / 3))
        self._last_status = ""

    # -- health -------------------------------------------------------------------------
    def healthy(self) -> tuple[bool, str]:
        limit = WATCHDOG_FACTOR * float(self.cfg["daemon"]["watchdog_s"])
        now = time.monotonic()
        for name, t in self._threads.items():
            if not t.is_alive():
                return False, f"thread {name} died"
            age = self.heartbeats.silent_for(name, now)
            if age > limit:
                return (
                    False,
                    f"worker thread {name} silent for {age:.0f} s "
                    f"({self.heartbeats.activity(name)})",
                )
        if self.watcher is not None and not self.watcher.alive():
            return False, "the drop-folder watcher died"
        return True, ""

    # -- triggers -----------------------------------------------------------------------
    def fire(self, index: int, trigger: dict[str, Any], msg: MidiMessage) -> None:
        if self.queue is None or self.stopping.is_set():
            return
        if self.queue.pending(("request", "generate")) >= MAX_PENDING_TRIGGERS:
            log.warning(
                "trigger %d dropped: %d requests already waiting", index, MAX_PENDING_TRIGGERS
            )
            return
        try:
            request = from_trigger(trigger)
        except RequestError as exc:
            log.error("trigger %d: %s", index, exc)
            return
        with self._trigger_lock:
            self._trigger_seq += 1
            name = f"midi-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{self._trigger_seq}"
        source = f"MIDI trigger {index} ({msg.data[:12].hex(' ')})"
        self.queue.add(
            "request",
            {"name": name, "request": request, "source": source},
            key=f"request:{name}",
            subject=name,
        )

    # -- worker threads -----------------------------------------------------------------
    def _worker(self, name: str, kinds: tuple[str, ...]) -> None:
        """A worker thread: claims the jobs of ``kinds`` one after another and runs each."""
        q, ctx = self.queue, self.context
        assert q is not None and ctx is not None
        while not self.stopping.is_set():
            self.heartbeats.beat(name)
            seen = q.version
            job = q.claim(kinds, solo=POOL)
            if job is None:
                due = q.next_due(kinds)
                timeout = (
                    self.idle_wait
                    if due is None
                    else max(0.02, min(due - time.time(), self.idle_wait))
                )
                q.wait_change(seen, timeout)
                continue
            self.heartbeats.set_activity(name, f"{job.kind} {printable(job.subject)}")
            try:
                self.handlers[job.kind](ctx, job)
            except Stopping:
                q.requeue(job, error="stopped by shutdown", uncount=True)
            except Exception as exc:  # one bad job never stops the daemon
                self._job_error(job, exc)
            finally:
                self.heartbeats.set_activity(name, IDLE)

    def _job_error(self, job: Job, exc: Exception) -> None:
        q = self.queue
        assert q is not None
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MiragenError) else str(exc)
        if isinstance(exc, MiragenError) or job.attempts >= MAX_ATTEMPTS:
            log.error(
                "job %d (%s %s) failed: %s",
                job.id,
                job.kind,
                printable(job.subject),
                reason,
                exc_info=None if isinstance(exc, MiragenError) else exc,
            )
            self._give_up(job, reason)
        else:
            log.warning("job %d (%s) error, retried: %s", job.id, job.kind, reason, exc_info=exc)
            q.requeue(job, delay_s=2.0**job.attempts, error=reason)

    def _give_up(self, job: Job, reason: str) -> None:
        """A job that cannot finish: its input still ends in rejected/, its request is failed."""
        q = self.queue
        assert q is not None
        try:
            if job.kind in ("ingest", "request") and job.payload.get("path"):
                src = self.state.root / job.payload["path"]
                if src.exists() or src.is_symlink():
                    original = job.payload.get("original") or src.name
                    reject_file(self.state, src, original, f"internal error: {reason}")
            name = job.payload.get("name")
            if name and job.kind in ("request", "generate", "deliver"):
                write_record(self.state, name, state="failed", reason=reason)
        finally:
            q.fail(job, reason)

    # -- status -------------------------------------------------------------------------
    def status_line(self) -> str:
        assert self.context is not None
        busy = self.heartbeats.busy()
        queued = self.context.queue.pending() - len(busy)
        running = [f"{k} {a}" for k, a in busy.items()]
        classes = self.context.corpus.class_counts()
        parts = [
            f"{sum(classes.values())} sounds in {len(classes)} classes",
            f"queue: {max(0, queued)} queued, {len(running)} running"
            + (f" ({'; '.join(running)[:120]})" if running else ""),
        ]
        th = self.transport.health
        if th["state"] != "unused":
            parts.append(f"transport {th['state']}")
        return " · ".join(parts)

    def write_status(self, state: str = "running") -> None:
        now = time.monotonic()
        data = {
            "state": state,
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "workers": {  # the worker threads
                n: {
                    "activity": self.heartbeats.activity(n),
                    "heartbeat_age_s": round(self.heartbeats.silent_for(n, now), 1),
                }
                for n in self._threads
            },
            # the child processes the worker threads run now (the key predates the name)
            "worker_processes": self.heartbeats.child_pids(),
            "transport": self.transport.health,
            "watcher": vars(self.watcher.stats) if self.watcher else {},
            "midi_input": self._midi_status(),
        }
        try:
            atomic_write_text(
                self.state.status_file, json.dumps(data, indent=2, default=str) + "\n"
            )
        except OSError as exc:
            log.warning("cannot write %s: %s", self.state.status_file, exc)

    def _midi_status(self) -> dict[str, Any]:
        if self.listener is None:
            return {}
        self.listener.refresh_triggers()  # triggers.json is reported even with no MIDI traffic
        return {
            "spec": self.cfg["midi"]["input"],
            "messages": self.listener.messages,
            "fired": self.listener.fired,
            "dropped": self.listener.dropped,
            "error": self.listener.error,
            "learned_triggers": len(self.listener.learned),
            "triggers_error": self.listener.triggers_error,
        }

    def idle(self) -> bool:
        """Nothing queued, running, pending in the watcher, or lying in the drop folders."""
        q = self.queue
        if q is None or q.pending() or self.heartbeats.busy():
            return False
        if self.watcher is not None and self.watcher.busy():
            return False
        for root in (self.state.inbox, self.state.requests):
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                if any(not is_temporary(f) for f in filenames) or any(
                    os.path.islink(os.path.join(dirpath, x)) for x in dirnames
                ):
                    return False
        return True

    # -- run ----------------------------------------------------------------------------
    def lock(self) -> None:
        """One daemon per state folder: an exclusive lock on ``miragen.lock`` (freed on death)."""
        import fcntl  # POSIX only: deferred so that the command line loads everywhere

        self.state.root.mkdir(parents=True, exist_ok=True)
        path = self.state.root / "miragen.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise MiragenError(
                f"{self.state.root}: another miragen daemon already runs on this state folder "
                f"(pid {other or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def start(self) -> None:
        """Open the database, recover the queue, start every thread (returns at once)."""
        self.state.create()
        ctx = Context.open(
            self.cfg,
            self.state,
            stopping=self.stopping,
            heartbeats=self.heartbeats,
            transport=self.transport,
            warm=self.warm,
        )
        self.context, self.queue = ctx, ctx.queue
        self._recover()
        dcfg = self.cfg["daemon"]
        self.watcher = DropWatcher(
            self.state,
            ctx.queue,
            settle_s=dcfg["settle_s"],
            rescan_s=dcfg["rescan_s"],
            polling=dcfg["polling"],
            heartbeat=lambda: self.heartbeats.beat("watcher"),
        )
        self.context = dataclasses.replace(ctx, watcher=self.watcher)
        self.watcher.start()
        for name, kinds in worker_threads(self.cfg).items():
            t = threading.Thread(target=self._worker, args=(name, kinds), name=name, daemon=True)
            self.heartbeats.set_activity(name, IDLE)
            self.heartbeats.beat(name)
            self._threads[name] = t
            t.start()
        self._start_midi_input()
        self.warm.refill()

    def _recover(self) -> None:
        """Jobs a dead daemon left running go back to the queue (or fail); claimed files whose
        job was lost get one."""
        assert self.queue is not None
        for job in self.queue.recover():
            log.info(
                "job %d (%s %s) was interrupted: %s",
                job.id,
                job.kind,
                printable(job.subject),
                "queued again" if job.state == "queued" else "given up",
            )
            if job.state == "failed":
                self._give_up(job, "interrupted too many times")
        adopted = adopt_processing(self.state, self.queue)
        if adopted:
            log.info("%d claimed files had lost their jobs; queued again", adopted)

    def _start_midi_input(self) -> None:
        spec = self.cfg["midi"]["input"]
        if not spec:
            return
        # one port both ways (the usual Jetson UART): the MIDI input reads the delivery's port
        same_port = spec == self.cfg["deliver"]["transport"] and not spec.startswith("midi:")
        self.listener = TriggerListener(
            spec,
            self.cfg["trigger"],
            self.fire,
            cfg=self.cfg,
            shared=self.transport.shared if same_port else None,
            max_sysex=self.cfg["midi"]["max_message_bytes"],
            heartbeat=lambda: self.heartbeats.beat("midi-in"),
            state=self.state,  # triggers.json and MIDI learn (live/learn.json)
        )
        self.listener.start()

    def shutdown(self) -> None:
        self.stopping.set()
        sd.notify("STOPPING=1")
        if self.queue is not None:
            self.queue.wake_all()
        if self.listener is not None:
            self.listener.stop()
        if self.watcher is not None:
            self.watcher.stop()
        for t in self._threads.values():
            t.join(timeout=30)
        self.warm.close()
        self.transport.close()  # shutting down: one that fails to close is left to the OS
        if self.context is not None:
            self.write_status("stopped")
            self.context.db.close()

    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> int:
        """Run until SIGTERM/SIGINT (or, with ``until_idle``, until there is nothing left to do)."""

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping", signum)
            self.stopping.set()

        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            return self._run(until_idle=until_idle, max_seconds=max_seconds)
        finally:
            for sig, handler in previous.items():  # a caller (the demo) gets its handlers back
                signal.signal(sig, handler)

    def _run(self, *, until_idle: bool, max_seconds: float | None) -> int:
        self.lock()
        try:
            self.start()
        except BaseException:
            self.shutdown()
            self._unlock()
            raise
        ping = sd.watchdog_interval()
        tick = min(1.0, ping) if ping else 1.0
        sd.notify("READY=1")
        log.info(
            "miragen daemon ready: state %s, transport %s, MIDI input %s",
            self.state.root,
            self.cfg["deliver"]["transport"],
            self.cfg["midi"]["input"] or "none",
        )
        try:
            self._main_loop(tick, until_idle, max_seconds)
        finally:
            self.shutdown()
            self._unlock()
        return 0

    def _main_loop(self, tick: float, until_idle: bool, max_seconds: float | None) -> None:
        """The main thread: watchdog pings, status, and the ends (--max-seconds, --until-idle)."""
        last_status = 0.0
        idle_since: float | None = None
        t0 = time.monotonic()
        while not self.stopping.wait(tick):
            ok, why = self.healthy()
            if ok:
                sd.notify("WATCHDOG=1")
            else:
                log.error("not healthy, watchdog pings stopped: %s", why)
            self.warm.tick()
            now = time.monotonic()
            if now - last_status >= STATUS_EVERY_S:  # a few queries: not every tick
                line = self.status_line()
                if line != self._last_status:
                    sd.notify(f"STATUS={line}")
                    self._last_status = line
                self.write_status()
                last_status = now
            if max_seconds is not None and now - t0 > max_seconds:
                log.warning("stopping after %.0f s (--max-seconds)", max_seconds)
                break
            if until_idle:
                if self.idle():
                    idle_since = idle_since or now
                    if now - idle_since >= 1.0:
                        log.info("idle: nothing left to do")
                        break
                else:
                    idle_since = None

    def _unlock(self) -> None:
        """Free the state folder for the next daemon (the demo and tests run several in turn)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
