"""The training loop: recipes, data preparation, checkpoints, resume and judge-based snapshot
selection."""

from __future__ import annotations

import copy
import io
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import MiragenError
from ...fsutil import atomic_write_bytes
from ..base import Budget, EngineError, Progress, ProgressFn

log = logging.getLogger(__name__)

CHECKPOINT = "wavegan-checkpoint.pt"
MS_FLOOR = 0.1  # mode-seeking features: log magnitudes floored at -20 dB re the RMS
ONESHOT_BASE = 16  # one-shot internal lengths are 16·4^k samples

# Every option the engine accepts, with the default of the "default" recipe.
DEFAULTS: dict[str, Any] = {
    "recipe": "default",  # "default" | "wavegan-paper"
    "device": "auto",  # auto | cpu | cuda
    "threads": 0,  # torch CPU threads (0: leave torch's choice)
    "seed": 0,
    "loss": "ns-r1",  # "ns-r1" (non-saturating + R1) | "wgan-gp"
    "output": "harmonic",  # cycle mode: "harmonic" | "wave"
    "width": 16,  # base channel count of G and D
    "z_dim": 64,
    "batch": 32,
    "lr_g": 1e-3,  # separate learning rates (TTUR); equal rates measured best at these widths
    "lr_d": 1e-3,
    "beta1": 0.0,
    "beta2": 0.99,
    "r1_gamma": 1.0,
    "r1_every": 4,  # lazy R1 regularisation
    "gp_lambda": 10.0,
    "d_steps": 1,  # discriminator steps per generator step
    "phase_shuffle": 2,
    "mbstd": True,
    "spectral_d": True,  # cycle mode: D also sees the log-magnitude spectrum
    "transpose": False,  # transposed convs (paper) instead of upsample + conv
    "augment_p": 1.0,  # DiffAugment probability (0: off)
    "ema_beta": 0.995,  # EMA of G weights per step (0: off)
    "ms_lambda": 1.0,  # hinged mode-seeking weight (Mao et al. 2019; 0: off)
    "ms_target": 0.5,  # ... pushes pairs apart up to this × the real sounds' median distance
    "cover_lambda": 1.0,  # hinged coverage term (IMLE / Inclusive GAN; 0: off), cycle mode
    "cover_target": 1.0,  # ... pulls each real sound's own output to within this × T's NN spacing
    "cover_every": 20,  # steps between re-assignments of latents to real sounds
    "spread_lambda": 1.0,  # hinged spread term (0: off), cycle mode
    # ... outputs of a class spread at least this × its real sounds' mean distance
    "spread_target": 1.0,
    "novel_lambda": 1.0,  # hinged anti-copy term (0: off), cycle mode
    # ... pushes an output away from its nearest real sound up to this × T's NN spacing
    "novel_target": 0.6,
    # "unique": one distinct latent per real sound (optimal matching) | "nearest"
    "cover_match": "unique",
    "cover_pool": 2,  # latents drawn per real sound at each re-assignment (fewer: stronger spread)
    "checkpoint_every": 200,  # steps
    "eval_every": 300,  # steps between judge evaluations of the EMA generator
    "eval_samples": 128,
    "holdout": 0.15,  # share of each class held out to pick the best snapshot
    "oneshot_len": 16384,  # internal one-shot length (16·4^k); longer sounds are resampled down
    "snapshot_hook": None,  # programmatic: called (model, step, elapsed_s) at each evaluation
}

RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    # Donahue, McAuley & Puckette 2019 (WaveGAN): WGAN-GP, 5 D steps per G step, width 64,
    # transposed convs, phase shuffle 2, Adam(1e-4, 0.5, 0.9), no augmentation, no EMA.
    "wavegan-paper": {
        "loss": "wgan-gp",
        "output": "wave",
        "width": 64,
        "batch": 64,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "beta1": 0.5,
        "beta2": 0.9,
        "d_steps": 5,
        "mbstd": False,
        "spectral_d": False,
        "transpose": True,
        "augment_p": 0.0,
        "ema_beta": 0.0,
        "ms_lambda": 0.0,
        "cover_lambda": 0.0,
        "novel_lambda": 0.0,
        "spread_lambda": 0.0,
    },
}


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults ← recipe ← user options; unknown keys and bad values are refused by name."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise EngineError(
            f"wavegan: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(DEFAULTS))})"
        )
    recipe = options.get("recipe", "default")
    if recipe not in RECIPES:
        raise EngineError(f"wavegan: unknown recipe '{recipe}' (known: {', '.join(RECIPES)})")
    opts = dict(DEFAULTS)
    opts.update(RECIPES[recipe])
    opts.update(options)
    for key, value in list(opts.items()):
        want = DEFAULTS[key]
        if key == "snapshot_hook" or value is None:
            continue
        if isinstance(want, bool):
            if isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            opts[key] = bool(value)
        elif isinstance(want, int):
            try:
                opts[key] = int(value)
            except (TypeError, ValueError):
                raise EngineError(
                    f"wavegan: option {key} must be an integer (got {value!r})"
                ) from None
        elif isinstance(want, float):
            try:
                opts[key] = float(value)
            except (TypeError, ValueError):
                raise EngineError(
                    f"wavegan: option {key} must be a number (got {value!r})"
                ) from None
    checks = {
        "loss": opts["loss"] in ("ns-r1", "wgan-gp"),
        "output": opts["output"] in ("harmonic", "wave"),
        "cover_match": opts["cover_match"] in ("nearest", "unique"),
        "device": opts["device"] in ("auto", "cpu", "cuda"),
        "width": 1 <= opts["width"] <= 1024,
        "batch": 2 <= opts["batch"] <= 4096,
        "d_steps": 1 <= opts["d_steps"] <= 20,
        "holdout": 0.0 <= opts["holdout"] < 0.5,
        "augment_p": 0.0 <= opts["augment_p"] <= 1.0,
        "ema_beta": 0.0 <= opts["ema_beta"] < 1.0,
        "oneshot_len": opts["oneshot_len"] in [ONESHOT_BASE * 4**k for k in range(2, 7)],
        "checkpoint_every": opts["checkpoint_every"] >= 1,
        "eval_every": opts["eval_every"] >= 1,
        "cover_every": opts["cover_every"] >= 1,
        "cover_pool": 1 <= opts["cover_pool"] <= 1024,
        "cover_lambda": opts["cover_lambda"] >= 0,
        "cover_target": opts["cover_target"] >= 0,
        "novel_lambda": opts["novel_lambda"] >= 0,
        "spread_lambda": opts["spread_lambda"] >= 0,
        "spread_target": opts["spread_target"] >= 0,
        "novel_target": opts["novel_target"] >= 0,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise EngineError("wavegan: bad value for " + ", ".join(f"{k}={opts[k]!r}" for k in bad))
    return opts


def pick_device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise EngineError("wavegan: train.device is 'cuda' but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


# ---------------------------------------------------------------------------------------------
# data


def onset_align(x: np.ndarray, threshold: float = 0.02, pre: int = 16) -> np.ndarray:
    """Drop leading silence: start a few samples before the first sample above threshold·peak."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    idx = np.flatnonzero(np.abs(x) >= threshold * peak)
    start = max(0, int(idx[0]) - pre) if len(idx) else 0
    return x[start:]


def trim_tail(x: np.ndarray, threshold: float = 1.0 / 256) -> np.ndarray:
    """Drop trailing near-silence (below one 8-bit step of the peak)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    idx = np.flatnonzero(np.abs(x) >= threshold * peak)
    return x[: int(idx[-1]) + 1] if len(idx) else x


@dataclass
class Prepared:
    """Training arrays at the engine's internal resolution."""

    waves: np.ndarray  # (N, L) float32, peak 1
    labels: np.ndarray  # (N,) int64
    fracs: np.ndarray  # (N,) float32: used length / L (one-shots; 1 for cycles)
    length: int  # L: internal length
    internal_rate: int  # one-shots: internal sample rate (cycles: the dataset rate)


def internal_oneshot_geometry(max_len: int, rate: int, oneshot_len: int) -> tuple[int, int]:
    """(internal length 16·4^k, internal rate) for one-shots of at most ``max_len`` samples."""
    length = ONESHOT_BASE * 16
    while length < max_len and length < oneshot_len:
        length *= 4
    if max_len <= length:
        return length, rate
    return length, int(math.floor(rate * length / max_len))


def prepare_waves(
    waves_by_class: list[list[np.ndarray]], mode: str, rate: int, cycle_len: int, oneshot_len: int
) -> Prepared:
    waves, labels = [], []
    for ci, ws in enumerate(waves_by_class):
        for w in ws:
            waves.append(np.asarray(w, dtype=np.float32))
            labels.append(ci)
    if mode == "cycle":
        arr = np.stack(
            [
                w[:cycle_len] if len(w) >= cycle_len else np.pad(w, (0, cycle_len - len(w)))
                for w in waves
            ]
        )
        arr = arr - arr.mean(axis=1, keepdims=True)
        arr = arr / np.maximum(np.abs(arr).max(axis=1, keepdims=True), 1e-6)
        return Prepared(
            arr.astype(np.float32),
            np.array(labels, np.int64),
            np.ones(len(arr), np.float32),
            cycle_len,
            rate,
        )
    from ...audio.resample import resample

    cut = [trim_tail(onset_align(w)) for w in waves]
    cut = [c if len(c) >= 2 else np.zeros(2, np.float32) for c in cut]
    length, irate = internal_oneshot_geometry(max(len(c) for c in cut), rate, oneshot_len)
    arr = np.zeros((len(cut), length), np.float32)
    fracs = np.zeros(len(cut), np.float32)
    for i, c in enumerate(cut):
        if irate != rate:
            c = resample(c, rate, irate)
        c = c[:length]
        peak = float(np.max(np.abs(c))) if len(c) else 0.0
        arr[i, : len(c)] = c / peak if peak > 1e-9 else c
        fracs[i] = len(c) / length
    return Prepared(arr, np.array(labels, np.int64), fracs, length, irate)


# ---------------------------------------------------------------------------------------------
# networks from a stored description


def build_networks(spec: dict[str, Any]):
    from .networks import Discriminator, generator_from_spec

    g = generator_from_spec(spec)
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


def network_spec(opts: dict[str, Any], mode: str, length: int, n_classes: int) -> dict[str, Any]:
    output = opts["output"] if mode == "cycle" else "wave"
    return {
        "mode": mode,
        "length": length,
        "n_classes": n_classes,
        "output": output,
        "z_dim": opts["z_dim"],
        "width": opts["width"],
        "transpose": opts["transpose"],
        "phase_shuffle": opts["phase_shuffle"],
        "mbstd": opts["mbstd"],
        "spectral_d": opts["spectral_d"],
    }


# ---------------------------------------------------------------------------------------------
# judge-based snapshot score


def margin(check) -> float:
    """How far a judge check is from its limit, on one scale for every rule: positive = room
    to spare, negative = missed by that much. Relative for "≥" rules, the difference for
    "≤ H + m" (proportions), the log ratio for "≤ x × H"."""
    v, lim = float(check.value), float(check.limit)
    if check.name == "silent":
        return 0.0 if check.passed else -1.0
    if not (math.isfinite(v) and math.isfinite(lim)):
        return 0.0 if check.passed else -1.0
    if check.rule.startswith("≥"):
        return (v - lim) / max(abs(lim), 1e-9)
    if "×" in check.rule:
        return math.log(max(lim, 1e-12) / max(v, 1e-12))
    return lim - v


def shortfall(check) -> float:
    """How far a failed check misses its limit (0 when it passes)."""
    return 0.0 if check.passed else max(0.0, -margin(check))


def judge_score(
    gen: list[np.ndarray], train: list[np.ndarray], held: list[np.ndarray], kind: str, rate: int
) -> tuple[tuple, dict[str, Any]]:
    """Score a snapshot with the judge: passing beats failing; then the smaller total shortfall
    of the failed rules (how far they miss, not how many: one rule missed by a hair must not
    lose to a snapshot that misses two by a mile); then the larger smallest margin over all
    rules (among passing snapshots, the one farthest from failing any rule: the judge's draw
    on the user's side is another sample, and a pass by a hair is a coin toss there)."""
    from ...judge.metrics import evaluate

    report = evaluate(gen, train, held, kind, rate=rate, permutations=10, power_probes=0)
    margins = [margin(c) for c in report.checks if c.name != "silent"]
    missing = sum(shortfall(c) for c in report.checks)
    least = min(margins) if margins else 0.0
    flat = {
        k: float(v)
        for k, v in report.metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    flat["passed"] = float(report.passed)
    flat["failed_rules"] = float(len(report.failed))
    flat["shortfall"] = round(missing, 4)
    flat["least_margin"] = round(least, 4)
    return (int(report.passed), -missing, least), {"metrics": flat, "reasons": list(report.reasons)}


# ---------------------------------------------------------------------------------------------
# the loop


def ms_features(x, oneshot: bool):
    """What "different" means for the mode-seeking term: RMS-normalised log-magnitude spectra
    (harmonics 1-48, floored at -20 dB so only the strong harmonics count: pushing quiet ones
    apart makes off-class junk) for cycles, the waves for
    one-shots."""
    import torch

    if oneshot:
        return x
    X = torch.fft.rfft(x, dim=-1)[:, 1:49]
    mag = (X.real**2 + X.imag**2 + 1e-8).sqrt()
    mag = mag / (mag.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-8)
    return torch.log(mag + MS_FLOOR) if MS_FLOOR > 0 else mag


def cover_features(x):
    """The judge's cycle features in torch, differentiable: log magnitudes of harmonics 1-48
    relative to the cycle's RMS (harmonics 1-128, as after the judge's resampling to 256
    points), with a soft -60 dB floor, divided by √48 — so a distance here is the judge's."""
    import torch

    from ...judge.features import CYCLE_FLOOR_DB, CYCLE_HARMONICS

    p = torch.fft.rfft(x, dim=-1).abs().pow(2)
    total = p[:, 1:129].sum(dim=1, keepdim=True)
    rel = p[:, 1 : CYCLE_HARMONICS + 1] / (total + 1e-12)
    return 10 * torch.log10(rel + 10 ** (CYCLE_FLOOR_DB / 10)) / math.sqrt(CYCLE_HARMONICS)


def copy_hinge(feats, y, real_feats, real_labels, radius):
    """Anti-copy hinge: mean over outputs of max(0, radius[class] − distance to the nearest real
    sound of the same class), in the judge's feature space."""
    import torch

    dist = torch.cdist(feats, real_feats)
    dist = dist.masked_fill(y.view(-1, 1) != real_labels.view(1, -1), float("inf"))
    return torch.relu(radius[y] - dist.min(dim=1).values).mean()


def spread_hinge(feats, y, target):
    """Spread hinge: the squared relative shortfall of the mean distance between same-class
    outputs below ``target[class]`` (zero once they are on average that far apart). Squared, so
    a batch that falls short by a hair (sampling noise of 32 outputs) barely pushes: a linear
    hinge pushed at every such dip and overshot the target by 10-15 %."""
    import torch

    dist = torch.cdist(feats, feats)
    pair = (y.view(-1, 1) == y.view(1, -1)) & ~torch.eye(len(y), dtype=torch.bool, device=y.device)
    t = target[y].view(-1, 1).expand_as(dist)
    short = torch.relu(((t - dist) * pair).sum() / (t * pair).sum().clamp(min=1e-9))
    return short * short


def mode_seeking(fake, z, oneshot: bool, target: float):
    """Hinged mode-seeking term (after MSGAN, Mao et al. 2019): two latents far apart must give
    outputs at least ``target`` × (their latent distance ÷ its mean) apart. The hinge stops the
    push once outputs are as spread as ``target`` asks, so diversity is not bought with
    off-class sounds."""
    import torch

    half = fake.shape[0] // 2
    a, b = ms_features(fake[:half, 0], oneshot), ms_features(fake[half : 2 * half, 0], oneshot)
    dist_out = (a - b).abs().mean(dim=1)
    dist_z = (z[:half] - z[half : 2 * half]).abs().mean(dim=1)
    return torch.relu(target * dist_z / 1.1284 - dist_out).mean()  # E|z1 - z2| = 2/√π


def _state_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _to_cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def fit(
    dataset,
    budget: Budget,
    progress: ProgressFn | None,
    checkpoint_dir: Path,
    options: dict[str, Any],
):
    """Train on ``dataset``; resume from ``checkpoint_dir`` when it holds a compatible
    checkpoint."""
    import torch

    from .augment import diff_augment
    from .loss import d_loss_ns, d_loss_wgan, g_loss_ns, g_loss_wgan, gradient_penalty, r1_penalty
    from .model import WaveGANModel
    from .networks import generate_internal

    opts = resolve_options(options)
    hook: Callable | None = opts.pop("snapshot_hook")
    mode = dataset.mode
    if mode not in ("cycle", "oneshot"):
        raise EngineError(f"wavegan: unknown mode '{mode}'")
    classes = dataset.class_names
    if not classes:
        raise EngineError("wavegan: the dataset is empty")
    device = pick_device(opts["device"])
    if opts["threads"] > 0:
        torch.set_num_threads(opts["threads"])
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = checkpoint_dir / CHECKPOINT

    # split each class: train part and a held-out part for snapshot selection
    rng = random.Random(opts["seed"])
    train_by_class, held_by_class = [], []
    for c in classes:
        ws = list(dataset.classes[c])
        idx = list(range(len(ws)))
        rng.shuffle(idx)
        k = int(round(len(ws) * opts["holdout"])) if len(ws) >= 10 else 0
        held_by_class.append([ws[i] for i in idx[:k]])
        train_by_class.append([ws[i] for i in idx[k:]])
    prep = prepare_waves(train_by_class, mode, dataset.rate, dataset.cycle_len, opts["oneshot_len"])
    held_prep = (
        prepare_waves(held_by_class, mode, dataset.rate, dataset.cycle_len, opts["oneshot_len"])
        if any(held_by_class)
        else None
    )
    if held_prep is not None and held_prep.length != prep.length:
        held_prep = None  # geometry differs (one-shot lengths): select on the training part instead
    spec = network_spec(opts, mode, prep.length, len(classes))

    torch.manual_seed(opts["seed"])
    g, d = build_networks(spec)
    g, d = g.to(device), d.to(device)
    g_ema = copy.deepcopy(g).eval()
    for p in g_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), lr=opts["lr_g"], betas=(opts["beta1"], opts["beta2"]))
    opt_d = torch.optim.Adam(d.parameters(), lr=opts["lr_d"], betas=(opts["beta1"], opts["beta2"]))

    step, prior_elapsed = 0, 0.0
    best: dict[str, Any] | None = None
    cover_z = None
    fingerprint = {
        "spec": spec,
        "classes": classes,
        "n": int(len(prep.waves)),
        "recipe": opts["recipe"],
        "loss": opts["loss"],
    }
    if ckpt_path.is_file():
        try:
            state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a torn or foreign file: start over, say so
            log.warning("%s: unreadable checkpoint (%s); starting fresh", ckpt_path, exc)
            state = None
        if state is not None and state.get("fingerprint") == fingerprint:
            g.load_state_dict(state["g"])
            d.load_state_dict(state["d"])
            g_ema.load_state_dict(state["g_ema"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            step, prior_elapsed, best = (
                int(state["step"]),
                float(state["elapsed"]),
                state.get("best"),
            )
            torch.set_rng_state(state["torch_rng"])
            cover_z = state.get("cover_z")
            log.info("resumed from %s at step %d", ckpt_path, step)
            if progress:
                progress(Progress(step, prior_elapsed, message=f"resumed at step {step}"))
        elif state is not None:
            log.warning(
                "%s: checkpoint is for another dataset or settings; starting fresh", ckpt_path
            )

    real = torch.as_tensor(prep.waves).unsqueeze(1).to(device)
    labels = torch.as_tensor(prep.labels).to(device)
    fracs_t = torch.as_tensor(prep.fracs).to(device)
    n_real = real.shape[0]
    batch = opts["batch"]
    train_list = [prep.waves[i] for i in range(n_real)]
    held_list = (
        [held_prep.waves[i] for i in range(len(held_prep.waves))] if held_prep is not None else None
    )
    held_labels = held_prep.labels if held_prep is not None else None
    wgan = opts["loss"] == "wgan-gp"
    oneshot = mode == "oneshot"

    class_fracs = {
        c: [float(v) for v in prep.fracs[prep.labels == ci]] for ci, c in enumerate(classes)
    }

    def elapsed() -> float:
        return prior_elapsed + budget.elapsed()

    def finished() -> bool:
        # absolute step count (a resumed run continues it); seconds count this run only —
        # callers that resume pass the time still left (the CLI and the daemon keep the spent time)
        return budget.done(step)

    def real_batch():
        idx = torch.randint(0, n_real, (batch,), device=device)
        x = real[idx]
        if not oneshot:  # random rotation of every cycle
            from .augment import circular_shift

            x = circular_shift(x)
        return x, labels[idx], fracs_t[idx]

    def fake_batch(y, f):
        z = torch.randn(y.shape[0], spec["z_dim"], device=device)
        return g(z, y, f)

    def aug(x):
        return diff_augment(x, mode, opts["augment_p"]) if opts["augment_p"] > 0 else x

    def sample_fn(model_g, per_class_n: int) -> dict[int, np.ndarray]:
        out = {}
        for ci in range(len(classes)):
            fr = None
            if oneshot:
                pool = prep.fracs[prep.labels == ci]
                fr = np.random.default_rng(ci).choice(pool, per_class_n)
            out[ci] = generate_internal(model_g, per_class_n, ci, fr, seed=1234 + ci, device=device)
        return out

    def evaluate_snapshot() -> None:
        nonlocal best
        ev_n = opts["eval_samples"]
        gen = sample_fn(g_ema, ev_n)
        if hook is not None:
            snap = WaveGANModel(
                mode,
                classes,
                {},
                dataset.rate,
                {},
                spec=spec,
                internal_rate=prep.internal_rate,
                class_fracs=class_fracs,
            )
            snap._g = g_ema
            hook(snap, step, elapsed())
        scores, info = [], {}
        try:
            for ci in range(len(classes)):
                tr = [w for w, lab in zip(train_list, prep.labels) if lab == ci]
                he = (
                    [w for w, lab in zip(held_list, held_labels) if lab == ci]
                    if held_list is not None
                    else []
                )
                if len(he) < 4:
                    he = tr  # too few held out for the judge: compare with the training part
                s, info = judge_score(list(gen[ci]), tr, he, mode, prep.internal_rate)
                scores.append(s)
        except MiragenError as exc:  # e.g. a class too small to judge: keep the latest snapshot
            log.info("snapshot at step %d not judged (%s): keeping the latest", step, exc)
            scores = [(0, 0, 0.0)]
        score = (
            float(sum(s[0] for s in scores)),
            float(sum(s[1] for s in scores)),
            float(min(s[2] for s in scores)),
        )
        if progress:
            progress(
                Progress(
                    step,
                    elapsed(),
                    metrics=dict(info.get("metrics", {})),
                    message=f"snapshot score {score}",
                )
            )
        if best is None or score >= tuple(best["score"]):
            best = {
                "score": list(score),
                "step": step,
                "g_ema": _to_cpu(g_ema.state_dict()),
                "metrics": info.get("metrics", {}),
            }
            log.info("step %d: new best snapshot %s", step, score)

    def save_checkpoint() -> None:
        state = {
            "fingerprint": fingerprint,
            "g": _to_cpu(g.state_dict()),
            "d": _to_cpu(d.state_dict()),
            "g_ema": _to_cpu(g_ema.state_dict()),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "step": step,
            "elapsed": elapsed(),
            "best": best,
            "torch_rng": torch.get_rng_state(),
            "cover_z": cover_z.cpu() if cover_z is not None else None,
        }
        atomic_write_bytes(ckpt_path, _state_bytes(state))

    ms_target = 0.0
    if opts["ms_lambda"] > 0:
        with torch.no_grad():
            fr = ms_features(real[: min(n_real, 256), 0], oneshot)
            pd = torch.cdist(fr, fr, p=1) / fr.shape[1]  # mean absolute difference, no N×N×L tensor
            iu = torch.triu_indices(len(fr), len(fr), 1)
            ms_target = opts["ms_target"] * float(pd[iu[0], iu[1]].median()) if len(fr) > 1 else 0.0
    # coverage (cycle mode; after IMLE, Li & Malik 2018, and Inclusive GAN, Yu et al. 2020):
    # every `cover_every` steps each real sound is given its own latent — an optimal one-to-one
    # matching between the class's sounds and `cover_pool` × as many fresh draws, by distance in
    # the judge's feature space — and at every step the outputs of a batch of those latents are
    # pulled towards their sounds until they are within `cover_target` × the class's typical
    # nearest-neighbour spacing, and no further (the anti-copy term below keeps them from
    # landing on the sound itself). A GAN alone drops the sounds its
    # discriminator stops asking for; this term keeps every one of them represented.
    #
    # anti-copy (cycle mode): an output nearer to a real sound of its class than `novel_target`
    # × the class's typical spacing is pushed away from it (the judge calls an output nearer than
    # 0.5 × that spacing a copy, and the generate gate throws such outputs away).
    #
    # spread (cycle mode): the outputs of a class in a batch must be, on average, at least
    # `spread_target` × as far apart as the class's real sounds are (the hinge stops there).
    cover = opts["cover_lambda"] > 0 and not oneshot and not wgan
    novel = opts["novel_lambda"] > 0 and not oneshot and not wgan
    spread = opts["spread_lambda"] > 0 and not oneshot and not wgan
    if cover or novel or spread:
        with torch.no_grad():
            real_feats = cover_features(real[:, 0])
            spacing = torch.full(
                (len(classes),), float("nan"), device=device
            )  # median NN distance per class
            spread_real = torch.zeros(
                len(classes), device=device
            )  # mean pairwise distance per class
            for ci in range(len(classes)):
                sel = (labels == ci).nonzero().view(-1)
                if len(sel) < 2:
                    continue
                dd = torch.cdist(real_feats[sel], real_feats[sel])
                dd.fill_diagonal_(float("inf"))
                spacing[ci] = dd.min(dim=1).values.median()
                spread_real[ci] = dd[torch.isfinite(dd)].mean()
            # a class of one sound has no spacing: never pulled, never pushed
            cover_tau = torch.nan_to_num(opts["cover_target"] * spacing[labels], nan=float("inf"))
            novel_r = torch.nan_to_num(opts["novel_target"] * spacing, nan=0.0)

    if cover:
        if cover_z is None or cover_z.shape != (n_real, spec["z_dim"]):
            cover_z = torch.randn(n_real, spec["z_dim"])
        cover_z = cover_z.to(device)

    def reassign_cover() -> None:
        """Give each real sound a latent from fresh draws (fresh every time, as in IMLE: no
        latent becomes a fixed key that memorises one sound while the rest of the latent space
        collapses). ``unique``: an optimal one-to-one matching, so crowded regions cannot claim
        the latents of the sounds at the edges; ``nearest``: each sound's nearest draw."""
        with torch.no_grad():
            for ci in range(len(classes)):
                sel = (labels == ci).nonzero().view(-1)
                if len(sel) == 0:
                    continue
                zs = torch.randn(len(sel) * opts["cover_pool"], spec["z_dim"], device=device)
                y_c = torch.full((256,), ci, dtype=torch.long, device=device)
                feats = torch.cat(
                    [cover_features(g(zc, y_c[: len(zc)], None)[:, 0]) for zc in zs.split(256)]
                )
                dist = torch.cdist(real_feats[sel], feats)
                if opts["cover_match"] == "unique":
                    from scipy.optimize import linear_sum_assignment

                    _, cols = linear_sum_assignment(dist.cpu().numpy())
                    cover_z[sel] = zs[torch.as_tensor(cols, device=device)]
                else:
                    cover_z[sel] = zs[dist.argmin(dim=1)]

    last_report = time.monotonic()
    losses: dict[str, float] = {}
    while not finished():
        # --- discriminator
        for _ in range(opts["d_steps"]):
            x, y, f = real_batch()
            with torch.no_grad():
                fake = fake_batch(y, f)
            xr, xf = aug(x), aug(fake)
            do_r1 = (not wgan) and opts["r1_gamma"] > 0 and step % opts["r1_every"] == 0
            if do_r1:
                xr = xr.detach().requires_grad_(True)
            d_real, d_fake = d(xr, y), d(xf, y)
            if wgan:
                loss_d = d_loss_wgan(d_real, d_fake) + opts["gp_lambda"] * gradient_penalty(
                    d, x, fake, y
                )
            else:
                loss_d = d_loss_ns(d_real, d_fake)
                if do_r1:
                    r1 = r1_penalty(d_real, xr)
                    loss_d = loss_d + 0.5 * opts["r1_gamma"] * opts["r1_every"] * r1
                    losses["r1"] = float(r1.detach())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        # --- generator
        idx = torch.randint(0, n_real, (batch,), device=device)
        y, f = labels[idx], fracs_t[idx]
        z = torch.randn(batch, spec["z_dim"], device=device)
        if cover:
            if step % opts["cover_every"] == 0:
                reassign_cover()
            both = g(torch.cat([z, cover_z[idx]]), torch.cat([y, y]), None)
            fake, near = both[:batch], both[batch:]
        else:
            fake = g(z, y, f)
        d_out = d(aug(fake), y)
        loss_g = g_loss_wgan(d_out) if wgan else g_loss_ns(d_out)
        f_fake = cover_features(fake[:, 0]) if (spread or novel) else None
        f_near = cover_features(near[:, 0]) if cover else None
        if cover:
            cov = torch.relu((f_near - real_feats[idx]).norm(dim=1) - cover_tau[idx]).mean()
            loss_g = loss_g + opts["cover_lambda"] * cov
            losses["cover"] = float(cov.detach())
        if spread:
            sp = spread_hinge(f_fake, y, opts["spread_target"] * spread_real)
            loss_g = loss_g + opts["spread_lambda"] * sp
            losses["spread"] = float(sp.detach())
        if novel:
            f_out, y_out = (
                (torch.cat([f_fake, f_near]), torch.cat([y, y])) if cover else (f_fake, y)
            )
            cp = copy_hinge(f_out, y_out, real_feats, labels, novel_r)
            loss_g = loss_g + opts["novel_lambda"] * cp
            losses["copy"] = float(cp.detach())
        if opts["ms_lambda"] > 0:
            ms = mode_seeking(fake, z, oneshot, ms_target)
            loss_g = loss_g + opts["ms_lambda"] * ms
            losses["ms"] = float(ms.detach())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # --- EMA of G
        with torch.no_grad():
            beta = min(opts["ema_beta"], (1 + step) / (10 + step)) if opts["ema_beta"] > 0 else 0.0
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.copy_(p.detach().lerp(pe, beta))
        step += 1
        losses.update(d=float(loss_d.detach()), g=float(loss_g.detach()))
        if not all(math.isfinite(v) for v in losses.values()):
            raise EngineError(f"wavegan: training diverged at step {step} (losses {losses})")
        if step % opts["eval_every"] == 0:
            evaluate_snapshot()
        if step % opts["checkpoint_every"] == 0:
            save_checkpoint()
        if progress and time.monotonic() - last_report >= 2.0:
            last_report = time.monotonic()
            progress(Progress(step, elapsed(), losses=dict(losses)))
    if best is None or best["step"] != step:
        evaluate_snapshot()
    save_checkpoint()
    g_ema.load_state_dict(best["g_ema"])
    meta = {
        "steps": step,
        "train_seconds": round(elapsed(), 2),
        "best_step": best["step"],
        "best_metrics": best.get("metrics", {}),
        "options": {k: v for k, v in opts.items() if k not in ("device",)},
        "device": str(device),
    }
    model = WaveGANModel(
        mode,
        classes,
        {},
        dataset.rate,
        meta,
        spec=spec,
        internal_rate=prep.internal_rate,
        class_fracs=class_fracs,
    )
    model.set_generator(g_ema.cpu())
    return model
