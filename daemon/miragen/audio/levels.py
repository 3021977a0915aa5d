"""Stepped cycles: how coarse a cycle's levels are, and holding a short stepped cycle's samples.

A cycle's **grid** is its values on its own 8-bit scale (DC removed, peak at ±127, rounded): an
8-bit file's own bytes, whatever its loudness. Its **depth** is the number of points of the
uniform grid its levels sit on: each gap between neighbouring levels counted in units of the
narrowest one, plus one. A pulse has depth 2; a 32-step 4-bit wave table of the 8-bit consoles
(NES triangle, Game Boy wave RAM, Namco WSG) 16, even where it uses only 12 of its levels; a
smooth cycle, or a band-limited pulse whose flat tops ripple by a code or two, about 255. A cycle
of depth 2 to :data:`STEPPED_DEPTH` (5 bits or less) is **stepped**.

A console plays its wave table through a DAC that holds each value until the next: the steps are
the sound. So a stepped cycle of n points made longer by a whole factor (32 points to 256) is
**held** (each value repeated), not interpolated; band-limited resampling would turn its steps
into ripples, and a model trained on that, or a Mirage page written from it, would never step.
Every other change of a cycle's length stays band-limited (:func:`hold`).
"""

from __future__ import annotations

import math

import numpy as np

STEPPED_DEPTH = 32  # a depth of at most this many grid points: stepped


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


def depth(x: np.ndarray) -> int:
    """The points of the uniform grid the cycle's levels sit on (0: silent or constant)."""
    gaps = np.diff(np.unique(grid(x)))
    if not len(gaps):
        return 0
    # each gap is a whole number of grid steps, the narrowest one step (8-bit rounding moves a
    # level by half a code at most, so a gap of k steps is k × the narrowest, give or take)
    return int(min(255, np.sum(np.maximum(1, np.rint(gaps / gaps.min()))) + 1))


def is_stepped(x: np.ndarray) -> bool:
    return 2 <= depth(x) <= STEPPED_DEPTH


def hold(x: np.ndarray, length: int) -> np.ndarray | None:
    """A stepped cycle ``x`` stretched to ``length`` points by holding each value, when
    ``length`` is a whole multiple of its own; None when it is not stepped or not a multiple
    (resample it band-limited then)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = len(x)
    if n == 0 or length <= n or length % n or not is_stepped(x):
        return None
    return np.repeat(x, length // n)
