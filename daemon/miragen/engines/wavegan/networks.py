"""Generator and discriminator: WaveGAN-style 1-D convolutional networks.

Generator: latent z (+ class embedding, + the wanted length for one-shots) → dense layer →
a stack of upsampling blocks (nearest-neighbour ×s + conv, or transposed conv as in the paper)
→ the output layer:

- ``output="wave"``: one channel of samples (tanh), DC removed in cycle mode, peak-normalised;
- ``output="harmonic"`` (cycle mode only): the conv stack runs along the *harmonic* axis and
  emits the real and imaginary parts of harmonics 1..L/2; an inverse real FFT turns them into
  exactly one band-limited, loopable cycle (no DC, no aliasing). Neighbouring harmonics have
  related amplitudes in most instruments, so a convolution over the harmonic axis is a strong,
  honest inductive bias for ~100 training cycles.

Discriminator: strided conv blocks with phase shuffle (Donahue et al. 2019), minibatch
standard deviation (Karras et al. 2018), an optional branch that sees the log-magnitude
spectrum (cycle mode), and a projection head for the class (Miyato & Koyama 2018).
Circular padding everywhere in cycle mode: a cycle has no edges.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .modes import mode_counts


def _levels(length: int, base: int, factor: int) -> int:
    n, cur = 0, base
    while cur < length:
        cur *= factor
        n += 1
    if cur != length:
        raise ValueError(f"length {length} is not {base} × {factor}^k")
    return n


def peak_normalise(x: torch.Tensor, remove_dc: bool) -> torch.Tensor:
    if remove_dc:
        x = x - x.mean(dim=-1, keepdim=True)
    peak = x.abs().amax(dim=-1, keepdim=True)
    return x / (peak + 1e-4)


def polyphase_taps(kernel: int, factor: int) -> tuple[torch.Tensor, int, int]:
    """Nearest-neighbour ×``factor`` upsampling followed by a convolution of ``kernel`` taps
    (padding ``kernel // 2``) is ``factor`` shorter convolutions of the input itself, one per
    output phase: output ``factor·i + r`` reads input ``i + m`` with the sum of the taps ``t``
    for which ``(r + t - kernel // 2) // factor == m``. Returns the 0/1 matrix (factor, kernel,
    taps per phase) that sums them, and the input padding (left, right) the phases need."""
    p = kernel // 2
    lo, hi = (-p) // factor, (factor - 1 + kernel - 1 - p) // factor
    a = torch.zeros(factor, kernel, hi - lo + 1)
    for r in range(factor):
        for t in range(kernel):
            a[r, t, (r + t - p) // factor - lo] = 1.0
    return a, -lo, hi


class UpBlock(nn.Module):
    """Upsampling by ``factor`` and two convolutions (or one transposed convolution).

    The nearest-neighbour upsampling and the first convolution run as one polyphase
    convolution on the input (:func:`polyphase_taps`): the same function of the same
    weights, with 5 taps a phase instead of 9 at twice the length for cycles (about 45 % fewer
    operations in that convolution) and 7 instead of 25 for one-shots' ×4."""

    def __init__(
        self, cin: int, cout: int, factor: int, kernel: int, padding_mode: str, transpose: bool
    ):
        super().__init__()
        self.factor = factor
        self.transpose = transpose
        self.circular = padding_mode == "circular"
        if not transpose:
            if kernel % 2 == 0:  # "same" padding, kernel // 2, needs an odd kernel
                raise ValueError(f"the generator's kernel must be odd, not {kernel}")
            taps, self.pad_left, self.pad_right = polyphase_taps(kernel, factor)
            self.register_buffer("taps", taps, persistent=False)  # not in a model's weights
        if transpose:
            self.conv = nn.ConvTranspose1d(
                cin,
                cout,
                kernel,
                stride=factor,
                padding=(kernel - factor + 1) // 2,
                output_padding=(kernel - factor) % 2,
            )
        else:
            self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2, padding_mode=padding_mode)
        self.conv2 = (
            nn.Conv1d(cout, cout, kernel, padding=kernel // 2, padding_mode=padding_mode)
            if not transpose
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transpose:
            return F.relu(self.conv(x))
        x = F.leaky_relu(self._up_conv(x), 0.2)
        return F.leaky_relu(self.conv2(x), 0.2) + x

    def _up_conv(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(interpolate(x, ×factor, nearest))``, computed per output phase."""
        b, _, length = x.shape
        w = self.conv.weight  # (cout, cin, kernel)
        cout, s = w.shape[0], self.factor
        phases = torch.einsum("oit,rtm->roim", w, self.taps).reshape(s * cout, w.shape[1], -1)
        mode = "circular" if self.circular else "constant"
        x = F.pad(x, (self.pad_left, self.pad_right), mode=mode)
        bias = self.conv.bias.repeat(s) if self.conv.bias is not None else None
        out = F.conv1d(x, phases, bias)  # (b, s·cout, length): phase-major channels
        return out.view(b, s, cout, length).permute(0, 2, 3, 1).reshape(b, cout, length * s)


class Generator(nn.Module):
    def __init__(
        self,
        length: int,
        n_classes: int = 1,
        *,
        mode: str = "cycle",
        output: str = "harmonic",
        z_dim: int = 64,
        width: int = 32,
        kernel: int | None = None,
        transpose: bool = False,
        base: int = 16,
    ):
        super().__init__()
        self.length, self.mode, self.output, self.z_dim = length, mode, output, z_dim
        self.n_classes = n_classes
        factor = 2 if mode == "cycle" else 4
        kernel = kernel or (9 if mode == "cycle" else 25)
        seq = length // 2 if output == "harmonic" else length
        base = min(base, seq)
        levels = _levels(seq, base, factor)
        self.base = base
        chans = [min(width * 2 ** (levels - i), width * 8) for i in range(levels + 1)]
        self.chans0 = chans[0]
        emb = 16 if n_classes > 1 else 0
        self.embed = nn.Embedding(n_classes, emb) if emb else None
        cond = emb + (1 if mode == "oneshot" else 0)
        self.fc = nn.Linear(z_dim + cond, chans[0] * base)
        pad = "zeros" if (output == "harmonic" or mode == "oneshot") else "circular"
        self.blocks = nn.ModuleList(
            UpBlock(chans[i], chans[i + 1], factor, kernel, pad, transpose) for i in range(levels)
        )
        out_ch = 2 if output == "harmonic" else 1
        self.out = nn.Conv1d(chans[-1], out_ch, kernel, padding=kernel // 2, padding_mode=pad)
        if output == "harmonic":
            # a gentle 1/k prior on harmonic amplitude; the network learns the rest
            k = torch.arange(1, seq + 1, dtype=torch.float32)
            self.register_buffer("prior", (1.0 / k).view(1, 1, -1))

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        length_frac: torch.Tensor | None = None,
    ) -> torch.Tensor:
        parts = [z]
        if self.embed is not None:
            parts.append(self.embed(y))
        if self.mode == "oneshot":
            parts.append(length_frac.view(-1, 1))
        h = self.fc(torch.cat(parts, dim=1)).view(z.shape[0], self.chans0, self.base)
        h = F.leaky_relu(h, 0.2)
        for blk in self.blocks:
            h = blk(h)
        o = self.out(h)
        if self.output == "harmonic":
            spec = torch.complex(o[:, 0], o[:, 1]) * self.prior[:, 0]
            spec = F.pad(torch.view_as_real(spec), (0, 0, 1, 0))  # DC bin = 0
            x = torch.fft.irfft(torch.view_as_complex(spec.contiguous()), n=self.length).unsqueeze(
                1
            )
            return peak_normalise(x, remove_dc=False)
        x = torch.tanh(o)
        if self.mode == "oneshot":
            x = x * length_mask(length_frac, self.length)
        return peak_normalise(x, remove_dc=self.mode == "cycle")


def length_mask(length_frac: torch.Tensor, length: int, fade: int = 32) -> torch.Tensor:
    """1 up to the wanted length, a short linear fade, then 0 (pad-and-trim for one-shots)."""
    n = length_frac.view(-1, 1, 1) * length
    pos = torch.arange(length, device=length_frac.device, dtype=torch.float32).view(1, 1, -1)
    return ((n - pos) / fade).clamp(0.0, 1.0)


class PhaseShuffle(nn.Module):
    """Shift each item by a random −n..n samples (circular or reflect-padded)."""

    def __init__(self, n: int, circular: bool):
        super().__init__()
        self.n, self.circular = n, circular

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n <= 0 or not self.training:
            return x
        b, c, length = x.shape
        k = torch.randint(-self.n, self.n + 1, (b, 1, 1), device=x.device)
        pos = torch.arange(length, device=x.device).view(1, 1, -1)
        if self.circular:
            idx = (pos - k) % length
            return torch.gather(x, 2, idx.expand(b, c, length))
        xp = F.pad(x, (self.n, self.n), mode="reflect")
        idx = pos + self.n - k
        return torch.gather(xp, 2, idx.expand(b, c, length))


class MinibatchStd(nn.Module):
    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, length = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.view(g, -1, c, length)
        # the variance over the group, written out: torch's var over this strided dimension
        # took 2.3 ms of every D pass (forward and backward) on one core, this 0.4 ms
        dev = y - y.mean(dim=0, keepdim=True)
        y = (dev.square().mean(dim=0) + 1e-8).sqrt().mean(dim=[1, 2])  # (b/g,)
        y = y.view(-1, 1, 1).repeat(g, 1, length)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    def __init__(
        self,
        length: int,
        n_classes: int = 1,
        *,
        mode: str = "cycle",
        width: int = 32,
        kernel: int | None = None,
        phase_shuffle: int = 2,
        mbstd: bool = True,
        spectral: bool = True,
        base: int = 16,
    ):
        super().__init__()
        self.mode = mode
        factor = 2 if mode == "cycle" else 4
        kernel = kernel or (9 if mode == "cycle" else 25)
        levels = _levels(length, base, factor)
        pad = "circular" if mode == "cycle" else "zeros"
        chans = [1] + [min(width * 2**i, width * 8) for i in range(levels)]
        layers: list[nn.Module] = []
        for i in range(levels):
            layers.append(
                nn.Conv1d(
                    chans[i],
                    chans[i + 1],
                    kernel,
                    stride=factor,
                    padding=kernel // 2,
                    padding_mode=pad,
                )
            )
            layers.append(nn.LeakyReLU(0.2))
            if i < levels - 1:
                layers.append(PhaseShuffle(phase_shuffle, circular=mode == "cycle"))
        self.convs = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if mbstd else None
        cfin = chans[-1] + (1 if mbstd else 0)
        self.final = nn.Conv1d(cfin, chans[-1], 3, padding=1, padding_mode=pad)
        feat = chans[-1] * base
        self.spectral_bins = min(64, length // 2) if (spectral and mode == "cycle") else 0
        if self.spectral_bins:
            self.spec = nn.Sequential(
                nn.Linear(self.spectral_bins, 4 * width),
                nn.LeakyReLU(0.2),
                nn.Linear(4 * width, 4 * width),
                nn.LeakyReLU(0.2),
            )
            feat += 4 * width + (1 if mbstd else 0)
        self.fc = nn.Linear(feat, 1)
        self.embed = nn.Embedding(n_classes, feat) if n_classes > 1 else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.convs(x)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = F.leaky_relu(self.final(h), 0.2).flatten(1)
        if self.spectral_bins:
            X = torch.fft.rfft(x[:, 0], dim=-1)[:, 1 : self.spectral_bins + 1]
            mag = (X.real**2 + X.imag**2 + 1e-6).sqrt()
            s = self.spec(torch.log(mag + 1e-2))
            if self.mbstd is not None:  # minibatch std of the spectral features too
                s = self.mbstd(s.unsqueeze(2)).flatten(1)
            h = torch.cat([h, s], dim=1)
        out = self.fc(h)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1, keepdim=True) / math.sqrt(h.shape[1])
        return out.view(-1)


def generate_clusters(
    g, n: int, clusters: list[tuple[int, float]], rng: np.random.Generator, seeds, device=None
) -> np.ndarray:
    """A self-conditioned class (modes.py): ``n`` draws shared among its ``clusters`` ((label,
    weight) pairs) by :func:`.modes.mode_counts`, cluster after cluster; ``seeds(j, label)``
    gives the seed of cluster j's draws."""
    labels, weights = zip(*clusters)
    parts = [
        generate_internal(g, k, int(lab), None, seeds(j, int(lab)), device)
        for j, (lab, k) in enumerate(zip(labels, mode_counts(list(weights), n, rng)))
        if k
    ]
    return np.concatenate(parts)


def generate_internal(
    g, n: int, label: int, fracs: np.ndarray | None, seed: int | None, device=None, batch: int = 256
) -> np.ndarray:
    """Run the generator: (n, L) float32 at the internal resolution (inference: used by the
    saved model and by the trainer's snapshots)."""
    device = device or next(g.parameters()).device
    gen = torch.Generator().manual_seed(
        int(seed) if seed is not None else int(time.time_ns() % (2**31))
    )
    out = []
    was_training = g.training
    g.eval()
    # the synthesiser draws its noise from torch's global generator on the device: seeded here
    # too, inside fork_rng (of the CPU and, on a GPU, of that device) so that the caller's
    # random state is left as it was
    on = torch.device(device)
    cuda = [on.index or 0] if on.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(gen.initial_seed()) + 1)
        for s in range(0, n, batch):
            m = min(batch, n - s)
            z = torch.randn(m, g.z_dim, generator=gen).to(device)
            y = torch.full((m,), label, dtype=torch.long, device=device)
            f = (
                torch.as_tensor(fracs[s : s + m], dtype=torch.float32, device=device)
                if fracs is not None
                else None
            )
            out.append(g(z, y, f)[:, 0].float().cpu().numpy())
    g.train(was_training)
    return np.concatenate(out, axis=0) if out else np.zeros((0, g.length), np.float32)
