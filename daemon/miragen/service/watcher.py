"""The drop folders: ``inbox/`` (training sounds) and ``requests/`` (request files).

A watchdog observer (inotify; the polling observer with ``daemon.polling`` for network
shares) reports created, modified, closed and moved-in files. Each becomes *pending*; once
its size and mtime have stayed the same for ``daemon.settle_s`` (and, with inotify, once the
writer has closed it) it is *claimed*: renamed atomically into ``processing/<class>/`` and
given an ingest (or request) job. A full rescan every ``daemon.rescan_s`` seconds picks up
anything an event missed (inotify overflow, network shares), so no file is ever lost.

Rules:
- a subfolder of ``inbox/`` is a class (its first level; deeper folders belong to it); files at
  the top level go to the unsorted pool (class ``unsorted``, sorted by k-means: see
  :mod:`.classing`);
- hidden names (a leading ``.``) and names ending in ``.part``, ``.tmp`` or ``~`` are the
  temporary files of copy tools and are left alone until renamed;
- symbolic links are never followed: a link (to a file or a folder) is claimed as it is and
  rejected by its job; the same for FIFOs, sockets and devices (never opened).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .classing import POOL
from .jobs import JobQueue
from .state import REQUEST_CLASS, StateDir, class_name, printable, safe_name

log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".part", ".tmp", ".crdownload", "~")
# with inotify: a file still open for writing is claimed after this long unchanged
CLOSE_WAIT_S = 30.0
NEW_DIR_WATCH_S = 3.0  # a new folder is scanned again for this long …
NEW_DIR_SCAN_EVERY_S = 0.25  # … this often


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES)


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    changed: float  # monotonic time of the last observed change
    writing: bool = False


@dataclass
class WatchStats:
    claimed: int = 0
    rescans: int = 0
    events: int = 0
    last_rescan: float = 0.0
    errors: list[str] = field(default_factory=list)


class DropWatcher:
    """Watches the inbox and the request folder; claims settled files into jobs."""

    def __init__(
        self,
        state: StateDir,
        queue: JobQueue,
        *,
        settle_s: float = 1.0,
        rescan_s: float = 60.0,
        polling: bool = False,
        heartbeat: Callable[[], None] | None = None,
    ):
        self.state = state
        self.queue = queue
        self.settle_s = settle_s
        self.rescan_s = rescan_s
        self.polling = polling
        self.heartbeat = heartbeat or (lambda: None)
        self.stats = WatchStats()
        self._pending: dict[str, _Pending] = {}
        self._dirs: dict[str, float] = {}  # new folder -> rescan it until this time (watch race)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer = None
        self._thread: threading.Thread | None = None
        self._next_rescan = 0.0

    # -- observer -----------------------------------------------------------------------
    def start(self) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                watcher._on_event(event)

        if self.polling:
            from watchdog.observers.polling import PollingObserver as Observer
        else:
            from watchdog.observers import Observer
        self._observer = (
            Observer(timeout=max(1.0, min(self.settle_s, 5.0))) if self.polling else Observer()
        )
        handler = Handler()
        for root in (self.state.inbox, self.state.requests):
            self._observer.schedule(handler, str(root), recursive=True)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def busy(self) -> bool:
        """Files are pending (waiting to settle) or folders wait to be scanned."""
        with self._lock:
            return bool(self._pending or self._dirs)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_event(self, event) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write", "deleted"):
            return
        self.stats.events += 1
        paths = [event.dest_path] if kind == "moved" else [event.src_path]
        with self._lock:
            for p in paths:
                p = os.fsdecode(p)
                if event.is_directory:
                    if kind in ("created", "moved"):
                        # files put into a new folder before inotify watches it raise no event:
                        # the folder is scanned again for a little while
                        self._dirs[p] = time.monotonic() + NEW_DIR_WATCH_S
                    continue
                entry = self._pending.get(p)
                now = time.monotonic()
                if entry is None:
                    entry = _Pending(-1, -1, now)
                    self._pending[p] = entry
                entry.changed = now
                if not self.polling:
                    if (
                        kind == "modified"
                    ):  # a write seen: wait for its close (or CLOSE_WAIT_S unchanged)
                        entry.writing = True
                    elif kind in ("closed", "moved"):
                        entry.writing = False
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        self.rescan()
        while not self._stop.is_set():
            self.heartbeat()
            try:
                wait = self.step()
            except Exception as exc:  # keep watching whatever happens; the rescan repairs
                log.exception("watcher step failed")
                self.stats.errors = (self.stats.errors + [str(exc)])[-10:]
                wait = 1.0
            self._wake.wait(timeout=wait)
            self._wake.clear()

    def step(self) -> float:
        """Scan new folders, claim settled files, rescan when due; returns seconds to sleep."""
        now = time.monotonic()
        if now >= self._next_rescan:
            self.rescan()
        with self._lock:
            dirs = list(self._dirs)
            for d, until in list(self._dirs.items()):
                if until <= now:
                    del self._dirs[d]
        for d in dirs:
            self._scan_tree(Path(d), wake=False)
        now = time.monotonic()
        due: list[str] = []
        next_check = self._next_rescan - now
        if self._dirs:
            next_check = min(next_check, NEW_DIR_SCAN_EVERY_S)
        with self._lock:
            items = list(self._pending.items())
        for path, entry in items:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                with self._lock:
                    self._pending.pop(path, None)
                continue
            except OSError as exc:
                log.warning("cannot look at %s: %s", printable(path), exc)
                continue
            if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
                entry.size, entry.mtime_ns, entry.changed = st.st_size, st.st_mtime_ns, now
            wait_for = CLOSE_WAIT_S if entry.writing and stat.S_ISREG(st.st_mode) else self.settle_s
            ready_at = entry.changed + wait_for
            if ready_at <= now:
                due.append(path)
            else:
                next_check = min(next_check, ready_at - now)
        for path in due:
            with self._lock:
                self._pending.pop(path, None)
            self._claim(Path(path))
        return max(0.05, next_check)

    def rescan(self) -> None:
        """Walk both drop folders (links not followed) and make every entry pending."""
        self.stats.rescans += 1
        self.stats.last_rescan = time.time()
        self._next_rescan = time.monotonic() + self.rescan_s
        for root in (self.state.inbox, self.state.requests):
            self._scan_tree(root)

    def _scan_tree(self, top: Path, wake: bool = True) -> None:
        now = time.monotonic()
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            for d in list(dirnames):
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    dirnames.remove(d)
                    found.append(full)  # a link to a folder: claimed and rejected, never followed
            found.extend(os.path.join(dirpath, f) for f in filenames)
        added = False
        with self._lock:
            for p in found:
                if p not in self._pending:
                    self._pending[p] = _Pending(-1, -1, now)
                    added = True
        if added and wake:
            self._wake.set()

    # -- claiming -----------------------------------------------------------------------
    def _root_of(self, path: Path) -> tuple[Path, str] | None:
        for root, kind in ((self.state.inbox, "ingest"), (self.state.requests, "request")):
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            return (root, kind) if rel.parts else None
        return None

    def _claim(self, path: Path) -> None:
        if is_temporary(path.name):
            return
        found = self._root_of(path)
        if found is None:
            return
        root, kind = found
        rel = path.relative_to(root)
        if kind == "ingest":
            cls = class_name(os.fsdecode(rel.parts[0])) if len(rel.parts) > 1 else POOL
        else:
            cls = REQUEST_CLASS
        token = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
        dest = self.state.processing / cls / f"{token}__{safe_name(path.name)}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot claim %s: %s", printable(str(path)), exc)
            return
        rel_dest = str(dest.relative_to(self.state.root))
        payload = {"path": rel_dest, "original": str(rel), "class": cls}
        self.queue.add(
            kind,
            payload,
            key=f"{kind}:{rel_dest}",
            subject=cls if kind == "ingest" else safe_name(path.stem),
        )
        self.stats.claimed += 1
        log.info("claimed %s (%s)", printable(str(rel)), kind)


def adopt_processing(state: StateDir, queue: JobQueue) -> int:
    """At start: give a job to every claimed file that lost its job in a crash; returns how many."""
    n = 0
    if not state.processing.is_dir():
        return 0
    for cls_dir in sorted(state.processing.iterdir()):
        if not cls_dir.is_dir() or cls_dir.is_symlink():
            continue
        kind = "request" if cls_dir.name == REQUEST_CLASS else "ingest"
        for f in sorted(cls_dir.iterdir()):
            rel_dest = str(f.relative_to(state.root))
            key = f"{kind}:{rel_dest}"
            if queue.by_key(key) is None:
                original = f.name.split("__", 1)[-1]
                queue.add(
                    kind,
                    {"path": rel_dest, "original": original, "class": cls_dir.name},
                    key=key,
                    subject=cls_dir.name if kind == "ingest" else safe_name(Path(original).stem),
                )
                n += 1
    return n
