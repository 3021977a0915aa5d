"""The wavegan trainer: the discriminator and generator steps, the EMA of G, judged snapshots,
checkpoints and resume, as the methods of one :class:`Trainer`.

Data preparation lives in ``data.py``, the losses and the generator's hinged terms in
``loss.py``, snapshot scoring in ``selection.py``, the options in ``options.py``.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import MiragenError
from ...fsutil import atomic_write_bytes
from ...judge.features import features
from ...judge.metrics import K_NN
from ..base import Budget, EngineError, Progress, ProgressFn
from .augment import circular_shift, diff_augment
from .data import SYNTH_LENGTHS, internal_split, prepare_waves
from .depth import DepthTable
from .generators import FRAME_RATE_DESIGNS, generator_from_spec
from .loss import (
    OneshotFeatures,
    copy_hinge,
    cover_features,
    d_loss_ns,
    d_loss_wgan,
    g_loss_ns,
    g_loss_wgan,
    gradient_penalty,
    inside_hinge,
    knn_mean,
    local_hinge,
    mode_seeking,
    ms_features,
    r1_penalty,
    spread_hinge,
    twin_hinge,
)
from .model import WaveGANModel
from .modes import find_modes
from .networks import Discriminator, generate_clusters, generate_internal
from .options import WaveGANOptions
from .selection import cv_keeps, judge_score
from .synth import SpecDiscriminator

log = logging.getLogger(__name__)

CHECKPOINT = "wavegan-checkpoint.pt"
# the most steps between two host reads of the losses, whose check for divergence stalls a GPU
# (they are read too at every report, judged snapshot and checkpoint)
LOSS_CHECK_EVERY = 25

# called (snapshot model, step, elapsed seconds, the trainer's own figures of it) at every
# snapshot evaluation (bench/quality.py traces a run with it)
SnapshotHook = Callable[[WaveGANModel, int, float, dict], None]


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise EngineError("wavegan: train.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def network_spec(
    opts: WaveGANOptions, mode: str, length: int, n_classes: int, rate: int
) -> dict[str, Any]:
    if mode == "cycle":
        output = opts.output
    elif opts.oneshot_design in FRAME_RATE_DESIGNS and length >= SYNTH_LENGTHS[0]:
        output = opts.oneshot_design
    else:
        output = "wave"
    spec = {
        "mode": mode,
        "length": length,
        "n_classes": n_classes,
        "output": output,
        "z_dim": opts.z_dim,
        "width": opts.width,
        "transpose": opts.transpose,
        "phase_shuffle": opts.phase_shuffle,
        "mbstd": opts.mbstd,
        "spectral_d": opts.spectral_d,
    }
    if output in FRAME_RATE_DESIGNS:
        spec["rate"] = int(rate)
    return spec


def build_networks(spec: dict[str, Any]):
    g = generator_from_spec(spec)
    if spec["output"] in FRAME_RATE_DESIGNS:
        d = SpecDiscriminator(
            spec["length"],
            spec["n_classes"],
            rate=spec["rate"],
            width=spec["width"],
            mbstd=spec["mbstd"],
            attack=spec["output"] == "synth",  # the spectrogram design has no samples to show
        )
        return g, d
    d = Discriminator(
        spec["length"],
        spec["n_classes"],
        mode=spec["mode"],
        width=spec["width"],
        phase_shuffle=spec["phase_shuffle"],
        mbstd=spec["mbstd"],
        spectral=spec["spectral_d"],
    )
    return g, d


def _state_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _to_cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class CoverTerms:
    """The generator's hinged terms, in the judge's feature space (``feats``: the cycle features
    or the one-shot features, in torch).

    Coverage (after IMLE, Li & Malik 2018, and Inclusive GAN, Yu et al. 2020): every
    ``cover_every`` steps each real sound is given its own latent (an optimal one-to-one matching
    between the class's sounds and ``cover_pool`` × as many fresh draws), and at every step the
    outputs of a batch of those latents are pulled towards their sounds until they are within
    ``cover_target`` × the class's typical nearest-neighbour spacing, and no further. A GAN alone
    drops the sounds its discriminator stops asking for; this term keeps every one represented.

    Anti-copy: an output nearer to a real sound of its class than ``novel_target`` × the class's
    spacing is pushed away from it (the judge calls an output nearer than 0.5 × that spacing a
    copy, and the generate gate throws such outputs away).

    Spread: the outputs of a class in a batch must be, on average, at least ``spread_target`` ×
    as far apart as the class's real sounds are (the hinge stops there).

    Near-twins (``twin_lambda``; cycles: on by default, one-shots: off): an output whose
    nearest other output of its class in the batch lies nearer than ``twin_target`` × the
    class's spacing is pushed away from it (a model that draws a tight family around each
    training sound satisfies the spread terms; the judge's ``repeats`` counts such twins).
    """

    def __init__(
        self,
        opts: WaveGANOptions,
        real_feats,
        labels,
        fracs,
        n_classes: int,
        cover_z,
        device,
        out_feats,
        gen_labels=None,
    ):
        """``real_feats``: the real sounds' features; ``labels``: their classes, which the terms
        compare within; ``gen_labels``: the generator's conditioning label of each real sound
        (its class, or its cluster of the class when self-conditioned: modes.py), which
        :meth:`reassign` draws with; ``out_feats``: features of a generator output (what
        ``gen`` in :meth:`reassign` returns)."""
        usable = not opts.loss == "wgan-gp"
        self.opts, self.feats, self.fracs = opts, out_feats, fracs
        self.cover = usable and opts.cover_lambda > 0
        self.novel = usable and opts.novel_lambda > 0
        self.spread = usable and opts.spread_lambda > 0
        self.local = usable and opts.local_lambda > 0
        self.inside = usable and opts.inside_lambda > 0
        self.twin = usable and opts.twin_lambda > 0
        self.labels, self.n_classes, self.device = labels, n_classes, device
        self.gen_labels = labels if gen_labels is None else gen_labels
        self.cover_z = None
        if not (self.cover or self.novel or self.spread or self.local or self.inside or self.twin):
            return
        with torch.no_grad():
            self.real_feats = real_feats
            spacing = torch.full((n_classes,), float("nan"), device=device)  # median NN distance
            self.radii = torch.full((len(labels),), float("inf"), device=device)  # never pulled
            self.spread_real = torch.zeros(n_classes, device=device)  # mean pairwise distance
            for ci in range(n_classes):
                sel = (labels == ci).nonzero().view(-1)
                if len(sel) < 2:
                    continue
                dd = torch.cdist(self.real_feats[sel], self.real_feats[sel])
                dd.fill_diagonal_(float("inf"))
                spacing[ci] = dd.min(dim=1).values.median()
                if self.inside and len(sel) > LOCAL_K:  # the judge's k-NN balls of the class
                    self.radii[sel] = dd.kthvalue(LOCAL_K, dim=1).values
                self.spread_real[ci] = dd[torch.isfinite(dd)].mean()
            if self.local:
                self.local_real = _local_targets(real_feats, labels, n_classes, opts.batch)
            # a class of one sound has no spacing: never pulled, never pushed
            self.cover_tau = torch.nan_to_num(opts.cover_target * spacing[labels], nan=float("inf"))
            self.novel_r = torch.nan_to_num(opts.novel_target * spacing, nan=0.0)
            self.twin_r = torch.nan_to_num(opts.twin_target * spacing, nan=0.0)
            self.scale = torch.nan_to_num(spacing, nan=1.0).clamp(min=1e-6)
        if self.cover:
            n_real = real_feats.shape[0]
            if cover_z is None or cover_z.shape != (n_real, opts.z_dim):
                cover_z = torch.randn(n_real, opts.z_dim)
            self.cover_z = cover_z.to(device)

    def reassign(self, gen) -> None:
        """Give each real sound a latent from fresh draws (fresh every time, as in IMLE: no
        latent becomes a fixed key that memorises one sound while the rest of the latent space
        collapses). ``unique``: an optimal one-to-one matching, so crowded regions cannot claim
        the latents of the sounds at the edges; ``nearest``: each sound's nearest draw."""
        from scipy.optimize import linear_sum_assignment

        with torch.no_grad():
            for ci in torch.unique(self.gen_labels).tolist():
                sel = (self.gen_labels == ci).nonzero().view(-1)
                zs = torch.randn(
                    len(sel) * self.opts.cover_pool, self.opts.z_dim, device=self.device
                )
                y_c = torch.full((256,), ci, dtype=torch.long, device=self.device)
                f_c = self.fracs[sel].repeat(self.opts.cover_pool)
                feats = torch.cat(
                    [
                        self.feats(gen(zc, y_c[: len(zc)], fc))
                        for zc, fc in zip(zs.split(256), f_c.split(256))
                    ]
                )
                dist = torch.cdist(self.real_feats[sel], feats)
                if self.opts.cover_match == "unique":
                    _, cols = linear_sum_assignment(dist.cpu().numpy())
                    self.cover_z[sel] = zs[torch.as_tensor(cols, device=self.device)]
                else:
                    self.cover_z[sel] = zs[dist.argmin(dim=1)]

    def loss(self, fake, near, y, idx, losses: dict[str, torch.Tensor]):
        """The weighted sum of the active terms for a batch (``near``: the outputs of the
        covering latents of the real sounds ``idx``, or None); each term's value goes into
        ``losses`` as a detached tensor (read on the host only when reported)."""
        o = self.opts
        total = fake.new_zeros(())
        f_fake = f_near = None
        on_fake = self.spread or self.novel or self.local or self.inside or self.twin
        if on_fake and self.cover:  # one pass for both halves: the features are row by row
            f_fake, f_near = self.feats(torch.cat([fake, near])).split(len(fake))
        elif on_fake:
            f_fake = self.feats(fake)
        elif self.cover:
            f_near = self.feats(near)
        if self.cover:
            cov = torch.relu(
                (f_near - self.real_feats[idx]).norm(dim=1) - self.cover_tau[idx]
            ).mean()
            total = total + o.cover_lambda * cov
            losses["cover"] = cov.detach()
        if self.spread:
            sp = spread_hinge(f_fake, y, o.spread_target * self.spread_real)
            total = total + o.spread_lambda * sp
            losses["spread"] = sp.detach()
        if self.local:
            lo = local_hinge(f_fake, y, self.local_real, LOCAL_K)
            total = total + o.local_lambda * lo
            losses["local"] = lo.detach()
        if self.inside:
            ins = inside_hinge(f_fake, y, self.real_feats, self.labels, self.radii, self.scale)
            total = total + o.inside_lambda * ins
            losses["inside"] = ins.detach()
        if self.twin:
            tw = twin_hinge(f_fake, y, self.twin_r)
            total = total + o.twin_lambda * tw
            losses["twin"] = tw.detach()
        if self.novel:
            f_out, y_out = (
                (torch.cat([f_fake, f_near]), torch.cat([y, y])) if self.cover else (f_fake, y)
            )
            cp = copy_hinge(f_out, y_out, self.real_feats, self.labels, self.novel_r)
            total = total + o.novel_lambda * cp
            losses["copy"] = cp.detach()
        return total


LOCAL_K = K_NN  # the local-spread term reads the judge's k-NN radii


def _local_targets(real_feats, labels, n_classes: int, batch: int, draws: int = 16) -> dict:
    """Per class, the real sounds' mean distance to their ``LOCAL_K``-th nearest neighbour in a
    random set of n of them, for n = 0 … min(batch, the class's sounds) (0 below LOCAL_K + 1;
    averaged over ``draws`` sets; fixed seed). A class too small for one set has no entry."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for ci in range(n_classes):
        sel = (labels == ci).nonzero().view(-1).cpu()
        top = min(batch, len(sel))
        if top <= LOCAL_K:
            continue
        t = torch.zeros(top + 1, device=real_feats.device)
        for n in range(LOCAL_K + 1, top + 1):
            means = [
                knn_mean(real_feats[sel[torch.randperm(len(sel), generator=gen)[:n]]], LOCAL_K)
                for _ in range(draws)
            ]
            t[n] = torch.stack(means).mean()
        out[ci] = t
    return out


class Trainer:
    """One training run of the wavegan engine on a dataset; resumes from ``checkpoint_dir``
    when it holds a compatible checkpoint. :meth:`run` trains until the budget is spent and
    returns the model of the best judged snapshot."""

    def __init__(
        self,
        dataset,
        opts: WaveGANOptions,
        checkpoint_dir: Path,
        progress: ProgressFn | None = None,
        snapshot_hook: SnapshotHook | None = None,
    ):
        if dataset.mode not in ("cycle", "oneshot"):
            raise EngineError(f"wavegan: unknown mode '{dataset.mode}'")
        if not dataset.class_names:
            raise EngineError("wavegan: the dataset is empty")
        opts = opts.for_mode(dataset.mode)  # one-shots: their own defaults (options.py)
        self.opts, self.progress, self.hook = opts, progress, snapshot_hook
        self.dataset, self.mode, self.classes = dataset, dataset.mode, dataset.class_names
        self.oneshot = self.mode == "oneshot"
        self.wgan = opts.loss == "wgan-gp"
        self.device = pick_device(opts.device)
        if opts.threads > 0:
            torch.set_num_threads(opts.threads)
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = checkpoint_dir / CHECKPOINT
        self._prepare_data()
        self.spec = network_spec(
            opts, self.mode, self.prep.length, self.modes.n, self.prep.internal_rate
        )
        self.synth = self.spec["output"] == "synth"
        self.spectro = self.spec["output"] == "spec"  # the generator draws spectrograms
        if self.spectro and self.wgan:
            raise EngineError("wavegan: oneshot_design=spec trains with loss=ns-r1 only")
        self._build()
        self.step, self.prior_elapsed, self.best = 0, 0.0, None
        self.budget: Budget | None = None  # set by run()
        cover_z = self._resume()
        self._to_device()
        # the judge's features in torch: what "near", "copy" and "spread" mean for the terms
        self.feats = (
            OneshotFeatures(self.prep.internal_rate, self.device)
            if self.oneshot
            else cover_features
        )
        self.ms_target = self._ms_target()
        self.terms = None
        if not self.oneshot or self.synth or self.spectro:
            with torch.no_grad():
                real_feats = torch.cat([self.feats(r[:, 0]) for r in self.real.split(256)])
            self.terms = CoverTerms(
                opts,
                real_feats,
                self.class_labels,
                self.fracs,
                len(self.classes),
                cover_z,
                self.device,
                self._out_feats,
                gen_labels=self.labels,
            )
        # this step's loss terms as detached tensors: read on the host (one transfer) only when
        # reported, judged or checked (a read per term per step stalls a GPU every step)
        self.losses: dict[str, torch.Tensor] = {}
        self._train_feats: dict[int, np.ndarray] = {}  # judge features of each class's part

    # ---------------------------------------------------------------------------- set-up
    def _prepare_data(self) -> None:
        ds, o = self.dataset, self.opts
        train_by_class, held_by_class = internal_split(ds, o.holdout, o.seed)
        design = o.oneshot_design if self.oneshot else "wave"
        self.prep = prepare_waves(
            train_by_class, self.mode, ds.rate, ds.cycle_len, o.oneshot_len, design
        )
        geometry = (self.prep.length, self.prep.internal_rate)
        held = (
            prepare_waves(
                held_by_class, self.mode, ds.rate, ds.cycle_len, o.oneshot_len, design, geometry
            )
            if any(held_by_class)
            else None
        )
        self.held = held
        self.class_fracs = {
            c: [float(v) for v in self.prep.fracs[self.prep.labels == ci]]
            for ci, c in enumerate(self.classes)
        }
        # the networks' conditioning labels: one per class, or with ``modes`` (cycle mode) one
        # per k-means cluster of a class's training sounds (modes.py)
        k_max = 0 if self.oneshot else o.modes
        feats = (
            features(list(self.prep.waves), self.mode, rate=self.prep.internal_rate)
            if k_max > 1
            else np.zeros((len(self.prep.labels), 1))
        )
        self.modes = find_modes(self.prep.labels, feats, k_max, o.seed)
        self._depth_tables(held)

    def _depth_tables(self, held) -> None:
        """Depth tables (depth.py) of the classes with stepped cycles, by class index: of the
        training part for the snapshot judge's draws (``depth``), and of every training sound,
        the internal hold-out too, for the model (``model_depth``: a draw takes its nearest
        cycle's depth, and a table missing some of a class's smooth cycles sends draws near
        them to a stepped one: on the synthesised mixed bank of seed 0, 0.35 of 512 draws came
        out stepped with the hold-out left out of the table, 0.30 with it; T 0.22)."""
        self.depth, self.model_depth = {}, {}
        for ci in range(0 if self.oneshot else len(self.classes)):
            part = list(self.prep.waves[self.prep.labels == ci])
            rest = list(held.waves[held.labels == ci]) if held is not None else []
            table = DepthTable.of_class(part + rest)  # each cycle measured once
            if table is None:
                continue
            self.model_depth[ci] = table
            if (of_part := table.head(len(part))) is not None:
                self.depth[ci] = of_part

    def _build(self) -> None:
        o = self.opts
        torch.manual_seed(o.seed)
        g, d = build_networks(self.spec)
        self.g, self.d = g.to(self.device), d.to(self.device)
        self.g_ema = copy.deepcopy(self.g).eval()
        for p in self.g_ema.parameters():
            p.requires_grad_(False)
        # on a GPU: Adam's fused kernel (one launch per step, not one per tensor) and cuDNN's
        # fastest algorithms for these fixed shapes; the step is bound by launches there. On
        # the CPU: the multi-tensor (foreach) update, the per-tensor one's exact arithmetic
        # looped in C++, not in Python (torch picks the per-tensor loop there by default)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        kw = {"betas": (o.beta1, o.beta2), **self._adam_impl()}
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.lr_g, **kw)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.lr_d, **kw)

    def _adam_impl(self) -> dict[str, bool | None]:
        cuda = self.device.type == "cuda"
        return {"fused": True if cuda else None, "foreach": not cuda}

    def _fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed."""
        return {
            "spec": self.spec,
            "classes": self.classes,
            "n": int(len(self.prep.waves)),
            "recipe": self.opts.recipe,
            "loss": self.opts.loss,
            # a class split into clusters: the clusters too (absent otherwise, so that the
            # checkpoints of one-shots and of unsplit classes resume as before)
            **({"modes": self.modes.labels.tolist()} if self.modes.n != len(self.classes) else {}),
        }

    def _resume(self):
        """Load a compatible checkpoint (the covering latents come back for CoverTerms)."""
        if not self.ckpt_path.is_file():
            return None
        try:
            state = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn or foreign file: start over, say so
            log.warning("%s: unreadable checkpoint (%s); starting fresh", self.ckpt_path, exc)
            return None
        if state.get("fingerprint") != self._fingerprint():
            log.warning(
                "%s: checkpoint is for another dataset or settings; starting fresh", self.ckpt_path
            )
            return None
        for name in ("g", "d", "g_ema", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        for opt in (self.opt_g, self.opt_d):  # a checkpoint keeps the update of its device
            for group in opt.param_groups:
                group.update(self._adam_impl())
        self.step, self.prior_elapsed = int(state["step"]), float(state["elapsed"])
        self.best = state.get("best")
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at step %d", self.ckpt_path, self.step)
        if self.progress:
            self.progress(
                Progress(self.step, self.prior_elapsed, message=f"resumed at step {self.step}")
            )
        return state.get("cover_z")

    def _to_device(self) -> None:
        prep, dev = self.prep, self.device
        self.real = torch.as_tensor(prep.waves).unsqueeze(1).to(dev)
        self.labels = torch.as_tensor(self.modes.labels).to(dev)  # the networks' labels
        self.class_labels = torch.as_tensor(prep.labels).to(dev)  # what the terms compare in
        self.fracs = torch.as_tensor(prep.fracs).to(dev)
        self.n_real = self.real.shape[0]

    def _ms_target(self) -> float:
        """The mode-seeking hinge's target: ``ms_target`` × the real sounds' median distance."""
        if self.opts.ms_lambda <= 0:
            return 0.0
        with torch.no_grad():
            fr = self._ms_features(self.real[: min(self.n_real, 256), 0])
            if len(fr) < 2:
                return 0.0
            pd = torch.cdist(fr, fr, p=1) / fr.shape[1]  # mean |difference|, no N×N×L tensor
            iu = torch.triu_indices(len(fr), len(fr), 1)
            return self.opts.ms_target * float(pd[iu[0], iu[1]].median())

    def _ms_features(self, x):
        """Mode seeking's features of real sounds (N, L): the synthesiser's and the spectrogram
        designs' outputs differ sample by sample anyway (noise, phase), so there it is measured
        on the judge's features."""
        return self.feats(x) if (self.synth or self.spectro) else ms_features(x, self.oneshot)

    # what the generator puts out in training: samples (N, 1, L), or for the spectrogram
    # design a power spectrogram, which the discriminator and the features read directly
    def _gen(self, z, y, f):
        return self.g.power(z, y, f) if self.spectro else self.g(z, y, f)

    def _out_feats(self, out):
        """The terms' features of a generator output (the terms run for cycles and for the
        synth and spec designs only)."""
        return self.g.features(out) if self.spectro else self.feats(out[:, 0])

    def _out_ms_features(self, out):
        return self.g.features(out) if self.spectro else self._ms_features(out[:, 0])

    def _augment(self, out):
        """DiffAugment, except for the spectrogram design: its fakes have no samples to
        augment, so neither have its reals."""
        return out if self.spectro else self._aug(out)

    def _d_out(self, out, y):
        return self.d.from_power(out, y) if self.spectro else self.d(out, y)

    # ---------------------------------------------------------------------------- one step
    def elapsed(self) -> float:
        return self.prior_elapsed + (self.budget.elapsed() if self.budget else 0.0)

    def _real_batch(self):
        idx = torch.randint(0, self.n_real, (self.opts.batch,), device=self.device)
        x = self.real[idx]
        if not self.oneshot:  # random rotation of every cycle
            x = circular_shift(x)
        return x, self.labels[idx], self.fracs[idx]

    def _aug(self, x):
        p = self.opts.augment_p
        return diff_augment(x, self.mode, p) if p > 0 else x

    def d_step(self):
        o = self.opts
        x, y, f = self._real_batch()
        with torch.no_grad():
            z = torch.randn(y.shape[0], self.spec["z_dim"], device=self.device)
            fake = self._gen(z, y, f)
        xr, xf = self._augment(x), self._augment(fake)  # both before D: the draws keep their order
        do_r1 = (not self.wgan) and o.r1_gamma > 0 and self.step % o.r1_every == 0
        if do_r1:
            xr = xr.detach().requires_grad_(True)
        d_real, d_fake = self.d(xr, y), self._d_out(xf, y)
        if self.wgan:
            gp = gradient_penalty(self.d, x, fake, y)
            loss = d_loss_wgan(d_real, d_fake) + o.gp_lambda * gp
        else:
            loss = d_loss_ns(d_real, d_fake)
            if do_r1:
                r1 = r1_penalty(d_real, xr)
                loss = loss + 0.5 * o.r1_gamma * o.r1_every * r1
                self.losses["r1"] = r1.detach()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss

    def g_step(self):
        o, terms = self.opts, self.terms
        idx = torch.randint(0, self.n_real, (o.batch,), device=self.device)
        y, f = self.labels[idx], self.fracs[idx]
        z = torch.randn(o.batch, self.spec["z_dim"], device=self.device)
        near = None
        if terms is not None and terms.cover:
            if self.step % o.cover_every == 0:
                terms.reassign(self._gen)
            fn = torch.cat([f, f]) if self.oneshot else None
            both = self._gen(torch.cat([z, terms.cover_z[idx]]), torch.cat([y, y]), fn)
            fake, near = both[: o.batch], both[o.batch :]
        else:
            fake = self._gen(z, y, f)
        # D's weights are constants here: the backward pass skips their gradients, which the
        # D step would throw away (it zeroes them first); the gradient to the fakes is the same
        self.d.requires_grad_(False)
        try:
            d_out = self._d_out(self._augment(fake), y)
            loss = g_loss_wgan(d_out) if self.wgan else g_loss_ns(d_out)
            if terms is not None:
                loss = loss + terms.loss(fake, near, self.class_labels[idx], idx, self.losses)
            if o.ms_lambda > 0:
                ms = mode_seeking(fake, z, self._out_ms_features, self.ms_target)
                loss = loss + o.ms_lambda * ms
                self.losses["ms"] = ms.detach()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.d.requires_grad_(True)
        self.opt_g.step()
        return loss

    def update_ema(self) -> None:
        beta = self.opts.ema_beta
        if beta > 0:
            beta = min(beta, (1 + self.step) / (10 + self.step))
        with torch.no_grad():  # one fused op per list, not two kernels per tensor
            ema = list(self.g_ema.parameters())
            cur = [p.detach() for p in self.g.parameters()]
            torch._foreach_copy_(ema, torch._foreach_lerp(cur, ema, beta))

    # ---------------------------------------------------------------------------- snapshots
    def snapshot_model(self, meta: dict[str, Any] | None = None) -> WaveGANModel:
        """The EMA generator as a model (shares its weights: copy before training on)."""
        model = WaveGANModel(
            self.mode,
            self.classes,
            {},
            self.dataset.rate,
            meta or {},
            spec=self.spec,
            internal_rate=self.prep.internal_rate,
            class_fracs=self.class_fracs,
            modes=self._model_modes(),
            depth={self.classes[ci]: t for ci, t in self.model_depth.items()},
        )
        model._g = self.g_ema
        return model

    def _model_modes(self) -> dict[str, list[list[float]]]:
        """The model's record of a self-conditioned class: [label, weight] per cluster."""
        return {
            c: [[lab, w] for lab, w in zip(self.modes.of_class[ci], self.modes.weights[ci])]
            for ci, c in enumerate(self.classes)
            if len(self.modes.of_class[ci]) > 1
        }

    def _draws(self, per_class_n: int) -> dict[int, np.ndarray]:
        out = {}
        for ci in range(len(self.classes)):
            labels = self.modes.of_class[ci]
            if len(labels) > 1:  # self-conditioned: each cluster in its share
                out[ci] = generate_clusters(
                    self.g_ema,
                    per_class_n,
                    list(zip(labels, self.modes.weights[ci])),
                    np.random.default_rng(ci),
                    lambda _j, lab: 1234 + lab,
                    self.device,
                )
                continue
            fr = None
            if self.oneshot:
                pool = self.prep.fracs[self.prep.labels == ci]
                fr = np.random.default_rng(ci).choice(pool, per_class_n)
            out[ci] = generate_internal(
                self.g_ema, per_class_n, labels[0], fr, seed=1234 + ci, device=self.device
            )
        for ci, table in self.depth.items():  # quantised as the model's (of the part only)
            out[ci] = np.stack(table.apply(list(out[ci])))
        return out

    def _class_sets(self, ci: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(training part, held-out part) of class ``ci``; the training part stands in for a
        held-out part too small for the judge."""
        prep, held = self.prep, self.held
        tr = [w for w, lab in zip(prep.waves, prep.labels) if lab == ci]
        he = [w for w, lab in zip(held.waves, held.labels) if lab == ci] if held else []
        return tr, he if len(he) >= 4 else tr

    def evaluate_snapshot(self) -> None:
        """Judge the EMA generator's draws; keep its weights when it scores the best so far."""
        gen = self._draws(self.opts.eval_samples)
        scores, cvs, info = [], [], {}
        try:
            for ci in range(len(self.classes)):
                tr, he = self._class_sets(ci)
                rate = self.prep.internal_rate
                if ci not in self._train_feats:  # the training part does not change
                    self._train_feats[ci] = features(tr, self.mode, rate=rate)
                s, info = judge_score(
                    list(gen[ci]),
                    tr,
                    he,
                    self.mode,
                    rate,
                    train_feats=self._train_feats[ci],
                    guard=self.opts.copy_guard,
                )
                scores.append(s)
                cvs.append(info["cv"])
        except MiragenError as exc:  # e.g. a class too small to judge: keep the latest snapshot
            log.info("snapshot at step %d not judged (%s): keeping the latest", self.step, exc)
            scores, cvs = [(0, 0, 0.0)], [(0, 0.0, 0.0)]
        score = self._score(scores, cvs)
        if self.hook is not None:
            self.hook(self.snapshot_model(), self.step, self.elapsed(), info.get("metrics", {}))
        if self.progress:
            metrics = dict(info.get("metrics", {}))
            self.progress(
                Progress(self.step, self.elapsed(), metrics=metrics, message=f"snapshot {score}")
            )
        keep, peak = self._keeps(score, min(cvs, key=lambda c: (c[1], -c[2]))[2])
        if keep:
            self.best = {
                "select": self.opts.select,
                "score": list(score),
                "peak": peak,
                "step": self.step,
                "g_ema": _to_cpu(self.g_ema.state_dict()),
                "metrics": info.get("metrics", {}),
            }
            log.info("step %d: snapshot kept %s (best %s)", self.step, score, peak)

    def _keeps(self, score: tuple[float, ...], se: float) -> tuple[bool, list[float]]:
        """(keep this snapshot, the best score so far with its standard error). ``select=cv``
        keeps the latest snapshot within ``select_se`` standard errors of the best
        (:func:`selection.cv_keeps`); the other rules keep the best, a tie the later one. A best
        kept under another rule before a resume is not comparable: the snapshot replaces it."""
        best = self.best
        if best is None or best.get("select", "judge") != self.opts.select:
            return True, [*score, se]
        peak = best.get("peak") or [*best["score"], 0.0]  # (kept before the rule existed)
        if self.opts.select != "cv":
            return tuple(score) >= tuple(peak[:-1]), [*score, se]
        keep, new_peak = cv_keeps(score, tuple(peak[:2]), peak[2], self.opts.select_se)
        return keep, [*score, se] if new_peak else peak

    def _score(self, scores: list[tuple], cvs: list[tuple]) -> tuple[float, ...]:
        """The snapshot's score over all classes under the ``select`` option (higher keeps it;
        a tie keeps the later snapshot)."""
        if self.opts.select == "last":
            return (0.0,)
        if self.opts.select == "cv":
            return (float(sum(c[0] for c in cvs)), float(min(c[1] for c in cvs)))
        return (
            float(sum(s[0] for s in scores)),
            float(sum(s[1] for s in scores)),
            float(min(s[2] for s in scores)),
        )

    def save_checkpoint(self) -> None:
        cover_z = self.terms.cover_z if self.terms is not None else None
        state = {
            "fingerprint": self._fingerprint(),
            "g": _to_cpu(self.g.state_dict()),
            "d": _to_cpu(self.d.state_dict()),
            "g_ema": _to_cpu(self.g_ema.state_dict()),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed(),
            "best": self.best,
            "torch_rng": torch.get_rng_state(),
            "cover_z": cover_z.cpu() if cover_z is not None else None,
        }
        atomic_write_bytes(self.ckpt_path, _state_bytes(state))

    # ---------------------------------------------------------------------------- the loop
    def run(self, budget: Budget) -> WaveGANModel:
        """Train until ``budget`` is spent (absolute steps: a resumed run continues the count;
        seconds: this run only, callers that resume pass the time still left), then return the
        best snapshot as a model on the CPU."""
        o, self.budget = self.opts, budget
        last_report = time.monotonic()
        while not budget.done(self.step):
            for _ in range(o.d_steps):
                loss_d = self.d_step()
            loss_g = self.g_step()
            self.update_ema()
            self.step += 1
            self.losses.update(d=loss_d.detach(), g=loss_g.detach())
            report = self.progress is not None and time.monotonic() - last_report >= 2.0
            judge, save = self.step % o.eval_every == 0, self.step % o.checkpoint_every == 0
            if report or judge or save or self.step % LOSS_CHECK_EVERY == 0:
                losses = self.read_losses()  # raises on divergence before anything is kept
            if judge:
                self.evaluate_snapshot()
            if save:
                self.save_checkpoint()
            if report:
                last_report = time.monotonic()
                self.progress(Progress(self.step, self.elapsed(), losses=losses))
        if self.losses:
            self.read_losses()
        if self.best is None or (self.step % o.eval_every and self.best["step"] != self.step):
            self.evaluate_snapshot()  # the last steps since the last snapshot judged
        self.save_checkpoint()
        return self._best_model()

    def read_losses(self) -> dict[str, float]:
        """The last step's loss terms on the host, in one transfer; raises :class:`EngineError`
        when one is not finite (the run diverged)."""
        names = list(self.losses)
        values = torch.stack([self.losses[k].float() for k in names]).tolist()
        out = dict(zip(names, values))
        if not all(math.isfinite(v) for v in values):
            raise EngineError(f"wavegan: training diverged at step {self.step} (losses {out})")
        return out

    def _best_model(self) -> WaveGANModel:
        self.g_ema.load_state_dict(self.best["g_ema"])
        meta = {
            "steps": self.step,
            "train_seconds": round(self.elapsed(), 2),
            "best_step": self.best["step"],
            "best_metrics": self.best.get("metrics", {}),
            "options": {k: v for k, v in self.opts.to_dict().items() if k != "device"},
            "device": str(self.device),
        }
        model = self.snapshot_model(meta)
        model.set_generator(self.g_ema.cpu())
        return model


def fit(
    dataset,
    budget: Budget,
    progress: ProgressFn | None,
    checkpoint_dir: Path,
    options: WaveGANOptions,
    snapshot_hook: SnapshotHook | None = None,
) -> WaveGANModel:
    """Train on ``dataset``; resume from ``checkpoint_dir`` when it holds a compatible
    checkpoint."""
    return Trainer(dataset, options, checkpoint_dir, progress, snapshot_hook).run(budget)
