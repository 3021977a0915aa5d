"""Stepped cycles: console waves, pulses, bit-crushed tables, and the judge's ``stepped`` check.

The judge reads a cycle at 256 points (``features.to_cycle``: a 600-point file is resampled, a
256-point one read as it is), as its features do and as the engine trains on it. A cycle's
**grid** is its values on its own 8-bit scale (DC removed, peak at ±127, rounded): an
8-bit file's own bytes, whatever its loudness. Its **depth** is the number of points of the
uniform grid its levels sit on: each gap between neighbouring levels counted in units of the
narrowest one, plus one. A pulse has depth 2; a 32-step 4-bit wave table of the 8-bit consoles
(NES triangle, Game Boy wave RAM, Namco WSG) 16, even where it uses only 12 of its levels; a
smooth cycle, or a band-limited pulse whose flat tops ripple by a code or two, about 255. A cycle
of depth 2 to :data:`STEPPED_DEPTH` (5 bits or less) is **stepped**.

The judge's features read a cycle through its first 48 harmonics and the quantiles of its values
and band-limited slopes; none of them tells 12 hard levels from the same curve smoothed with a
little hiss. Where the steps are what a class is about (at least :data:`STEPPED_CLASS` of its
training cycles stepped), the ``stepped`` check asks that generated cycles be stepped as often as
the training ones, less :data:`STEPS_MARGIN` and the binomial sampling allowance at G's size.
Elsewhere it does not apply, so it changes no verdict on a smooth class. None of the shared
AKWF banks is a stepped class (the most stepped, AKWF_c604, has 0.34; docs/judge.md).

The wavegan engine quantises a stepped class's draws to the depth of their nearest stepped
training cycle (engines/wavegan/depth.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STEPPED_DEPTH = 32  # a depth of at most this many grid points: stepped
STEPPED_CLASS = 0.5  # a class is stepped when at least this share of its cycles is
STEPS_MARGIN = 0.1  # G's stepped share ≥ T's − this − the sampling allowance


def grid(x: np.ndarray) -> np.ndarray:
    """The cycle on its own 8-bit grid: DC removed, peak ±127, rounded (zeros when silent)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) == 0:
        return np.zeros(0)
    x = x - x.mean()
    peak = float(np.max(np.abs(x)))
    if peak <= 1e-12 or not math.isfinite(peak):
        return np.zeros(len(x))
    return np.rint(x * (127.0 / peak))


def is_stepped(x: np.ndarray) -> bool:
    return 2 <= depth(x) <= STEPPED_DEPTH


def stepped_share(waves: Sequence[np.ndarray]) -> float:
    return float(np.mean([is_stepped(w) for w in waves])) if len(waves) else 0.0


def is_stepped_class(waves: Sequence[np.ndarray]) -> bool:
    return len(waves) > 0 and stepped_share(waves) >= STEPPED_CLASS


def depth(x: np.ndarray) -> int:
    """The points of the uniform grid the cycle's levels sit on (0: silent or constant)."""
    gaps = np.diff(np.unique(grid(x)))
    if not len(gaps):
        return 0
    # each gap is a whole number of grid steps, the narrowest one step (8-bit rounding moves a
    # level by half a code at most, so a gap of k steps is k × the narrowest, give or take)
    return int(min(255, np.sum(np.maximum(1, np.rint(gaps / gaps.min()))) + 1))


def steps_limit(train_share: float, n_gen: int, z: float) -> tuple[float, float]:
    """(the lowest stepped share of G that passes, the sampling allowance in it): T's share
    less :data:`STEPS_MARGIN` and ``z`` binomial standard errors of a share of ``n_gen`` drawn
    like T."""
    p = min(max(train_share, 0.0), 1.0)
    allowance = z * math.sqrt(p * (1 - p) / max(n_gen, 1))
    return p - STEPS_MARGIN - allowance, allowance
