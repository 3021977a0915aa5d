"""GAN losses: non-saturating logistic loss with an R1 penalty (default), and WGAN-GP (the
WaveGAN paper's recipe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss_ns(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def g_loss_ns(d_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-d_fake).mean()


def r1_penalty(d_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean squared gradient norm of D at the real samples (Mescheder et al. 2018)."""
    (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def d_loss_wgan(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return d_fake.mean() - d_real.mean()


def g_loss_wgan(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.mean()


def gradient_penalty(
    disc, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
) -> torch.Tensor:
    """WGAN-GP: (‖∇D(x̂)‖ − 1)² on random interpolates (Gulrajani et al. 2017)."""
    a = torch.rand(real.shape[0], 1, 1, device=real.device)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    out = disc(x, y)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
