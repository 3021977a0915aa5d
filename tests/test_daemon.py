"""The real daemon as a subprocess: real engine (tiny budget), simulated Mirage, real files.

- drops (a burst of 500, slow partial copies, bad inputs, a duplicate, a symlink) are each
  filed exactly once, in the corpus or in rejected/ with a reason;
- a request file and a MIDI trigger (note-on bytes written into a pty the daemon reads as
  ``serial:``) each end in a delivered, ACKed candidate on a ``miragen sim --pty`` process;
- SIGTERM stops it within 10 s; ``miragen status --json`` reports what happened;
- kill -9 at random moments and a restart finish the queue with nothing lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import tty
from pathlib import Path

import numpy as np
import pytest
from miragen.corpus.synth import default_corpus

pytestmark = pytest.mark.slow

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _u8(x: np.ndarray) -> bytes:
    x = np.asarray(x, dtype=np.float64)
    x = x / (np.max(np.abs(x)) or 1.0)
    return bytes(np.clip(np.round(128 + 120 * x), 1, 255).astype(np.uint8))


def _random_wave(rng: np.random.Generator) -> bytes:
    h = rng.normal(0, 1, 8) / (1 + np.arange(8))
    t = np.arange(256) / 256
    return _u8(sum(h[k] * np.sin(2 * np.pi * (k + 1) * t + rng.uniform(0, 6)) for k in range(8)))


def _write_config(path: Path, state: Path, **sections) -> Path:
    base = {
        "paths": {"state": str(state)},
        "train": {"seconds": 3, "debounce_s": 2.0, "device": "cpu", "threads": 1},
        "generate": {"count": 1, "oversample": 2},
        "daemon": {"settle_s": 0.3, "rescan_s": 3.0, "max_file_mb": 1, "watchdog_s": 30.0},
        "deliver": {"transport": "sim", "route": "sysex"},
    }
    for sec, body in sections.items():
        if sec == "trigger":
            base["trigger"] = body
        else:
            base.setdefault(sec, {}).update(body)
    lines = []
    for sec, body in base.items():
        if sec == "trigger":
            continue
        lines.append(f"[{sec}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    for t in base.get("trigger", []):
        lines.append("[[trigger]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in t.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(config: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "miragen", "daemon", "--config", str(config), *extra],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        env=ENV,
    )


def _wait(
    cond, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None
):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"daemon exited ({proc.returncode}) while waiting for {what}:\n"
                + (log.read_text()[-4000:] if log else "")
            )
        time.sleep(0.1)
    raise AssertionError(
        f"timed out waiting for {what}" + ("\n" + log.read_text()[-4000:] if log else "")
    )


def _record(state: Path, name: str) -> dict:
    try:
        return json.loads((state / "out" / "requests" / f"{name}.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _corpus_hashes(state: Path) -> list[str]:
    return [
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (state / "corpus").rglob("*")
        if p.is_file() and p.suffix != ".img"
    ]


def _drop(folder: Path, name: str, data: bytes) -> None:
    """An atomic drop (write elsewhere, rename in): what a careful copy tool does."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent.parent / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)


def test_daemon_end_to_end(tmp_path):
    state = tmp_path / "state"
    sim_state = tmp_path / "sim.json"
    sim = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(sim_state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    master, slave = os.openpty()
    tty.setraw(slave)
    daemon = None
    log = tmp_path / "daemon.log"
    try:
        sim_pty = sim.stdout.readline().decode().strip()
        assert sim_pty.startswith("/dev/"), sim.stderr.read().decode()
        config = _write_config(
            tmp_path / "miragen.toml",
            state,
            deliver={"transport": f"serial:{sim_pty}", "route": "sysex"},
            midi={"input": f"serial:{os.ttyname(slave)}"},
            trigger=[
                {
                    "message": "note_on",
                    "channel": 1,
                    "note": 60,
                    "class": "a",
                    "wavesample": 2,
                    "half": "lower",
                }
            ],
        )
        daemon = _start(config, log)
        _wait(lambda: (state / "status.json").exists(), 60, "daemon start", daemon, log)
        inbox = state / "inbox"
        rng = np.random.default_rng(1)
        corpus = default_corpus(seed=0)
        classes = sorted(corpus)[:2]
        expected: set[str] = set()
        for cls, new in zip(classes, ("a", "b")):
            for i, w in enumerate(corpus[cls][:12]):
                data = _u8(w)
                _drop(inbox / new, f"{cls}-{i}.pcm", data)
                expected.add(hashlib.sha256(data).hexdigest())
        # a burst of 500 files at once
        burst = state / "burst"
        (burst / "a").mkdir(parents=True)
        for i in range(500):
            data = _random_wave(rng)
            (burst / "a" / f"burst-{i:03d}.pcm").write_bytes(data)
            expected.add(hashlib.sha256(data).hexdigest())
        for p in (burst / "a").iterdir():
            os.replace(p, inbox / "a" / p.name)
        # slow partial copies: written in pieces, some while held open, some reopened each time
        slow = [_random_wave(rng) * 8 for _ in range(4)]
        expected.update(hashlib.sha256(d).hexdigest() for d in slow)
        handles = [open(inbox / "b" / f"slow-{i}.pcm", "wb") for i in range(2)]
        for k in range(8):
            for h, data in zip(handles, slow[:2]):
                h.write(data[k * 256 : (k + 1) * 256])
                h.flush()
            for i, data in enumerate(slow[2:], start=2):
                with open(inbox / "b" / f"slow-{i}.pcm", "ab") as fh:
                    fh.write(data[k * 256 : (k + 1) * 256])
            time.sleep(0.12)
        for h in handles:
            h.close()
        # bad inputs
        (inbox / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
        (inbox / "empty.pcm").write_bytes(b"")
        (inbox / "big.pcm").write_bytes(b"\x81" * (2 * 2**20))
        (inbox / "a" / "again.pcm").write_bytes(_u8(corpus[classes[0]][0]))  # a duplicate
        os.symlink("/etc/hostname", inbox / "link.pcm")
        (
            inbox
            / "weird\x01name\udcff.pcm".encode("utf-8", "surrogateescape").decode(
                "utf-8", "surrogateescape"
            )
        ).write_bytes(b"\x00")
        # a request file, a bad one, and a MIDI note
        (state / "requests" / "r1.toml").write_text(
            'class = "b"\ncount = 1\nroute = "both"\nwavesample = 1\n'
        )
        (state / "requests" / "bad.toml").write_text('class = "b"\ncolour = "red"\n')
        os.write(master, bytes([0x90, 60, 100]))

        def midi_records():
            return [
                json.loads(p.read_text()) for p in (state / "out" / "requests").glob("midi-*.json")
            ]

        def done():
            return _record(state, "r1").get("state") in ("done", "failed") and any(
                r.get("state") in ("done", "failed") for r in midi_records()
            )

        _wait(done, 170, "the request file and the MIDI trigger", daemon, log)
        r1 = _record(state, "r1")
        assert r1["state"] == "done", r1
        assert r1["delivery"]["sysex"]["ok"] and r1["delivery"]["disk"]["ok"]
        (midi,) = midi_records()
        assert midi["state"] == "done", midi
        assert midi["delivery"]["sysex"]["ok"] and midi["class"] == "a"
        # the simulated Mirage holds the delivered bytes (ACKed)
        from miragen.transport.simulated import read_state

        _wait(lambda: sim_state.exists(), 10, "sim state")
        mem = read_state(sim_state)["wavesample_data"]["lower"]
        for rec, n in ((r1, 1), (midi, 2)):
            pcm = next(f for f in rec["files"] if f.endswith(".pcm"))
            data = (state / pcm).read_bytes()
            assert mem[n][: len(data)] == data
        img = state / r1["delivery"]["disk"]["image"]
        assert img.stat().st_size == 450560 and (img.parent / "IMG.CFG").exists()

        # every good file exactly once in the corpus; every bad one in rejected/ with a reason
        _wait(
            lambda: not any(p.is_file() for p in inbox.rglob("*")), 30, "empty inbox", daemon, log
        )
        hashes = _corpus_hashes(state)
        assert len(hashes) == len(set(hashes)) == len(expected) and set(hashes) == expected
        rejected = sorted(
            p.name for p in (state / "rejected").iterdir() if not p.name.endswith(".reason.txt")
        )
        assert len(rejected) == 7, (
            rejected
        )  # bad, empty, big, duplicate, link, weird name, bad request
        for name in rejected:
            assert (state / "rejected" / f"{name}.reason.txt").read_text().count("reason:") == 1
        assert "larger than" in (state / "rejected" / "big.pcm.reason.txt").read_text()
        dup = [n for n in rejected if n in ("again.pcm", f"{classes[0]}-0.pcm")]
        assert (
            len(dup) == 1
            and "duplicate" in (state / "rejected" / f"{dup[0]}.reason.txt").read_text()
        )
        assert (state / "rejected" / "link.pcm").is_symlink()
        assert (
            _record(state, "bad")["state"] == "failed"
            and "colour" in _record(state, "bad")["reason"]
        )
        assert not [p for p in (state / "processing").rglob("*") if p.is_file()]

        st = subprocess.run(
            [sys.executable, "-m", "miragen", "status", "--config", str(config), "--json"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
        )
        assert st.returncode == 0, st.stderr
        info = json.loads(st.stdout)
        assert info["daemon"]["running"] and info["deliveries"]["done"] >= 3
        assert info["classes"]["a"]["model"] and info["classes"]["b"]["model"]
        assert info["classes"]["a"]["sounds"] == 12 + 500

        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
        assert json.loads((state / "status.json").read_text())["state"] == "stopped"
    finally:
        for p in (daemon, sim):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        os.close(master)
        os.close(slave)


def test_kill9_and_restart_lose_and_duplicate_nothing(tmp_path):
    state = tmp_path / "state"
    config = _write_config(
        tmp_path / "miragen.toml",
        state,
        deliver={"transport": "sim", "route": "both"},
        train={"seconds": 2, "debounce_s": 0.2},
    )
    log = tmp_path / "daemon.log"
    rng = np.random.default_rng(7)
    seed = random.randrange(10**6)
    chooser = random.Random(seed)
    expected = set()
    inbox = state / "inbox"
    for cls in ("x", "y"):
        for i in range(20):
            data = _random_wave(rng)
            _drop(inbox / cls, f"{cls}{i}.pcm", data)
            expected.add(hashlib.sha256(data).hexdigest())
    (state / "requests").mkdir(parents=True)
    for i, cls in enumerate(("x", "y", "x")):
        (state / "requests" / f"req{i}.json").write_text(
            json.dumps({"class": cls, "wavesample": i + 1})
        )
    kills = 0
    for _ in range(3):
        daemon = _start(config, log)
        time.sleep(chooser.uniform(0.5, 7.0))
        if daemon.poll() is None:
            daemon.kill()  # SIGKILL: no cleanup at all
            kills += 1
        daemon.wait()
    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragen",
            "daemon",
            "--config",
            str(config),
            "--until-idle",
            "--max-seconds",
            "150",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=200,
        env=ENV,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    msg = f"(kill seed {seed}, {kills} kills)\n{final.stderr[-3000:]}"
    hashes = _corpus_hashes(state)
    assert len(hashes) == len(set(hashes)) == len(expected) and set(hashes) == expected, msg
    assert not [p for p in (state / "rejected").iterdir()], msg
    assert not [p for p in (state / "processing").rglob("*") if p.is_file()], msg
    assert not list(inbox.rglob("*.pcm")) and not list((state / "requests").iterdir()), msg
    for i in range(3):
        rec = _record(state, f"req{i}")
        assert rec["state"] == "done", (rec, msg)
        assert rec["delivery"]["sysex"]["ok"] and rec["delivery"]["disk"]["ok"]
    assert not list((state / "out").rglob("*.part")), msg
    db = sqlite3.connect(state / "miragen.db")
    rows = db.execute(
        "SELECT id, count(*) FROM deliveries WHERE state='done' GROUP BY id"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(
        f"req{i}:{p}" for i in range(3) for p in ("sysex", "disk")
    ), msg
    assert all(n == 1 for _, n in rows)
    assert (
        db.execute("SELECT count(*) FROM jobs WHERE state IN ('queued','running')").fetchone()[0]
        == 0
    )
    bad = db.execute(
        "SELECT kind, last_error FROM jobs WHERE state='failed' AND last_error=''"
    ).fetchall()
    assert not bad, msg
    assert db.execute("SELECT count(*) FROM files").fetchone()[0] == len(expected)


def test_bad_config_stops_the_start_with_every_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[daemon]\nsettle = 1\n[deliver]\nroute = "carrier-pigeon"\n')
    r = subprocess.run(
        [sys.executable, "-m", "miragen", "daemon", "--config", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert r.returncode == 2
    assert "daemon.settle: unknown key" in r.stderr and "deliver.route" in r.stderr
    assert "Traceback" not in r.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_training_runs_in_a_child_process_that_checkpoints_on_sigterm_and_dies_with_the_daemon(
    tmp_path,
):
    state = tmp_path / "state"
    config = _write_config(
        tmp_path / "miragen.toml",
        state,
        train={"seconds": 120, "debounce_s": 0.2, "checkpoint_every": 3},
    )
    log = tmp_path / "daemon.log"
    corpus = default_corpus(seed=0)
    waves = corpus[min(corpus)][:12]
    for i, w in enumerate(waves):
        _drop(state / "inbox" / "a", f"a{i}.pcm", _u8(w))
    ckpt = state / "models" / "a" / "checkpoint-v0001"
    daemon = _start(config, log)
    try:
        _wait(
            lambda: _children(daemon.pid) and any(ckpt.glob("*.pt")),
            120,
            "training in a child process",
            daemon,
            log,
        )
        # the training child, and perhaps the warm one waiting for the next job (daemon.warm_s)
        children = _children(daemon.pid)
        assert 1 <= len(children) <= 2, children
        for child in children:
            assert "miragen.service.tasks" in Path(f"/proc/{child}/cmdline").read_text()
        assert any("libtorch" in Path(f"/proc/{c}/maps").read_text() for c in children)
        assert (
            "libtorch" not in Path(f"/proc/{daemon.pid}/maps").read_text()
        )  # torch never in the daemon
        assert _rss_mb(daemon.pid) < 150
        time.sleep(1.0)
        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)  # forwarded: the child checkpoints and stops
        assert daemon.wait(timeout=15) == 0
        stop_s = time.monotonic() - t0
        print(f"SIGTERM with training in a child process: the daemon exited in {stop_s:.2f} s")
        assert stop_s < 10
        _wait(lambda: not any(map(_alive, children)), 5, "the child processes to end")
        db = sqlite3.connect(state / "miragen.db")
        state_, payload, err = db.execute(
            "SELECT state, payload, last_error FROM jobs WHERE kind='train'"
        ).fetchone()
        db.close()
        assert state_ == "queued" and "stopped by shutdown" in err, (state_, err)
        assert json.loads(payload)["elapsed"] > 0
        assert "checkpointed at shutdown" in log.read_text()

        # kill -9 of the daemon: its child process dies with it (PR_SET_PDEATHSIG)
        daemon = _start(config, log)
        _wait(
            lambda: (
                _children(daemon.pid)
                and "resum" in log.read_text().split("checkpointed at shutdown")[-1]
            ),
            120,
            "training to resume in a child process",
            daemon,
            log,
        )
        children = _children(daemon.pid)
        daemon.kill()
        daemon.wait()
        _wait(lambda: not any(map(_alive, children)), 5, "the orphaned child processes to die")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    # the rest of the budget: the spent seconds are kept, the run finishes from its checkpoint
    _write_config(config, state, train={"seconds": 3, "debounce_s": 0.2, "checkpoint_every": 3})
    final = subprocess.run(
        [
            sys.executable,
            "-m",
            "miragen",
            "daemon",
            "--config",
            str(config),
            "--until-idle",
            "--max-seconds",
            "120",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert (state / "models" / "a" / "v0001" / "model.json").is_file()
    assert not list((state / "models" / "a").glob("*.part"))
    assert "Traceback" not in log.read_text() + final.stderr
