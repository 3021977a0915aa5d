"""One-shots from a differentiable synthesiser: the GAN generates a short control sequence, a
fixed synthesiser renders it as audio, and the discriminator hears the rendered sound through
its spectrogram (after DDSP, Engel et al. 2020).

Why: a raw-waveform generator for a 16,384-sample one-shot is a deep stack of convolutions
over every sample, and it has to learn from ~100 sounds what a decaying partial or a burst of
filtered noise is. Drums and hits are, to a good approximation, a few damped, gliding
sinusoids (the body of a kick or a tom, the modes of a bell) over noise whose spectrum changes
frame by frame (a snare's wires, a hat, a breath). The synthesiser knows that; the networks
only choose the controls, at the frame rate (one frame per :data:`HOP` samples), so their cost
does not grow with the number of samples — only the rendering (a few FFTs and a sum of
sinusoids per sound) does.

The generator's controls, per sound:

- **Partials** (:data:`PARTIALS` of them): a start frequency, an end frequency (a glide of up to
  three octaves down or one up, as a kick's pitch falls) reached exponentially with a time
  constant, an initial phase, and an amplitude per frame (linearly interpolated between
  frames). Frequencies that would alias are muted.
- **Filtered noise**: a gain per frame in each of :data:`NOISE_BANDS` mel-spaced bands, applied
  to white noise in the short-time Fourier domain (512-point Hann frames, hop 256) and turned
  back into samples.

The sound starts at sample 0 (training sounds are cut at their onset), so there is nothing
before the attack to ring; it ends with the length mask's short fade, on zero.

The discriminator (:class:`SpecDiscriminator`) sees a log-mel spectrogram of the whole sound
(64 bands, hop 256) and, for the attack, a fine spectrogram (64-point frames, hop 32) of its
first 2,048 samples; a convolution over time on each, minibatch standard deviation and the
class projection head as in the waveform discriminator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...judge.features import mel_filterbank
from .networks import MinibatchStd, length_mask, peak_normalise

HOP = 256
N_FFT = 512
PARTIALS = 8
NOISE_BANDS = 40
F_MIN = 30.0  # Hz: lowest start frequency of a partial
GLIDE_DOWN = 8.0  # an end frequency down to 1/8 of the start (three octaves)
GLIDE_UP = 2.0  # or up to one octave above it
GLIDE_MIN_S, GLIDE_MAX_S = 0.002, 1.0
D_MELS = 64
ATTACK_SAMPLES = 2048
ATTACK_FFT, ATTACK_HOP = 64, 32
PARTIAL_DECIMATION = 2  # partials are rendered at half the rate (below 7.35 kHz at 29.4 kHz)


def _scaled_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's amplitude nonlinearity: positive, 0 … 2, with a usable gradient near silence."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def _bands_to_bins(rate: int, bands: int) -> torch.Tensor:
    """(bins, bands): each STFT bin's gain as a weighted mean of the mel bands over it."""
    fb = mel_filterbank(rate, N_FFT, bands)  # (bands, bins)
    w = fb / np.maximum(fb.sum(axis=0, keepdims=True), 1e-9)
    return torch.as_tensor(w.T, dtype=torch.float32)


class ControlTrunk(nn.Module):
    """z (+ class embedding, + the wanted length) → a global vector and a sequence at the frame
    rate (N, 4·width, frames): a dense layer, then convolutions over time, doubling the frame
    rate from 4 frames up. Shared by the synthesiser and the spectrogram designs."""

    def __init__(self, frames: int, n_classes: int, z_dim: int, width: int):
        super().__init__()
        emb = 16 if n_classes > 1 else 0
        self.embed = nn.Embedding(n_classes, emb) if emb else None
        ch = 4 * width
        self.f0, self.ch = 4, ch
        self.fc = nn.Sequential(nn.Linear(z_dim + emb + 1, 4 * ch), nn.LeakyReLU(0.2))
        self.to_seq = nn.Linear(4 * ch, ch * self.f0)
        ups = int(round(math.log2(frames / self.f0)))
        if self.f0 * 2**ups != frames:
            raise ValueError(f"{frames} frames is not 4 × 2^k")
        self.blocks = nn.ModuleList(
            nn.Conv1d(ch + (1 if i == 0 else 0), ch, 5, padding=2) for i in range(ups + 1)
        )

    def forward(self, z, y, length_frac) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [z]
        if self.embed is not None:
            parts.append(self.embed(y))
        parts.append(length_frac.view(-1, 1).to(z.dtype))
        h = self.fc(torch.cat(parts, dim=1))
        seq = F.leaky_relu(self.to_seq(h).view(z.shape[0], self.ch, self.f0), 0.2)
        for i, conv in enumerate(self.blocks):
            if i == 0:  # the time axis knows where it is: a ramp 0 → 1 over the frames
                ramp = torch.linspace(0, 1, seq.shape[-1], device=z.device)
                seq = torch.cat([seq, ramp.view(1, 1, -1).expand(seq.shape[0], 1, -1)], dim=1)
            else:
                seq = F.interpolate(seq, scale_factor=2, mode="linear", align_corners=False)
            seq = F.leaky_relu(conv(seq), 0.2)
        return h, seq


class SynthGenerator(nn.Module):
    """z (+ class embedding, + the wanted length) → synthesiser controls → audio (N, 1, L)."""

    def __init__(
        self,
        length: int,
        n_classes: int = 1,
        *,
        rate: int,
        z_dim: int = 64,
        width: int = 16,
        partials: int = PARTIALS,
        noise_bands: int = NOISE_BANDS,
    ):
        super().__init__()
        if length % HOP or length // HOP < 4:
            raise ValueError(f"synth length {length} must be a multiple of {HOP}, at least 4 frames")
        self.length, self.rate, self.z_dim = int(length), int(rate), int(z_dim)
        self.mode, self.output, self.n_classes = "oneshot", "synth", n_classes
        self.frames = self.length // HOP
        self.partials, self.noise_bands = int(partials), int(noise_bands)
        self.trunk = ControlTrunk(self.frames, n_classes, z_dim, width)
        ch = self.trunk.ch
        self.frame_head = nn.Conv1d(ch, partials + noise_bands, 1)
        self.global_head = nn.Linear(4 * ch, partials * 4)
        self.register_buffer("band_w", _bands_to_bins(self.rate, noise_bands), persistent=False)
        # the partials' clock: every PARTIAL_DECIMATION-th sample (they are band-limited below
        # the lower rate's Nyquist frequency, then resampled exactly with an FFT); what lies
        # above, the cymbal's and the hat's shimmer, is noise, which the noise bands render at
        # the full rate
        self.sub_len = self.length // PARTIAL_DECIMATION
        t = torch.arange(self.sub_len, dtype=torch.float32) * PARTIAL_DECIMATION / self.rate
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        with torch.no_grad():  # start quiet
            self.frame_head.bias.fill_(-2.0)

    # ------------------------------------------------------------------ controls
    def controls(self, z, y=None, length_frac=None) -> dict[str, torch.Tensor]:
        if length_frac is None:
            length_frac = torch.ones(z.shape[0], device=z.device)
        h, seq = self.trunk(z, y, length_frac)
        fr = self.frame_head(seq)  # (N, partials + bands, frames)
        g = self.global_head(h).view(z.shape[0], self.partials, 4)
        nyq = self.rate / 2.0
        lo, hi = math.log(F_MIN), math.log(0.9 * nyq)
        f_start = torch.exp(lo + torch.sigmoid(g[..., 0]) * (hi - lo))
        ratio = torch.exp(
            -math.log(GLIDE_DOWN) + torch.sigmoid(g[..., 1]) * math.log(GLIDE_DOWN * GLIDE_UP)
        )
        tau = torch.exp(
            math.log(GLIDE_MIN_S)
            + torch.sigmoid(g[..., 2]) * math.log(GLIDE_MAX_S / GLIDE_MIN_S)
        )
        return {
            "amp": _scaled_sigmoid(fr[:, : self.partials]),  # (N, P, frames)
            "noise": _scaled_sigmoid(fr[:, self.partials :]),  # (N, bands, frames)
            "f_start": f_start,  # (N, P) Hz
            "f_end": f_start * ratio,
            "tau": tau,  # (N, P) s
            "phase": 2 * math.pi * torch.sigmoid(g[..., 3]),
            "frac": length_frac,
        }

    # ------------------------------------------------------------------ rendering
    def _frames_to_samples(self, a: torch.Tensor, length: int) -> torch.Tensor:
        """(N, C, frames) → (N, C, length): linear between frame centres (frame i at i·HOP)."""
        a = torch.cat([a, a[..., -1:]], dim=-1)  # the last frame holds to the end
        hop = length // self.frames
        return F.interpolate(a, size=length + hop, mode="linear", align_corners=True)[
            ..., :length
        ]

    def render_partials(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ amp(t)·sin(phase(t)): the frequency glides f(t) = f_e + (f_s − f_e)·e^(−t/τ), so the
        phase is its closed-form integral A·t + B·e^(−t/τ) + C. Every per-sample tensor here is
        (sounds × partials × samples): the coefficients are folded into as few passes over it
        as possible (this is most of the generator's time)."""
        t = self.t.view(1, 1, -1)
        fs, fe, tau, ph = c["f_start"], c["f_end"], c["tau"], c["phase"]
        two_pi = 2 * math.pi
        a = (two_pi * fe).unsqueeze(-1)
        b = (-two_pi * (fs - fe) * tau).unsqueeze(-1)
        c0 = (two_pi * (fs - fe) * tau + ph).unsqueeze(-1)
        decay = torch.exp(t * (-1.0 / tau).unsqueeze(-1))
        phase = torch.addcmul(torch.addcmul(c0, a, t), b, decay)
        # a glide is monotonic: a partial whose start or end would alias is muted whole
        nyquist = self.rate / 2 / PARTIAL_DECIMATION
        audible = torch.sigmoid((0.95 * nyquist - torch.maximum(fs, fe)) / 50.0)
        amp = c["amp"] * audible.unsqueeze(-1)
        low = (self._frames_to_samples(amp, self.sub_len) * torch.sin(phase)).sum(dim=1)
        if PARTIAL_DECIMATION == 1:
            return low
        spec = torch.fft.rfft(low, dim=-1)  # exact band-limited resampling to the full rate
        return torch.fft.irfft(spec, n=self.length, dim=-1) * PARTIAL_DECIMATION

    def render_noise(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        n = c["noise"].shape[0]
        white = torch.randn(n, self.length, device=c["noise"].device)
        spec = torch.stft(
            white, N_FFT, HOP, window=self.window, center=True, return_complex=True
        )  # (N, bins, frames + 1)
        gains = torch.einsum("kb,nbf->nkf", self.band_w, c["noise"])
        gains = torch.cat([gains, gains[..., -1:]], dim=-1)[..., : spec.shape[-1]]
        return torch.istft(
            spec * gains, N_FFT, HOP, window=self.window, center=True, length=self.length
        )

    def render(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        x = (self.render_partials(c) + self.render_noise(c)).unsqueeze(1)
        x = x * length_mask(c["frac"], self.length)
        return peak_normalise(x, remove_dc=False)

    def forward(self, z, y=None, length_frac=None) -> torch.Tensor:
        return self.render(self.controls(z, y, length_frac))


class SpecDiscriminator(nn.Module):
    """Real or generated? Judged on the log-mel spectrogram of the whole sound and (``attack``)
    a fine spectrogram of its attack (see the module's docstring). :meth:`from_power` takes the
    power spectrogram directly (the spectrogram design's generator has no waveform in training).
    """

    def __init__(
        self,
        length: int,
        n_classes: int = 1,
        *,
        rate: int,
        width: int = 16,
        mbstd: bool = True,
        attack: bool = True,
    ):
        super().__init__()
        self.length = int(length)
        fb = mel_filterbank(int(rate), N_FFT, D_MELS)
        self.register_buffer("mel", torch.as_tensor(fb, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("awindow", torch.hann_window(ATTACK_FFT), persistent=False)
        ch = 4 * width
        frames = self.length // HOP + 1
        self.body = self._stack(D_MELS, ch, frames)
        a_frames = min(ATTACK_SAMPLES, self.length) // ATTACK_HOP + 1
        self.attack = self._stack(ATTACK_FFT // 2 + 1, ch // 2, a_frames) if attack else None
        self.mbstd = MinibatchStd() if mbstd else None
        feat = ch + (ch // 2 if attack else 0) + (1 if mbstd else 0)
        self.fc = nn.Sequential(nn.Linear(feat, ch), nn.LeakyReLU(0.2))
        self.out = nn.Linear(ch, 1)
        self.embed = nn.Embedding(n_classes, ch) if n_classes > 1 else None

    @staticmethod
    def _stack(cin: int, ch: int, frames: int) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Conv1d(cin, ch, 3, padding=1), nn.LeakyReLU(0.2)]
        while frames > 4:
            layers += [nn.Conv1d(ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            frames = (frames + 2 - 4) // 2 + 1
        layers.append(nn.AdaptiveAvgPool1d(1))
        return nn.Sequential(*layers)

    def power(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) → the power spectrogram (N, bins, frames): 512-point Hann, hop 256."""
        s = torch.stft(x[:, 0], N_FFT, HOP, window=self.window, center=True, return_complex=True)
        return s.real**2 + s.imag**2

    def attack_view(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.stft(
            x[:, 0, :ATTACK_SAMPLES],
            ATTACK_FFT,
            ATTACK_HOP,
            window=self.awindow,
            center=True,
            return_complex=True,
        )
        return torch.log10(a.real**2 + a.imag**2 + 1e-4) / 2  # dB / 20

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.from_power(
            self.power(x), y, self.attack_view(x) if self.attack is not None else None
        )

    def from_power(
        self, p: torch.Tensor, y: torch.Tensor | None = None, attack: torch.Tensor | None = None
    ) -> torch.Tensor:
        body = torch.log10(torch.einsum("mb,nbf->nmf", self.mel, p) + 1e-4) / 2
        parts = [self.body(body).flatten(1)]
        if self.attack is not None:
            parts.append(self.attack(attack).flatten(1))
        h = torch.cat(parts, dim=1)
        if self.mbstd is not None:
            h = self.mbstd(h.unsqueeze(2)).flatten(1)
        h = self.fc(h)
        out = self.out(h)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1, keepdim=True) / math.sqrt(h.shape[1])
        return out.view(-1)
