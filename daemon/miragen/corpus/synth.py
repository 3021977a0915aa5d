"""The embedded default corpus: single cycles and hits synthesised with numpy, no other audio.

Four classes of 256-point single cycles (:data:`CLASSES`), each wave band-limited (harmonics
1..``MAX_HARMONIC`` only, built in the frequency domain or oversampled and truncated), DC-free
and peak-normalised:

- ``additive``: random spectral envelopes — a power-law slope, one to three formant bumps,
  sometimes odd harmonics only, random or aligned phases;
- ``pulse``: pulse waves of random width (PWM snapshots, 3 %..50 %), random brightness and a
  softened or resonant top end;
- ``saw``: sawtooth variants — plain, tilted, ramp up or down, hard-synced at a random ratio,
  with a resonant peak, or a blend of a saw and its octave;
- ``fm``: two-operator FM (integer or near-integer ratios, random index, optional feedback).

One class of percussive one-shots at 29,411 Hz (:data:`HIT_CLASSES`), each a whole number of
256-sample pages, 1,024 to :data:`HIT_MAX` samples long (35-139 ms; at most 16 of the 32 pages
that the synthetic disk template and the simulated Mirage give a wavesample), with a sharp
onset (an attack of at most 1 ms), an end that settles to exactly zero (a raised-cosine fade over
its last 15-30 %, so no click) and no DC:

- ``hits``: a drum machine's worth of kinds, in equal shares and shuffled — kicks (a sine
  gliding down from 100-400 Hz to 40-75 Hz, exponential decay, sometimes a click or some
  drive), snares (one or two tuned modes over band-passed noise), claps (three or four
  band-passed noise bursts and a tail), hats (high-passed noise with or without a metallic
  cluster of inharmonic partials; closed short, open long), toms (a shorter glide, higher
  pitch, a little noise) and blips (a short tone of a few harmonics, gliding up or down).

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``, in a fixed order,
so the corpus is the same on every machine for the same seed (the hits from a stream of their
own: adding them left the cycles unchanged). The waves of a class share a recipe but differ in
every random parameter, so copies can be told from new material.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import limits
from ..audio.mirage8 import to_mirage8
from ..fsutil import atomic_write_bytes

CYCLE = 256
MAX_HARMONIC = 120  # below the 128th harmonic (Nyquist of a 256-point cycle), with some room
PER_CLASS = 24
CLASSES = ("additive", "pulse", "saw", "fm")
HIT_CLASSES = ("hits",)  # one-shots: train.oneshot_classes in the demo
HIT_RATE = limits.MIRAGE_RATE
HIT_MIN = 4 * limits.PAGE  # samples
HIT_MAX = 16 * limits.PAGE  # samples: half a 32-page wavesample slot (docs/demo.md)
HIT_KINDS = ("kick", "snare", "clap", "hat", "tom", "blip")


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


# ------------------------------------------------------------------ hits (one-shots)
def _time(n: int) -> np.ndarray:
    return np.arange(n) / HIT_RATE


def _decay(n: int, tau_s: float, start_s: float = 0.0) -> np.ndarray:
    """exp(−t/τ) from ``start_s`` on (0 before it)."""
    t = _time(n) - start_s
    return np.where(t >= 0, np.exp(-np.maximum(t, 0.0) / tau_s), 0.0)


def _glide(n: int, f_start: float, f_end: float, glide_s: float, phase: float = 0.0) -> np.ndarray:
    """A sine whose frequency moves exponentially from ``f_start`` to ``f_end`` (τ ``glide_s``)."""
    f = f_end + (f_start - f_end) * np.exp(-_time(n) / glide_s)
    return np.sin(phase + 2 * np.pi * (np.cumsum(f) - f[0]) / HIT_RATE)


def _filtered(y: np.ndarray, lo_hz: float, hi_hz: float, order: float = 2.0) -> np.ndarray:
    """``y`` through a Butterworth-shaped band-pass (``lo_hz`` 0: none; ``hi_hz`` at or above
    Nyquist: none), applied in the frequency domain."""
    f = np.fft.rfftfreq(len(y), 1.0 / HIT_RATE)
    g = np.ones_like(f)
    if lo_hz > 0:
        g /= np.sqrt(1.0 + (lo_hz / np.maximum(f, 1e-3)) ** (2 * order))
    if hi_hz < HIT_RATE / 2:
        g /= np.sqrt(1.0 + (f / hi_hz) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(y) * g, len(y))


def _noise(rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Band-passed white noise of unit RMS."""
    y = _filtered(rng.standard_normal(n), lo_hz, hi_hz)
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def _pages(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A length in samples: ``lo``..``hi`` whole pages."""
    return int(rng.integers(lo, hi + 1)) * limits.PAGE


def _kick(rng: np.random.Generator) -> np.ndarray:
    n = _pages(rng, 8, 16)
    f_end = rng.uniform(40, 75)
    y = _glide(n, min(400.0, f_end * rng.uniform(2.5, 6)), f_end, rng.uniform(0.008, 0.04))
    y *= _decay(n, rng.uniform(0.05, 0.2))
    if rng.random() < 0.5:  # the beater's click
        y += rng.uniform(0.1, 0.5) * _noise(rng, n, 1000, 8000) * _decay(n, rng.uniform(1e-3, 4e-3))
    if rng.random() < 0.4:  # some drive
        drive = rng.uniform(1.5, 4)
        y = np.tanh(drive * y) / np.tanh(drive)
    return y


def _tom(rng: np.random.Generator) -> np.ndarray:
    n = _pages(rng, 8, 16)
    f_end = rng.uniform(80, 250)
    y = _glide(n, f_end * rng.uniform(1.2, 2), f_end, rng.uniform(0.02, 0.08))
    y *= _decay(n, rng.uniform(0.08, 0.25))
    noise = _noise(rng, n, 200, rng.uniform(2000, 5000)) * _decay(n, rng.uniform(0.01, 0.03))
    return y + rng.uniform(0.05, 0.3) * noise


def _snare(rng: np.random.Generator) -> np.ndarray:
    n = _pages(rng, 6, 16)
    f1 = rng.uniform(150, 260)
    tone = _glide(n, f1 * rng.uniform(1.0, 1.3), f1, 0.01)
    if rng.random() < 0.6:  # a second drum-head mode
        tone += rng.uniform(0.3, 0.8) * _glide(n, f1 * rng.uniform(1.5, 1.9), f1 * 1.5, 0.01)
    tone *= _decay(n, rng.uniform(0.03, 0.08))
    noise = _noise(rng, n, rng.uniform(1000, 3000), rng.uniform(5000, 12000))
    return tone + rng.uniform(0.5, 1.5) * noise * _decay(n, rng.uniform(0.05, 0.2))


def _clap(rng: np.random.Generator) -> np.ndarray:
    n = _pages(rng, 6, 14)
    env = np.zeros(n)
    at, level = 0.0, 1.0
    for _ in range(int(rng.integers(3, 5))):  # the hands, a few milliseconds apart
        env = np.maximum(env, level * _decay(n, rng.uniform(0.002, 0.004), at))
        at += rng.uniform(0.006, 0.014)
        level *= rng.uniform(0.7, 0.95)
    env += rng.uniform(0.2, 0.4) * _decay(n, rng.uniform(0.04, 0.15), at)  # the room
    return _noise(rng, n, rng.uniform(600, 1200), rng.uniform(2000, 5000)) * env


def _hat(rng: np.random.Generator) -> np.ndarray:
    is_open = rng.random() < 0.35
    n = _pages(rng, 10, 16) if is_open else _pages(rng, 4, 6)
    cut = rng.uniform(5000, 9000)
    y = _noise(rng, n, cut, HIT_RATE)
    if rng.random() < 0.5:  # a metallic cluster: inharmonic partials, as analogue hats have
        base = rng.uniform(300, 600)
        t = _time(n)
        metal = sum(
            np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 2 * np.pi)))
            for r in (2.0, 3.0, 4.16, 5.43, 6.79, 8.21)
        )
        metal = _filtered(np.asarray(metal, dtype=np.float64), cut, 0.45 * HIT_RATE, order=4)
        y = y + rng.uniform(0.5, 1.5) * metal / (np.sqrt(np.mean(metal**2)) + 1e-12)
    tau = rng.uniform(0.08, 0.25) if is_open else rng.uniform(0.01, 0.04)
    return y * _decay(n, tau)


def _blip(rng: np.random.Generator) -> np.ndarray:
    n = _pages(rng, 4, 8)
    f0 = rng.uniform(400, 2000)
    f1 = f0 * rng.uniform(0.5, 2.0)
    glide = rng.uniform(0.005, 0.03)
    top = max(f0, f1)
    slope = rng.uniform(0.5, 2)
    y = np.zeros(n)
    for h in range(1, int(rng.integers(1, 6)) + 1):
        if h * top < 0.45 * HIT_RATE:  # nothing above Nyquist
            y += h**-slope * _glide(n, h * f0, h * f1, glide)
    return y * _decay(n, rng.uniform(0.02, 0.08))


_HIT_MAKERS = {
    "kick": _kick,
    "snare": _snare,
    "clap": _clap,
    "hat": _hat,
    "tom": _tom,
    "blip": _blip,
}


def _finish_hit(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A sharp onset (a raised-cosine attack of 0.3-1 ms from 0), an end that settles to exactly
    0 (a raised-cosine fade over the last 15-30 % of the sound), no DC, peak 1."""
    n = len(y)
    env = np.ones(n)
    attack = int(rng.integers(8, 30))
    env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    fade = int(n * rng.uniform(0.15, 0.3))
    env[-fade:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, fade + 1) / fade)
    y = y * env
    # DC removed along the sound's own level, so that the start and the end stay at 0
    level = np.convolve(np.abs(y), np.ones(64) / 64, mode="same") * env
    y = y - y.mean() * level / level.mean()
    peak = np.max(np.abs(y))
    if peak < 1e-9:
        raise ValueError("synthesised a silent hit")  # never happens with the ranges below
    return (y / peak).astype(np.float32)


def default_hits(seed: int = 0, per_class: int = PER_CLASS) -> dict[str, list[np.ndarray]]:
    """The hit class: float32 one-shots at :data:`HIT_RATE` (whole pages, at most
    :data:`HIT_MAX` samples, DC-free, peak 1, the last sample 0), every kind of
    :data:`HIT_KINDS` in equal shares (± 1) and shuffled, deterministic by seed."""
    rng = np.random.default_rng([seed, 1])  # a stream of their own: the cycles stay as they were
    kinds = [HIT_KINDS[i % len(HIT_KINDS)] for i in rng.permutation(per_class)]
    return {"hits": [_finish_hit(_HIT_MAKERS[k](rng), rng) for k in kinds]}


def default_corpus(seed: int = 0, per_class: int = PER_CLASS) -> dict[str, list[np.ndarray]]:
    """Classes of float32 single cycles (256 points, DC-free, peak 1), deterministic by seed."""
    rng = np.random.default_rng(seed)
    return {name: [_MAKERS[name](rng) for _ in range(per_class)] for name in CLASSES}


def write_default_corpus(
    folder: str | os.PathLike, seed: int = 0, per_class: int = PER_CLASS, *, hits: bool = False
) -> list[Path]:
    """Write the default corpus as ``folder/<class>/<class>_NN.pcm`` (8-bit: one page each, and
    with ``hits`` the hit class too: 4 to 16 pages each, at :data:`HIT_RATE`)."""
    folder = Path(folder)
    paths = []
    classes = default_corpus(seed, per_class) | (default_hits(seed, per_class) if hits else {})
    for name, waves in classes.items():
        for i, w in enumerate(waves):
            data = to_mirage8(w, dither="none").tobytes()
            paths.append(atomic_write_bytes(folder / name / f"{name}_{i:02d}.pcm", data))
    return paths
