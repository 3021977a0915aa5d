"""Folders of sounds → lists of waves for the judge (via the one audio reader)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, MiragenError
from .features import CYCLE_LEN, ONESHOT_RATE, check_kind, to_cycle

log = logging.getLogger(__name__)


def audio_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    from ..corpus.dataset import AUDIO_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise MiragenError(f"{folder}: not a folder of sounds")
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def load_waves(
    folder: str | Path, kind: str, *, raw_rate: int = 29411, recursive: bool = False
) -> tuple[list[np.ndarray], list[Path]]:
    """Read every sound of ``folder``: cycles → 256 points, one-shots → 29,411 Hz.

    Levels are kept as they are (silence stays silent). Unreadable files are skipped with a
    warning naming them; a folder without one usable sound is an error.
    """
    from ..audio.io import read_audio
    from ..audio.resample import resample

    check_kind(kind)
    waves, names = [], []
    for f in audio_files(folder, recursive=recursive):
        try:
            audio = read_audio(f, raw_rate=raw_rate)
        except InputError as exc:
            log.warning("skipped %s", exc)
            continue
        x = np.asarray(audio.samples, dtype=np.float64)
        if x.size < 2:
            log.warning("skipped %s: fewer than 2 samples", f)
            continue
        if kind == "cycle":
            w = to_cycle(x, CYCLE_LEN)
        else:
            w = np.asarray(resample(x, audio.rate, ONESHOT_RATE), dtype=np.float64)
        waves.append(w)
        names.append(f)
    if not waves:
        raise MiragenError(f"{folder}: no usable sounds found")
    return waves, names
