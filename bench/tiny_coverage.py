"""Could a coverage check give the judge power on banks of 5-12 training sounds?

Banks of 9-16 sounds are judged at 4 held-out sounds and trained on 5-12; there the judge's
power probes (a draw confined to k-means bins holding half of T) slip through, so a model that
passes every check is *inconclusive* whatever it draws (docs/judge.md). This measures the
candidate that needs neither H nor T's bin proportions: **coverage of T at G's size** (Naeem et
al. 2020), the share of T's sounds whose k-NN ball among T (k = 1, 2, 3) holds at least one sound
of the set. A check is worth having only if real sets score clearly above half-collapsed ones.

    .venv/bin/python bench/tiny_coverage.py --folder ../shared/data/akwf --t-sizes 5,8,12,20 \
        [--kept DIR --tiny BANK,...] > bench/results/tiny-coverage.json

Real sets: on each bank of at least 90 sounds, 5 random splits into T of N sounds and R = the
rest (up to 128, standing in for G); probes: R restricted to bins that hold half of T, 3 per
split (bins as the judge makes them: k-means on T, round(√|T|) clipped to 2..20). With
``--kept``, the models a ``bench/quality.py --keep`` run saved for the ``--tiny`` banks are drawn
(128 sounds, seed 0, the judge's own split) and scored the same way, with 10 probes from their
draws. JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KS = (1, 2, 3)


def coverage(T: np.ndarray, S: np.ndarray, k: int) -> float:
    """Share of T's sounds whose k-NN ball among T (the judge's radii) holds a sound of S."""
    from miragen.judge.metrics import knn_radii, pairwise

    return float(np.mean((pairwise(T, S) <= knn_radii(T, k)[:, None]).any(axis=1)))


def regional(T: np.ndarray, S: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Up to ``n`` probes: S restricted to bins of T that hold half of T (the judge's probe)."""
    from miragen.judge.metrics import ndb_bins, pairwise
    from miragen.judge.whole import MIN_PROBE, half_of_t
    from sklearn.cluster import KMeans

    bins = ndb_bins(T)
    km = KMeans(n_clusters=bins, n_init=10, random_state=0).fit(T)
    p_t = np.bincount(km.labels_, minlength=bins) / len(T)
    lab = pairwise(S, km.cluster_centers_).argmin(axis=1)
    out = []
    for _ in range(n):
        inside = np.isin(lab, half_of_t(p_t, rng))
        if inside.sum() >= MIN_PROBE:
            out.append(S[inside])
    return out


def spread(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "n": int(len(a)),
        "min": round(float(a.min()), 3),
        "p5": round(float(np.quantile(a, 0.05)), 3),
        "median": round(float(np.median(a)), 3),
        "p95": round(float(np.quantile(a, 0.95)), 3),
        "max": round(float(a.max()), 3),
    }


def real_sets(folder: Path, n: int, rng: np.random.Generator) -> dict:
    from miragen.corpus.dataset import load_dataset
    from miragen.judge.features import features

    real: dict[int, list[float]] = {k: [] for k in KS}
    probe: dict[int, list[float]] = {k: [] for k in KS}
    banks = []
    for bank in sorted(p for p in folder.iterdir() if p.is_dir()):
        ds = load_dataset(bank, "cycle")
        waves = ds.classes[ds.class_names[0]]
        if len(waves) < 90:
            continue
        banks.append(bank.name)
        F = features(waves, "cycle")
        for split in range(5):
            idx = np.random.default_rng(split).permutation(len(F))
            T, R = F[idx[:n]], F[idx[n:]][:128]
            probes = regional(T, R, rng, 3)
            for k in KS:
                real[k].append(coverage(T, R, k))
                probe[k] += [coverage(T, P, k) for P in probes]
    return {
        "t_size": n,
        "banks": banks,
        "by_k": {k: {"real": spread(real[k]), "regional": spread(probe[k])} for k in KS},
    }


def kept_models(folder: Path, kept: Path, banks: list[str], rng: np.random.Generator) -> list:
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.base import load_model
    from miragen.judge.features import features
    from quality import judged_split

    rows = []
    for name in banks:
        model_dir = next((p for p in kept.glob(f"*/{name}/wavegan") if p.is_dir()), None)
        if model_dir is None:
            rows.append({"bank": name, "error": f"no kept model under {kept}"})
            continue
        train, _ = judged_split(load_dataset(folder / name, "cycle"), 0)
        cls = train.class_names[0]
        T = features(train.classes[cls], "cycle")
        G = features(load_model(model_dir).sample(128, cls, seed=0), "cycle")
        probes = regional(T, G, rng, 10)
        row = {"bank": name, "t_size": len(T), "model": str(model_dir)}
        for k in KS:
            row[f"g_k{k}"] = round(coverage(T, G, k), 3)
            row[f"regional_k{k}"] = sorted(round(coverage(T, P, k), 2) for P in probes)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folder", type=Path, required=True, help="a folder of banks (AKWF)")
    p.add_argument("--t-sizes", default="5,8,12,20", help="sizes of T for the real sets")
    p.add_argument("--kept", type=Path, help="a folder whose */BANK/wavegan holds kept models")
    p.add_argument("--tiny", default="", help="comma-separated banks whose kept models to score")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    out = {"real": [real_sets(args.folder, int(n), rng) for n in args.t_sizes.split(",")]}
    if args.kept and args.tiny:
        out["kept"] = kept_models(args.folder, args.kept, args.tiny.split(","), rng)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
