"""How often does the judge's gate fail real held-out material, and catch fakes?

For each bank: N random 60/20/20 splits into training T, held-out H and a second real set R.
R (real, should pass), copies of T, white noise, a collapsed set (3 training items + noise
at the 8-bit level) and, for cycles, R with its harmonics' phases drawn at random (the same
magnitudes, another shape: a model that learnt only the spectrum) are judged with
miragen.judge.metrics.evaluate. Prints JSON: per bank and in total, the share of each set that
fails, and how often each check fires.

``--sizes 8,14,20,30`` (issue 20) instead judges at fixed held-out sizes s: H and R of s sounds
each, T the rest of the bank, and besides R a half-collapsed set (a random half of R, each twice,
with 8-bit noise: a model that covers half of the class) and the collapsed one. Each is counted as
pass, fail or inconclusive per size. The bar: real sets fail no more often than at 60/20/20, and
no half-collapsed set passes (it is failed or called inconclusive) at any size.

``--whole`` judges at the generator's size instead (the checks ``clusters`` and ``repeats``,
judge/whole.py): on the banks of at least 90 sounds and both one-shot sets, H is 15 sounds, T half
of the bank and R the rest (35-98 sounds), standing in for a generator's draw. Besides R: R
restricted to k-means bins of T that hold half of T (``regional``: a model that misses whole kinds
of sounds, each of its sounds distinct) and a random half of R, each twice, with 8-bit noise
(``repeated``). The bar: real sets fail no more often than at 60/20/20, and no regional or
repeated set passes. ``--t-size N`` makes T N sounds (R the rest of the bank, up to 211): the
case of a small bank and a generator that draws many more sounds than it was trained on, where
the ``repeats`` reference (T's own share at |T|) has to stand for a larger set.
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

SHARED = Path(
    os.environ.get("MIRAGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
BANKS = (
    "squ,ebass,fmsynth,oscchip,linear,distorted,blended,overtone,aguitar,"
    "granular,snippet,hdrawn,saw,gapsaw"
)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--banks", default=BANKS, help="pcm8 banks (comma-separated)")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--oneshots", action="store_true", help="also the sonic-pi one-shots")
    ap.add_argument(
        "--z",
        type=float,
        default=Thresholds().z,
        help="noise allowance of every check, in standard errors",
    )
    ap.add_argument("--sizes", default="", help="held-out sizes to judge at (e.g. 8,14,20,30)")
    ap.add_argument("--whole", action="store_true", help="judge at the generator's size")
    ap.add_argument(
        "--t-size", type=int, default=0, help="with --whole: T's size (default half the bank)"
    )
    args = ap.parse_args()
    if args.whole:
        return by_whole(args)
    if args.sizes:
        return by_size(args, [int(x) for x in args.sizes.split(",") if x])
    sets = [(b, "cycle", SHARED / "pcm8" / b) for b in args.banks.split(",") if b]
    if args.oneshots:
        sets.append(("sonic-pi", "oneshot", SHARED / "oneshots" / "sonic-pi"))
    t0 = time.time()
    result: dict = {"splits": args.splits, "z": args.z, "banks": {}}
    kinds = ("real", "copies", "noise", "collapse", "phase_scrambled")
    total = {k: collections.Counter() for k in kinds}
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
            if kind == "cycle":
                fakes["phase_scrambled"] = [phase_scrambled(w, rng) for w in R]
            for k, g in fakes.items():
                # the checks only (power_probes=0): how often they fail; inconclusive is no fail
                rep = evaluate(
                    g, T, H, kind, seed=s, thresholds=Thresholds(z=args.z), power_probes=0
                )
                per[k]["sets"] += 1
                per[k]["failed"] += int(rep.verdict == "fail")
                per[k].update(rep.failed)
        result["banks"][name] = {"n": len(waves), **{k: dict(v) for k, v in per.items()}}
        for k, counter in total.items():
            counter.update(per[k])
    result["total"] = {k: dict(v) for k, v in total.items()}
    result["fail_rate"] = {k: round(v["failed"] / max(v["sets"], 1), 3) for k, v in total.items()}
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


def phase_scrambled(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The cycle with the same harmonic magnitudes and random phases: right spectrum, other
    shape (what a model that learnt only the spectrum would make)."""
    spec = np.fft.rfft(np.asarray(w, dtype=np.float64))
    turn = np.exp(2j * np.pi * rng.uniform(size=len(spec)))
    turn[0] = 1.0
    if len(w) % 2 == 0:
        turn[-1] = 1.0  # the Nyquist bin stays real
    return np.fft.irfft(spec * turn, len(w))


def by_size(args, sizes: list[int]) -> int:
    t0 = time.time()
    banks = [b for b in args.banks.split(",") if b]
    out: dict = {"splits": args.splits, "z": args.z, "sizes": {}}
    for size in sizes:
        tally = {k: collections.Counter() for k in ("real", "half_collapsed", "collapse")}
        for bank in banks:
            waves, _ = load_waves(SHARED / "pcm8" / bank, "cycle")
            if len(waves) < 2 * size + 10:
                tally["real"]["banks_too_small"] += 1
                continue
            for s in range(args.splits):
                rng = np.random.default_rng(1000 * size + s)
                idx = rng.permutation(len(waves))
                H = [waves[i] for i in idx[:size]]
                R = [waves[i] for i in idx[size : 2 * size]]
                T = [waves[i] for i in idx[2 * size :]]
                half = [R[i] for i in rng.choice(size, (size + 1) // 2, replace=False)]
                fakes = {
                    "real": R,
                    "half_collapsed": [
                        half[i % len(half)] + rng.normal(0, 0.003, 256) for i in range(size)
                    ],
                    "collapse": [T[i % 3] + rng.normal(0, 0.003, 256) for i in range(size)],
                }
                for k, g in fakes.items():
                    rep = evaluate(g, T, H, "cycle", seed=s, thresholds=Thresholds(z=args.z))
                    tally[k]["sets"] += 1
                    tally[k][rep.verdict] += 1
                    if rep.power:  # every check passed: how many of the power probes passed too
                        tally[k][f"probes_passed_{rep.power['passed_probes']}"] += 1
                    if (
                        k == "real"
                        and rep.verdict == "inconclusive"
                        and rep.power.get("held_needed")
                    ):
                        tally[k]["needed_sum"] += rep.power["held_needed"]
        row = {k: dict(v) for k, v in tally.items()}
        for k, v in tally.items():
            n = max(v["sets"], 1)
            row[k]["rates"] = {x: round(v[x] / n, 3) for x in ("pass", "fail", "inconclusive")}
        out["sizes"][str(size)] = row
        print(json.dumps({"size": size, **row}), file=sys.stderr, flush=True)
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=1))
    return 0


WHOLE_MIN = 90  # banks of at least this many sounds have room for T, H and a large R


def whole_sets() -> list[tuple[str, str, Path]]:
    """The banks of :data:`WHOLE_MIN` sounds or more, and both one-shot sets."""
    out = []
    for d in sorted((SHARED / "akwf").iterdir()):
        if d.is_dir() and sum(1 for _ in d.glob("*.wav")) >= WHOLE_MIN:
            out.append((d.name, "cycle", d))
    for name in ("sonic-pi", "avl-drumkits"):
        out.append((name, "oneshot", SHARED / "oneshots" / name))
    return out


def whole_fakes(T, R, kind: str, seed: int, rng: np.random.Generator) -> dict[str, list]:
    """R, R in bins of T that hold half of T (regional), and a random half of R each twice."""
    from miragen.judge.metrics import features, ndb_bins
    from miragen.judge.whole import half_of_t
    from sklearn.cluster import KMeans

    ft, fr = features(T, kind), features(R, kind)
    k = min(ndb_bins(ft), len(ft))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(ft)  # the judge's own bins
    p_t = np.bincount(km.labels_, minlength=k) / len(ft)
    lr = km.predict(fr)
    region = half_of_t(p_t, rng)
    half = rng.choice(len(R), (len(R) + 1) // 2, replace=False)
    return {
        "real": R,
        "regional": [R[i] for i in np.flatnonzero(np.isin(lr, region))],
        "repeated": [
            R[half[i % len(half)]] + rng.normal(0, 0.003, len(R[half[i % len(half)]]))
            for i in range(len(R))
        ],
    }


def by_whole(args) -> int:
    t0 = time.time()
    out: dict = {"splits": args.splits, "z": args.z, "t_size": args.t_size, "banks": {}}
    total = {k: collections.Counter() for k in ("real", "regional", "repeated")}
    for name, kind, folder in whole_sets():
        waves, _ = load_waves(folder, kind)
        per = {k: collections.Counter() for k in total}
        for s in range(args.splits):
            rng = np.random.default_rng(5000 + s)
            idx = rng.permutation(len(waves))
            a = args.t_size or len(waves) // 2
            T = [waves[i] for i in idx[:a]]
            H = [waves[i] for i in idx[a : a + 15]]
            R = [waves[i] for i in idx[a + 15 :]]
            for k, g in whole_fakes(T, R, kind, s, rng).items():
                if len(g) < 4:
                    per[k]["too_small"] += 1
                    continue
                rep = evaluate(g, T, H, kind, seed=s, thresholds=Thresholds(z=args.z))
                per[k]["sets"] += 1
                per[k][rep.verdict] += 1
                per[k].update(f"failed_{c}" for c in rep.failed)
                if rep.power.get("whole", {}).get("conclusive"):
                    per[k]["whole_conclusive"] += 1
        out["banks"][name] = {"n": len(waves), **{k: dict(v) for k, v in per.items()}}
        print(json.dumps({"bank": name, **out["banks"][name]}), file=sys.stderr, flush=True)
        for k, counter in total.items():
            counter.update(per[k])
    out["total"] = {k: dict(v) for k, v in total.items()}
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
