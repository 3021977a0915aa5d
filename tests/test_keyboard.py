"""A whole playable sound ("keyboard"): the plan, the parameter block, delivery to the simulated
Mirage (in process with every fault, and once over a pty at true wire speed), the disk image
read back by an independent reader, and `miragen keyboard` / `miragen disk info`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from miragen.app import keyboard as K
from miragen.cli import main
from miragen.errors import InputError
from miragen.mirage import disk
from miragen.mirage import params as P
from miragen.mirage import sysex as S
from miragen.transport import open_transport
from miragen.transport.memory import MemoryLink, TransferFailed
from miragen.transport.simulated import Faults, SimTransport, SimulatedMirage, read_state

ROOT = Path(__file__).resolve().parents[1]
RATE = 29411


def miragen(capsys, *args: str) -> tuple[int, str, str]:
    """`miragen ARGS` in this process (no interpreter start-up): exit status, stdout, stderr."""
    try:
        rc = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def tone(n: int, hz: float, decay: float = 0.0) -> bytes:
    """Mirage 8-bit (1..255) sine of ``n`` samples, dying away with ``decay`` per second."""
    t = np.arange(n) / RATE
    x = np.sin(2 * np.pi * hz * t) * np.exp(-decay * t)
    return bytes(np.clip(np.rint(128 + 120 * x), 1, 255).astype(np.uint8))


def three() -> list[K.Sound]:
    return [
        K.Sound(tone(3 * 256 - 40, 110), "low"),
        K.Sound(tone(5 * 256, 220, decay=200.0), "mid"),  # dies away: a one-shot
        K.Sound(tone(256, RATE / 256), "cycle", loop="cycle"),  # one cycle on one page
    ]


# ------------------------------------------------------------------ the plan
def test_plan_lays_the_sounds_out_one_after_another():
    kb = K.plan_keyboard(three(), "organ")
    assert [(z.start_page, z.end_page) for z in kb.zones] == [(0, 2), (3, 7), (8, 8)]
    assert [z.top_key for z in kb.zones] == K.even_top_keys(3) == [19, 40, 60]
    assert kb.pages == 9 and len(kb.wave) == 9 * 256 and b"\x00" not in kb.wave
    low = kb.zones[0]
    assert low.data[-40:] == b"\x80" * 40  # padded to whole pages with the centre line
    mid = kb.zones[1]
    assert not mid.loop.loop_on  # it dies away: no loop
    cyc = kb.zones[2]
    assert cyc.loop.loop_on and (cyc.loop.loop_start_page, cyc.loop.loop_end_page) == (8, 8)
    assert cyc.loop.loop_end_fine == 255  # a single cycle loops on its whole page
    assert low.loop.loop_on and 0 <= low.loop.loop_start_page <= low.loop.loop_end_page <= 2


def test_plan_loop_choices_and_presets():
    sus, dying = tone(6 * 256, 220), tone(6 * 256, 220, decay=200.0)
    assert K.plan_keyboard([sus], "drum").zones[0].loop.loop_on is False  # drum: one-shot
    assert K.plan_keyboard([K.Sound(sus, loop="off")], "organ").zones[0].loop.loop_on is False
    kb = K.plan_keyboard([K.Sound(dying, loop="on")], "organ")
    z = kb.zones[0]
    assert z.loop.loop_on and (z.loop.loop_start_page, z.loop.loop_end_page) == (0, 5)
    assert any("dies away" in w for w in kb.warnings)
    z = K.plan_keyboard([sus], "pad").zones[0]
    assert z.loop.loop_on and z.loop.loop_start_page >= 3  # a loop in the tail, on a page


def test_plan_refuses_what_a_half_cannot_hold():
    big = [K.Sound(b"\x81" * (100 * 256), f"s{i}") for i in range(3)]
    with pytest.raises(InputError, match=r"300 pages \(s0 100, s1 100, s2 100\).*holds 256"):
        K.plan_keyboard(big)
    with pytest.raises(InputError, match="1 to 8"):
        K.plan_keyboard([b"\x81" * 256] * 9)
    with pytest.raises(InputError, match="0x00"):
        K.plan_keyboard([b"\x81\x00"])
    with pytest.raises(InputError, match="above the last"):
        K.plan_keyboard([b"\x81", b"\x81"], top_keys=[30, 30])
    with pytest.raises(InputError, match="one per sound"):
        K.plan_keyboard([b"\x81", b"\x81"], top_keys=[60])
    with pytest.raises(InputError, match="unknown preset"):
        K.plan_keyboard([b"\x81"], "banjo")
    # exactly 256 pages fit
    assert K.plan_keyboard([b"\x81" * (128 * 256)] * 2).pages == 256


def test_keys_and_note_names():
    assert [P.parse_key(k) for k in ("0", "C2", "C4", "F#3", "Bb4", "60", "C7")] == [
        0, 0, 24, 18, 34, 60, 60,
    ]  # fmt: skip
    for bad in ("61", "B1", "H2", "-1", "C8"):
        with pytest.raises(Exception, match="key"):
            P.parse_key(bad)
    kb = K.plan_keyboard([b"\x81" * 256] * 2, top_keys=[P.parse_key("C4"), 50])
    assert any("keys above it" in w for w in kb.warnings)  # 51..60 play nothing


def test_octave_sounds_each_an_octave_up_and_half_as_long(tmp_path):
    import soundfile as sf

    wav = tmp_path / "saw.wav"
    t = np.arange(int(0.2 * 44100)) / 44100
    sf.write(wav, 0.5 * ((t * 110) % 1.0 - 0.5), 44100)
    sounds, _ = K.octave_sounds(str(wav), 3)
    n = [len(s.data) for s in sounds]
    assert [s.octave for s in sounds] == [0, 1, 2]
    assert abs(n[0] - 0.2 * RATE) <= 2 and abs(n[1] - n[0] / 2) <= 2 and abs(n[2] - n[0] / 4) <= 2
    kb = K.plan_keyboard(sounds, "organ")
    # coarse tune counts octaves (UNCERTAIN): zone k is k octaves up, so k lower
    block, warnings = K.apply_keyboard(SimulatedMirage().params["lower"], kb)
    tunes = [P.parse_sound_params(block).wavesample(n).coarse_tune for n in (1, 2, 3)]
    assert tunes == [2, 1, 0] and not warnings
    _, warnings = K.apply_keyboard(bytes(P.BLOCK_SIZE), kb)  # coarse tune 0: lifted, said so
    assert "2 octave(s) higher" in warnings[0]
    with pytest.raises(InputError, match="--cut"):
        K.octave_sounds(str(wav), 2, rate=29411 * 8)  # far too long for one half: refused


def test_apply_changes_only_what_it_must():
    rng = np.random.default_rng(7)
    old = bytearray(rng.integers(0, 256, P.BLOCK_SIZE, dtype=np.uint8).tobytes())
    for n in range(1, 9):  # random, but each wavesample loops inside its pages
        old[P.control_offset(n) + P.CONTROL_FIELDS["loop_on"]] = 0
    kb = K.plan_keyboard(three(), "pluck", programs=(2,))
    new, _ = K.apply_keyboard(bytes(old), kb)
    zone_fields = (
        "start_page end_page loop_start_page loop_end_page loop_end_fine loop_on top_key "
        "coarse_tune fine_tune"
    ).split()
    allowed = {
        P.control_offset(z.number) + P.CONTROL_FIELDS[f] for z in kb.zones for f in zone_fields
    }
    for n in range(4, 9):
        allowed |= {
            P.control_offset(n) + P.CONTROL_FIELDS[f] for f in ("start_page", "end_page", "loop_on")
        }
    allowed |= {P.program_offset(2) + P.PROGRAM_FIELDS[f][0] for f in kb.preset.program}
    allowed.add(P.program_offset(2) + P.PROGRAM_FIELDS["initial_wavesample"][0])
    changed = {i for i in range(P.BLOCK_SIZE) if old[i] != new[i]}
    assert changed <= allowed
    assert not changed & P.os_state_offsets()  # pointers and segment lists: never
    params = P.parse_sound_params(new)
    assert [ws.used for ws in params.wavesamples] == [True] * 3 + [False] * 5
    assert P.key_ranges(params) == {1: (0, 19), 2: (20, 40), 3: (41, 60)}
    assert params.programs[1].stored()["filter_cutoff"] == 30 * 2  # panel 30, stored ×2
    assert params.programs[0].raw == old[P.program_offset(1) : P.program_offset(1) + 36]


def test_presets_are_documented_and_in_range():
    doc = (ROOT / "docs" / "keyboard.md").read_text()
    for pre in K.PRESETS.values():
        assert f"`{pre.name}`" in doc
        for name, value in pre.stored().items():
            assert name in P.PROGRAM_FIELDS and 0 <= value <= 255
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{pre.name}`"))
        for name in ("filter_cutoff", "resonance"):
            assert f"{pre.program[name]}" in row


# ------------------------------------------------------------------ SysEx to the simulated Mirage
def test_deliver_keyboard_holds_and_reads_back():
    t = SimTransport()
    old = bytes(t.sim.params["upper"])
    kb = K.plan_keyboard(three(), "pad")
    res = K.deliver_keyboard(t, kb, "upper", ack_margin_s=0.3, chunk_pages=4)
    assert res["ok"] and res["verified"], res["error"]
    assert bytes(t.sim.memory["upper"][: kb.pages * 256]) == kb.wave
    assert bytes(t.sim.params["upper"]) == K.apply_keyboard(old, kb)[0]
    assert (
        t.sim.memory["lower"] == b"\x80" * 65536 and t.sim.params["lower"] != t.sim.params["upper"]
    )
    assert (
        res["chunks_written"] == 3 and res["blocks_read"] == 2
    )  # the first (two agreeing replies), the read-back
    assert res["bytes_sent"] + res["bytes_received"] == K.keyboard_wire_bytes(kb, 1024, True, True)
    assert "wavesample 2 top_key" in res["changed"]


MARGIN = 0.2
# fault → ok (a verified result) or the words of a clear failure
FAULTS = {
    "drop=1": True,
    "corrupt=1": True,
    "nak=2": True,
    "silent=1": True,
    "mute=2": True,
    "corrupt_reply=1": True,
    "noise": True,
    "nak": "3 NAK",
    "silent": "without ACK",
    "mute": "unanswered",
    "corrupt_reply": "failed their checks",
    "disconnect=500": "link lost",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_deliver_keyboard_faults_end_verified_or_clearly(fault):
    t = SimTransport(faults=Faults.parse([fault]))
    kb = K.plan_keyboard(three()[:2], "organ")
    t0 = time.monotonic()
    res = K.deliver_keyboard(t, kb, "lower", ack_margin_s=MARGIN, backoff_s=0.01, chunk_pages=4)
    assert time.monotonic() - t0 < 8 * (MARGIN + 0.1) + 1  # never a hang
    want = FAULTS[fault]
    if want is True:
        assert res["ok"] and res["verified"], res["error"]
        assert bytes(t.sim.memory["lower"][: kb.pages * 256]) == kb.wave
    else:
        assert not res["ok"] and want in res["error"], res["error"]


def test_sim_refuses_an_unplayable_block_and_the_host_says_so():
    t = SimTransport()
    link = MemoryLink(t, ack_margin_s=MARGIN, backoff_s=0.01, tries=2)
    bad = P.set_control_fields(t.sim.params["lower"], 2, loop_on=1, loop_end_page=200)
    with pytest.raises(TransferFailed, match="wavesample 2 loop_on.*refused"):
        link.write_block("lower", bad)
    assert "loop end page 200 lies outside" in t.sim.last_refusal
    assert t.sim.counters["programs_refused"] == 2


def test_absolute_data_reaches_the_last_byte_of_a_half():
    """End address 0x10000 travels as 0x0000 (UNCERTAIN, sysex.absolute_end_nybbles)."""
    msg = S.encode_absolute_dump(0xFF00, b"\x42" * 256, upper=True)
    assert msg[8:12] == b"\x00\x00\x00\x00"
    assert S.decode(msg).fields["end"] == 0x10000
    t = SimTransport()
    MemoryLink(t).write_chunk("upper", 0xFF00, b"\x42" * 256)
    assert t.sim.memory["upper"][-256:] == b"\x42" * 256


def test_keyboard_over_a_pty_at_wire_speed(tmp_path):
    """The one true-speed test: an 8-page keyboard to `miragen sim --pty --fault slow`."""
    state = tmp_path / "sim.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--fault", "slow", "--state", str(state)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        kb = K.plan_keyboard([tone(1024, 220), tone(1024, 440)], "organ")
        with open_transport(f"serial:{path}", None) as t:
            res = K.deliver_keyboard(t, kb, "upper")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()
    assert res["ok"] and res["verified"], res["error"]
    assert res["wire_floor_s"] <= res["elapsed_s"] <= 1.05 * res["wire_floor_s"], res
    st = read_state(state)
    assert st["memory"]["upper"][: kb.pages * 256] == kb.wave
    assert P.key_ranges(P.parse_sound_params(st["params"]["upper"])) == {1: (0, 29), 2: (30, 60)}


# ------------------------------------------------------------------ disk image and the CLI
def _independent_read(image: bytes, first_track: int):
    """FORMAT.md §3 and §3.1, read here without the package: the parameter sector is sector 0 of
    the sound's first track; control block w at 1 + 24w; wave byte k as the formula says."""
    base = first_track * 5632
    block = image[base : base + 625]
    zones = []
    for w in range(8):
        c = block[1 + 24 * w : 25 + 24 * w]
        zones.append(
            {
                "loop_on": c[8],
                "top": c[14],
                "start": c[15],
                "end": c[16],
                "loop": (c[17], c[18], c[19]),
            }
        )

    def wave(k: int) -> int:
        if k < 4096:
            return image[base + 1024 + k]
        j = k - 4096
        return image[base + 5632 * (1 + j // 5120) + j % 5120]

    return zones, wave


def test_cli_keyboard_into_an_image_and_disk_info(capsys, tmp_path):
    import soundfile as sf

    files = []
    for name, hz in (("a.wav", 110.0), ("b.wav", 330.0)):
        t = np.arange(3000) / 44100
        sf.write(tmp_path / name, 0.6 * np.sin(2 * np.pi * hz * t), 44100)
        files.append(str(tmp_path / name))
    out = tmp_path / "kb.img"
    rc, stdout, err = miragen(
        capsys, "keyboard", *files, "--disk", str(out), "--preset", "organ", "--top-keys", "C4,C7",
        "--json",
    )  # fmt: skip
    assert rc == 0, err
    rep = json.loads(stdout)
    assert rep["ok"] and rep["sound"] == "lower1" and "does not boot" in rep["note"]
    image = out.read_bytes()
    zones, wave = _independent_read(image, 2)  # lower1 starts on track 2
    for z, want in zip(zones, rep["zones"]):
        assert (z["start"], z["end"], z["top"]) == (
            want["start_page"],
            want["end_page"],
            want["top_key"],
        )
        assert z["loop_on"] == int(want["loop_on"])
        assert z["loop"] == (want["loop_start_page"], want["loop_end_page"], want["loop_end_fine"])
    assert [z["top"] for z in zones[:2]] == [24, 60] and all(
        z["end"] < z["start"] for z in zones[2:]
    )
    last = rep["zones"][-1]["end_page"]
    import hashlib

    for want in rep["zones"]:
        got = bytes(wave(k) for k in range(want["start_page"] * 256, (want["end_page"] + 1) * 256))
        assert hashlib.sha256(got).hexdigest() == want["wave_sha256"] and b"\x00" not in got
    # nothing but lower1's parameter block and its used pages changed
    tpl = disk.synthetic_template()
    diff = np.flatnonzero(np.frombuffer(image, np.uint8) != np.frombuffer(tpl, np.uint8))
    allowed = set(range(2 * 5632, 2 * 5632 + 625)) | {
        disk.wave_offset("lower1", k) for k in range((last + 1) * 256)
    }
    assert set(diff.tolist()) <= allowed
    rc, text, err = miragen(capsys, "disk", "info", str(out))
    assert rc == 0, err
    assert re.search(
        r"\n\s+1\s+0\.\.24\s+C2\.\.C4\s+24\s+0\.\.\d+\s+[\d,]+\s+on \d+→\d+\.\d+", text
    )
    assert re.search(r"\n\s+2\s+25\.\.60\s+C#4\.\.C7\s+60\s", text)
    rc, stdout, _ = miragen(capsys, "disk", "info", str(out), "--json")
    kbd = json.loads(stdout)["sounds"]["lower1"]["keyboard"]
    assert kbd[0]["keys"] == [0, 24] and kbd[1]["notes"] == ["C#4", "C7"] and not kbd[2]["used"]
    assert kbd[1]["wave_sha256"] == rep["zones"][1]["wave_sha256"]


def test_cli_keyboard_by_sysex_to_the_sim(capsys, tmp_path):
    import soundfile as sf

    wav = tmp_path / "saw.wav"
    t = np.arange(6000) / 44100
    sf.write(wav, 0.5 * ((t * 110) % 1.0 - 0.5), 44100)
    rc, out, err = miragen(
        capsys, "keyboard", str(wav), "--octaves", "3", "--sim", "--preset", "pluck", "--half",
        "upper", "--json",
    )  # fmt: skip
    assert rc == 0, err
    res = json.loads(out)
    assert res["ok"] and res["verified"] and res["half"] == "upper"
    assert [z["octave"] for z in res["keyboard"]["zones"]] == [0, 1, 2]
    rc, out, err = miragen(
        capsys, "keyboard", str(wav), "--sim", "--sim-fault", "nak", "--ack-margin", "0.1",
        "--tries", "2",
    )  # fmt: skip
    assert rc == 1 and "keyboard delivery failed" in err and "2 NAK" in err
    assert "keyboard → lower:" in err and "left" in err  # the progress line (not a terminal)
    rc, out, err = miragen(capsys, "keyboard", str(wav), str(wav), "--octaves", "2", "--sim")
    assert rc == 2 and "takes one FILE" in err
    rc, out, err = miragen(capsys, "keyboard", str(wav), "--sim", "--quiet", "--preset", "drum")
    assert rc == 0 and "left" not in err and "ws1  keys 0..60 (C2..C7)" in out and "no loop" in out
    rc, out, _ = miragen(capsys, "keyboard", "--list-presets")
    assert rc == 0 and all(name in out for name in K.PRESETS)
