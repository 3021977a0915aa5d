"""The native 1-D GAN engine (WaveGAN-style networks, small-data recipe).

See docs/wavegan.md for the recipe, the options and the measured figures.
"""

from __future__ import annotations

from pathlib import Path

from ..base import Budget, Engine, ProgressFn
from .model import WaveGANModel


class WaveGANEngine(Engine):
    name = "wavegan"
    model_class = WaveGANModel

    def __init__(self, **options):
        from .train import resolve_options

        resolve_options(options)  # refuse unknown options before any training starts
        super().__init__(**options)

    def fit(
        self, dataset, budget: Budget, progress: ProgressFn | None, checkpoint_dir: Path
    ) -> WaveGANModel:
        from .train import fit

        return fit(dataset, budget, progress, Path(checkpoint_dir), self.options)


__all__ = ["WaveGANEngine", "WaveGANModel"]
