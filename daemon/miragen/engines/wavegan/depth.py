"""Hard steps where a class has them: each generated cycle quantised to its nearest training
cycle's depth.

A stepped cycle sits on a coarse grid of at most 32 levels (pulses, the 32-step 4-bit tables of
8-bit consoles, bit-crushed waves: audio/levels.py). The networks' upsampling convolutions make
smooth curves; trained on such cycles they draw their shapes but blur the steps into slopes
with a little hiss (measured: bench/steps.py, 0.90 flat steps and 12 levels in the bank against
0.13 and 130 in the draws).

The model of a class with any stepped training cycle (a console bank, or a mixed folder with a
few console waves in it) therefore keeps, for each training cycle, its judge features and its
depth (the points of the uniform grid its levels sit on; 0 when it is not stepped). A generated
cycle takes the depth of its nearest training cycle in the judge's feature space, is cleared of
its hiss by a circular median of :data:`MEDIAN_WIDTH` points (which keeps edges and any step or
pulse of 4 points or more, and removes what is narrower), and is quantised to that many equally
spaced levels between its own lowest and highest value: a draw near a pulse becomes a pulse,
one near a 4-bit table a 4-bit table, one near a smooth cycle of the class stays as drawn.

Measured on the synthesised game banks (bench/steps.py on 64 ungated draws; flat steps, levels,
travel over the range): bank 0.90 / 12 / 2.13; drawn as the networks make them 0.12 / 134 / 3.91;
quantised 0.76 / 16 / 3.71 (hiss crossing a level chatters); median 5, 7, 9 and quantised
0.85 / 2.58, 0.85 / 2.29, 0.87 / 2.29 (levels 16). Chosen on seed 0: 7, the narrowest that
removes the chatter; seed 2 confirms it (bank 0.90 / 13 / 2.19, median 7 0.87 / 16 / 2.29).

The postprocess keeps the levels (audio/mirage8.py quantises a cycle of a few levels without
dither).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...audio.levels import STEPPED_DEPTH, depth
from ...judge.features import cycle_features

MEDIAN_WIDTH = 7  # points of the circular median before quantising (module help)


def quantise(x: np.ndarray, points: int) -> np.ndarray:
    """``x`` on ``points`` equally spaced levels from its lowest to its highest value."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if points < 2 or hi - lo <= 1e-12:
        return x.astype(np.float32)
    q = np.rint((x - lo) / (hi - lo) * (points - 1))
    return (lo + q * (hi - lo) / (points - 1)).astype(np.float32)


@dataclass
class DepthTable:
    """One class with stepped cycles: the training cycles' judge features and depths (0:
    smooth)."""

    feats: np.ndarray  # (n, CYCLE_DIMS)
    depths: np.ndarray  # (n,) int

    @classmethod
    def of_class(cls, waves: Sequence[np.ndarray]) -> "DepthTable | None":
        """The table of a class's training cycles, or None when none of them is stepped."""
        d = np.array([depth(w) for w in waves], dtype=np.int64)
        d[(d < 2) | (d > STEPPED_DEPTH)] = 0  # not stepped
        if not np.any(d > 0):
            return None
        return cls(cycle_features(list(waves)), d)

    def head(self, n: int) -> "DepthTable | None":
        """The table of the first ``n`` cycles only, or None when none of them is stepped."""
        if not np.any(self.depths[:n] > 0):
            return None
        return DepthTable(self.feats[:n], self.depths[:n])

    def apply(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        from scipy.ndimage import median_filter

        if not len(waves):
            return []
        f = cycle_features(list(waves))
        d2 = ((f[:, None, :] - self.feats[None, :, :]) ** 2).sum(axis=2)
        near = self.depths[np.argmin(d2, axis=1)]
        return [
            quantise(median_filter(np.asarray(w, np.float64), MEDIAN_WIDTH, mode="wrap"), int(k))
            if k >= 2
            else np.asarray(w, dtype=np.float32)
            for w, k in zip(waves, near)
        ]

    def to_dict(self) -> dict:
        return {
            "feats": np.round(self.feats, 4).tolist(),
            "depths": [int(v) for v in self.depths],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DepthTable":
        feats = np.asarray(d["feats"], dtype=np.float64)
        depths = np.asarray(d["depths"], dtype=np.int64)
        if feats.ndim != 2 or len(feats) != len(depths) or not len(depths):
            raise ValueError("depth table: features and depths do not match")
        return cls(feats, depths)
