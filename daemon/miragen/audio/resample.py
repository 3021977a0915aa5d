"""Sample-rate conversion with a real anti-aliasing filter.

Polyphase FIR resampling (``scipy.signal.resample_poly``). The rate ratio is approximated by a
fraction with a denominator of at most :data:`MAX_DENOMINATOR` (the pitch error this causes is
below 0.01 cent for every ratio met in practice, far below what anyone hears), and the
low-pass filter is a Kaiser-windowed sinc (β = 8, 20 zero crossings per side of the slower
rate) with its cutoff at :data:`CUTOFF` × the lower Nyquist frequency, so content above the
new Nyquist frequency is attenuated by more than 60 dB instead of folding back as aliases.
Filters are designed once per ratio and cached.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

MAX_DENOMINATOR = 1000
CUTOFF = 0.95  # of the lower of the two Nyquist frequencies
KAISER_BETA = 8.0
HALF_LEN_ZEROS = 20  # filter half-length, in zero crossings of the slower rate


def ratio(src_rate: int, dst_rate: int) -> tuple[int, int]:
    """(up, down): the small integer ratio used to go from ``src_rate`` to ``dst_rate``."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive (got {src_rate} → {dst_rate})")
    f = Fraction(int(dst_rate), int(src_rate)).limit_denominator(MAX_DENOMINATOR)
    if f.numerator == 0:  # an extreme down-conversion: keep at least one output sample per input
        f = Fraction(1, MAX_DENOMINATOR)
    return f.numerator, f.denominator


@lru_cache(maxsize=64)
def _design(up: int, down: int) -> np.ndarray:
    from scipy.signal import firwin

    max_rate = max(up, down)
    half_len = HALF_LEN_ZEROS * max_rate
    h = firwin(2 * half_len + 1, CUTOFF / max_rate, window=("kaiser", KAISER_BETA))
    h.setflags(write=False)
    return h


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample the 1-D signal ``x`` from ``src_rate`` to ``dst_rate`` Hz; returns float32.

    The output has ``ceil(len(x) * up / down)`` samples (about ``len(x) * dst/src``), aligned
    with the input (the filter's delay is compensated).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal (got shape {x.shape})")
    up, down = ratio(src_rate, dst_rate)
    if up == down or len(x) == 0:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    h = _design(up, down)
    y = resample_poly(x, up, down, window=np.array(h))
    return y.astype(np.float32)
