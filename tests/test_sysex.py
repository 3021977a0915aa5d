"""Mirage SysEx codec (FORMAT.md §4): byte positions, round trips, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miragen.errors import FormatError
from miragen.mirage import sysex as sx

pages_data = st.integers(1, 8).flatmap(lambda p: st.binary(min_size=256 * p, max_size=256 * p))


# ----------------------------------------------------------------- exact byte layouts


def test_short_messages_exact_bytes():
    assert sx.encode_config_request() == bytes.fromhex("F00F0100F7")
    assert sx.encode_program_request(False) == bytes.fromhex("F00F0103F7")
    assert sx.encode_program_request(True) == bytes.fromhex("F00F0113F7")
    assert sx.encode_wavesample_request() == bytes.fromhex("F00F0104F7")
    assert sx.encode_ack() == bytes.fromhex("F00F0109F7")
    assert sx.encode_nak() == bytes.fromhex("F00F010AF7")


def test_wavesample_dump_layout_by_hand():
    data = bytes(range(1, 256)) + b"\x80"  # one page
    msg = sx.encode_wavesample_dump(data)
    assert len(msg) == 8 + 512
    assert msg[:4] == bytes([0xF0, 0x0F, 0x01, 0x06])
    assert msg[4:6] == bytes([0x01, 0x00])  # page count 1, low nybble first
    assert msg[6:8] == bytes([0x01, 0x00])  # byte 0x01 → 1, 0
    assert msg[8:10] == bytes([0x02, 0x00])
    assert msg[6 + 2 * 0xAB - 2 : 6 + 2 * 0xAB] == bytes([0x0B, 0x0A])  # byte 0xAB → B, A
    assert msg[-3:-2] == bytes([0x08]) and msg[-4] == 0x00  # last byte 0x80 → 0, 8
    want = (1 + 0 + sum((b & 15) + (b >> 4) for b in data)) % 128
    assert msg[-2] == want and msg[-1] == 0xF7


def test_wavesample_dump_page_count_high_nybble():
    msg = sx.encode_wavesample_dump(b"\x80" * 256 * 18)
    assert msg[4:6] == bytes([0x02, 0x01])  # 18 = 0x12
    assert len(msg) == 8 + 512 * 18


@pytest.mark.parametrize("pages,total", [(16, 8200), (128, 65544)])
def test_wire_table(pages, total):
    msg = sx.encode_wavesample_dump(b"\x40" * 256 * pages)
    assert len(msg) == total
    assert abs(sx.wire_seconds(total) - total / 3125) < 1e-9


def test_program_dump_length_and_upper_flag():
    block = bytes(i % 256 for i in range(625))
    lo = sx.encode_program_dump(block, upper=False)
    up = sx.encode_program_dump(block, upper=True)
    assert len(lo) == 1255 and lo[3] == 0x05 and up[3] == 0x15
    m = sx.decode(up)
    assert m.kind == "program_dump" and m.fields["half"] == "upper" and m.data == block
    assert m.fields["revision"] == 0
    assert len(m.fields["wavesamples"]) == 8 and len(m.fields["programs"]) == 4


def test_keys_and_select():
    assert sx.encode_keys(["param", "2", "6"]) == bytes.fromhex("F00F01010C02067FF7")
    assert sx.select_wavesample_keys("lower", 3) == [0x15, 3]
    assert sx.select_wavesample_keys("upper", 8) == [0x14, 8]
    m = sx.decode(sx.encode_keys(sx.select_wavesample_keys("lower", 1)))
    assert m.kind == "keys" and m.fields["codes"] == [0x15, 1]
    assert m.fields["keys"] == ["play-seq", "1"]
    for bad in (0, 9):
        with pytest.raises(sx.SysexError):
            sx.select_wavesample_keys("lower", bad)
    with pytest.raises(sx.SysexError):
        sx.encode_keys([])
    with pytest.raises(sx.SysexError):
        sx.encode_keys([1, 2, 3, 4, 5, 6])
    with pytest.raises(sx.SysexError, match="unknown key"):
        sx.encode_keys(["banana"])
    assert len(sx.encode_keys([1])) == 7 and len(sx.encode_keys([1] * 5)) == 11


def test_every_command_round_trips():
    msgs = {
        "config_request": sx.encode_config_request(),
        "keys": sx.encode_keys([0x0C, 7, 3]),
        "config_dump": sx.encode_config_dump(bytes(range(29))),
        "program_request": sx.encode_program_request(True),
        "wavesample_request": sx.encode_wavesample_request(),
        "program_dump": sx.encode_program_dump(bytes(625), False),
        "wavesample_dump": sx.encode_wavesample_dump(b"\x81" * 512),
        "program_status": sx.encode_program_status(True, 3),
        "wavesample_status": sx.encode_wavesample_status(False, 7),
        "ack": sx.encode_ack(),
        "nak": sx.encode_nak(),
        "absolute_request": sx.encode_absolute_request(0x1234, 0x2345, upper=True),
        "absolute_dump": sx.encode_absolute_dump(0x0100, b"\x01\xff\x80", upper=False),
        "program_parameter": sx.encode_program_parameter(True, 2, 40, 200),
        "wavesample_parameter": sx.encode_wavesample_parameter(False, 5, 60, 17),
        "wavesample_function": sx.encode_wavesample_function(
            4, 0x100, 0x1FF, 3, 4, 0x8000, upper=True, dest_upper=True
        ),
    }
    lengths = {
        "config_request": 5,
        "config_dump": 63,
        "program_request": 5,
        "wavesample_request": 5,
        "program_dump": 1255,
        "wavesample_dump": 8 + 1024,
        "program_status": 6,
        "wavesample_status": 6,
        "ack": 5,
        "nak": 5,
        "absolute_request": 13,
        "absolute_dump": 14 + 6,
        "program_parameter": 9,
        "wavesample_parameter": 9,
        "wavesample_function": 22,
    }
    cmds = set()
    for kind, msg in msgs.items():
        m = sx.decode(msg)
        assert m.kind == kind
        cmds.add(m.cmd & 0x0F)
        if kind in lengths:
            assert len(msg) == lengths[kind], kind
    assert cmds == set(range(16))
    assert sx.decode(msgs["config_dump"]).data == bytes(range(29))
    assert sx.decode(msgs["config_dump"]).fields["config"]["master_tune_21"] == 1
    ar = sx.decode(msgs["absolute_request"]).fields
    assert ar == {"half": "upper", "start": 0x1234, "end": 0x2345}
    assert msgs["absolute_request"][4:8] == bytes([0x14, 0x03, 0x02, 0x01])
    ad = sx.decode(msgs["absolute_dump"])
    assert ad.data == b"\x01\xff\x80" and ad.fields["start"] == 0x100 and ad.fields["end"] == 0x103
    pp = sx.decode(msgs["program_parameter"]).fields
    assert pp == {"half": "upper", "number": 2, "parameter": 40, "value": 200}
    assert msgs["program_parameter"][4:8] == bytes([0x12, 40, 200 & 15, 200 >> 4])
    fn = sx.decode(msgs["wavesample_function"]).fields
    assert fn["function_name"] == "reverse" and fn["half"] == "upper" and fn["dest_half"] == "upper"
    assert fn["dest_start"] == 0x8000 and fn["src_end"] == 0x1FF and fn["scale_end"] == 4
    st_ = sx.decode(msgs["program_status"]).fields
    assert st_["half"] == "upper" and st_["number"] == 3


# ----------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(pages_data)
def test_wavesample_dump_round_trip(data):
    msg = sx.encode_wavesample_dump(data)
    assert all(b < 0x80 for b in msg[1:-1])
    m = sx.decode(msg)
    assert m.kind == "wavesample_dump" and m.data == data and m.fields["pages"] == len(data) // 256


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_nybble_round_trip(data):
    nyb = sx.nybblize(data)
    assert len(nyb) == 2 * len(data) and all(b < 16 for b in nyb)
    assert sx.denybblize(nyb) == data


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=625, max_size=625), st.booleans())
def test_program_dump_round_trip(block, upper):
    m = sx.decode(sx.encode_program_dump(block, upper))
    assert m.data == block and m.fields["half"] == ("upper" if upper else "lower")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 0xFF00), st.binary(max_size=200), st.booleans())
def test_absolute_dump_round_trip(start, data, upper):
    m = sx.decode(sx.encode_absolute_dump(start, data, upper))
    assert (
        m.data == data
        and m.fields["start"] == start
        and m.fields["half"] == ("upper" if upper else "lower")
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(sx.KEY_NAMES)), min_size=1, max_size=5))
def test_keys_round_trip(codes):
    assert sx.decode(sx.encode_keys(codes)).fields["codes"] == codes


@settings(max_examples=40, deadline=None)
@given(st.booleans(), st.integers(0, 15), st.integers(0, 127), st.integers(0, 255))
def test_parameter_round_trip(upper, number, parameter, value):
    for enc, kind in (
        (sx.encode_program_parameter, "program_parameter"),
        (sx.encode_wavesample_parameter, "wavesample_parameter"),
    ):
        m = sx.decode(enc(upper, number, parameter, value))
        assert m.kind == kind
        assert (m.fields["number"], m.fields["parameter"], m.fields["value"]) == (
            number,
            parameter,
            value,
        )


@settings(max_examples=40, deadline=None)
@given(st.lists(pages_data, min_size=1, max_size=3))
def test_split_messages_round_trip(datas):
    msgs = [sx.encode_wavesample_dump(d) for d in datas] + [sx.encode_ack()]
    assert sx.split_messages(b"".join(msgs)) == msgs
    decoded = sx.decode_stream(b"".join(msgs))
    assert [m.data for m in decoded[:-1]] == datas


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_decode_never_crashes_on_noise(noise):
    """Any bytes: either a message or a SysexError, never another exception."""
    for candidate in (noise, b"\xf0\x0f\x01" + noise + b"\xf7"):
        try:
            sx.decode(candidate)
        except sx.SysexError:
            pass
        try:
            sx.decode_stream(candidate)
        except sx.SysexError:
            pass


# ----------------------------------------------------------------- malformed input


def _dump():
    return bytearray(sx.encode_wavesample_dump(bytes(range(1, 256)) * 2 + b"\x80\x80"))


def test_bad_checksum_names_offset():
    msg = _dump()
    msg[-2] ^= 0x01
    with pytest.raises(sx.SysexError, match="checksum") as ei:
        sx.decode(bytes(msg))
    assert ei.value.offset == len(msg) - 2
    assert isinstance(ei.value, FormatError)


def test_data_byte_high_bit():
    msg = _dump()
    msg[100] = 0x85
    with pytest.raises(sx.SysexError, match="0x85") as ei:
        sx.decode(bytes(msg))
    assert ei.value.offset == 100


def test_nybble_out_of_range():
    msg = _dump()
    msg[100] = 0x10
    with pytest.raises(sx.SysexError, match="not a nybble") as ei:
        sx.decode(bytes(msg))
    assert ei.value.offset == 100


def test_missing_f7_and_truncation():
    msg = bytes(_dump())
    with pytest.raises(sx.SysexError, match="F7"):
        sx.decode(msg[:-1])
    with pytest.raises(sx.SysexError, match="no F7"):
        sx.split_messages(msg[:-1])
    with pytest.raises(sx.SysexError, match="expected"):
        sx.decode(msg[:300] + b"\xf7")


def test_wrong_manufacturer_and_model():
    msg = bytearray(sx.encode_ack())
    msg[1] = 0x41
    with pytest.raises(sx.SysexError, match="manufacturer") as ei:
        sx.decode(bytes(msg))
    assert ei.value.offset == 1
    msg = bytearray(sx.encode_ack())
    msg[2] = 0x02
    with pytest.raises(sx.SysexError, match="model"):
        sx.decode(bytes(msg))


def test_wrong_lengths_and_unknown_command():
    with pytest.raises(sx.SysexError, match="expected 5"):
        sx.decode(bytes.fromhex("F00F010900F7"))
    with pytest.raises(sx.SysexError, match="not a Mirage command"):
        sx.decode(bytes.fromhex("F00F0120F7"))
    with pytest.raises(sx.SysexError, match="expected 1255"):
        sx.decode(sx.encode_program_dump(bytes(625), False)[:-3] + b"\xf7")
    with pytest.raises(sx.SysexError):
        sx.decode(bytes.fromhex("F00F01017FF7"))  # no key codes


def test_stream_garbage_between_messages():
    stream = sx.encode_ack() + b"\x00" + sx.encode_nak()
    with pytest.raises(sx.SysexError, match="outside a message") as ei:
        sx.split_messages(stream)
    assert ei.value.offset == 5


def test_encoder_limits():
    with pytest.raises(sx.SysexError, match="255"):
        sx.encode_wavesample_dump(b"\x80" * 256 * 256)
    assert sx.decode(sx.encode_wavesample_dump(b"\x80" * 256 * 255)).fields["pages"] == 255
    with pytest.raises(sx.SysexError, match="whole pages"):
        sx.encode_wavesample_dump(b"\x80" * 300)
    with pytest.raises(sx.SysexError, match="empty"):
        sx.encode_wavesample_dump(b"")
    with pytest.raises(sx.SysexError, match="625"):
        sx.encode_program_dump(bytes(624), False)
    with pytest.raises(sx.SysexError, match="29"):
        sx.encode_config_dump(bytes(28))


def test_page_count_zero_is_uncertain_256():
    data = b"\x80" * 65536
    body = sx.nybblize(data)
    csum = sum(body) % 128
    msg = bytes([0xF0, 0x0F, 0x01, 0x06, 0, 0]) + body + bytes([csum, 0xF7])
    m = sx.decode(msg)
    assert m.fields["pages"] == 256 and m.fields["page_count_field"] == 0 and m.data == data
    with pytest.raises(sx.SysexError, match="page count is 0"):
        sx.decode(bytes([0xF0, 0x0F, 0x01, 0x06, 0, 0]) + body[:512] + bytes([0, 0xF7]))


def test_mido_bridge():
    msg = sx.encode_wavesample_dump(b"\x90" * 256)
    m = sx.to_mido(msg)
    assert m.type == "sysex"
    assert sx.from_mido(m) == msg
