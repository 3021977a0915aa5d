"""Training speed, generation throughput and generation latency of each engine on this device.

    .venv/bin/python bench/train_speed.py [--seconds 20] [--threads 2]
        [--engines wavegan,wavegan-wave,wavegan-paper,pygan] [--no-oneshot] [--label TEXT]

Rows: ``wavegan`` is the default recipe (one-shots: the synthesiser design), ``wavegan-wave``
the same with the raw-sample one-shot generator (``oneshot_design=wave``, the design before
issue 17), ``wavegan-paper`` the WaveGAN paper's recipe, ``pygan`` the PyGAN pipeline.

For every engine row and length (a 256-point cycle; one-shots of 4,096 samples, and of 65,536
output samples at an internal length of 16,384 — which the raw-sample design reaches by
lowering its internal rate — and, for the synthesiser, of 65,536 at the full rate), prints one
JSON line: ``steps_per_s`` (training on synthetic data,
from the progress reports), ``samples_per_s`` (a batch of 64 drawn from a loaded model) and the
latency of one sound from a loaded model (``latency_ms``: median of 5, after one warm-up).
Targets (issue 6): one cycle ≤ 50 ms, one 64 KB one-shot ≤ 2 s on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = {
    "wavegan": ("wavegan", {}),
    "wavegan-wave": ("wavegan", {"oneshot_design": "wave"}),
    "wavegan-paper": ("wavegan", {"recipe": "wavegan-paper"}),
    "pygan": ("pygan", {}),
}


def synthetic(mode: str, n: int, length: int, rate: int):
    from miragen.corpus.dataset import Dataset

    rng = np.random.default_rng(0)
    waves = []
    for _ in range(n):
        if mode == "cycle":
            k = np.arange(1, 33)
            spec = np.zeros(129, complex)
            spec[1:33] = rng.uniform(0.1, 1, 32) / k
            w = np.fft.irfft(spec, 256)
        else:
            m = int(rng.integers(length // 2, length))
            t = np.arange(m)
            w = np.sin(2 * np.pi * rng.uniform(60, 600) * t / rate) * np.exp(-t / (m / 4))
        waves.append((w / np.abs(w).max()).astype(np.float32))
    return Dataset(mode, rate, {"bench": waves}, {"bench": [f"w{i}" for i in range(n)]}, 256)


def measure(name: str, mode: str, out_len: int, oneshot_len: int, args) -> dict:
    from miragen.engines.base import Budget, engine_class, load_model

    engine_name, opts = ROWS[name]
    row = {"engine": name, "mode": mode, "output_samples": out_len}
    try:
        cls = engine_class(engine_name)
    except ImportError as exc:
        row["skipped"] = f"not importable: {exc}"
        return row
    opts = dict(opts, threads=args.threads)
    if engine_name == "wavegan":
        opts.update(eval_every=10**9, checkpoint_every=10**9)
        if mode == "oneshot":
            opts["oneshot_len"] = oneshot_len
            row["internal_samples"] = oneshot_len
    ds = synthetic(mode, 32, out_len, 29411)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            engine = cls(**opts)
        except Exception as exc:  # an engine that does not know these options
            row["skipped"] = str(exc)
            return row
        # steps/s from the progress reports (every ~2 s) of a run of --seconds, after a short
        # warm-up run: data preparation and the final snapshot judging do not count
        engine.fit(ds, Budget(steps=2), None, Path(tmp) / "warm")
        marks: list[tuple[int, float]] = []

        def progress(pr):
            if pr.losses:
                marks.append((pr.step, time.monotonic()))

        model = engine.fit(ds, Budget(seconds=args.seconds), progress, Path(tmp) / "run")
        if len(marks) >= 2:
            row["steps_per_s"] = round(
                (marks[-1][0] - marks[0][0]) / (marks[-1][1] - marks[0][1]), 2
            )
        else:
            row["steps_per_s"] = None
            row["note"] = "fewer than two progress reports: raise --seconds"
        model.save(Path(tmp) / "m")
        model = load_model(Path(tmp) / "m")
        model.sample(1, seed=0)
        t0 = time.monotonic()
        batch = model.sample(64, seed=1)
        row["samples_per_s"] = round(64 / (time.monotonic() - t0), 1)
        lat = []
        for i in range(5):
            t0 = time.monotonic()
            model.sample(1, seed=10 + i)
            lat.append((time.monotonic() - t0) * 1000)
        row["latency_ms"] = round(statistics.median(lat), 1)
        row["longest_output"] = int(max(len(w) for w in batch))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20, help="training seconds per row")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engines", default="wavegan,wavegan-wave,wavegan-paper,pygan")
    p.add_argument("--no-oneshot", action="store_true")
    p.add_argument(
        "--label",
        default="",
        help="recorded in every row: which code ran (e.g. a commit, when runs of two checkouts "
        "are interleaved with PYTHONPATH=CHECKOUT/daemon)",
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    device = (
        f"cuda ({torch.cuda.get_device_name(0)})"
        if torch.cuda.is_available()
        else f"cpu ({platform.machine()}, {args.threads} threads)"
    )
    shapes = [("cycle", 256, 0)] + (
        []
        if args.no_oneshot
        else [("oneshot", 4096, 4096), ("oneshot", 65536, 16384), ("oneshot", 65536, 65536)]
    )
    for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
        for mode, out_len, internal in shapes:
            if internal == 65536 and name != "wavegan":
                continue  # only the synthesiser trains at 65,536 internal samples in reason
            row = measure(name, mode, out_len, internal, args)
            row["device"] = device
            row["torch"] = torch.__version__
            if args.label:
                row["label"] = args.label
            print(json.dumps(row, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
