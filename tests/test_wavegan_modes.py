"""Self-conditioning (engines/wavegan/modes.py): each class split into the k-means clusters of
its training sounds, G and D conditioned on the cluster, draws shared in the class's
proportions; a saved model keeps the clusters."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from miragen.corpus.dataset import Dataset  # noqa: E402
from miragen.corpus.synth import default_corpus  # noqa: E402
from miragen.engines.base import Budget, load_model  # noqa: E402
from miragen.engines.wavegan.modes import (  # noqa: E402
    MIN_PER_MODE,
    clusters_for,
    find_modes,
    mode_counts,
)


def test_clusters_for_follows_the_square_root_and_keeps_clusters_populated():
    assert clusters_for(40, 0) == clusters_for(40, 1) == 1  # off
    assert clusters_for(40, 6) == 6  # round(√40)
    assert clusters_for(40, 4) == 4  # at most modes
    assert clusters_for(12, 6) == 3  # 12 sounds: 4 each at least
    assert clusters_for(2 * MIN_PER_MODE - 1, 6) == 1
    assert clusters_for(400, 64) == 20


def test_find_modes_splits_each_class_into_its_own_labels():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    a = np.concatenate([c + rng.normal(0, 0.1, (12, 2)) for c in centres])  # class 0: 3 groups
    b = rng.normal(0, 0.1, (6, 2)) + 50.0  # class 1: too small to split
    labels = np.array([0] * len(a) + [1] * len(b))
    m = find_modes(labels, np.concatenate([a, b]), 3, seed=0)
    assert m.of_class == [[0, 1, 2], [3]] and m.n == 4
    assert m.weights[0] == pytest.approx([1 / 3] * 3) and m.weights[1] == [1.0]
    for g in range(3):  # each group of class 0 is one cluster
        assert len(set(m.labels[12 * g : 12 * (g + 1)].tolist())) == 1
    assert set(m.labels[36:].tolist()) == {3}
    same = find_modes(np.zeros(20, int), np.ones((20, 3)), 6, seed=0)  # 20 identical sounds
    assert same.of_class == [[0]] and same.weights == [[1.0]]
    off = find_modes(labels, np.zeros((len(labels), 1)), 0, seed=0)
    assert off.of_class == [[0], [1]] and np.array_equal(off.labels, labels)


def test_mode_counts_follow_the_weights_as_closely_as_n_allows():
    rng = np.random.default_rng(1)
    w = [0.3, 0.2, 0.2, 0.15, 0.1, 0.05]
    for n in (1, 7, 64, 128):
        c = mode_counts(w, n, rng)
        assert sum(c) == n
        assert all(abs(ci - wi * n) < 1 for ci, wi in zip(c, w))


def test_a_self_conditioned_model_draws_every_cluster_and_survives_save_and_load(tmp_path):
    from miragen.engines.wavegan import WaveGANEngine

    corpus = default_corpus(seed=0, per_class=24)
    classes = {c: corpus[c] for c in ("fm", "saw")}
    ds = Dataset("cycle", 29411, classes, {c: [f"{c}{i}" for i in range(24)] for c in classes})
    eng = WaveGANEngine(modes=4, threads=1, eval_every=10, eval_samples=16, holdout=0.0)
    model = eng.fit(ds, Budget(steps=12), None, tmp_path / "ck")
    assert set(model.modes) == {"fm", "saw"}
    labels = [lab for c in ("fm", "saw") for lab, _ in model.modes[c]]
    assert labels == list(range(len(labels))) and model.spec["n_classes"] == len(labels)
    for c in ("fm", "saw"):
        assert sum(w for _, w in model.modes[c]) == pytest.approx(1.0)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.modes == model.modes
    a, b = again.sample(20, "fm", seed=3), model.sample(20, "fm", seed=3)
    assert len(a) == 20 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], model.sample(20, "fm", seed=4)[0])
    # modes=0: the model is what it was before: one label per class, no record
    plain = WaveGANEngine(modes=0, threads=1, eval_every=10, eval_samples=16, holdout=0.0).fit(
        ds, Budget(steps=2), None, tmp_path / "ck2"
    )
    assert plain.modes == {} and plain.spec["n_classes"] == 2
