"""Live files: what the daemon is doing now, for the web process (docs/live-files.md).

The daemon writes ``live/delivery.json`` (the delivery under way) and
``live/training-<class>.json`` (a class's training run); the MIDI listener answers
``live/learn.json`` with ``live/learned.json`` (:mod:`.triggers`). Each file is written whole
(:func:`write_live`: a temporary file in the same folder, then ``os.replace``), so a reader never
sees half a file. They are ephemeral: no fsync, and a write that fails is logged and forgotten
(it never fails the delivery or the training it reports on).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DELIVERY_EVERY_S = 0.1  # delivery progress: at most this often (the last byte always)
TRAINING_EVERY_S = 1.0  # training progress: at most this often (snapshots, states always)
MAX_SNAPSHOTS = 200  # the snapshots a training file keeps (the latest)
MAX_LIVE_BYTES = 4 * 2**20  # a live file larger than this is not read back


def write_live(path: Path, data: dict[str, Any]) -> bool:
    """Write ``data`` as JSON to ``path`` atomically (temporary file + ``os.replace`` in the
    same folder; no fsync). Returns False, after logging why, when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        text = json.dumps(data, default=str, allow_nan=False)
    except ValueError:  # a NaN or an infinity in a metric: write them as null
        text = json.dumps(_finite(data), default=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def read_live(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, not a regular file, too large or
    not a JSON object (a reader of a live file never fails)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > MAX_LIVE_BYTES:
            return None
        raw = os.read(fd, MAX_LIVE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------ delivery
class DeliveryLive:
    """``live/delivery.json`` for one delivery route of one request: ``start``, ``progress``
    (the transport's callback, throttled), ``end`` with the result. ``seq`` continues from the
    file's previous one, so that it increases across deliveries and restarts."""

    def __init__(self, path: Path, request: str, route: str, *, clock=time.monotonic):
        self.path, self.clock = path, clock
        old = read_live(path) or {}
        seq = old.get("seq")
        self.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        self.data: dict[str, Any] = {
            "id": f"{request}:{route}",
            "request": request,
            "route": route,
            "phase": "sending",
            "done": 0,
            "total": 0,
            "ok": None,
            "error": "",
        }
        self._last = -1e9

    def _write(self) -> None:
        self.seq += 1
        self.data["t"] = time.time()
        self.data["seq"] = self.seq
        write_live(self.path, self.data)
        self._last = self.clock()

    def start(self, total: int) -> None:
        self.data["total"] = int(total)
        self._write()

    def progress(self, done: int, total: int) -> None:
        """The transport's progress callback: at most every 100 ms, and always the last byte."""
        self.data["done"], self.data["total"] = int(done), int(total)
        if done >= total or self.clock() - self._last >= DELIVERY_EVERY_S:
            self._write()

    def end(self, result: dict[str, Any]) -> None:
        """The delivery's result (the dict the delivery record keeps): done or failed."""
        ok = bool(result.get("ok"))
        self.data["phase"] = "done" if ok else "failed"
        self.data["ok"] = ok
        self.data["error"] = "" if ok else str(result.get("error") or "")
        if ok:
            self.data["done"] = self.data["total"]
        self.data["result"] = result
        self._write()

    def fail(self, error: str) -> None:
        """The delivery ended by an exception (a shutdown, a bug): failed, with no result."""
        self.data.update(phase="failed", ok=False, error=error)
        self._write()


# ------------------------------------------------------------------------------ training
def snapshot_score(message: str) -> list[float | None] | None:
    """The score tuple of an engine's ``"snapshot (1.0, -0.2, inf)"`` progress message (a
    figure that is not finite becomes None), or None when the message is not a snapshot's."""
    if not message.startswith("snapshot"):
        return None
    text = message[len("snapshot") :].strip().strip("()[]")
    score: list[float | None] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            v = float(part)
        except ValueError:
            return []
        score.append(v if math.isfinite(v) else None)
    return score


class TrainingLive:
    """``live/training-<class>.json`` for one training run of one class (model ``version``).

    ``budget_s`` is the class's whole budget and ``spent0`` the seconds spent before this run
    (a run resumed after a restart): the child reports seconds of this run, the file shows the
    model's. A run of the same version that was under way before (a resumed run) keeps the
    file's snapshots; another version starts a fresh list."""

    def __init__(
        self,
        path: Path,
        cls: str,
        version: str,
        *,
        budget_s: float,
        spent0: float = 0.0,
        clock=time.monotonic,
    ):
        self.path, self.spent0, self.clock = path, float(spent0), clock
        old = read_live(path) or {}
        snaps = old.get("snapshots") if old.get("version") == version else None
        self.data: dict[str, Any] = {
            "class": cls,
            "version": version,
            "state": "training",
            "step": int(old.get("step", 0) or 0) if snaps is not None else 0,
            "run_s": round(self.spent0, 3),
            "budget_s": round(float(budget_s), 3),
            "steps_per_s": 0.0,
            "snapshots": [s for s in snaps if isinstance(s, dict)][-MAX_SNAPSHOTS:]
            if isinstance(snaps, list)
            else [],
            "model": "",
            "verdict": "",
            "error": "",
        }
        self._first: tuple[int, float] | None = None  # (step, run_s) of this run's first report
        self._last = -1e9
        self.written = False

    def _write(self) -> None:
        self.data["updated"] = time.time()
        write_live(self.path, self.data)
        self._last = self.clock()
        self.written = True

    def set_state(self, state: str, **fields: Any) -> None:
        """A state change (always written): training, saving, judging, done, stopped, failed."""
        self.data["state"] = state
        self.data.update(fields)
        self._write()

    def event(self, ev: dict[str, Any]) -> None:
        """One event of the train task (:mod:`.tasks`): a ``phase`` that names a ``state``, or a
        ``progress`` (a snapshot's when it has a ``score``)."""
        if ev.get("ev") == "phase":
            if ev.get("state"):
                self.set_state(str(ev["state"]))
            return
        if ev.get("ev") != "progress":
            return
        self._progress(ev)
        if ev.get("snapshot"):
            self._snapshot(ev)
            self._write()
        elif self.data["state"] != "training":
            self.set_state("training")
        elif self.clock() - self._last >= TRAINING_EVERY_S:
            self._write()

    def _progress(self, ev: dict[str, Any]) -> None:
        step, run_s = _int(ev.get("step")), _float(ev.get("run_s"))
        if step is not None:
            self.data["step"] = step
        if run_s is not None:
            self.data["run_s"] = round(self.spent0 + run_s, 3)
        budget = _float(ev.get("budget_s"))
        if budget is not None:
            self.data["budget_s"] = round(self.spent0 + budget, 3)
        if step is None or run_s is None:
            return
        if self._first is None:
            self._first = (step, run_s)
        elif run_s > self._first[1]:
            rate = (step - self._first[0]) / (run_s - self._first[1])
            self.data["steps_per_s"] = round(max(0.0, rate), 3)

    def _snapshot(self, ev: dict[str, Any]) -> None:
        metrics = ev.get("metrics") if isinstance(ev.get("metrics"), dict) else {}
        snap: dict[str, Any] = {
            "step": self.data["step"],
            "run_s": self.data["run_s"],
            "score": list(ev.get("score") or []),
            "metrics": metrics,
        }
        if "passed" in metrics:
            snap["passed"] = bool(metrics["passed"])
        snaps = self.data["snapshots"]
        snaps.append(snap)
        del snaps[:-MAX_SNAPSHOTS]


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
