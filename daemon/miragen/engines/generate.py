"""The shared generate pipeline: draw candidates → candidate gate → Mirage 8-bit → files.

Every engine's model goes through here (CLI ``miragen generate`` and the daemon alike):

1. draw ``n × generate.oversample`` candidates from the model (``n`` when the gate is off);
2. the judge's candidate gate (:func:`miragen.judge.gate.gate_candidates`) drops silent,
   clipped, copied and duplicate candidates and keeps a stratified sample of the rest (one
   from each of ``n`` k-means groups), as varied as what the model drew;
3. each kept candidate is prepared with :func:`miragen.audio.mirage8.prepare` (cycles keep
   their exact length: one 256-point cycle is one page) and written as ``.pcm``, ``.wav`` and
   ``.png`` (atomically, through :func:`miragen.audio.convert.write_outputs`).

The training waves the gate needs come from ``train_waves`` or, when not given, from the
model folder's reference file (:data:`REFERENCE`, written by ``miragen train``): a compact
8-bit copy of the training set, so a model copied to another machine can still be gated.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import config as configmod
from ..audio.convert import write_outputs
from ..audio.loops import loop_report
from ..audio.mirage8 import Prepared, prepare
from ..errors import MiragenError
from ..fsutil import atomic_write_bytes
from ..judge.gate import gate_candidates
from .base import Model

log = logging.getLogger(__name__)

REFERENCE = "reference.npz"
REFERENCE_MAX_PER_CLASS = 256
REFERENCE_MAX_SAMPLES = 65536


@dataclass
class GenerateResult:
    files: list[Path]  # every file written (.pcm, .wav, .png)
    pcm: list[Path]  # the Mirage-ready files, best first
    candidates: int  # candidates drawn
    kept: list[int]  # candidate indices written, in file order
    rejected: dict[int, str] = field(default_factory=dict)  # candidate index -> reason
    gate: bool = True
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    # per written file (same order as ``pcm``): the gate's figures for it, and the click and
    # level step of the loop audio.loops.find_loop gives it (None: loop off; docs/audio.md)
    figures: list[dict[str, float | None]] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        """How many fewer files than asked were written."""
        return max(0, self._asked - len(self.pcm))

    _asked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [str(f) for f in self.files],
            "pcm": [str(f) for f in self.pcm],
            "candidates": self.candidates,
            "kept": self.kept,
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
            "gate": self.gate,
            "summary": self.summary,
            "warnings": self.warnings,
            "figures": {str(p): f for p, f in zip(self.pcm, self.figures)},
        }


def save_reference(
    folder: str | Path, waves_by_class: dict[str, Sequence[np.ndarray]], seed: int = 0
) -> Path:
    """Store a compact 8-bit copy of the training waves in a model folder (for the gate).

    At most :data:`REFERENCE_MAX_PER_CLASS` waves per class (a random subset), each cut at
    :data:`REFERENCE_MAX_SAMPLES` samples, as signed 8-bit integers.
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for ci, (cls, waves) in enumerate(sorted(waves_by_class.items())):
        idx = np.arange(len(waves))
        if len(idx) > REFERENCE_MAX_PER_CLASS:
            idx = np.sort(rng.choice(idx, REFERENCE_MAX_PER_CLASS, replace=False))
        for j, i in enumerate(idx):
            w = np.asarray(waves[i], dtype=np.float32)[:REFERENCE_MAX_SAMPLES]
            arrays[f"{ci}/{j}"] = np.clip(np.round(w * 127.0), -127, 127).astype(np.int8)
        arrays[f"{ci}/name"] = np.array(cls)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(Path(folder) / REFERENCE, buf.getvalue())


def load_reference(folder: str | Path) -> dict[str, list[np.ndarray]]:
    """The reference waves of a model folder, by class ({} when the folder has none)."""
    path = Path(folder) / REFERENCE
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            names = {k.split("/")[0]: str(z[k]) for k in keys if k.endswith("/name")}
            out: dict[str, list[np.ndarray]] = {n: [] for n in names.values()}
            waves = sorted(
                (k for k in keys if not k.endswith("/name")),
                key=lambda k: (k.split("/")[0], int(k.split("/")[1])),
            )
            for k in waves:
                out[names[k.split("/")[0]]].append(z[k].astype(np.float32) / 127.0)
    except (OSError, ValueError, KeyError) as exc:
        raise MiragenError(f"{path}: unreadable reference waves ({exc})") from None
    return out


def generate_to_folder(
    model: Model,
    n: int,
    out_dir: str | Path,
    *,
    cls: str | None = None,
    cfg: dict[str, Any] | None = None,
    gate: bool = True,
    train_waves: Sequence[np.ndarray] | None = None,
    seed: int | None = None,
    stem: str | None = None,
) -> GenerateResult:
    """Draw, gate, prepare and write ``n`` new wavesamples of class ``cls`` into ``out_dir``."""
    if n < 1:
        raise MiragenError(f"asked for {n} sounds: at least 1 is needed")
    cfg = cfg or configmod.defaults()
    a, g = cfg["audio"], cfg["generate"]
    cls = model.resolve_class(cls)
    out_dir = Path(out_dir)
    draw = n * int(g["oversample"]) if gate else n
    candidates = model.sample(draw, cls, seed=seed)
    kind = model.mode
    if gate:
        kept, rejected, summary, nearest = _gate(
            model, candidates, kind, cls, n, g, train_waves, seed
        )
    else:
        nearest = {}
        kept, rejected, summary = (
            list(range(len(candidates))),
            {},
            f"gate off: {len(candidates)} written",
        )
    rng = np.random.default_rng(seed)
    stem = stem or f"{cls}"
    files: list[Path] = []
    pcm: list[Path] = []
    warnings: list[str] = []
    loops: list[dict[str, float | None]] = []
    for k, idx in enumerate(kept):
        x = np.asarray(candidates[idx], dtype=np.float32)
        prep = _prepare(x, f"candidate {idx}", kind, model.rate, a, rng)
        warnings.extend(f"candidate {idx}: {w}" for w in prep.warnings)
        _, loop = loop_report(prep.data, rate=a["rate"], length=prep.samples or None)
        loops.append({key: loop[key] for key in ("loop_click_db", "loop_level_db")})
        written = write_outputs(prep, out_dir, f"{stem}-{k + 1:03d}", a["rate"])
        files.extend(written)
        pcm.append(next(p for p in written if p.suffix == ".pcm"))
    result = GenerateResult(files, pcm, len(candidates), kept, rejected, gate, summary, warnings)
    result.figures = [
        {**({"distance": round(nearest[i], 3)} if i in nearest else {}), **loop}
        for i, loop in zip(kept, loops)
    ]
    result._asked = n
    return result


def _gate(
    model: Model,
    candidates: Sequence[np.ndarray],
    kind: str,
    cls: str,
    n: int,
    g: dict[str, Any],
    train_waves: Sequence[np.ndarray] | None,
    seed: int | None,
) -> tuple[list[int], dict[int, str], str, dict[int, float]]:
    """The candidate gate against the training waves (given, else the model's reference
    file): the kept candidates, the rejected ones with why, a summary, and each ranked
    candidate's nearest distance to the training set in units of the typical one."""
    if train_waves is None:
        folder = getattr(model, "folder", None)
        train_waves = load_reference(folder).get(cls) if folder else None
    if not train_waves:
        raise MiragenError(
            f"class '{cls}': the gate needs the training waves (none given and no {REFERENCE} "
            "in the model folder); use --gate off"
        )
    res = gate_candidates(
        candidates,
        list(train_waves),
        kind,
        keep=n,
        copy_factor=g["copy_factor"],
        duplicate_factor=g["duplicate_factor"],
        rate=model.rate,
        seed=seed or 0,
    )
    summary = res.summary()
    log.info("gate for %s: %s", cls, summary)
    return list(res.kept), dict(res.rejected), summary, dict(res.nearest)


def _prepare(
    x: np.ndarray, source: str, kind: str, rate: int, a: dict[str, Any], rng: np.random.Generator
) -> Prepared:
    """One candidate (``x`` at the model's ``rate``) as Mirage 8-bit data at ``audio.rate``."""
    if kind == "cycle":  # exactly one cycle: no resampling, no cutting, no fade
        return prepare(
            x,
            a["rate"],
            target_rate=a["rate"],
            max_bytes=a["max_bytes"],
            dither=a["dither"],
            fade_ms=0.0,
            rng=rng,
            source=source,
        )
    return prepare(
        x,
        rate,
        target_rate=a["rate"],
        max_bytes=a["max_bytes"],
        dither=a["dither"],
        strict=False,
        fade_ms=a["fade_ms"],
        rng=rng,
        source=source,
    )
