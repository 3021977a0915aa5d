"""One-shots from a differentiable synthesiser: the GAN generates a short control sequence, a
fixed synthesiser renders it as audio, and the discriminator hears the rendered sound through
its spectrogram (after DDSP, Engel et al. 2020).

Why: a raw-waveform generator for a 16,384-sample one-shot is a deep stack of convolutions
over every sample, and it has to learn from ~100 sounds what a decaying partial or a burst of
filtered noise is. Drums and hits are, to a good approximation, a few damped, gliding
sinusoids (the body of a kick or a tom, the modes of a bell) over noise whose spectrum changes
frame by frame (a snare's wires, a hat, a breath), and a click. The synthesiser knows that; the
networks only choose the controls, at the frame rate (one frame per :data:`HOP` samples), so
their cost does not grow with the number of samples; the rendering is one inverse STFT per
sound.

The generator's controls, per sound:

- **Partials** (:data:`PARTIALS` of them): a start frequency, an end frequency (a glide of up to
  three octaves down or one up, as a kick's pitch falls) reached exponentially with a time
  constant, an initial phase, and an amplitude per frame. Written straight into the sound's
  short-time Fourier transform by inverse-FFT additive synthesis (each frame holds the Hann
  window's transform at the partial's frequency and phase, ±:data:`LOBE` bins): a steady
  partial comes out as its sine within -40 dB. Frequencies that would alias are muted.
- **Filtered noise**: a gain per frame in each of :data:`NOISE_BANDS` mel-spaced bands, on
  complex Gaussian frames of the same transform.
- **A click**: white noise, a dull and a bright part with their gains, under an exponential
  decay of 0.2–20 ms, added to the first :data:`TRANSIENT_SAMPLES` samples: an attack
  sharper than a frame.

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
TRANSIENT_SAMPLES = 2048  # the click: noise with its own fast decay, in samples (70 ms)
TRANSIENT_MIN_S, TRANSIENT_MAX_S = 0.0002, 0.02
LOBE = 3  # bins each side of a partial's peak it is written into (what is left out: < -40 dB)


def _scaled_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's amplitude nonlinearity: positive, 0 … 2, with a usable gradient near silence."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def _hann_amplitude(theta: torch.Tensor) -> torch.Tensor:
    """A(θ), real: the transform of the periodic Hann window of N_FFT points is
    W(θ) = e^{−iθN/2}·A(θ) (the window is symmetric about N/2), with
    A(θ) = ½·T(θ) + ¼·T(θ − 2π/N) + ¼·T(θ + 2π/N), T(x) = sin(Nx/2)·cot(x/2) (limit N at 0),
    computed without a 0/0 in either direction of the gradient."""
    d = 2 * math.pi / N_FFT
    out = torch.zeros_like(theta)
    for weight, shift in ((0.5, 0.0), (0.25, -d), (0.25, d)):
        half = (theta + shift) / 2
        s = torch.sin(half)
        small = s.abs() < 1e-6
        safe = torch.where(small, torch.ones_like(s), s)
        num = torch.sin(N_FFT * half)
        t = torch.where(small, N_FFT * torch.cos(N_FFT * half), num * torch.cos(half) / safe)
        out = out + weight * t
    return out


TABLE_BINS = 8  # the Hann amplitude is tabulated over ±8 bins (beyond: < -50 dB, taken as 0)
TABLE_STEPS = 256  # table points per bin (linear interpolation between them)


def _hann_table() -> torch.Tensor:
    u = torch.arange(-TABLE_BINS * TABLE_STEPS, TABLE_BINS * TABLE_STEPS + 1, dtype=torch.float64)
    return _hann_amplitude(u / TABLE_STEPS * (2 * math.pi / N_FFT)).float()


def _lookup(table: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """A at ``u`` bins from the table: linear interpolation, 0 beyond ±TABLE_BINS."""
    pos = (u + TABLE_BINS) * TABLE_STEPS
    inside = (pos >= 0) & (pos < table.numel() - 1)
    pos = pos.clamp(0, table.numel() - 1.001)
    i = pos.detach().floor().long()
    frac = pos - i
    return torch.lerp(table[i], table[i + 1], frac) * inside


def _bands_to_bins(rate: int, bands: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each STFT bin's gain as the weighted mean of the (at most two) mel bands over it:
    (band index, weight), each (bins, 2); a bin under no band gets weight 0."""
    fb = mel_filterbank(rate, N_FFT, bands)  # (bands, bins)
    w = fb / np.maximum(fb.sum(axis=0, keepdims=True), 1e-9)
    idx = np.zeros((w.shape[1], 2), np.int64)
    wt = np.zeros((w.shape[1], 2), np.float32)
    for k in range(w.shape[1]):
        nz = np.flatnonzero(w[:, k] > 0)[:2]
        idx[k, : len(nz)] = nz
        wt[k, : len(nz)] = w[nz, k]
    return torch.as_tensor(idx), torch.as_tensor(wt)


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
            raise ValueError(
                f"synth length {length} must be a multiple of {HOP}, at least 4 frames"
            )
        self.length, self.rate, self.z_dim = int(length), int(rate), int(z_dim)
        self.mode, self.output, self.n_classes = "oneshot", "synth", n_classes
        self.frames = self.length // HOP
        self.partials, self.noise_bands = int(partials), int(noise_bands)
        self.trunk = ControlTrunk(self.frames, n_classes, z_dim, width)
        ch = self.trunk.ch
        self.frame_head = nn.Conv1d(ch, partials + noise_bands, 1)
        self.global_head = nn.Linear(4 * ch, partials * 4 + 3)
        band_idx, band_wt = _bands_to_bins(self.rate, noise_bands)
        self.register_buffer("band_idx", band_idx, persistent=False)
        self.register_buffer("band_wt", band_wt, persistent=False)
        # frame centres in seconds (frame k is centred on sample k·HOP; one past the end)
        t = torch.arange(self.frames + 1, dtype=torch.float32) * HOP / self.rate
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("offsets", torch.arange(-LOBE, LOBE + 1), persistent=False)
        self.register_buffer("hann_table", _hann_table(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        with torch.no_grad():  # start quiet
            self.frame_head.bias.fill_(-2.0)

    # ------------------------------------------------------------------ controls
    def controls(self, z, y=None, length_frac=None) -> dict[str, torch.Tensor]:
        if length_frac is None:
            length_frac = torch.ones(z.shape[0], device=z.device)
        h, seq = self.trunk(z, y, length_frac)
        fr = self.frame_head(seq)  # (N, partials + bands, frames)
        gh = self.global_head(h)
        g = gh[:, : self.partials * 4].view(z.shape[0], self.partials, 4)
        tr = gh[:, self.partials * 4 :]
        nyq = self.rate / 2.0
        lo, hi = math.log(F_MIN), math.log(0.9 * nyq)
        f_start = torch.exp(lo + torch.sigmoid(g[..., 0]) * (hi - lo))
        ratio = torch.exp(
            -math.log(GLIDE_DOWN) + torch.sigmoid(g[..., 1]) * math.log(GLIDE_DOWN * GLIDE_UP)
        )
        tau = torch.exp(
            math.log(GLIDE_MIN_S) + torch.sigmoid(g[..., 2]) * math.log(GLIDE_MAX_S / GLIDE_MIN_S)
        )
        return {
            "amp": _scaled_sigmoid(fr[:, : self.partials]),  # (N, P, frames)
            "noise": _scaled_sigmoid(fr[:, self.partials :]),  # (N, bands, frames)
            "f_start": f_start,  # (N, P) Hz
            "f_end": f_start * ratio,
            "tau": tau,  # (N, P) s
            "phase": 2 * math.pi * torch.sigmoid(g[..., 3]),
            # the transient: a dull and a bright part and their decay time
            "click": _scaled_sigmoid(tr[:, :2] - 3.0),  # (N, 2)
            "click_tau": torch.exp(
                math.log(TRANSIENT_MIN_S)
                + torch.sigmoid(tr[:, 2]) * math.log(TRANSIENT_MAX_S / TRANSIENT_MIN_S)
            ),
            "frac": length_frac,
        }

    # ------------------------------------------------------------------ rendering
    # Everything is written into the short-time Fourier transform (512-point Hann frames, hop
    # 256) and turned into samples by one inverse STFT: the partials by inverse-FFT additive
    # synthesis (Rodet & Depalle 1992: each frame holds the window's transform at the
    # partial's frequency, with the partial's phase at the frame centre, over the main lobe and
    # LOBE bins each side), the noise as complex Gaussian frames shaped by the band gains. The
    # cost per sound is one inverse STFT, whatever the number of partials; a glide is followed
    # frame by frame (every 8.7 ms) and cross-faded by the overlap-add.

    def _amp_frames(self, a: torch.Tensor) -> torch.Tensor:
        """(N, C, frames) → (N, C, frames + 1): the last frame holds to the end."""
        return torch.cat([a, a[..., -1:]], dim=-1)

    def partials_spectrum(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """The partials' STFT (N, bins, frames + 1)."""
        t = self.t.view(1, 1, -1)  # (1, 1, F+1) s
        fs, fe, tau = (c[k].unsqueeze(-1) for k in ("f_start", "f_end", "tau"))
        decay = torch.exp(-t / tau)
        freq = fe + (fs - fe) * decay  # Hz at each frame centre
        phase = 2 * math.pi * (fe * t + (fs - fe) * tau * (1 - decay)) + c["phase"].unsqueeze(-1)
        audible = torch.sigmoid((0.95 * self.rate / 2 - freq) / 50.0)  # mute what would alias
        amp = self._amp_frames(c["amp"]) * audible  # (N, P, F+1)
        omega = 2 * math.pi * freq / self.rate  # rad / sample
        step = 2 * math.pi / N_FFT
        peak = torch.round(omega / step).detach().long()
        bins = peak.unsqueeze(-1) + self.offsets  # (N, P, F+1, K)
        theta = bins.to(omega.dtype) * step
        w = omega.unsqueeze(-1)
        rot = (phase - omega * (N_FFT / 2)).unsqueeze(-1)
        # a·sin(ψ + ω(n − N/2)) windowed, transformed: (a/2i)·[e^{i·rot}·W(θ − ω) −
        # e^{−i·rot}·W(θ + ω)], with W(x) = e^{−ixN/2}·A(x), A tabulated (in bins)
        half_n = N_FFT / 2
        a2 = amp.unsqueeze(-1) / 2
        a_pos = _lookup(self.hann_table, (theta - w) / step)
        a_neg = _lookup(self.hann_table, (theta + w) / step)
        pos = torch.polar(a2 * a_pos, rot - (theta - w) * half_n)
        neg = torch.polar(a2 * a_neg, -rot - (theta + w) * half_n)
        val = (pos - neg) * -1j  # ÷ i
        inside = (bins >= 0) & (bins < N_FFT // 2 + 1)
        val = val * inside
        n, p, f, k = val.shape
        idx = bins.clamp(0, N_FFT // 2).permute(0, 2, 1, 3).reshape(n, f, p * k)
        out = torch.zeros(n, f, N_FFT // 2 + 1, dtype=val.dtype, device=val.device)
        out = out.scatter_add(2, idx, val.permute(0, 2, 1, 3).reshape(n, f, p * k))
        return out.transpose(1, 2)

    def noise_spectrum(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """White noise's STFT (complex Gaussian frames, the power of a unit-variance noise
        through the Hann window) shaped by the band gains: (N, bins, frames + 1)."""
        bands = self._amp_frames(c["noise"])  # (N, bands, F+1)
        gains = (
            bands[:, self.band_idx[:, 0]] * self.band_wt[:, :1]
            + bands[:, self.band_idx[:, 1]] * self.band_wt[:, 1:]
        )  # (N, bins, F+1)
        scale = math.sqrt(float((self.window**2).sum()) / 2)
        re, im = torch.randn_like(gains), torch.randn_like(gains)
        return torch.complex(re * gains, im * gains) * scale

    def _istft(self, spec: torch.Tensor) -> torch.Tensor:
        return torch.istft(spec, N_FFT, HOP, window=self.window, center=True, length=self.length)

    def render_partials(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._istft(self.partials_spectrum(c))

    def render_noise(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._istft(self.noise_spectrum(c))

    def render_transient(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """The click of the stick or the beater, finer than a frame: white noise split into a
        dull (n[t] + n[t−1]) and a bright (n[t] − n[t−1]) part, each with its gain, under
        one exponential decay; the first TRANSIENT_SAMPLES samples only. (N, TRANSIENT)."""
        n = min(TRANSIENT_SAMPLES, self.length) + 1
        white = torch.randn(c["click"].shape[0], n, device=c["click"].device)
        dull, bright = white[:, 1:] + white[:, :-1], white[:, 1:] - white[:, :-1]
        t = torch.arange(n - 1, device=white.device, dtype=white.dtype) / self.rate
        env = torch.exp(-t.view(1, -1) / c["click_tau"].view(-1, 1))
        return (c["click"][:, :1] * dull + c["click"][:, 1:] * bright) * env

    def render(self, c: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self._istft(self.partials_spectrum(c) + self.noise_spectrum(c))
        click = self.render_transient(c)
        x = torch.cat([x[:, : click.shape[1]] + click, x[:, click.shape[1] :]], dim=1).unsqueeze(1)
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
