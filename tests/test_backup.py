"""Backup and restore over MIDI: the image rebuilt from what the simulated Mirage holds (read
independently of the package), resuming after a dropped link (in process, and over a pty with a
second simulator that loads the first one's state), the faults, and the commands."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from miragen.app import backup as B
from miragen.app import keyboard as K
from miragen.cli import main
from miragen.errors import InputError
from miragen.mirage import disk
from miragen.mirage import params as P
from miragen.transport.simulated import Faults, SimTransport, SimulatedMirage, read_state

MARGIN = 0.2
FAST = {"ack_margin_s": MARGIN, "backoff_s": 0.01}


def miragen(capsys, *args: str) -> tuple[int, str, str]:
    """`miragen ARGS` in this process: exit status, stdout, stderr."""
    try:
        rc = main(list(args))
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def loaded_mirage(seed: int = 1) -> SimulatedMirage:
    """A simulated Mirage holding something worth backing up: a keyboard in the lower half,
    random bytes (0x00 included, as real memory may hold) in the upper."""
    rng = random.Random(seed)
    sim = SimulatedMirage()
    kb = K.plan_keyboard([bytes(rng.randrange(1, 256) for _ in range(n)) for n in (700, 2000)])
    block, _ = K.apply_keyboard(bytes(sim.params["lower"]), kb)
    sim.params["lower"][:] = block
    sim.memory["lower"][: len(kb.wave)] = kb.wave
    sim.memory["upper"][:] = bytes(rng.randrange(0, 256) for _ in range(65536))
    sim.params["upper"][0] = 0xA3  # the revision byte of upper sounds seen on disks
    return sim


def independent_sound(image: bytes, first_track: int) -> tuple[bytes, bytes]:
    """FORMAT.md §3, read here without the package: (parameter block, 64 KB of wave)."""
    base = first_track * 5632
    wave = image[base + 1024 : base + 5120]
    for i in range(12):
        t = base + 5632 * (1 + i)
        wave += image[t : t + 5120]
    return image[base : base + 625], wave


# ------------------------------------------------------------------ backup
def test_backup_rebuilds_both_halves_in_a_template(tmp_path):
    sim = loaded_mirage()
    template = bytearray(disk.synthetic_template())
    template[:2048] = bytes(range(256)) * 8  # an "operating system": the template's own bytes
    out = tmp_path / "b.img"
    res = B.backup(SimTransport(sim), out, template=bytes(template), slot=2, **FAST)
    assert res["ok"], res["error"]
    image = out.read_bytes()
    for half, track in (("lower", 28), ("upper", 41)):  # lower2, upper2
        block, wave = independent_sound(image, track)
        assert block == bytes(sim.params[half]) and wave == bytes(sim.memory[half])
    changed = {
        i for i in range(disk.SIZE) if image[i] != template[i]
    }  # only the two sounds' parameter blocks and wave areas
    allowed = set()
    for s in ("lower2", "upper2"):
        allowed |= set(range(disk.param_offset(s), disk.param_offset(s) + 625))
        for _k, off, n in disk.wave_runs(s):
            allowed |= set(range(off, off + n))
    assert changed <= allowed
    assert not res["synthetic"] and res["chunks_read"] == 32 and res["blocks_read"] == 2
    assert (
        not (tmp_path / "b.img.part").exists() and not (tmp_path / "b.img.progress.json").exists()
    )
    assert res["sounds"]["lower2"]["wavesamples_used"] == 2


def test_backup_resumes_after_a_dropped_link(tmp_path):
    sim = loaded_mirage()
    sim.faults = Faults.parse(["disconnect=300"])
    out = tmp_path / "b.img"
    res = B.backup(SimTransport(sim), out, **FAST)
    assert not res["ok"] and "link lost" in res["error"] and "rerun" in res["resume"]
    assert not out.exists()
    progress = json.loads((tmp_path / "b.img.progress.json").read_text())
    done = sum(len(c) for c in progress["chunks"].values())
    assert done == res["chunks_read"] > 0
    # a byte of the partial file goes bad on the way: that chunk is read again
    part = tmp_path / "b.img.part"
    data = bytearray(part.read_bytes())
    data[5] ^= 0xFF
    part.write_bytes(data)
    sim.disconnected, sim.faults = False, Faults()  # the cable is back
    res = B.backup(SimTransport(sim), out, **FAST)
    assert res["ok"], res["error"]
    assert res["resumed_chunks"] == done - 1 and res["chunks_read"] == 32 - done + 1
    assert "resumed" in res["notes"][0]
    image = out.read_bytes()
    assert independent_sound(image, 2) == (bytes(sim.params["lower"]), bytes(sim.memory["lower"]))
    assert independent_sound(image, 15) == (bytes(sim.params["upper"]), bytes(sim.memory["upper"]))
    assert not part.exists()


def test_backup_starts_over_when_the_mirage_changed(tmp_path):
    sim = loaded_mirage()
    sim.faults = Faults.parse(["disconnect=400"])
    out = tmp_path / "b.img"
    assert not B.backup(SimTransport(sim), out, **FAST)["ok"]
    sim.disconnected, sim.faults = False, Faults()
    sim.params["lower"][P.program_offset(1) + 6] ^= 1  # a sound was loaded meanwhile
    res = B.backup(SimTransport(sim), out, **FAST)
    assert res["ok"] and res["resumed_chunks"] == 0 and "starting over" in res["notes"][0]


@pytest.mark.parametrize(
    "fault, want",
    [
        ("mute=3", True),  # silence: asked again
        ("corrupt_reply=2", True),  # a reply fails its checksum: NAK, asked again
        ("noise", True),
        ("mute", "unanswered"),
        ("corrupt_reply", "failed their checks"),
    ],
)
def test_backup_faults_end_verified_or_clearly(tmp_path, fault, want):
    sim = loaded_mirage()
    sim.faults = Faults.parse([fault])
    t0 = time.monotonic()
    res = B.backup(SimTransport(sim), tmp_path / "b.img", **FAST)
    assert time.monotonic() - t0 < 10
    if want is True:
        assert res["ok"], res["error"]
        img = (tmp_path / "b.img").read_bytes()
        assert independent_sound(img, 15)[1] == bytes(sim.memory["upper"])
    else:
        assert not res["ok"] and want in res["error"], res["error"]


# ------------------------------------------------------------------ restore
def _image_of(sim: SimulatedMirage, tmp_path: Path) -> tuple[bytes, Path]:
    out = tmp_path / "src.img"
    assert B.backup(SimTransport(sim), out, **FAST)["ok"]
    return out.read_bytes(), out


def test_restore_round_trip_and_resume(tmp_path):
    src = loaded_mirage()
    image, path = _image_of(src, tmp_path)
    state = B.restore_state_path(path)
    dst = SimulatedMirage(Faults.parse(["disconnect=40000"]))
    targets = B.restore_targets(["lower1", "upper1"])
    res = B.restore(SimTransport(dst), image, targets, state_path=state, chunk_pages=8, **FAST)
    assert not res["ok"] and "link lost" in res["error"] and state.exists()
    dst.disconnected, dst.faults = False, Faults()
    res = B.restore(SimTransport(dst), image, targets, state_path=state, chunk_pages=8, **FAST)
    assert res["ok"] and res["verified"], res["error"]
    assert res["targets"][0]["resumed_chunks"] > 0 and "resumed" in res["notes"][0]
    assert dst.memory == src.memory and dst.params == src.params
    assert not state.exists()


def test_restore_starts_a_sound_over_when_the_mirage_lost_it(tmp_path):
    src = loaded_mirage()
    image, path = _image_of(src, tmp_path)
    state = B.restore_state_path(path)
    dst = SimulatedMirage(Faults.parse(["disconnect=30000"]))
    targets = [("upper1", "lower")]  # a sound to the other half
    assert not B.restore(SimTransport(dst), image, targets, state_path=state, **FAST)["ok"]
    dst = SimulatedMirage()  # switched off and on: the memory is gone
    res = B.restore(SimTransport(dst), image, targets, state_path=state, **FAST)
    assert res["ok"] and "starting over" in res["notes"][0]
    assert dst.memory["lower"] == src.memory["upper"] and dst.params["lower"] == src.params["upper"]


@pytest.mark.parametrize(
    "fault, want",
    [("nak=2", True), ("drop=1", True), ("silent=1", True), ("nak", "3 NAK")],
)
def test_restore_faults_end_verified_or_clearly(tmp_path, fault, want):
    image, _ = _image_of(loaded_mirage(), tmp_path)
    dst = SimulatedMirage(Faults.parse([fault]))
    res = B.restore(SimTransport(dst), image, [("lower1", "lower")], **FAST)
    if want is True:
        assert res["ok"] and res["verified"], res["error"]
        assert dst.memory["lower"] == disk.read_wave(image, "lower1")
    else:
        assert not res["ok"] and want in res["error"]


def test_restore_refuses_what_cannot_be_played_before_sending(tmp_path):
    image = bytearray(disk.synthetic_template())
    off = disk.param_offset("upper2") + P.control_offset(3)
    image[off + P.CONTROL_FIELDS["loop_on"]] = 1
    image[off + P.CONTROL_FIELDS["loop_end_page"]] = 250  # outside wavesample 3's pages
    t = SimTransport()
    with pytest.raises(InputError, match="upper2: its parameter block cannot be played"):
        B.restore(t, bytes(image), [("upper2", "upper")])
    assert t.bytes_written == 0
    with pytest.raises(InputError, match="same half"):
        B.restore_targets(["lower1", "lower2"])
    with pytest.raises(InputError, match="one --sound"):
        B.restore_targets(["lower1", "upper1"], "upper")


# ------------------------------------------------------------------ the commands
def _sim_process(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.Popen, str, Path]:
    state = tmp_path / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(state), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip(), state


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    proc.stdout.close()


def test_cli_backup_over_a_pty_resumes_with_the_same_instrument(capsys, tmp_path):
    """A dropped link mid-backup; the 'same' Mirage (a second sim loading the first one's
    state) on a new pty; the rerun goes on and the image holds what the Mirage holds."""
    seed = tmp_path / "seed.json"
    loaded_mirage().save_state(seed)
    out = tmp_path / "m.img"
    fast = ("--baud", "3000000", "--ack-margin", "0.3", "--json")  # paced 100× the wire
    proc, pty, state = _sim_process(tmp_path, "a", "--load", str(seed), "--fault", "disconnect=250")
    try:
        rc, stdout, _ = miragen(capsys, "backup", "--serial", pty, "-o", str(out), *fast)
    finally:
        _stop(proc)
    first = json.loads(stdout)
    assert rc == 1 and "link lost" in first["error"] and first["chunks_read"] > 0
    proc, pty, _ = _sim_process(tmp_path, "b", "--load", str(state))
    try:
        rc, stdout, err = miragen(capsys, "backup", "--serial", pty, "-o", str(out), *fast)
    finally:
        _stop(proc)
    res = json.loads(stdout)
    assert rc == 0 and res["ok"] and res["resumed_chunks"] == first["chunks_read"], err
    held = read_state(seed)
    image = out.read_bytes()
    assert independent_sound(image, 2) == (held["params"]["lower"], held["memory"]["lower"])
    assert independent_sound(image, 15) == (held["params"]["upper"], held["memory"]["upper"])


def test_cli_backup_and_restore_with_the_simulated_mirage(capsys, tmp_path):
    out = tmp_path / "x.img"
    rc, stdout, err = miragen(capsys, "backup", "--sim", "-o", str(out))
    assert rc == 0, err
    assert "does NOT boot" in stdout and "backup: 100.0%" in err and "left" in err
    rc, stdout, err = miragen(capsys, "restore", str(out), "--sim", "--sound", "upper1", "--quiet")
    assert rc == 0 and "restored upper1 → upper" in stdout and "verified" in stdout
    assert "left" not in err
    rc, stdout, err = miragen(
        capsys, "restore", str(out), "--sim", "--sim-fault", "nak", "--ack-margin", "0.1", "--json"
    )
    res = json.loads(stdout)
    assert rc == 1 and not res["ok"] and "3 NAK" in res["error"]
    assert B.restore_state_path(out).exists()  # kept for a rerun
    rc, _, err = miragen(capsys, "restore", str(out), "--sim", "--sound", "lower1", "--half", "x")
    assert rc == 2
