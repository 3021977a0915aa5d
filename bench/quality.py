"""Quality benchmark: train every engine on the same 80 % split, judge against the other 20 %.

    .venv/bin/python bench/quality.py --data DIR --mode cycle|oneshot --seconds S [--engines ...]

One JSON line per engine (wavegan defaults, the WaveGAN paper's recipe, pygan when importable)
with every judge metric, the held-out baseline, the verdict and ``first_pass_s``: the training
seconds until a snapshot first passed the whole gate against the held-out 20 % (wavegan rows:
checked at every snapshot evaluation; other engines: only the final model, so it is the budget
or null). The judge's own time inside training counts as training time (pessimistic).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

ROWS = {
    "wavegan": ("wavegan", {}),
    "wavegan-paper": ("wavegan", {"recipe": "wavegan-paper"}),
    "pygan": ("pygan", {}),
}


def judge(model, train, held, mode: str, rate: int, n: int, seed: int) -> dict:
    from miragen.judge.metrics import evaluate

    per_class, passed = {}, True
    for cls in train.class_names:
        if len(held.classes.get(cls, [])) < 4:
            continue
        gen = model.sample(n, cls, seed=seed)
        rep = evaluate(gen, train.classes[cls], held.classes[cls], mode, rate=rate)
        passed = passed and rep.passed
        per_class[cls] = {
            "passed": rep.passed,
            "failed": rep.failed,
            "metrics": rep.metrics,
            "baseline": rep.baseline,
        }
    return {"passed": passed and bool(per_class), "classes": per_class}


def run_row(name: str, args, train, held, workdir: Path) -> dict:
    from miragen.engines.base import Budget, engine_class

    engine_name, opts = ROWS[name]
    opts = dict(opts, threads=args.threads)
    if engine_name == "wavegan" and name == "wavegan":
        opts.update(args.options)
    row: dict = {
        "engine": name,
        "data": str(args.data),
        "mode": args.mode,
        "seconds": args.seconds,
        "train_sounds": len(train),
        "held_sounds": len(held),
    }
    try:
        cls = engine_class(engine_name)
    except ImportError as exc:
        row["skipped"] = f"engine not importable: {exc}"
        return row
    first = {"s": None, "step": None}
    if engine_name == "wavegan":
        opts["eval_every"] = args.eval_every

        trace = row.setdefault("snapshots", []) if args.trace else None

        def hook(model, step, elapsed):
            if first["s"] is not None and trace is None:
                return
            res = judge(model, train, held, args.mode, train.rate, args.samples, 1)
            if res["passed"] and first["s"] is None:
                first.update(s=round(elapsed, 1), step=step)
            if trace is not None:
                failed = sorted({f for c in res["classes"].values() for f in c["failed"]})
                trace.append(
                    {
                        "step": step,
                        "s": round(elapsed, 1),
                        "passed": res["passed"],
                        "failed": failed,
                    }
                )

        opts["snapshot_hook"] = hook
    t0 = time.monotonic()
    model = cls(**opts).fit(train, Budget(seconds=args.seconds), None, workdir / name)
    row["train_s"] = round(time.monotonic() - t0, 1)
    t1 = time.monotonic()
    model.sample(args.samples, train.class_names[0], seed=0)
    row["sample_s_per_item"] = round((time.monotonic() - t1) / args.samples, 5)
    row.update(judge(model, train, held, args.mode, train.rate, args.samples, 0))
    if first["s"] is None and row["passed"]:
        first.update(s=row["train_s"], step=model.meta.get("steps"))
    row["first_pass_s"], row["first_pass_step"] = first["s"], first["step"]
    row["meta"] = {
        k: model.meta.get(k) for k in ("steps", "best_step", "device") if k in model.meta
    }
    if engine_name == "wavegan" and name == "wavegan" and args.options:
        row["options"] = args.options
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--mode", choices=("cycle", "oneshot"), default="cycle")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument(
        "--engines",
        default="wavegan,wavegan-paper,pygan",
        help="comma-separated rows: " + ",".join(ROWS),
    )
    p.add_argument("--samples", type=int, default=128, help="generated sounds judged per class")
    p.add_argument(
        "--eval-every", type=int, default=300, help="wavegan: steps between snapshot evaluations"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="wavegan row: an engine option (value read as JSON), repeatable",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="wavegan rows: judge every snapshot against the held-out 20 %% "
        "(listed in 'snapshots')",
    )
    args = p.parse_args(argv)
    from miragen.commands.train import (
        parse_sets,
    )  # the same KEY=VALUE rules as `miragen train --set`
    from miragen.errors import MiragenError

    try:
        args.options = parse_sets(args.sets)
    except MiragenError as exc:
        p.error(str(exc))
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from miragen.corpus.dataset import load_dataset

    ds = load_dataset(args.data, args.mode)
    train, held = ds.split(0.8, seed=args.seed)
    device = (
        "cuda"
        if torch.cuda.is_available()
        else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            if name not in ROWS:
                p.error(f"unknown engine row {name!r}")
            row = run_row(name, args, train, held, Path(tmp))
            row["device"] = device
            print(json.dumps(row, sort_keys=True, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
