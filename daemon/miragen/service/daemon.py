"""The daemon: drop folders, job queue, workers, MIDI triggers, systemd notification.

Threads:
- ``watcher``: the drop folders (see :mod:`.watcher`), claims files into jobs;
- worker ``ingest`` (ingest and request jobs: fast, never blocked by anything heavy);
- worker ``train`` (one class at a time, time-boxed; also sorts the unsorted pool);
- worker ``generate`` (requests → candidates; waits for a class's first model);
  both run their job in a child process (:mod:`.child`, :mod:`.worker`): torch, the engines and
  scikit-learn are never imported by the daemon, whose idle RSS stays ≈ 40 MB;
- worker ``deliver`` (SysEx dumps that may take 42 s, disk images);
- ``midi-in`` when ``midi.input`` is set;
- the main thread: signals, ``STATUS=`` lines, ``status.json`` and ``WATCHDOG=1`` pings, sent
  only while every worker has reported a heartbeat within ``WATCHDOG_FACTOR`` ×
  ``daemon.watchdog_s`` (a hung worker stops the pings and systemd restarts the service).

SIGTERM/SIGINT: the workers finish or checkpoint their current step (training stops at its
next step and saves a checkpoint; a SysEx dump in flight is abandoned and sent again after the
restart), the queue is left consistent, ``STOPPING=1`` is sent, exit 0.

``run(until_idle=True)`` processes everything in the drop folders and the queue, then exits:
the mode the demo, the tests and the benchmarks use (``miragen daemon --until-idle``).

For tests, ``handlers`` replaces the function that runs a job kind (the only seam).
"""

from __future__ import annotations

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
from .context import Stopping
from .handlers import run_deliver, run_generate, run_request, run_train
from .ingest import ingest
from .jobs import Job, JobQueue
from .state import StateDir, printable, reject_file
from .triggers import MidiMessage, TriggerListener
from .watcher import DropWatcher, adopt_processing, is_temporary

log = logging.getLogger(__name__)

Handler = Callable[["Daemon", Job], None]

WORKERS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest", "request"),
    "train": ("train",),
    "generate": ("generate",),
    "deliver": ("deliver",),
}
MAX_ATTEMPTS = 3  # an unexpected error is retried (with backoff) this many times in all
WATCHDOG_FACTOR = 4.0
MAX_PENDING_TRIGGERS = 32  # MIDI floods: beyond this many waiting requests, triggers are dropped
STATUS_EVERY_S = 5.0


def _run_ingest(d: Daemon, job: Job) -> None:
    ingest(job, d.state, d.queue, d.cfg)


DEFAULT_HANDLERS: dict[str, Handler] = {
    "ingest": _run_ingest,
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
        self.queue: JobQueue | None = None  # type: ignore[assignment]
        self.watcher: DropWatcher | None = None
        self.listener: TriggerListener | None = None
        self._threads: dict[str, threading.Thread] = {}
        self.children: dict[
            str, Any
        ] = {}  # worker name -> its running child process (service/child.py)
        self._beats: dict[str, float] = {}
        self._activity: dict[str, str] = {}
        self._transport = None
        self._transport_lock = threading.Lock()
        self.io_lock = (
            threading.Lock()
        )  # held by a delivery; the MIDI input reads a shared port only without it
        self.delivering = threading.Event()
        self.transport_health: dict[str, Any] = {
            "spec": cfg["deliver"]["transport"],
            "state": "unused",
            "last_ok": None,
            "last_error": "",
        }
        self._trigger_seq = 0
        self._trigger_lock = threading.Lock()
        self.started = time.time()
        self.idle_wait = max(1.0, min(10.0, float(cfg["daemon"]["watchdog_s"]) / 3))
        self._last_status = ""

    # -- health -------------------------------------------------------------------------
    def beat(self, name: str) -> None:
        self._beats[name] = time.monotonic()

    def set_activity(self, name: str, text: str) -> None:
        self._activity[name] = text

    def healthy(self) -> tuple[bool, str]:
        limit = WATCHDOG_FACTOR * float(self.cfg["daemon"]["watchdog_s"])
        now = time.monotonic()
        for name, t in self._threads.items():
            if not t.is_alive():
                return False, f"thread {name} died"
            age = now - self._beats.get(name, now)
            if age > limit:
                return (
                    False,
                    f"worker {name} silent for {age:.0f} s ({self._activity.get(name, '')})",
                )
        if self.watcher is not None and not self.watcher.alive():
            return False, "the drop-folder watcher died"
        return True, ""

    # -- transport ----------------------------------------------------------------------
    def transport(self):
        from ..transport import open_transport

        with self._transport_lock:
            if self._transport is None:
                self._transport = open_transport(self.cfg["deliver"]["transport"], self.cfg)
            return self._transport

    def transport_ok(self) -> None:
        self.transport_health.update(
            state="ok", last_ok=time.strftime("%Y-%m-%dT%H:%M:%S%z"), last_error=""
        )

    def transport_failed(self, error: str) -> None:
        self.transport_health.update(state="error", last_error=error)
        with self._transport_lock:
            t, self._transport = self._transport, None
        if t is not None:
            try:
                t.close()
            except Exception:  # a broken link may fail to close; it is dropped either way
                log.debug("closing the transport failed", exc_info=True)

    # -- triggers -----------------------------------------------------------------------
    def fire(self, index: int, trigger: dict[str, Any], msg: MidiMessage) -> None:
        from .requests import RequestError, from_trigger

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

    # -- workers ------------------------------------------------------------------------
    def _worker(self, name: str, kinds: tuple[str, ...]) -> None:
        q = self.queue
        assert q is not None
        while not self.stopping.is_set():
            self.beat(name)
            seen = q.version
            job = q.claim(kinds)
            if job is None:
                due = q.next_due(kinds)
                timeout = (
                    self.idle_wait
                    if due is None
                    else max(0.02, min(due - time.time(), self.idle_wait))
                )
                q.wait_change(seen, timeout)
                continue
            self.set_activity(name, f"{job.kind} {printable(job.subject)}")
            try:
                self.handlers[job.kind](self, job)
            except Stopping:
                q.requeue(job, error="stopped by shutdown", uncount=True)
            except Exception as exc:  # one bad job never stops the daemon
                self._job_error(job, exc)
            finally:
                self.set_activity(name, "idle")

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
        from .requests import write_record

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
        q = self.queue
        assert q is not None
        queued = q.pending() - sum(1 for a in self._activity.values() if a != "idle")
        running = [f"{k} {a}" for k, a in self._activity.items() if a != "idle"]
        classes = q.class_counts()
        parts = [
            f"{sum(classes.values())} sounds in {len(classes)} classes",
            f"queue: {max(0, queued)} queued, {len(running)} running"
            + (f" ({'; '.join(running)[:120]})" if running else ""),
        ]
        th = self.transport_health
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
            "workers": {
                n: {
                    "activity": self._activity.get(n, "idle"),
                    "heartbeat_age_s": round(now - self._beats.get(n, now), 1),
                }
                for n in self._threads
            },
            "worker_processes": {n: p.pid for n, p in list(self.children.items())},
            "transport": self.transport_health,
            "watcher": vars(self.watcher.stats) if self.watcher else {},
            "midi_input": {
                "spec": self.cfg["midi"]["input"],
                "messages": self.listener.messages,
                "fired": self.listener.fired,
                "dropped": self.listener.dropped,
                "error": self.listener.error,
            }
            if self.listener
            else {},
        }
        try:
            atomic_write_text(
                self.state.status_file, json.dumps(data, indent=2, default=str) + "\n"
            )
        except OSError as exc:
            log.warning("cannot write %s: %s", self.state.status_file, exc)

    def idle(self) -> bool:
        """Nothing queued, running, pending in the watcher, or lying in the drop folders."""
        q = self.queue
        if q is None or q.pending() or any(a != "idle" for a in self._activity.values()):
            return False
        if self.watcher is not None and self.watcher.busy():
            return False
        for root in (self.state.inbox, self.state.requests):
            for _dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                if any(not is_temporary(f) for f in filenames) or any(
                    os.path.islink(os.path.join(_dirpath, x)) for x in dirnames
                ):
                    return False
        return True

    # -- run ----------------------------------------------------------------------------
    def lock(self) -> None:
        """One daemon per state folder: an exclusive lock on ``miragen.lock`` (freed on death)."""
        import fcntl

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
        """Open the queue, recover, start every thread (returns at once)."""
        self.state.create()
        self.queue = JobQueue(self.state.db)
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
        dcfg = self.cfg["daemon"]
        self.watcher = DropWatcher(
            self.state,
            self.queue,
            settle_s=dcfg["settle_s"],
            rescan_s=dcfg["rescan_s"],
            polling=dcfg["polling"],
            heartbeat=lambda: self.beat("watcher"),
        )
        self.watcher.start()
        for name, kinds in WORKERS.items():
            t = threading.Thread(target=self._worker, args=(name, kinds), name=name, daemon=True)
            self._activity[name] = "idle"
            self.beat(name)
            self._threads[name] = t
            t.start()
        spec = self.cfg["midi"]["input"]
        if spec:
            shared = None
            if spec == self.cfg["deliver"]["transport"] and not spec.startswith("midi:"):

                def shared_io():
                    return (self.transport(), self.io_lock, self.delivering)

                shared = shared_io
            self.listener = TriggerListener(
                spec,
                self.cfg["trigger"],
                self.fire,
                cfg=self.cfg,
                shared=shared,
                max_sysex=self.cfg["midi"]["max_message_bytes"],
                heartbeat=lambda: self.beat("midi-in"),
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
        with self._transport_lock:
            if self._transport is not None:
                try:
                    self._transport.close()
                except (
                    Exception
                ):  # shutting down: a transport that fails to close is left to the OS
                    log.debug("closing the transport failed", exc_info=True)
                self._transport = None
        if self.queue is not None:
            self.write_status("stopped")
            self.queue.close()

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
        last_status = 0.0
        idle_since: float | None = None
        t0 = time.monotonic()
        try:
            while not self.stopping.wait(tick):
                ok, why = self.healthy()
                if ok:
                    sd.notify("WATCHDOG=1")
                else:
                    log.error("not healthy, watchdog pings stopped: %s", why)
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
        finally:
            self.shutdown()
            self._unlock()
        return 0

    def _unlock(self) -> None:
        """Free the state folder for the next daemon (the demo and tests run several in turn)."""
        if getattr(self, "_lock_fd", None) is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
