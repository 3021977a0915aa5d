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
a hundred levels and more travel, whatever its spectrum. One JSON line per folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

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
    rows = [describe(np.fromfile(f, np.uint8)) for f in files]
    med = {k: round(float(np.median([r[k] for r in rows])), 3) for k in rows[0]}
    return {"folder": str(path), "cycles": len(rows), **med}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit(__doc__.split("\n\n")[1])
    for p in args:
        print(json.dumps(folder(Path(p))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
