"""The embedded default corpus: single-cycle waves synthesised with numpy, no third-party audio.

Four classes of 256-point single cycles, each wave band-limited (harmonics 1..``MAX_HARMONIC``
only, built in the frequency domain or oversampled and truncated), DC-free and peak-normalised:

- ``additive``: random spectral envelopes — a power-law slope, one to three formant bumps,
  sometimes odd harmonics only, random or aligned phases;
- ``pulse``: pulse waves of random width (PWM snapshots, 3 %..50 %), random brightness and a
  softened or resonant top end;
- ``saw``: sawtooth variants — plain, tilted, ramp up or down, hard-synced at a random ratio,
  with a resonant peak, or a blend of a saw and its octave;
- ``fm``: two-operator FM (integer or near-integer ratios, random index, optional feedback).

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``, in a fixed order,
so the corpus is the same on every machine for the same seed. The waves of a class share a
recipe but differ in every random parameter, so copies can be told from new material.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..audio.mirage8 import to_mirage8
from ..fsutil import atomic_write_bytes

CYCLE = 256
MAX_HARMONIC = 120  # below the 128th harmonic (Nyquist of a 256-point cycle), with some room
PER_CLASS = 24
CLASSES = ("additive", "pulse", "saw", "fm")


def _from_harmonics(amps: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """amps[k-1] is harmonic k (1-based); returns CYCLE points."""
    spec = np.zeros(CYCLE // 2 + 1, dtype=np.complex128)
    k = min(len(amps), MAX_HARMONIC)
    ph = np.zeros(k) if phases is None else phases[:k]
    # sine phase convention: a·sin(2πkt + φ) ↔ coefficient a·e^{i(φ − π/2)}·N/2
    spec[1 : k + 1] = amps[:k] * np.exp(1j * (ph - np.pi / 2)) * (CYCLE / 2)
    return np.fft.irfft(spec, CYCLE)


def _bandlimit(y: np.ndarray) -> np.ndarray:
    """Any-length periodic signal → CYCLE points keeping harmonics 1..MAX_HARMONIC."""
    spec = np.fft.rfft(y)
    out = np.zeros(CYCLE // 2 + 1, dtype=np.complex128)
    out[1 : MAX_HARMONIC + 1] = spec[1 : MAX_HARMONIC + 1] * (CYCLE / len(y))
    return np.fft.irfft(out, CYCLE)


def _shape(y: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply harmonics 1..len(gains) of the cycle ``y`` by ``gains`` (the rest are dropped)."""
    spec = np.fft.rfft(y)
    out = np.zeros_like(spec)
    k = min(len(gains), MAX_HARMONIC)
    out[1 : k + 1] = spec[1 : k + 1] * gains[:k]
    return np.fft.irfft(out, CYCLE)


def _finish(y: np.ndarray) -> np.ndarray:
    y = y - y.mean()
    peak = np.max(np.abs(y))
    if peak < 1e-9:
        raise ValueError("synthesised a silent wave")  # never happens with the ranges below
    return (y / peak).astype(np.float32)


def _tilt(rng: np.random.Generator, k: np.ndarray) -> np.ndarray:
    """A random brightness: low-pass roll-off starting at a random harmonic."""
    corner = rng.uniform(3, 60)
    order = rng.uniform(1, 4)
    return 1.0 / np.sqrt(1.0 + (k / corner) ** (2 * order))


def _additive(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(3, 64))
    k = np.arange(1, n + 1, dtype=np.float64)
    env = k ** -rng.uniform(0.3, 2.5)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(1, n)
        width = rng.uniform(0.5, 6)
        env += rng.uniform(0.2, 1.5) * np.exp(-0.5 * ((k - centre) / width) ** 2) * env.max()
    if rng.random() < 0.35:
        env[1::2] = 0.0  # odd harmonics only
    env *= rng.uniform(0.3, 1.0, n)  # a rough, individual spectrum
    phases = rng.uniform(0, 2 * np.pi, n) if rng.random() < 0.6 else np.zeros(n)
    return _finish(_from_harmonics(env, phases))


def _pulse(rng: np.random.Generator) -> np.ndarray:
    duty = rng.uniform(0.03, 0.5)
    k = np.arange(1, MAX_HARMONIC + 1, dtype=np.float64)
    amps = (2.0 / (np.pi * k)) * np.sin(np.pi * k * duty)
    amps *= _tilt(rng, k)
    if rng.random() < 0.4:  # a resonant peak, as a filtered analogue pulse
        centre = rng.uniform(4, 40)
        amps *= 1.0 + rng.uniform(1, 6) * np.exp(-0.5 * ((k - centre) / rng.uniform(1, 4)) ** 2)
    # all harmonics share the pulse's phase alignment (cosine series around the pulse centre)
    phases = np.full(len(k), np.pi / 2) - 2 * np.pi * k * rng.uniform(0, 1)
    return _finish(_from_harmonics(amps, phases))


def _saw(rng: np.random.Generator) -> np.ndarray:
    k = np.arange(1, MAX_HARMONIC + 1, dtype=np.float64)
    variant = int(rng.integers(0, 4))
    if variant == 0:  # plain / tilted saw, ramp up or down
        amps = (1.0 / k) * _tilt(rng, k) * rng.uniform(0.7, 1.0, len(k)) ** 2
        y = _from_harmonics(amps)
    elif variant == 1:  # hard sync: the slave saw restarts every master cycle
        ratio = rng.uniform(1.2, 5.0)
        t = np.arange(CYCLE * 16) / (CYCLE * 16)
        y = _shape(_bandlimit(2 * ((t * ratio) % 1.0) - 1), _tilt(rng, k))
    elif variant == 2:  # resonant low-pass snapshot
        centre = rng.uniform(3, 50)
        amps = (
            (1.0 / k)
            * _tilt(rng, k)
            * (1 + rng.uniform(2, 10) * np.exp(-0.5 * ((k - centre) / rng.uniform(0.7, 3)) ** 2))
        )
        y = _from_harmonics(amps)
    else:  # a saw and its octave (or fifth), mixed
        other = 2 if rng.random() < 0.6 else 3
        amps = (1.0 / k) * _tilt(rng, k)
        amps2 = np.zeros_like(amps)
        amps2[other - 1 :: other] = (1.0 / k[: len(k[other - 1 :: other])]) * rng.uniform(0.3, 1.0)
        y = _from_harmonics(amps) + _from_harmonics(
            amps2, np.full(len(k), rng.uniform(0, 2 * np.pi))
        )
    if rng.random() < 0.5:
        y = -y[::-1]  # ramp direction
    return _finish(np.roll(y, int(rng.integers(0, CYCLE))))


def _fm(rng: np.random.Generator) -> np.ndarray:
    over = 16
    t = np.arange(CYCLE * over) / (CYCLE * over)
    ratio = int(rng.integers(1, 8))
    carrier = int(rng.integers(1, 4)) if rng.random() < 0.3 else 1
    index = rng.uniform(0.3, 6.0)
    phase = rng.uniform(0, 2 * np.pi)
    mod = index * np.sin(2 * np.pi * ratio * t + phase)
    if rng.random() < 0.3:  # a second modulator
        mod += rng.uniform(0.2, 3.0) * np.sin(2 * np.pi * int(rng.integers(1, 10)) * t)
    y = np.sin(2 * np.pi * carrier * t + mod)
    return _finish(_bandlimit(y))


_MAKERS = {"additive": _additive, "pulse": _pulse, "saw": _saw, "fm": _fm}


def default_corpus(seed: int = 0, per_class: int = PER_CLASS) -> dict[str, list[np.ndarray]]:
    """Classes of float32 single cycles (256 points, DC-free, peak 1), deterministic by seed."""
    rng = np.random.default_rng(seed)
    return {name: [_MAKERS[name](rng) for _ in range(per_class)] for name in CLASSES}


def write_default_corpus(
    folder: str | os.PathLike, seed: int = 0, per_class: int = PER_CLASS
) -> list[Path]:
    """Write the default corpus as ``folder/<class>/<class>_NN.pcm`` (8-bit, one page each)."""
    folder = Path(folder)
    paths = []
    for name, waves in default_corpus(seed, per_class).items():
        for i, w in enumerate(waves):
            data = to_mirage8(w, dither="none").tobytes()
            paths.append(atomic_write_bytes(folder / name / f"{name}_{i:02d}.pcm", data))
    return paths
