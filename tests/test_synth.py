"""The embedded default corpus (miragen.corpus.synth)."""

from __future__ import annotations

import numpy as np
from miragen.audio.mirage8 import check_mirage8
from miragen.corpus.synth import (
    CLASSES,
    HIT_CLASSES,
    HIT_MAX,
    default_corpus,
    default_hits,
    write_default_corpus,
)


def _stack(waves):
    return np.stack(waves).astype(np.float64)


def test_shape_and_normalisation():
    c = default_corpus(0)
    assert len(c) >= 2 and set(c) == set(CLASSES)
    for name, waves in c.items():
        assert 20 <= len(waves) <= 32, name
        for w in waves:
            assert w.dtype == np.float32 and w.shape == (256,)
            assert np.all(np.isfinite(w))
            assert abs(float(np.max(np.abs(w))) - 1.0) < 1e-6
            assert abs(float(w.mean())) < 1e-5


def test_deterministic_by_seed_and_seeds_differ():
    a, b, c = default_corpus(0), default_corpus(0), default_corpus(1)
    for name in a:
        assert all(np.array_equal(x, y) for x, y in zip(a[name], b[name]))
        assert not any(np.allclose(x, y) for x, y in zip(a[name], c[name]))


def test_band_limited():
    for waves in default_corpus(2).values():
        spec = np.abs(np.fft.rfft(_stack(waves), axis=1))
        assert np.all(spec[:, 121:] < 1e-6 * spec.max())


def test_varied_within_each_class_and_classes_differ():
    """No near-copies inside a class (a judge must be able to tell copies from new waves)."""
    c = default_corpus(0)
    feats = {}
    for name, waves in c.items():
        a = _stack(waves)
        # distance that ignores phase: magnitude spectra
        mag = np.abs(np.fft.rfft(a, axis=1))[:, 1:64]
        mag /= np.linalg.norm(mag, axis=1, keepdims=True)
        feats[name] = mag
        d = np.sqrt(((a[:, None] - a[None]) ** 2).mean(-1))
        np.fill_diagonal(d, np.inf)
        assert d.min() > 0.1, name
        dm = np.linalg.norm(mag[:, None] - mag[None], axis=-1)
        np.fill_diagonal(dm, np.inf)
        assert dm.min() > 0.02, name  # not just shifted copies of each other
    # a nearest-centroid classifier on spectra beats chance by far: the classes are real
    cents = {n: f.mean(0) for n, f in feats.items()}
    right = sum(
        min(cents, key=lambda m: np.linalg.norm(v - cents[m])) == n
        for n, f in feats.items()
        for v in f
    )
    total = sum(len(f) for f in feats.values())
    assert right / total > 0.5


def test_write_default_corpus(tmp_path):
    paths = write_default_corpus(tmp_path / "corpus", seed=0)
    c = default_corpus(0)
    assert len(paths) == sum(len(v) for v in c.values())
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == sorted(CLASSES)
    for p in paths:
        data = p.read_bytes()
        check_mirage8(data)
        assert len(data) == 256
    first = (tmp_path / "corpus" / "saw" / "saw_00.pcm").read_bytes()
    expected = np.rint(c["saw"][0].astype(np.float64) * 127) + 128
    assert np.array_equal(np.frombuffer(first, np.uint8), expected.astype(np.uint8))


def test_corpus_loads_as_a_dataset(tmp_path):
    from miragen.corpus.dataset import load_dataset

    write_default_corpus(tmp_path / "c", seed=0)
    ds = load_dataset(tmp_path / "c", mode="cycle")
    assert sorted(ds.classes) == sorted(CLASSES)
    assert len(ds) == 4 * 24


# ---------------------------------------------------------------------- hits (one-shots)
def _frame_rms(w, n=29):  # 29 samples: one millisecond at 29,411 Hz
    return np.sqrt(np.convolve(np.asarray(w, np.float64) ** 2, np.ones(n) / n, mode="valid"))


def test_hits_shape_onset_end_and_dc():
    hits = default_hits(0)
    assert set(hits) == set(HIT_CLASSES)
    waves = hits["hits"]
    assert 20 <= len(waves) <= 32
    for w in waves:
        assert w.dtype == np.float32 and np.all(np.isfinite(w))
        assert len(w) % 256 == 0 and 1024 <= len(w) <= HIT_MAX <= 8192  # a 32-page slot holds it
        assert abs(float(np.max(np.abs(w))) - 1.0) < 1e-6
        assert abs(float(w.mean())) < 1e-5
        assert w[0] == 0.0 and w[-1] == 0.0  # from silence, back to silence: no click
        assert np.max(np.abs(w[-8:])) < 0.5 / 127  # the 8-bit end is 0x80
        rms = _frame_rms(w)
        assert np.argmax(rms >= 0.5 * rms.max()) < 30  # sharp: loud within the first millisecond
        assert rms[-1] < 0.05 * rms.max()  # it has decayed by the end


def test_hits_deterministic_varied_and_the_cycles_unchanged():
    a, b, c = default_hits(0)["hits"], default_hits(0)["hits"], default_hits(1)["hits"]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(len(x) == len(y) and np.allclose(x, y) for x, y in zip(a, c))
    assert len({len(w) for w in a}) >= 6  # lengths vary
    # no near-copies in the judge's one-shot feature space
    from miragen.judge.features import oneshot_features

    f = oneshot_features(a)
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.5 and np.median(d.min(axis=1)) > 2.0
    # the hits come from a stream of their own: the cycle classes are what they were
    assert default_corpus(0).keys() == set(CLASSES)


def test_write_default_corpus_with_hits(tmp_path):
    paths = write_default_corpus(tmp_path / "c", seed=0, hits=True)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == sorted(CLASSES + HIT_CLASSES)
    hits = [p for p in paths if p.parent.name == "hits"]
    assert len(hits) == len(default_hits(0)["hits"])
    for p in hits:
        data = p.read_bytes()
        check_mirage8(data)
        assert 1024 <= len(data) <= HIT_MAX and data[-8:] == b"\x80" * 8
