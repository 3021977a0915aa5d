"""The native 1-D GAN engine (WaveGAN-style networks, small-data recipe).

See docs/wavegan.md for the recipe, the options and the measured figures. Importing this
package does not import torch: the trainer (``train.py``) is loaded when training starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Budget, Engine, ProgressFn
from .model import WaveGANModel
from .options import WaveGANOptions


class WaveGANEngine(Engine):
    name = "wavegan"
    model_class = WaveGANModel
    options_class = WaveGANOptions
    options: WaveGANOptions

    def __init__(self, snapshot_hook=None, **options: Any):
        """``snapshot_hook``: called (snapshot model, step, elapsed s, the trainer's figures) at
        every judged snapshot (bench/quality.py traces a run with it)."""
        super().__init__(**options)
        self.snapshot_hook = snapshot_hook

    def fit(
        self, dataset, budget: Budget, progress: ProgressFn | None, checkpoint_dir: Path
    ) -> WaveGANModel:
        from .train import fit  # torch

        return fit(
            dataset, budget, progress, Path(checkpoint_dir), self.options, self.snapshot_hook
        )


__all__ = ["WaveGANEngine", "WaveGANModel", "WaveGANOptions"]
