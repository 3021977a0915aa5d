"""The candidate gate: which generated candidates are worth writing, best first.

1. Sanity: drops non-finite, silent (peak under half an 8-bit step), constant (no AC part),
   near-silent (AC peak under 1/32 of full scale: after peak normalisation it would keep
   fewer than 3 bits of signal) and rail-clipped candidates (more samples at the rails,
   |x| ≥ 0.99, than max(25 %, the training set's 95th percentile + 10 points): a square-wave
   corpus may sit at the rails, a sine corpus may not).
2. Copies: drops candidates whose nearest training sample (judge features) is nearer than
   ``copy_factor`` × the corpus's typical nearest-neighbour distance (median leave-one-out
   NN distance inside the training set).
3. Near-duplicates: walking the candidates in the order they were drawn, drops a candidate
   nearer than ``duplicate_factor`` × d_T to an earlier one that was not itself dropped.
4. Choice: the gate removes what is unusable; it does not choose a taste. When more candidates
   survive than ``keep``, they are split into ``keep // 2`` groups by k-means in the judge's
   feature space; one sound is drawn from every group and the rest as a systematic sample in
   the groups' proportions (:func:`stratified_choice`). So the kept set spreads over everything
   the model drew, in its proportions, instead of clustering at the class's centre: its
   diversity and recall stay those of the ungated draws (``bench/gate.py``), and a request for
   a few sounds takes them from different groups. The first kept sound is from the largest
   group (the model's most common kind). The rest are rejected as "surplus".

``scores`` (for the records) is ``-|ln(d / d_T)|``, d the candidate's distance to its nearest
training sample: 0 for a candidate exactly as far from the corpus as real sounds are from each
other, lower when nearer (copy-like) or farther (off the class). It no longer decides what is
kept: ranking by it kept the most ordinary sounds and took away about 40 % of the diversity.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .features import check_kind, features
from .metrics import loo_nn_distances, pairwise

log = logging.getLogger(__name__)

SILENT_PEAK = 1.0 / 256
NEAR_SILENT_PEAK = 1.0 / 32
RAIL = 0.99
RAIL_MIN_SHARE = 0.25
RAIL_MARGIN = 0.10

REASONS = (
    "non-finite",
    "silent",
    "constant",
    "near-silent",
    "clipped",
    "copy",
    "duplicate",
    "surplus",
)


@dataclass
class GateResult:
    kept: list[int]  # candidate indices, best first
    rejected: dict[int, str]  # index -> reason ("copy of training sample 3 (distance 0.12 < 0.40)")
    scores: dict[int, float]  # ranking score of every candidate that reached the ranking
    counts: dict[str, int] = field(default_factory=dict)  # candidates, kept, and one per reason
    typical_distance: float | None = None  # the corpus's median NN distance (d_T)
    # each ranked candidate's distance to its nearest training sample, in units of d_T (1: as
    # far from the corpus as real sounds are from each other; under copy_factor: a copy)
    nearest: dict[int, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.counts.get('kept', 0)} kept of {self.counts.get('candidates', 0)}"]
        parts += [f"{self.counts[r]} {r}" for r in REASONS if self.counts.get(r)]
        return ", ".join(parts)


def rail_share(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(np.abs(x) >= RAIL)) if x.size else 0.0


def sanity_reason(x: np.ndarray, rail_limit: float) -> str | None:
    """Why a candidate is unusable on its own, or None."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        return "non-finite"
    if float(np.max(np.abs(x))) < SILENT_PEAK:
        return "silent"
    ac = float(np.max(np.abs(x - x.mean())))
    if ac < SILENT_PEAK:
        return "constant"
    if ac < NEAR_SILENT_PEAK:
        return "near-silent"
    share = rail_share(x)
    if share > rail_limit:
        return f"clipped ({share:.0%} of samples at the rails, limit {rail_limit:.0%})"
    return None


def stratified_choice(feats: np.ndarray, keep: int, seed: int = 0) -> list[int]:
    """Indices of ``keep`` rows of ``feats``: every region of the draws, in its proportions.

    The rows are split into ``keep // 2`` k-means groups (at least one). One row is drawn at
    random from each group, so no region the model reached is left out (recall); the rest are a
    systematic sample of the remaining rows laid out group by group, so each group also gets its
    share (``size × keep / n``): the kept set keeps the proportions of the draws (precision,
    Fréchet distance). The largest group comes first. All rows, in order, when there are no
    more than ``keep``.
    """
    n = len(feats)
    if keep <= 0:
        return []
    if n <= keep:
        return list(range(n))
    from sklearn.cluster import KMeans

    k = max(1, keep // 2)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(feats)
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(np.flatnonzero(labels == g)) for g in range(k)]
    groups = sorted((g for g in groups if len(g)), key=lambda g: (-len(g), int(g.min())))
    first = [int(g[0]) for g in groups]  # one from every group
    rest = np.concatenate([g[1:] for g in groups])
    more = keep - len(first)
    if more <= 0 or len(rest) == 0:
        return first[:keep]
    step = len(rest) / more
    start = rng.uniform(0, step)
    return first + [int(rest[min(len(rest) - 1, int(start + i * step))]) for i in range(more)]


def gate_candidates(
    candidates: Sequence[np.ndarray],
    train: Sequence[np.ndarray],
    kind: str,
    *,
    keep: int,
    copy_factor: float = 0.5,
    duplicate_factor: float = 0.25,
    rate: int = 29411,
    seed: int = 0,
) -> GateResult:
    """Drop the unusable ``candidates`` (float waves), judged against the training waves
    ``train``, and keep at most ``keep`` of the rest as a stratified sample (module doc)."""
    check_kind(kind)
    train_l = [np.asarray(t, dtype=np.float64).ravel() for t in train]
    rejected = _unusable(candidates, _rail_limit(train_l))
    alive = [i for i in range(len(candidates)) if i not in rejected]
    scores: dict[int, float] = {}
    d_t: float | None = None
    kept: list[int] = []
    nearest: dict[int, float] = {}
    if alive:
        cf = features([np.asarray(candidates[i], dtype=np.float64) for i in alive], kind, rate=rate)
        if len(train_l) >= 2:
            tf = features(train_l, kind, rate=rate)
            d_t = float(np.median(loo_nn_distances(tf)))
            scores, nearest = _score_and_drop_copies(cf, tf, alive, d_t, copy_factor, rejected)
        else:
            log.warning("gate: fewer than 2 training sounds; copy and duplicate checks are off")
            scores = {i: 0.0 for i in alive}
        unique = _drop_duplicates(cf, alive, d_t, duplicate_factor, rejected)
        kept = _choose(cf, alive, unique, keep, seed, rejected)
    result = GateResult(
        kept=kept,
        rejected=dict(sorted(rejected.items())),
        scores=scores,
        counts=_counts(len(candidates), kept, rejected),
        typical_distance=d_t,
        nearest=nearest,
    )
    log.info("gate: %s", result.summary())
    for i, why in result.rejected.items():
        log.debug("gate: candidate %d rejected: %s", i, why)
    return result


def _rail_limit(train: list[np.ndarray]) -> float:
    """The share of samples at the rails above which a candidate is clipped (module doc)."""
    shares = [rail_share(t) for t in train]
    return max(RAIL_MIN_SHARE, (float(np.percentile(shares, 95)) if shares else 0.0) + RAIL_MARGIN)


def _unusable(candidates: Sequence[np.ndarray], rail_limit: float) -> dict[int, str]:
    """1. Sanity: the candidates unusable on their own, each with its reason."""
    rejected: dict[int, str] = {}
    for i, c in enumerate(candidates):
        why = sanity_reason(c, rail_limit)
        if why:
            rejected[i] = why
    return rejected


def _score_and_drop_copies(
    cf: np.ndarray,
    tf: np.ndarray,
    alive: list[int],
    d_t: float,
    copy_factor: float,
    rejected: dict[int, str],
) -> tuple[dict[int, float], dict[int, float]]:
    """2. Copies: the score of each ``alive`` candidate (features ``cf``, one row each) against
    the training features ``tf`` and its nearest distance in units of d_T; a copy of a
    training sample is added to ``rejected``."""
    scores: dict[int, float] = {}
    ratio: dict[int, float] = {}
    dist = pairwise(cf, tf)
    nearest = dist.argmin(axis=1)
    nn = dist[np.arange(len(alive)), nearest]
    ref = max(d_t, 1e-12)
    for row, i in enumerate(alive):
        scores[i] = -abs(float(np.log(max(nn[row], 1e-12) / ref)))
        ratio[i] = float(nn[row] / ref)
        if nn[row] < copy_factor * d_t:
            rejected[i] = (
                f"copy of training sample {int(nearest[row])} "
                f"(distance {nn[row]:.3g} < {copy_factor:g} × {d_t:.3g})"
            )
    return scores, ratio


def _drop_duplicates(
    cf: np.ndarray,
    alive: list[int],
    d_t: float | None,
    duplicate_factor: float,
    rejected: dict[int, str],
) -> list[int]:
    """3. Near-duplicates: the candidates not yet rejected, in the order drawn, less those near
    an earlier one that was kept (added to ``rejected``); none without ``d_t``."""
    row_of = {i: r for r, i in enumerate(alive)}
    cc = pairwise(cf, cf)
    unique: list[int] = []
    for i in (i for i in alive if i not in rejected):  # in the order drawn
        if d_t is not None:
            close = [j for j in unique if cc[row_of[i], row_of[j]] < duplicate_factor * d_t]
            if close:
                j = close[0]
                rejected[i] = (
                    f"duplicate of candidate {j} (distance {cc[row_of[i], row_of[j]]:.3g} "
                    f"< {duplicate_factor:g} × {d_t:.3g})"
                )
                continue
        unique.append(i)
    return unique


def _choose(
    cf: np.ndarray,
    alive: list[int],
    unique: list[int],
    keep: int,
    seed: int,
    rejected: dict[int, str],
) -> list[int]:
    """4. Choice: a stratified sample of ``keep`` of the ``unique`` candidates; the rest are
    added to ``rejected`` as surplus."""
    row_of = {i: r for r, i in enumerate(alive)}
    kept = stratified_choice(cf[[row_of[i] for i in unique]], max(keep, 0), seed)
    kept = [unique[k] for k in kept]
    for i in sorted(set(unique) - set(kept)):
        rejected[i] = f"surplus (not drawn: {len(kept)} kept of {len(unique)} usable)"
    return kept


def _counts(candidates: int, kept: list[int], rejected: dict[int, str]) -> dict[str, int]:
    """Candidates, kept, and one count per reason (:data:`REASONS`)."""
    counts = Counter(r.split(" ", 1)[0] for r in rejected.values())
    out = {"candidates": candidates, "kept": len(kept)}
    out.update({r: int(counts.get(r, 0)) for r in REASONS})
    return out
