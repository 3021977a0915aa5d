"""The engine interface every generator implements.

An *engine* trains on a :class:`~miragen.corpus.dataset.Dataset` and returns a
:class:`Model`; a model draws new float32 waves in [-1, 1] for a class. Models live in a folder
holding ``model.json`` (engine name, mode, classes, lengths, rate, metadata) beside the
engine's own files, so ``load_model`` can pick the engine without importing every engine.

Heavy libraries (torch, pygan, mxnet) are imported inside the engine modules only.
"""

from __future__ import annotations

import importlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import EngineError
from ..fsutil import atomic_write_text
from .options import EngineOptions, OptionError, config_sets

MODEL_META = "model.json"

# engine name -> "module:Class"; the module is imported only when the engine is used.
ENGINES: dict[str, str] = {
    "wavegan": "miragen.engines.wavegan:WaveGANEngine",
    "pygan": "miragen.engines.pygan_engine:PyGANEngine",
}


@dataclass
class Budget:
    """How long to train: wall-clock seconds and/or a step count (whichever ends first)."""

    seconds: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.steps is None:
            raise ValueError("a budget needs seconds or steps")
        self._t0 = time.monotonic()

    def restart(self) -> None:
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def done(self, step: int) -> bool:
        if self.steps is not None and step >= self.steps:
            return True
        return self.seconds is not None and self.elapsed() >= self.seconds


@dataclass
class Progress:
    """One progress report from ``fit``: called every few steps."""

    step: int
    elapsed_s: float
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


ProgressFn = Callable[[Progress], None]


class Model(ABC):
    """A trained generator."""

    engine: str = ""

    def __init__(
        self,
        mode: str,
        classes: list[str],
        lengths: dict[str, int],
        rate: int,
        meta: dict[str, Any] | None = None,
    ):
        self.mode = mode
        self.classes = list(classes)
        self.lengths = dict(lengths)  # class -> samples per generated wave
        self.rate = int(rate)
        self.meta: dict[str, Any] = dict(meta or {})

    def resolve_class(self, cls: str | None) -> str:
        if cls is None:
            return self.classes[0]
        if cls not in self.classes:
            raise EngineError(
                f"class '{cls}' is not in this model (it knows: {', '.join(self.classes)})"
            )
        return cls

    @abstractmethod
    def sample(self, n: int, cls: str | None = None, seed: int | None = None) -> list[np.ndarray]:
        """Draw ``n`` new waves (float32, 1-D, values in [-1, 1]) of class ``cls``."""

    @abstractmethod
    def _save_files(self, folder: Path) -> None:
        """Write the engine's own files into ``folder`` (model.json is written by ``save``)."""

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_files(folder)
        meta = {
            "engine": self.engine,
            "mode": self.mode,
            "classes": self.classes,
            "lengths": self.lengths,
            "rate": self.rate,
            "meta": self.meta,
        }
        atomic_write_text(folder / MODEL_META, json.dumps(meta, indent=2, sort_keys=True))
        return folder

    @classmethod
    @abstractmethod
    def _load_files(cls, folder: Path, header: dict[str, Any]) -> "Model":
        """Rebuild the model from ``folder`` given its parsed model.json."""


class Engine(ABC):
    """Trains a model. ``fit`` must resume from ``checkpoint_dir`` when it holds a checkpoint."""

    name: str = ""
    # the engine's typed options (a frozen dataclass); None: a plain dict (test doubles)
    options_class: type[EngineOptions] | None = None

    def __init__(self, **options: Any):
        self.options = self.read_options(options)

    @classmethod
    def read_options(cls, options: dict[str, Any]) -> Any:
        """``options`` (text from ``--set`` or typed values) as the engine's options, checked:
        a bad key or value is refused here, before anything trains."""
        if cls.options_class is None:
            return dict(options)
        return cls.options_class.from_mapping(options)

    @classmethod
    def read_values(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Only the given ``values``, typed by the options class (a sweep's grid values)."""
        if cls.options_class is None:
            return dict(values)
        return cls.options_class.read_values(values)

    @abstractmethod
    def fit(
        self, dataset: "Dataset", budget: Budget, progress: ProgressFn | None, checkpoint_dir: Path
    ) -> Model: ...


def engine_class(name: str) -> type[Engine]:
    target = ENGINES.get(name)
    if target is None:
        raise EngineError(f"unknown engine '{name}' (known: {', '.join(sorted(ENGINES))})")
    module_name, cls_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)


def config_options(engine: str, text: str, source: str = "train.set") -> dict[str, str]:
    """The configuration's ``train.set`` for ``engine``: parsed, and checked by the engine's
    options (OptionError naming ``source`` for a key or value it refuses)."""
    sets = config_sets(text, source)
    try:
        engine_class(engine).read_options(sets)
    except OptionError as exc:
        raise OptionError(f"{source}: {exc}") from None
    return sets


def training_options(
    train: dict[str, Any], threads: int, source: str = "train.set"
) -> dict[str, Any]:
    """An engine's options from the configuration's ``[train]``: device, ``threads`` and
    checkpoints, then ``train.set``, which may override any of them (the daemon's trainings and
    ``miragen train`` alike)."""
    return {
        "device": train["device"],
        "threads": threads,
        "checkpoint_every": train["checkpoint_every"],
        **config_options(train["engine"], train["set"], source),
    }


def read_header(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / MODEL_META
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(f"{folder}: not a Miragen model folder (no {MODEL_META})") from None
    except (OSError, ValueError) as exc:
        raise EngineError(f"{path}: unreadable model description ({exc})") from None
    if not isinstance(header, dict) or header.get("engine") not in ENGINES:
        raise EngineError(
            f"{path}: unknown engine {header.get('engine') if isinstance(header, dict) else None!r}"
        )
    return header


def load_model(folder: str | Path) -> Model:
    """Load any saved model; the engine is read from model.json."""
    folder = Path(folder)
    header = read_header(folder)
    engine = engine_class(header["engine"])
    model_cls: type[Model] = getattr(engine, "model_class")
    return model_cls._load_files(folder, header)


from ..corpus.dataset import Dataset  # noqa: E402  (type used in signatures above)
