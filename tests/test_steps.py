"""Stepped cycles: their depth and the holding of a short one (audio/levels.py), the judge's
``stepped`` check (judge/steps.py), and the wavegan engine's depth stage
(engines/wavegan/depth.py) that quantises a draw to its nearest training cycle's depth where
that cycle is stepped."""

from __future__ import annotations

import numpy as np
import pytest
from miragen.audio.levels import depth, grid, hold, is_stepped
from miragen.judge import steps
from miragen.judge.metrics import evaluate

N = 256


def levels(x: np.ndarray) -> int:
    """Distinct values on the cycle's own 8-bit grid."""
    return len(np.unique(grid(x)))


def table(rng: np.random.Generator, bits: int = 4) -> np.ndarray:
    """A 32-step wave table of ``bits`` bits, as an 8-bit file holds it (peak ±0.8)."""
    top = 2**bits - 1
    walk = np.cumsum(rng.integers(-3, 4, 32))
    walk = np.round(np.interp(walk, (walk.min(), walk.max() + 1e-9), (0, top)))
    x = np.repeat(walk, N // 32) / (top / 2) - 1
    x = np.roll(x, int(rng.integers(N)))
    return np.rint((x - x.mean()) / np.abs(x - x.mean()).max() * 0.8 * 127) / 128


def blurred(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same table as a smooth model draws it: the steps low-passed, a little hiss on top."""
    spec = np.fft.rfft(x)
    spec[24:] = 0
    return np.fft.irfft(spec, N) + rng.normal(0, 0.01, N)


def smooth(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(N) / N
    x = sum(
        rng.uniform(0, 1) / k * np.sin(2 * np.pi * k * t + rng.uniform(0, 6)) for k in (1, 2, 3)
    )
    return x / np.abs(x).max() * 0.8


def test_levels_depth_and_stepped_on_the_cycles_own_grid():
    rng = np.random.default_rng(0)
    pulse = np.where(np.arange(N) < 64, 0.8, -0.8)
    assert levels(pulse) == 2 and depth(pulse) == 2 and is_stepped(pulse)
    # loudness does not count: the same table at a tenth of the level has the same levels
    t = table(rng)
    assert levels(t) == levels(t * 0.1) <= 16 and is_stepped(t)
    # a 4-bit table's grid has 16 points even where the table uses fewer of them
    full = np.repeat(np.r_[np.arange(16), np.arange(16)[::-1]], 8) / 7.5 - 1
    gappy = np.where(np.isclose(full, full[8 * 3]), full[8 * 4], full)  # one level left out
    assert levels(gappy) == 15 and depth(gappy) == 16
    assert levels(smooth(rng)) > 100 and depth(smooth(rng)) > 200
    # a band-limited pulse has few levels, but on the fine grid (its ripple): not stepped
    spec = np.fft.rfft(pulse)
    spec[40:] = 0
    soft_pulse = np.fft.irfft(spec, N)
    assert levels(soft_pulse) <= 64 and depth(soft_pulse) > 32
    assert not is_stepped(soft_pulse)
    assert not is_stepped(np.zeros(N))  # silence has one level: not a step


def test_a_stepped_bank_fails_blurred_draws_and_passes_real_ones():
    rng = np.random.default_rng(1)
    train = [table(rng) for _ in range(60)]
    held = [table(rng) for _ in range(16)]
    real = [table(rng) for _ in range(40)]
    blur = [blurred(table(rng), rng) for _ in range(40)]
    ok = evaluate(real, train, held, "cycle", power_probes=0)
    bad = evaluate(blur, train, held, "cycle", power_probes=0)
    assert ok.metrics["stepped"] == 1.0 and ok.baseline["stepped"] == 1.0
    assert "stepped" not in ok.failed
    assert bad.metrics["stepped"] == 0.0 and "stepped" in bad.failed
    assert any(r.startswith("stepped:") and "blurred" in r for r in bad.reasons)
    check = next(c for c in bad.checks if c.name == "stepped")
    assert check.baseline == 1.0 and check.limit == pytest.approx(1.0 - steps.STEPS_MARGIN)
    assert "stepped" in bad.table()


def test_the_steps_check_does_not_apply_to_a_smooth_bank():
    rng = np.random.default_rng(2)
    train = [smooth(rng) for _ in range(40)]
    held = [smooth(rng) for _ in range(12)]
    gen = [table(rng) for _ in range(20)]  # stepped draws of a smooth bank: other checks' job
    r = evaluate(gen, train, held, "cycle", power_probes=0)
    assert "stepped" not in r.metrics and all(c.name != "stepped" for c in r.checks)
    # pulses of 600 points are read at 256, as the features read them and the engine trains on
    # them: resampled, their edges ripple, so they are not a stepped class
    long = [np.where(np.arange(600) < d, 0.8, -0.8) for d in range(60, 540, 12)]
    assert all(is_stepped(p) for p in long)  # at their own length they are
    r = evaluate(gen, long[:30], long[30:], "cycle", power_probes=0)
    assert "stepped" not in r.metrics


def test_a_partly_stepped_class_is_checked_where_the_check_can_fail():
    """A mixed folder with console waves in it: G must keep about T's share of stepped cycles
    where a G with none would fall below the limit, and gets no check where it could not."""
    rng = np.random.default_rng(6)

    def bank(n: int, share: float, draw=table) -> list[np.ndarray]:
        k = round(n * share)
        return [draw(rng) for _ in range(k)] + [smooth(rng) for _ in range(n - k)]

    train, held = bank(100, 0.3), bank(25, 0.3)
    real = bank(64, 0.3)
    blur = bank(64, 0.3, lambda r: blurred(table(r), r))
    ok = evaluate(real, train, held, "cycle", power_probes=0)
    bad = evaluate(blur, train, held, "cycle", power_probes=0)
    assert ok.metrics["stepped"] == pytest.approx(0.3, abs=0.01) and "stepped" not in ok.failed
    assert bad.metrics["stepped"] == 0.0 and "stepped" in bad.failed
    check = next(c for c in bad.checks if c.name == "stepped")
    assert check.limit == pytest.approx(steps.steps_limit(0.3, 64, 1.645)[0])
    # a tenth stepped is too few for 64 draws to tell: no check, whatever G does
    few = evaluate(blur, bank(100, 0.1), bank(25, 0.1), "cycle", power_probes=0)
    assert "stepped" not in few.metrics
    assert steps.applies(0.3, 64, 1.645) and not steps.applies(0.1, 64, 1.645)
    assert steps.applies(0.16, 256, 1.645) and not steps.applies(0.16, 64, 1.645)
    assert not steps.applies(0.0, 10_000, 1.645)


def test_the_allowance_follows_the_binomial_spread_at_the_generators_size():
    lo64, a64 = steps.steps_limit(0.7, 64, 1.645)
    lo256, a256 = steps.steps_limit(0.7, 256, 1.645)
    assert a64 == pytest.approx(1.645 * np.sqrt(0.7 * 0.3 / 64))
    assert a256 == pytest.approx(a64 / 2) and lo256 > lo64
    assert steps.steps_limit(1.0, 64, 1.645) == (pytest.approx(0.9), 0.0)


def test_the_depth_stage_quantises_a_draw_to_its_nearest_training_cycles_depth():
    from miragen.engines.wavegan.depth import DepthTable, quantise

    rng = np.random.default_rng(3)
    pulse = [np.where(np.arange(N) < d, 0.8, -0.8) for d in (32, 64, 96, 128, 160)]
    tables = [table(rng) for _ in range(10)]
    t = DepthTable.of_class(pulse + tables + [smooth(rng) for _ in range(3)])
    assert t is not None and sorted(set(t.depths.tolist())) == [0, 2, 16]
    assert DepthTable.of_class([smooth(rng) for _ in range(5)]) is None
    # a mostly smooth class with one console wave in it: a draw near that wave is stepped
    few = DepthTable.of_class([smooth(rng) for _ in range(8)] + [pulse[1]])
    assert few is not None and np.count_nonzero(few.depths) == 1
    assert levels(few.apply([blurred(pulse[1], rng)])[0]) == 2
    assert few.head(8) is None and few.head(9) is not None  # the first 8 are all smooth
    draws = [blurred(pulse[1], rng), blurred(tables[0], rng), smooth(rng)]
    out = t.apply(draws)
    assert levels(out[0]) == 2 and levels(out[1]) <= 16
    assert np.array_equal(out[2], draws[2].astype(np.float32))  # near a smooth cycle: as drawn
    assert t.apply([]) == []
    again = DepthTable.from_dict(t.to_dict())
    assert np.array_equal(again.depths, t.depths)
    assert all(np.array_equal(a, b) for a, b in zip(again.apply(draws), out))
    with pytest.raises(ValueError):
        DepthTable.from_dict({"feats": [[0.0]], "depths": []})
    q = quantise(np.linspace(-1, 1, N), 4)
    assert sorted(set(np.round(q, 5).tolist())) == pytest.approx([-1, -1 / 3, 1 / 3, 1], abs=1e-5)
    flat = np.zeros(N)
    assert np.array_equal(quantise(flat, 4), flat.astype(np.float32))


def test_a_model_of_a_stepped_class_draws_steps_and_keeps_its_table(tmp_path):
    pytest.importorskip("torch")
    from miragen.corpus.dataset import Dataset
    from miragen.engines.base import Budget, load_model
    from miragen.engines.wavegan import WaveGANEngine

    rng = np.random.default_rng(4)
    classes = {"chip": [table(rng) for _ in range(24)], "soft": [smooth(rng) for _ in range(24)]}
    names = {c: [f"{c}{i}" for i in range(24)] for c in classes}
    ds = Dataset("cycle", 29411, classes, names)
    eng = WaveGANEngine(threads=1, eval_every=10, eval_samples=16, holdout=0.0)
    model = eng.fit(ds, Budget(steps=4), None, tmp_path / "ck")
    assert set(model.depth) == {"chip"}
    chip = model.sample(16, "chip", seed=1)
    assert all(2 <= levels(w) <= 16 for w in chip)
    assert steps.stepped_share(model.sample(16, "soft", seed=1)) < 0.5
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert set(again.depth) == {"chip"}
    assert all(np.array_equal(a, b) for a, b in zip(again.sample(16, "chip", seed=1), chip))


def test_the_saved_models_table_holds_every_training_cycle_the_internal_hold_out_too(tmp_path):
    """The snapshot judge quantises with a table of the training part only; the saved model's
    table also holds the internal hold-out (a draw near a held-out smooth cycle must not take a
    stepped neighbour's depth)."""
    pytest.importorskip("torch")
    from miragen.corpus.dataset import Dataset
    from miragen.engines.base import Budget
    from miragen.engines.wavegan import WaveGANEngine

    rng = np.random.default_rng(7)
    mixed = [table(rng) for _ in range(8)] + [smooth(rng) for _ in range(32)]
    ds = Dataset("cycle", 29411, {"mix": mixed}, {"mix": [f"m{i}" for i in range(40)]})
    eng = WaveGANEngine(threads=1, eval_every=10, eval_samples=16, holdout=0.25)
    model = eng.fit(ds, Budget(steps=2), None, tmp_path / "ck")
    assert len(model.depth["mix"].depths) == 40
    assert np.count_nonzero(model.depth["mix"].depths) == 8


def test_a_short_stepped_cycle_is_held_wherever_a_cycle_is_stretched(tmp_path):
    """A 32-point 4-bit table becomes 256 points by holding each value (as a console's DAC
    does) in the judge, in the training set and on the way to the Mirage; a smooth short cycle,
    or a length that is not a whole multiple, stays band-limited."""
    from miragen.audio.loops import cycle_to_pages
    from miragen.corpus.dataset import cycle_from_wave
    from miragen.judge.features import to_cycle

    rng = np.random.default_rng(5)
    t32 = np.round(rng.integers(0, 16, 32)) / 7.5 - 1
    held = np.repeat(t32, 8)
    assert np.array_equal(hold(t32, 256), held)
    assert np.array_equal(to_cycle(t32), held)
    c = cycle_from_wave(t32, 256)
    assert np.all(np.diff(c.reshape(32, 8), axis=1) == 0) and depth(c) <= 16
    page = np.frombuffer(cycle_to_pages(t32, 29411, 29411 * 8), np.uint8)
    assert len(page) == 256 and np.all(np.diff(page.reshape(32, 8).astype(int), axis=1) == 0)
    sine = np.sin(2 * np.pi * np.arange(32) / 32)
    assert hold(sine, 256) is None and not np.allclose(np.diff(to_cycle(sine))[:7], 0)
    assert hold(t32[:30], 256) is None  # 256 is not a multiple of 30
    assert hold(t32, 32) is None and hold(np.repeat(t32, 16), 256) is None  # not longer
