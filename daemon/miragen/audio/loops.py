"""Loop points for Mirage-ready wave data, how good they are, and a crossfade baked into them.

The Mirage keeps a wavesample's start, end and loop start as whole pages and its loop end as a
page plus a fine byte (``shared/mirage/FORMAT.md`` §1). Here the loop is taken to play from the
first byte of ``loop_start_page`` through the byte ``loop_end_page·256 + loop_end_fine``
(inclusive), then jump back. docs/audio.md ("Loops") gives the rules and the measured figures.

- :func:`find_loop`: start page 0, end page = the last page. One page (a single cycle) loops
  whole; a sound that dies away (the RMS of the last tenth of the content, padding excluded,
  under :data:`DECAY_RATIO` of the whole content's RMS) or is silent gets loop off (the loop
  points parked on the last page). A short sound (at most :data:`CYCLE_PAGES` pages of
  content: a cycle) loops from 0 to its last sample or the one before, whichever jump is
  smoother. Anything longer is searched: the loop start on a page boundary after the attack and
  in the second half of the content, the loop end on any byte, the loop at least
  :data:`MIN_LOOP_PART` of the span it may lie in, chosen so that the jump continues the sound:
  the samples around the jump match those around the loop start (value and slope near it;
  level and spectrum over ±4.4 ms: :class:`_Matcher`).
- :func:`loop_click_db`: the click at the jump in dB against the loop's level;
  :func:`loop_level_db`: the level step at the jump.
- :func:`crossfade_loop`: the end of the loop faded into the samples before the loop start.
- :func:`loop_report`: all of it for one wave, as the commands and the generator report it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import limits
from ..errors import FormatError
from .levels import hold
from .mirage8 import to_mirage8

PAGE = limits.PAGE  # the Mirage's memory page (miragen.limits)
DECAY_RATIO = 0.05
CYCLE_PAGES = 4  # content of at most this many pages is taken as a cycle: looped whole
CYCLE_SLACK = 1  # a cycle's loop may end this many samples before its last one
MAX_START_CANDIDATES = 48  # loop starts tried (evenly spread), then the neighbours of the best
MATCH_HALF = 128  # samples compared on each side of the jump (≈ 4.4 ms at 29,411 Hz)
MATCH_NEAR = 8  # the narrow part of the window, right at the jump: value and slope
NEAR_WEIGHT = 4.0  # how much more a sample of the narrow part counts
JUNCTION_WEIGHT = 1.0  # the jump's own second differences against the window's mean energy
ATTACK_LEVEL = 0.7  # the attack ends on the first page whose RMS reaches this part of the peak's
MIN_LOOP_PART = 1 / 3  # the shortest loop, as a part of the span it may lie in
MIN_LOOP_MS = 100.0  # the shortest loop searched when the sustained part is long enough
CLICK_SPAN = 4  # second-difference outputs around a boundary whose energy is compared
CLICK_LOCAL = 4096  # samples each side of the jump the click is judged in (≈ 140 ms)
CLICK_PERIODS = 4  # the longest period looked for: a quarter of CLICK_LOCAL (down to 29 Hz)
PERIODIC_CORR = 0.5  # a sound is a tone when it is this much like itself one period away
CLICK_FLOOR_DB = -80.0  # no measurable click
LEVEL_SPAN = 2 * PAGE  # samples each side of the jump whose levels are compared (≈ 17 ms)
XFADE_SHAPES = ("auto", "equal-power", "linear")
XFADE_MAX_MS = 1000.0  # the longest crossfade asked for (it is cut to the loop anyway)


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

    @property
    def loop_length(self) -> int:
        return self.loop_end + 1 - self.loop_start


def _as_u8(u8: bytes | np.ndarray) -> np.ndarray:
    a = (
        np.frombuffer(bytes(u8), dtype=np.uint8)
        if not isinstance(u8, np.ndarray)
        else np.asarray(u8, dtype=np.uint8).reshape(-1)
    )
    if len(a) == 0 or len(a) % PAGE:
        raise FormatError(
            f"wave data is {len(a)} bytes, not a whole number of 256-byte pages (at least one)"
        )
    return a


def content_length(a: np.ndarray) -> int:
    """Samples before the trailing run of 0x80 (padding, or silence): 0 for a flat wave."""
    nz = np.flatnonzero(a != 0x80)
    return int(nz[-1]) + 1 if len(nz) else 0


def _content(a: np.ndarray, length: int | None) -> int:
    """The samples that are sound: ``length`` when given (at most the data), else
    :func:`content_length`; 0 for a flat wave either way."""
    found = content_length(a)
    return min(max(int(length), 0), len(a)) if length is not None and found else found


def find_loop(
    u8: bytes | np.ndarray, *, rate: int = limits.MIRAGE_RATE, length: int | None = None
) -> LoopPoints:
    """Loop points for Mirage wave data (whole pages, as :func:`mirage8.prepare` gives).

    ``length``: the samples before the page padding where the caller knows it
    (``Prepared.samples``); else the data up to its trailing run of 0x80. ``rate`` only turns
    :data:`MIN_LOOP_MS` into samples.
    """
    a = _as_u8(u8)
    last = len(a) // PAGE - 1
    if last == 0:
        return LoopPoints(0, 0, 0, 0, 255, True)
    off = LoopPoints(0, last, last, last, 255, False)
    x = a.astype(np.float64) - 128.0
    content = _content(a, length)
    if content == 0:
        return off
    body = x[:content]
    rms = float(np.sqrt(np.mean(body**2)))
    tail = body[-max(2, content // 10) :]
    if rms == 0 or float(np.sqrt(np.mean(tail**2))) < DECAY_RATIO * rms:
        return off
    if content <= CYCLE_PAGES * PAGE:
        e = _cycle_end(x, content)
    else:
        found = _sustain_loop(x, content, round(rate * MIN_LOOP_MS / 1000.0))
        if found is None:
            return off
        s, e = found
        return LoopPoints(0, last, s // PAGE, e // PAGE, e % PAGE, True)
    return LoopPoints(0, last, 0, e // PAGE, e % PAGE, True)


def _cycle_end(x: np.ndarray, content: int) -> int:
    """The loop end of a cycle looped from 0: its last sample, or one of the
    :data:`CYCLE_SLACK` before it (a cycle resampled as a plain file is often one sample
    longer than its period), whichever makes the smoother jump: the least energy of the
    second differences across it (x[e−1], x[e], x[0] and x[e], x[0], x[1])."""
    last = content - 1
    ends = np.arange(last, max(2, last - CYCLE_SLACK) - 1, -1)
    jump = (x[ends - 1] - 2.0 * x[ends] + x[0]) ** 2 + (x[ends] - 2.0 * x[0] + x[1]) ** 2
    return int(ends[int(np.argmin(jump))])  # ties: the longest


def _match_window() -> np.ndarray:
    """Weights of the ``2·MATCH_HALF`` samples compared; the jump lies between the two halves."""
    w = np.hanning(2 * MATCH_HALF + 2)[1:-1]
    near = np.hanning(2 * MATCH_NEAR + 2)[1:-1]
    w[MATCH_HALF - MATCH_NEAR : MATCH_HALF + MATCH_NEAR] += NEAR_WEIGHT * near
    return w


class _Matcher:
    """The normalised windowed mismatch between the samples around a loop start ``s`` and those
    around every candidate jump point ``e + 1`` (one FFT correlation per loop start, over the
    candidates' stretch only)."""

    def __init__(self, x: np.ndarray, content: int):
        self.x = x[:content]
        self.w = _match_window()
        self.wsum = float(self.w.sum())
        nfft = _fft_size(content + 2 * MATCH_HALF)
        wf = np.fft.rfft(self.w, nfft)
        # energy of the window at every offset j: Σ w[k]·x[j+k]²
        self.E = np.fft.irfft(np.fft.rfft(self.x**2, nfft) * np.conj(wf), nfft)

    def costs(self, s: int, e_lo: int, e_hi: int) -> np.ndarray:
        """cost[i] for the loop end ``e = e_lo + i``: Σw(a−b)² / Σw(a²+b²) (0 for a perfect
        match, about 1 for unrelated material; ``a`` around ``s``, ``b`` around ``e + 1``) plus
        :data:`JUNCTION_WEIGHT` × the two second differences across the jump itself (x[e−1],
        x[e], x[s] and x[e], x[s], x[s+1]) squared, over the same mean energy."""
        x = self.x
        seg = x[s - MATCH_HALF : s + MATCH_HALF]
        g = self.w * seg
        S = float(np.dot(g, seg))
        j0, n = e_lo + 1 - MATCH_HALF, e_hi - e_lo + 1
        region = x[j0 : j0 + n - 1 + 2 * MATCH_HALF]
        nfft = _fft_size(len(region) + 2 * MATCH_HALF)
        cross = np.fft.irfft(np.fft.rfft(region, nfft) * np.conj(np.fft.rfft(g, nfft)), nfft)[:n]
        e = np.arange(e_lo, e_hi + 1)
        en = np.maximum(self.E[j0 : j0 + n], 0.0)
        jump = (x[e - 1] - 2.0 * x[e] + x[s]) ** 2 + (x[e] - 2.0 * x[s] + x[s + 1]) ** 2
        return (S - 2.0 * cross + en + JUNCTION_WEIGHT * jump * self.wsum) / (S + en + 1e-12)


def _fft_size(n: int) -> int:
    """The smallest 2^k or 3·2^k at least ``n`` (sizes numpy's FFT is quick at)."""
    p = 1 << max(0, (n - 1).bit_length())
    return 3 * p // 4 if 3 * p // 4 >= n else p


def _sustain_loop(x: np.ndarray, content: int, min_loop: int) -> tuple[int, int] | None:
    """The (loop start, loop end) pair of the sustained part that matches best, or None."""
    env = np.sqrt(np.mean(x[: (content // PAGE) * PAGE].reshape(-1, PAGE) ** 2, axis=1))
    e_hi = content - 1 - MATCH_HALF
    attack = int(np.argmax(env >= ATTACK_LEVEL * env.max()))  # the first page near the peak
    first = max(1, (content // PAGE) // 2, attack + 1)
    span = e_hi + 1 - first * PAGE
    min_loop = max(PAGE, min(max(min_loop, round(span * MIN_LOOP_PART)), span // 2))
    max_start = (e_hi + 1 - min_loop) // PAGE
    first = min(first, max_start)
    if max_start < 1 or first < 1:
        return None
    m = _Matcher(x, content)
    pages = np.unique(
        np.linspace(first, max_start, min(MAX_START_CANDIDATES, max_start - first + 1)).astype(int)
    ).tolist()
    scored: dict[int, tuple[float, int]] = {}

    def score(page: int) -> None:
        s = page * PAGE
        c = m.costs(s, s + min_loop - 1, e_hi)
        # on (near) ties the longer loop: a tiny bias towards later ends
        c = c + 1e-6 * np.arange(len(c))[::-1] / len(c)
        i = int(np.argmin(c))
        scored[page] = (float(c[i]), s + min_loop - 1 + i)

    for p in pages:
        score(p)
    best = min(scored, key=lambda p: scored[p][0])
    for p in (best - 1, best + 1):  # the neighbours of the best, when the search skipped them
        if first <= p <= max_start and p not in scored:
            score(p)
    best = min(scored, key=lambda p: scored[p][0])
    return best * PAGE, scored[best][1]


def _around_jump(loop: np.ndarray, half: int) -> np.ndarray:
    """The ``half`` samples played before the jump and the ``half`` after it (the whole loop,
    twice round, when it is shorter): index ``half`` is the loop start."""
    if len(loop) < half:
        loop = np.tile(loop, -(-half // len(loop)))
    return np.concatenate([loop[-half:], loop[:half]])


def _period(played: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
    """The lag in [lo, hi] where ``played`` is most like itself (its period, for a tone), and
    the normalised autocorrelation there (1: exactly periodic, about 0: noise)."""
    y = played - played.mean()
    n = len(y)
    f = np.fft.rfft(y, 2 * n)
    ac = np.fft.irfft(f * np.conj(f), 2 * n)[: hi + 1]
    r = ac / (n - np.arange(hi + 1))
    lag = lo + int(np.argmax(r[lo:]))
    return lag, float(r[lag] / r[0]) if r[0] > 0 else 0.0


def _boundary_energy(x: np.ndarray, k: int) -> float | None:
    """Σd2² of the ``CLICK_SPAN`` outputs around the boundary before ``x[k]`` where nothing
    jumps; None where they do not all lie inside ``x``."""
    h = CLICK_SPAN // 2
    if k - h - 1 < 0 or k + h >= len(x):
        return None
    return float(np.sum(np.diff(x[k - h - 1 : k + h + 1], 2) ** 2))


def _click_energy(loop: np.ndarray, unjumped: list[float]) -> tuple[float, float]:
    """(the jump's excess energy, ``CLICK_SPAN`` · the local variance): :func:`loop_click_db`;
    ``unjumped``: the energies of the boundaries at the loop start and after the loop end as
    the sound plays them without the jump (those that exist)."""
    played = _around_jump(loop, CLICK_LOCAL)
    sq = np.diff(played, 2) ** 2  # sq[i]: the output centred on played[i + 1]
    # energy of each boundary (between played[k−1] and played[k]): the CLICK_SPAN outputs
    # centred on k − CLICK_SPAN/2 .. k + CLICK_SPAN/2 − 1
    span = np.convolve(sq, np.ones(CLICK_SPAN), mode="valid")  # span[j]: sq[j .. j + SPAN − 1]
    at = CLICK_LOCAL - CLICK_SPAN // 2 - 1  # the window of the jump boundary
    jump = float(span[at])
    n = len(loop)
    period, corr = _period(played, 2 * CLICK_SPAN, CLICK_LOCAL // CLICK_PERIODS)
    # a tone: the same phase every period away within the window (not the jump again)
    lags = range(period, at - CLICK_SPAN, period) if corr >= PERIODIC_CORR else range(0)
    refs = [
        float(span[at + sign * lag])
        for lag in lags
        for sign in (-1, 1)
        if min(lag % n, n - lag % n) > CLICK_SPAN
    ]
    if refs:
        usual = max(refs)
    else:  # noise, or a cycle looped whole (every period away is the jump itself)
        d = np.abs(np.arange(len(span)) - at) % n  # the jump comes back every loop length
        others = span[np.minimum(d, n - d) > CLICK_SPAN]
        usual = float(others.max()) if len(others) else 0.0
    usual = max([usual, *unjumped])
    return max(jump - usual, 0.0), float(np.var(played)) * CLICK_SPAN


def loop_click_db(
    u8: bytes | np.ndarray, lp: LoopPoints, *, length: int | None = None
) -> float | None:
    """The click at the loop's jump in dB against the loop's level; None when the loop is off.

    The loop is taken as the Mirage plays it, round and round (x = byte − 128): the
    :data:`CLICK_LOCAL` samples before the jump (the end of the loop) and after it (its start).
    Their second difference d2[i] = x[i−1] − 2x[i] + x[i+1] is a high-pass that turns a step
    of the value into two spikes and a step of the slope into one. The energy of a boundary is
    Σd2² over the :data:`CLICK_SPAN` outputs around it; J is the jump's. Q, what the sound
    does anyway there, is the largest of: the same energy where the sound plays through the
    loop start, and through the sample after the loop end, without jumping (where those lie
    inside the content); for a tone (normalised autocorrelation ≥ :data:`PERIODIC_CORR` at its
    period, looked for up to a quarter of the window), the largest energy at the same phase a
    whole number of periods away within the window; otherwise (noise, or a cycle looped whole,
    where every period away is the jump itself) the largest energy of the window's other
    boundaries (the jump's own returns, a loop length apart, left out). The click is
    10·log10(max(J − Q, 0) / (span · the window's variance)), at least :data:`CLICK_FLOOR_DB`
    (nothing measurable above what the sound does anyway). A step of 5 LSB at the jump of a
    loud tone reads about −28 dB, one of 40 LSB about −9 dB.
    """
    if not lp.loop_on:
        return None
    a = _as_u8(u8)
    s, e = lp.loop_start, min(lp.loop_end, len(a) - 1)
    if e <= s:
        return None
    x = a[: max(_content(a, length), e + 1)].astype(np.float64) - 128.0
    unjumped = [v for v in (_boundary_energy(x, s), _boundary_energy(x, e + 1)) if v is not None]
    click, power = _click_energy(x[s : e + 1], unjumped)
    if power <= 0 or click <= 0:
        return CLICK_FLOOR_DB
    return round(max(CLICK_FLOOR_DB, 10.0 * float(np.log10(click / power))), 1)


def crossfade_samples(lp: LoopPoints, ms: float, rate: int = limits.MIRAGE_RATE) -> int:
    """How many samples :func:`crossfade_loop` fades: ``ms`` at ``rate``, at most the loop's
    length and the loop start's offset (the samples before it that fade in); 0 when none."""
    if not lp.loop_on or ms <= 0:
        return 0
    n = min(round(rate * float(ms) / 1000.0), lp.loop_start, lp.loop_length)
    return n if n >= 2 else 0


def _xfade_gains(shape: str, n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(in, out) gains over t = 1/n .. 1 for fading ``a`` out and ``b`` in."""
    t = np.arange(1, n + 1) / n
    if shape == "linear":
        return t, 1.0 - t
    if shape == "equal-power":
        return np.sin(0.5 * np.pi * t), np.cos(0.5 * np.pi * t)
    # auto: linear gains scaled to keep the power for the two parts' correlation ρ (clipped to
    # 0..1): ρ = 1 gives the linear fade, ρ = 0 one of constant power
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    rho = float(np.clip(np.dot(a, b) / (na * nb), 0.0, 1.0)) if na > 0 and nb > 0 else 0.0
    norm = np.sqrt(t**2 + (1.0 - t) ** 2 + 2.0 * rho * t * (1.0 - t))
    return t / norm, (1.0 - t) / norm


def crossfade_loop(
    u8: bytes | np.ndarray,
    lp: LoopPoints,
    ms: float,
    *,
    shape: str = "auto",
    rate: int = limits.MIRAGE_RATE,
) -> bytes:
    """The wave with the last ``ms`` of the loop crossfaded into the samples before the loop
    start, so that the jump continues the sound; nothing outside the loop changes.

    Loop sample ``e − n + 1 + k`` (k = 0..n−1) becomes ``out(t)·x[e−n+1+k] + in(t)·x[s−n+k]``
    with t = (k + 1)/n: the last one played before the jump is x[s−1]. ``shape`` "linear"
    (in = t, out = 1 − t: right for material in phase), "equal-power" (in = sin πt/2,
    out = cos πt/2: right for unrelated material) or "auto" (the linear gains divided by
    √(t² + (1−t)² + 2ρt(1−t)), ρ the correlation of the two parts, clipped to 0..1: linear for
    ρ = 1, constant power for ρ = 0). n: :func:`crossfade_samples`. Rounded back to bytes
    1..255 (the Mirage stops on 0x00). Loop off, or n = 0: the data unchanged.
    """
    if shape not in XFADE_SHAPES:
        raise ValueError(
            f"crossfade shape must be one of {', '.join(XFADE_SHAPES)} (got {shape!r})"
        )
    a = _as_u8(u8)
    n = crossfade_samples(lp, ms, rate)
    s, e = lp.loop_start, lp.loop_end
    if n == 0 or e >= len(a):
        return a.tobytes()
    x = a.astype(np.float64) - 128.0
    fade_out, fade_in = x[e - n + 1 : e + 1], x[s - n : s]
    g_in, g_out = _xfade_gains(shape, n, fade_out, fade_in)
    mixed = g_out * fade_out + g_in * fade_in
    out = a.copy()
    out[e - n + 1 : e + 1] = (np.clip(np.rint(mixed), -127.0, 127.0) + 128.0).astype(np.uint8)
    return out.tobytes()


def loop_level_db(
    u8: bytes | np.ndarray, lp: LoopPoints, *, span: int = LEVEL_SPAN
) -> float | None:
    """The level step at the jump in dB: the RMS (about 0x80) of the ``span`` samples played
    after it (the loop's first) against the ``span`` played before it (the loop's last); 0
    when the loop keeps its level, None when the loop is off."""
    if not lp.loop_on:
        return None
    a = _as_u8(u8)
    s, e = lp.loop_start, min(lp.loop_end, len(a) - 1)
    loop = a[s : e + 1].astype(np.float64) - 128.0
    if len(loop) == 0:
        return None
    k = min(span, len(loop))
    before = float(np.sqrt(np.mean(loop[-k:] ** 2)))
    after = float(np.sqrt(np.mean(loop[:k] ** 2)))
    if before <= 0 or after <= 0:
        return 0.0 if before == after else None
    return round(20.0 * float(np.log10(after / before)), 1)


def loop_report(
    u8: bytes | np.ndarray,
    *,
    rate: int = limits.MIRAGE_RATE,
    length: int | None = None,
    xfade_ms: float = 0.0,
    xfade_shape: str = "auto",
) -> tuple[bytes, dict]:
    """:func:`find_loop`, the crossfade (``xfade_ms`` > 0) and the figures of one wave:
    (the wave, crossfaded where asked; a JSON-ready report: the loop points, ``loop_click_db``,
    ``loop_level_db``, ``loop_xfade_ms`` (what was faded, 0 for none) and its shape).
    ``length``: as for :func:`find_loop`."""
    lp = find_loop(u8, rate=rate, length=length)
    n = crossfade_samples(lp, xfade_ms, rate)
    data = crossfade_loop(u8, lp, xfade_ms, shape=xfade_shape, rate=rate) if n else _as_u8(u8)
    data = bytes(data)
    report = {
        **asdict(lp),
        "loop_click_db": loop_click_db(data, lp, length=length),
        "loop_level_db": loop_level_db(data, lp),
        "loop_xfade_ms": round(1000.0 * n / rate, 1),
        "loop_xfade_shape": xfade_shape if n else None,
    }
    return data, report


def wavesample_figures(wave: bytes | np.ndarray, ws: dict) -> dict[str, float | None]:
    """``loop_click_db`` and ``loop_level_db`` of a wavesample whose pages and loop are given
    as a disk stores them (``ws``: ``used``, ``start_page``, ``end_page``, ``loop_start_page``,
    ``loop_end_page``, ``loop_end_fine``, ``loop_on``; pages of ``wave``, a 64 KB wave area).
    Both None when the wavesample is unused, does not loop, or its loop lies outside it."""
    none: dict[str, float | None] = {"loop_click_db": None, "loop_level_db": None}
    start, end = int(ws["start_page"]), int(ws["end_page"])
    ls, le = int(ws["loop_start_page"]), int(ws["loop_end_page"])
    if not (ws.get("used") and ws.get("loop_on") and start <= ls <= le <= end):
        return none
    data = np.asarray(bytearray(wave[start * PAGE : (end + 1) * PAGE]), dtype=np.uint8)
    if len(data) != (end + 1 - start) * PAGE:
        return none
    lp = LoopPoints(0, end - start, ls - start, le - start, int(ws["loop_end_fine"]), True)
    return {"loop_click_db": loop_click_db(data, lp), "loop_level_db": loop_level_db(data, lp)}


def describe_loop(report: dict) -> str:
    """One line for people, e.g. "loop pages 190..232+226, no measurable click, level step
    −0.5 dB" (click and level: :func:`loop_click_db`, :func:`loop_level_db`) or "loop off"."""
    if not report.get("loop_on"):
        return "loop off"
    click, level = report.get("loop_click_db"), report.get("loop_level_db")
    text = (
        f"loop pages {report['loop_start_page']}..{report['loop_end_page']}"
        f"+{report['loop_end_fine']}, "
        + (
            "no measurable click"
            if click is None or click <= CLICK_FLOOR_DB
            else f"click {click:.1f} dB"
        )
        + ("" if level is None else f", level step {level:+.1f} dB")
    )
    if report.get("loop_xfade_ms"):
        text += f", {report['loop_xfade_ms']:g} ms {report['loop_xfade_shape']} crossfade"
    return text


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
    periodically (:func:`periodic_resample`) to 256·k points, k = max(1, round(n/256)) (a stepped
    cycle whose length divides 256·k is held instead: :func:`miragen.audio.levels.hold`), then
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
    y = hold(x, PAGE * k)  # a short stepped cycle keeps its steps (audio/levels.py)
    if y is None:
        y = periodic_resample(x, PAGE * k)
    return to_mirage8(y, dither=dither, rng=rng).tobytes()
