"""The daemon in-process with its heavy stages replaced through the ``handlers`` seam.

Fast checks of the orchestration (request files, a MIDI trigger over a pty, SysEx and disk
delivery to the simulated Mirage, failures with reasons, shutdown); the real engine runs in
tests/test_daemon.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from miragen import config as configmod
from miragen.fsutil import atomic_write_bytes
from miragen.service.daemon import Daemon
from miragen.service.requests import read_record


def _wave(seed: int, n: int = 256) -> bytes:
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * np.arange(n) / n) * 0.6 + rng.normal(0, 0.1, n)
    return bytes(np.clip(128 + 100 * x, 1, 255).astype(np.uint8))


def fake_train(d, job):
    d.models.add(job.subject, f"models/{job.subject}/v0001", True, {"judged": False}, True)
    d.queue.finish(job)


def fake_generate(d, job):
    name, req = job.payload["name"], job.payload["request"]
    if req["class"] == "nothing":
        raise RuntimeError(
            "boom"
        )  # an unexpected error: retried, then the request fails with the reason
    pcm = d.state.out / name / "cand-1.pcm"
    atomic_write_bytes(pcm, _wave(job.id))
    d.queue.add(
        "deliver",
        {
            "name": name,
            "pcm": str(pcm.relative_to(d.state.root)),
            "route": req["route"] or "sysex",
            "half": req["half"],
            "wavesample": req["wavesample"],
            "sound": "lower1",
        },
        key=f"deliver:{name}",
        subject=name,
    )
    d.queue.finish(job)


def _wait(cond, timeout=20.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def running(tmp_path):
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    cfg = configmod.validate(
        {
            "paths": {"state": str(tmp_path / "state")},
            "train": {"debounce_s": 0.0},
            "daemon": {"settle_s": 0.1, "rescan_s": 5.0},
            "deliver": {"transport": "sim", "route": "sysex"},
            "midi": {"input": f"serial:{os.ttyname(slave)}"},
            "trigger": [
                {"message": "note_on", "channel": 1, "note": 60, "class": "bass", "wavesample": 2},
                {"message": "program_change", "program": 3, "class": "nothing"},
            ],
        }
    )
    d = Daemon(cfg, handlers={"train": fake_train, "generate": fake_generate})
    d.idle_wait = 0.5
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    _wait(
        lambda: d.listener is not None and d.listener.ready.is_set() and d.queue is not None,
        what="daemon start",
    )
    yield d, master
    d.stopping.set()
    t.join(timeout=15)
    assert not t.is_alive()
    os.close(master)
    os.close(slave)


def test_request_file_trigger_and_failures(running):
    d, master = running
    st = d.state
    (st.inbox / "bass").mkdir()
    (st.inbox / "bass" / "a.pcm").write_bytes(_wave(1))
    (st.requests / "r1.toml").write_text('class = "bass"\nroute = "both"\nwavesample = 3\n')
    (st.requests / "bad.json").write_text('{"count": 100}')
    os.write(master, bytes([0x90, 60, 100]))  # note on C4, channel 1 → trigger 0
    os.write(
        master, bytes([0x90, 61, 100, 0xF8])
    )  # no trigger for note 61; a clock byte is ignored

    _wait(lambda: (read_record(st, "r1") or {}).get("state") in ("done", "failed"), what="r1")
    r1 = read_record(st, "r1")
    assert r1["state"] == "done", r1
    assert r1["delivery"]["sysex"]["ok"] and r1["delivery"]["sysex"]["wavesample"] == 3
    assert (
        r1["delivery"]["disk"]["ok"]
        and (st.root / r1["delivery"]["disk"]["image"]).stat().st_size == 450560
    )
    assert (st.out / "r1" / "IMG.CFG").read_text().count("450560") == 1
    assert (st.records / "r1.request.toml").exists() and not list(st.requests.iterdir())
    # a single cycle is tiled: 8 pages by SysEx (deliver.cycle_pages), the template's whole page
    # range on disk
    from miragen.mirage import disk, params

    cycle = (st.out / "r1" / "cand-1.pcm").read_bytes()
    assert len(cycle) == 256 and r1["delivery"]["sysex"]["pages"] == 8
    assert d.transport.open().sim.wavesample_data("lower", 3)[: 8 * 256] == cycle * 8
    img = (st.root / r1["delivery"]["disk"]["image"]).read_bytes()
    ws = params.parse_sound_params(disk.read_param_block(img, "lower1")).wavesample(3)
    assert (
        ws.length == 32 * 256
        and disk.wavesample_bytes(disk.read_wave(img, "lower1"), ws) == cycle * 32
    )
    assert r1["delivery"]["disk"]["report"]["unused"] == 0

    bad = read_record(st, "bad")
    assert bad["state"] == "failed" and "count" in bad["reason"]
    assert "count" in (st.rejected / "bad.json.reason.txt").read_text()

    def midi_records():
        return [json.loads(p.read_text()) for p in st.records.glob("midi-*.json")]

    _wait(
        lambda: any(r["state"] == "done" for r in midi_records()), what="the MIDI-triggered request"
    )
    recs = midi_records()
    assert (
        len(recs) == 1
        and recs[0]["delivery"]["sysex"]["ok"]
        and recs[0]["delivery"]["sysex"]["wavesample"] == 2
    )
    assert "MIDI trigger 0" in recs[0]["source"]

    # a generate job that raises is retried with backoff; the record says why once it gives up
    d.cfg["daemon"]["watchdog_s"] = 30.0
    os.write(master, bytes([0xC5, 3]))  # program change 3 (channel 6) → trigger 1 → class "nothing"
    _wait(lambda: len(midi_records()) == 2, what="second trigger")
    job = [j for j in d.queue.jobs(kind="generate") if j.payload["request"]["class"] == "nothing"][
        0
    ]
    _wait(
        lambda: d.queue.get(job.id).attempts >= 1 and d.queue.get(job.id).last_error != "",
        what="retry",
    )
    assert "boom" in d.queue.get(job.id).last_error

    counts = d.queue.counts()
    assert counts["ingest"] == {"done": 1} and counts["deliver"] == {"done": 2}
    done = [r["id"] for r in d.context.deliveries.latest() if r["state"] == "done"]
    assert done.count("r1:sysex") == 1
    ok, why = d.healthy()
    assert ok, why


def test_second_daemon_on_the_same_state_is_refused(running, tmp_path):
    d, _ = running
    from miragen.errors import MiragenError

    other = Daemon(d.cfg)
    with pytest.raises(MiragenError, match="another miragen daemon"):
        other.lock()


def test_status_collect_reads_the_running_state(running):
    from miragen.service.status import collect, render

    d, _ = running
    d.write_status()
    info = collect(d.cfg)
    assert info["daemon"]["running"] and info["daemon"]["pid"] == os.getpid()
    assert "queue:" in render(info)


def test_one_uart_both_ways_trigger_and_ack(tmp_path):
    """midi.input == deliver.transport: the Mirage's MIDI OUT carries the played key and the
    ACKs."""
    import select
    import tty

    from miragen.transport.simulated import SimulatedMirage

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    sim = SimulatedMirage()
    stop = threading.Event()

    def mirage():  # the other end of the cable: a simulated Mirage answering on the pty
        while not stop.is_set():
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                for reply in sim.feed(data):
                    os.write(master, reply)

    pump = threading.Thread(target=mirage, daemon=True)
    pump.start()
    cfg = configmod.validate(
        {
            "paths": {"state": str(tmp_path / "state")},
            "daemon": {"settle_s": 0.1},
            "deliver": {"transport": f"serial:{path}", "route": "sysex"},
            "midi": {"input": f"serial:{path}"},
            "trigger": [
                {
                    "message": "note_on",
                    "note": 72,
                    "class": "bass",
                    "half": "upper",
                    "wavesample": 4,
                }
            ],
        }
    )
    d = Daemon(cfg, handlers={"train": fake_train, "generate": fake_generate})
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    try:
        _wait(
            lambda: d.listener is not None and d.listener.ready.is_set() and d.queue is not None,
            what="daemon start",
        )
        d.context.models.add("bass", "models/bass/v0001", True, {}, True)
        os.write(master, bytes([0x90, 72, 64]))  # the musician plays C5 on the Mirage
        st = d.state

        def recs():
            return [json.loads(p.read_text()) for p in st.records.glob("midi-*.json")]

        _wait(
            lambda: any(r["state"] in ("done", "failed") for r in recs()),
            what="delivery over the shared UART",
        )
        (rec,) = recs()
        assert rec["state"] == "done", rec
        assert rec["delivery"]["sysex"]["ok"] and rec["delivery"]["sysex"]["naks"] == 0
        data = (st.out / rec["name"] / "cand-1.pcm").read_bytes()
        assert sim.wavesample_data("upper", 4)[: len(data)] == data
        os.write(master, bytes([0x90, 72, 64]))  # the port still reads triggers after the dump
        _wait(lambda: len(recs()) == 2, what="a second trigger after the delivery")
    finally:
        d.stopping.set()
        t.join(timeout=15)
        stop.set()
        pump.join(timeout=2)
        os.close(master)
        os.close(slave)
    assert not t.is_alive()


def test_until_idle_returns_and_frees_the_state(tmp_path):
    """The demo's mode: process what is there, return 0, leave signals and the lock as they were."""
    import signal

    cfg = configmod.validate(
        {
            "paths": {"state": str(tmp_path / "s")},
            "daemon": {"settle_s": 0.1},
            "train": {"debounce_s": 0.0},
        }
    )
    st = Path(cfg["paths"]["state"])
    (st / "inbox" / "bass").mkdir(parents=True)
    for i in range(3):
        (st / "inbox" / "bass" / f"{i}.pcm").write_bytes(_wave(i))
    (st / "requests").mkdir()
    (st / "requests" / "r.json").write_text('{"class": "bass", "route": "disk"}')
    before = signal.getsignal(signal.SIGINT)
    assert (
        Daemon(cfg, handlers={"train": fake_train, "generate": fake_generate}).run(
            until_idle=True, max_seconds=60
        )
        == 0
    )
    assert signal.getsignal(signal.SIGINT) is before
    rec = json.loads((st / "out" / "requests" / "r.json").read_text())
    assert rec["state"] == "done" and rec["delivery"]["disk"]["ok"]
    assert len(list((st / "corpus" / "bass").iterdir())) == 3
    # a second daemon on the same folder starts (the lock was freed) and finds nothing to do
    assert Daemon(cfg).run(until_idle=True, max_seconds=30) == 0


def test_unsorted_drops_are_sorted_into_stable_auto_classes(tmp_path):
    """Two clearly different kinds of cycles dropped at the top of inbox/ end in two auto classes
    (k-means, k by silhouette, in a child process); a later batch joins the same names.

    The kinds are soft sines and narrow pulses: the synthetic corpus's own classes (pulse, fm, …)
    overlap on the judge's features (silhouette picks 2 to 8 classes for pulse + fm, purity
    0.83–0.88), which would test the features rather than the daemon."""
    from miragen.service.classing import POOL
    from miragen.service.handlers import run_train

    def u8(w):
        return bytes(
            np.clip(np.round(128 + 120 * w / max(1e-9, float(np.max(np.abs(w))))), 1, 255).astype(
                np.uint8
            )
        )

    trained: list[str] = []

    def train(
        d, job
    ):  # the pool's job is the real one (it sorts); classes are not really trained here
        if job.subject == POOL:
            return run_train(d, job)
        trained.append(job.subject)
        d.queue.finish(job)

    cfg = configmod.validate(
        {
            "paths": {"state": str(tmp_path / "state")},
            "train": {"debounce_s": 1.5},
            "daemon": {"settle_s": 0.1, "rescan_s": 5.0, "unsorted_min": 16},
            "deliver": {"transport": "sim"},
        }
    )
    inbox = tmp_path / "state" / "inbox"
    inbox.mkdir(parents=True)
    source: dict[str, str] = {}

    t = np.arange(256) / 256

    def soft(rng):
        return np.sin(2 * np.pi * t + rng.uniform(0, 6)) + rng.uniform(0, 0.3) * np.sin(
            4 * np.pi * t + rng.uniform(0, 6)
        )

    def pulse(rng):
        x = np.where((t + rng.uniform(0, 1)) % 1 < rng.uniform(0.08, 0.2), 1.0, -0.3)
        return x - x.mean()

    def drop(seed: int, n: int) -> None:
        rng = np.random.default_rng(seed)
        for kind, make in (("soft", soft), ("pulse", pulse)):
            for i, w in enumerate(make(rng) for _ in range(n)):
                data = u8(w)
                source[hashlib.sha256(data).hexdigest()] = kind
                (inbox / f"{kind}-{seed}-{i}.pcm").write_bytes(data)

    def classes() -> dict[str, dict[str, int]]:
        from miragen.service.corpus_index import CorpusIndex
        from miragen.service.db import Database

        db = Database(tmp_path / "state" / "miragen.db")
        out: dict[str, dict[str, int]] = {}
        for row in CorpusIndex(db).files_of(POOL, prefix="auto-"):
            assert (tmp_path / "state" / row["path"]).is_file()  # the index and the folders agree
            out.setdefault(row["class"], {}).setdefault(source[row["sha256"]], 0)
            out[row["class"]][source[row["sha256"]]] += 1
        db.close()
        return out

    drop(0, 7)  # 14 < 16: they wait in the pool
    assert Daemon(cfg, handlers={"train": train}).run(until_idle=True) == 0
    assert classes() == {POOL: {"soft": 7, "pulse": 7}} and not trained
    drop(1, 5)  # 24: sorted
    assert Daemon(cfg, handlers={"train": train}).run(until_idle=True) == 0
    first = classes()
    assert sorted(first) == ["auto-1", "auto-2"], first
    purity = sum(max(c.values()) for c in first.values()) / 24
    assert purity >= 0.95, first
    assert sorted(set(trained)) == ["auto-1", "auto-2"]
    assert not (tmp_path / "state" / "corpus" / POOL).exists() or not any(
        (tmp_path / "state" / "corpus" / POOL).iterdir()
    )
    main = {c: max(v, key=v.get) for c, v in first.items()}
    assert sorted(main.values()) == ["pulse", "soft"]
    # a second batch: the same kinds join the classes of the same names
    drop(2, 8)
    assert Daemon(cfg, handlers={"train": train}).run(until_idle=True) == 0
    second = classes()
    assert POOL not in second and all(
        sum(second[c].values()) > sum(first[c].values()) for c in first
    ), second
    gained = {
        c: {k: second[c].get(k, 0) - first[c].get(k, 0) for k in ("soft", "pulse")} for c in first
    }
    assert all(max(g, key=g.get) == main[c] for c, g in gained.items()), (gained, main)


def test_train_workers_train_two_classes_at_once(tmp_path):
    """``train.workers = 2``: two classes train at the same time, each on its own worker thread;
    with the default 1 they never overlap."""
    for workers, overlap in ((2, True), (1, False)):
        cfg = configmod.validate(
            {
                "paths": {"state": str(tmp_path / f"s{workers}")},
                "daemon": {"settle_s": 0.1, "warm_s": 0.0},
                "train": {"debounce_s": 0.0, "workers": workers},
            }
        )
        st = Path(cfg["paths"]["state"])
        for k, cls in enumerate(("bass", "pad", "lead")):  # distinct sounds: no duplicates
            (st / "inbox" / cls).mkdir(parents=True)
            for i in range(2):
                (st / "inbox" / cls / f"{i}.pcm").write_bytes(_wave(10 * k + i))
        lock = threading.Lock()
        running: set[str] = set()
        seen = {"most": 0, "threads": set(), "classes": set()}

        def slow_train(d, job, running=running, seen=seen, lock=lock):
            with lock:
                running.add(job.subject)
                seen["most"] = max(seen["most"], len(running))
                seen["threads"].add(threading.current_thread().name)
                seen["classes"].add(job.subject)
            time.sleep(1.0)
            with lock:
                running.discard(job.subject)
            fake_train(d, job)

        rc = Daemon(cfg, handlers={"train": slow_train}).run(until_idle=True, max_seconds=60)
        assert rc == 0
        assert (seen["most"] == 2) is overlap, (workers, seen)
        assert seen["threads"] == ({"train", "train-2"} if overlap else {"train"})
        assert seen["classes"] == {"bass", "pad", "lead"}
