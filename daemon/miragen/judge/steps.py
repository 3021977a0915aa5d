"""Stepped cycles: console waves, pulses, bit-crushed tables, and the judge's ``stepped`` check.

The judge reads a cycle at 256 points (``features.to_cycle``: a 600-point file is resampled, a
256-point one read as it is, a short stepped one held), as its features do and as the engine
trains on it, and asks of it what audio/levels.py measures: its **depth**, the points of the
uniform grid its levels sit on (a pulse 2, a 4-bit wave table 16, a smooth cycle about 255). A
cycle of depth 2 to ``audio.levels.STEPPED_DEPTH`` (5 bits or less) is **stepped**.

The judge's features read a cycle through its first 48 harmonics and the quantiles of its values
and band-limited slopes; none of them tells 12 hard levels from the same curve smoothed with a
little hiss. So the ``stepped`` check asks that generated cycles be stepped as often as the
training ones, less :data:`STEPS_MARGIN` and the binomial sampling allowance at G's size. It
applies wherever it can fail: where a G with no stepped cycle at all would fall below that limit
(:func:`applies`). That is a class at least 18 % stepped at 64 draws (14 % at 256): a console
bank, or a mixed folder with console waves in it. A class with no stepped cycle, or too few for
G's size to tell, gets no check, so it changes no verdict on a smooth class. Read at 256 points,
no cycle of the shared banks is stepped (docs/judge.md).

The wavegan engine quantises each draw whose nearest training cycle is stepped to that cycle's
depth (engines/wavegan/depth.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..audio.levels import is_stepped

STEPS_MARGIN = 0.1  # G's stepped share ≥ T's − this − the sampling allowance


def stepped_share(waves: Sequence[np.ndarray]) -> float:
    return float(np.mean([is_stepped(w) for w in waves])) if len(waves) else 0.0


def steps_limit(train_share: float, n_gen: int, z: float) -> tuple[float, float]:
    """(the lowest stepped share of G that passes, the sampling allowance in it): T's share
    less :data:`STEPS_MARGIN` and ``z`` binomial standard errors of a share of ``n_gen`` drawn
    like T."""
    p = min(max(train_share, 0.0), 1.0)
    allowance = z * math.sqrt(p * (1 - p) / max(n_gen, 1))
    return p - STEPS_MARGIN - allowance, allowance


def applies(train_share: float, n_gen: int, z: float) -> bool:
    """Whether the check can fail: a G of ``n_gen`` cycles with none stepped would fall below
    its limit (so a class with no stepped cycle, or a stepped share too small for G's size to
    tell, gets no check)."""
    return steps_limit(train_share, n_gen, z)[0] > 1e-12
