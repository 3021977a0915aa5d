"""The judge's features: fixed-size vectors in which Euclidean distance means "sounds different".

Single cycles: log magnitudes of the first :data:`CYCLE_HARMONICS` harmonics of the cycle,
resampled to 256 points. Magnitudes ignore phase, so a rotated (or inverted) cycle has the same
features; the spectrum is divided by its RMS so loudness does not count; magnitudes below
:data:`CYCLE_FLOOR_DB` (about the level of 8-bit TPDF-dithered quantisation noise in one
harmonic of a 256-point cycle) are clamped to it, so noise-level harmonics do not dominate.
Beside the spectrum, the cycle's **shape**: the distribution of its sample values (DC removed,
divided by the RMS, turned so that its skewness is positive), read at :data:`CYCLE_SHAPE_POINTS`
quantiles. Sorting the values forgets where in the cycle they sit, so a rotated cycle keeps its
shape, and so does an inverted one (polarity is inaudible); but a ramp and a pulse, whose
harmonic magnitudes can be close, have very different value distributions (a ramp's is flat, a
narrow pulse's is one value most of the time). Looped at a low note, that difference is heard.
Last, the distribution of the cycle's **slopes** (the derivative of harmonics 1 to
:data:`CYCLE_HARMONICS`, read the same way at :data:`CYCLE_SLOPE_POINTS` quantiles): which values
sit next to each other, which the value distribution forgets: a square's two steep edges and
flat tops against a soft square's spread slopes, or a pulse against a smooth bump.

One-shots: a log-mel spectrogram (:data:`MEL_BANDS` bands, 512-point Hann frames, hop 256 at
29,411 Hz) of the peak-normalised sound, each band floored at the energy 8-bit dithered noise
leaves in that band, then pooled from the onset into :data:`ONESHOT_SEGMENTS` log-spaced
time segments (1, 1, 2, 4, … frames: fine at the attack, coarse in the tail). A sound shorter
than the last segment is padded with the floor (silence), so length is part of the picture.

Every spectral feature is in dB and the vector is divided by √dimensions, so the Euclidean
distance between two features is the RMS difference in dB across all harmonics (or bands ×
segments). The shape part is scaled so that an RMS difference of 0.1 between two cycles' value
quantiles (in units of their RMS) counts as :data:`CYCLE_SHAPE_DB` / 10 dB, and the slope part
likewise with :data:`CYCLE_SLOPE_DB`; a cycle distance is √(spectral² + shape² + slopes²).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ..audio.levels import hold
from ..errors import MiragenError

CYCLE_LEN = 256
CYCLE_HARMONICS = 48
CYCLE_FLOOR_DB = -60.0  # re the cycle's RMS; 8-bit dithered noise is ≈ -66 dB per harmonic
CYCLE_SHAPE_POINTS = 16  # quantiles of the cycle's sample values (the shape part)
CYCLE_SHAPE_DB = 20.0  # dB that an RMS quantile difference of 1 (in RMS units) counts for
CYCLE_SLOPE_POINTS = 16  # quantiles of the cycle's slopes (the band-limited derivative)
CYCLE_SLOPE_DB = 20.0  # dB that an RMS slope-quantile difference of 1 counts for
CYCLE_DIMS = CYCLE_HARMONICS + CYCLE_SHAPE_POINTS + CYCLE_SLOPE_POINTS

ONESHOT_RATE = 29411
FRAME = 512
HOP = 256
MEL_BANDS = 32
MEL_FMIN = 30.0
# segment edges in frames from the onset: 1, 1, 2, 4, … frames (≈ 8.7 ms each at 29.4 kHz)
ONESHOT_EDGES = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)
ONESHOT_SEGMENTS = len(ONESHOT_EDGES) - 1
ONSET_FRACTION = 0.05  # onset: first sample reaching 5 % of the peak
# 8-bit quantisation noise on the [-1, 1] scale, with TPDF dither (3 × the bare variance),
# doubled again so that dithered 8-bit silence sits on the floor rather than above it.
EIGHT_BIT_NOISE_VAR = 2 * 3 * (2.0 / 256) ** 2 / 12

KINDS = ("cycle", "oneshot")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise MiragenError(f"kind must be 'cycle' or 'oneshot' (got {kind!r})")
    return kind


def to_cycle(x: np.ndarray, length: int = CYCLE_LEN) -> np.ndarray:
    """A single cycle of any length → ``length`` points (periodic, band-limited resampling; a
    short stepped cycle whose length divides ``length`` is held instead: audio/levels.py)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) == length or len(x) == 0:
        return x.copy()
    held = hold(x, length)
    if held is not None:
        return held
    spec = np.fft.rfft(x)
    half = length // 2 + 1
    out = np.zeros(half, dtype=complex)
    n = min(half, len(spec))
    out[:n] = spec[:n]
    if length % 2 == 0 and n == half:
        out[-1] = out[-1].real  # the Nyquist bin of the new length must be real
    return np.fft.irfft(out, length) * (length / len(x))


def shape_quantile_index(length: int, points: int = CYCLE_SHAPE_POINTS) -> np.ndarray:
    """Which of ``length`` sorted values are the ``points`` quantiles (mid-points of equal
    shares)."""
    return ((np.arange(points) + 0.5) * length / points).astype(int)


def sorted_quantiles(x: np.ndarray, points: int) -> np.ndarray:
    """A zero-mean signal's values in units of its RMS, turned so that the skewness is positive
    (polarity is inaudible), sorted, at ``points`` quantiles (zeros for a silent signal)."""
    rms = math.sqrt(float(np.mean(x * x)))
    if rms <= 1e-12:
        return np.zeros(points)
    x = x / rms
    if float(np.mean(x**3)) < 0:
        x = -x
    return np.sort(x)[shape_quantile_index(len(x), points)]


def cycle_shape(c: np.ndarray) -> np.ndarray:
    """The cycle's value distribution at :data:`CYCLE_SHAPE_POINTS` quantiles (DC removed)."""
    return sorted_quantiles(c - c.mean(), CYCLE_SHAPE_POINTS)


def cycle_slopes(c: np.ndarray) -> np.ndarray:
    """The distribution of the cycle's slopes at :data:`CYCLE_SLOPE_POINTS` quantiles: the
    derivative of its first :data:`CYCLE_HARMONICS` harmonics (so 8-bit noise above them does
    not count)."""
    spec = np.fft.rfft(c)
    k = np.arange(len(spec))
    spec = np.where((k >= 1) & (k <= CYCLE_HARMONICS), 1j * k * spec, 0)
    return sorted_quantiles(np.fft.irfft(spec, len(c)), CYCLE_SLOPE_POINTS)


def cycle_features(waves: Sequence[np.ndarray]) -> np.ndarray:
    feats = np.empty((len(waves), CYCLE_DIMS), dtype=np.float64)
    floor = 10 ** (CYCLE_FLOOR_DB / 20)
    for i, w in enumerate(waves):
        c = to_cycle(np.nan_to_num(np.asarray(w, dtype=np.float64)))
        mag = np.abs(np.fft.rfft(c))[1 : CYCLE_HARMONICS + 1]
        if len(mag) < CYCLE_HARMONICS:
            mag = np.pad(mag, (0, CYCLE_HARMONICS - len(mag)))
        total = math.sqrt(float(np.sum(np.abs(np.fft.rfft(c))[1:] ** 2)))
        rel = mag / total if total > 1e-12 else np.zeros_like(mag)
        feats[i, :CYCLE_HARMONICS] = (
            20 * np.log10(np.maximum(rel, floor)) / math.sqrt(CYCLE_HARMONICS)
        )
        shape_end = CYCLE_HARMONICS + CYCLE_SHAPE_POINTS
        feats[i, CYCLE_HARMONICS:shape_end] = (
            CYCLE_SHAPE_DB * cycle_shape(c) / math.sqrt(CYCLE_SHAPE_POINTS)
        )
        feats[i, shape_end:] = CYCLE_SLOPE_DB * cycle_slopes(c) / math.sqrt(CYCLE_SLOPE_POINTS)
    return feats


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_inv(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)


_FB_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def mel_filterbank(
    rate: int = ONESHOT_RATE, n_fft: int = FRAME, bands: int = MEL_BANDS
) -> np.ndarray:
    """Triangular mel filters (peak 1), shape (bands, n_fft // 2 + 1)."""
    key = (rate, n_fft, bands)
    if key not in _FB_CACHE:
        freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
        edges = _mel_inv(np.linspace(_mel(MEL_FMIN), _mel(rate / 2.0), bands + 2))
        fb = np.zeros((bands, len(freqs)))
        for b in range(bands):
            lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
            up = (freqs - lo) / max(mid - lo, 1e-9)
            down = (hi - freqs) / max(hi - mid, 1e-9)
            fb[b] = np.clip(np.minimum(up, down), 0.0, None)
            if not fb[b].any():  # narrower than one bin: take the nearest bin
                fb[b, int(np.argmin(np.abs(freqs - mid)))] = 1.0
        _FB_CACHE[key] = fb
    return _FB_CACHE[key]


def oneshot_floor(fb: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(Hann window of a frame, power norm, per-band floor) of the one-shot features: the power
    is divided by the norm so that a full-scale sine gives 1 in its bin, and each band of the
    filter bank ``fb`` is floored at the energy 8-bit dithered noise leaves in it."""
    window = np.hanning(FRAME)
    norm = float(window.sum() / 2) ** 2
    floor = EIGHT_BIT_NOISE_VAR * float(np.sum(window**2)) / norm * fb.sum(axis=1)
    return window, norm, floor


def oneshot_features(waves: Sequence[np.ndarray], rate: int = ONESHOT_RATE) -> np.ndarray:
    """Pooled log-mel features of one-shots sampled at ``rate`` (resampled to 29,411 Hz)."""
    if rate != ONESHOT_RATE:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), ONESHOT_RATE)
        waves = [
            resample_poly(np.asarray(w, dtype=np.float64), ONESHOT_RATE // g, int(rate) // g)
            for w in waves
        ]
    fb = mel_filterbank(ONESHOT_RATE)
    window, norm, floor = oneshot_floor(fb)
    floor_db = 10 * np.log10(floor)
    n_frames = ONESHOT_EDGES[-1]
    feats = np.empty((len(waves), MEL_BANDS * ONESHOT_SEGMENTS), dtype=np.float64)
    for i, w in enumerate(waves):
        x = np.nan_to_num(np.asarray(w, dtype=np.float64).ravel())
        x = x - (x.mean() if len(x) else 0.0)
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        logmel = np.tile(floor_db[:, None], (1, n_frames))
        if peak > 1e-9:
            x = x / peak
            onset = int(np.argmax(np.abs(x) >= ONSET_FRACTION))
            onset = max(0, onset - HOP // 2)
            x = x[onset : onset + (n_frames - 1) * HOP + FRAME]
            if len(x) < FRAME:
                x = np.pad(x, (0, FRAME - len(x)))
            count = min(n_frames, 1 + (len(x) - FRAME) // HOP)
            idx = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
            frames = x[idx] * window
            power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / norm
            bands = fb @ power.T  # (bands, count)
            logmel[:, :count] = 10 * np.log10(np.maximum(bands, floor[:, None]))
        pooled = [logmel[:, a:b].mean(axis=1) for a, b in itertools.pairwise(ONESHOT_EDGES)]
        feats[i] = np.concatenate(pooled)
    return feats / math.sqrt(feats.shape[1])


def features(waves: Sequence[np.ndarray], kind: str, *, rate: int = ONESHOT_RATE) -> np.ndarray:
    """Feature matrix (n, d) of ``waves`` (1-D float arrays) for ``kind`` 'cycle' or 'oneshot'.

    ``rate`` is the sample rate of one-shots (cycles have no rate).
    """
    check_kind(kind)
    if kind == "cycle":
        return cycle_features(waves)
    return oneshot_features(waves, rate)
