"""Unit tests of the daemon's parts: queue, names, requests, triggers, sd_notify, ingest,
watcher."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from miragen import config as configmod
from miragen.service import jobs as jobsmod
from miragen.service.context import Context
from miragen.service.db import Database, DatabaseError
from miragen.service.ingest import ingest
from miragen.service.jobs import JobQueue
from miragen.service.notify import notify, watchdog_interval
from miragen.service.requests import (
    RequestError,
    normalise,
    parse_request_file,
    unique_name,
    write_record,
)
from miragen.service.state import POOL, StateDir, class_name, safe_name
from miragen.service.triggers import _message, first_match, matches
from miragen.service.watcher import DropWatcher, adopt_processing


def _cfg(state: Path, **over) -> dict:
    cfg = configmod.defaults()
    cfg["paths"]["state"] = str(state)
    for dotted, v in over.items():
        sec, key = dotted.split("__")
        cfg[sec][key] = v
    return cfg


def _queue(path: Path) -> JobQueue:
    return JobQueue(Database(path))


def _wave(seed: int, n: int = 256) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * np.arange(n) / n) * 0.6 + rng.normal(0, 0.2, n)
    return bytes(np.clip(128 + 100 * x, 1, 255).astype(np.uint8))


# ---------------------------------------------------------------------------- queue
def test_queue_claim_finish_fail_and_unique_key(tmp_path):
    q = _queue(tmp_path / "q.db")
    a = q.add("ingest", {"n": 1}, key="ingest:a")
    assert a is not None
    assert q.add("ingest", {"n": 2}, key="ingest:a") is None  # same key: not added twice
    b = q.add("deliver", {"n": 3})
    assert q.claim(("train",)) is None
    job = q.claim(("ingest", "request"))
    assert job.id == a and job.state == "running" and job.attempts == 1 and job.payload == {"n": 1}
    job.payload["step"] = "x"
    q.save_payload(job)
    assert q.get(a).payload["step"] == "x"
    q.finish(job)
    assert q.get(a).state == "done"
    d = q.claim(("deliver",))
    q.fail(d, "NAK after 3 tries")
    assert q.get(b).state == "failed" and q.get(b).last_error == "NAK after 3 tries"
    assert q.counts() == {"ingest": {"done": 1}, "deliver": {"failed": 1}}


def test_queue_recover_requeues_then_gives_up(tmp_path):
    q = _queue(tmp_path / "q.db")
    jid = q.add("ingest", {}, subject="bass")
    for n in range(1, jobsmod.MAX_INTERRUPTS["ingest"] + 1):
        job = q.claim(("ingest",))
        assert job is not None and job.attempts == n
        q.db.close()
        q = _queue(tmp_path / "q.db")  # "restart" with the job left running
        recovered = q.recover()
        assert [j.id for j in recovered] == [jid]
    assert q.get(jid).state == "failed" and "interrupted" in q.get(jid).last_error


def test_queue_train_is_debounced_per_class(tmp_path):
    q = _queue(tmp_path / "q.db")
    q.schedule_train("bass", 100.0)
    first = q.jobs(kind="train")[0].not_before
    time.sleep(0.01)
    q.schedule_train("bass", 100.0)
    q.schedule_train("pad", 0.0)
    trains = q.jobs(kind="train")
    assert sorted(j.subject for j in trains) == ["bass", "pad"]
    assert [j for j in trains if j.subject == "bass"][0].not_before > first
    assert q.claim(("train",)).subject == "pad"  # bass is not due yet
    assert q.claim(("train",)) is None
    assert q.next_due(("train",)) == pytest.approx(time.time() + 100, abs=5)


def test_training_workers_never_share_a_class_and_the_pool_sorts_alone(tmp_path):
    """train.workers > 1: a class never trains twice at once (new material while it trains waits
    for the run), and the unsorted pool's sorting, which moves sounds into classes, runs alone."""
    q = _queue(tmp_path / "q.db")
    take = lambda: q.claim(("train",), solo=POOL)  # noqa: E731
    for cls in ("bass", "pad", POOL):
        q.schedule_train(cls, 0.0)
        time.sleep(0.002)
    bass = take()
    assert bass.subject == "bass"
    q.schedule_train("bass", 0.0)  # more bass while bass trains: a second job, queued
    pad = take()
    assert pad.subject == "pad"
    assert take() is None  # bass's second run waits for its first, the pool for both
    q.finish(bass)
    bass2 = take()
    assert bass2.subject == "bass"  # the pool is older, but pad still runs
    q.finish(pad)
    assert take() is None
    q.finish(bass2)
    pool = take()
    assert pool.subject == POOL
    q.schedule_train("pad", 0.0)
    assert take() is None  # nothing trains while the pool sorts
    q.finish(pool)
    assert take().subject == "pad"
    # single workers of other kinds are unaffected by the subject rule
    q.add("deliver", {"n": 1}, subject="x")
    q.add("deliver", {"n": 2}, subject="y")
    assert q.claim(("deliver",)).subject == "x"


def test_daemon_runs_train_workers_training_threads(tmp_path):
    from miragen.engines.base import engine_class
    from miragen.service.child import worker_name
    from miragen.service.daemon import worker_threads
    from miragen.service.tasks import train_threads, training_options

    cfg = configmod.load(None)
    assert [n for n in worker_threads(cfg) if n.startswith("train")] == ["train"]
    assert train_threads(cfg) == 0  # one worker: all cores, torch's choice
    cfg["train"]["workers"] = 3
    names = worker_threads(cfg)
    assert [n for n in names if n.startswith("train")] == ["train", "train-2", "train-3"]
    assert names["train-3"] == names["train"] == ("train",)
    assert train_threads(cfg) == max(1, (os.cpu_count() or 1) // 3)  # the cores shared
    cfg["train"]["threads"] = 2
    assert train_threads(cfg) == 2  # set: each training takes what it says
    # train.set's engine options come last: they may override [train]'s own
    assert training_options(cfg)["threads"] == 2
    cfg["train"]["set"] = "threads=3, width=8"
    opts = engine_class(cfg["train"]["engine"])(**training_options(cfg)).options
    assert (opts.threads, opts.width, opts.checkpoint_every) == (3, 8, 200)
    # a training's child is kept under the numbered worker that runs it
    seen = []
    t = threading.Thread(target=lambda: seen.append(worker_name("train")), name="train-2")
    t.start()
    t.join()
    assert seen == ["train-2"] and worker_name("train") == "train"  # (here: MainThread)


def test_queue_wait_change_wakes_on_add(tmp_path):
    q = _queue(tmp_path / "q.db")
    seen = q.version
    threading.Timer(0.1, lambda: q.add("ingest", {})).start()
    t0 = time.monotonic()
    q.wait_change(seen, 5.0)
    assert time.monotonic() - t0 < 2.0


def test_queue_refuses_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "miragen.db"
    bad.write_bytes(b"not sqlite" * 100)
    with pytest.raises(DatabaseError, match="miragen.db"):
        Database(bad)


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "/abs/path.wav",
        "a\x00b\x07c.wav",
        "..",
        "...",
        "x\udcff\udcfe.wav",
        "é.wav",
        "a" * 500 + ".wav",
        "",
        " ",
        "con:",
        "a/../b",
    ],
)
def test_safe_name_is_always_a_plain_name(name):
    s = safe_name(name)
    assert s and "/" not in s and not s.startswith(".") and ".." not in s and len(s) <= 80
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in s)
    assert class_name(name) and "." not in class_name(name)


# ---------------------------------------------------------------------------- requests
def test_request_files_toml_and_json(tmp_path):
    t = tmp_path / "r.toml"
    t.write_text('class = "bass"\ncount = 2\nroute = "both"\nwavesample = 3\n')
    r = parse_request_file(t)
    assert (
        r["class"] == "bass"
        and r["count"] == 2
        and r["route"] == "both"
        and r["wavesample"] == 3
        and r["half"] == "lower"
    )
    j = tmp_path / "r.json"
    j.write_text(json.dumps({"half": "upper", "name": "x1"}))
    assert parse_request_file(j)["half"] == "upper"


@pytest.mark.parametrize(
    "body,suffix,match",
    [
        ('clas = "x"', ".toml", "unknown key"),
        ("count = 0", ".toml", "count"),
        ('half = "middle"', ".toml", "half"),
        ("wavesample = 9", ".toml", "wavesample"),
        ('class = "../../etc"', ".toml", "not a class name"),
        ("[1, 2]", ".json", "table of keys"),
        ("{", ".json", "not valid JSON"),
        ("x = = 1", ".toml", "not valid TOML"),
        ("count = 1", ".yaml", ".toml or .json"),
    ],
)
def test_bad_request_files_say_why(tmp_path, body, suffix, match):
    f = tmp_path / f"r{suffix}"
    f.write_text(body)
    with pytest.raises(RequestError, match=match):
        parse_request_file(f)


def test_request_file_not_utf8_or_huge(tmp_path):
    f = tmp_path / "r.toml"
    f.write_bytes(b'class = "\xff"')
    with pytest.raises(RequestError, match="UTF-8"):
        parse_request_file(f)
    f.write_bytes(b"#" * (70 * 1024))
    with pytest.raises(RequestError, match="larger"):
        parse_request_file(f)


def test_records_and_unique_names(tmp_path):
    st = StateDir(tmp_path)
    st.create()
    write_record(st, "one", state="queued")
    assert unique_name(st, "one") == "one-2"
    rec = write_record(st, "one", state="done", files=["out/one/a.pcm"])
    assert rec["state"] == "done" and json.loads(st.record_path("one").read_text())["files"] == [
        "out/one/a.pcm"
    ]
    assert normalise({}, "x")["count"] == 1


# ---------------------------------------------------------------------------- triggers
def _trig(**kw) -> dict:
    t = {k: v.default for k, v in configmod.TRIGGER_SCHEMA.items()}
    t.update(kw)
    return t


def test_trigger_matching():
    note = _message(bytes([0x99, 48, 100]))  # channel 10
    assert note.kind == "note_on" and note.channel == 10 and note.note == 48
    assert matches(_trig(channel=10, note=48), note)
    assert not matches(_trig(channel=1, note=48), note)
    assert not matches(_trig(note=49), note)
    assert matches(_trig(), note)  # any channel, any note
    assert _message(bytes([0x90, 48, 0])).kind == "note_off"
    pc = _message(bytes([0xC0, 5]))
    assert matches(_trig(message="program_change", program=5), pc) and not matches(
        _trig(message="program_change", program=6), pc
    )
    cc = _message(bytes([0xB2, 7, 127]))
    assert matches(_trig(message="control_change", control=7, value=127, channel=3), cc)
    assert not matches(_trig(message="control_change", control=7, value=0), cc)
    sx = _message(bytes([0xF0, 0x7D, 0x01, 0xF7]))
    assert matches(_trig(message="sysex", pattern="F0 7D * F7"), sx)
    assert not matches(_trig(message="sysex", pattern="F0 7D F7"), sx)
    triggers = [_trig(note=1), _trig(message="sysex"), _trig(note=48)]
    assert first_match(triggers, note) == 2 and first_match(triggers, sx) == 1


# ---------------------------------------------------------------------------- sd_notify
def test_notify_sends_datagrams(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1")
        assert sock.recv(100) == b"READY=1"
        monkeypatch.delenv("NOTIFY_SOCKET")
        assert not notify("READY=1")
    finally:
        sock.close()
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == pytest.approx(10.0)
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None


# ---------------------------------------------------------------------------- ingest
def _claimed(
    st: StateDir,
    q: JobQueue,
    cls: str,
    name: str,
    data: bytes | None = None,
    link: str | None = None,
):
    d = st.processing / cls
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"tok__{name}"
    if link:
        os.symlink(link, p)
    else:
        p.write_bytes(data or b"")
    rel = str(p.relative_to(st.root))
    q.add(
        "ingest",
        {"path": rel, "original": f"{cls}/{name}", "class": cls},
        key=f"ingest:{rel}",
        subject=cls,
    )
    return q.claim(("ingest",))


def test_ingest_accepts_dedups_and_rejects(tmp_path):
    st = StateDir(tmp_path / "state")
    st.create()
    cfg = _cfg(st.root)
    ctx = Context.open(cfg, st)
    q = ctx.queue
    w = _wave(1)
    out = ingest(ctx, _claimed(st, q, "bass", "a.pcm", w))
    assert (
        out.accepted
        and (st.root / out.dest).read_bytes() == w
        and out.dest.startswith("corpus/bass/")
    )
    dup = ingest(ctx, _claimed(st, q, "pad", "again.pcm", w))
    assert not dup.accepted and "duplicate" in dup.reason
    bad = ingest(ctx, _claimed(st, q, "bass", "b.wav", b"RIFF0000WAVEjunk"))
    assert not bad.accepted
    silent = ingest(ctx, _claimed(st, q, "bass", "s.pcm", b"\x80" * 256))
    assert not silent.accepted and "silent" in silent.reason
    target = tmp_path / "secret.pcm"
    target.write_bytes(_wave(2))
    link = ingest(ctx, _claimed(st, q, "bass", "l.pcm", link=str(target)))
    assert not link.accepted and "link" in link.reason and target.read_bytes() == _wave(2)
    assert (st.rejected / "l.pcm").is_symlink()
    names = sorted(p.name for p in st.rejected.iterdir())
    assert names == sorted(
        [
            "again.pcm",
            "again.pcm.reason.txt",
            "b.wav",
            "b.wav.reason.txt",
            "s.pcm",
            "s.pcm.reason.txt",
            "l.pcm",
            "l.pcm.reason.txt",
        ]
    )
    assert "duplicate" in (st.rejected / "again.pcm.reason.txt").read_text()
    assert list(st.processing.rglob("*.pcm")) == [] and list(st.processing.rglob("*.wav")) == []
    assert ctx.corpus.class_counts() == {"bass": 1}
    assert [j.subject for j in q.jobs(kind="train")] == ["bass"]


def test_ingest_too_big_and_resume_after_kill(tmp_path):
    st = StateDir(tmp_path / "state")
    st.create()
    cfg = _cfg(st.root, daemon__max_file_mb=1)
    ctx = Context.open(cfg, st)
    q = ctx.queue
    big = ingest(ctx, _claimed(st, q, "x", "big.pcm", b"\x81" * (2 * 2**20)))
    assert not big.accepted and "larger" in big.reason
    # a kill after the payload was saved but before the rename: the job finishes the same way
    job = _claimed(st, q, "x", "k.pcm", _wave(5))
    src = st.root / job.payload["path"]
    import hashlib

    sha = hashlib.sha256(_wave(5)).hexdigest()
    job.payload.update(sha256=sha, dest=f"corpus/x/{sha[:24]}.pcm", extra=[])
    q.save_payload(job)
    out = ingest(ctx, job)
    assert out.accepted and not src.exists() and (st.root / out.dest).exists()
    assert ctx.corpus.find(sha)["path"] == out.dest


def test_ingest_unpacks_a_mirage_disk_image(tmp_path):
    from miragen.mirage import disk

    st = StateDir(tmp_path / "state")
    st.create()
    ctx = Context.open(_cfg(st.root), st)
    q = ctx.queue
    img = disk.synthetic_template()
    img, _ = disk.write_wavesample(img, "lower1", 1, _wave(7) * 4)
    img, _ = disk.write_wavesample(img, "upper2", 3, _wave(8) * 2)
    out = ingest(ctx, _claimed(st, q, "disks", "studio.img", img))
    assert (
        out.accepted and out.dest.endswith(".img") and out.added == 3
    )  # the image + 2 wavesamples
    pcms = sorted((st.corpus / "disks").glob("*.pcm"))
    assert len(pcms) == 2 and any(p.read_bytes().startswith(_wave(7)) for p in pcms)
    short = ingest(ctx, _claimed(st, q, "disks", "short.img", img[:1000]))
    assert not short.accepted and "450,560" in short.reason


def test_ingest_files_the_same_sound_in_another_format_once(tmp_path):
    """`miragen generate` writes each sound as a .pcm and as a .wav preview of the same bytes: a
    musician who drops such a folder into the inbox gets each sound filed once (the twin
    rejected with the reason, and kept), not trained on twice. Other samples, or the same
    samples at another rate, are sounds of their own; a disk image's wavesample and the WAV of
    its bytes are the same sound."""
    from miragen.audio.io import write_wav_u8
    from miragen.mirage import disk

    st = StateDir(tmp_path / "state")
    st.create()
    ctx = Context.open(_cfg(st.root), st)
    q, rate = ctx.queue, ctx.cfg["audio"]["raw_rate"]
    first = ingest(ctx, _claimed(st, q, "keeps", "k-001.pcm", _wave(1)))
    write_wav_u8(tmp_path / "k-001.wav", _wave(1), rate)
    twin = ingest(ctx, _claimed(st, q, "keeps", "k-001.wav", (tmp_path / "k-001.wav").read_bytes()))
    assert first.accepted and not twin.accepted
    assert "duplicate: the same sound" in twin.reason and first.dest in twin.reason
    assert (st.root / twin.dest).read_bytes() == (tmp_path / "k-001.wav").read_bytes()  # kept
    for name, data, r in (("other.wav", _wave(2), rate), ("slower.wav", _wave(1), rate // 2)):
        write_wav_u8(tmp_path / name, data, r)
        assert ingest(ctx, _claimed(st, q, "keeps", name, (tmp_path / name).read_bytes())).accepted
    img, _ = disk.write_wavesample(disk.synthetic_template(), "lower1", 1, _wave(9) * 4)
    waves = ingest(ctx, _claimed(st, q, "disks", "studio.img", img)).added - 1
    (wave,) = [b for _, b in disk.training_samples(img, "studio") if b.startswith(_wave(9))]
    write_wav_u8(tmp_path / "ws.wav", wave, rate)
    again = ingest(ctx, _claimed(st, q, "disks", "ws.wav", (tmp_path / "ws.wav").read_bytes()))
    assert not again.accepted and "the same sound" in again.reason
    assert ctx.corpus.class_counts() == {"keeps": 3, "disks": 1 + waves}  # the image, its waves


# ---------------------------------------------------------------------------- watcher
def test_watcher_claims_settled_files_once_and_adopts_orphans(tmp_path):
    st = StateDir(tmp_path / "state")
    st.create()
    q = _queue(st.db)
    w = DropWatcher(st, q, settle_s=0.2, rescan_s=0.5)
    (st.inbox / "bass").mkdir()
    (st.inbox / "bass" / "a.pcm").write_bytes(_wave(1))
    (st.inbox / "top.pcm").write_bytes(_wave(2))
    (st.inbox / ".partial.pcm").write_bytes(_wave(3))  # a copy tool's temporary file: left alone
    (st.requests / "r.toml").write_text("count = 1\n")
    w.rescan()
    w.step()
    assert q.pending() == 0  # nothing claimed before the files settled
    time.sleep(0.3)
    w.step()
    jobs = q.jobs()
    assert sorted((j.kind, j.payload["class"], j.payload["original"]) for j in jobs) == [
        ("ingest", "bass", "bass/a.pcm"),
        ("ingest", "unsorted", "top.pcm"),
        ("request", "_requests", "r.toml"),
    ]
    assert (st.inbox / ".partial.pcm").exists()
    w.rescan()
    time.sleep(0.3)
    w.step()
    assert len(q.jobs()) == 3  # a rescan claims nothing twice
    # a file claimed by rename whose job was lost in a crash gets one at start
    orphan = st.processing / "bass" / "x__o.pcm"
    orphan.write_bytes(_wave(4))
    assert adopt_processing(st, q) == 1 and adopt_processing(st, q) == 0


# ---------------------------------------------------------------------------- child processes
class _FakeHeartbeats:
    def __init__(self):
        self.beats: list[str] = []
        self.activity = ""

    def beat(self, name):
        self.beats.append(name)

    def set_activity(self, name, text):
        self.activity = text


class _FakeContext:
    """What the supervision of a child process uses of its context."""

    def __init__(self, watchdog_s: float = 0.5):
        self.cfg = {"daemon": {"watchdog_s": watchdog_s}}
        self.stopping = threading.Event()
        self.heartbeats = _FakeHeartbeats()


def _script(body: str):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", body], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )


def test_child_supervision_beats_kills_silence_and_names_a_crash():
    from miragen.service.child import ChildCrashed, ChildFailed, ChildStopped, _supervise

    emit = "import json, sys, time, os, signal\ndef e(**k): print(json.dumps(k), flush=True)\n"
    d = _FakeContext()
    res = _supervise(
        d,
        "generate",
        _script(
            emit + "e(ev='phase', text='a'); e(ev='progress', text='b', run_s=1); "
            "e(ev='done', result={'x': 1})"
        ),
        "job",
        None,
        time.monotonic(),
    )
    beats = d.heartbeats
    assert res == {"x": 1} and beats.beats == ["generate"] * 3 and beats.activity == "job: b"
    # library output on stdout would be unreadable lines: skipped, not fatal
    assert (
        _supervise(
            d,
            "generate",
            _script(emit + "print('noise'); e(ev='done', result={})"),
            "job",
            None,
            time.monotonic(),
        )
        == {}
    )
    t0 = time.monotonic()
    with pytest.raises(ChildCrashed, match=r"silent for \d+ s .* during 'loading'"):
        _supervise(
            d,
            "train",
            _script(emit + "e(ev='phase', text='loading'); time.sleep(60)"),
            "train x",
            None,
            t0,
        )
    assert time.monotonic() - t0 < 10
    with pytest.raises(ChildCrashed, match="killed by SIGKILL"):
        _supervise(
            d,
            "train",
            _script(emit + "e(ev='phase', text='p'); os.kill(os.getpid(), signal.SIGKILL)"),
            "train x",
            None,
            t0,
        )
    with pytest.raises(ChildCrashed, match="exit status 3"):
        _supervise(d, "train", _script("import sys; sys.exit(3)"), "train x", None, t0)
    with pytest.raises(ChildFailed, match="too few"):
        _supervise(
            d,
            "train",
            _script(emit + "e(ev='error', reason='too few', input=True)"),
            "train x",
            None,
            t0,
        )
    with pytest.raises(ChildCrashed, match="ValueError: bug"):
        _supervise(
            d,
            "train",
            _script(emit + "e(ev='error', reason='ValueError: bug', input=False)"),
            "train x",
            None,
            t0,
        )
    # shutdown: SIGTERM is forwarded; the child reports how far it got
    body = emit + (
        "signal.signal(signal.SIGTERM, lambda *a: (e(ev='stopped', run_s=4.5), sys.exit(0)))\n"
        "e(ev='phase', text='training')\nwhile True: time.sleep(0.1)"
    )
    with pytest.raises(ChildStopped) as info:
        _supervise(
            d, "train", _script(body), "train x", lambda ev: d.stopping.set(), time.monotonic()
        )
    assert info.value.run_s == 4.5


def test_child_protocol_and_bad_task(tmp_path):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "miragen.service.tasks"],
        input=b'{"task": "nope"}\n',
        capture_output=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert lines == [{"ev": "error", "reason": "child process: unknown task 'nope'", "input": True}]
    p = subprocess.run(
        [sys.executable, "-m", "miragen.service.tasks"],
        input=b"not json\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert json.loads(p.stdout)["ev"] == "error" and "bad task" in json.loads(p.stdout)["reason"]


# ---------------------------------------------------------------------------- the unsorted pool
def test_name_clusters_keeps_names_and_numbers_new_ones():
    from miragen.service.classing import name_clusters

    # cluster 0 holds most of auto-2, cluster 2 most of auto-1; cluster 1 is new material only
    labels = [0, 0, 0, 2, 2, 1, 1, 0]
    known = ["auto-2", "auto-2", None, "auto-1", None, None, None, "auto-1"]
    assert name_clusters(labels, known, ["auto-1", "auto-2"]) == {
        0: "auto-2",
        2: "auto-1",
        1: "auto-3",
    }
    assert name_clusters([0, 1, 1], [None] * 3, []) == {0: "auto-1", 1: "auto-2"}
    assert name_clusters([0, 0], ["auto-7", "auto-7"], ["auto-7", "bass"]) == {0: "auto-7"}


def test_sort_resumes_after_a_kill_between_the_index_and_the_renames(tmp_path):
    """The labels are in the index (one transaction) but the files are still in the pool: the
    restarted job only renames them (nothing copied, nothing lost) and schedules the retrains."""
    from miragen.service.classing import POOL, run_sort

    st = StateDir(tmp_path / "state")
    st.create()
    d = Context.open(_cfg(st.root), st)
    pool = d.state.corpus / POOL
    pool.mkdir(parents=True)
    shas = []
    for i in range(3):
        data = _wave(i)
        sha = hashlib.sha256(data).hexdigest()
        (pool / f"{sha[:24]}.pcm").write_bytes(data)
        with d.db.transaction() as c:
            d.corpus.add(sha, POOL, f"corpus/{POOL}/{sha[:24]}.pcm", f"top{i}.pcm", c)
        shas.append(sha)
    d.queue.add("train", {"class": POOL}, subject=POOL)
    job = d.queue.claim(("train",))
    # too few: it waits for more material
    run_sort(d, job)
    assert (
        "at least 16" in d.queue.get(job.id).payload["skipped"]
        and d.queue.get(job.id).state == "done"
    )
    # a job killed after its index transaction: assignment recorded, files not moved yet
    d.queue.add("train", {"class": POOL}, subject=POOL)
    job = d.queue.claim(("train",))
    assign = {shas[0]: "auto-1", shas[1]: "auto-2", shas[2]: "auto-1"}
    job.payload["assign"] = assign
    with d.db.transaction() as c:
        for sha, cls in assign.items():
            c.execute(
                "UPDATE files SET class=?, path=? WHERE sha256=?",
                (cls, f"corpus/{cls}/{sha[:24]}.pcm", sha),
            )
        d.queue.save_payload(job, conn=c)
    (d.state.corpus / "auto-1").mkdir()
    os.replace(
        pool / f"{shas[0][:24]}.pcm", d.state.corpus / "auto-1" / f"{shas[0][:24]}.pcm"
    )  # one rename had happened
    run_sort(d, job)
    for sha, cls in assign.items():
        assert (d.state.corpus / cls / f"{sha[:24]}.pcm").read_bytes() == _wave(shas.index(sha))
    assert not list(pool.iterdir())
    assert d.queue.get(job.id).state == "done"
    assert sorted(j.subject for j in d.queue.jobs(kind="train", state="queued")) == [
        "auto-1",
        "auto-2",
    ]
    run_sort(d, job)  # once more (a second restart): nothing changes
    assert sorted(p.name for p in d.state.corpus.rglob("*.pcm")) == sorted(
        f"{s[:24]}.pcm" for s in shas
    )
    d.db.close()


def test_which_new_model_serves():
    """pass > inconclusive > fail: an inconclusive model replaces a failed or inconclusive one,
    never a passing one; a failed one serves only a class without a model (issue 20)."""
    from miragen.service.handlers import takes_over

    def row(verdict):
        return {
            "passed": verdict == "pass",
            "report": {"verdict": verdict, "passed": verdict == "pass"},
        }

    assert takes_over({"verdict": "fail"}, None)
    for new, now, expected in [
        ("pass", "pass", True),
        ("pass", "fail", True),
        ("inconclusive", "pass", False),
        ("inconclusive", "inconclusive", True),
        ("inconclusive", "fail", True),
        ("fail", "fail", False),
        ("fail", "inconclusive", False),
    ]:
        assert takes_over({"verdict": new, "passed": new == "pass"}, row(now)) is expected, (
            new,
            now,
        )
    # a record written before verdicts existed: passed only
    assert not takes_over({"verdict": "inconclusive"}, {"passed": 1, "report": {"passed": True}})
    assert takes_over({"verdict": "inconclusive"}, {"passed": 0, "report": {}})


def test_sound_kind_tells_hits_from_cycles_and_sustained_notes():
    from miragen.corpus.synth import HIT_RATE, default_corpus, default_hits
    from miragen.judge.sets import sound_kind, tail_drop_db

    for waves in default_corpus(0).values():
        assert {sound_kind(w, 29411) for w in waves} == {"cycle"}
    hits = [h for seed in range(5) for h in default_hits(seed)["hits"]]
    assert {sound_kind(h, HIT_RATE) for h in hits if len(h) > 2048} == {"oneshot"}
    assert {sound_kind(h, HIT_RATE) for h in hits if len(h) <= 2048} == {"cycle"}  # too short
    t = np.arange(44100) / 44100
    organ = np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 660 * t)
    assert sound_kind(organ, 44100) == "cycle"  # a sustained note: cycle mode takes its cycle
    assert tail_drop_db(organ, 44100) < 1.0
    rng = np.random.default_rng(0)
    burst = rng.standard_normal(8820) * np.exp(-np.arange(8820) / 900)
    assert sound_kind(burst, 44100) == "oneshot"  # 200 ms of decaying noise
    assert sound_kind(np.zeros(3000), 29411) == "cycle"  # silence: nothing decays


def test_a_mixed_pool_sorts_hits_into_one_shot_classes_of_their_own(tmp_path):
    """With train.mode = cycle, unsorted hits are not cut into cycles: they are clustered on the
    one-shot features into auto-hits-N classes, which train as one-shots."""
    from miragen.corpus.synth import HIT_RATE, default_corpus, default_hits
    from miragen.service.classing import cluster_pool
    from miragen.service.state import class_mode

    cfg = _cfg(tmp_path)
    pool, kinds = [], {}
    for cls, waves in default_corpus(0, per_class=10).items():
        for i, w in enumerate(waves):
            pool.append(_pool_file(tmp_path, f"{cls}{i}.wav", w, 29411))
            kinds[pool[-1][0]] = "cycle"
    hits = [h for h in default_hits(0, per_class=40)["hits"] if len(h) > 2048][:12]
    for i, h in enumerate(hits):
        pool.append(_pool_file(tmp_path, f"hit{i}.wav", h, HIT_RATE))
        kinds[pool[-1][0]] = "oneshot"
    res = cluster_pool(tmp_path, cfg, pool, [])
    assert set(res["assign"]) == set(kinds)
    for sha, cls in res["assign"].items():
        assert class_mode(cfg, cls) == kinds[sha], (cls, kinds[sha])
        assert cls.startswith("auto-hits-") == (kinds[sha] == "oneshot")
    assert set(res["groups"]) == {"cycle", "oneshot"} and res["groups"]["oneshot"]["sounds"] == 12
    # sorted again later with new hits: the existing auto-hits classes keep their names
    members = [[sha, path, res["assign"][sha]] for sha, path in pool]
    late_hit = next(h for h in default_hits(5)["hits"] if len(h) > 2048)
    new = [_pool_file(tmp_path, "late-hit.wav", late_hit, HIT_RATE)]
    again = cluster_pool(tmp_path, cfg, new, members)
    (late,) = again["assign"].values()
    assert late in set(res["assign"].values()) and late.startswith("auto-hits-")
    # train.mode = oneshot: everything is a one-shot, named auto-N as before
    cfg["train"]["mode"] = "oneshot"
    res = cluster_pool(tmp_path, cfg, pool, [])
    assert all(not c.startswith("auto-hits-") for c in res["assign"].values())


def test_the_sorting_splits_large_classes_as_configured(tmp_path, monkeypatch):
    """daemon.sort_max_class reaches the clustering of every kind (0: never split)."""
    from miragen.corpus.synth import default_corpus
    from miragen.service import classing

    seen = []
    real = classing.cluster

    def spy(waves, k, kind, **kw):
        seen.append((kind, kw.get("max_class")))
        return real(waves, k, kind, **kw)

    monkeypatch.setattr(classing, "cluster", spy)
    cfg = _cfg(tmp_path)
    pool = [
        _pool_file(tmp_path, f"{cls}{i}.wav", w, 29411)
        for cls, waves in default_corpus(0, per_class=6).items()
        for i, w in enumerate(waves)
    ]
    for value in (160, 0, 48):
        cfg["daemon"]["sort_max_class"] = value
        classing.cluster_pool(tmp_path, cfg, pool, [])
        assert seen[-1] == ("cycle", value)


def _pool_file(root: Path, name: str, wave: np.ndarray, rate: int) -> list[str]:
    import soundfile as sf

    path = root / "corpus" / "unsorted" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(wave, dtype=np.float32) * 0.9, rate, subtype="PCM_16")
    return [hashlib.sha256(path.read_bytes()).hexdigest(), str(path.relative_to(root))]
