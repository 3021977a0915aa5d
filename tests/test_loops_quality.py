"""Loops that work on the Mirage: the search, the click and level figures, the crossfade, and
where they are reported (``miragen convert``, ``disk info``, the generated sounds' figures)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from miragen.audio import loops as L
from miragen.audio.convert import convert_file, with_loop
from miragen.audio.mirage8 import prepare
from miragen.cli import main
from miragen.mirage import disk as D
from miragen.mirage import params as P

RATE = 29411


def _tone(seconds=2.5, f=220.0, sr=44100, decay_db=0.0, attack=0.05, seed=0):
    """A bright sustained note: 12 harmonics, an attack, an optional slow decay."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6)) / k for k in range(1, 13))
    env = np.minimum(1.0, t / attack) * 10 ** (-decay_db * t / seconds / 20)
    return y * env, sr


def _with_step(data: bytes, lp: L.LoopPoints, step: float) -> np.ndarray:
    """The loop with a ramp from 0 to −step added: the jump back lands ``step`` LSB high."""
    a = np.frombuffer(data, np.uint8).astype(float)
    s, e = lp.loop_start, lp.loop_end
    a[s:] -= step * np.arange(len(a) - s) / (e + 1 - s)  # on past the loop end: no step there
    return np.clip(np.rint(a), 1, 255).astype(np.uint8)


# --------------------------------------------------------------------------- the figures


def test_click_figure_grows_with_the_step_at_the_jump():
    t = np.arange(256 * 80)
    data = (np.rint(100 * np.sin(2 * np.pi * t / 100)) + 128).astype(np.uint8)
    s, e = 40 * 256, 40 * 256 + 30 * 100 - 1  # 30 whole periods: seamless
    lp = L.LoopPoints(0, 79, s // 256, e // 256, e % 256, True)
    assert L.loop_click_db(data, lp) == L.CLICK_FLOOR_DB
    assert L.loop_level_db(data, lp) == pytest.approx(0.0, abs=0.2)
    clicks = [L.loop_click_db(_with_step(data.tobytes(), lp, d), lp) for d in (5, 10, 20, 40)]
    assert clicks == sorted(clicks) and clicks[0] > L.CLICK_FLOOR_DB
    assert -33 < clicks[0] < -23 and -13 < clicks[-1] < -5  # docs/audio.md: ≈ −28 and −9 dB
    short = L.LoopPoints(0, 79, s // 256, (e - 50) // 256, (e - 50) % 256, True)  # half a period
    assert L.loop_click_db(data, short) > -5  # the wave turned upside down at the jump


def test_click_figure_of_noise_is_quiet_and_off_is_none():
    rng = np.random.default_rng(1)
    data = np.clip(np.rint(rng.normal(0, 30, 256 * 64)) + 128, 1, 255).astype(np.uint8)
    clicks = [
        L.loop_click_db(data, L.LoopPoints(0, 63, p, p + k // 256, k % 256, True))
        for p, k in zip(rng.integers(1, 30, 30), rng.integers(3000, 9000, 30))
    ]
    assert np.mean(np.array(clicks) > L.CLICK_FLOOR_DB) <= 0.05  # noise masks a jump in noise
    off = L.LoopPoints(0, 63, 63, 63, 255, False)
    assert L.loop_click_db(data, off) is None and L.loop_level_db(data, off) is None


# --------------------------------------------------------------------------- the search


@pytest.mark.parametrize("decay_db", [0.0, 8.0])
def test_sustained_note_loops_after_the_attack_clean_and_level(decay_db):
    y, sr = _tone(decay_db=decay_db)  # 2.5 s: cut to 2.23 s with a 10 ms fade-out
    p = prepare(y, sr, target_rate=RATE)
    assert p.cut
    lp = L.find_loop(p.data, rate=RATE)
    content = L.content_length(np.frombuffer(p.data, np.uint8))
    assert lp.loop_on and lp.start_page == 0 and lp.end_page == p.pages - 1
    assert lp.loop_start >= content // 2 - 256  # the second half, after the attack
    assert lp.loop_end <= content - 1 - L.MATCH_HALF  # clear of the fade-out at the cut
    assert lp.loop_length >= (content - 1 - L.MATCH_HALF - lp.loop_start) // 3
    assert L.loop_click_db(p.data, lp) == L.CLICK_FLOOR_DB
    # what is left is the decay across the loop (at least a third of the tail)
    assert abs(L.loop_level_db(p.data, lp)) <= 0.5 + decay_db / 8


def test_slow_attack_is_skipped():
    y, sr = _tone(seconds=2.0, attack=1.4)  # a pad that swells for 70 % of its length
    p = prepare(y, sr, target_rate=RATE)
    lp = L.find_loop(p.data, rate=RATE)
    assert lp.loop_on and lp.loop_start >= 0.7 * 1.4 * RATE
    assert L.loop_click_db(p.data, lp) == L.CLICK_FLOOR_DB


def test_cycle_loops_on_its_period():
    """A 600-frame cycle at 44.1 kHz is 400.15 samples at 29,411 Hz but converts to 401: the
    loop is 400 samples (−0.65 cent), never a part of the cycle (today's rule took 276)."""
    x = np.sin(2 * np.pi * np.arange(600) / 600) + 0.3 * np.sin(6 * np.pi * np.arange(600) / 600)
    p = prepare(x, 44100, target_rate=RATE, dither="none")
    assert p.samples == 401
    lp = L.find_loop(p.data)
    assert (lp.loop_start, lp.loop_end) == (0, 399)
    exact = prepare(np.sin(2 * np.pi * np.arange(400) / 400), RATE, dither="none")
    assert L.find_loop(exact.data).loop_end == 399  # a whole period of 400: all of it


def test_real_akwf_cycles_keep_their_pitch(shared_data):
    files = sorted((shared_data / "akwf").glob("AKWF_*/*.wav"))[::150]
    for f in files:
        p = convert_file(f)
        lp = L.find_loop(p.data, length=p.samples)  # a cycle may end on 0x80: not padding
        cents = 1200 * np.log2(lp.loop_length / (600 * RATE / 44100))
        assert lp.loop_start == 0 and abs(cents) < 5, (f.name, lp)


def test_real_sustained_oneshot_loops_level(shared_data):
    f = shared_data / "oneshots" / "avl-drumkits" / "51-ZildjianA24Ride-2.wav"
    if not f.is_file():
        pytest.skip(f"{f} is absent")
    p = convert_file(f, loop=True)
    assert p.loop["loop_on"] and abs(p.loop["loop_level_db"]) <= 2.0
    assert p.loop["loop_click_db"] == L.CLICK_FLOOR_DB


# --------------------------------------------------------------------------- the crossfade


@pytest.mark.parametrize("shape", L.XFADE_SHAPES)
def test_crossfade_stays_inside_the_loop_and_continues_the_sound(shape):
    rng = np.random.default_rng(2)
    data = rng.choice([1, 255], 256 * 40).astype(np.uint8)  # full scale both ways
    lp = L.LoopPoints(0, 39, 10, 30, 100, True)
    out = np.frombuffer(L.crossfade_loop(data, lp, 10, shape=shape), np.uint8)
    n = L.crossfade_samples(lp, 10)
    assert n == round(RATE * 0.01) and 0 not in out and len(out) == len(data)
    changed = np.flatnonzero(out != data)
    assert changed.min() >= lp.loop_end - n + 1 and changed.max() <= lp.loop_end
    assert out[lp.loop_end] == data[lp.loop_start - 1]  # the jump continues the sound
    assert out[lp.loop_end - n + 1] != data[lp.loop_start - n] or n < 2


def test_crossfade_limits_and_refusals():
    data = np.full(256 * 8, 0x90, np.uint8)
    lp = L.LoopPoints(0, 7, 1, 3, 10, True)
    assert L.crossfade_samples(lp, 100) == 256  # no more than the samples before the loop start
    assert L.crossfade_samples(L.LoopPoints(0, 7, 4, 4, 9, True), 100) == 10  # the loop's length
    assert L.crossfade_samples(lp, 0) == 0
    off = L.LoopPoints(0, 7, 7, 7, 255, False)
    assert L.crossfade_loop(data, off, 10) == data.tobytes()
    with pytest.raises(ValueError, match="shape"):
        L.crossfade_loop(data, lp, 10, shape="cosine")


# --------------------------------------------------------------------------- where it shows


def test_with_loop_reports_and_crossfades():
    y, sr = _tone(seconds=1.5)
    p = prepare(y, sr, target_rate=RATE)
    plain = with_loop(p)
    faded = with_loop(p, xfade_ms=10)
    assert plain.data == p.data and plain.loop["loop_xfade_ms"] == 0
    assert faded.loop["loop_xfade_ms"] == 10.0 and faded.loop["loop_xfade_shape"] == "auto"
    assert faded.data != p.data and 0 not in faded.data and len(faded.data) == len(p.data)
    assert {"loop_click_db", "loop_level_db", "loop_start_page", "loop_end_fine"} <= set(plain.loop)
    assert "no measurable click" in L.describe_loop(plain.loop)
    assert L.describe_loop({"loop_on": False}) == "loop off"


def test_cli_convert_prints_the_loop_and_bakes_the_crossfade(tmp_path, capsys):
    import soundfile as sf

    y, sr = _tone(seconds=1.2)
    src = tmp_path / "pad.wav"
    sf.write(src, (0.5 * y / np.max(np.abs(y))).astype(np.float32), sr)
    assert main(["convert", str(src), "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "loop pages" in out and "level step" in out
    assert main(["convert", str(src), "-o", str(tmp_path / "b"), "--loop-xfade", "20"]) == 0
    assert "20 ms auto crossfade" in capsys.readouterr().out
    a, b = (tmp_path / "a" / "pad.pcm").read_bytes(), (tmp_path / "b" / "pad.pcm").read_bytes()
    diff = np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    assert 0 < len(diff) <= round(RATE * 0.02) and 0 not in b
    with pytest.raises(SystemExit):
        main(["convert", str(src), "-o", str(tmp_path / "c"), "--loop-xfade", "-3"])


def test_disk_info_shows_the_click_of_looping_wavesamples(tmp_path, capsys):
    y, sr = _tone(seconds=0.4, attack=0.01)
    data = prepare(y, sr, target_rate=RATE, max_bytes=32 * 256).data  # 32 pages
    image, _ = D.write_wavesample(D.synthetic_template(), "lower1", 2, data)
    block = D.read_param_block(image, "lower1")
    ws = P.parse_sound_params(block).wavesample(2)
    lp = L.find_loop(data)
    block = P.set_control_fields(
        block,
        2,
        loop_on=1,
        loop_start_page=ws.start_page + lp.loop_start_page,
        loop_end_page=ws.start_page + lp.loop_end_page,
        loop_end_fine=lp.loop_end_fine,
    )
    off = D.param_offset("lower1")
    image = image[:off] + block + image[off + len(block) :]
    img = tmp_path / "loop.img"
    img.write_bytes(image)
    assert main(["disk", "info", str(img), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    wss = info["sounds"]["lower1"]["wavesamples"]
    assert wss[1]["loop_click_db"] == L.loop_click_db(data, lp) == L.CLICK_FLOOR_DB
    assert wss[1]["loop_level_db"] == L.loop_level_db(data, lp)
    assert all(w["loop_click_db"] is None for i, w in enumerate(wss) if i != 1)  # loop off
    assert main(["disk", "info", str(img)]) == 0
    text = capsys.readouterr().out
    assert " click" in text and "-80.0" in text


def test_generated_files_carry_the_loop_figures(tmp_path):
    from miragen.engines.generate import generate_to_folder
    from test_generate import ToyModel

    model = ToyModel("cycle", ["a"], {"a": 256}, RATE)
    res = generate_to_folder(model, 2, tmp_path, gate=False, seed=3)
    assert len(res.figures) == 2
    for pcm, fig in zip(res.pcm, res.figures):
        assert fig["loop_click_db"] == L.loop_click_db(
            pcm.read_bytes(), L.find_loop(pcm.read_bytes())
        )
        assert "loop_level_db" in fig
    assert res.to_dict()["figures"][str(res.pcm[0])]["loop_click_db"] is not None
