"""A dataset: named classes of float32 waves, loaded from a folder.

Files directly in the folder form one class (named after the folder); each subfolder is a
class of its own. Every file the audio core accepts can be used (WAV, AIFF, FLAC, raw 8-bit
``.pcm``/``.raw``). In ``cycle`` mode each file is one single cycle, resampled (band-limited,
periodic) to ``cycle_len`` points; in ``oneshot`` mode each file is resampled to the target
rate and cut at ``max_len`` samples.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.io import RAW_SUFFIXES, read_audio
from ..audio.levels import hold
from ..audio.resample import SUPPORT_MARGIN_S, resample_head
from ..errors import InputError, MiragenError
from ..limits import HALF_BYTES, TARGET_RATE_MIN

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".pcm", ".raw"}


@dataclass
class Dataset:
    mode: str  # "cycle" | "oneshot"
    rate: int
    classes: dict[str, list[np.ndarray]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    cycle_len: int = 256

    @property
    def class_names(self) -> list[str]:
        return sorted(self.classes)

    def all_waves(self) -> list[np.ndarray]:
        return [w for c in self.class_names for w in self.classes[c]]

    def __len__(self) -> int:
        return sum(len(v) for v in self.classes.values())

    def subset(self, cls: str) -> "Dataset":
        if cls not in self.classes:
            raise MiragenError(
                f"class '{cls}' not found (classes: {', '.join(self.class_names) or 'none'})"
            )
        return Dataset(
            self.mode, self.rate, {cls: self.classes[cls]}, {cls: self.names[cls]}, self.cycle_len
        )

    def split(self, train_fraction: float = 0.8, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """Split every class into train / held-out parts by :func:`split_indices`, keeping a
        piece's layers (:func:`layer_group`) together."""
        rng = random.Random(seed)
        train = Dataset(self.mode, self.rate, cycle_len=self.cycle_len)
        held = Dataset(self.mode, self.rate, cycle_len=self.cycle_len)
        for c in self.class_names:
            for part, sel in zip(
                (train, held),
                split_indices(
                    len(self.classes[c]),
                    train_fraction,
                    rng,
                    [layer_group(n) for n in self.names.get(c, [])] or None,
                ),
            ):
                part.classes[c] = [self.classes[c][i] for i in sel]
                part.names[c] = [self.names[c][i] for i in sel]
        return train, held


_LAYER = re.compile(r"^(?P<stem>.+)-\d{1,2}$")


def layer_group(name: str) -> str:
    """The group a sound belongs to for splitting: files named ``STEM-1``, ``STEM-2``, … (a
    drum kit's velocity layers or round robins, as in AVL Drumkits' ``38-PearlSnare-3.wav``)
    are one piece, ``STEM``; any other name is a group of its own. Only a hyphen and one or two
    digits count, so numbered banks (``AKWF_0001``, ``saw_12``) are not grouped."""
    stem = Path(name).stem
    m = _LAYER.match(stem)
    return m.group("stem") if m else stem


def split_indices(
    n: int, train_fraction: float, rng: random.Random, groups: Sequence[str] | None = None
) -> tuple[list[int], list[int]]:
    """The one train / held-out rule (``Dataset.split``, the wavegan engine's internal hold-out,
    the sweep, the daemon): shuffle ``0..n-1`` with ``rng`` and keep ``round(train_fraction·n)``
    for training, at least one on each side when ``n ≥ 2``. Classes split one after another
    draw from the same ``rng``.

    With ``groups`` (one key per sound, e.g. :func:`layer_group`), whole groups are shuffled
    and go to one side together: the velocity layers of one snare are not a "new" snare to the
    judge. Groups are taken for training in shuffled order until the next one would overshoot
    the wanted count by more than it falls short; the last group is always held out. Without
    repeated keys this is the plain rule above (same draws)."""
    if groups is None or len(set(groups)) == n:
        idx = list(range(n))
        rng.shuffle(idx)
        k = int(round(train_fraction * n))
        if n >= 2:
            k = min(max(k, 1), n - 1)
        return idx[:k], idx[k:]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keys = sorted(members)
    rng.shuffle(keys)
    want = train_fraction * n
    train: list[int] = []
    for j, key in enumerate(keys):
        size = len(members[key])
        if train and (j == len(keys) - 1 or len(train) + size - want > want - len(train)):
            break
        train += members[key]
    chosen = set(train)
    return train, [i for key in keys for i in members[key] if i not in chosen]


MAX_CYCLE_SOURCE = 65536  # samples: a longer file is not a single cycle (and would cost an FFT
# of its whole length)
# seconds any sound is kept when read for training or judging: a Mirage half lasts at most this
# long at the lowest target rate; the rest of a longer file is never decoded
KEEP_SECONDS = HALF_BYTES / TARGET_RATE_MIN + SUPPORT_MARGIN_S


def cycle_from_wave(x: np.ndarray, cycle_len: int) -> np.ndarray:
    """One single cycle → exactly ``cycle_len`` points, DC removed, peak 1 (periodic resampling;
    a short stepped cycle whose length divides ``cycle_len`` is held: audio/levels.py)."""
    from scipy.signal import resample

    x = np.asarray(x, dtype=np.float64)
    if len(x) > MAX_CYCLE_SOURCE:
        raise ValueError(
            f"{len(x)} samples is too long for a single cycle (at most {MAX_CYCLE_SOURCE})"
        )
    held = hold(x, cycle_len)
    if held is not None:
        x = held
    elif len(x) != cycle_len:
        x = resample(x, cycle_len)
    x = x - x.mean()
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 1e-9:
        x = x / peak
    return x.astype(np.float32)


def list_audio_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )


def read_sounds(
    files: list[Path], *, raw_rate: int = 29411, keep_seconds: float | None = KEEP_SECONDS
) -> list[tuple[Path, np.ndarray, int]]:
    """(path, samples, rate) of every file the audio core reads; the others are skipped with a
    warning naming the file and the reason (a training set survives one bad file). Only the
    first ``keep_seconds`` of each file are decoded (all a Mirage half can hold), so memory
    follows what is used, not the files' lengths."""
    out = []
    for f in files:
        try:
            audio = read_audio(f, raw_rate=raw_rate, keep_seconds=keep_seconds)
        except InputError as exc:
            log.warning("skipped %s", exc)
            continue
        if len(audio.samples) < 2:
            log.warning("skipped %s: fewer than 2 samples", f)
            continue
        out.append((f, audio.samples, int(audio.rate)))
    return drop_companions(out)


def drop_companions(
    items: list[tuple[Path, np.ndarray, int]],
) -> list[tuple[Path, np.ndarray, int]]:
    """Read each sound once: a headerless ``.pcm``/``.raw`` file whose samples are exactly those
    of a file with a header beside it, of the same name (``kick.pcm`` beside ``kick.wav``, as
    ``miragen generate`` and ``miragen convert`` write every sound), is the same sound, and only
    the file with the header (which knows its rate) is kept. Same-named files that differ are
    both kept."""
    headered = {
        (f.parent, f.stem): (f, x) for f, x, _ in items if f.suffix.lower() not in RAW_SUFFIXES
    }
    kept, dropped = [], []
    for f, x, r in items:
        twin = headered.get((f.parent, f.stem)) if f.suffix.lower() in RAW_SUFFIXES else None
        if twin is not None and np.array_equal(twin[1], x):
            dropped.append((f, twin[0]))
        else:
            kept.append((f, x, r))
    if dropped:
        log.info(
            "%d headerless file(s) hold the same sounds as the files beside them of the same name "
            "(e.g. %s and %s): each sound read once, from the file with the header",
            len(dropped),
            *dropped[0],
        )
    return kept


def load_dataset(
    folder: str | Path,
    mode: str = "cycle",
    *,
    rate: int = 29411,
    raw_rate: int = 29411,
    cycle_len: int = 256,
    max_len: int = 65536,
    only_class: str | None = None,
) -> Dataset:
    """Load ``folder`` as a dataset; unreadable files are skipped with a warning naming them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MiragenError(f"{folder}: not a folder of training sounds")
    groups: dict[str, list[Path]] = {}
    top = list_audio_files(folder)
    if top:
        groups[folder.name or "default"] = top
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = list_audio_files(sub)
        if files:
            groups[sub.name] = files
    if only_class is not None:
        if only_class not in groups:
            raise MiragenError(
                f"{folder}: no class '{only_class}' "
                f"(classes: {', '.join(sorted(groups)) or 'none'})"
            )
        groups = {only_class: groups[only_class]}
    ds = Dataset(mode, rate, cycle_len=cycle_len)
    for cls, files in groups.items():
        waves, names = [], []
        for f, x, src_rate in read_sounds(files, raw_rate=raw_rate):
            if mode == "cycle":
                try:
                    w = cycle_from_wave(x, cycle_len)
                except ValueError as exc:
                    log.warning("skipped %s: %s", f, exc)
                    continue
            else:
                w = resample_head(x, src_rate, rate, max_len).astype(np.float32)
            waves.append(w)
            names.append(f.name)
        if waves:
            ds.classes[cls] = waves
            ds.names[cls] = names
    if len(ds) == 0:
        raise MiragenError(f"{folder}: no usable training sounds found")
    return ds
