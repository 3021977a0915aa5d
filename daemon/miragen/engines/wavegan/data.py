"""Training data at the engine's internal resolution: the internal hold-out, cycles at their
fixed length, one-shots aligned on their onset and resampled to a 16·4^k length."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from ...audio.resample import resample
from ...corpus.dataset import layer_group, split_indices
from .options import ONESHOT_BASE

MIN_SNAPSHOT_HELD = 4  # held-out sounds of a class the snapshot judge needs; fewer: none held out


def internal_split(
    dataset, holdout: float, seed: int
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Per class, the sounds trained on and those held out to choose the snapshot. A class is
    held out from only when that leaves the judge at least ``MIN_SNAPSHOT_HELD`` sounds; a
    smaller class trains on everything (its snapshots are judged against the training part)."""
    rng = random.Random(seed)
    train_by_class, held_by_class = [], []
    for c in dataset.class_names:
        ws = list(dataset.classes[c])
        groups = [layer_group(n) for n in dataset.names.get(c, [])] or None
        train_idx, held_idx = split_indices(len(ws), 1.0 - holdout, rng, groups)
        if len(held_idx) < MIN_SNAPSHOT_HELD:
            train_idx, held_idx = list(range(len(ws))), []
        train_by_class.append([ws[i] for i in train_idx])
        held_by_class.append([ws[i] for i in held_idx])
    return train_by_class, held_by_class


def onset_align(x: np.ndarray, threshold: float = 0.02, pre: int = 16) -> np.ndarray:
    """Drop leading silence: start a few samples before the first sample above threshold·peak."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    idx = np.flatnonzero(np.abs(x) >= threshold * peak)
    start = max(0, int(idx[0]) - pre) if len(idx) else 0
    return x[start:]


def trim_tail(x: np.ndarray, threshold: float = 1.0 / 256) -> np.ndarray:
    """Drop trailing near-silence (below one 8-bit step of the peak)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    idx = np.flatnonzero(np.abs(x) >= threshold * peak)
    return x[: int(idx[-1]) + 1] if len(idx) else x


@dataclass
class Prepared:
    """Training arrays at the engine's internal resolution."""

    waves: np.ndarray  # (N, L) float32, peak 1
    labels: np.ndarray  # (N,) int64
    fracs: np.ndarray  # (N,) float32: used length / L (one-shots; 1 for cycles)
    length: int  # L: internal length
    internal_rate: int  # one-shots: internal sample rate (cycles: the dataset rate)


SYNTH_LENGTHS = tuple(1024 * 2**k for k in range(7))  # 1,024 … 65,536 samples
SYNTH_DEFAULT_CAP = 65536  # 2.2 s at 29,411 Hz: the most a Mirage half holds
WAVE_DEFAULT_CAP = 16384


def internal_oneshot_geometry(
    max_len: int, rate: int, oneshot_len: int, design: str = "wave"
) -> tuple[int, int]:
    """(internal length, internal rate) for one-shots of at most ``max_len`` samples.

    ``wave``: a length 16·4^k ≤ ``oneshot_len`` (0: 16,384); longer sounds are resampled to a
    lower internal rate so that they fit (the top octaves go). ``synth`` and ``spec``: the shortest
    1,024·2^k ≥ the longest sound, at most ``oneshot_len`` (0: 65,536), at the dataset's rate:
    every sound keeps its top octave, and what is longer than that loses its tail. A cap below
    1,024 samples (four frames) leaves room for raw samples only: the ``wave`` geometry.
    """
    if design in ("synth", "spec") and (oneshot_len == 0 or oneshot_len >= SYNTH_LENGTHS[0]):
        cap = oneshot_len or SYNTH_DEFAULT_CAP
        length = SYNTH_LENGTHS[0]
        while length < max_len and length * 2 <= cap:
            length *= 2
        return length, rate
    cap = oneshot_len or WAVE_DEFAULT_CAP
    length = ONESHOT_BASE * 16
    while length < max_len and length < cap:
        length *= 4
    if max_len <= length:
        return length, rate
    return length, int(math.floor(rate * length / max_len))


def prepare_waves(
    waves_by_class: list[list[np.ndarray]],
    mode: str,
    rate: int,
    cycle_len: int,
    oneshot_len: int,
    design: str = "wave",
    geometry: tuple[int, int] | None = None,
) -> Prepared:
    """The training arrays; ``geometry`` (length, rate) fixes the one-shot geometry (a
    held-out part is prepared like the training part it is judged beside)."""
    waves, labels = [], []
    for ci, ws in enumerate(waves_by_class):
        for w in ws:
            waves.append(np.asarray(w, dtype=np.float32))
            labels.append(ci)
    if mode == "cycle":
        arr = np.stack(
            [
                w[:cycle_len] if len(w) >= cycle_len else np.pad(w, (0, cycle_len - len(w)))
                for w in waves
            ]
        )
        arr = arr - arr.mean(axis=1, keepdims=True)
        arr = arr / np.maximum(np.abs(arr).max(axis=1, keepdims=True), 1e-6)
        return Prepared(
            arr.astype(np.float32),
            np.array(labels, np.int64),
            np.ones(len(arr), np.float32),
            cycle_len,
            rate,
        )
    cut = [trim_tail(onset_align(w)) for w in waves]
    cut = [c if len(c) >= 2 else np.zeros(2, np.float32) for c in cut]
    length, irate = geometry or internal_oneshot_geometry(
        max(len(c) for c in cut), rate, oneshot_len, design
    )
    arr = np.zeros((len(cut), length), np.float32)
    fracs = np.zeros(len(cut), np.float32)
    for i, c in enumerate(cut):
        if irate != rate:
            c = resample(c, rate, irate)
        c = c[:length]
        peak = float(np.max(np.abs(c))) if len(c) else 0.0
        arr[i, : len(c)] = c / peak if peak > 1e-9 else c
        if len(c) == length and length >= 64:  # cut short: fade out, do not click
            arr[i, -64:] *= np.linspace(1.0, 0.0, 64, dtype=np.float32)
        fracs[i] = len(c) / length
    return Prepared(arr, np.array(labels, np.int64), fracs, length, irate)
