"""What the demo asks the daemon: run it until idle, then read what it did from its records.

Every fact the demo reports about the daemon's work comes from the daemon's own records, never
from working it out again: the classes, their sounds and the model serving each, with its
verdict and how many sounds it was trained on and held out (``miragen status``'s view,
:func:`miragen.service.status.collect`); the jobs and when they ended (the job queue); each
request's candidates, the one delivered and how (its result record).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import MiragenError
from ..service.corpus_index import CorpusIndex
from ..service.daemon import Daemon
from ..service.db import Database
from ..service.jobs import Job, JobQueue
from ..service.requests import read_record
from ..service.state import StateDir
from ..service.status import collect

DAEMON_LIMIT_S = 1800.0  # a safety net: a stuck daemon run ends here and the stage fails


def run_daemon(cfg: dict[str, Any]) -> None:
    """The real daemon, in this process, until it has nothing left to do."""
    t0 = time.monotonic()
    rc = Daemon(cfg).run(until_idle=True, max_seconds=DAEMON_LIMIT_S)
    if rc != 0:
        raise MiragenError(f"the daemon ended with status {rc}")
    if time.monotonic() - t0 > DAEMON_LIMIT_S:
        raise MiragenError(f"the daemon did not finish within {DAEMON_LIMIT_S:.0f} s")


def jobs(folder: Path) -> list[Job]:
    """Every job the daemon has run on ``folder``, newest first."""
    db = Database(StateDir(folder).db, readonly=True)
    try:
        return JobQueue(db).jobs(limit=100000)
    finally:
        db.close()


def classes(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{class: sounds, models, and ``model``: the one serving it (None: none yet) with its
    ``verdict``, ``judged``, ``reasons``, ``metrics``, ``trained_on``, ``held_out``, ``steps``,
    ``train_seconds`` and ``device``}, as ``miragen status --json`` says."""
    return collect(cfg)["classes"]


def records(folder: Path, names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{key: the result record of request ``names[key]``} (empty when it has none)."""
    state = StateDir(folder)
    return {key: read_record(state, name) or {} for key, name in names.items()}


def rejected(folder: Path) -> list[str]:
    """The names of the inputs the daemon rejected."""
    return sorted(
        p.name for p in StateDir(folder).rejected.iterdir() if not p.name.endswith(".reason.txt")
    )


def training_sounds(folder: Path, classes: list[str], n: int) -> dict[str, list[Path]]:
    """{class: the first ``n`` sounds the daemon filed under it} (its corpus index)."""
    state = StateDir(folder)
    db = Database(state.db, readonly=True)
    try:
        index = CorpusIndex(db)
        return {c: [state.root / r["path"] for r in index.files_of(c)[:n]] for c in classes}
    finally:
        db.close()
