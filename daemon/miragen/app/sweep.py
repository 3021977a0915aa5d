"""Parameter sweeps: train one model per grid point, judge each, name the best.

The article's cure for mode collapse was to try settings side by side and look. A sweep:

1. loads the data (``corpus.dataset.load_dataset``) and splits every class 80/20 into
   training and held-out sets (seeded);
2. for each point of the grid (the Cartesian product of ``KEY=V1,V2`` lists) builds the
   engine with those options (plus ``fixed`` options and ``seed`` unless the grid sets it),
   trains it for ``seconds`` on the training part, draws ``count`` candidates per class and
   judges them with :func:`miragen.judge.metrics.evaluate` against the held-out part;
3. keeps everything: a row per run in ``OUT/sweep.db`` (SQLite: parameters, seed, versions,
   metrics, timings, verdict), a folder per run (``OUT/runNNN/``) with the model, the raw
   candidates as Mirage 8-bit ``.pcm`` (ungated: a sweep shows what the model makes),
   ``contact.png`` and ``report.json``; and ``OUT/summary.png`` (a row of candidates per run)
   and ``OUT/summary.tsv``;
4. names the best run: fewest failed gate checks, then the lowest Fréchet ratio (G's Fréchet
   distance ÷ H's, averaged over classes), then the highest recall ratio.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..audio.io import read_audio, write_pcm
from ..audio.mirage8 import prepare
from ..audio.render import contact_sheet
from ..corpus.dataset import Dataset, load_dataset
from ..engines.base import Budget, Engine, Progress, engine_class
from ..errors import MiragenError
from ..fsutil import atomic_write_text
from ..judge.metrics import MIN_SET, evaluate

log = logging.getLogger(__name__)

DB_NAME = "sweep.db"
SUMMARY_COLS = 4  # candidates shown per run in summary.png

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    engine TEXT NOT NULL,
    data TEXT NOT NULL,
    mode TEXT NOT NULL,
    grid TEXT NOT NULL,
    fixed TEXT NOT NULL,
    seconds REAL NOT NULL,
    count INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    versions TEXT NOT NULL,
    best_run INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    folder TEXT NOT NULL,
    params TEXT NOT NULL,
    options TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    started REAL,
    train_s REAL,
    sample_s REAL,
    eval_s REAL,
    passed INTEGER,
    failed TEXT,
    failed_count INTEGER,
    frechet_ratio REAL,
    recall_ratio REAL,
    metrics TEXT
);
"""


@dataclass
class SweepRun:
    id: int
    folder: Path
    params: dict[str, Any]
    seed: int
    status: str = "pending"  # pending | done | failed
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    failed: list[str] = field(default_factory=list)  # "class: check"
    frechet_ratio: float = math.inf
    recall_ratio: float = 0.0
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # class -> Report.to_dict()

    def rank_key(self) -> tuple:
        if self.status != "done":
            return (1, math.inf, math.inf, 0.0, self.id)
        return (0, len(self.failed), self.frechet_ratio, -self.recall_ratio, self.id)

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params.items()) or "(defaults)"


@dataclass
class SweepResult:
    sweep_id: int
    runs: list[SweepRun]
    best: SweepRun | None
    db: Path
    summary_png: Path | None
    summary_tsv: Path

    def table(self) -> str:
        return summary_table(self.runs, self.best)


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["lr=1e-4,3e-4", "width=16"]`` → ``{"lr": ["1e-4", "3e-4"], "width": ["16"]}``: the
    text of each value, typed by the engine's options class in :func:`run_sweep`."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip():
            raise MiragenError(f"--grid {item!r}: expected KEY=V1,V2,…")
        if key in grid:
            raise MiragenError(f"--grid: key '{key}' given twice")
        grid[key] = [v.strip() for v in values.split(",") if v.strip()]
        if not grid[key]:
            raise MiragenError(f"--grid {item!r}: no values")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


def versions() -> dict[str, str]:
    out = {
        "miragen": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for mod in ("numpy", "scipy", "sklearn", "torch", "pygan", "mxnet"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "?"))
    return out


def _open_db(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path))
    con.executescript(_SCHEMA)
    return con


def _write_candidates(
    waves: list[np.ndarray], folder: Path, stem: str, rate: int, mode: str, seed: int
) -> list[Path]:
    paths = []
    rng = np.random.default_rng(seed)
    for i, w in enumerate(waves):
        x = np.nan_to_num(np.asarray(w, dtype=np.float64))
        prep = prepare(x, rate, target_rate=rate, rng=rng, source=f"{stem}{i:03d}")
        paths.append(write_pcm(folder / f"{stem}{i:03d}.pcm", prep.data))
    return paths


def run_sweep(
    engine: str,
    data: str | Path,
    grid: dict[str, list[Any]],
    seconds: float,
    out: str | Path,
    *,
    mode: str = "cycle",
    count: int = 16,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    train_fraction: float = 0.8,
    on_run: Callable[[SweepRun], None] | None = None,
) -> SweepResult:
    """Train, sample and judge one model per grid point; see the module docstring. Grid and
    fixed values may be text (``--grid``/``--set``): the engine's options class types them, and
    a bad key or value is refused before anything trains."""
    if seconds <= 0:
        raise MiragenError(f"--seconds must be positive (got {seconds})")
    if count < MIN_SET:
        raise MiragenError(f"--count must be at least {MIN_SET} to judge a run (got {count})")
    cls_engine = engine_class(engine)
    fixed = cls_engine.read_values(dict(fixed or {}))
    grid = {k: [cls_engine.read_values({k: v})[k] for v in vs] for k, vs in grid.items()}
    points = grid_points(grid)
    option_sets = [{"seed": seed, **fixed, **p} for p in points]
    for opts in option_sets:
        cls_engine.read_options(opts)  # refuses bad combinations before anything trains
    ds = load_dataset(data, mode)
    train, held = _judgeable_split(ds, data, train_fraction, seed)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = SweepDB(out / DB_NAME)
    sweep_id = db.add_sweep(engine, data, mode, grid, fixed, seconds, count, seed)
    runs: list[SweepRun] = []
    for params, opts in zip(points, option_sets):
        run = db.add_run(sweep_id, out, params, opts, int(opts.get("seed", seed)))
        runs.append(run)
        run_one(run, cls_engine, opts, train, held, seconds, count)
        db.record(run)
        if on_run is not None:
            on_run(run)

    done = [r for r in runs if r.status == "done"]
    best = min(done, key=SweepRun.rank_key) if done else None
    db.finish(sweep_id, best)
    tsv = out / "summary.tsv"
    atomic_write_text(tsv, summary_tsv(runs, best))
    png = _summary_png(runs, best, out / "summary.png")
    if best is not None:
        log.info("sweep %d: best run %d (%s)", sweep_id, best.id, best.label())
    else:
        log.warning("sweep %d: no run finished", sweep_id)
    return SweepResult(sweep_id, runs, best, db.path, png, tsv)


def _judgeable_split(
    ds: Dataset, data: str | Path, train_fraction: float, seed: int
) -> tuple[Dataset, Dataset]:
    """The seeded split every run trains and is judged on; refused when a class is too small
    for the judge."""
    train, held = ds.split(train_fraction, seed)
    small = [
        c for c in ds.class_names if len(held.classes[c]) < MIN_SET or len(train.classes[c]) < 5
    ]
    if small:
        raise MiragenError(
            f"{data}: class(es) {', '.join(small)} too small to judge (need ≥ 5 training and ≥ "
            f"{MIN_SET} held-out sounds after the {train_fraction:.0%} split)"
        )
    return train, held


class SweepDB:
    """``OUT/sweep.db``: a row per sweep and per run."""

    def __init__(self, path: Path):
        self.path = path
        self.con = _open_db(path)

    def add_sweep(self, engine, data, mode, grid, fixed, seconds, count, seed) -> int:
        with self.con:
            cur = self.con.execute(
                "INSERT INTO sweeps (created, engine, data, mode, grid, fixed, seconds, count, "
                "seed, versions) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    engine,
                    str(data),
                    mode,
                    json.dumps(grid),
                    json.dumps(fixed),
                    float(seconds),
                    count,
                    seed,
                    json.dumps(versions()),
                ),
            )
        return int(cur.lastrowid)

    def add_run(
        self, sweep_id: int, out: Path, params: dict[str, Any], opts: dict[str, Any], seed: int
    ) -> SweepRun:
        with self.con:
            cur = self.con.execute(
                "INSERT INTO runs (sweep_id, folder, params, options, seed, status) VALUES "
                "(?,?,?,?,?,?)",
                (sweep_id, "", json.dumps(params), json.dumps(opts, default=str), seed, "pending"),
            )
            run_id = int(cur.lastrowid)
            folder = out / f"run{run_id:03d}"
            self.con.execute("UPDATE runs SET folder=? WHERE id=?", (str(folder), run_id))
        return SweepRun(run_id, folder, params, seed)

    def record(self, run: SweepRun) -> None:
        with self.con:
            self.con.execute(
                "UPDATE runs SET status=?, error=?, started=?, train_s=?, sample_s=?, eval_s=?, "
                "passed=?, failed=?, failed_count=?, frechet_ratio=?, recall_ratio=?, metrics=? "
                "WHERE id=?",
                (
                    run.status,
                    run.error,
                    run.timings.get("started"),
                    run.timings.get("train_s"),
                    run.timings.get("sample_s"),
                    run.timings.get("eval_s"),
                    int(run.passed),
                    json.dumps(run.failed),
                    len(run.failed) if run.status == "done" else None,
                    run.frechet_ratio if math.isfinite(run.frechet_ratio) else None,
                    run.recall_ratio,
                    json.dumps(run.reports),
                    run.id,
                ),
            )

    def finish(self, sweep_id: int, best: SweepRun | None) -> None:
        with self.con:
            self.con.execute(
                "UPDATE sweeps SET best_run=?, versions=? WHERE id=?",
                (best.id if best else None, json.dumps(versions()), sweep_id),
            )
        self.con.close()


def run_one(
    run: SweepRun,
    cls_engine: type[Engine],
    opts: dict[str, Any],
    train: Dataset,
    held: Dataset,
    seconds: float,
    count: int,
) -> None:
    """Train, draw and judge one grid point; a failing engine marks the run failed (the sweep
    goes on)."""
    run.folder.mkdir(parents=True, exist_ok=True)
    run.timings["started"] = time.time()
    drawn = _train_and_draw(run, cls_engine, opts, train, seconds, count)
    if drawn is None:
        return
    t0 = time.monotonic()
    sheet_waves, sheet_titles = [], []
    fr, rr = [], []
    for c, waves in drawn.items():
        rep = evaluate(
            waves, train.classes[c], held.classes[c], train.mode, rate=train.rate, seed=run.seed
        )
        run.reports[c] = rep.to_dict()
        run.failed += [f"{c}: {name}" for name in rep.failed]
        if rep.verdict == "inconclusive":
            run.failed.append(f"{c}: inconclusive (too few held-out sounds to tell)")
        fh, gh = rep.baseline["frechet"], rep.metrics["frechet"]
        fr.append(gh / fh if fh > 0 else math.inf)
        rh = rep.baseline["recall"]
        rr.append(rep.metrics["recall"] / rh if rh > 0 else 0.0)
        _write_candidates(waves, run.folder / c, "cand", train.rate, train.mode, run.seed)
        sheet_waves += [
            np.clip(np.nan_to_num(np.asarray(w, dtype=np.float64)), -1, 1) for w in waves
        ]
        sheet_titles += [f"{c} #{i}" for i in range(len(waves))]
    run.timings["eval_s"] = time.monotonic() - t0
    run.frechet_ratio = float(np.mean(fr))
    run.recall_ratio = float(np.mean(rr))
    run.passed = not run.failed
    run.status = "done"
    contact_sheet(
        sheet_waves, run.folder / "contact.png", titles=sheet_titles, cols=SUMMARY_COLS * 2
    )
    _write_report(run, opts)


def _train_and_draw(
    run: SweepRun,
    cls_engine: type[Engine],
    opts: dict[str, Any],
    train: Dataset,
    seconds: float,
    count: int,
) -> dict[str, list[np.ndarray]] | None:
    """The run's model, saved in its folder, and ``count`` draws per class (None: it failed)."""

    def progress(p: Progress) -> None:
        log.debug("run %d step %d %.1fs %s", run.id, p.step, p.elapsed_s, p.losses)

    try:
        t0 = time.monotonic()
        model = cls_engine(**opts).fit(
            train, Budget(seconds=seconds), progress, run.folder / "checkpoint"
        )
        run.timings["train_s"] = time.monotonic() - t0
        model.save(run.folder / "model")
        t0 = time.monotonic()
        drawn = {c: model.sample(count, c, seed=run.seed) for c in train.class_names}
        run.timings["sample_s"] = time.monotonic() - t0
        return drawn
    except MiragenError as exc:
        run.status, run.error = "failed", str(exc)
        log.error("run %d (%s) failed: %s", run.id, run.label(), exc)
    except Exception as exc:  # an engine bug must not end the whole sweep
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("run %d (%s) crashed", run.id, run.label())
    return None


def _write_report(run: SweepRun, opts: dict[str, Any]) -> None:
    doc = {
        "run": run.id,
        "params": run.params,
        "options": dict(opts),
        "seed": run.seed,
        "timings": run.timings,
        "passed": run.passed,
        "failed": run.failed,
        "frechet_ratio": run.frechet_ratio,
        "recall_ratio": run.recall_ratio,
        "reports": run.reports,
        "versions": versions(),
    }
    atomic_write_text(run.folder / "report.json", json.dumps(doc, indent=2, default=str))


_COLUMNS = (
    "run",
    "params",
    "status",
    "verdict",
    "failed",
    "novelty",
    "diversity",
    "precision",
    "recall",
    "frechet_ratio",
    "train_s",
)


def _row(run: SweepRun, best: SweepRun | None) -> list[str]:
    def mean_metric(name: str) -> str:
        vals = [
            r["metrics"][name] for r in run.reports.values() if r["metrics"].get(name) is not None
        ]
        return f"{np.mean(vals):.3f}" if vals else "-"

    verdict = "-" if run.status != "done" else ("pass" if run.passed else "fail")
    mark = " *best*" if best is not None and run.id == best.id else ""
    return [
        f"run{run.id:03d}{mark}",
        run.label(),
        run.status if run.status == "done" else f"{run.status}: {run.error}",
        verdict,
        str(len(run.failed)) if run.status == "done" else "-",
        mean_metric("novelty"),
        mean_metric("diversity"),
        mean_metric("precision"),
        mean_metric("recall"),
        f"{run.frechet_ratio:.3f}" if math.isfinite(run.frechet_ratio) else "-",
        f"{run.timings['train_s']:.1f}" if "train_s" in run.timings else "-",
    ]


def summary_tsv(runs: list[SweepRun], best: SweepRun | None) -> str:
    lines = ["\t".join(_COLUMNS)] + ["\t".join(_row(r, best)) for r in runs]
    return "\n".join(lines) + "\n"


def summary_table(runs: list[SweepRun], best: SweepRun | None) -> str:
    rows = [list(_COLUMNS)] + [_row(r, best) for r in runs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if best is not None:
        lines.append(f"best: run{best.id:03d} ({best.label()}) → {best.folder}")
    else:
        lines.append("best: none (no run finished)")
    return "\n".join(lines)


def _summary_png(runs: list[SweepRun], best: SweepRun | None, path: Path) -> Path | None:
    """One row per finished run: its first candidates, the first titled with the run's verdict."""
    waves, titles = [], []
    for r in runs:
        if r.status != "done":
            continue
        files = sorted(r.folder.glob("*/cand*.pcm"))[:SUMMARY_COLS]
        for j in range(SUMMARY_COLS):
            if j < len(files):
                waves.append(read_audio(files[j]).samples)
            else:
                waves.append(np.zeros(256, dtype=np.float32))
            if j == 0:
                star = "*" if best is not None and r.id == best.id else ""
                verdict = "pass" if r.passed else f"{len(r.failed)} fail"
                titles.append(f"{star}run{r.id:03d} {verdict} FDx{r.frechet_ratio:.2f}")
            elif j == 1:
                titles.append(r.label()[:40])
            else:
                titles.append(f"#{j}")
    if not waves:
        return None
    return contact_sheet(waves, path, titles=titles, cols=SUMMARY_COLS)
