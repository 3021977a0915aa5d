"""How stepped a folder of 8-bit cycles is: what the judge does not see on console waves.

    .venv/bin/python bench/steps.py FOLDER [FOLDER ...]

For each folder (its ``.pcm`` files, searched recursively, each read as 8-bit unsigned, the
first 256 bytes of a generated page): the median over its cycles of

- ``plateau``: the share of steps (the cycle taken as a loop) where the value does not change;
- ``levels``: the number of distinct 8-bit values;
- ``travel``: the sum of the absolute steps over the cycle's range (2 for a pulse or a ramp,
  more for a cycle that wiggles, hiss included).

A console wave (4-bit wave tables, pulses, stepped triangles) has most of its steps flat and a
dozen levels; a model that blurs it into a smooth, slightly noisy curve has few flat steps,
a hundred levels and more travel, whatever its spectrum. One JSON line per folder, with
``stepped``: the share of cycles the judge counts as stepped (judge/steps.py).

    .venv/bin/python bench/steps.py --calibrate BANK [BANK ...]

The judge's ``stepped`` check on real sounds: for each bank with stepped cycles, ``--splits``
random 80/20 splits (the bench's), and how often the held-out 20 % fails the check against the
80 %, at its own size, and how often 64 sounds drawn from the whole bank fail it (what
``evaluate`` sees from a generator that draws stepped cycles as often as the bank has them),
each counted on the splits where the check applies at that size (``steps.applies``). A bank
with no stepped cycle gets ``"checked": false``. Any sound files ``miragen evaluate`` reads
(``judge.sets.load_waves``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from miragen.audio.levels import is_stepped
from miragen.judge import steps
from miragen.judge.sets import load_waves

N = 256


def describe(u8: np.ndarray) -> dict[str, float]:
    a = u8[:N].astype(int)
    d = np.diff(np.r_[a, a[:1]])
    span = int(a.max() - a.min())
    return {
        "plateau": float(np.mean(d == 0)),
        "levels": float(len(np.unique(a))),
        "travel": float(np.abs(d).sum() / span) if span else 0.0,
    }


def folder(path: Path) -> dict:
    files = sorted(path.rglob("*.pcm"))
    if not files:
        raise SystemExit(f"{path}: no .pcm files")
    cycles = [np.fromfile(f, np.uint8)[:N] for f in files]
    rows = [describe(u8) for u8 in cycles]
    med = {k: round(float(np.median([r[k] for r in rows])), 3) for k in rows[0]}
    share = steps.stepped_share([u8.astype(float) for u8 in cycles])
    return {"folder": str(path), "cycles": len(rows), **med, "stepped": round(share, 3)}


def calibrate(path: Path, splits: int, z: float = 1.645, gen: int = 64) -> dict:
    """How often a real held-out part fails the ``stepped`` check (see the module's help)."""
    waves, _ = load_waves(path, "cycle", recursive=True)  # at 256 points, as the judge reads
    st = np.array([is_stepped(w) for w in waves])
    row: dict = {
        "bank": path.name,
        "folder": str(path),
        "sounds": len(waves),
        "stepped": round(float(st.mean()), 3),
    }
    if not st.any():
        return {**row, "checked": False}
    rng = np.random.default_rng(0)
    judged = {"held_out": 0, f"as_{gen}": 0}
    fails = dict.fromkeys(judged, 0)
    for _ in range(splits):
        p = rng.permutation(len(waves))
        t, h = p[: int(0.8 * len(p))], p[int(0.8 * len(p)) :]
        share = st[t].mean()
        drawn = st[rng.choice(len(st), gen)]
        for key, part in (("held_out", st[h]), (f"as_{gen}", drawn)):
            if steps.applies(share, len(part), z):  # else no check on this split at that size
                judged[key] += 1
                fails[key] += bool(part.mean() < steps.steps_limit(share, len(part), z)[0] - 1e-12)
    return {
        **row,
        "checked": True,
        **{f"{k}_judged": v for k, v in judged.items()},
        **{f"{k}_fails": v for k, v in fails.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument(
        "--calibrate", action="store_true", help="the judge's stepped check on real splits"
    )
    ap.add_argument("--splits", type=int, default=1000)
    args = ap.parse_args(argv)
    for p in args.folders:
        row = calibrate(p, args.splits) if args.calibrate else folder(p)
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
