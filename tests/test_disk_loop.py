"""A one-shot placed into a disk image gets its own loop (``app.disk.place(loop=True)``): the
loop find_loop chooses, inside the wavesample's pages, on for a sustained sound, off for one
that dies away; without ``loop`` the template's loop is kept."""

from __future__ import annotations

import numpy as np
from miragen.app import disk as disk_app

RATE = 29411


def _u8(x: np.ndarray) -> bytes:
    u = bytes(np.clip(np.round(128 + 100 * x), 1, 255).astype(np.uint8))
    return u + b"\x80" * ((-len(u)) % 256)


def test_a_sustained_one_shot_gets_a_loop_inside_its_pages():
    t = np.arange(6000) / RATE
    data = _u8(np.sin(2 * np.pi * 220 * t) * np.minimum(1, t / 0.01))
    image = disk_app.load_template("")
    before = disk_app.wavesample(image, "lower1", 2)
    placed = disk_app.place(image, "lower1", 2, data, loop=True)
    ws = disk_app.wavesample(placed.image, "lower1", 2)
    assert ws.loop_on == 1 and placed.report["loop"]["loop_on"] == 1
    last_page = ws.start_page + len(data) // 256 - 1
    assert ws.start_page <= ws.loop_start_page <= ws.loop_end_page <= last_page
    assert placed.report["loop"]["click_db"] <= -20
    assert (ws.start_page, ws.end_page) == (before.start_page, before.end_page)  # layout kept
    kept = disk_app.place(image, "lower1", 2, data)  # no loop asked: the template's stays
    assert disk_app.wavesample(kept.image, "lower1", 2).to_dict() == before.to_dict()


def test_a_hit_that_dies_away_loops_off():
    t = np.arange(4096) / RATE
    data = _u8(np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.02))
    placed = disk_app.place(disk_app.load_template(""), "lower1", 1, data, loop=True)
    assert disk_app.wavesample(placed.image, "lower1", 1).loop_on == 0
