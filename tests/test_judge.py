"""Judge: features, evaluate() on real banks, the candidate gate, `miragen evaluate`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from miragen.judge.features import features
from miragen.judge.gate import gate_candidates
from miragen.judge.metrics import evaluate

BANKS = ("ebass", "fmsynth", "linear")


def read_pcm(path: Path) -> np.ndarray:
    return (np.frombuffer(path.read_bytes(), np.uint8).astype(np.float64) - 128) / 128


def bank_files(shared: Path, bank: str) -> list[Path]:
    return sorted((shared / "pcm8" / bank).glob("*.pcm"))


def split3(items: list, seed: int = 0) -> tuple[list, list, list]:
    """60 % training, 20 % held-out, 20 % a second real set that stands in for G."""
    idx = np.random.default_rng(seed).permutation(len(items))
    a, b = int(0.6 * len(items)), int(0.8 * len(items))
    return [items[i] for i in idx[:a]], [items[i] for i in idx[a:b]], [items[i] for i in idx[b:]]


def test_cycle_features_ignore_rotation_level_and_length():
    from miragen.judge.features import CYCLE_HARMONICS

    rng = np.random.default_rng(0)
    t = np.arange(256) / 256
    w = np.sin(2 * np.pi * t) + 0.3 * np.sin(2 * np.pi * 3 * t + 1) + 0.01 * rng.normal(size=256)
    f = features([w, np.roll(w, 77), 0.25 * w, -w], "cycle")
    assert np.allclose(f, f[0], atol=1e-6)
    from scipy.signal import resample

    f600 = features([resample(w, 600)], "cycle")
    spec = slice(0, CYCLE_HARMONICS)  # the harmonics survive resampling exactly; the value
    assert np.allclose(f600[:, spec], f[0, spec], atol=1e-3)  # quantiles of the shape part
    assert np.allclose(f600, f[0], atol=0.02)  # move by a few thousandths of the RMS
    saw = features([2 * t - 1], "cycle")
    assert np.linalg.norm(saw - f[0]) > 1.0


def test_oneshot_features_fixed_size_and_floor():
    rng = np.random.default_rng(1)
    short = rng.normal(size=300) * 0.5
    long = rng.normal(size=50000) * np.exp(-np.arange(50000) / 5000)
    f = features([short, long, np.zeros(1000)], "oneshot")
    assert f.shape[0] == 3 and np.all(np.isfinite(f))
    # silence sits on the (per-band) floor everywhere, whatever its length
    assert np.allclose(f[2], features([np.zeros(40000)], "oneshot")[0])
    assert np.all(f[:2] >= f[2] - 1e-9)
    assert np.linalg.norm(f[0] - f[1]) > 0.5


@pytest.mark.parametrize("bank", BANKS)
def test_evaluate_real_passes_fakes_fail_for_their_reasons(shared_data, bank):
    waves = [read_pcm(p) for p in bank_files(shared_data, bank)]
    train, held, other = split3(waves)
    rng = np.random.default_rng(5)
    n = len(other)

    real = evaluate(other, train, held, "cycle")
    assert not real.failed and real.verdict in ("pass", "inconclusive"), real.table()
    assert real.passed == (real.verdict == "pass")
    # the same real set, and a half-collapsed one (half of it, each twice): at these sizes
    # (14 to 25 held-out sounds) the rules cannot always tell them apart, and the judge says so
    # instead of passing both
    half = [other[i % ((n + 1) // 2)] for i in range(n)]
    half_rep = evaluate(half, train, held, "cycle")
    assert half_rep.verdict in ("fail", "inconclusive"), half_rep.table()

    copies = evaluate(
        [train[i].copy() for i in rng.choice(len(train), n, replace=False)], train, held, "cycle"
    )
    assert not copies.passed
    assert {"novelty", "copy_fraction"} <= set(copies.failed), copies.table()

    noise = evaluate([rng.uniform(-1, 1, 256) for _ in range(n)], train, held, "cycle")
    assert not noise.passed
    assert "recall" in noise.failed, noise.table()
    assert "novelty" not in noise.failed and "copy_fraction" not in noise.failed

    collapsed = evaluate(
        [train[i % 3] + rng.normal(0, 0.003, 256) for i in range(n)], train, held, "cycle"
    )
    assert not collapsed.passed
    assert "copy_fraction" in collapsed.failed, collapsed.table()

    silent = evaluate(other[:-1] + [np.zeros(256)], train, held, "cycle")
    assert "silent" in silent.failed and silent.reasons[0].startswith("silent")


def test_copy_rules_do_not_move_with_the_part_of_the_class_held_out(shared_data):
    """vgamebasic is four families whose spacings differ fivefold (saws close together, sines
    far apart). The novelty and copy rules take T's own spacing as their reference, so the same
    generated set gets the same figures and references whichever family the held-out set holds,
    and a set drawn like T passes them (with H's distance as the reference, a sparse held-out
    set failed it: docs/judge.md, "Novelty and a split's composition")."""
    fam = {f: [read_pcm(p) for p in bank_files(shared_data, f)] for f in ("vgsaw", "vgsqu")}
    fam |= {f: [read_pcm(p) for p in bank_files(shared_data, f)] for f in ("vgsin", "vgtri")}
    rng = np.random.default_rng(0)
    train, gen, sparse, dense = [], [], [], []
    for name, waves in fam.items():
        idx = rng.permutation(len(waves))
        train += [waves[i] for i in idx[:10]]
        gen += [waves[i] for i in idx[10:13]]  # like T: three of each family
        (sparse if name in ("vgsin", "vgtri") else dense).extend(waves[i] for i in idx[13:16])
    reports = [evaluate(gen, train, held, "cycle", power_probes=0) for held in (sparse, dense)]
    checks = [{c.name: c for c in r.checks} for r in reports]
    for name in ("novelty", "copy_fraction"):
        a, b = checks[0][name], checks[1][name]
        assert a.value == b.value, name  # G's figure does not depend on H
        assert a.passed and b.passed, (reports[0].table(), reports[1].table())
    # the copy rule's reference is T's own copy fraction, whatever H holds (only the
    # sampling-noise allowance, H's spread beside G's, differs)
    assert checks[0]["copy_fraction"].baseline == checks[1]["copy_fraction"].baseline
    # the held-out sets themselves sit at very different distances from T
    nov_h = [r.baseline["novelty"] for r in reports]
    assert nov_h[0] > 1.5 * nov_h[1], nov_h
    assert checks[0]["copy_fraction"].rule.startswith("≤ T")


def test_evaluate_oneshots(shared_data, tmp_path):
    from miragen.judge.sets import load_waves

    src = shared_data / "oneshots" / "sonic-pi"
    files = sorted(src.glob("*.wav"))
    # load_waves reads a folder: give it a folder of links to a third of the kit (speed)
    pick = tmp_path / "kit"
    pick.mkdir()
    for f in files[::3]:
        (pick / f.name).symlink_to(f)
    waves, _ = load_waves(pick, "oneshot")
    assert len(waves) == len(files[::3])
    train, held, other = split3(waves, seed=2)
    real = evaluate(other, train, held, "oneshot")
    assert not real.failed and real.verdict in ("pass", "inconclusive"), real.table()
    copies = evaluate(train[: len(other)], train, held, "oneshot")
    assert {"novelty", "copy_fraction"} <= set(copies.failed)


def test_evaluate_refuses_tiny_sets():
    from miragen.errors import MiragenError

    w = [np.sin(np.linspace(0, 2 * np.pi * k, 256)) for k in range(1, 9)]
    with pytest.raises(MiragenError, match="training set"):
        evaluate(w, w[:3], w, "cycle")
    with pytest.raises(MiragenError, match="kind"):
        evaluate(w, w, w, "drum")


def test_bare_rules_without_allowance():
    rng = np.random.default_rng(0)
    w = [rng.normal(size=256) for _ in range(24)]
    bare = evaluate(w[:8], w[8:16], w[16:], "cycle", half_sets=0)
    assert all(c.allowance == 0 for c in bare.checks)
    assert (
        evaluate(w[:8], w[8:16], w[16:], "cycle", permutations=0).details["half_sets"] == 0
    )  # earlier name
    noisy = evaluate(w[:8], w[8:16], w[16:], "cycle")
    assert any(c.allowance > 0 for c in noisy.checks)


def test_gate_drops_each_bad_kind_and_keeps_the_rest_as_drawn(shared_data):
    waves = [read_pcm(p) for p in bank_files(shared_data, "fmsynth")]
    train, held, _ = split3(waves)
    t = np.linspace(0, 1, 256, endpoint=False)
    sine = np.sin(2 * np.pi * t)
    bad = {
        0: np.full(256, np.nan),
        1: np.zeros(256),
        2: np.full(256, 0.5),
        3: 0.01 * sine,
        4: np.sign(sine) * 1.0,  # rail-clipped: fmsynth cycles do not sit at the rails
        5: train[3].copy(),
    }
    good = list(held[:6])
    cands = [bad[i] for i in range(6)] + good + [good[0] + 1e-4]  # last: near-duplicate of 6
    res = gate_candidates(cands, train, "cycle", keep=4)
    assert res.rejected[0] == "non-finite"
    assert res.rejected[1] == "silent"
    assert res.rejected[2] == "constant"
    assert res.rejected[3] == "near-silent"
    assert res.rejected[4].startswith("clipped")
    assert res.rejected[5].startswith("copy of training sample 3")
    assert res.rejected.get(12, "").startswith("duplicate of candidate 6") or res.rejected.get(
        6, ""
    ).startswith("duplicate of candidate 12")
    assert len(res.kept) == 4 and set(res.kept) <= set(range(6, 13))
    assert set(res.scores) == set(range(5, 13))  # every candidate that reached the distances
    assert res.counts["candidates"] == 13 and res.counts["kept"] == 4
    assert res.counts["surplus"] == 13 - 4 - 7
    assert (
        sum(
            res.counts[r]
            for r in (
                "non-finite",
                "silent",
                "constant",
                "near-silent",
                "clipped",
                "copy",
                "duplicate",
                "surplus",
            )
        )
        == 9
    )


def test_gate_keeps_what_the_model_drew_in_its_proportions():
    """Issue 20: the gate keeps a proportional stratified sample of the usable candidates, not
    the most ordinary ones. Four families of cycles, one drawn 24 times and three drawn 8 times
    each (and varying more than their training sounds): asked for 6, the gate keeps 3 of the
    big family (on average over seeds) and spreads the others over the small ones; ranking by
    closeness to the typical distance kept 4 of the big family and 2 of one small family."""
    from collections import Counter

    rng = np.random.default_rng(3)
    t = np.linspace(0, 1, 256, endpoint=False)

    def family(h: int, n: int, spread: float = 0.2) -> list[np.ndarray]:
        return [
            np.sin(2 * np.pi * h * t) * 0.8
            + spread * np.sin(2 * np.pi * (h + 1) * t) * rng.uniform(-1, 1)
            + spread * np.sin(2 * np.pi * (h + 2) * t) * rng.uniform(-1, 1)
            for _ in range(n)
        ]

    train = family(1, 10) + family(3, 10) + family(5, 10) + family(7, 10)
    cands = family(1, 24) + family(3, 8, 0.6) + family(5, 8, 0.6) + family(7, 8, 0.6)

    def fam(i: int) -> int:
        return 0 if i < 24 else 1 + (i - 24) // 8

    big = []
    for seed in range(10):
        res = gate_candidates(
            cands, train, "cycle", keep=6, duplicate_factor=0.0, copy_factor=0.0, seed=seed
        )
        counts = Counter(fam(i) for i in res.kept)
        # the strata are the gate's k-means groups, not these families: the big family's share
        # (24 of 48: 3 of 6) holds on average and within one either way at every seed
        assert len(res.kept) == 6 and 2 <= counts[0] <= 4, (seed, counts)
        assert len(counts) >= 3, (seed, counts)  # the small families are not left out
        big.append(counts[0])
        again = gate_candidates(
            cands, train, "cycle", keep=6, duplicate_factor=0.0, copy_factor=0.0, seed=seed
        )
        assert again.kept == res.kept  # the same seed, the same choice
    assert 2.5 <= np.mean(big) <= 3.5 and big.count(3) >= 6, big


def test_gate_rails_are_judged_against_the_corpus():
    t = np.linspace(0, 1, 256, endpoint=False)
    squares = [np.where((t + 0.01 * k) % 1 < 0.1 + 0.04 * k, 1.0, -1.0) for k in range(12)]
    sines = [np.sin(2 * np.pi * t * (1 + k % 3) + k) * (0.9 - 0.02 * k) for k in range(12)]
    cand = [np.where(t < 0.6, 1.0, -1.0)]
    for_squares = gate_candidates(cand, squares, "cycle", keep=1)
    assert not for_squares.rejected.get(0, "").startswith("clipped"), for_squares.rejected
    for_sines = gate_candidates(cand, sines, "cycle", keep=1)
    assert for_sines.rejected[0].startswith("clipped") and for_sines.kept == []


def test_cli_evaluate(shared_data, tmp_path, cli):
    files = bank_files(shared_data, "ebass")
    train, held, other = split3(files)
    for name, group in (
        ("train", train),
        ("held", held),
        ("gen", other),
        ("copies", train[: len(other)]),
    ):
        (tmp_path / name).mkdir()
        for f in group:
            shutil.copy(f, tmp_path / name / f.name)
    base = [
        "evaluate",
        "--train",
        str(tmp_path / "train"),
        "--held",
        str(tmp_path / "held"),
        "--kind",
        "cycle",
    ]
    ok = cli(*base, "--gen", str(tmp_path / "gen"))  # a real set: never a fail
    assert ok.returncode in (0, 3), ok.stdout.decode() + ok.stderr.decode()
    verdict = b"verdict: PASS" if ok.returncode == 0 else b"verdict: INCONCLUSIVE"
    assert verdict in ok.stdout and b"frechet" in ok.stdout
    if ok.returncode == 3:
        assert b"half-collapsed" in ok.stdout and b"held-out sounds" in ok.stdout
    bad = cli(*base, "--gen", str(tmp_path / "copies"), "--json")
    assert bad.returncode == 1
    import json

    rep = json.loads(bad.stdout)
    assert rep["passed"] is False and "copy_fraction" in rep["failed"]
    missing = cli(*base, "--gen", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and b"Traceback" not in missing.stderr


def test_cycle_shape_tells_a_ramp_from_a_pulse_with_the_same_spectrum():
    """Harmonic magnitudes are blind to phase: a ramp (Σ sin kθ / k) and the same magnitudes in
    cosine phase (a pulse-like spike) have identical spectra. The shape part of the cycle
    features (the distribution of sample values) tells them apart, and still ignores what the
    ear ignores: rotation and polarity."""
    from miragen.judge.features import CYCLE_HARMONICS, cycle_features

    theta = 2 * np.pi * np.arange(256) / 256
    k = np.arange(1, 49)[:, None]
    ramp = (np.sin(k * theta) / k).sum(0)
    spike = (np.cos(k * theta) / k).sum(0)
    f = cycle_features([ramp, spike, np.roll(ramp, 77), -np.roll(spike, 31)])
    spec, shape = f[:, :CYCLE_HARMONICS], f[:, CYCLE_HARMONICS:]
    assert np.linalg.norm(spec[0] - spec[1]) < 0.5  # the spectra agree (dB)
    assert np.linalg.norm(shape[0] - shape[1]) > 5.0  # the shapes do not
    assert np.linalg.norm(f[0] - f[2]) < 1e-6  # rotation does not count
    assert np.linalg.norm(f[1] - f[3]) < 1e-6  # nor polarity


def test_cycle_slopes_tell_steep_edges_from_soft_ones_with_the_same_values():
    """A square wave and a soft square (tanh of a sine) spend their time at the same two values,
    so their value distributions nearly agree; a square's slopes are two steep edges and flat
    tops, a soft square's are spread. The slope part (the band-limited derivative's
    distribution) tells them apart, ignores rotation, polarity and time reversal, and hardly
    moves under 8-bit dithered quantisation."""
    from miragen.judge.features import (
        CYCLE_HARMONICS,
        CYCLE_SHAPE_POINTS,
        cycle_features,
    )

    theta = 2 * np.pi * np.arange(256) / 256
    k = np.arange(1, CYCLE_HARMONICS + 1)[:, None]
    square = ((np.sin(k * theta) / k) * (k % 2 == 1)).sum(0)
    soft = np.tanh(8 * np.sin(theta))
    shape = slice(CYCLE_HARMONICS, CYCLE_HARMONICS + CYCLE_SHAPE_POINTS)
    slopes = slice(CYCLE_HARMONICS + CYCLE_SHAPE_POINTS, None)
    f = cycle_features([square, soft])
    assert np.linalg.norm(f[0, shape] - f[1, shape]) < 2.5  # the values nearly agree
    assert np.linalg.norm(f[0, slopes] - f[1, slopes]) > 10.0  # the slopes do not
    ramp = (np.sin(k * theta) / k).sum(0)
    turned = cycle_features([ramp, np.roll(ramp, 77), -ramp, ramp[::-1]])
    assert np.abs(turned - turned[0]).max() < 1e-9
    rng = np.random.default_rng(0)
    sine = np.sin(theta)
    dithered = np.round(sine * 127 + rng.uniform(-0.5, 0.5, 256) + rng.uniform(-0.5, 0.5, 256))
    g = cycle_features([sine, dithered / 128])
    assert np.linalg.norm(g[0, slopes] - g[1, slopes]) < 1.0


def test_cli_evaluate_reads_what_generate_wrote_once(shared_data, tmp_path, cli):
    """`miragen generate` writes every sound as .pcm and as a .wav preview of the same bytes
    (and a .png): `miragen evaluate --gen` on that folder judges each sound once, not twice
    (twice, every sound had an exact twin and `repeats` failed every model)."""
    from miragen.audio.io import write_pcm, write_wav_u8
    from miragen.judge.sets import load_waves

    train, held, other = split3(bank_files(shared_data, "ebass"))
    for name, group in (("train", train), ("held", held)):
        (tmp_path / name).mkdir()
        for f in group:
            shutil.copy(f, tmp_path / name / f.name)
    gen, pcm_only = tmp_path / "gen", tmp_path / "pcm"
    for folder in (gen, pcm_only):
        folder.mkdir()
    for k, f in enumerate(other):
        data = f.read_bytes()
        write_pcm(gen / f"g-{k:03d}.pcm", data)
        write_wav_u8(gen / f"g-{k:03d}.wav", data, 29411)
        (gen / f"g-{k:03d}.png").write_bytes(b"\x89PNG picture, not a sound")
        write_pcm(pcm_only / f"g-{k:03d}.pcm", data)
    waves, paths = load_waves(gen, "cycle")
    assert len(waves) == len(other) and all(p.suffix == ".wav" for p in paths)
    base = ["evaluate", "--train", str(tmp_path / "train"), "--held", str(tmp_path / "held")]
    both = cli(*base, "--kind", "cycle", "--gen", str(gen), "--json")
    alone = cli(*base, "--kind", "cycle", "--gen", str(pcm_only), "--json")
    rb, ra = json.loads(both.stdout), json.loads(alone.stdout)
    assert both.returncode == alone.returncode in (0, 3), both.stdout.decode()
    assert rb["metrics"]["repeats"] == ra["metrics"]["repeats"] < 0.5
    # a .pcm that is another sound than the .wav of its name is a sound of its own
    write_pcm(gen / "g-000.pcm", other[1].read_bytes())
    assert len(load_waves(gen, "cycle")[0]) == len(other) + 1
