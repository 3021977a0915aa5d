"""The judge's checks at the generator's own size: G against T, no held-out set in the way.

Every distribution rule of :mod:`.metrics` compares G with the held-out set H at H's size, so its
power is capped by the 10-46 held-out sounds a bank can spare (docs/judge.md, "Power"). Two
collapses need no held-out set to be seen, and the generator can draw as many sounds as asked:

- **clusters**: the total-variation distance between T's proportions over its k-means bins (the
  NDB/K bins) and G's: the share of G that would have to move between bins to be distributed like
  T. A model that misses whole kinds of sounds (a *regional* collapse: half of T's bins empty)
  scores about 0.5 at any size. Its null, "G drawn like T", is known without any real set: the
  distance between two multinomial samples of T's proportions at sizes |T| and |G|. The rule is
  that null's 95th percentile + a margin for a generator that is imperfect without being
  collapsed (:attr:`Thresholds.cluster_margin`).
- **repeats**: the share of G's sounds with another G sound nearer than
  :attr:`Thresholds.repeat_factor` (0.25, the candidate gate's "duplicate") × T's spacing, on
  the whole of G: a model that draws the same few sounds again and again scores near 1 at any
  size. The reference is T's own share at min(|G|, |T|) sounds (random draws when |G| is the
  smaller). A larger set holds more near-twins than a smaller one drawn alike, and T cannot show
  how many more at a size it does not have: the margin (:attr:`Thresholds.repeat_margin`) covers
  that growth, measured on real banks with a small T and a large R
  (``bench/judge_calibration.py --whole --t-size``; docs/judge.md, "Power at the generator's
  size").

Power at G's size: the verdict can be *pass* when every check passes and both checks catch
every half-collapsed probe of G's size made from G: a model that draws G's size only from bins
that hold half of T, distributed there like G's own sounds in them (regional), and a random half
of G, each twice (repeats). See :func:`power`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TV_NULL_DRAWS = 2000
TV_NULL_QUANTILE = 0.95
REPEAT_DRAWS = 10
MIN_PROBE = 4  # a regional probe needs this many of G's sounds in the region
# the checks at G's size give a conclusive verdict from this many generated sounds on: below
# it, sets of each sound twice + 8-bit noise (whose twins the features see apart) passed when
# the regional probe met the null at G's size (bench/judge_calibration.py --sizes: 2 of 140 at
# 14 sounds, 3 of 80 at 20, none of 60 at 30; docs/judge.md, stop 40)
MIN_WHOLE_GEN = 30


def bin_tv(t_labels: np.ndarray, s_labels: np.ndarray, k: int) -> float:
    """Total-variation distance between the bin proportions of T and of a set."""
    p_t = np.bincount(t_labels, minlength=k) / max(len(t_labels), 1)
    p_s = np.bincount(s_labels, minlength=k) / max(len(s_labels), 1)
    return float(0.5 * np.abs(p_t - p_s).sum())


def tv_null(p_t: np.ndarray, n_t: int, n: int, seed: int = 0) -> float:
    """The 95th percentile of :func:`bin_tv` between two sets drawn with T's proportions
    ``p_t``, of sizes ``n_t`` and ``n`` (parametric bootstrap, :data:`TV_NULL_DRAWS` draws)."""
    rng = np.random.default_rng(seed)
    a = rng.multinomial(n_t, p_t, size=TV_NULL_DRAWS) / n_t
    b = rng.multinomial(n, p_t, size=TV_NULL_DRAWS) / n
    return float(np.quantile(0.5 * np.abs(a - b).sum(axis=1), TV_NULL_QUANTILE))


def repeat_share(d: np.ndarray, thr: float, n: int, rng: np.random.Generator | None) -> float:
    """Share of a set's sounds with another sound of the set nearer than ``thr``, at ``n``
    sounds: ``d`` is the set's pairwise distance matrix; averaged over :data:`REPEAT_DRAWS`
    random draws of n (from ``rng``) when the set is larger."""
    m = len(d)
    draws = (
        [np.arange(m)] if n >= m else [rng.choice(m, n, replace=False) for _ in range(REPEAT_DRAWS)]
    )
    out = []
    for s in draws:
        sub = d[np.ix_(s, s)].copy()
        np.fill_diagonal(sub, np.inf)
        out.append(float(np.mean(sub.min(axis=1) < thr)))
    return float(np.mean(out))


def half_of_t(p_t: np.ndarray, rng: np.random.Generator, tries: int = 256) -> np.ndarray:
    """A set of bins holding as near half of T as random subsets of bins reach (ties go to the
    first found): the region a regionally half-collapsed model would cover."""
    k = len(p_t)
    best, best_gap = np.arange(k // 2), math.inf
    for _ in range(tries):
        pick = rng.permutation(k)[: rng.integers(1, k)]
        gap = abs(float(p_t[pick].sum()) - 0.5)
        if gap < best_gap:
            best, best_gap = pick, gap
    return np.sort(best)


class Whole:
    """What the two checks need of T and of the pool G ∪ H: bins, spacing, distances."""

    def __init__(
        self,
        t_labels: np.ndarray,
        p_labels: np.ndarray,
        k: int,
        d_tt: np.ndarray,
        d_pp: np.ndarray,
        repeat_thr: float,
        seed: int,
    ):
        self.t_labels, self.p_labels, self.k = t_labels, p_labels, k
        self.p_t = np.bincount(t_labels, minlength=k) / len(t_labels)
        self.d_tt, self.d_pp, self.thr, self.seed = d_tt, d_pp, repeat_thr, seed
        self._null: dict[int, float] = {}
        self._t_repeats: dict[int, float] = {}

    def clusters(self, s: np.ndarray) -> float:
        return bin_tv(self.t_labels, self.p_labels[s], self.k)

    def clusters_null(self, n: int) -> float:
        if n not in self._null:
            self._null[n] = tv_null(self.p_t, len(self.t_labels), n, self.seed)
        return self._null[n]

    def repeats(self, s: np.ndarray) -> float:
        """The repeat share of the whole of set ``s`` (no draws: nothing random)."""
        return repeat_share(self.d_pp[np.ix_(s, s)], self.thr, len(s), None)

    def n_repeat(self, n: int) -> int:
        """The size T's reference share is measured at, for a set of ``n`` sounds."""
        return min(n, len(self.t_labels))

    def t_repeats(self, n: int) -> float:
        """T's own repeat share at ``n`` ≤ |T| sounds (the repeats rule's reference)."""
        if n not in self._t_repeats:
            rng = np.random.default_rng(self.seed)
            self._t_repeats[n] = repeat_share(self.d_tt, self.thr, n, rng)
        return self._t_repeats[n]

    def figures(self, s: np.ndarray) -> dict[str, float]:
        """The two figures of set ``s`` and their references (the null's 95th percentile, T's
        repeat share at the same size)."""
        return {
            "clusters": self.clusters(s),
            "clusters_ref": self.clusters_null(len(s)),
            "repeats": self.repeats(s),
            "repeats_ref": self.t_repeats(self.n_repeat(len(s))),
        }


def power(
    whole: Whole,
    gi: np.ndarray,
    rng: np.random.Generator,
    cluster_margin: float,
    repeat_margin: float,
    probes: int,
) -> dict[str, Any]:
    """Would the two checks catch a half-collapsed generator of G's size? ``probes`` of each
    kind, made from G (indices ``gi``): a model of G's size drawing only from bins that hold
    half of T, like G's sounds there (regional, :func:`_regional_factor`), and a random half of
    G each twice (repeats). ``conclusive`` when every probe is caught and G holds at least
    :data:`MIN_WHOLE_GEN` sounds; else
    ``gen_needed``, when every repeating probe is caught, estimates how many generated sounds
    would catch the regional ones too (:func:`_regional_factor`; None: more would not)."""
    caught = {"regional": 0, "repeated": 0}
    sizes: list[int] = []
    factor = 1.0  # how many times G's size would catch every regional probe so far
    for _ in range(probes):
        region = half_of_t(whole.p_t, rng)
        reg = gi[np.isin(whole.p_labels[gi], region)]
        sizes.append(len(reg))
        f = _regional_factor(whole, reg, len(gi), cluster_margin)
        caught["regional"] += f == 1.0
        factor = max(factor, f)
        half = rng.choice(gi, max(2, (len(gi) + 1) // 2), replace=False)
        rep = np.resize(half, len(gi))
        if whole.repeats(rep) > whole.t_repeats(whole.n_repeat(len(rep))) + repeat_margin:
            caught["repeated"] += 1
    conclusive = len(gi) >= MIN_WHOLE_GEN and all(v == probes for v in caught.values())
    needed = None  # the G size that would catch every probe, when more sounds would do it
    if not conclusive and caught["repeated"] == probes and math.isfinite(factor):
        needed = max(int(math.ceil(len(gi) * factor)), MIN_WHOLE_GEN)
    return {
        "probes": probes,
        "caught": caught,
        "conclusive": conclusive,
        "regional_sizes": [min(sizes), max(sizes)] if sizes else [],
        "gen": int(len(gi)),
        "gen_needed": needed,
    }


GROWTH = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0)


def _regional_factor(whole: Whole, reg: np.ndarray, size: int, margin: float) -> float:
    """The least factor of :data:`GROWTH` by which G's size would have to grow for a regional
    collapse to be caught: a model of ``size`` sounds that draws only from half of T's bins,
    distributed there like G's sounds ``reg`` in those bins. ``clusters`` judges such a model at
    its full size, so its distance to T's proportions (``reg``'s, which does not depend on the
    size) meets the null's room at ``size`` sounds, and that room shrinks as the size grows
    (1.0: caught as it is; inf: not within 16 times, or fewer than :data:`MIN_PROBE` sounds of
    G in the region to take the distribution from)."""
    if len(reg) < MIN_PROBE:
        return math.inf
    tv = whole.clusters(reg)
    for f in GROWTH:
        if tv > whole.clusters_null(int(math.ceil(size * f))) + margin:
            return f
    return math.inf
