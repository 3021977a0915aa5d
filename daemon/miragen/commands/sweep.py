"""``miragen sweep``: train one model per grid point, judge each, name the best run."""

from __future__ import annotations

import argparse
import json

from ..app.sweep import parse_grid, run_sweep
from ..engines.options import parse_sets
from ._args import float_range, int_range, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a grid of settings side by side, judge each run, name the best",
        description="For every combination of the --grid values: train ENGINE on 80 % of each "
        "class for S seconds, draw candidates, judge them against the other 20 %. Keeps "
        "OUT/sweep.db (SQLite), a folder per run (model, candidates, contact.png, report.json), "
        "OUT/summary.png and OUT/summary.tsv, and names the best run (docs/judge.md).",
    )
    p.add_argument("--engine", required=True, metavar="E", help="engine name (wavegan, pygan)")
    p.add_argument(
        "--data", required=True, metavar="DIR", help="training folder (subfolders are classes)"
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="engine option and its values (repeatable)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="fixed",
        metavar="KEY=V",
        help="engine option fixed for every run (repeatable)",
    )
    p.add_argument(
        "--seconds",
        required=True,
        type=float_range(0, unit="s", lo_open=True),
        metavar="S",
        help="training budget per run",
    )
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="DIR",
        help="sweep folder (sweep.db, runNNN/, summary.png)",
    )
    p.add_argument("--mode", default="cycle", choices=("cycle", "oneshot"))
    p.add_argument(
        "--count",
        type=int_range(1),
        default=16,
        metavar="N",
        help="candidates drawn and judged per class and run",
    )
    p.add_argument("--seed", type=seed(), default=0, help="split, training and sampling seed")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    grid = parse_grid(args.grid)
    fixed = parse_sets(args.fixed)

    def on_run(run) -> None:
        if not args.json:
            state = (
                run.status
                if run.status != "done"
                else ("pass" if run.passed else f"fail ({len(run.failed)} checks)")
            )
            print(f"run{run.id:03d} {run.label()}: {state}", flush=True)

    res = run_sweep(
        args.engine,
        args.data,
        grid,
        args.seconds,
        args.out,
        mode=args.mode,
        count=args.count,
        seed=args.seed,
        fixed=fixed,
        on_run=on_run,
    )
    if args.json:
        doc = {
            "sweep": res.sweep_id,
            "db": str(res.db),
            "summary_png": str(res.summary_png) if res.summary_png else None,
            "summary_tsv": str(res.summary_tsv),
            "best": res.best.id if res.best else None,
            "best_folder": str(res.best.folder) if res.best else None,
            "runs": [
                {
                    "run": r.id,
                    "params": r.params,
                    "status": r.status,
                    "error": r.error,
                    "passed": r.passed,
                    "failed": r.failed,
                    "frechet_ratio": r.frechet_ratio if r.status == "done" else None,
                    "recall_ratio": r.recall_ratio,
                    "timings": r.timings,
                    "folder": str(r.folder),
                }
                for r in res.runs
            ],
        }
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(res.table())
    return 0 if res.best is not None else 1
