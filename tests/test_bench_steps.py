"""bench/steps.py: how stepped 8-bit cycles are (flat steps, levels, travel over the range)."""

import json

import numpy as np
import pytest
from conftest import load_bench


def test_a_pulse_a_ramp_and_a_hissy_sine():
    st = load_bench("steps")
    pulse = np.where(np.arange(256) < 64, 200, 56).astype(np.uint8)
    d = st.describe(pulse)
    assert d["plateau"] == pytest.approx(254 / 256) and d["levels"] == 2 and d["travel"] == 2
    ramp = np.linspace(1, 255, 256).astype(np.uint8)
    assert st.describe(ramp)["travel"] == pytest.approx(2.0)
    t = np.arange(256) / 256
    sine = 128 + 100 * np.sin(2 * np.pi * t)
    hiss = np.random.default_rng(0).normal(0, 2, 256)
    clean, noisy = (
        st.describe(np.round(sine).astype(np.uint8)),
        st.describe(np.round(sine + hiss).astype(np.uint8)),
    )
    assert noisy["travel"] > clean["travel"] and noisy["plateau"] < clean["plateau"]


def test_folders_give_one_line_each_and_an_empty_one_is_named(tmp_path, capsys):
    st = load_bench("steps")
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "x" / "p.pcm").write_bytes(bytes([200] * 64 + [56] * 192))
    assert st.main([str(tmp_path / "a")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["cycles"] == 1 and row["levels"] == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="empty: no .pcm files"):
        st.main([str(tmp_path / "empty")])


def test_calibrate_counts_real_held_out_parts_failing_the_steps_check(tmp_path, capsys):
    st = load_bench("steps")
    rng = np.random.default_rng(0)
    chip, soft = tmp_path / "chip", tmp_path / "soft"
    chip.mkdir(), soft.mkdir()
    t = np.arange(256) / 256
    for i in range(20):  # pulses of every width: all stepped
        (chip / f"p{i}.pcm").write_bytes(
            bytes(np.where(t < (i + 1) / 22, 200, 56).astype(np.uint8))
        )
        sine = 128 + 100 * np.sin(2 * np.pi * t + rng.uniform(0, 6)) + rng.normal(0, 1, 256)
        (soft / f"s{i}.pcm").write_bytes(bytes(np.clip(np.round(sine), 1, 255).astype(np.uint8)))
    assert st.main(["--calibrate", "--splits", "50", str(chip), str(soft)]) == 0
    a, b = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert a["stepped"] == 1.0 and a["held_out_judged"] == a["as_64_judged"] == 50
    assert a["held_out_fails"] == 0 and a["as_64_fails"] == 0
    assert b == {
        "bank": "soft",
        "folder": str(soft),
        "sounds": 20,
        "stepped": 0.0,
        "checked": False,
    }
    # a fifth stepped: at 64 draws the check applies, at the 4 held-out sounds it cannot fail
    for i in range(5):
        (soft / f"p{i}.pcm").write_bytes(bytes(np.where(t < (i + 1) / 7, 200, 56).astype(np.uint8)))
    assert st.main(["--calibrate", "--splits", "50", str(soft)]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["stepped"] == 0.2 and c["held_out_judged"] == 0 and c["as_64_judged"] > 0
