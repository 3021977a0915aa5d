"""How a split's composition moved the judge's novelty rule, with no generator at all.

It measures the rule as it was until 2026-11-30 (the judge now divides by T's own spacing,
which a split cannot move; docs/judge.md, "Novelty and a split's composition"). That rule
compared the median nearest-neighbour distance of the generated set to the training set T
with the held-out set H's. When a split puts the sparse families of a bank into
H (vgamebasic: six of its 13 held-out cycles are sines, whose neighbours lie far apart), H's
distances are large, and a generator that draws like T cannot reach 0.8 × H's median. This
script measures that for every bank of a folder, on the same 80/20 split as
``bench/quality.py`` (seed 0):

- ``global``: T's own leave-one-out median NN distance ÷ H's median distance to T: the novelty a
  set of sounds distributed exactly like T (T itself, each judged against the rest) would get;
  below 0.8 the rule fails such a set before any allowance;
- ``local_t`` / ``local_h``: the same distances each divided by the leave-one-out NN distance
  of the nearest T sound (the local spacing, as in the "authenticity" of Alaa et al. 2022,
  floored at 5 % of T's median spacing for exact duplicates), medians; their ratio
  ``local`` is the composition-neutral counterpart of ``global``.

Usage::

    .venv/bin/python bench/novelty_composition.py --folder ../shared/data/akwf \\
        > bench/results/novelty-composition-akwf.jsonl

One JSON line per judged bank (at least 4 held-out sounds), then a summary line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from miragen.corpus.dataset import load_dataset
from miragen.judge.features import features
from miragen.judge.metrics import MIN_SET, pairwise


def bank_figures(folder: Path, seed: int) -> dict | None:
    """The composition figures of one bank, or None when it is too small to judge."""
    ds = load_dataset(folder, "cycle")
    train, held = ds.split(0.8, seed=seed)
    c = train.class_names[0]
    if len(held.classes[c]) < MIN_SET:
        return None
    t = features(train.classes[c], "cycle")
    h = features(held.classes[c], "cycle")
    d_tt = pairwise(t, t)  # the judge's own distances
    np.fill_diagonal(d_tt, np.inf)
    loo = d_tt.min(axis=1)
    spacing = np.maximum(loo, 0.05 * float(np.median(loo)))
    d_ht = pairwise(h, t)
    ht = d_ht.min(axis=1)
    local_t = float(np.median(loo / spacing[d_tt.argmin(axis=1)]))
    local_h = float(np.median(ht / spacing[d_ht.argmin(axis=1)]))
    return {
        "bank": folder.name,
        "train": len(t),
        "held": len(h),
        "global": float(np.median(loo) / np.median(ht)),
        "local_t": local_t,
        "local_h": local_h,
        "local": local_t / local_h,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", type=Path, required=True, help="a folder of bank folders")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    p.add_argument("--limit", type=float, default=0.8, help="the novelty rule's bare limit")
    args = p.parse_args(argv)
    rows = []
    for bank in sorted(d for d in args.folder.iterdir() if d.is_dir()):
        row = bank_figures(bank, args.seed)
        if row is not None:
            rows.append(row)
            print(json.dumps(row, sort_keys=True), flush=True)
    below = lambda k: sorted(r["bank"] for r in rows if r[k] < args.limit)  # noqa: E731
    print(
        json.dumps(
            {
                "summary": True,
                "banks": len(rows),
                "limit": args.limit,
                "global_below_limit": below("global"),
                "local_below_limit": below("local"),
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
