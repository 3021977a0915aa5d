"""Float audio → Mirage 8-bit wave data. The one quantiser of the project.

Rules (``shared/mirage/FORMAT.md`` §1):

- 8-bit unsigned, 0x80 is the centre line; **no 0x00 byte** (the ES5503 stops on it), so the
  scale is built to reach 0x01..0xFF only and any 0 left would become 1;
- DC removed (the mean of the kept part is subtracted);
- peak-normalised without clipping and without wraparound: the peak maps to ±127 LSB (±126
  with TPDF dither, whose ±1 LSB must not push a sample out of range);
- optional TPDF dither (the sum of two uniform ±½ LSB noises, triangular on ±1 LSB), except on
  a signal of at most :data:`COARSE_LEVELS` distinct values (a pulse, a 4-bit wave table, a
  bit-crushed sound): it has no detail finer than the 8-bit grid for dither to keep, and each of
  its levels must stay one code, or its flat steps turn to hiss (a 4-bit console bank dithered:
  flat steps 0.90 → 0.50, levels 12 → 30; ``bench/steps.py``);
- silence stays silence: a signal whose peak (after DC removal) is below
  :data:`SILENCE_PEAK` (−80 dBFS, under half an LSB of 12-bit audio) is written as a flat
  0x80 with a warning, instead of normalising its noise up to full scale. Quiet but real
  content above that threshold is normalised like anything else;
- length padded to whole 256-byte pages with 0x80; longer than ``max_bytes`` is cut (with a
  short fade-out and a warning) or refused (``strict``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .. import limits
from ..errors import FormatError, InputError
from .resample import input_needed, output_length, resample

log = logging.getLogger(__name__)

PAGE = limits.PAGE  # the Mirage's memory page (miragen.limits)
CENTRE = 0x80
MAX_WAVESAMPLE_BYTES = 65536  # one 64 KB memory half
SILENCE_PEAK = 1e-4  # −80 dBFS
COARSE_LEVELS = 64  # a signal of at most this many distinct values is quantised without dither


@dataclass
class Prepared:
    """Mirage-ready wave data."""

    data: bytes  # whole pages, no 0x00, ≤ max_bytes
    warnings: list[str] = field(default_factory=list)
    cut: bool = False  # the input was longer than max_bytes and was cut
    rate: int = 29411  # sample rate of ``data``
    samples: int = 0  # samples before page padding
    silent: bool = False  # the input was (near) silence, written as flat 0x80
    # the loop points and their figures when asked for (audio.loops.loop_report), else None
    loop: dict | None = None

    @property
    def pages(self) -> int:
        return len(self.data) // PAGE


def _tpdf(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) - rng.random(n)  # triangular on (−1, 1) LSB


def to_mirage8(
    x: np.ndarray, *, dither: str = "tpdf", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Quantise float samples to Mirage 8-bit: DC removed, peak-normalised, values 1..255.

    No padding. A (near) silent input (peak < :data:`SILENCE_PEAK` after DC removal) gives a
    flat 0x80. ``rng`` drives the dither; without one, a fixed seed makes the result
    reproducible. A signal of at most :data:`COARSE_LEVELS` distinct values is not dithered: each
    of its levels becomes one code.
    """
    if dither not in ("tpdf", "none"):
        raise ValueError(f"dither must be 'tpdf' or 'none' (got {dither!r})")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinite values")
    x = x - x.mean()
    peak = float(np.max(np.abs(x)))
    if peak < SILENCE_PEAK:
        return np.full(n, CENTRE, dtype=np.uint8)
    if dither == "tpdf" and len(np.unique(x)) > COARSE_LEVELS:
        rng = rng if rng is not None else np.random.default_rng(0)
        y = x * (126.0 / peak) + _tpdf(n, rng)  # |y| < 127
    else:
        y = x * (127.0 / peak)  # |y| ≤ 127
    q = np.rint(y)
    np.clip(q, -127.0, 127.0, out=q)  # a no-op by construction; guards rounding at the edges
    u8 = (q + CENTRE).astype(np.uint8)
    u8[u8 == 0] = 1
    return u8


def pad_to_pages(u8: np.ndarray | bytes) -> np.ndarray:
    """Pad to a whole number of 256-byte pages with 0x80 (the centre line)."""
    a = (
        np.frombuffer(u8, dtype=np.uint8)
        if isinstance(u8, (bytes, bytearray, memoryview))
        else np.asarray(u8, dtype=np.uint8)
    )
    rest = (-len(a)) % PAGE
    if rest == 0:
        return a.copy()
    return np.concatenate([a, np.full(rest, CENTRE, dtype=np.uint8)])


def check_mirage8(data: bytes, *, max_bytes: int = MAX_WAVESAMPLE_BYTES) -> None:
    """Raise :class:`FormatError` unless ``data`` is valid Mirage wave data.

    Valid: at least one page, whole 256-byte pages, at most ``max_bytes`` (one 64 KB half),
    no 0x00 byte.
    """
    n = len(data)
    if n == 0:
        raise FormatError("wave data is empty (at least one 256-byte page is needed)")
    if n % PAGE:
        raise FormatError(f"wave data is {n} bytes, not a whole number of 256-byte pages")
    if n > max_bytes:
        raise FormatError(f"wave data is {n} bytes, more than the {max_bytes}-byte limit")
    a = np.frombuffer(bytes(data), dtype=np.uint8)
    zeros = np.flatnonzero(a == 0)
    if len(zeros):
        raise FormatError(
            f"wave data holds {len(zeros)} 0x00 byte(s) (the Mirage stops on 0x00)",
            offset=int(zeros[0]),
        )


def _fade_out(x: np.ndarray, rate: int, fade_ms: float) -> np.ndarray:
    n = min(len(x), round(rate * fade_ms / 1000.0))
    if n <= 0:
        return x
    x = x.copy()
    # raised-cosine from 1 down to 0, the last sample exactly 0
    ramp = 0.5 * (1.0 + np.cos(np.pi * np.arange(1, n + 1) / n))
    x[-n:] *= ramp
    return x


def prepare(
    x: np.ndarray,
    rate: int,
    *,
    target_rate: int = 29411,
    max_bytes: int = 65536,
    dither: str = "tpdf",
    strict: bool = False,
    fade_ms: float = 10.0,
    rng: np.random.Generator | None = None,
    source: str = "input",
    too_long_hint: str = "",
    total_frames: int | None = None,
) -> Prepared:
    """Everything between decoded audio and the Mirage: mono, cut, resample, quantise, pad.

    ``x`` is float audio (1-D, or 2-D frames × channels, mixed to mono) at ``rate`` Hz; it may be
    only the start of a longer sound whose whole length is ``total_frames`` (what
    :func:`miragen.audio.io.read_audio` keeps with ``keep_seconds``). A sound longer than
    ``max_bytes`` (rounded down to whole pages) at ``target_rate`` is cut with a ``fade_ms``
    fade-out and a warning, or refused with ``strict`` (:class:`InputError` naming ``source``,
    followed by ``too_long_hint``, e.g. "use --cut to cut it"). It is cut in the source's own
    time before it is resampled, so memory and time follow the output's length, not the
    input's. DC is removed before resampling, so a constant input stays silent instead of
    turning into edge clicks. The result always passes :func:`check_mirage8`.
    """
    limit = _page_limit(max_bytes, source)
    x = _mono(x, source)
    rate, target_rate = int(rate), int(target_rate)
    total = max(len(x), int(total_frames) if total_frames is not None else 0)
    n_full = max(1, output_length(total, rate, target_rate))  # the whole sound at target_rate
    warnings: list[str] = []
    cut = n_full > limit
    secs = n_full / target_rate
    if cut and strict:
        raise InputError(
            source,
            f"too long: {n_full} samples ({secs:.2f} s at {target_rate} Hz) exceed the "
            f"{limit}-byte limit ({limit / target_rate:.2f} s)"
            + (f"; {too_long_hint}" if too_long_hint else ""),
        )
    y = _kept_part(x, min(n_full, limit), rate, target_rate, source)
    if cut:
        y = y - y.mean()
        y = _fade_out(y, target_rate, fade_ms)
        warnings.append(
            f"{source}: cut from {secs:.2f} s to {limit / target_rate:.2f} s "
            f"({limit} bytes at {target_rate} Hz) with a {fade_ms:g} ms fade-out"
        )
    u8 = to_mirage8(y, dither=dither, rng=rng)
    silent = float(np.max(np.abs(y - y.mean()))) < SILENCE_PEAK
    if silent:
        warnings.append(
            f"{source}: the audio is silent or constant (peak below −80 dBFS after DC removal); "
            "written as flat 0x80"
        )
    data = pad_to_pages(u8).tobytes()
    check_mirage8(data, max_bytes=limit)
    for w in warnings:
        log.info("%s", w)  # callers decide how to show them (the CLI prints them)
    return Prepared(
        data=data, warnings=warnings, cut=cut, rate=target_rate, samples=len(u8), silent=silent
    )


def _page_limit(max_bytes: int, source: str) -> int:
    """``max_bytes`` as whole pages, at most one 64 KB half; at least one page."""
    limit = (min(int(max_bytes), MAX_WAVESAMPLE_BYTES) // PAGE) * PAGE
    if limit < PAGE:
        raise InputError(source, f"max_bytes {max_bytes} is below one 256-byte page")
    return limit


def _mono(x: np.ndarray, source: str) -> np.ndarray:
    """1-D audio (frames × channels mixed down); refuses other shapes and no samples."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise InputError(source, f"audio must be 1-D or frames × channels (got shape {x.shape})")
    if len(x) == 0:
        raise InputError(source, "no audio: 0 samples")
    return x


def _kept_part(x: np.ndarray, n_out: int, rate: int, target_rate: int, source: str) -> np.ndarray:
    """The first ``n_out`` samples at ``target_rate``, DC off: only the source they need is
    touched (cut in the source's own time, then resampled)."""
    head = np.asarray(x[: input_needed(n_out, rate, target_rate)], dtype=np.float64)
    if not np.all(np.isfinite(head)):
        raise InputError(source, "the audio contains invalid (NaN or infinite) sample values")
    span = head[: max(1, -(-n_out * rate // target_rate))]
    head = head - span.mean()  # DC off before the filter: no step at the edges to ring
    if rate != target_rate:
        y = resample(head, rate, target_rate).astype(np.float64)[:n_out]
    else:
        y = head[:n_out]
    if len(y) == 0:
        y = head[:1]
    return y
