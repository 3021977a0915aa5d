"""Transports: the bounded MIDI parser, wall-clock pacing, serial (loop:// and a pty), raw
devices, mido ports, open_transport — each against the simulated Mirage."""

from __future__ import annotations

import os
import threading
import time
import tty

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miragen.mirage import sysex as S
from miragen.transport import TransportError, open_transport
from miragen.transport.base import MIDI_BYTES_PER_S, MidiStreamParser, paced_write
from miragen.transport.deliver import deliver_wavesample
from miragen.transport.simulated import SimulatedMirage

WAVE = bytes((i % 254) + 1 for i in range(512))  # 2 pages, no 0x00


def _all(parser: MidiStreamParser) -> list[bytes]:
    out = []
    while (m := parser.pop()) is not None:
        out.append(m)
    return out


# ------------------------------------------------------------------ parser
def test_parser_splits_sysex_channel_and_running_status():
    p = MidiStreamParser()
    dump = S.encode_wavesample_dump(WAVE)
    p.feed(
        b"\x90\x3c\x40\x3e\x41"
        + S.encode_ack()
        + b"\xfe"
        + dump[:100]
        + b"\xf8"
        + dump[100:]
        + b"\xc0\x05"
    )
    assert _all(p) == [b"\x90\x3c\x40", b"\x90\x3e\x41", S.encode_ack(), dump, b"\xc0\x05"]


def test_parser_drops_oversize_and_aborted_sysex_and_bounds_queue():
    p = MidiStreamParser(max_message_bytes=64, max_queued=4)
    p.feed(b"\xf0" + b"\x01" * 500 + b"\xf7" + S.encode_ack())
    assert _all(p) == [S.encode_ack()] and p.oversize == 1
    p.feed(b"\xf0\x0f\x01\x06\x01\x02" + S.encode_nak())  # F0 cut short by the next F0
    assert _all(p) == [S.encode_nak()] and p.aborted == 1
    for _ in range(10):
        p.feed(S.encode_ack())
    assert len(p) == 4 and p.overflow == 6
    # a flood with no F7 keeps no memory
    p.reset()
    p.feed(b"\xf0" + b"\x11" * 100_000)
    assert p._sysex is None and len(p) == 0


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12), pages=st.integers(1, 3)
)
def test_parser_any_split_gives_same_messages(cuts, pages):
    stream = (
        S.encode_keys([0x15, 3])
        + S.encode_wavesample_dump(bytes([0x81]) * 256 * pages)
        + S.encode_ack()
    )
    p = MidiStreamParser()
    last = 0
    for c in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
        p.feed(stream[last:c])
        last = c
    assert b"".join(_all(p)) == stream


# ------------------------------------------------------------------ pacing
class FakeClock:
    def __init__(self):
        self.t = 0.0

    def clock(self):
        return self.t

    def sleep(self, s):
        self.t += max(0.0, s) + 0.0003  # always oversleeps a little


@pytest.mark.parametrize("chunk,gap", [(1, 0.0), (64, 0.0), (256, 0.010), (1000, 0.0)])
def test_paced_write_never_ahead_of_the_wire(chunk, gap):
    clk = FakeClock()
    writes = []
    data = bytes(10_000)
    spent = paced_write(
        lambda c: writes.append((clk.t, len(c))),
        data,
        rate=MIDI_BYTES_PER_S,
        chunk_size=chunk,
        chunk_gap_s=gap,
        clock=clk.clock,
        sleep=clk.sleep,
    )
    before = 0
    for k, (t, n) in enumerate(writes):
        # every byte before this chunk has left a 31,250-baud wire (plus the gaps so far)
        assert before <= MIDI_BYTES_PER_S * (t - k * gap) + 1e-6
        before += n
    assert before == len(data)
    floor = len(data) / MIDI_BYTES_PER_S + (len(writes) - 1) * gap
    assert spent >= floor
    if gap == 0:
        assert len(data) / spent >= 0.98 * MIDI_BYTES_PER_S  # lateness does not accumulate


def test_paced_write_progress_reports_every_chunk():
    seen = []
    paced_write(
        lambda c: None,
        bytes(1000),
        rate=None,
        chunk_size=300,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]


def test_serial_pacing_real_time_over_a_pty():
    """Bytes written through SerialTransport at 31,250 baud, timestamped on the reading side."""
    from miragen.transport.serial import SerialTransport

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    n = 3200  # ~1.02 s on the wire
    arrivals: list[tuple[float, int]] = []

    def reader():
        got = 0
        while got < n:
            chunk = os.read(master, 4096)
            arrivals.append((time.monotonic(), len(chunk)))
            got += len(chunk)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        with SerialTransport(path, chunk_size=64) as t:
            t.send(bytes(n))
        th.join(5)
    finally:
        os.close(master)
        os.close(slave)
    assert sum(k for _, k in arrivals) == n
    t0 = arrivals[0][0]
    got = 0
    for t, k in arrivals:
        # a UART model: every byte before this arrival has left the wire by now (20 ms of
        # reader wake-up jitter allowed on a loaded machine)
        assert got <= MIDI_BYTES_PER_S * (t - t0 + 0.02)
        got += k
    achieved = (n - arrivals[-1][1]) / (arrivals[-1][0] - t0)
    assert achieved >= 0.98 * MIDI_BYTES_PER_S
    assert achieved <= 1.03 * MIDI_BYTES_PER_S


# ------------------------------------------------------------------ serial loop://
def test_serial_loop_url_frames_messages():
    with open_transport("serial:loop://", {"deliver": {"chunk_size": 7}}) as t:
        t.rate = None  # framing only; pacing is tested above
        msgs = [S.encode_keys([0x14, 2]), S.encode_wavesample_dump(WAVE), S.encode_ack()]
        t.send(b"".join(msgs))
        assert [t.receive_message(1.0) for _ in msgs] == msgs
        assert t.receive_message(0.05) is None


class _LoopSim:
    """A loop:// port with a simulated Mirage on its far side: bytes the host writes reach the
    sim; its replies are written into the loop so the host reads them."""

    def __init__(self, sim):
        self.sim = sim

    def wrap(self, t):
        real_write = t._write

        def write(data):
            for reply in self.sim.feed(data):
                real_write(reply)

        t._write = write
        return t


def test_serial_loop_url_with_simulated_mirage():
    sim = SimulatedMirage()
    t = _LoopSim(sim).wrap(open_transport("serial:loop://", None, baud=3_000_000))
    with t:
        res = deliver_wavesample(t, WAVE, half="upper", number=5, verify=True, ack_margin_s=1.0)
    assert res.ok and res.verified and res.tries == 1
    assert sim.wavesample_data("upper", 5) == WAVE


def test_spy_url_logs_the_traffic(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    log = tmp_path / "spy.txt"
    try:
        with open_transport(f"serial:spy://{os.ttyname(slave)}?file={log}", None) as t:
            t.send(S.encode_ack())
            os.write(master, S.encode_nak())
            assert t.receive_message(1.0) == S.encode_nak()
    finally:
        os.close(master)
        os.close(slave)
    text = log.read_text()
    assert "TX" in text and "F0 0F 01 09 F7" in text
    assert "RX" in text and "0A F7" in text  # the read may come in pieces


# ------------------------------------------------------------------ open_transport errors
@pytest.mark.parametrize("spec", ["", "bogus", "usb:x", "serial:"])
def test_open_transport_refuses_bad_specs(spec):
    with pytest.raises(TransportError):
        open_transport(spec, None)


def test_missing_devices_give_clear_errors(tmp_path):
    with pytest.raises(TransportError, match="cannot open"):
        open_transport(f"serial:{tmp_path}/nope", None)
    with pytest.raises(TransportError, match="raw MIDI device"):
        open_transport(f"raw:{tmp_path}/midiC9D9", None)


def test_every_wait_has_a_timeout():
    with open_transport("serial:loop://", None) as t:
        t0 = time.monotonic()
        assert t.receive_message(0.2) is None
        assert 0.15 <= time.monotonic() - t0 < 1.0
