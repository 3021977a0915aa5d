"""`miragen demo`: the whole pipeline on the embedded corpus, checked from its own outputs.

The end-to-end test runs the real command (a short training budget) and checks what it left:
the disk image reads back with `miragen disk info` and holds the delivered cycles (tiled) and
the delivered hit (once, silence after it), the simulated Mirage's state file holds the
delivered bytes, every .pcm follows the Mirage 8-bit rules, the JSON summary has every stage ok
and a verdict per class, the written configuration passes `miragen config check`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from miragen.audio.io import read_audio
from miragen.audio.loops import tile_cycle
from miragen.audio.mirage8 import check_mirage8
from miragen.corpus.synth import CLASSES, HIT_CLASSES
from miragen.demo import facts
from miragen.demo.folder import (
    MARKER,
    SIM_STATE,
    SUMMARY_NAME,
    DemoError,
    lock_folder,
    prepare_folder,
)
from miragen.demo.run import run_demo
from miragen.demo.settings import COUNT, DEMO_ENGINE_SET, PER_CLASS, demo_workers
from miragen.demo.summary import format_summary
from miragen.engines.wavegan.options import WaveGANOptions
from miragen.errors import FormatError, MiragenError
from miragen.mirage import disk
from miragen.transport.simulated import read_state

ROOT = Path(__file__).resolve().parents[1]

STAGES = ["setup", "daemon", "judge", "disk", "previews", "check"]
ONESHOT = "hits"  # the demo's one class of one-shots


def _sim_alive(state_file: Path) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], check=False, capture_output=True, text=True).stdout
    return any("miragen sim" in line and str(state_file) in line for line in out.splitlines())


def _broken_daemon(cfg):
    raise MiragenError("the daemon could not start (test)")


@pytest.mark.timeout(400)
def test_demo_end_to_end(tmp_path, cli, monkeypatch):
    folder = tmp_path / "studio"
    # an earlier demo left this folder (a run that failed after its setup), plus a file of the
    # user's
    with monkeypatch.context() as m:
        m.setattr(facts, "run_daemon", _broken_daemon)
        assert run_demo(folder, 8)["ok"] is False
    (folder / "notes.txt").write_text("mine")
    (folder / "out" / "old").mkdir(parents=True)
    (folder / "out" / "old" / "stale.pcm").write_bytes(
        b"\x00"
    )  # would break the 8-bit check if kept
    (folder / "miragen.db").write_bytes(b"not a database")

    r = cli("demo", "--dir", str(folder), "--seconds", "10", "--json", timeout=380)
    assert r.returncode == 0, r.stderr.decode()[-4000:]
    s = json.loads(r.stdout)
    assert s["ok"] is True
    assert [st["name"] for st in s["stages"]] == STAGES
    assert all(st["ok"] and not st["error"] for st in s["stages"]), s["stages"]
    # the budget over the rounds of training, demo_workers() classes at once
    rounds = -(-len(CLASSES + HIT_CLASSES) // demo_workers())
    assert s["train_seconds_per_class"] == 10 // rounds
    classes = s["classes"]
    assert list(classes) == list(CLASSES + HIT_CLASSES) and HIT_CLASSES == (ONESHOT,)
    assert s["oneshot_classes"] == ONESHOT
    for c, e in classes.items():
        assert e["mode"] == ("oneshot" if c == ONESHOT else "cycle")
        # enough sounds that the judge holds out the 10 it needs to ever say "pass"
        assert e["sounds"] == PER_CLASS == 50 and e["held_out"] == 10 and e["trained_on"] == 40
        assert (
            isinstance(e["steps"], int) and e["train_seconds"] > 0
        )  # steps: few (even 0) on a loaded CPU
        assert e["verdict"] in ("pass", "fail", "inconclusive") and e["judged"] is True
        assert e["state"] == "done"
        assert e["sysex"]["ok"] is True and e["sysex"]["verified"] is True
        assert (
            1 <= len(e["candidates"]) <= COUNT
        )  # the gate drops duplicates of an undertrained model
    # the hits: one-shots of several pages (a cycle is one), each ending near silence (0x80):
    # the generator's length mask fades to 1/32 of full scale at the last sample, at worst (a
    # length of whole pages, so no 0x80 padding after it), ±1 of dither
    for f in classes[ONESHOT]["candidates"]:
        data = (folder / f).read_bytes()
        assert 256 < len(data) <= 8192 and len(data) % 256 == 0, (f, len(data))
        assert abs(data[-1] - 0x80) <= 5, (f, list(data[-8:]))
    hit_sysex = classes[ONESHOT]["sysex"]
    assert hit_sysex["ok"] and hit_sysex["verified"] and hit_sysex["wavesample"] == 5
    for c in CLASSES:
        assert all(len((folder / f).read_bytes()) == 256 for f in classes[c]["candidates"])
    assert s["judge"]["of"] == len(classes) and set(s["judge"]["verdicts"]) == set(classes)
    assert set(s["timings_s"]) >= {
        "setup",
        "ingest",
        "train_and_judge",
        "generate",
        "deliver",
        "disk",
        "previews",
        "check",
    }
    # the facts the summary reports of the daemon's work are the daemon's own records
    status = cli("status", "--config", str(folder / "miragen.toml"), "--json")
    assert status.returncode == 0, status.stderr.decode()
    daemon_classes = json.loads(status.stdout)["classes"]
    for c, e in classes.items():
        model = daemon_classes[c]["model"]
        assert (model["trained_on"], model["held_out"]) == (e["trained_on"], e["held_out"])
        assert model["verdict"] == e["verdict"] and model["path"] == e["model"]
        assert model["steps"] == e["steps"] and daemon_classes[c]["sounds"] == e["sounds"]
        rec = json.loads((folder / "out" / "requests" / f"{e['request']}.json").read_text())
        assert rec["delivered"] == e["delivered"] and set(rec["candidates"]) == set(e["candidates"])

    # the progress lines went to stderr, the JSON alone to stdout
    assert b"[1] setup" in r.stderr

    # the disk image reads back with `disk info`, and holds each class's delivered cycle, tiled
    img = folder / "out" / "demo.img"
    img_cfg = (folder / "out" / "IMG.CFG").read_text()
    assert img_cfg == (ROOT / "deploy" / "IMG.CFG").read_text()
    assert "[::450560]" in img_cfg and "bps = 1024,1024,1024,1024,1024,512" in img_cfg
    info = cli("disk", "info", str(img), "--json")
    assert info.returncode == 0, info.stderr.decode()
    assert json.loads(info.stdout)["synthetic"] is True
    parsed = disk.parse(img.read_bytes())
    snd = parsed.sounds["lower1"]
    for c, p in s["delivered"]["disk"]["placed"].items():
        data = (folder / p["pcm"]).read_bytes()
        assert p["pcm"] == classes[c]["candidates"][0] == classes[c]["delivered"]
        ws = snd.params.wavesample(p["wavesample"])
        got = disk.wavesample_bytes(snd.wave, ws)
        if c == ONESHOT:  # once, then silence: a repeat would replay the hit
            assert p["tiled"] == 1 and got == data + b"\x80" * (ws.length - len(data))
        else:
            assert got == data * (ws.length // len(data)) and p["tiled"] == ws.length // len(data)

    # the simulated Mirage (a separate process, stopped cleanly) holds the delivered bytes
    assert s["sim_exit"] == 0
    assert not _sim_alive(folder / SIM_STATE)
    st = read_state(folder / SIM_STATE)
    for c, e in classes.items():
        data = (folder / e["candidates"][0]).read_bytes()
        got = st["wavesample_data"]["lower"][e["sysex"]["wavesample"]]
        if c == ONESHOT:  # the hit as it is, not repeated
            assert got == data and s["delivered"]["sysex"]["pages_held"][c] == len(data) // 256
        else:
            assert got == data * (len(got) // len(data)) and len(got) % len(data) == 0
        assert s["delivered"]["sysex"]["held_by_sim"][c] is True
    assert st["counters"]["dumps_stored"] >= len(classes)

    # every .pcm follows the Mirage 8-bit rules; previews and pictures exist
    pcms = sorted((folder / "out").rglob("*.pcm"))
    assert len(pcms) == s["pcm_checked"] == sum(len(e["candidates"]) for e in classes.values())
    for p in pcms:
        check_mirage8(p.read_bytes())
    for c, e in classes.items():
        wav = read_audio(folder / "out" / "previews" / f"{c}.wav")
        if c == ONESHOT:  # the one-shot as it is, not looped
            assert wav.rate == 29411
            assert len(wav.samples) == len((folder / e["delivered"]).read_bytes())
        else:
            assert wav.rate == 29411 and 0.9 < len(wav.samples) / wav.rate < 1.1
        assert (folder / "out" / "previews" / f"{c}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "out" / "contact-sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the configuration left behind runs the studio again: valid, this folder, the in-process sim
    cfg_file = folder / "miragen.toml"
    chk = cli("config", "check", str(cfg_file))
    assert chk.returncode == 0, chk.stderr.decode()
    text = cfg_file.read_text()
    assert (
        f'state = "{folder}"' in text and 'transport = "sim"' in text and 'route = "both"' in text
    )
    # its training: the engine's own options but the demo's batch (train.set), classes trained
    # demo_workers() at a time
    assert f'set = "{DEMO_ENGINE_SET}"' in text and f"workers = {demo_workers()}" in text
    meta = json.loads((folder / classes["saw"]["model"] / "model.json").read_text())["meta"]
    assert meta["options"]["spread_lambda"] == WaveGANOptions().spread_lambda
    assert meta["options"]["batch"] == 16 != WaveGANOptions().batch
    assert json.loads((folder / SUMMARY_NAME).read_text())["ok"] is True

    # a rerun: the earlier demo's files were replaced, the user's file kept
    assert "replaced" in s["stages"][0]["detail"]
    assert (folder / "notes.txt").read_text() == "mine"
    assert not (folder / "out" / "old").exists()

    # the human summary (the same dict, as `miragen demo` without --json prints it)
    out = format_summary(s)
    assert (
        "every stage ok" in out
        and "Judge:" in out
        and "out/demo.img" in out
        and "read back and verified" in out
    )
    for c, e in classes.items():
        assert f"judge {e['verdict'].upper()}" in out
    assert f"{ONESHOT}      50 one-shots" in out and "the one-shot once, silence after it" in out
    assert "the one-shot as it is" in out and "looped" in out
    assert "--serial /dev/ttyTHS1" in out and "miragen ports" in out and "install-jetson" in out


def test_refuses_a_folder_that_is_not_a_demo(tmp_path, cli):
    folder = tmp_path / "someones-studio"
    folder.mkdir()
    (folder / "corpus").mkdir()
    (folder / "corpus" / "precious.wav").write_bytes(b"RIFF")
    r = cli("demo", "--dir", str(folder), "--seconds", "8")
    assert r.returncode == 2
    assert "not a Miragen demo folder" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    assert (folder / "corpus" / "precious.wav").read_bytes() == b"RIFF"
    assert sorted(p.name for p in folder.iterdir()) == ["corpus"]


def test_bad_budget_is_bad_input(tmp_path, cli):
    for seconds in ("0", "2"):  # 2 s cannot give 5 classes (3 rounds of 2 at once) a second each
        r = cli("demo", "--dir", str(tmp_path / "x"), "--seconds", seconds)
        assert r.returncode == 2, r.stderr.decode()
        assert "Traceback" not in r.stderr.decode()


def test_a_failed_stage_fails_the_demo_skips_the_rest_and_stops_the_sim(tmp_path, monkeypatch):
    monkeypatch.setattr(facts, "run_daemon", _broken_daemon)
    folder = tmp_path / "f"
    lines: list[str] = []
    s = run_demo(folder, 5, progress=lines.append)
    assert s["ok"] is False
    by = {st["name"]: st for st in s["stages"]}
    assert by["setup"]["ok"] and not by["daemon"]["ok"]
    assert "could not start" in by["daemon"]["error"]
    assert all(not by[n]["ok"] and by[n]["error"].startswith("skipped") for n in STAGES[2:])
    assert s["sim_exit"] == 0 and not _sim_alive(folder / SIM_STATE)
    text = format_summary(s)
    assert "FAILED at stage daemon" in text
    assert any("FAILED" in line for line in lines)


def test_tile_cycle():
    cyc = bytes(np.arange(1, 257, dtype=np.int64).clip(1, 255).astype(np.uint8))
    t = tile_cycle(cyc, 32 * 256)
    assert len(t) == 8192 and t == cyc * 32
    assert tile_cycle(np.frombuffer(cyc, dtype=np.uint8), 256) == cyc
    for bad, n in ((cyc[:100], 256), (cyc, 300), (cyc * 2, 256 * 3), (b"", 256)):
        with pytest.raises(FormatError):
            tile_cycle(bad, n)


def test_prepare_folder_marks_and_cleans_only_its_own(tmp_path):
    f = tmp_path / "p"
    assert prepare_folder(f) is False
    assert (f / MARKER).is_file()
    (f / "inbox" / "x").mkdir(parents=True)
    (f / "inbox" / "x" / "a.pcm").write_bytes(b"\x80")
    (f / "keep").mkdir()
    assert prepare_folder(f) is True
    assert not (f / "inbox").exists() and (f / "keep").is_dir()
    link = tmp_path / "link"
    os.symlink(f, link)
    with pytest.raises(DemoError):
        prepare_folder(link)


def test_one_demo_per_folder(tmp_path):
    folder = tmp_path / "busy"
    fd = lock_folder(folder)  # what a running demo holds
    try:
        with pytest.raises(DemoError, match="another miragen demo"):
            run_demo(folder, 8)
    finally:
        os.close(fd)
    assert list(folder.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoError, match="not a folder"):
        run_demo(tmp_path / "file", 8)
