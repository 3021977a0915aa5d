"""``miragen status``: read the state folder (database read-only, ``status.json``) and report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import MiragenError
from .corpus_index import CorpusIndex
from .db import Database
from .deliveries import DeliveryLedger
from .jobs import JobQueue
from .models import ModelRegistry, model_verdict
from .state import POOL, StateDir

# what the train task reported of the training itself (None for an older model)
TRAINING_FACTS = ("trained_on", "held_out", "steps", "train_seconds", "device")


def _daemon_alive(state: StateDir) -> int | None:
    """PID of the daemon holding the state folder's lock, or None."""
    import fcntl  # POSIX only: deferred so that the command line loads everywhere

    path = state.root / "miragen.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def collect(cfg: dict[str, Any]) -> dict[str, Any]:
    """Everything ``miragen status`` shows (``--json`` prints it as it is)."""
    state = StateDir(Path(cfg["paths"]["state"]))
    if not state.db.is_file():
        raise MiragenError(
            f"{state.root}: no job database (miragen.db) there; has the daemon run on this state "
            "folder?"
        )
    db = Database(state.db, readonly=True)
    try:
        records = _records(db)
    finally:
        db.close()
    try:
        live = json.loads(state.status_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        live = {}
    pid = _daemon_alive(state)
    return {
        "state_dir": str(state.root),
        "daemon": {
            "running": pid is not None,
            "pid": pid,
            "started": live.get("started"),
            "updated": live.get("updated"),
            "workers": live.get("workers", {}) if pid else {},
            "worker_processes": live.get("worker_processes", {}) if pid else {},
        },
        **records,
        "transport": live.get(
            "transport", {"spec": cfg["deliver"]["transport"], "state": "unknown"}
        ),
        "midi_input": live.get("midi_input", {}),
        "rejected": _rejected(state),
        "unsorted_min": cfg["daemon"]["unsorted_min"],
    }


def _records(db: Database) -> dict[str, Any]:
    """The queue, the failed and running jobs, the classes and the deliveries, from the
    database."""
    q = JobQueue(db)
    failed = [
        {"id": j.id, "kind": j.kind, "subject": j.subject, "error": j.last_error}
        for j in q.jobs(state="failed", limit=10)
    ]
    running = [
        {"id": j.id, "kind": j.kind, "subject": j.subject, "attempts": j.attempts}
        for j in q.jobs(state="running", limit=20)
    ]
    ledger = DeliveryLedger(db)
    deliveries = [
        {
            "id": d["id"],
            "route": d["route"],
            "state": d["state"],
            "ok": d["result"].get("ok"),
            "error": d["result"].get("error"),
            "elapsed_s": d["result"].get("elapsed_s"),
        }
        for d in ledger.latest(10)
    ]
    return {
        "queue": q.counts(),
        "running": running,
        "failed": failed,
        "classes": _classes(CorpusIndex(db), ModelRegistry(db)),
        "deliveries": {"done": ledger.done(), "last": deliveries},
    }


def _classes(corpus: CorpusIndex, models: ModelRegistry) -> dict[str, Any]:
    """{class: its sounds, its number of models and the one serving it, with its verdict}."""
    classes: dict[str, Any] = {
        c: {"sounds": n, "model": None, "models": 0}
        for c, n in sorted(corpus.class_counts().items())
    }
    for m in models.all():
        entry = classes.setdefault(m["class"], {"sounds": 0, "model": None, "models": 0})
        entry["models"] += 1
        if m["current"]:
            entry["model"] = _serving(m)
    return classes


def _serving(m: dict[str, Any]) -> dict[str, Any]:
    """The model serving a class, as its registry row and its report say."""
    rep = m["report"]
    return {
        "path": m["path"],
        "passed": bool(m["passed"]),
        "judged": rep.get("judged", False),
        "verdict": model_verdict(rep) if rep.get("judged") else "not judged",
        "reasons": rep.get("reasons", []),
        "metrics": rep.get("metrics", {}),
        **{k: rep.get(k) for k in TRAINING_FACTS},
    }


def _rejected(state: StateDir) -> int:
    if not state.rejected.is_dir():
        return 0
    return sum(1 for p in state.rejected.iterdir() if not p.name.endswith(".reason.txt"))


def render(info: dict[str, Any]) -> str:
    d = info["daemon"]
    lines = [
        f"state folder: {info['state_dir']}",
        f"daemon: {'running, pid ' + str(d['pid']) if d['running'] else 'not running'}"
        + (f" (since {d['started']})" if d["running"] and d.get("started") else ""),
    ]
    for name, w in d.get("workers", {}).items():
        lines.append(f"  {name:<9} {w.get('activity', '')}")
    for name, pid in (d.get("worker_processes") or {}).items():
        lines.append(f"  {name:<9} child process {pid}")
    lines.append("queue:")
    if not info["queue"]:
        lines.append("  empty")
    for kind, states in sorted(info["queue"].items()):
        lines.append(f"  {kind:<9} " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    lines.append("classes:")
    if not info["classes"]:
        lines.append("  none yet (drop sounds into inbox/)")
    for cls, c in info["classes"].items():
        m = c["model"]
        if cls == POOL:
            model = (
                "unsorted pool: sorted into auto-N (one-shots: auto-hits-N) classes from "
                f"{info.get('unsorted_min', '?')} sounds on"
            )
        elif m is None:
            model = "no model yet"
        else:
            verdict = "not judged" if not m["judged"] else f"judge: {m.get('verdict', '?')}"
            model = f"model {m['path']} ({verdict})"
        lines.append(f"  {cls:<16} {c['sounds']:>5} sounds  {model}")
    lines.append(f"deliveries: {info['deliveries']['done']} done")
    for dl in info["deliveries"]["last"][:5]:
        lines.append(
            f"  {dl['id']:<40} {dl['route']:<6} {dl['state']}"
            + (f"  {dl['error']}" if dl.get("error") else "")
        )
    t = info["transport"]
    lines.append(
        f"transport: {t.get('spec')} {t.get('state', '')}"
        + (f" ({t['last_error']})" if t.get("last_error") else "")
    )
    mi = info.get("midi_input") or {}
    if mi:
        lines.append(
            f"MIDI input: {mi.get('spec')}: {mi.get('messages', 0)} messages, "
            f"{mi.get('fired', 0)} fired, {mi.get('learned_triggers', 0)} learned triggers"
            + (f" ({mi['error']})" if mi.get("error") else "")
        )
        if mi.get("triggers_error"):
            lines.append(f"  learned triggers refused: {mi['triggers_error'][:300]}")
    if info["failed"]:
        lines.append("failed jobs (latest):")
        for j in info["failed"][:5]:
            lines.append(f"  #{j['id']} {j['kind']} {j['subject']}: {j['error'][:150]}")
    lines.append(f"rejected inputs: {info['rejected']}")
    return "\n".join(lines)
