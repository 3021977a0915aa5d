"""Judging a generator against its own training set, cross-validated.

A held-out part of a small class is a handful of sounds: a figure measured on it is mostly
sampling noise, and a snapshot chosen on it is chosen by chance. The training set is four times
larger and the generator can draw as many sounds as asked, so this judge uses both: ``splits``
times, a random ``share`` of the training set T plays a real set S of m sounds, the rest T₁ is the
reference, and m fresh draws G_i of the generator are measured against T₁ exactly as S is. Each
figure is reported as the mean over the splits of G_i's value ÷ S's value (1 = as good as real
sounds the model has not been compared with), with its standard error over the splits.

The figures are the judge's (``judge.metrics``): precision (share of the set inside T₁'s k-NN
manifold), recall (share of T₁ inside the set's own manifold), coverage (share of T₁ with a set
member inside its k-NN ball; Naeem et al. 2020) and diversity (mean pairwise distance). The
generator was trained on S too, so these figures say how well it covers the class's sounds, not
whether it copies them: the copy rules (``metrics.evaluate``: novelty, copy fraction, measured
against all of T) say that.

The copy rules have a cross-validated form too, with no held-out sound: in each split, the
nearest-neighbour distances of G_i to T₁ against those of S to T₁ (S is real and T₁ does not hold
it, so S is what new sounds look like from T₁). ``cv_novelty``: median of G_i's ÷ median of S's
(a copier's copies of T₁ sit at distance 0, about half of its draws in each split);
``cv_copy``: share of G_i nearer to T₁ than ``copy_factor`` × S's median, minus the same share of
S. Both rest on the whole training set.
"""

from __future__ import annotations

import numpy as np

from .metrics import K_NN, knn_radii, mean_pairwise, pairwise

FIGURES = ("precision", "recall", "coverage", "diversity")
COPY_FIGURES = ("novelty", "copy")


def _figures(x: np.ndarray, ref: np.ndarray, ref_radii: np.ndarray) -> np.ndarray:
    d = pairwise(x, ref)  # one distance matrix serves all four figures
    inside_ref = d <= ref_radii[None, :]
    x_radii = knn_radii(x, K_NN)
    return np.array(
        [
            float(np.mean(inside_ref.any(axis=1))),  # precision: x inside T₁'s manifold
            float(np.mean((d <= x_radii[:, None]).any(axis=0))),  # recall: T₁ inside x's
            float(np.mean(inside_ref.any(axis=0))),  # coverage: T₁'s balls holding some x
            mean_pairwise(x) / max(mean_pairwise(ref), 1e-12),
        ]
    )


def cross_validated(
    gen_feats: np.ndarray,
    train_feats: np.ndarray,
    *,
    splits: int = 20,
    share: float = 0.5,
    seed: int = 0,
    copy_factor: float = 0.5,
) -> dict[str, float]:
    """``cv_<figure>`` (mean ratio G_i ÷ S over the splits) and ``cv_<figure>_se`` for each of
    :data:`FIGURES`; empty when T is too small to split (fewer than 8 sounds)."""
    n_t = len(train_feats)
    m = int(round(n_t * share))
    if n_t < 8 or m < K_NN + 1 or n_t - m < K_NN + 1 or len(gen_feats) < m:
        return {}
    rng = np.random.default_rng(seed)
    ratios, copies = [], []
    for _ in range(splits):
        idx = rng.permutation(n_t)
        s, ref = train_feats[idx[:m]], train_feats[idx[m:]]
        g = gen_feats[rng.choice(len(gen_feats), m, replace=False)]
        radii = knn_radii(ref, K_NN)
        real = _figures(s, ref, radii)
        ratios.append(_figures(g, ref, radii) / np.maximum(real, 1e-9))
        copies.append(_copy_figures(g, s, ref, copy_factor))
    out = {}
    for names, values in ((FIGURES, ratios), (COPY_FIGURES, copies)):
        r = np.array(values)
        mean, se = r.mean(axis=0), r.std(axis=0, ddof=1) / np.sqrt(len(r))
        for i, name in enumerate(names):
            out[f"cv_{name}"] = round(float(mean[i]), 4)
            out[f"cv_{name}_se"] = round(float(se[i]), 4)
    return out


def _copy_figures(g: np.ndarray, s: np.ndarray, ref: np.ndarray, factor: float) -> np.ndarray:
    """(novelty, copy) of one split: G's nearest distances to T₁ against S's (module doc)."""
    dg = pairwise(g, ref).min(axis=1)
    ds = pairwise(s, ref).min(axis=1)
    typical = max(float(np.median(ds)), 1e-12)
    near = factor * typical
    return np.array(
        [float(np.median(dg)) / typical, float(np.mean(dg < near) - np.mean(ds < near))]
    )
