"""Folders of sounds → lists of waves for the judge (via the one audio reader)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..audio.resample import resample_head
from ..corpus.dataset import AUDIO_SUFFIXES, read_sounds
from ..errors import MiragenError
from ..limits import HALF_BYTES
from .features import CYCLE_LEN, ONESHOT_RATE, check_kind, to_cycle

log = logging.getLogger(__name__)

MAX_CYCLE_SAMPLES = 2048  # longer sounds are one-shots when the kind is guessed


def audio_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MiragenError(f"{folder}: not a folder of sounds")
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in it
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )


def read_folder(
    folder: str | Path, *, raw_rate: int = 29411, recursive: bool = False
) -> list[tuple[Path, np.ndarray, int]]:
    """(path, samples, rate) of every readable sound of ``folder``; others skipped with a
    warning."""
    out = [
        (f, np.asarray(x, dtype=np.float64), r)
        for f, x, r in read_sounds(audio_files(folder, recursive=recursive), raw_rate=raw_rate)
    ]
    if not out:
        raise MiragenError(f"{folder}: no usable sounds found")
    return out


SUSTAIN_DROP_DB = 2.0  # a long sound whose last quarter is within this of its loudest is sustained
FRAME_S = 0.01


def tail_drop_db(x: np.ndarray, rate: int) -> float:
    """How far (dB, ≥ 0) the RMS of the last quarter of ``x`` lies below its loudest 10 ms
    frame; 0 for a sound of fewer than four frames."""
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, round(rate * FRAME_S))
    m = len(x) // frame
    if m < 4:
        return 0.0
    rms = np.sqrt(np.mean((x[: m * frame] - np.mean(x)).reshape(m, frame) ** 2, axis=1))
    tail = float(np.sqrt(np.mean(rms[-(m // 4) :] ** 2)))
    peak = float(rms.max())
    if peak <= 0.0:
        return 0.0
    return max(0.0, 20.0 * np.log10(peak / max(tail, peak * 1e-6)))


def sound_kind(x: np.ndarray, rate: int) -> str:
    """What one sound of an unsorted pool is, when the configuration says cycles: 'oneshot' for
    a sound longer than :data:`MAX_CYCLE_SAMPLES` (the longest single cycle, as for
    :func:`guess_kind`) whose last quarter fades more than :data:`SUSTAIN_DROP_DB` below its
    loudest 10 ms (a hit, a decaying note); else 'cycle' (a single cycle, or a sustained note
    whose cycle cycle mode takes). Hits of at most 2,048 samples (46 ms at 44.1 kHz) count as
    cycles: 3 of the 349 real one-shots in ``../shared/data/oneshots``."""
    if len(x) > MAX_CYCLE_SAMPLES and tail_drop_db(x, rate) > SUSTAIN_DROP_DB:
        return "oneshot"
    return "cycle"


def guess_kind(lengths: list[int]) -> str:
    """'cycle' when every sound is at most :data:`MAX_CYCLE_SAMPLES` long, else 'oneshot'."""
    return "cycle" if lengths and max(lengths) <= MAX_CYCLE_SAMPLES else "oneshot"


def to_kind(x: np.ndarray, rate: int, kind: str) -> np.ndarray:
    """One sound as the judge takes it: a 256-point cycle, or a one-shot at 29,411 Hz (cut at
    what a Mirage half holds, 65,536 samples: the cost follows that, not the file)."""
    if kind == "cycle":
        return to_cycle(x, CYCLE_LEN)
    return np.asarray(resample_head(x, rate, ONESHOT_RATE, HALF_BYTES), dtype=np.float64)


def load_waves(
    folder: str | Path, kind: str, *, raw_rate: int = 29411, recursive: bool = False
) -> tuple[list[np.ndarray], list[Path]]:
    """Read every sound of ``folder``: cycles → 256 points, one-shots → 29,411 Hz.

    Levels are kept as they are (silence stays silent). Unreadable files are skipped with a
    warning naming them; a folder without one usable sound is an error.
    """
    check_kind(kind)
    items = read_folder(folder, raw_rate=raw_rate, recursive=recursive)
    return [to_kind(x, r, kind) for _, x, r in items], [p for p, _, _ in items]
