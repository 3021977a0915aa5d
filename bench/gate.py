"""The candidate gate on every bank: does what it keeps stay as varied as what the model draws?

    .venv/bin/python bench/gate.py --banks ../shared/data/akwf --cache /tmp/gate-models \\
        [--seconds 60] [--jobs 2] [--samples 64] [--out gate.jsonl]

For each bank (a folder of single cycles): the 80/20 split every bench uses
(``Dataset.split(0.8, seed=0)``), a wavegan model trained for ``--seconds`` on one CPU thread
(kept in ``--cache``: a second run reuses it, so gate variants are compared on the same models),
then from the same model:

- **off**: the first ``--samples`` of the draws, as they come (``miragen generate --gate off``);
- **on**: all ``--samples`` × ``generate.oversample`` draws through the gate, ``--samples`` kept
  (``miragen generate``). Both come from the same draws, so the ratio measures the gate, not
  the luck of two separate draws.

Both sets are judged against the held-out 20 % (:func:`miragen.judge.metrics.evaluate`); the
row holds diversity and recall of each, their ratios (on ÷ off), the verdicts, and what the gate
rejected. Banks run ``--jobs`` at a time, one thread each; a bank already in ``--out`` is not run
again (resumable). The last line is a summary: the median and the lowest ratio, how many banks
fall below 0.85, and the verdicts with the gate on and off. Issue 20's bar: ratio ≥ 0.95 on the
median bank and no bank below 0.85.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


def run_bank(bank: str, cache: str, seconds: float, samples: int, seed: int) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import logging

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    from miragen import config as configmod
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.base import MODEL_META, Budget, engine_class, load_model
    from miragen.errors import MiragenError
    from miragen.judge.gate import gate_candidates
    from miragen.judge.metrics import evaluate

    t0 = time.monotonic()
    ds = load_dataset(bank, "cycle")
    train, held = ds.split(0.8, seed=0)
    cls = train.class_names[0]
    folder = Path(cache) / Path(bank).name
    model = None
    if (folder / MODEL_META).exists():
        try:
            model = load_model(folder)
        except MiragenError:  # a broken cache entry is trained again
            model = None
    if model is None:
        model = engine_class("wavegan")(threads=1).fit(
            train, Budget(seconds=seconds), None, folder / "ckpt"
        )
        model.save(folder)
    g = configmod.defaults()["generate"]
    t_rate = train.rate
    draws = model.sample(samples * int(g["oversample"]), cls, seed=seed)
    off = draws[:samples]  # what --gate off writes: the first draws, paired with the gate's pool
    res = gate_candidates(
        draws,
        train.classes[cls],
        "cycle",
        keep=samples,
        copy_factor=g["copy_factor"],
        duplicate_factor=g["duplicate_factor"],
        rate=t_rate,
    )
    on = [draws[i] for i in res.kept]
    row: dict = {
        "bank": Path(bank).name,
        "train": len(train.classes[cls]),
        "held": len(held.classes[cls]),
        "steps": model.meta.get("steps"),
    }
    for name, waves in (("off", off), ("on", on)):
        rep = evaluate(waves, train.classes[cls], held.classes[cls], "cycle", rate=t_rate)
        row[name] = {
            "n": len(waves),
            "diversity": rep.metrics.get("diversity"),
            "recall": rep.metrics.get("recall"),
            "precision": rep.metrics.get("precision"),
            "frechet": rep.metrics.get("frechet"),
            "passed": rep.passed,
            "verdict": getattr(rep, "verdict", "pass" if rep.passed else "fail"),
            "failed": rep.failed,
        }
    for m in ("diversity", "recall"):
        a, b = row["on"][m], row["off"][m]
        row[f"{m}_ratio"] = round(a / b, 4) if a is not None and b else None
    row["gate"] = res.counts
    row["seconds"] = round(time.monotonic() - t0, 1)
    return row


def summary(rows: list[dict]) -> dict:
    out: dict = {"summary": True, "banks": len(rows)}
    for m in ("diversity_ratio", "recall_ratio"):
        vals = [r[m] for r in rows if r.get(m) is not None]
        if vals:
            out[m] = {
                "median": round(statistics.median(vals), 4),
                "min": round(min(vals), 4),
                "below_0.85": sum(v < 0.85 for v in vals),
                "worst": min(rows, key=lambda r: r.get(m) or 9)["bank"],
            }
    for side in ("on", "off"):
        out[f"passed_{side}"] = sum(1 for r in rows if r[side]["passed"])
        out[f"failed_{side}"] = sum(1 for r in rows if r[side]["failed"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--banks", required=True, type=Path, help="folder whose subfolders are banks")
    p.add_argument("--cache", required=True, type=Path, help="trained models, one folder a bank")
    p.add_argument("--seconds", type=float, default=60.0, help="training budget per bank")
    p.add_argument("--jobs", type=int, default=2, help="banks at a time (one thread each)")
    p.add_argument("--samples", type=int, default=64, help="sounds asked per bank")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated bank names (default: all)")
    p.add_argument("--out", type=Path, help="JSON lines, appended; banks already there are skipped")
    args = p.parse_args(argv)
    banks = sorted(d for d in args.banks.iterdir() if d.is_dir())
    if args.only:
        want = set(args.only.split(","))
        banks = [b for b in banks if b.name in want]
    done: list[dict] = []
    if args.out and args.out.exists():
        done = [json.loads(x) for x in args.out.read_text().splitlines() if x.strip()]
        done = [r for r in done if not r.get("summary")]
    have = {r["bank"] for r in done}
    todo = [b for b in banks if b.name not in have]
    args.cache.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {
            pool.submit(run_bank, str(b), str(args.cache), args.seconds, args.samples, args.seed): b
            for b in todo
        }
        for fut in as_completed(futs):
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - one bad bank must not end the run
                row = {"bank": futs[fut].name, "error": f"{type(exc).__name__}: {exc}"}
            line = json.dumps(row, default=float)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")
            if "error" not in row:
                done.append(row)
    print(json.dumps(summary([r for r in done if "error" not in r and "on" in r])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
