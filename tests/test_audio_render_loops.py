"""Waveform pictures and loop points."""

from __future__ import annotations

import time

import numpy as np
import pytest
from miragen.audio.loops import LoopPoints, find_loop
from miragen.audio.mirage8 import prepare
from miragen.audio.render import HEIGHT, WIDTH, contact_sheet, draw, waveform_png
from miragen.errors import FormatError
from PIL import Image


def test_waveform_png_bytes_and_floats(tmp_path):
    sine = np.sin(2 * np.pi * np.arange(256) / 256)
    u8 = (np.rint(sine * 127) + 128).astype(np.uint8)
    waveform_png(u8.tobytes(), tmp_path / "a.png", title="a sine")
    waveform_png(sine.astype(np.float32), tmp_path / "b.png")
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert a.size[0] == WIDTH and a.size[1] > HEIGHT  # title band on top
        assert b.size == (WIDTH, HEIGHT)
        img = np.asarray(b)
    # the line reaches the top row near a quarter period and the bottom near three quarters
    assert img[0, WIDTH // 4 - 3 : WIDTH // 4 + 4].min() == 0
    assert img[HEIGHT - 1, 3 * WIDTH // 4 - 3 : 3 * WIDTH // 4 + 4].min() == 0
    body = np.delete(img, HEIGHT // 2, axis=0)  # without the dotted centre line
    assert (body == 0).any(axis=0).all()  # a line in every column, no gaps


def test_draw_long_wave_is_cheap_and_connected():
    x = np.sin(2 * np.pi * 50 * np.arange(65536) / 65536)
    t = time.perf_counter()
    img = draw(x)
    assert time.perf_counter() - t < 0.5
    assert img.shape == (HEIGHT, WIDTH)
    assert (np.delete(img, HEIGHT // 2, axis=0) == 0).any(axis=0).all()
    empty = draw(np.zeros(0))  # no wave: only the dotted centre line, no crash
    assert (empty == 0).sum() == WIDTH // 4 and (empty[HEIGHT // 2] == 0).sum() == WIDTH // 4


def test_contact_sheet(tmp_path):
    waves = [np.sin(2 * np.pi * k * np.arange(256) / 256) for k in range(1, 7)]
    contact_sheet(waves, tmp_path / "s.png", titles=[f"w{k}" for k in range(6)], cols=4)
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (4 * 256 + 1, 2 * (112 + 14) + 1)
    contact_sheet(waves[:1], tmp_path / "one.png")
    with Image.open(tmp_path / "one.png") as im:
        assert im.size == (257, 127)
    with pytest.raises(ValueError):
        contact_sheet(waves, tmp_path / "x.png", titles=["only one"])


# --------------------------------------------------------------------------- loops


def _junction_error(data: bytes, lp: LoopPoints) -> float:
    x = np.frombuffer(data, np.uint8).astype(float)
    e, s = lp.loop_end, lp.loop_start
    pred = 2 * x[e] - x[e - 1]
    return abs(x[s] - pred)


def test_single_page_loops_whole():
    lp = find_loop(bytes(range(1, 256)) + b"\x80")  # 256 bytes, any content
    assert lp == LoopPoints(0, 0, 0, 0, 255, True)
    assert lp.loop_end == 255 and lp.loop_start == 0


def test_converted_cycle_loops_on_its_whole_length():
    t = np.arange(400)
    p = prepare(np.sin(2 * np.pi * t / 400), 29411, dither="none")
    lp = find_loop(p.data)
    assert (lp.start_page, lp.end_page, lp.loop_start_page, lp.loop_on) == (0, 1, 0, True)
    assert lp.loop_end == 399


def test_sustained_sound_loops_in_its_tail_smoothly():
    x = np.sin(2 * np.pi * 440 * np.arange(20000) / 29411)
    p = prepare(x, 29411, dither="none")
    lp = find_loop(p.data)
    assert lp.loop_on and lp.end_page == len(p.data) // 256 - 1
    assert lp.loop_start_page >= (20000 // 256) // 2  # in the tail half
    assert lp.loop_end - lp.loop_start >= 255  # at least a page long
    assert lp.loop_end < p.samples  # not in the padding
    assert lp.loop_end_page <= lp.end_page and 0 <= lp.loop_end_fine <= 255
    assert _junction_error(p.data, lp) <= 3  # a continuous jump (in LSB)


def test_decaying_and_silent_sounds_loop_off():
    n = 20000
    x = np.sin(2 * np.pi * 200 * np.arange(n) / 29411) * np.exp(-np.arange(n) / 1500)
    lp = find_loop(prepare(x, 29411).data)
    assert not lp.loop_on
    assert lp.loop_start_page == lp.loop_end_page == lp.end_page
    assert not find_loop(b"\x80" * 1024).loop_on


def test_loop_rejects_partial_pages():
    with pytest.raises(FormatError):
        find_loop(b"\x80" * 300)
    with pytest.raises(FormatError):
        find_loop(b"")


def test_loops_on_real_oneshots_are_valid(shared_data):
    from miragen.audio.convert import convert_file

    for f in sorted((shared_data / "oneshots" / "sonic-pi").glob("*.wav"))[::12]:
        p = convert_file(f)
        lp = find_loop(p.data)
        assert lp.start_page == 0 and lp.end_page == p.pages - 1
        assert lp.loop_start_page <= lp.loop_end_page <= lp.end_page
        if lp.loop_on:
            assert lp.loop_end - lp.loop_start >= 255 or p.pages == 1


def test_fill_with_cycle_tiles_whole_cycles_into_a_page_range():
    from miragen.audio.loops import fill_with_cycle

    cyc = bytes(
        np.clip(np.round(128 + 100 * np.sin(2 * np.pi * np.arange(256) / 256)), 1, 255).astype(
            np.uint8
        )
    )
    full = fill_with_cycle(cyc, 32 * 256)  # the synthetic template's 32-page wavesample
    assert len(full) == 32 * 256 and all(
        full[k * 256 : (k + 1) * 256] == cyc for k in range(32)
    )  # no 0x80 tail
    # every page starts the cycle: a loop from any page start to any page end continues it
    # seamlessly
    assert {full[k * 256] for k in range(32)} == {cyc[0]} and {
        full[k * 256 + 255] for k in range(32)
    } == {cyc[255]}
    two = (
        bytes(range(1, 256)) + b"\x01" + bytes(range(1, 256)) + b"\x02"
    )  # a 2-page cycle into 5 pages: 2 whole cycles
    assert fill_with_cycle(two, 5 * 256) == two * 2
    assert fill_with_cycle(cyc, 256) == cyc
    with pytest.raises(FormatError):
        fill_with_cycle(two, 256)
    with pytest.raises(FormatError):
        fill_with_cycle(b"\x81" * 100, 1024)  # not whole pages
