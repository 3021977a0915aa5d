"""How far a class's generated cycles lie from its training cycles, in the judge's features as a
whole and in each of their three parts: which part of a cycle's sound a model gets wrong.

    .venv/bin/python bench/shape_blindspot.py DIR [--samples 64] [--out FILE.json]

DIR is a studio state folder with trained cycle classes (``miragen demo --dir DIR`` makes one;
its ``miragen.toml`` says which classes hold one-shots, which are left out).
For each cycle class that has a model: the 80 / 20 split the daemon judged it on (seed 0), then
``--samples`` draws of its serving model. Each set is described four times:

- ``judge``: :func:`miragen.judge.features.features`, the whole cycle vector;
- ``spectrum``: its harmonic magnitudes (dB re the RMS);
- ``values``: its distribution of sample values (16 quantiles);
- ``slopes``: its distribution of slopes (the band-limited derivative, 16 quantiles). A pulse
  has two steep edges and flat tops; a smooth bump has no steep slope; a saw one drop and a
  constant ramp.

The slopes joined the judge in issue 16 after this bench showed, with the judge's features of
the time (spectrum and values), the demo's generated fm and additive cycles as near their
training cycles as held-out ones while 64-100 % lay far off in the slopes (docs/demo.md).

For each description: the median distance of the held-out and of the generated cycles to their
nearest training cycle, in units of the training set's own median nearest-neighbour spacing
(``held`` and ``generated``), and the share of generated cycles farther than twice the 90th
percentile of the held-out distances (``far``). A class whose generated cycles are as near as the
held-out ones in one part but far in another is one whose whole-vector verdict hides a flaw
that the far part names. One JSON object per class, then the whole list to ``--out``.
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
from miragen.judge.features import CYCLE_HARMONICS, CYCLE_SHAPE_POINTS, features
from miragen.service.state import class_mode

PARTS = {
    "judge": slice(None),
    "spectrum": slice(0, CYCLE_HARMONICS),
    "values": slice(CYCLE_HARMONICS, CYCLE_HARMONICS + CYCLE_SHAPE_POINTS),
    "slopes": slice(CYCLE_HARMONICS + CYCLE_SHAPE_POINTS, None),
}


def nearest(a: np.ndarray, b: np.ndarray, same: bool = False) -> np.ndarray:
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    if same:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def distances(ft: np.ndarray, fh: np.ndarray, fg: np.ndarray) -> dict:
    """Held-out and generated against training, in one description (features of each set)."""
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
        # the judge's features of each set, once; each description is a slice of them
        ft, fh, fg = (
            features(list(w), "cycle") for w in (train.classes[cls], held.classes[cls], gen)
        )
        row = {
            "class": cls,
            "model": str(model_dir.relative_to(root)),
            **{name: distances(ft[:, w], fh[:, w], fg[:, w]) for name, w in PARTS.items()},
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
