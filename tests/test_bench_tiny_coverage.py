"""bench/tiny_coverage.py: coverage of T counts the training sounds whose k-NN ball among T
holds a sound of the set, and a regional probe keeps only the set's sounds in half of T's bins."""

import numpy as np
from conftest import load_bench


def test_coverage_counts_the_training_sounds_whose_ball_holds_a_draw():
    tc = load_bench("tiny_coverage")
    # two tight pairs far apart: each sound's nearest neighbour is its partner (radius 1)
    T = np.array([[0.0, 0.0], [1.0, 0.0], [100.0, 0.0], [101.0, 0.0]])
    near_first_pair = np.array([[0.5, 0.0], [0.4, 0.1]])
    assert tc.coverage(T, near_first_pair, 1) == 0.5
    assert tc.coverage(T, np.vstack([near_first_pair, [[100.5, 0.0]]]), 1) == 1.0
    # k = 3 reaches across to the other pair: one pair's draws cover all four balls
    assert tc.coverage(T, near_first_pair, 3) == 1.0


def test_a_regional_probe_keeps_only_draws_in_half_of_the_bins():
    tc = load_bench("tiny_coverage")
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    T = np.vstack([c + rng.normal(0, 0.5, (4, 2)) for c in centres])  # 16 sounds: 4 bins
    S = np.vstack([c + rng.normal(0, 0.5, (10, 2)) for c in centres])
    probes = tc.regional(T, S, np.random.default_rng(1), 5)
    assert probes
    for P in probes:
        assert len(P) == 20  # two of the four groups, whole
        assert tc.coverage(T, P, 3) == 0.5  # the balls of the kept groups only
