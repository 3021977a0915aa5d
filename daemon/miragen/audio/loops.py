"""Loop points for Mirage-ready wave data.

The Mirage keeps a wavesample's start, end and loop start as whole pages and its loop end as a
page plus a fine byte (``shared/mirage/FORMAT.md`` §1). Here the loop is taken to play from the
first byte of ``loop_start_page`` through the byte ``loop_end_page·256 + loop_end_fine``
(inclusive), then jump back. :func:`find_loop` keeps it simple:

- start page 0, end page = the last page;
- one page (a single cycle): loop the whole page;
- otherwise, where the sound dies away (the RMS of the last tenth of the content, padding
  excluded, is under :data:`DECAY_RATIO` of the whole content's RMS) or is silent: loop off
  (the loop points are then parked on the last page);
- otherwise a loop in the tail: loop start on a page boundary in the second half of the
  content (any page for a content of at most four pages, so a converted single cycle loops
  on its whole length), loop end in the last two pages of content, at least one page after the
  loop start, chosen so that the jump continues the wave smoothly: the loop start's first two
  samples are compared with a linear prediction from the loop end's last two samples, and the
  pair with the smallest error wins (ties: the longest loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import limits
from ..errors import FormatError
from .mirage8 import to_mirage8

PAGE = limits.PAGE  # the Mirage's memory page (miragen.limits)
DECAY_RATIO = 0.05
MAX_START_CANDIDATES = 32


@dataclass(frozen=True)
class LoopPoints:
    start_page: int
    end_page: int  # inclusive: length = (end_page + 1 − start_page) · 256
    loop_start_page: int
    loop_end_page: int
    loop_end_fine: int  # 0..255
    loop_on: bool

    @property
    def loop_start(self) -> int:
        return self.loop_start_page * PAGE

    @property
    def loop_end(self) -> int:
        """Index of the last byte played before jumping back to ``loop_start``."""
        return self.loop_end_page * PAGE + self.loop_end_fine


def find_loop(u8: bytes | np.ndarray) -> LoopPoints:
    """Loop points for Mirage wave data (whole pages, as :func:`mirage8.prepare` gives)."""
    a = (
        np.frombuffer(bytes(u8), dtype=np.uint8)
        if not isinstance(u8, np.ndarray)
        else np.asarray(u8, dtype=np.uint8)
    )
    n = len(a)
    if n == 0 or n % PAGE:
        raise FormatError(
            f"wave data is {n} bytes, not a whole number of 256-byte pages (at least one)"
        )
    pages = n // PAGE
    last = pages - 1
    if pages == 1:
        return LoopPoints(0, 0, 0, 0, 255, True)
    off = LoopPoints(0, last, last, last, 255, False)
    x = a.astype(np.float64) - 128.0
    nz = np.flatnonzero(a != 0x80)
    if len(nz) == 0:
        return off
    content = int(nz[-1]) + 1  # trailing 0x80 is padding (or silence)
    body = x[:content]
    rms = float(np.sqrt(np.mean(body**2)))
    tail = body[-max(2, content // 10) :]
    if rms == 0 or float(np.sqrt(np.mean(tail**2))) < DECAY_RATIO * rms:
        return off
    if content < PAGE + 2:
        return LoopPoints(0, last, 0, 0, 255, True)
    max_start = (content - PAGE) // PAGE  # leaves at least one page of loop
    first = 0 if content <= 4 * PAGE else max(1, (content // PAGE) // 2)
    first = min(first, max_start)
    starts = np.unique(
        np.linspace(first, max_start, min(MAX_START_CANDIDATES, max_start - first + 1)).astype(int)
    )
    best: tuple[float, int, int] | None = None
    for L in starts.tolist():
        s = L * PAGE
        lo = max(s + PAGE - 1, content - 2 * PAGE, 1)
        e = np.arange(lo, content)
        if len(e) == 0:
            continue
        slope = x[e] - x[e - 1]
        pred0 = x[e] + slope
        pred1 = pred0 + slope
        cost = (x[s] - pred0) ** 2 + (x[s + 1] - pred1) ** 2 if s + 1 < n else (x[s] - pred0) ** 2
        # prefer longer loops on (near) ties: a tiny bias towards later ends and earlier starts
        cost = cost + 1e-9 * ((content - e) + s)
        i = int(np.argmin(cost))
        cand = (float(cost[i]), L, int(e[i]))
        if best is None or cand < best:
            best = cand
    if best is None:
        return off
    _, L, e = best
    return LoopPoints(0, last, L, e // PAGE, e % PAGE, True)


def tile_cycle(cycle: bytes | np.ndarray, length: int) -> bytes:
    """Repeat a single cycle (whole pages, e.g. one 256-byte page) to ``length`` bytes.

    A single cycle written into a longer wavesample (a template's 32-page slot) would otherwise
    be followed by 0x80 padding; tiled, every page of the range holds the same cycle, so the
    wavesample plays the cycle for its whole length and a loop over any whole number of cycles
    is seamless. ``length`` must be a whole multiple of the cycle's length.
    """
    a = (
        bytes(cycle)
        if not isinstance(cycle, np.ndarray)
        else np.asarray(cycle, dtype=np.uint8).tobytes()
    )
    n = len(a)
    if n == 0 or n % PAGE:
        raise FormatError(
            f"cycle is {n} bytes, not a whole number of 256-byte pages (at least one)"
        )
    if length < n or length % n:
        raise FormatError(
            f"cannot tile a {n}-byte cycle to {length} bytes: not a whole multiple of the cycle"
        )
    return a * (length // n)


def fill_with_cycle(cycle: bytes | np.ndarray, capacity: int) -> bytes:
    """A single cycle repeated as many whole times as fit in ``capacity`` bytes (at least once).

    For a 256-byte cycle (one page) and a page range of N pages this is exactly N pages, so a
    page-aligned loop anywhere in it plays the cycle seamlessly; a longer cycle that does not
    divide ``capacity`` leaves the rest to the caller's 0x80 padding. Raises when the cycle
    itself does not fit, or is not whole pages: a cycle of any other length is made whole pages
    by :func:`cycle_to_pages` first (tiling a page-padded cycle would repeat its padding).
    """
    n = len(cycle)
    if n > capacity:
        raise FormatError(f"a {n}-byte cycle does not fit in {capacity} bytes")
    return tile_cycle(cycle, n * max(1, capacity // n) if n else 0)


def periodic_resample(x: np.ndarray, m: int) -> np.ndarray:
    """One period of a periodic signal, resampled to ``m`` points, band-limited (FFT).

    The spectrum of the one period is kept up to the lower of the two Nyquist frequencies and
    the rest is zero, so the result, repeated, is as seamless as the input repeated: no
    discontinuity where one period meets the next (a time-domain resampler would see an edge
    there). An even length's Nyquist bin is halved when it becomes an ordinary frequency
    (upsampling) and dropped when it would be folded (downsampling).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = len(x)
    if n == 0 or m <= 0:
        raise FormatError(f"cannot resample a period of {n} samples to {m} points")
    if n == m:
        return x.copy()
    spec = np.fft.rfft(x)
    out = np.zeros(m // 2 + 1, dtype=np.complex128)
    keep = min(len(spec), len(out))
    out[:keep] = spec[:keep]
    if n < m and n % 2 == 0:
        out[n // 2] *= 0.5  # the source's Nyquist bin: split between ±n/2
    if m < n and m % 2 == 0:
        out[m // 2] = 0.0  # would alias: the target's Nyquist bin holds nothing
    return np.fft.irfft(out, m) * (m / n)


def cycle_pages(n_at_target: float) -> int:
    """Pages for one cycle of ``n_at_target`` samples: k = max(1, round(n / 256))."""
    return max(1, round(n_at_target / PAGE))


def cycle_to_pages(
    x: np.ndarray,
    rate: float,
    target_rate: float,
    *,
    max_bytes: int = 65536,
    dither: str = "tpdf",
    rng: np.random.Generator | None = None,
) -> bytes:
    """One single cycle (float audio at ``rate`` Hz) → Mirage 8-bit, whole pages, ready to tile.

    The cycle lasts n = len·target_rate/rate samples at the target rate; it is resampled
    periodically (:func:`periodic_resample`) to 256·k points, k = max(1, round(n/256)), then
    quantised (:func:`miragen.audio.mirage8.to_mirage8`: DC removed, peak-normalised, no
    0x00, no fade). Tiled, every k pages repeat exactly and the last point leads into the first.
    Raises :class:`FormatError` when 256·k bytes exceed ``max_bytes``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = x.reshape(-1)
    if len(x) == 0:
        raise FormatError("the cycle is empty")
    if not np.all(np.isfinite(x)):
        raise FormatError("the cycle holds invalid (NaN or infinite) sample values")
    n = len(x) * float(target_rate) / float(rate)
    k = cycle_pages(n)
    if PAGE * k > max_bytes:
        raise FormatError(
            f"one cycle of {n:,.0f} samples at {target_rate:g} Hz takes {k} pages "
            f"({PAGE * k:,} bytes); only {max_bytes:,} bytes are available "
            "(is it really a single cycle?)"
        )
    y = periodic_resample(x, PAGE * k)
    return to_mirage8(y, dither=dither, rng=rng).tobytes()
