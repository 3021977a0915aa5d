"""One-shots as magnitude spectrograms, phase reconstructed afterwards (after SpecGAN, Donahue,
McAuley & Puckette 2019): the comparison design of issue 17 (``oneshot_design=spec``).

The generator (:class:`SpecGenerator`) draws the power spectrogram of the sound: one
512-point frame every 256 samples, every bin, from the same frame-rate trunk as the synthesiser.
In training nothing is turned into samples: the discriminator reads the spectrogram through
:meth:`synth.SpecDiscriminator.from_power` (the real sounds' through their STFT), and the
generator's hinged terms read the judge's features from it (:meth:`SpecGenerator.features`).
Samples come at generation (and for the judged snapshots) by Griffin-Lim phase reconstruction
(Griffin & Lim 1984; :data:`GL_ITERATIONS` iterations from random phase): the cost this design
pays, and its known weakness — a reconstructed phase smears sharp attacks and makes steady tones
slightly rough.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .loss import OneshotFeatures
from .networks import length_mask, peak_normalise
from .synth import HOP, N_FFT, ControlTrunk

GL_ITERATIONS = 32
LOG_MIN, LOG_MAX = -12.0, 10.0  # natural-log power range of a bin (a full-scale sine ≈ 9.7)


class SpecGenerator(nn.Module):
    """z (+ class embedding, + the wanted length) → power spectrogram (N, bins, frames + 1);
    ``forward`` returns samples (N, 1, L) by Griffin-Lim (no gradient through it)."""

    def __init__(self, length: int, n_classes: int = 1, *, rate: int, z_dim=64, width=16):
        super().__init__()
        if length % HOP or length // HOP < 4:
            raise ValueError(f"spec length {length} must be a multiple of {HOP}, at least 4 frames")
        self.length, self.rate, self.z_dim = int(length), int(rate), int(z_dim)
        self.mode, self.output, self.n_classes = "oneshot", "spec", n_classes
        self.frames = self.length // HOP
        self.bins = N_FFT // 2 + 1
        self.trunk = ControlTrunk(self.frames, n_classes, z_dim, width)
        self.head = nn.Conv1d(self.trunk.ch, self.bins, 1)
        with torch.no_grad():
            self.head.bias.fill_(LOG_MIN / 2)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.judge = OneshotFeatures(self.rate)  # the judge's features, read from power

    def power(self, z, y=None, length_frac=None) -> torch.Tensor:
        if length_frac is None:
            length_frac = torch.ones(z.shape[0], device=z.device)
        _, seq = self.trunk(z, y, length_frac)
        logp = LOG_MIN + (LOG_MAX - LOG_MIN) * torch.sigmoid(self.head(seq) / 4)
        p = torch.exp(logp)  # (N, bins, frames)
        # frame i is centred on sample i·HOP: past the wanted length the sound is silent
        centres = torch.arange(self.frames + 1, device=z.device, dtype=torch.float32) * HOP
        mask = ((length_frac.view(-1, 1) * self.length - centres) / HOP).clamp(0, 1)
        p = torch.cat([p, p[..., -1:]], dim=-1) * mask.unsqueeze(1)
        return p

    def features(self, p: torch.Tensor) -> torch.Tensor:
        """The judge's one-shot features read from a power spectrogram (the sound is cut at its
        start: the judge's frame j, samples j·HOP … j·HOP + 512, is the centred frame j + 1).
        Levels as the judge's, whose sounds are peak-normalised: the discriminator holds the
        generator's levels to the real sounds', which are peak-normalised too."""
        return self.judge.from_power(p[..., 1:])

    def griffin_lim(self, p: torch.Tensor, iterations: int = GL_ITERATIONS) -> torch.Tensor:
        mag = p.sqrt()
        phase = torch.rand_like(mag) * 2 * math.pi
        spec = torch.polar(mag, phase)
        x = None
        for _ in range(iterations):
            x = torch.istft(spec, N_FFT, HOP, window=self.window, center=True, length=self.length)
            s = torch.stft(x, N_FFT, HOP, window=self.window, center=True, return_complex=True)
            spec = mag * torch.exp(1j * torch.angle(s))
        return torch.istft(spec, N_FFT, HOP, window=self.window, center=True, length=self.length)

    def forward(self, z, y=None, length_frac=None) -> torch.Tensor:
        if length_frac is None:
            length_frac = torch.ones(z.shape[0], device=z.device)
        with torch.no_grad():
            x = self.griffin_lim(self.power(z, y, length_frac)).unsqueeze(1)
        x = x * length_mask(length_frac, self.length)
        return peak_normalise(x, remove_dc=False)
