"""Differentiable augmentation (DiffAugment), applied alike to real and generated batches.

Every transform is differentiable in its input, so the generator learns through it; applying the
same random family to both sides keeps the discriminator from learning the augmentations
themselves (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

- both modes: random gain, random polarity, 8-bit dither (TPDF noise of one 8-bit step);
- ``cycle``: random circular shift (a single cycle has no start point);
- ``oneshot``: small time shifts (a few ms, zero filled) and random time masks.
"""

from __future__ import annotations

import torch


def _gain(x: torch.Tensor, lo: float = 0.5, hi: float = 1.0) -> torch.Tensor:
    g = torch.empty(x.shape[0], 1, 1, device=x.device).uniform_(lo, hi)
    return x * g


def _polarity(x: torch.Tensor) -> torch.Tensor:
    s = torch.randint(0, 2, (x.shape[0], 1, 1), device=x.device).float() * 2 - 1
    return x * s


def _dither(x: torch.Tensor, step: float = 2.0 / 255.0) -> torch.Tensor:
    return x + (torch.rand_like(x) - torch.rand_like(x)) * step


def circular_shift(x: torch.Tensor) -> torch.Tensor:
    """Rotate every item by its own random offset (gather keeps it differentiable)."""
    n, _, length = x.shape
    offs = torch.randint(0, length, (n, 1, 1), device=x.device)
    idx = (torch.arange(length, device=x.device).view(1, 1, -1) + offs) % length
    return torch.gather(x, 2, idx.expand_as(x))


def _small_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    n, _, length = x.shape
    if max_shift <= 0:
        return x
    offs = torch.randint(-max_shift, max_shift + 1, (n, 1, 1), device=x.device)
    idx = torch.arange(length, device=x.device).view(1, 1, -1) - offs
    valid = ((idx >= 0) & (idx < length)).float()
    return torch.gather(x, 2, idx.clamp(0, length - 1).expand_as(x)) * valid


def _time_mask(x: torch.Tensor, frac: float = 0.1) -> torch.Tensor:
    n, _, length = x.shape
    width = max(1, int(length * frac))
    start = torch.randint(0, max(1, length - width), (n, 1, 1), device=x.device)
    pos = torch.arange(length, device=x.device).view(1, 1, -1)
    keep = ~((pos >= start) & (pos < start + width))
    return x * keep.float()


def diff_augment(
    x: torch.Tensor, mode: str, p: float = 1.0, shift_samples: int = 64
) -> torch.Tensor:
    """Apply the augmentation family of ``mode`` to the batch ``x`` (N, 1, L)."""
    if p <= 0:
        return x
    apply = torch.rand(x.shape[0], 1, 1, device=x.device) < p
    y = _polarity(_gain(x))
    if mode == "cycle":
        y = circular_shift(y)
    else:
        y = _small_shift(y, shift_samples)
        y = torch.where(torch.rand(x.shape[0], 1, 1, device=x.device) < 0.5, _time_mask(y), y)
    y = _dither(y)
    return torch.where(apply, y, x)
