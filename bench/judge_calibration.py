"""How often does the judge's gate fail real held-out material, and catch fakes?

For each bank: N random 60/20/20 splits into training T, held-out H and a second real set R.
R (real, should pass), copies of T, white noise and a collapsed set (3 training items + noise
at the 8-bit level) are judged with miragen.judge.metrics.evaluate. Prints JSON: per bank and
in total, the share of each set that fails, and how often each check fires.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from miragen.judge.metrics import Thresholds, evaluate
from miragen.judge.sets import load_waves

SHARED = Path(os.environ.get("MIRAGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
BANKS = "squ,ebass,fmsynth,oscchip,linear,distorted,blended,overtone,aguitar,granular,snippet,hdrawn,saw,gapsaw"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--banks", default=BANKS, help="pcm8 banks (comma-separated)")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--oneshots", action="store_true", help="also the sonic-pi one-shots")
    ap.add_argument("--z", type=float, default=Thresholds().z, help="noise allowance of every check, in standard errors")
    args = ap.parse_args()
    sets = [(b, "cycle", SHARED / "pcm8" / b) for b in args.banks.split(",") if b]
    if args.oneshots:
        sets.append(("sonic-pi", "oneshot", SHARED / "oneshots" / "sonic-pi"))
    t0 = time.time()
    result: dict = {"splits": args.splits, "z": args.z, "banks": {}}
    total = {k: collections.Counter() for k in ("real", "copies", "noise", "collapse")}
    for name, kind, folder in sets:
        waves, _ = load_waves(folder, kind)
        per = {k: collections.Counter() for k in total}
        for s in range(args.splits):
            rng = np.random.default_rng(100 + s)
            idx = rng.permutation(len(waves))
            a, b = int(0.6 * len(waves)), int(0.8 * len(waves))
            T, H, R = ([waves[i] for i in idx[x:y]] for x, y in ((0, a), (a, b), (b, None)))
            length = 256 if kind == "cycle" else 8000
            fakes = {
                "real": R,
                "copies": [T[i] for i in rng.choice(len(T), len(R), replace=False)],
                "noise": [rng.uniform(-1, 1, length) for _ in R],
                "collapse": [T[i % 3] + rng.normal(0, 0.003, len(T[i % 3])) for i in range(len(R))],
            }
            for k, g in fakes.items():
                rep = evaluate(g, T, H, kind, seed=s, thresholds=Thresholds(z=args.z))
                per[k]["sets"] += 1
                per[k]["failed"] += int(not rep.passed)
                per[k].update(rep.failed)
        result["banks"][name] = {"n": len(waves), **{k: dict(v) for k, v in per.items()}}
        for k, counter in total.items():
            counter.update(per[k])
    result["total"] = {k: dict(v) for k, v in total.items()}
    result["fail_rate"] = {k: round(v["failed"] / max(v["sets"], 1), 3) for k, v in total.items()}
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
