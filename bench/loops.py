"""Benchmark: loop points on sustained one-shots and cycles, today's rule against the new search.

Sets (docs/audio.md, "Loops", gives the rules and the table):

- ``oneshots``: every WAV under ``../shared/data/oneshots`` converted as ``miragen convert``
  does (29,411 Hz, at most 64 KB), kept when it is *sustained*: at least
  :data:`SUSTAIN_MIN_S` of content, the RMS of the second half of the content at least
  :data:`SUSTAIN_TAIL_RATIO` of the whole content's RMS, and the loop on by the decay rule both
  methods share (the last tenth at least 5 % of the RMS);
- ``akwf``: AKWF single cycles (600 frames at 44.1 kHz) converted as plain files: 401 samples,
  one period of 400.15 samples at 29,411 Hz; ``period_cents`` is how far the loop's length is
  from that period;
- ``tonal``: 20 synthesised sustained notes (organ, strings, pad, bass, flute at four pitches;
  2.5 s at 44.1 kHz, cut to 2.23 s with the 10 ms fade-out like any long file), because the
  shared sets hold no such sounds. A supplement: the search's constants were set looking at it
  and at the one-shots, so it flatters the new search; the real sets are the measure.

Methods: ``today`` (``find_loop`` as it was before the new search: a copy below, bytes only),
``new`` (:func:`miragen.audio.loops.find_loop`, given the samples before the padding as
``miragen convert`` and the generator give it), ``new`` with a 10 ms crossfade baked into the
loop (:func:`miragen.audio.loops.crossfade_loop`: ``equal-power``, ``linear``, ``auto``), and
``today`` with the 10 ms equal-power one. Figures per sound: ``click_db``
(:func:`~miragen.audio.loops.loop_click_db`, −80 = no measurable click), ``level_db``
(:func:`~miragen.audio.loops.loop_level_db`, the level step at the jump), the loop's length.
Per set and method: median and p90 of the click, the share of sounds with a measurable click,
median and p90 of |level step|, median loop length, and the time taken (finding the loop, plus
the crossfade where there is one; not the conversion, not the figures).

    .venv/bin/python bench/loops.py [--data ../shared/data] [--akwf-step 1]
        [--sets oneshots,akwf,tonal] [--per-sound] [--out bench/results/loops.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from miragen.audio import loops as L  # noqa: E402
from miragen.audio.convert import convert_file  # noqa: E402
from miragen.audio.mirage8 import prepare  # noqa: E402

RATE = 29411
SUSTAIN_MIN_S = 0.75
SUSTAIN_TAIL_RATIO = 0.15
XFADE_MS = 10.0
AKWF_PERIOD = 600 * RATE / 44100  # 400.15 samples


def today_find_loop(u8: bytes) -> L.LoopPoints:
    """``find_loop`` as it was before the new search (commit f3a63d3), unchanged."""
    a = np.frombuffer(bytes(u8), dtype=np.uint8)
    n = len(a)
    pages = n // 256
    last = pages - 1
    if pages == 1:
        return L.LoopPoints(0, 0, 0, 0, 255, True)
    off = L.LoopPoints(0, last, last, last, 255, False)
    x = a.astype(np.float64) - 128.0
    nz = np.flatnonzero(a != 0x80)
    if len(nz) == 0:
        return off
    content = int(nz[-1]) + 1
    body = x[:content]
    rms = float(np.sqrt(np.mean(body**2)))
    tail = body[-max(2, content // 10) :]
    if rms == 0 or float(np.sqrt(np.mean(tail**2))) < 0.05 * rms:
        return off
    if content < 256 + 2:
        return L.LoopPoints(0, last, 0, 0, 255, True)
    max_start = (content - 256) // 256
    first = 0 if content <= 4 * 256 else max(1, (content // 256) // 2)
    first = min(first, max_start)
    starts = np.unique(np.linspace(first, max_start, min(32, max_start - first + 1)).astype(int))
    best = None
    for page in starts.tolist():
        s = page * 256
        lo = max(s + 256 - 1, content - 2 * 256, 1)
        e = np.arange(lo, content)
        if len(e) == 0:
            continue
        slope = x[e] - x[e - 1]
        pred0 = x[e] + slope
        pred1 = pred0 + slope
        cost = (x[s] - pred0) ** 2 + (x[s + 1] - pred1) ** 2 if s + 1 < n else (x[s] - pred0) ** 2
        cost = cost + 1e-9 * ((content - e) + s)
        i = int(np.argmin(cost))
        cand = (float(cost[i]), page, int(e[i]))
        if best is None or cand < best:
            best = cand
    if best is None:
        return off
    _, page, e = best
    return L.LoopPoints(0, last, page, e // 256, e % 256, True)


# --------------------------------------------------------------------------- sets


def _sustained(data: bytes) -> bool:
    a = np.frombuffer(data, dtype=np.uint8)
    c = L.content_length(a)
    if c < SUSTAIN_MIN_S * RATE:
        return False
    x = a[:c].astype(np.float64) - 128.0
    rms = np.sqrt(np.mean(x**2))
    second = np.sqrt(np.mean(x[c // 2 :] ** 2))
    tail = np.sqrt(np.mean(x[-max(2, c // 10) :] ** 2))
    return bool(second >= SUSTAIN_TAIL_RATIO * rms and tail >= L.DECAY_RATIO * rms)


Sound = tuple[str, bytes, int]  # name, wave data (whole pages), samples before the padding


def oneshot_set(data: Path) -> tuple[list[Sound], int]:
    files = sorted((data / "oneshots").glob("*/*.wav"))
    out = []
    for f in files:
        p = convert_file(f, rate=RATE)
        if _sustained(p.data):
            out.append((f"{f.parent.name}/{f.name}", p.data, p.samples))
    return out, len(files)


def akwf_set(data: Path, step: int) -> tuple[list[Sound], int]:
    files = sorted((data / "akwf").glob("AKWF_*/*.wav"))
    out = []
    for f in files[::step]:
        p = convert_file(f, rate=RATE)
        out.append((f"{f.parent.name}/{f.name}", p.data, p.samples))
    return out, len(files)


def _partials(f0: np.ndarray, amps: list[float], rng: np.random.Generator, sr: int) -> np.ndarray:
    """Σ amps[k−1]·sin(k·phase + φ_k) for a (possibly varying) frequency track ``f0``."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(len(f0))
    top = float(np.max(f0))
    for k, a in enumerate(amps, start=1):
        if k * top >= 0.45 * sr or a == 0:
            break
        y += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return y


def _envelope(n: int, sr: int, attack_s: float, decay_db_per_s: float = 0.0) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack_s, 1e-3))
    return env * 10 ** (-decay_db_per_s * t / 20.0)


def tonal_set(seed: int = 0, sr: int = 44100, seconds: float = 2.5) -> list[Sound]:
    """Synthesised sustained notes: organ, strings, pad, bass, flute at four pitches each."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = []
    for f in (65.41, 130.81, 261.63, 523.25):
        bars = list(rng.uniform(0.2, 1.0, 8) * np.array([1, 1, 1, 1, 0, 1, 0, 1]))
        organ = _partials(np.full(n, f), bars, rng, sr) * _envelope(n, sr, 0.01)
        saws = sum(
            _partials(
                f
                * 2 ** (d / 1200)
                * (1 + 0.0025 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6))),
                [1 / k for k in range(1, 200)],
                rng,
                sr,
            )
            for d in (-6, 0, 6)
        )
        strings = saws * _envelope(n, sr, 0.2)
        pad = sum(
            _partials(f * 2 ** (d / 1200) * np.ones(n), [k**-1.5 for k in range(1, 120)], rng, sr)
            for d in (-10, -4, 0, 5, 11)
        ) * (_envelope(n, sr, 0.5) * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)))
        fb = f / 2 if f > 100 else f * 0.63
        bass = sum(
            _partials(np.full(n, fb), [0] * (k - 1) + [1 / k], rng, sr)
            * _envelope(n, sr, 0.005, 2 + k)
            for k in range(1, 24)
        )
        ff = f * 2
        flute = _partials(
            ff * (1 + 0.004 * np.sin(2 * np.pi * 5 * t)), [1, 0.3, 0.1], rng, sr
        ) + 0.05 * rng.standard_normal(n)
        flute = flute * _envelope(n, sr, 0.08)
        notes = (("organ", organ), ("strings", strings), ("pad", pad), ("bass", bass))
        for name, y in (*notes, (f"flute-{ff:g}", flute)):
            p = prepare(y, sr, target_rate=RATE)
            out.append((name if name.startswith("flute") else f"{name}-{f:g}", p.data, p.samples))
    return out


# --------------------------------------------------------------------------- methods


def _methods() -> dict:
    """name → f(data, samples) → (loop points, the wave as played: crossfaded or not)."""

    def today(d: bytes, n: int) -> L.LoopPoints:
        return today_find_loop(d)  # bytes only, as it always was

    def new(d: bytes, n: int) -> L.LoopPoints:
        return L.find_loop(d, rate=RATE, length=n)  # what convert and generate give it

    def plain(find):
        return lambda d, n: (find(d, n), d)

    def with_xfade(find, shape: str):
        def run(d: bytes, n: int):
            lp = find(d, n)
            return lp, L.crossfade_loop(d, lp, XFADE_MS, shape=shape, rate=RATE)

        return run

    return {
        "today": plain(today),
        "today+xfade-equal-power": with_xfade(today, "equal-power"),
        "new": plain(new),
        "new+xfade-equal-power": with_xfade(new, "equal-power"),
        "new+xfade-linear": with_xfade(new, "linear"),
        "new+xfade-auto": with_xfade(new, "auto"),
    }


def _stats(rows: list[dict], seconds: float, cycles: bool) -> dict:
    on = [r for r in rows if r["click_db"] is not None]
    clicks = np.array([r["click_db"] for r in on]) if on else np.zeros(0)
    levels = np.abs([r["level_db"] for r in on]) if on else np.zeros(0)
    res = {
        "loops_on": len(on),
        "click_db_median": round(float(np.median(clicks)), 1) if len(on) else None,
        "click_db_p90": round(float(np.percentile(clicks, 90)), 1) if len(on) else None,
        "measurable_clicks": round(float(np.mean(clicks > L.CLICK_FLOOR_DB)), 3)
        if len(on)
        else None,
        "level_db_abs_median": round(float(np.median(levels)), 2) if len(on) else None,
        "level_db_abs_p90": round(float(np.percentile(levels, 90)), 2) if len(on) else None,
        "loop_ms_median": round(float(np.median([r["loop"] for r in on])) / RATE * 1000, 1)
        if on
        else None,
        "seconds": round(seconds, 3),
        "ms_per_sound": round(1000 * seconds / max(1, len(rows)), 2),
    }
    if cycles and on:
        cents = np.abs([r["period_cents"] for r in on])
        res["period_cents_abs_median"] = round(float(np.median(cents)), 2)
        res["period_cents_abs_max"] = round(float(np.max(cents)), 1)
        res["period_off_by_over_10_cents"] = int(np.sum(cents > 10))
    return res


def run_set(sounds: list[Sound], cycles: bool, per_sound: bool) -> dict:
    out: dict = {"sounds": len(sounds), "methods": {}}
    rows_by: dict[str, list[dict]] = {}
    for mname, method in _methods().items():
        rows = []
        spent = 0.0
        for name, data, samples in sounds:
            t0 = time.perf_counter()
            lp, d = method(data, samples)
            spent += time.perf_counter() - t0
            row = {
                "sound": name,
                "click_db": L.loop_click_db(d, lp, length=samples),
                "level_db": L.loop_level_db(d, lp),
                "loop": lp.loop_end + 1 - lp.loop_start if lp.loop_on else 0,
                "loop_start": lp.loop_start,
                "loop_end": lp.loop_end,
            }
            if cycles and lp.loop_on:
                row["period_cents"] = round(1200 * float(np.log2(row["loop"] / AKWF_PERIOD)), 2)
            rows.append(row)
        out["methods"][mname] = _stats(rows, spent, cycles)
        rows_by[mname] = rows
    if per_sound:
        out["per_sound"] = rows_by
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="oneshots,akwf,tonal")
    ap.add_argument("--akwf-step", type=int, default=1, help="every Nth AKWF file (1: all)")
    ap.add_argument("--per-sound", action="store_true", help="also every sound's figures")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    data = Path(args.data)
    result: dict = {
        "rate": RATE,
        "xfade_ms": XFADE_MS,
        "rule": {
            "oneshots": f"content ≥ {SUSTAIN_MIN_S} s, RMS of the second half ≥ "
            f"{SUSTAIN_TAIL_RATIO} × the content's, last tenth ≥ {L.DECAY_RATIO} × (loop on)",
            "akwf": f"every {args.akwf_step}th AKWF WAV, converted as a plain file",
            "tonal": "20 synthesised notes (organ, strings, pad, bass, flute), seed 0",
        },
        "sets": {},
    }
    for name in args.sets.split(","):
        if name == "oneshots":
            sounds, total = oneshot_set(data)
            result["sets"][name] = {"files": total, **run_set(sounds, False, args.per_sound)}
        elif name == "akwf":
            sounds, total = akwf_set(data, max(1, args.akwf_step))
            result["sets"][name] = {"files": total, **run_set(sounds, True, args.per_sound)}
        elif name == "tonal":
            result["sets"][name] = run_set(tonal_set(), False, args.per_sound)
        else:
            ap.error(f"unknown set {name!r}")
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
