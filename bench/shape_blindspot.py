"""How far a class's generated cycles lie from its training cycles, in the judge's features and
in a description of the cycle's *slopes* that the judge does not have.

    .venv/bin/python bench/shape_blindspot.py DIR [--samples 64] [--out FILE.json]

DIR is a studio state folder with trained cycle classes (``miragen demo --dir DIR`` makes one;
its ``miragen.toml`` says which classes hold one-shots, which are left out).
For each cycle class that has a model: the 80 / 20 split the daemon judged it on (seed 0), then
``--samples`` draws of its serving model. Each set is described twice:

- ``judge``: :func:`miragen.judge.features.features` (harmonic magnitudes and the sorted sample
  values: the judge's cycle features);
- ``slopes``: the sorted first differences of the cycle (circular, in units of their RMS) at 16
  quantiles. A pulse has two steep edges and flat tops; a smooth bump has no steep slope; a saw
  one drop and a constant ramp: rotation-invariant, like the judge's features, but sensitive to
  the shape that the harmonic magnitudes and the value distribution leave open.

For each description: the median distance of the held-out and of the generated cycles to their
nearest training cycle, in units of the training set's own median nearest-neighbour spacing
(``held`` and ``generated``), and the share of generated cycles farther than twice the 90th
percentile of the held-out distances (``far``). A class whose generated cycles are as near as the
held-out ones in the judge's features but far in the slopes is one the judge passes and the eye
does not. One JSON object per class, then the whole list to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from miragen import config as configmod
from miragen.corpus.dataset import load_dataset
from miragen.engines.base import load_model
from miragen.judge.features import features, to_cycle
from miragen.service.state import class_mode

SLOPE_POINTS = 16


def slope_features(waves) -> np.ndarray:
    """Sorted circular first differences of each cycle, in units of their RMS, at 16 quantiles."""
    out = []
    for w in waves:
        c = to_cycle(np.asarray(w, dtype=np.float64))
        d = np.diff(np.r_[c, c[:1]])
        d = np.sort(d / (np.sqrt(np.mean(d * d)) + 1e-12))
        out.append(d[((np.arange(SLOPE_POINTS) + 0.5) * len(d) / SLOPE_POINTS).astype(int)])
    return np.array(out)


def nearest(a: np.ndarray, b: np.ndarray, same: bool = False) -> np.ndarray:
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    if same:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def distances(train, held, gen, describe) -> dict:
    ft, fh, fg = describe(train), describe(held), describe(gen)
    spacing = float(np.median(nearest(ft, ft, same=True)))
    dh, dg = nearest(fh, ft), nearest(fg, ft)
    return {
        "held": round(float(np.median(dh)) / spacing, 3),
        "generated": round(float(np.median(dg)) / spacing, 3),
        "far": round(float(np.mean(dg > 2 * np.percentile(dh, 90))), 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("state", help="a studio state folder (corpus/ and models/)")
    p.add_argument("--samples", type=int, default=64, help="draws of each model")
    p.add_argument("--out", help="write the list of classes as JSON here")
    p.add_argument("--config", help="the studio's configuration (default: DIR/miragen.toml)")
    args = p.parse_args(argv)
    root = Path(args.state)
    own = root / "miragen.toml"  # which classes hold one-shots (left out here)
    cfg = configmod.load(args.config or (own if own.is_file() else None))
    rows = []
    for model_dir in sorted((root / "models").glob("*/v[0-9][0-9][0-9][0-9]")):
        cls = model_dir.parent.name
        if class_mode(cfg, cls) != "cycle" or not (model_dir / "model.json").is_file():
            continue
        ds = load_dataset(root / "corpus", "cycle", only_class=cls)
        train, held = ds.split(0.8, seed=0)
        if len(held) < 4:
            continue
        gen = load_model(model_dir).sample(args.samples, cls, seed=0)
        t, h = train.classes[cls], held.classes[cls]
        row = {
            "class": cls,
            "model": str(model_dir.relative_to(root)),
            "judge": distances(t, h, gen, lambda w: features(list(w), "cycle")),
            "slopes": distances(t, h, gen, slope_features),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
