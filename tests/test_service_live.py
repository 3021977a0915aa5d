"""The daemon's side of the files it shares with the web process (docs/live-files.md):
delivery progress, training progress, MIDI learn, learned triggers, delivering an earlier
candidate. Fast: the handlers run in-process on the simulated Mirage, the training child is
replaced by its events, and one daemon runs with a pty as its MIDI input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from miragen import config as configmod
from miragen.engines.base import Progress
from miragen.errors import ConfigError
from miragen.fsutil import atomic_write_bytes
from miragen.service import handlers, live, triggers
from miragen.service import requests as requests_mod
from miragen.service.child import ChildFailed, ChildStopped
from miragen.service.context import Context
from miragen.service.daemon import Daemon
from miragen.service.link import TransportLink
from miragen.service.requests import (
    RequestError,
    candidate_file,
    normalise,
    read_record,
    write_record,
)
from miragen.service.state import StateDir
from miragen.service.tasks import progress_event
from miragen.service.triggers import TriggerListener, _message


def _wave(seed: int, n: int = 256) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * np.arange(n) / n) * 0.6 + rng.normal(0, 0.1, n)
    return bytes(np.clip(128 + 100 * x, 1, 255).astype(np.uint8))


def _wait(cond, timeout=15.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def ctx(tmp_path):
    cfg = configmod.validate(
        {
            "paths": {"state": str(tmp_path / "state")},
            "deliver": {"transport": "sim", "route": "sysex"},
            "train": {"seconds": 10},
        }
    )
    state = StateDir(tmp_path / "state")
    state.create()
    c = Context.open(cfg, state, transport=TransportLink(cfg))
    yield c
    c.transport.close()
    c.db.close()


@pytest.fixture
def writes(monkeypatch):
    """Every live file written, in order: (file name, a copy of what was written)."""
    seen: list[tuple[str, dict]] = []
    real = live.write_live

    def spy(path, data):
        seen.append((Path(path).name, json.loads(json.dumps(data, default=str))))
        return real(path, data)

    monkeypatch.setattr(live, "write_live", spy)
    return seen


def _job(c: Context, kind: str, payload: dict, subject: str):
    c.queue.add(kind, payload, key=f"{kind}:{subject}", subject=subject)
    job = c.queue.claim((kind,))
    assert job is not None
    return job


# ---------------------------------------------------------------------------- write_live
def test_write_live_is_whole_and_never_raises(tmp_path):
    p = tmp_path / "live" / "x.json"
    assert live.write_live(p, {"a": 1, "m": float("nan")})
    assert json.loads(p.read_text()) == {"a": 1, "m": None}  # NaN: null, still JSON
    assert live.read_live(p) == {"a": 1, "m": None}
    assert [x.name for x in p.parent.iterdir()] == ["x.json"]  # no temporary file left
    (tmp_path / "file").write_text("")
    assert live.write_live(tmp_path / "file" / "y.json", {"a": 1}) is False  # logged, not raised
    assert live.read_live(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("[1, 2")
    assert live.read_live(tmp_path / "bad.json") is None
    os.symlink(p, tmp_path / "link.json")
    assert live.read_live(tmp_path / "link.json") is None  # links are not followed


# ---------------------------------------------------------------------------- delivery
def test_delivery_progress_sysex_then_disk(ctx, writes):
    pcm = ctx.state.out / "r1" / "cand-1.pcm"
    atomic_write_bytes(pcm, _wave(1, 256 * 4))
    payload = {
        "name": "r1",
        "pcm": "out/r1/cand-1.pcm",
        "route": "both",
        "half": "lower",
        "wavesample": 2,
        "sound": "lower1",
    }
    handlers.run_deliver(ctx, _job(ctx, "deliver", payload, "r1"))
    assert read_record(ctx.state, "r1")["state"] == "done"
    seen = [w for n, w in writes if n == "delivery.json"]
    sysex = [w for w in seen if w["id"] == "r1:sysex"]
    disk = [w for w in seen if w["id"] == "r1:disk"]
    assert len(sysex) >= 3 and len(disk) == 2 and len(seen) == len(sysex) + len(disk)
    first, last = sysex[0], sysex[-1]
    assert first["phase"] == "sending" and first["done"] == 0 and first["ok"] is None
    assert first["total"] > 256 * 4 * 2  # the key presses and the nybblized dump
    assert first["request"] == "r1" and first["route"] == "sysex" and "result" not in first
    dones = [w["done"] for w in sysex]
    assert dones == sorted(dones) and all(w["total"] == first["total"] for w in sysex)
    assert any(w["phase"] == "sending" and w["done"] == w["total"] for w in sysex)  # last byte
    assert last["phase"] == "done" and last["ok"] is True and last["error"] == ""
    assert last["result"]["ok"] and last["result"]["wavesample"] == 2
    assert last["result"] == read_record(ctx.state, "r1")["delivery"]["sysex"]
    assert disk[0]["phase"] == "sending" and disk[-1]["phase"] == "done"
    assert disk[-1]["result"]["image"] == "out/r1/r1.img"
    seqs = [w["seq"] for w in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(isinstance(w["t"], float) for w in seen)
    on_disk = json.loads(ctx.state.live_delivery.read_text())
    assert on_disk["id"] == "r1:disk" and on_disk["seq"] == seqs[-1]
    # the next delivery's seq goes on from the file's (across restarts too)
    dl = live.DeliveryLive(ctx.state.live_delivery, "r2", "sysex")
    dl.start(10)
    assert json.loads(ctx.state.live_delivery.read_text())["seq"] == seqs[-1] + 1


def test_delivery_progress_failed_and_stopped(ctx, writes):
    atomic_write_bytes(ctx.state.out / "r" / "c.pcm", _wave(2))
    ctx.cfg["deliver"]["template"] = str(ctx.state.root / "no-such-template.img")
    payload = {
        "name": "r",
        "pcm": "out/r/c.pcm",
        "route": "disk",
        "half": "lower",
        "wavesample": 1,
        "sound": "lower1",
    }
    handlers.run_deliver(ctx, _job(ctx, "deliver", payload, "r"))
    end = json.loads(ctx.state.live_delivery.read_text())
    assert end["phase"] == "failed" and end["ok"] is False and "disk image" in end["error"]
    assert end["result"]["ok"] is False and read_record(ctx.state, "r")["state"] == "failed"
    # a shutdown in the middle of a dump: failed, to be sent again after the restart
    payload.update(name="s", route="sysex")
    ctx.stopping.set()
    with pytest.raises(handlers.Stopping):
        handlers.run_deliver(ctx, _job(ctx, "deliver", payload, "s"))
    end = json.loads(ctx.state.live_delivery.read_text())
    assert end["id"] == "s:sysex" and end["phase"] == "failed" and "shutdown" in end["error"]


def test_delivery_progress_is_throttled(tmp_path, writes):
    t = [0.0]
    dl = live.DeliveryLive(tmp_path / "delivery.json", "r", "sysex", clock=lambda: t[0])
    dl.start(1000)
    for done in range(0, 1001, 50):
        t[0] += 0.03
        dl.progress(done, 1000)
    # 21 callbacks 30 ms apart: about one in four written, and the last byte always
    assert 6 <= len(writes) <= 9 and writes[-1][1]["done"] == 1000
    assert [w["seq"] for _, w in writes] == list(range(1, len(writes) + 1))


# ---------------------------------------------------------------------------- training
def test_child_progress_events_carry_step_budget_and_snapshots():
    plain = progress_event(Progress(40, 3.0, losses={"d": 0.1}), "bass", 2.5, 8.0)
    assert plain["ev"] == "progress" and plain["step"] == 40 and plain["run_s"] == 2.5
    assert plain["budget_s"] == 8.0 and "snapshot" not in plain
    snap = progress_event(
        Progress(60, 4.0, metrics={"passed": 1.0, "recall": 0.5}, message="snapshot (1.0, 0.25)"),
        "bass",
        3.5,
        8.0,
    )
    assert snap["snapshot"] is True and snap["score"] == [1.0, 0.25]
    assert snap["metrics"] == {"passed": 1.0, "recall": 0.5}
    assert live.snapshot_score("snapshot (1, -0.5, 0.3)") == [1.0, -0.5, 0.3]
    assert live.snapshot_score("snapshot (1.0, -inf)") == [1.0, None]  # no cross-validation
    assert live.snapshot_score("snapshot (0.0,)") == [0.0]
    assert live.snapshot_score("snapshot garbage(") == [] and live.snapshot_score("x") is None


def _train_events(start: int):
    yield {"ev": "phase", "text": "loading torch"}
    yield {"ev": "phase", "text": "training class bass", "state": "training"}
    for i in range(5):
        step = start + 10 * i
        yield {"ev": "progress", "text": "", "step": step, "run_s": 0.5 * i, "budget_s": 10.0}
    yield {
        "ev": "progress",
        "text": "",
        "step": start + 50,
        "run_s": 2.5,
        "budget_s": 10.0,
        "snapshot": True,
        "score": [1.0, -0.1],
        "metrics": {"passed": 1.0, "failed_rules": 0.0, "recall": 0.7},
    }


def test_training_file_steps_snapshots_states_and_resume(ctx, writes, monkeypatch):
    states = []

    def stopped_child(d, worker, task, spec, *, what, on_event):
        for ev in _train_events(0):
            on_event(ev)
        states.append(json.loads(ctx.state.live_training("bass").read_text())["state"])
        raise ChildStopped(3.0)

    monkeypatch.setattr(handlers, "run_child", stopped_child)
    job = _job(ctx, "train", {}, "bass")
    handlers.run_train(ctx, job)
    f = ctx.state.live_training("bass")
    data = json.loads(f.read_text())
    assert states == ["training"] and data["state"] == "stopped" and data["class"] == "bass"
    assert data["step"] == 50 and data["run_s"] == 3.0 and data["budget_s"] == 10.0
    assert data["steps_per_s"] == 20.0 and data["version"] == "v0001"
    (snap,) = data["snapshots"]
    assert snap == {
        "step": 50,
        "run_s": 2.5,
        "score": [1.0, -0.1],
        "metrics": {"passed": 1.0, "failed_rules": 0.0, "recall": 0.7},
        "passed": True,
    }
    # plain progress is throttled (1 s), snapshots and states always written
    kinds = [w["state"] for n, w in writes if n == "training-bass.json"]
    assert kinds.count("training") <= 3 and kinds[-1] == "stopped"

    def finished_child(d, worker, task, spec, *, what, on_event):
        for ev in _train_events(50):  # resumed from the checkpoint, 3 s spent before
            on_event(ev)
        on_event({"ev": "phase", "text": "saving model v0001", "state": "saving"})
        on_event({"ev": "phase", "text": "judging model v0001", "state": "judging"})
        return {
            "passed": True,
            "report": {"judged": True, "passed": True, "verdict": "pass"},
            "files": 30,
            "run_s": 7.0,
        }

    monkeypatch.setattr(handlers, "run_child", finished_child)
    job = ctx.queue.claim(("train",))
    assert job is not None and job.payload["elapsed"] == 3.0
    handlers.run_train(ctx, job)
    data = json.loads(f.read_text())
    assert data["state"] == "done" and data["model"] == "models/bass/v0001"
    assert data["verdict"] == "pass" and data["serves"] is True and data["run_s"] == 10.0
    assert [s["step"] for s in data["snapshots"]] == [50, 100]  # the first run's kept
    assert data["snapshots"][1]["run_s"] == 5.5  # seconds of the model, not of the run
    assert "saving" in [w["state"] for n, w in writes] and "judging" in [
        w["state"] for n, w in writes
    ]

    def failing_child(d, worker, task, spec, *, what, on_event):
        on_event({"ev": "phase", "text": "training", "state": "training"})
        raise ChildFailed("train pad: the class cannot be read")

    monkeypatch.setattr(handlers, "run_child", failing_child)
    handlers.run_train(ctx, _job(ctx, "train", {}, "pad"))
    data = json.loads(ctx.state.live_training("pad").read_text())
    assert data["state"] == "failed" and "cannot be read" in data["error"]
    assert data["snapshots"] == []


def test_training_file_keeps_the_last_200_snapshots(tmp_path):
    tl = live.TrainingLive(tmp_path / "t.json", "c", "v0002", budget_s=60.0)
    for i in range(250):
        tl.event({"ev": "progress", "step": i, "run_s": i / 10, "snapshot": True, "score": [i]})
    data = json.loads((tmp_path / "t.json").read_text())
    assert len(data["snapshots"]) == 200 and data["snapshots"][0]["step"] == 50
    other = live.TrainingLive(tmp_path / "t.json", "c", "v0003", budget_s=60.0)  # a new model
    assert other.data["snapshots"] == [] and other.data["step"] == 0


# ---------------------------------------------------------------------------- MIDI learn
def _listener(state: StateDir, tables=None):
    fired = []
    lst = TriggerListener(
        "serial:loop://",
        configmod.validate({"trigger": tables or []})["trigger"],
        lambda i, t, m: fired.append((i, t["class"], m.data)),
        state=state,
    )
    return lst, fired


def _learn(state: StateDir, lid: str, seconds: float = 30.0) -> None:
    live.write_live(state.learn_file, {"id": lid, "until": time.time() + seconds})


def test_midi_learn_takes_one_message_per_request(tmp_path):
    st = StateDir(tmp_path)
    st.create()
    lst, fired = _listener(st, [{"message": "note_on", "note": 60, "class": "bass"}])
    _learn(st, "abc")
    lst.handle(_message(bytes([0x80, 60, 0])))  # note off: not learned
    lst.handle(_message(bytes([0x90, 61, 0])))  # note on at velocity 0 is a note off
    assert not st.learned_file.exists()
    lst.handle(_message(bytes([0x90, 60, 100])))  # learned, does not fire
    got = json.loads(st.learned_file.read_text())
    assert got["id"] == "abc" and isinstance(got["t"], float)
    assert got["message"] == {
        "kind": "note_on",
        "channel": 1,
        "note": 60,
        "velocity": 100,
        "program": -1,
        "control": -1,
        "value": -1,
        "hex": "90 3c 64",
    }
    assert fired == []
    lst.handle(_message(bytes([0x90, 60, 100])))  # answered: the next one fires
    assert fired == [(0, "bass", bytes([0x90, 60, 100]))]
    _learn(st, "def")
    lst.handle(_message(bytes([0xB3, 7, 99])))
    got = json.loads(st.learned_file.read_text())
    assert got["id"] == "def" and got["message"]["kind"] == "control_change"
    assert got["message"]["channel"] == 4 and got["message"]["value"] == 99
    assert triggers.table_for_message(got["message"]) == {
        "message": "control_change",
        "channel": 4,
        "control": 7,
        "value": 99,
    }
    # a restart: the answered id is not answered twice; an expired request learns nothing
    lst2, fired2 = _listener(st, [{"message": "note_on", "note": 60, "class": "bass"}])
    lst2.handle(_message(bytes([0x90, 60, 1])))
    _learn(st, "old", seconds=-1)
    lst2.handle(_message(bytes([0x90, 60, 2])))
    assert len(fired2) == 2 and json.loads(st.learned_file.read_text())["id"] == "def"
    _learn(st, "sx")
    lst2.handle(_message(bytes([0xF0, 0x7D, 0x01, 0xF7])))
    msg = json.loads(st.learned_file.read_text())["message"]
    assert msg["kind"] == "sysex" and msg["hex"] == "f0 7d 01 f7"
    assert triggers.table_for_message(msg) == {"message": "sysex", "pattern": "F0 7D 01 F7"}


# ---------------------------------------------------------------------------- triggers.json
def test_learned_triggers_reload_and_a_bad_file_keeps_the_old_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(triggers, "TRIGGERS_CHECK_S", 0.0)
    st = StateDir(tmp_path)
    st.create()
    triggers.write_triggers_file(
        st.triggers_file, [{"message": "note_on", "note": 60, "class": "learned"}]
    )
    lst, fired = _listener(st, [{"message": "note_on", "class": "config"}])
    assert [t["class"] for t in lst.triggers] == ["learned", "config"] and lst.triggers_error == ""
    lst.handle(_message(bytes([0x90, 60, 1])))
    lst.handle(_message(bytes([0x90, 61, 1])))
    assert [f[1] for f in fired] == ["learned", "config"]
    # taught while running: read again, no restart
    tables = [
        {"message": "program_change", "program": 5, "class": "pad"},
        {"message": "note_on", "note": 61, "class": "learned"},
    ]
    triggers.write_triggers_file(st.triggers_file, tables)
    lst.handle(_message(bytes([0xC0, 5])))
    lst.handle(_message(bytes([0x90, 61, 1])))
    assert [f[1] for f in fired[2:]] == ["pad", "learned"] and len(lst.learned) == 2
    for bad, why in [
        ('{"triggers": [{"message": "note_on", "note": 200}]}', "trigger[0].note"),
        ('{"triggers": [{"mesage": "note_on"}]}', "unknown key"),
        ('{"triggers": [{"class": "../etc"}]}', "not a class name"),
        ('{"triggers": {}}', '{"triggers"'),
        ("[1,", "not valid JSON"),
    ]:
        st.triggers_file.write_text(bad)
        lst.handle(_message(bytes([0xC0, 5])))
        assert why in lst.triggers_error and str(st.triggers_file) in lst.triggers_error, bad
        assert len(lst.learned) == 2 and fired[-1][1] == "pad"  # the previous tables stay
    st.triggers_file.unlink()
    lst.handle(_message(bytes([0xC0, 5])))
    assert lst.learned == [] and lst.triggers_error == "" and fired[-1][1] == "pad"
    assert len(fired) == 4 + 5  # the last program change matched nothing
    with pytest.raises(ConfigError, match="wavesample"):
        triggers.check_trigger_tables([{"wavesample": 9}])
    assert triggers.check_trigger_tables([{}])[0] == {
        k: v.default for k, v in configmod.TRIGGER_SCHEMA.items()
    }


def test_a_trigger_can_ask_for_a_kit_or_a_keyboard_and_a_bad_combination_stops_the_start(
    tmp_path,
):
    (table,) = triggers.check_trigger_tables(
        [{"note": 36, "kit": True, "keyboard": "drum", "wavesample": 1}]
    )
    req = requests_mod.from_trigger(table)
    assert req["kit"] is True and req["keyboard"] == "drum" and req["octaves"] == 0
    (table,) = triggers.check_trigger_tables([{"class": "pad", "keyboard": "pad", "octaves": 3}])
    assert requests_mod.from_trigger(table)["octaves"] == 3
    with pytest.raises(ConfigError, match=r"trigger\[0\]: octaves: only with keyboard"):
        triggers.check_trigger_tables([{"octaves": 2}])
    config = tmp_path / "miragen.toml"
    config.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\n'
        '[[trigger]]\nnote = 40\nkit = true\nkeyboard = "organ"\noctaves = 2\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "miragen", "daemon", "--config", str(config), "--max-seconds", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "octaves: a kit's keyboard has one sound of each class" in proc.stderr, proc.stderr
    assert str(config) in proc.stderr


def test_daemon_learns_and_fires_learned_triggers_without_a_restart(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    state = tmp_path / "state"
    StateDir(state).create()
    triggers.write_triggers_file(  # read at start: learned before a restart
        StateDir(state).triggers_file, [{"message": "note_on", "note": 50, "class": "first"}]
    )
    cfg = configmod.validate(
        {
            "paths": {"state": str(state)},
            "daemon": {"settle_s": 0.1, "rescan_s": 5.0},
            "deliver": {"transport": "sim"},
            "midi": {"input": f"serial:{os.ttyname(slave)}"},
        }
    )

    def no_generate(d, job):
        d.queue.finish(job)

    d = Daemon(cfg, handlers={"generate": no_generate})
    d.idle_wait = 0.5
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    st = d.state

    def classes():
        recs = [json.loads(p.read_text()) for p in st.records.glob("midi-*.json")]
        return sorted(r["request"]["class"] for r in recs)

    try:
        _wait(lambda: d.listener is not None and d.listener.ready.is_set(), what="start")
        os.write(master, bytes([0x90, 50, 64]))
        _wait(lambda: classes() == ["first"], what="the trigger learned before the start")
        _learn(st, "k1")
        os.write(master, bytes([0x92, 72, 64]))
        _wait(lambda: st.learned_file.exists(), what="learned.json")
        msg = json.loads(st.learned_file.read_text())["message"]
        assert msg["note"] == 72 and msg["channel"] == 3
        table = dict(triggers.table_for_message(msg), **{"class": "taught"})
        triggers.write_triggers_file(st.triggers_file, [table])
        time.sleep(0.6)  # the listener looks at triggers.json at most every 0.5 s
        os.write(master, bytes([0x92, 72, 64]))
        _wait(lambda: classes() == ["first", "taught"], what="the taught trigger")
        st.triggers_file.write_text('{"triggers": [{"note": -5}]}')
        time.sleep(0.6)
        d.write_status()
        mi = json.loads(st.status_file.read_text())["midi_input"]
        assert mi["learned_triggers"] == 1 and "trigger[0].note" in mi["triggers_error"]
        os.write(master, bytes([0x92, 72, 64]))  # the taught trigger still fires
        _wait(lambda: classes() == ["first", "taught", "taught"], what="the kept trigger")
    finally:
        d.stopping.set()
        t.join(timeout=15)
        os.close(master)
        os.close(slave)
    assert not t.is_alive()


# ---------------------------------------------------------------------------- candidate
@pytest.mark.parametrize(
    "bad",
    [
        "../x.pcm",
        "a/../../b.pcm",
        "/abs/x.pcm",
        "a/b/c.pcm",
        "a/.x.pcm",
        "../a.pcm",
        "a/..",
        "a/b.wav",
        "x.pcm",
        "a\\b/c.pcm",
        "a/b c.pcm",
        "/",
    ],
)
def test_candidate_must_name_request_and_file(bad):
    with pytest.raises(RequestError, match="candidate"):
        normalise({"candidate": bad}, "r.toml")


def _earlier(c: Context, name="bass-01", files=("bass-01-1.pcm", "bass-01-2.pcm")) -> list[str]:
    rels = []
    for i, f in enumerate(files):
        atomic_write_bytes(c.state.out / name / f, _wave(10 + i))
        rels.append(f"out/{name}/{f}")
    write_record(
        c.state, name, state="done", candidates=rels, files=rels, model="models/bass/v0001"
    )
    return rels


def test_candidate_request_delivers_the_named_candidate(ctx):
    rels = _earlier(ctx)
    req = normalise({"candidate": "bass-01/bass-01-2.pcm", "wavesample": 5}, "r.json")
    assert req["candidate"] == "bass-01/bass-01-2.pcm"
    write_record(ctx.state, "again", state="queued", request=req)
    handlers.run_generate(ctx, _job(ctx, "generate", {"name": "again", "request": req}, "again"))
    rec = read_record(ctx.state, "again")
    assert rec["state"] == "running" and rec["candidate"] == "bass-01/bass-01-2.pcm"
    assert not (ctx.state.out / "again").exists()  # nothing generated
    job = ctx.queue.claim(("deliver",))
    assert job.payload["pcm"] == rels[1] and job.payload["wavesample"] == 5
    handlers.run_deliver(ctx, job)
    rec = read_record(ctx.state, "again")
    assert rec["state"] == "done" and rec["delivered"] == rels[1], rec
    assert rec["candidate"] == "bass-01/bass-01-2.pcm" and rec["model"] == "models/bass/v0001"
    sent = ctx.transport.open().sim.wavesample_data("lower", 5)
    assert sent[:256] == (ctx.state.root / rels[1]).read_bytes()


def test_candidate_request_refuses_unknown_and_linked_files(ctx, tmp_path):
    _earlier(ctx)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.pcm").write_bytes(_wave(3))
    os.symlink(outside / "evil.pcm", ctx.state.out / "bass-01" / "link.pcm")
    os.symlink(outside, ctx.state.out / "linked")
    rels = ["out/bass-01/link.pcm"]
    write_record(ctx.state, "bass-01", candidates=["out/bass-01/bass-01-1.pcm", *rels])
    write_record(ctx.state, "linked", state="done", candidates=["out/linked/evil.pcm"])
    cases = {
        "bass-01/nope.pcm": "no such candidate of request bass-01",
        "nobody/x.pcm": "no request named nobody",
        "bass-01/link.pcm": "not a regular file",
        "linked/evil.pcm": "not a regular file",
    }
    for cand, why in cases.items():
        with pytest.raises(RequestError, match=why):
            candidate_file(ctx.state, cand)
    (ctx.state.out / "bass-01" / "bass-01-1.pcm").unlink()
    with pytest.raises(RequestError, match="gone"):
        candidate_file(ctx.state, "bass-01/bass-01-1.pcm")
    # through the handler: the request fails with the reason in its record
    req = normalise({"candidate": "bass-01/nope.pcm"}, "r.json")
    handlers.run_generate(ctx, _job(ctx, "generate", {"name": "bad", "request": req}, "bad"))
    rec = read_record(ctx.state, "bad")
    assert rec["state"] == "failed" and rec["candidate"] == "bass-01/nope.pcm"
    assert rec["reason"] == "candidate bass-01/nope.pcm: no such candidate of request bass-01"
    assert ctx.queue.claim(("deliver",)) is None
