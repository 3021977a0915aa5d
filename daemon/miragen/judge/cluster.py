"""Group unlabeled sounds into classes on the judge's features (k-means).

With ``k='auto'`` the number of classes is the one with the best silhouette score among
k = 2 … min(:data:`AUTO_MAX_K`, n − 1) (n sounds); fewer than 3 sounds form one class.
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


def cluster_features(x: np.ndarray, k: int | str = "auto", *, seed: int = 0) -> ClusterResult:
    from sklearn.metrics import silhouette_score

    n = len(x)
    if n == 0:
        raise MiragenError("nothing to cluster")
    k = parse_k(k)
    if k == "auto":
        scores: dict[int, float] = {}
        best: tuple[float, int, np.ndarray] | None = None
        for kk in range(2, min(AUTO_MAX_K, n - 1) + 1):
            lab = _kmeans(x, kk, seed)
            if len(set(lab.tolist())) < 2:
                continue
            s = float(silhouette_score(x, lab))
            scores[kk] = s
            if best is None or s > best[0] + 1e-12:
                best = (s, kk, lab)
        if best is None:
            return ClusterResult(np.zeros(n, dtype=int), 1, None, scores)
        return ClusterResult(_renumber(best[2]), best[1], best[0], scores)
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
) -> ClusterResult:
    """Cluster waves (cycles, or one-shots at ``rate``) on the judge's features."""
    res = cluster_features(features(list(waves), kind, rate=rate), k, seed=seed)
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
