"""How robustly the demo's classes pass at the demo's budget: train each class as the daemon
does (its split, its options, plus ``--set``), then judge the saved model on several draws.

    .venv/bin/miragen demo --dir DEMO          # once: the classes, as the daemon ingested them
    .venv/bin/python bench/demo_classes.py DEMO --classes fm,additive --seeds 0,1,2 \\
        --seconds 40 --draws 10 [--set batch=16] --out bench/results/demo-classes.jsonl

For every class and engine seed, one child process on one core (``--jobs`` at a time, two by
default: the demo trains two classes at once) trains the class on the 40 of its 50 sounds the
daemon trains on, for ``--seconds``, and judges the model it keeps against those 40 and the 10
held out, on ``--draws`` draws of 64 sounds (seeds 0..K-1, as many as the daemon's judge
draws; the hits are judged as one-shots). One JSON line per run is appended to ``--out``:
steps, how many draws pass, and each draw's verdict, failed rules and ``clusters``. The demo's
own verdict is one such draw of one seed: a class that passes 10 draws of 3 seeds is not a coin
toss for the next person who runs the demo (docs/demo.md, "A batch of 16"). ``--saved``
judges, on as many draws, the models the demo's daemon saved instead (no training).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def saved_model(folder: Path, cls: str):
    """The model the demo's daemon saved last for ``cls`` (``models/CLS/vNNNN``)."""
    from miragen.engines.base import load_model

    versions = sorted(
        p for p in (folder / "models" / cls).glob("v*") if (p / "model.json").is_file()
    )
    if not versions:
        raise SystemExit(f"{folder / 'models' / cls}: no saved model of class {cls}")
    return load_model(versions[-1])


def run_one(
    folder: Path, cls: str, seconds: float, draws: int, sets: list[str], saved: bool = False
) -> dict:
    """Train ``cls`` of the demo folder ``folder`` as the daemon does (or, ``saved``, take the
    model the demo saved) and judge ``draws`` draws of it (in this process, one torch thread)."""
    import torch
    from miragen import config
    from miragen.engines.base import engine_class
    from miragen.engines.options import parse_sets
    from miragen.judge.metrics import evaluate
    from miragen.service.state import class_mode
    from miragen.service.tasks import (
        JUDGE_SAMPLES,
        StoppableBudget,
        _dataset,
        training_options,
    )

    torch.set_num_threads(1)
    cfg = config.load(folder / "miragen.toml")
    train, held = _dataset(folder, cfg, cls).split(0.8, seed=0)  # the daemon's split
    t0 = time.monotonic()
    if saved:
        model = saved_model(folder, cls)
    else:
        opts = {**training_options(cfg), **parse_sets(sets)}
        with tempfile.TemporaryDirectory() as tmp:
            model = engine_class(cfg["train"]["engine"])(**opts).fit(
                # the daemon's budget: its seconds count from the first step, not the set-up
                train,
                StoppableBudget(threading.Event(), seconds),
                None,
                Path(tmp) / "checkpoint",
            )
    fit_s = time.monotonic() - t0
    rows = []
    kind = class_mode(cfg, cls)  # the hits are one-shots
    for seed in range(draws):
        gen = model.sample(JUDGE_SAMPLES, cls, seed=seed)  # as many as the daemon's judge draws
        rep = evaluate(gen, train.classes[cls], held.classes[cls], kind, rate=cfg["audio"]["rate"])
        rows.append(
            {
                "verdict": rep.verdict,
                "failed": sorted(rep.failed),
                "clusters": (
                    round(float(rep.metrics["clusters"]), 4) if "clusters" in rep.metrics else None
                ),
            }
        )
    return {
        "class": cls,
        "sets": sets,  # none with --saved (main refuses them)
        "saved": saved,
        "seconds": None if saved else seconds,
        "steps": model.meta.get("steps"),
        "fit_s": round(fit_s, 1),
        "passes": sum(r["verdict"] == "pass" for r in rows),
        "draws": rows,
    }


def child(folder: Path, cls: str, seed: int, args) -> dict:
    """One class and engine seed in a child process on one core."""
    sets = [] if args.saved else [*args.sets, f"seed={seed}"]
    cmd = [sys.executable, __file__, str(folder), "--one", cls, "--seconds", str(args.seconds)]
    cmd += ["--draws", str(args.draws)] + [x for s in sets for x in ("--set", s)]
    cmd += ["--saved"] if args.saved else []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"class": cls, "sets": sets, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("folder", type=Path, help="a folder `miragen demo` made")
    p.add_argument("--classes", default="additive,pulse,saw,fm", help="comma-separated")
    p.add_argument("--seeds", default="0", help="engine seeds, comma-separated")
    p.add_argument("--seconds", type=float, default=40.0, help="training seconds per class")
    p.add_argument("--draws", type=int, default=10, help="draws of 64 judged per model")
    p.add_argument("--jobs", type=int, default=2, help="classes trained at once")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, help="append one JSON line per run here")
    p.add_argument(
        "--saved",
        action="store_true",
        help="judge the models the demo saved (no training; --seeds and --set do not apply)",
    )
    p.add_argument("--one", metavar="CLASS", help=argparse.SUPPRESS)  # a child's own run
    args = p.parse_args(argv)
    if not (args.folder / "miragen.toml").is_file():
        p.error(f"{args.folder}: no miragen.toml (run `miragen demo --dir {args.folder}` first)")
    if args.draws < 1 or args.jobs < 1:
        p.error("--draws and --jobs must be at least 1")
    if args.saved and (args.sets or args.seeds != "0"):
        p.error("--saved judges the demo's own models: --seeds and --set do not apply")
    if args.one:
        row = run_one(args.folder, args.one, args.seconds, args.draws, args.sets, args.saved)
        print(json.dumps(row))
        return 0
    runs = [(c, int(s)) for s in args.seeds.split(",") for c in args.classes.split(",")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda r: child(args.folder, r[0], r[1], args), runs))
    for row in rows:
        print(json.dumps(row, sort_keys=True), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
