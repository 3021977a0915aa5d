"""Choosing the snapshot to keep. Every snapshot is judged (``judge.metrics.evaluate`` against the
internal hold-out, or the training part for a class too small to hold out from) and measured
against its own training set, cross-validated (``judge.crossval``); the option ``select`` says
which score keeps a snapshot:

- ``judge``: passing beats failing, then the smaller total shortfall, then the larger least margin
  (:func:`judge_score`);
- ``cv``: no copy or silence failure (option ``copy_guard``: the judge's copy rules on the
  internal hold-out, or their cross-validated form on the training set alone), then the least
  cross-validated figure (recall, coverage, diversity, precision as G ÷ a real half of T): a
  score that rests on the whole training set, not on a handful of held-out sounds. Of the
  snapshots whose figure lies within ``select_se`` standard errors of the best one's, the latest
  is kept (:func:`cv_keeps`: the one-standard-error rule; figures within noise of each other do
  not tell snapshots apart, and the later one has trained longer);
- ``last``: the latest snapshot.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...judge.crossval import cross_validated
from ...judge.features import features
from ...judge.metrics import Thresholds, evaluate


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


CV_FIGURES = ("cv_recall", "cv_coverage", "cv_diversity", "cv_precision")
COPY_RULES = ("silent", "novelty", "copy_fraction")


def copy_ok(flat: dict[str, float], failed: list[str], guard: str = "holdout") -> bool:
    """No silence and no copying: the judge's rules on the internal hold-out (``holdout``), or
    (``cv``) their cross-validated form on the training set alone (``judge.crossval``:
    ``cv_novelty`` ≥ the judge's novelty limit, ``cv_copy`` ≤ its copy margin), falling back to
    the hold-out's when the training set is too small to split."""
    if guard == "cv" and "cv_novelty" in flat:
        th = Thresholds()
        return (
            "silent" not in failed
            and flat["cv_novelty"] >= th.novelty_min
            and flat["cv_copy"] <= th.copy_margin
        )
    return not any(r in COPY_RULES for r in failed)


def least_figure(flat: dict[str, float]) -> tuple[float, float]:
    """(the least of the cross-validated figures :data:`CV_FIGURES` in ``flat``, that figure's
    standard error over the splits); (−inf, 0) when there are none."""
    return min(
        ((flat[k], flat.get(f"{k}_se", 0.0)) for k in CV_FIGURES if k in flat),
        default=(-math.inf, 0.0),
    )


def cv_score(
    flat: dict[str, float], failed: list[str], guard: str = "holdout"
) -> tuple[int, float, float]:
    """(1 when no copy or silence rule failed (:func:`copy_ok`), :func:`least_figure`)."""
    return (int(copy_ok(flat, failed, guard)), *least_figure(flat))


def cv_keeps(
    score: tuple[float, float], peak: tuple[float, float], peak_se: float, k_se: float
) -> tuple[bool, bool]:
    """The one-standard-error rule of ``select=cv``, one snapshot at a time: (keep this
    snapshot, it is the new peak). ``score`` and ``peak`` are (classes without a copy failure,
    least cross-validated figure), the peak being the best so far and ``peak_se`` its figure's
    standard error. A snapshot at or above the peak becomes the peak and is kept; one with as
    few copy failures whose figure lies within ``k_se`` standard errors below the peak is kept
    too (the latest such snapshot wins), and the peak stays. Fed the snapshots in order, the
    last one kept is the latest within ``k_se`` errors of the best of all."""
    if tuple(score) >= tuple(peak):
        return True, True
    return score[0] == peak[0] and score[1] >= peak[1] - k_se * peak_se, False


def judge_score(
    gen: list[np.ndarray],
    train: list[np.ndarray],
    held: list[np.ndarray],
    kind: str,
    rate: int,
    train_feats: np.ndarray | None = None,
    guard: str = "holdout",
) -> tuple[tuple, dict[str, Any]]:
    """Score a snapshot with the judge: passing beats failing; then the smaller total shortfall
    of the failed rules (how far they miss, not how many: one rule missed by a hair must not
    lose to a snapshot that misses two by a mile); then the larger smallest margin over all
    rules (among passing snapshots, the one farthest from failing any rule: the judge's draw
    on the user's side is another sample, and a pass by a hair is a coin toss there).
    ``train_feats``: the training part's features when the caller keeps them (they do not
    change from one snapshot to the next)."""
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
    if train_feats is None:
        train_feats = features(train, kind, rate=rate)
    flat.update(cross_validated(features(gen, kind, rate=rate), train_feats))
    cv = cv_score(flat, report.failed, guard)
    flat["copy_ok"] = float(cv[0])
    info = {"metrics": flat, "reasons": list(report.reasons), "cv": cv}
    return (int(report.passed), -missing, least), info
