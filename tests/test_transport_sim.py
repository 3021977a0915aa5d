"""The simulated Mirage: memory model, protocol, faults, state file; `miragen sim --pty` as a
separate process reached through the serial and raw transports; a mido port pair."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest
from miragen.mirage import params as P
from miragen.mirage import sysex as S
from miragen.transport import open_transport
from miragen.transport.base import LinkLost, TransportError
from miragen.transport.deliver import deliver_wavesample
from miragen.transport.midi import MidoTransport, find_port_name
from miragen.transport.simulated import Faults, SimTransport, SimulatedMirage, read_state

WAVE = bytes((i * 7 % 254) + 1 for i in range(3 * 256))  # 3 pages, no 0x00


def _replies(sim: SimulatedMirage, *msgs: bytes) -> list[bytes]:
    out = []
    for m in msgs:
        out += sim.feed(m)
    return out


# ------------------------------------------------------------------ memory model and protocol
def test_default_layout_and_silence():
    sim = SimulatedMirage()
    for half in ("lower", "upper"):
        for n in range(1, 9):
            assert sim.wavesample_pages(half, n) == (32 * (n - 1), 32 * n - 1)
        assert sim.memory[half] == b"\x80" * 65536
    assert sim.selected == ("lower", 1)


def test_keys_select_then_dump_is_stored_acked_and_read_back():
    sim = SimulatedMirage()
    keys = S.encode_keys(S.select_wavesample_keys("upper", 4))
    assert _replies(sim, keys) == [] and sim.selected == ("upper", 4)
    assert _replies(sim, S.encode_wavesample_dump(WAVE)) == [S.encode_ack()]
    assert sim.memory["upper"][96 * 256 : 99 * 256] == WAVE
    assert sim.wavesample_pages("upper", 4) == (96, 98)  # end page follows the data
    assert sim.memory["lower"] == b"\x80" * 65536  # other half untouched
    (reply,) = _replies(sim, S.encode_wavesample_request())
    assert S.decode(reply).data == WAVE
    # the two selection keys may also come as two messages (as one editor sends them)
    _replies(sim, S.encode_keys([0x15]), S.encode_keys([2]))
    assert sim.selected == ("lower", 2)


def test_bad_checksum_naks_and_stores_nothing():
    sim = SimulatedMirage()
    dump = bytearray(S.encode_wavesample_dump(WAVE))
    dump[-2] ^= 0x01
    assert _replies(sim, bytes(dump)) == [S.encode_nak()]
    assert sim.memory["lower"] == b"\x80" * 65536


def test_dump_that_would_cross_the_half_is_naked():
    sim = SimulatedMirage()
    _replies(sim, S.encode_keys([0x15, 8]))  # starts at page 224: 32 pages left
    assert _replies(sim, S.encode_wavesample_dump(b"\x81" * 256 * 33)) == [S.encode_nak()]
    assert _replies(sim, S.encode_wavesample_dump(b"\x81" * 256 * 32)) == [S.encode_ack()]


def test_program_and_config_dumps():
    sim = SimulatedMirage()
    (prog,) = _replies(sim, S.encode_program_request(True))
    m = S.decode(prog)
    assert m.kind == "program_dump" and m.fields["half"] == "upper" and len(m.data) == P.BLOCK_SIZE
    block = bytearray(m.data)
    block[0] = 7
    assert _replies(sim, S.encode_program_dump(bytes(block), True)) == []
    assert sim.params["upper"][0] == 7 and sim.params["lower"][0] == 0
    (cfg,) = _replies(sim, S.encode_config_request())
    c = S.decode(cfg)
    assert (
        c.fields["config"]["thru_mode_83"] == 0 and c.fields["config"]["external_computer_91"] == 1
    )
    new = bytearray(c.data)
    new[S.CONFIG_FIELDS.index("midi_channel_82")] = 9
    _replies(sim, S.encode_config_dump(bytes(new)))
    assert sim.config[S.CONFIG_FIELDS.index("midi_channel_82")] == 9


def test_junk_and_host_acks_are_counted_not_fatal():
    sim = SimulatedMirage()
    assert (
        _replies(sim, b"\x90\x3c\x40", b"\xf0\x43\x01\xf7", S.encode_ack(), b"\xf0\x0f\x01\x7e\xf7")
        == []
    )
    assert (
        sim.counters["host_acks"] == 1
        and sim.counters["ignored"] == 2
        and sim.counters["bad_messages"] == 1
    )


# ------------------------------------------------------------------ faults
def test_fault_parsing():
    f = Faults.parse(["drop=1", "nak", "slow", "disconnect=500", "noise=8", "true-speed"])
    assert (f.drop, f.nak, f.slow, f.disconnect, f.noise) == (1, -1, True, 500, 8)
    for bad in ["nope", "nak=x", "drop=-1"]:
        with pytest.raises(ValueError, match="fault"):
            Faults.parse([bad])


def test_fault_counts_run_out():
    sim = SimulatedMirage(Faults.parse(["nak=2"]))
    dump = S.encode_wavesample_dump(WAVE)
    assert _replies(sim, dump, dump, dump) == [S.encode_nak(), S.encode_nak(), S.encode_ack()]


def test_disconnect_fault_drops_the_link():
    sim = SimulatedMirage(Faults.parse(["disconnect=100"]))
    with pytest.raises(LinkLost):
        sim.feed(S.encode_wavesample_dump(WAVE))
    with pytest.raises(LinkLost):
        sim.feed(S.encode_ack())


def test_slow_fault_runs_at_wire_speed():
    t = SimTransport(faults=Faults.parse(["slow"]))
    one_page = bytes([0x81]) * 256
    t0 = time.monotonic()
    res = deliver_wavesample(
        t, one_page, half="lower", number=1, ack_margin_s=1.0, select_settle_s=0
    )
    spent = time.monotonic() - t0
    assert res.ok
    assert spent >= S.wire_seconds(
        len(S.encode_wavesample_dump(one_page)) + 7 + 5
    )  # dump + keys + ACK
    assert spent < 1.5


# ------------------------------------------------------------------ state file
def test_state_file_roundtrip(tmp_path):
    sim = SimulatedMirage()
    _replies(sim, S.encode_keys([0x14, 2]), S.encode_wavesample_dump(WAVE))
    sim.save_state(tmp_path / "s.json")
    st = read_state(tmp_path / "s.json")
    assert st["selected"] == {"half": "upper", "number": 2}
    assert st["wavesample_data"]["upper"][2] == WAVE
    assert st["memory"]["upper"][32 * 256 : 35 * 256] == WAVE
    assert st["counters"]["acks_sent"] == 1
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError):
        read_state(tmp_path / "x.json")


# ------------------------------------------------------------------ `miragen sim --pty` process
class SimProcess:
    def __init__(self, tmp_path: Path, *faults: str):
        self.state = tmp_path / "sim.json"
        args = [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(self.state)]
        for f in faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), (
            self.proc.stderr.read() if self.proc.poll() is not None else self.path
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def read_state(self):
        return read_state(self.state)


@pytest.fixture
def sim_process(tmp_path):
    procs = []

    def start(*faults):
        p = SimProcess(tmp_path, *faults)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.proc.poll() is None:
            p.stop()


@pytest.mark.parametrize("kind", ["serial", "raw"])
def test_sim_process_over_a_pty(sim_process, kind):
    sim = sim_process()
    overrides = {"baud": 3_000_000} if kind == "serial" else {"rate": 300_000.0}
    with open_transport(f"{kind}:{sim.path}", None, **overrides) as t:
        res = deliver_wavesample(t, WAVE, half="upper", number=7, verify=True, ack_margin_s=2.0)
    assert res.ok and res.verified, res.error
    assert sim.stop() == 0  # SIGTERM: clean exit
    st = sim.read_state()
    assert st["wavesample_data"]["upper"][7] == WAVE
    assert st["counters"]["acks_sent"] == 1 and st["counters"]["dumps_sent"] == 1


def test_sim_process_true_speed_one_page(sim_process):
    """The one short true-speed test: a 1-page dump at 31,250 baud both ways (~0.2 s each)."""
    sim = sim_process("slow")
    page = bytes([0x7F]) * 256
    t0 = time.monotonic()
    with open_transport(f"serial:{sim.path}", None) as t:
        res = deliver_wavesample(
            t, page, half="lower", number=1, verify=True, ack_margin_s=2.0, select_settle_s=0
        )
    spent = time.monotonic() - t0
    assert res.ok and res.verified, res.error
    floor = 2 * S.wire_seconds(len(S.encode_wavesample_dump(page)))  # the dump there and back
    assert floor <= spent < floor + 1.5


def test_sim_process_disconnect_is_a_clear_failure(sim_process):
    sim = sim_process("disconnect=300")
    with open_transport(f"serial:{sim.path}", None, baud=3_000_000) as t:
        res = deliver_wavesample(t, WAVE, half="lower", number=1, ack_margin_s=0.5)
    assert not res.ok and "link lost" in res.error
    assert sim.stop() == 0
    assert sim.read_state()["disconnected"] is True


def test_sim_cli_rejects_bad_fault():
    r = subprocess.run(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--fault", "gremlins"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "gremlins" in r.stderr and r.stdout == ""


# ------------------------------------------------------------------ mido ports
class _SimOutput(mido.ports.BaseOutput):
    """A mido output port wired to a simulated Mirage; its replies land in ``inport``."""

    def __init__(self, name, sim, inport):
        self.sim = sim
        self.inport = inport
        super().__init__(name)

    def _send(self, msg):
        for reply in self.sim.feed(bytes(msg.bin())):
            self.inport._parser.feed(reply)  # mido's own parser turns them into messages


class _SimInput(mido.ports.BaseInput):
    pass


class FakeBackend:
    """The slice of ``mido.Backend`` that MidoTransport uses, with one 'Mirage' port pair."""

    def __init__(self, sim, names=("Midi Through:0", "UM-ONE MIDI 1 20:0")):
        self.sim = sim
        self.names = list(names)

    def get_output_names(self):
        return self.names

    def get_input_names(self):
        return self.names

    def open_input(self, name):
        if not hasattr(self, "inport"):
            self.inport = _SimInput(name)
        return self.inport

    def open_output(self, name):
        return _SimOutput(name, self.sim, self.open_input(name))


def test_mido_port_delivery_with_verify():
    sim = SimulatedMirage()
    be = FakeBackend(sim)
    with MidoTransport("um-one", backend=be) as t:
        assert t.name == "midi:UM-ONE MIDI 1 20:0"
        res = deliver_wavesample(t, WAVE, half="lower", number=3, verify=True, ack_margin_s=1.0)
    assert res.ok and res.verified
    assert sim.wavesample_data("lower", 3) == WAVE


def test_mido_port_fault_nak_then_ack():
    sim = SimulatedMirage(Faults.parse(["nak=1", "noise"]))
    with MidoTransport("UM-ONE", backend=FakeBackend(sim)) as t:
        res = deliver_wavesample(
            t, WAVE, half="upper", number=1, verify=True, ack_margin_s=1.0, backoff_s=0.01
        )
    assert res.ok and res.verified and res.tries == 2 and res.naks == 1


def test_mido_port_name_matching():
    names = ["Midi Through:0", "UM-ONE:0", "UM-ONE:1"]
    assert find_port_name(names, "Through", "output") == "Midi Through:0"
    assert find_port_name(names, "UM-ONE:1", "output") == "UM-ONE:1"
    with pytest.raises(TransportError, match="several"):
        find_port_name(names, "um-one", "output")
    with pytest.raises(TransportError, match="no port name"):
        find_port_name(names, "mirage", "output")


def test_real_rtmidi_port_or_clear_error():
    """With an ALSA sequencer, a virtual rtmidi port pair reaches the sim; without one, a clear
    error."""
    if not os.path.exists("/dev/snd/seq"):
        with pytest.raises(TransportError, match="/dev/snd/seq"):
            open_transport("midi:anything", None)
        pytest.skip("no ALSA sequencer here (/dev/snd/seq missing): rtmidi ports cannot be opened")
    with pytest.raises(TransportError, match="no port name contains"):
        open_transport("midi:no-such-port-name-xyz", None)
