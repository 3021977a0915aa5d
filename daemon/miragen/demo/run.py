"""Run the whole demo in a folder and return its summary (``miragen demo``)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..corpus import synth
from ..fsutil import atomic_write_text
from .findings import DemoRun
from .folder import SIM_LOG, SIM_STATE, SUMMARY_NAME, DemoError, lock_folder, prepare_folder
from .settings import demo_workers
from .sim import SimProcess
from .stages import Progress, Stages
from .summary import build_summary

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 120
DEMO_CLASSES = synth.CLASSES + synth.HIT_CLASSES  # four of single cycles, one of one-shots


def run_demo(
    folder: str | os.PathLike = "miragen-demo",
    seconds: int = DEFAULT_SECONDS,
    *,
    classes: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole demo in ``folder``; returns the summary (``summary["ok"]``: every stage ok)."""
    say = progress or (lambda _msg: None)
    folder = Path(folder).absolute()
    classes = list(classes or DEMO_CLASSES)
    per_class = _per_class(int(seconds), classes)
    t_start = time.monotonic()
    lock = lock_folder(folder)  # one demo per folder: a second one would clean the first's files
    try:
        run = DemoRun(folder, int(seconds), classes)
        # a folder that is not the demo's: DemoError before anything starts
        run.found.rerun = prepare_folder(folder)
        sim = SimProcess(folder / SIM_STATE, folder / SIM_LOG)
        try:
            Stages(run, sim, per_class, say).all()
        finally:
            run.found.sim_exit = sim.stop()
        summary = build_summary(run, time.monotonic() - t_start)
        _write_summary(folder / SUMMARY_NAME, summary)
    finally:
        os.close(lock)
    return summary


def _per_class(seconds: int, classes: list[str]) -> int:
    """Training seconds per class: the budget split evenly among the rounds of training, with
    :func:`~.settings.demo_workers` classes training at once (5 classes, 2 at once: 3 rounds);
    DemoError for a bad demo."""
    unknown = [c for c in classes if c not in DEMO_CLASSES]
    if unknown or len(classes) < 2:
        raise DemoError(f"demo classes {classes}: need at least 2 of {', '.join(DEMO_CLASSES)}")
    rounds = -(-len(classes) // demo_workers())
    if seconds < rounds:
        raise DemoError(
            f"--seconds {seconds}: at least 1 second of training per class is needed "
            f"({len(classes)} classes, {demo_workers()} at once)"
        )
    return seconds // rounds


def _write_summary(path: Path, summary: dict[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    except OSError as exc:  # the summary is printed anyway
        log.warning("cannot write %s: %s", path, exc)
