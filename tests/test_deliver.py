"""Delivery: the whole fault matrix against the simulated Mirage (in process and as a separate
process on a pty), and the `miragen deliver` / `miragen ports` commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from miragen.errors import InputError
from miragen.mirage import disk
from miragen.mirage import sysex as S
from miragen.transport import open_transport
from miragen.transport.deliver import deliver_wavesample
from miragen.transport.simulated import Faults, SimTransport, read_state

WAVE = bytes((i * 5 % 254) + 1 for i in range(4 * 256))  # 4 pages, no 0x00
MARGIN = 0.3

# fault → (ok, verified, tries, naks, timeouts, error part)
MATRIX = {
    "": (True, True, 1, 0, 0, None),
    "drop=1": (True, True, 2, 0, 1, None),
    "drop": (False, False, 3, 0, 3, "no ACK after 3 tries"),
    "corrupt=1": (True, True, 2, 1, 0, None),
    "corrupt": (False, False, 3, 3, 0, "no ACK after 3 tries (3 NAK"),
    "silent=2": (True, True, 3, 0, 2, None),
    "silent": (False, False, 3, 0, 3, "3 timed out"),
    "nak=2": (True, True, 3, 2, 0, None),
    "nak": (False, False, 3, 3, 0, "3 NAK"),
    "corrupt_reply=1": (True, True, 1, 0, 0, None),
    "corrupt_reply": (False, False, 1, 0, 0, "no good read-back"),
    "noise": (True, True, 1, 0, 0, None),
    "disconnect=500": (False, False, 1, 0, 0, "link lost"),
}


def _check(res, fault, stored: bytes, acks_sent: int):
    ok, verified, tries, naks, timeouts, err = MATRIX[fault]
    assert (res.ok, res.verified, res.tries, res.naks, res.timeouts) == (
        ok,
        verified,
        tries,
        naks,
        timeouts,
    ), res
    if err:
        assert err in res.error
    else:
        assert res.error is None
    # never success without an ACK, and success means the bytes are really there
    if res.ok:
        assert acks_sent >= 1 and stored == WAVE
    assert res.elapsed_s < 3 * (MARGIN + 0.5) + 2  # never a hang


@pytest.mark.parametrize("fault", list(MATRIX))
def test_fault_matrix_in_process(fault):
    t = SimTransport(faults=Faults.parse([fault] if fault else []))
    res = deliver_wavesample(
        t, WAVE, half="upper", number=2, verify=True, ack_margin_s=MARGIN, backoff_s=0.01
    )
    _check(res, fault, t.sim.wavesample_data("upper", 2), t.sim.counters["acks_sent"])


@pytest.mark.parametrize(
    "fault",
    ["drop=1", "corrupt", "silent=2", "nak=1", "corrupt_reply=1", "noise", "disconnect=500"],
)
def test_fault_matrix_sim_process(tmp_path, fault):
    state = tmp_path / "sim.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(state), "--fault", fault],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        with open_transport(f"serial:{path}", None, baud=3_000_000) as t:
            res = deliver_wavesample(
                t, WAVE, half="upper", number=2, verify=True, ack_margin_s=MARGIN, backoff_s=0.01
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()
    if fault == "nak=1":
        assert res.ok and res.tries == 2 and res.naks == 1
        return
    st = read_state(state)
    _check(res, fault, st["wavesample_data"]["upper"][2], st["counters"]["acks_sent"])


def test_no_ack_means_no_success_even_if_stored():
    """A Mirage that stores the dump but whose ACK never arrives: reported as a failure."""
    t = SimTransport()
    real_write = t._write

    def eat_acks(data):
        real_write(data)
        t._pending = [p for p in t._pending if p[1] != S.encode_ack()]

    t._write = eat_acks
    res = deliver_wavesample(t, WAVE, half="lower", number=1, ack_margin_s=0.1, backoff_s=0.0)
    assert not res.ok and res.timeouts == 3
    assert t.sim.wavesample_data("lower", 1) == WAVE


def test_verify_accepts_a_longer_read_back_that_starts_with_our_bytes():
    """If the Mirage keeps the wavesample's old end page, the read-back is longer: still ours."""
    from miragen.mirage import params as P

    t = SimTransport()
    real = t.sim._receive_dump

    def keep_end_page(msg):
        out = real(msg)
        t.sim.params["lower"][P.control_offset(1) + P.CONTROL_FIELDS["end_page"]] = 31
        return out

    t.sim._receive_dump = keep_end_page
    res = deliver_wavesample(t, WAVE, half="lower", number=1, verify=True)
    assert res.ok and res.verified and res.readback_bytes == 32 * 256
    # but a read-back that differs in our bytes fails
    t2 = SimTransport(faults=Faults.parse([]))
    t2.sim.handle(S.encode_keys([0x15, 1]))
    real2 = t2.sim._wavesample_reply

    def other_bytes():
        t2.sim.memory["lower"][5] ^= 0x02
        return real2()

    t2.sim._wavesample_reply = other_bytes
    res = deliver_wavesample(t2, WAVE, half="lower", number=1, verify=True)
    assert not res.ok and not res.verified and "differs from byte 5" in res.error


def test_refuses_data_no_dump_can_carry():
    t = SimTransport()
    for bad in (b"", b"\x80" * 100, b"\x80" * 256 * 256, b"\x80" * 255 + b"\x00"):
        with pytest.raises(InputError):
            deliver_wavesample(t, bad, half="lower", number=1)
    assert t.bytes_written == 0


def test_progress_and_chunking():
    t = SimTransport()
    seen = []
    res = deliver_wavesample(
        t, WAVE, half="lower", number=1, chunk_size=100, progress=lambda d, n: seen.append((d, n))
    )
    assert res.ok
    keys = len(S.encode_keys(S.select_wavesample_keys("lower", 1)))
    total = keys + len(S.encode_wavesample_dump(WAVE))
    assert seen[-1] == (total, total) and len(seen) == 1 + -(-(total - keys) // 100)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))


# ------------------------------------------------------------------ the command
def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


@pytest.fixture
def tone(tmp_path):
    import numpy as np
    import soundfile as sf

    t = np.arange(3000) / 29411.0
    path = tmp_path / "tone.wav"
    sf.write(path, 0.6 * np.sin(2 * np.pi * 220 * t), 29411)
    return path


def test_cli_deliver_sim_json(cli, tone):
    r = cli(
        "deliver", str(tone), "--sim", "--verify", "--json", "--half", "upper", "--wavesample", "8"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"ok", "bytes_sent", "wire_floor_s", "elapsed_s", "tries", "verified"} <= set(out)
    assert (
        out["ok"]
        and out["verified"]
        and out["tries"] == 1
        and out["pages"] == 12
        and out["converted"]
    )
    assert out["wire_floor_s"] == pytest.approx(S.wire_seconds(8 + 512 * 12), abs=1e-3)


def test_cli_deliver_sim_fault_fails_clearly(cli, tone):
    r = cli("deliver", str(tone), "--sim", "--sim-fault", "nak", "--ack-margin", "0.2", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and "3 NAK" in out["error"]
    r = cli(
        "deliver",
        str(tone),
        "--sim",
        "--sim-fault",
        "silent",
        "--ack-margin",
        "0.2",
        "--tries",
        "2",
    )
    assert (
        r.returncode == 1
        and "failed: no ACK after 2 tries" in _text(r.stderr)
        and "Traceback" not in _text(r.stderr)
    )


def test_cli_deliver_over_serial_to_sim_process_at_true_pacing(cli, tmp_path):
    page = tmp_path / "one.pcm"
    page.write_bytes(bytes(range(1, 129)) * 2)  # Mirage-ready: taken byte for byte
    state = tmp_path / "sim.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        t0 = time.monotonic()
        r = cli("deliver", str(page), "--serial", path, "--wavesample", "4", "--verify", "--json")
        assert r.returncode == 0, r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
    out = json.loads(r.stdout)
    assert out["ok"] and out["verified"] and not out["converted"]
    assert out["elapsed_s"] >= out["wire_floor_s"]  # paced at 31,250 baud
    assert read_state(state)["wavesample_data"]["lower"][4] == page.read_bytes()
    assert time.monotonic() - t0 < 30


def test_cli_deliver_disk_and_usb_stick(cli, tone, tmp_path):
    stick = tmp_path / "stick"
    stick.mkdir()
    conf = tmp_path / "m.toml"
    conf.write_text(f'[paths]\nusb_stick = "{stick}"\n')
    out_img = tmp_path / "out" / "new.img"
    r = cli(
        "deliver",
        str(tone),
        "--disk",
        str(out_img),
        "--half",
        "upper",
        "--wavesample",
        "2",
        "--config",
        str(conf),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    on_stick = stick / "0001-new.img"  # named in delivery order (app/stick.py)
    assert res["ok"] and res["sound"] == "upper1" and res["usb_stick"] == str(on_stick)
    image = out_img.read_bytes()
    assert len(image) == disk.SIZE and on_stick.read_bytes() == image
    assert "[::450560]" in (stick / "IMG.CFG").read_text()
    wave = disk.read_wave(image, "upper1")
    assert wave[32 * 256 : 32 * 256 + 3000] != b"\x80" * 3000  # written where wavesample 2 lives
    assert wave[: 32 * 256] == b"\x80" * (32 * 256)


def test_cli_deliver_bad_input(cli, tmp_path, tone):
    r = cli("deliver", str(tmp_path / "missing.wav"), "--sim")
    assert (
        r.returncode == 2 and "not found" in _text(r.stderr) and "Traceback" not in _text(r.stderr)
    )
    r = cli("deliver", str(tone), "--sim", "--wavesample", "9")
    assert r.returncode == 2
    r = cli("deliver", str(tone), "--raw", str(tmp_path / "midiC9D0"))
    assert (
        r.returncode == 2
        and "raw MIDI device" in _text(r.stderr)
        and "Traceback" not in _text(r.stderr)
    )
    r = cli("deliver", str(tone), "--sim-fault", "nak")
    assert r.returncode == 2 and "--sim" in _text(r.stderr)


def test_cli_ports(cli):
    r = cli("ports", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert {"alsa_sequencer", "midi_outputs", "raw_midi", "serial", "hints"} <= set(s)
    assert s["hints"]
    r = cli("ports")
    assert (
        r.returncode == 0
        and "ALSA sequencer" in _text(r.stdout)
        and "serial devices" in _text(r.stdout)
    )
