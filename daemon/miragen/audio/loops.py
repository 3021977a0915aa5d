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

from ..errors import FormatError

PAGE = 256
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
    a = np.frombuffer(bytes(u8), dtype=np.uint8) if not isinstance(u8, np.ndarray) else np.asarray(u8, dtype=np.uint8)
    n = len(a)
    if n == 0 or n % PAGE:
        raise FormatError(f"wave data is {n} bytes, not a whole number of 256-byte pages (at least one)")
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
    starts = np.unique(np.linspace(first, max_start, min(MAX_START_CANDIDATES, max_start - first + 1)).astype(int))
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
    a = bytes(cycle) if not isinstance(cycle, np.ndarray) else np.asarray(cycle, dtype=np.uint8).tobytes()
    n = len(a)
    if n == 0 or n % PAGE:
        raise FormatError(f"cycle is {n} bytes, not a whole number of 256-byte pages (at least one)")
    if length < n or length % n:
        raise FormatError(f"cannot tile a {n}-byte cycle to {length} bytes: not a whole multiple of the cycle")
    return a * (length // n)


def fill_with_cycle(cycle: bytes | np.ndarray, capacity: int) -> bytes:
    """A single cycle repeated as many whole times as fit in ``capacity`` bytes (at least once).

    For a 256-byte cycle (one page) and a page range of N pages this is exactly N pages, so a
    page-aligned loop anywhere in it plays the cycle seamlessly; a longer cycle that does not
    divide ``capacity`` leaves the rest to the caller's 0x80 padding. Raises when the cycle
    itself does not fit.
    """
    n = len(cycle)
    if n > capacity:
        raise FormatError(f"a {n}-byte cycle does not fit in {capacity} bytes")
    return tile_cycle(cycle, n * max(1, capacity // n) if n else 0)
