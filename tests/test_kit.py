"""Kits in the daemon (``train.kit``): the classes of the corpus train as one conditional model,
recorded for each class with its own verdict, and a kit request (``kit = true``) makes one new
sound of each class, delivered to consecutive wavesamples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from harness import Harness
from miragen.service.requests import RequestError, normalise
from miragen.service.state import KIT, POOL, class_mode, train_subject

pytestmark = pytest.mark.slow
RATE = 29411
N = 2048  # samples of each hit: 8 pages


def _u8(x: np.ndarray) -> bytes:
    x = x / (np.max(np.abs(x)) or 1.0)
    return bytes(np.clip(np.round(128 + 110 * x), 1, 255).astype(np.uint8))


def _kick(rng: np.random.Generator) -> bytes:
    t = np.arange(N) / RATE
    f = rng.uniform(45, 70) * (1 + rng.uniform(2, 5) * np.exp(-t / 0.01))
    return _u8(np.sin(2 * np.pi * np.cumsum(f) / RATE) * np.exp(-t / rng.uniform(0.02, 0.05)))


def _hat(rng: np.random.Generator) -> bytes:
    t = np.arange(N) / RATE
    noise = np.diff(rng.normal(0, 1, N + 1))  # bright
    return _u8(noise * np.exp(-t / rng.uniform(0.005, 0.02)))


def test_class_mode_train_subject_and_kit_key():
    cfg = {"train": {"mode": "oneshot", "kit": True, "oneshot_classes": ""}}
    assert train_subject(cfg, "kick") == KIT and train_subject(cfg, POOL) == POOL
    off = {"train": {"mode": "oneshot", "kit": False, "oneshot_classes": ""}}
    assert train_subject(off, "kick") == "kick"
    mixed = {"train": {"mode": "cycle", "kit": True, "oneshot_classes": "drums, hit-*"}}
    modes = {c: class_mode(mixed, c) for c in ("drums", "hit-1", "hits", "organ", KIT)}
    assert modes == {
        "drums": "oneshot",
        "hit-1": "oneshot",
        "hits": "cycle",
        "organ": "cycle",
        KIT: "oneshot",
    }
    assert train_subject(mixed, "hit-1") == KIT and train_subject(mixed, "organ") == "organ"
    assert normalise({"kit": True}, "t")["kit"] is True
    with pytest.raises(RequestError, match="kit"):
        normalise({"kit": "yes"}, "t")
    assert normalise({"keyboard": "drum", "kit": True}, "t")["keyboard"] == "drum"
    with pytest.raises(RequestError, match="octaves: only with keyboard"):
        normalise({"octaves": 2}, "t")
    with pytest.raises(RequestError, match="keyboard"):
        normalise({"keyboard": "kazoo"}, "t")
    with pytest.raises(RequestError, match="route none"):
        normalise({"keyboard": "organ", "route": "none"}, "t")
    with pytest.raises(RequestError, match="candidate: route none"):
        normalise({"candidate": "r/a.pcm", "route": "none"}, "t")
    assert normalise({"route": "none"}, "t")["route"] == "none"


def test_the_request_schema_names_the_keyboard_presets():
    from miragen.app.keyboard import PRESETS
    from miragen.config import KEYBOARD_PRESETS

    assert tuple(PRESETS) == KEYBOARD_PRESETS


def test_a_kit_trains_one_model_and_a_kit_request_makes_one_sound_per_class(tmp_path):
    h = Harness(
        tmp_path,
        train_seconds=3,
        route="sysex",
        config={"train": {"mode": "oneshot", "kit": True}, "deliver": {"verify": True}},
    )
    rng = np.random.default_rng(5)
    for i in range(6):
        h.drop_good(f"kick/k{i}.pcm", _kick(rng))
        h.drop_good(f"hat/h{i}.pcm", _hat(rng))
    proc = h.start()
    try:
        db = h.state / "miragen.db"

        def models() -> list[tuple[str, str, int]]:
            import sqlite3

            if not db.exists():
                return []
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                    return c.execute(
                        "SELECT class, path, current FROM models ORDER BY class"
                    ).fetchall()
            except sqlite3.OperationalError:  # the daemon is still creating its tables
                return []

        h.wait_for(lambda: len(models()) == 2, 180, "the kit's model", proc)
        rows = models()
        assert [r[0] for r in rows] == ["hat", "kick"]
        assert rows[0][1] == rows[1][1] and rows[0][1].startswith(f"models/{KIT}/v")  # one model
        assert all(r[2] == 1 for r in rows)  # it serves both classes
        trains = [j for j in h.db().execute("SELECT subject FROM jobs WHERE kind='train'")]
        assert {t[0] for t in trains} == {KIT}  # one training job, not one per class

        h.drop_request("drums", "", kit=True, wavesample=3)  # lower 3 and 4
        children = {"hat": "drums-hat", "kick": "drums-kick"}
        h.wait_for(
            lambda: all(h.record(n).get("state") in ("done", "failed") for n in children.values()),
            180,
            "the kit's two requests",
            proc,
        )
        assert h.record("drums")["kit"] == children
        for i, (cls, name) in enumerate(sorted(children.items())):
            rec = h.record(name)
            assert rec["state"] == "done", rec
            assert rec["class"] == cls and rec["request"]["wavesample"] == 3 + i
            assert rec["delivery"]["sysex"]["verified"]

        # the kit as one keyboard across the upper half: hat on the low keys, kick above
        h.drop_request("kb", "", kit=True, keyboard="drum", half="upper", wavesample=1)
        h.wait_for(
            lambda: h.record("kb").get("state") in ("done", "failed"), 180, "the kit keyboard", proc
        )
        kb = h.record("kb")
        assert kb["state"] == "done", kb
        sysex = kb["delivery"]["sysex"]
        assert sysex["ok"] and sysex["verified"], sysex
        zones = kb["keyboard"]["zones"]
        assert len(zones) == 2 and kb["candidates"] == [
            h.record("kb-hat")["candidates"][0],
            h.record("kb-kick")["candidates"][0],
        ]
        assert h.record("kb-hat").get("delivery", {}) == {}  # its sound went in the keyboard
    finally:
        h.stop(proc)
        h.close()
    status = json.loads((h.state / "status.json").read_text())
    assert status  # the daemon wrote its health to the end
