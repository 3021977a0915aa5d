"""The judge's checks at the generator's own size (judge/whole.py): clusters and repeats, and the
power they give a verdict when the held-out set is too small to give it."""

from __future__ import annotations

import numpy as np
import pytest
from miragen.judge.features import features
from miragen.judge.metrics import MIN_CONCLUSIVE_HELD, evaluate, ndb_bins
from miragen.judge.sets import load_waves
from miragen.judge.whole import MIN_WHOLE_GEN, bin_tv, half_of_t, repeat_share, tv_null


def test_tv_null_is_the_95th_percentile_of_two_samples_of_t():
    p = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05])
    q = tv_null(p, 80, 128, seed=3)
    rng = np.random.default_rng(9)
    a = rng.multinomial(80, p, size=4000) / 80
    b = rng.multinomial(128, p, size=4000) / 128
    tv = 0.5 * np.abs(a - b).sum(axis=1)
    assert 0.03 <= np.mean(tv > q) <= 0.07
    # the more sounds drawn, the less room sampling leaves; T's own size keeps a floor
    assert tv_null(p, 80, 20) > tv_null(p, 80, 128) > tv_null(p, 80, 4000) > 0.02


def test_bin_tv_and_half_of_t():
    t = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert bin_tv(t, np.array([0, 1, 2, 3]), 4) == 0.0
    assert bin_tv(t, np.array([0, 0, 1, 1]), 4) == pytest.approx(0.5)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    region = half_of_t(p, np.random.default_rng(0))
    assert p[region].sum() == pytest.approx(0.5)


def test_repeat_share_counts_sounds_with_a_near_twin():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)) * 10
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    assert repeat_share(d, 0.5, 20, rng) == 0.0
    y = np.concatenate([x[:10], x[:10] + 0.01])  # half of them, each twice
    d2 = np.linalg.norm(y[:, None] - y[None], axis=-1)
    assert repeat_share(d2, 0.5, 20, rng) == 1.0
    assert 0.2 < repeat_share(d2, 0.5, 10, rng) < 0.8  # at a draw of 10, about half keep a twin


@pytest.fixture(scope="module")
def stereo(shared_data):
    """AKWF_stereo (200 cycles): T = 100, H = 10 (too few for a held-out verdict), R = 90."""
    waves, _ = load_waves(shared_data / "akwf" / "AKWF_stereo", "cycle")
    idx = np.random.default_rng(1).permutation(len(waves))
    T = [waves[i] for i in idx[:100]]
    H = [waves[i] for i in idx[100:110]]
    R = [waves[i] for i in idx[110:]]
    return T, H, R


def test_a_real_set_of_generator_size_passes_conclusively_with_few_held_out_sounds(stereo):
    T, H, R = stereo
    assert len(H) < MIN_CONCLUSIVE_HELD
    rep = evaluate(R, T, H, "cycle")
    assert rep.verdict == "pass", rep.table()
    assert rep.power["whole"]["conclusive"] and not rep.power["held_conclusive"]
    names = [c.name for c in rep.checks]
    assert names[-2:] == ["clusters", "repeats"]
    assert "clusters" in rep.table() and "≤ null + 0.1" in rep.table()
    # without the checks at G's size the same set is only inconclusive
    small = evaluate(R[:10], T, H, "cycle")
    assert small.verdict == "inconclusive", small.table()
    assert "at the generator's size (10 sounds)" in small.inconclusive_reason()
    assert rep.power["whole"]["gen_needed"] is None  # conclusive: nothing to suggest


def test_an_inconclusive_report_says_how_many_generated_sounds_would_do(stereo):
    """The regional probes' distance to T stays as G grows while the null's room shrinks: the
    report estimates the size that catches them all and advises twice that, and a set of the
    advised size is conclusive."""
    T, H, R = stereo
    small = evaluate(R[:16], T, H, "cycle")
    need = small.power["whole"]["gen_needed"]
    assert small.verdict == "inconclusive" and need == MIN_WHOLE_GEN, small.power
    # every probe caught at 24 sounds, but too few sounds for the checks at G's size to count
    few = evaluate(R[:24], T, H, "cycle")
    assert few.power["whole"]["caught"] == {"regional": 10, "repeated": 10}, few.power
    assert few.verdict == "inconclusive" and few.power["whole"]["gen_needed"] == MIN_WHOLE_GEN
    assert f"about {need} by an estimate that is often short, so generate {2 * need}" in (
        small.table()
    )
    grown = evaluate(R[: 2 * need], T, H, "cycle")  # as the report advises
    assert grown.verdict == "pass", grown.table()


def test_a_regional_collapse_fails_clusters(stereo):
    """R restricted to the bins that hold half of T: every sound real and distinct, but whole
    kinds of sounds missing."""
    from sklearn.cluster import KMeans

    T, H, R = stereo
    ft = features(T, "cycle")
    k = ndb_bins(ft)
    km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(ft)  # evaluate's own bins (seed 0)
    p = np.bincount(km.labels_, minlength=k) / len(ft)
    region = half_of_t(p, np.random.default_rng(0))
    lab = km.predict(features(R, "cycle"))
    regional = [r for r, b in zip(R, lab) if b in set(region.tolist())]
    rep = evaluate(regional, T, H, "cycle")
    assert "clusters" in rep.failed, rep.table()
    assert rep.metrics["clusters"] > 0.35


def test_a_repeating_generator_fails_repeats(stereo):
    T, H, R = stereo
    rng = np.random.default_rng(2)
    half = R[: len(R) // 2]
    rep = evaluate([w + rng.normal(0, 0.003, len(w)) for w in half + half], T, H, "cycle")
    assert "repeats" in rep.failed, rep.table()
    assert rep.metrics["repeats"] > 0.9 and rep.baseline["repeats"] < 0.2


def test_repeats_is_measured_on_the_whole_of_g_when_t_is_small(stereo):
    """A small bank and a generator that draws many more sounds than it was trained on: T of 20,
    a repeating set of 90 (45 sounds, each twice). A draw of |T| sounds would hold few of its
    twins; the whole of G holds them all."""
    T, H, R = stereo
    rng = np.random.default_rng(3)
    half = R[:45]
    rep = evaluate([w + rng.normal(0, 0.003, len(w)) for w in half + half], T[:20], H, "cycle")
    assert rep.metrics["repeats"] > 0.9, rep.table()
    assert "repeats" in rep.failed
    # the real set of the same size does not fail it: T's share at |T| + 0.25 holds
    real = evaluate(R, T[:20], H, "cycle")
    assert "repeats" not in real.failed, real.table()
    assert real.power["whole"]["caught"]["repeated"] == real.power["whole"]["probes"]
