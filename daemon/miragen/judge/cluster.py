"""Group unlabeled sounds into classes on the judge's features (k-means).

With ``k='auto'`` the number of classes is the one with the best silhouette score among
k = 2 … min(:data:`AUTO_MAX_K`, n − 1) (n sounds); fewer than 3 sounds form one class. Then,
with ``max_class``, every class of more than ``max_class`` sounds is split again the same way
on its own sounds (k by the best silhouette among the splits whose every part keeps at least
:data:`MIN_SPLIT_CLASS` sounds; none: it stays whole), and so on down; the parts of each split
are then joined again, nearest first, while two together are not too large. The silhouette
over a whole folder favours its broadest division: five synthesised families of single cycles
(537 sounds) give k = 2, one class of 385 sounds holding four of them, which no generator
trained in the issue's 300 s matches; split, they give 7 classes of 37–152 sounds, two or
three of them slices of one family, and joined again 4 classes of 115–152 (docs/wavegan.md,
"Stop 43: sorting a big folder").
Labels are numbered by class size, largest first (ties: by first member), so the same
material always gives the same names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import MiragenError
from .features import ONESHOT_RATE, features

log = logging.getLogger(__name__)

AUTO_MAX_K = 12
MIN_SPLIT_CLASS = 16  # no part of a class split again is smaller (daemon.unsorted_min's default)


@dataclass
class ClusterResult:
    labels: np.ndarray  # class number per sound, 0 = largest class
    k: int
    silhouette: float | None  # of the chosen k (None when k = 1)
    scores: dict[int, float] = field(default_factory=dict)  # silhouette per k tried (auto)


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


def _renumber(labels: np.ndarray) -> np.ndarray:
    uniq = list(dict.fromkeys(labels.tolist()))  # first appearance order
    order = sorted(uniq, key=lambda c: (-int(np.sum(labels == c)), uniq.index(c)))
    mapping = {c: i for i, c in enumerate(order)}
    return np.array([mapping[c] for c in labels.tolist()], dtype=int)


def parse_k(value: str | int) -> int | str:
    if isinstance(value, int):
        k: int | str = value
    elif str(value).strip().lower() == "auto":
        return "auto"
    else:
        try:
            k = int(str(value))
        except ValueError:
            raise MiragenError(
                f"--k must be 'auto' or a whole number of classes (got {value!r})"
            ) from None
    if isinstance(k, int) and k < 1:
        raise MiragenError(f"--k must be at least 1 (got {k})")
    return k


def _best_silhouette(
    x: np.ndarray, ks: range, min_size: int, seed: int
) -> tuple[dict[int, float], tuple[float, int, np.ndarray] | None]:
    """k-means of ``x`` for each k of ``ks``; the silhouette of each, and (silhouette, k,
    labels) of the best one among those whose every class has at least ``min_size`` members."""
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    for kk in ks:
        lab = _kmeans(x, kk, seed)
        sizes = np.bincount(lab, minlength=kk)
        if np.count_nonzero(sizes) < 2 or sizes.min() < min_size:
            continue
        s = float(silhouette_score(x, lab))
        scores[kk] = s
        if best is None or s > best[0] + 1e-12:
            best = (s, kk, lab)
    return scores, best


def _split_large(x: np.ndarray, labels: np.ndarray, max_class: int, seed: int) -> np.ndarray:
    """Split every class of more than ``max_class`` members again on its own members (k by the
    best silhouette, every part at least :data:`MIN_SPLIT_CLASS`), down to classes that are
    small enough or that no such split divides; then join the parts of each split again, the
    nearest two first (Ward's distance), while the two together are not too large."""
    out = np.zeros(len(labels), dtype=int)
    nxt = 0
    for c in dict.fromkeys(labels.tolist()):  # first appearance order
        sel = np.flatnonzero(labels == c)
        sub = np.zeros(len(sel), dtype=int)
        if len(sel) > max_class:
            ks = range(2, min(AUTO_MAX_K, len(sel) // MIN_SPLIT_CLASS) + 1)
            _, best = _best_silhouette(x[sel], ks, MIN_SPLIT_CLASS, seed)
            if best is not None:
                sub = _join_parts(x[sel], _split_large(x[sel], best[2], max_class, seed), max_class)
        out[sel] = nxt + sub
        nxt += int(sub.max()) + 1
    return out


def _join_parts(x: np.ndarray, labels: np.ndarray, max_class: int) -> np.ndarray:
    """Join the two classes of ``labels`` nearest by Ward's distance (the rise in the sum of
    squares that joining them costs) whose members together are at most ``max_class``, again
    until no two fit; labels renumbered 0, 1, …. The split that
    makes classes small enough can cut one family into pieces (k-means slices a broad family
    as readily as it separates two), and a slice's sounds are drawn with hard edges that a
    generator spills over (docs/wavegan.md, "Stop 43: sorting a big folder")."""
    labels = labels.copy()
    while True:
        ids = list(dict.fromkeys(labels.tolist()))
        n = {i: int(np.sum(labels == i)) for i in ids}
        mean = {i: x[labels == i].mean(axis=0) for i in ids}
        pairs = [
            (n[a] * n[b] / (n[a] + n[b]) * float(np.sum((mean[a] - mean[b]) ** 2)), a, b)
            for ai, a in enumerate(ids)
            for b in ids[ai + 1 :]
            if n[a] + n[b] <= max_class
        ]
        if not pairs:
            return np.unique(labels, return_inverse=True)[1]
        _, a, b = min(pairs)
        labels[labels == b] = a


def cluster_features(
    x: np.ndarray, k: int | str = "auto", *, seed: int = 0, max_class: int | None = None
) -> ClusterResult:
    """Class labels of the feature rows ``x``: ``k`` classes, or ``'auto'`` (see the module;
    ``max_class``: split larger classes again, None or 0: never)."""
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n == 0:
        raise MiragenError("nothing to cluster")
    k = parse_k(k)
    if k == "auto":
        scores, best = _best_silhouette(x, range(2, min(AUTO_MAX_K, n - 1) + 1), 0, seed)
        if best is None:
            return ClusterResult(np.zeros(n, dtype=int), 1, None, scores)
        sil, kk, labels = best
        if max_class:
            split = _split_large(x, labels, max_class, seed)
            if len(set(split.tolist())) > len(set(labels.tolist())):
                labels, kk = split, len(set(split.tolist()))
                sil = float(silhouette_score(x, labels))
        return ClusterResult(_renumber(labels), kk, sil, scores)
    assert isinstance(k, int)
    if k > n:
        raise MiragenError(f"cannot make {k} classes from {n} sounds")
    if k == 1:
        return ClusterResult(np.zeros(n, dtype=int), 1, None, {})
    lab = _kmeans(x, k, seed)
    sil = float(silhouette_score(x, lab)) if 2 <= len(set(lab.tolist())) <= n - 1 else None
    return ClusterResult(_renumber(lab), k, sil, {k: sil} if sil is not None else {})


def cluster(
    waves: Sequence[np.ndarray],
    k: int | str = "auto",
    kind: str = "cycle",
    *,
    rate: int = ONESHOT_RATE,
    seed: int = 0,
    max_class: int | None = None,
) -> ClusterResult:
    """Cluster waves (cycles, or one-shots at ``rate``) on the judge's features (``max_class``
    with ``k='auto'``: classes larger than that are split again, see the module)."""
    res = cluster_features(
        features(list(waves), kind, rate=rate), k, seed=seed, max_class=max_class
    )
    log.info(
        "cluster: %d sounds → %d classes (silhouette %s)",
        len(waves),
        res.k,
        "-" if res.silhouette is None else f"{res.silhouette:.3f}",
    )
    return res


def cluster_waves(
    waves: Sequence[np.ndarray],
    k: int | str = "auto",
    kind: str = "cycle",
    *,
    rate: int = ONESHOT_RATE,
    seed: int = 0,
) -> np.ndarray:
    """Class labels (0 = largest class) for ``waves``; ``k`` a number or 'auto'."""
    return cluster(waves, k, kind, rate=rate, seed=seed).labels
