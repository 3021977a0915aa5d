"""Benchmarks of the ``pygan`` engine; each prints one JSON object.

python bench/pygan_bench.py speed [--size 256 --batch 40 --k-step 10 --iters 3 --threads 2
        --device cpu]
    seconds per PyGAN learn() iteration (the first one apart: it builds lazy layers)
python bench/pygan_bench.py judge --data ../shared/data/akwf/AKWF_cello [--size 64 --seconds 120
        -n 40]
    trains on 80 % of a bank, draws n waves, reports the judge's verdict on them against the
    held-out 20 % and copy_report (the mode-collapse measurement)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _dataset(data: str | None, limit: int):
    from miragen.corpus.dataset import Dataset, load_dataset
    from miragen.corpus.synth import default_corpus

    if data:
        ds = load_dataset(data)
    else:
        corpus = default_corpus(0)
        cls = min(corpus)
        ds = Dataset(
            "cycle",
            29411,
            {cls: corpus[cls]},
            {cls: [f"{cls}{i}" for i in range(len(corpus[cls]))]},
        )
    cls = ds.class_names[0]
    ds = ds.subset(cls)
    ds.classes[cls] = ds.classes[cls][:limit]
    ds.names[cls] = ds.names[cls][:limit]
    return ds


def speed(args: argparse.Namespace) -> dict:
    import torch
    from miragen.engines.pygan_engine import PyGANOptions, PyGANSession, waves_to_u8, write_bitmaps

    if args.threads:
        torch.set_num_threads(args.threads)
    ds = _dataset(args.data, args.limit)
    u8 = waves_to_u8(ds.classes[ds.class_names[0]])
    opts = PyGANOptions(
        variant=args.variant,
        size=args.size,
        batch_size=args.batch,
        k_step=args.k_step,
        device=args.device,
        backend=args.backend,
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_bitmaps(u8, Path(tmp), args.size)
        sess = PyGANSession(opts, Path(tmp))
        times, cpu = [], []
        for _ in range(args.iters + 1):
            t, c = time.perf_counter(), time.process_time()
            sess.learn(1)
            if sess.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        t = time.perf_counter()
        sess.draw()
        draw_s = time.perf_counter() - t
    steady = times[1:]
    return {
        "bench": "pygan_speed",
        "variant": args.variant,
        "backend": args.backend,
        "device": sess.device,
        "gpu": torch.cuda.get_device_name(0) if sess.device == "cuda" else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "size": args.size,
        "batch": args.batch,
        "k_step": args.k_step,
        "train_images": len(u8),
        "first_iter_s": round(times[0], 3),
        "sec_per_iter_median": round(statistics.median(steady), 3),
        "sec_per_iter_all": [round(t, 3) for t in steady],
        "cpu_s_per_iter_median": round(statistics.median(cpu[1:]), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "draw_batch_s": round(draw_s, 3),
    }


def judge(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from miragen.engines.base import Budget
    from miragen.engines.pygan_engine import PyGANEngine, copy_report
    from miragen.judge.metrics import evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    ds = _dataset(args.data, args.limit)
    train, held = ds.split(0.8, seed=0)
    cls = ds.class_names[0]
    engine = PyGANEngine(
        variant=args.variant,
        size=args.size,
        batch_size=args.batch,
        k_step=args.k_step,
        device=args.device,
    )
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = engine.fit(train, Budget(seconds=args.seconds, steps=args.steps), None, Path(tmp))
    fit_s = time.perf_counter() - t
    if args.save:
        model.save(args.save)
    gen = model.sample(args.n, cls, seed=1)
    report = evaluate(gen, train.classes[cls], held.classes[cls], "cycle")
    collapse = copy_report(model, cls, n=args.n, seed=2)
    silent = sum(1 for g in gen if float(np.max(np.abs(g - g.mean()))) < 1e-3)
    return {
        "bench": "pygan_judge",
        "data": args.data or "synthetic default corpus",
        "class": cls,
        "train": len(train.classes[cls]),
        "held": len(held.classes[cls]),
        "variant": args.variant,
        "size": args.size,
        "batch": args.batch,
        "k_step": args.k_step,
        "iterations": model.meta["iterations"][cls],
        "fit_s": round(fit_s, 1),
        "generated": len(gen),
        "flat_outputs": silent,
        "judge_passed": report.passed,
        "judge_metrics": {k: round(float(v), 4) for k, v in report.metrics.items()},
        "judge_baseline": {k: round(float(v), 4) for k, v in report.baseline.items()},
        "judge_reasons": report.reasons,
        "copy_report": collapse,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=("speed", "judge"))
    p.add_argument(
        "--data", help="a folder of single cycles (default: the synthetic corpus's first class)"
    )
    p.add_argument("--limit", type=int, default=200, help="use at most this many waves")
    p.add_argument("--variant", default="gan", choices=("gan", "ebgan", "ebaae"))
    p.add_argument("--backend", default="torch", choices=("torch", "mxnet"))
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=40)
    p.add_argument("--k-step", type=int, default=10)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--save", metavar="MODEL", help="judge: also save the trained model folder here")
    args = p.parse_args(argv)
    out = speed(args) if args.what == "speed" else judge(args)
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
