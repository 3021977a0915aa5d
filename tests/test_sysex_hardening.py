"""Issue 14 items 13-14: .syx files as they come from the wild (other makers' SysEx, MIDI
real-time bytes anywhere), streamed decoding, and the sysex command's inputs and outputs."""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from miragen.cli import main
from miragen.commands import sysex as cmd
from miragen.mirage import disk as D
from miragen.mirage import sysex as sx

YAMAHA = bytes.fromhex("F0 43 10 01 02 03 F7")
UNIVERSAL = bytes.fromhex("F0 7E 00 06 01 F7")
ESQ1 = bytes.fromhex("F0 0F 02 00 01 F7")  # Ensoniq, another instrument


def _dump(pages: int = 1, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    return sx.encode_wavesample_dump(bytes(rng.randrange(1, 256) for _ in range(256 * pages)))


def _mixed() -> tuple[bytes, list[bytes]]:
    """A stream of three Mirage messages among other makers' messages and real-time bytes,
    some inside the Mirage messages; returns (stream, the Mirage messages as encoded)."""
    d = _dump(2, seed=1)
    p = sx.encode_wavesample_parameter(True, 3, 40, 200)
    a = sx.encode_ack()
    stream = (
        b"\xf8"  # clock before anything
        + YAMAHA
        + d[:3]
        + b"\xfe"
        + d[3:100]
        + b"\xf8\xf8"
        + d[100:]  # real-time inside a dump
        + b"\xfe"
        + UNIVERSAL
        + p
        + b"\xf0\x43\x10\xf8\x01\xf7"  # real-time inside another maker's message
        + ESQ1
        + a
    )
    return stream, [d, p, a]


def _decoded(msgs: list[bytes]) -> list[dict]:
    return [sx.decode(m).to_dict() for m in msgs]


def _strip_offsets(objs: list[dict]) -> list[dict]:
    return [{k: v for k, v in o.items() if k != "offset"} for o in objs]


# ----------------------------------------------------------------- library: the scanner


def test_mixed_stream_decodes_and_counts_what_was_skipped():
    stream, msgs = _mixed()
    stats = sx.ScanStats()
    got = sx.decode_lenient(stream, stats)
    assert _strip_offsets([m.to_dict() for m in got]) == _decoded(msgs)
    assert stats.messages == 3
    assert stats.skipped_messages == 4  # Yamaha twice, universal, the other Ensoniq
    assert stats.realtime_bytes == 6
    other = len(YAMAHA) + len(UNIVERSAL) + 5 + len(ESQ1)
    assert stats.other_message_bytes == other
    assert stats.skipped_bytes == other + 6 and stats.stray_bytes == 0
    assert stats.bytes == len(stream) == sum(map(len, msgs)) + stats.skipped_bytes
    assert got[0].offset == 1 + len(YAMAHA)
    assert "4 SysEx messages" in stats.summary() and "6 MIDI real-time bytes" in stats.summary()


def test_byte_by_byte_same_as_whole():
    stream, _ = _mixed()
    whole, piecewise = sx.ScanStats(), sx.ScanStats()
    a = [m.to_dict() for m in sx.iter_decode([stream], whole)]
    bytewise = [stream[i : i + 1] for i in range(len(stream))]
    b = [m.to_dict() for m in sx.iter_decode(bytewise, piecewise)]
    assert a == b and whole == piecewise


def test_clean_stream_same_as_strict_decode():
    msgs = [
        _dump(1),
        sx.encode_program_dump(bytes(range(256)) * 2 + bytes(113), True),
        sx.encode_keys(["play-seq", 3]),
        sx.encode_config_request(),
        sx.encode_nak(),
    ]
    stream = b"".join(msgs)
    strict = [m.to_dict() for m in sx.decode_stream(stream)]
    stats = sx.ScanStats()
    assert _strip_offsets([m.to_dict() for m in sx.decode_lenient(stream, stats)]) == strict
    assert stats.skipped_bytes == 0 and stats.summary() is None


def test_stray_bytes_and_cut_messages_are_skipped():
    a = sx.encode_ack()
    # running-status note data, an F0 ending another maker's message early, F0 F7, a status
    # byte ending another one: none of it is the Mirage's
    stream = b"\x90\x3c\x40\x3e" + a + b"\xf0\x43\x01" + a + b"\xf0\xf7" + b"\xf0\x41\x01\x90" + a
    stats = sx.ScanStats()
    assert [m.kind for m in sx.decode_lenient(stream, stats)] == ["ack"] * 3
    assert stats.skipped_messages == 3
    assert stats.stray_bytes == 4 + 1  # the note bytes, the 0x90 that ended the Roland one
    assert stats.bytes == 3 * len(a) + stats.skipped_bytes


def test_realtime_in_the_header_of_a_mirage_message():
    d = _dump(1)
    stream = b"\xf0\xf8\x0f\xfe\x01" + d[3:]
    (m,) = sx.decode_lenient(stream)
    assert m.data == sx.decode(d).data and m.offset == 0


def test_bad_checksum_names_the_offset_in_the_file():
    d = bytearray(_dump(1))
    d[-2] ^= 0x01
    stream = YAMAHA + bytes(d[:10]) + b"\xf8\xf8\xf8" + bytes(d[10:])
    with pytest.raises(sx.SysexError, match="checksum") as ei:
        sx.decode_lenient(stream)
    assert ei.value.offset == len(stream) - 2
    assert stream[ei.value.offset] == d[-2]
    assert "message 1" in str(ei.value)


@pytest.mark.parametrize(
    "tail,needle,at",
    [
        (b"", "no F7", -1),  # truncated by the end of the file
        (b"\xf0\x43\xf7", "F0 inside", 0),  # cut by another message
        (b"\x90\xf7", "0x90", 0),  # a status byte inside
    ],
)
def test_malformed_mirage_messages_are_errors(tail, needle, at):
    d = _dump(1)
    stream = sx.encode_ack() + d[:300] + tail
    with pytest.raises(sx.SysexError, match=needle) as ei:
        sx.decode_lenient(stream)
    want = len(stream) - 1 if at < 0 else len(sx.encode_ack()) + 300
    assert ei.value.offset == want


def test_message_longer_than_any_mirage_message():
    stream = b"\xf0\x0f\x01\x0e" + b"\x01" * (sx.MAX_MESSAGE + 10) + b"\xf7"
    with pytest.raises(sx.SysexError, match="longer than any Mirage message") as ei:
        list(sx.iter_decode([stream[i : i + 4096] for i in range(0, len(stream), 4096)]))
    assert ei.value.offset == sx.MAX_MESSAGE


def test_only_other_makers_is_no_mirage_message(tmp_path, capsys):
    f = tmp_path / "yamaha.syx"
    f.write_bytes(YAMAHA + b"\xf8" + UNIVERSAL)
    assert main(["sysex", "decode", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Mirage message" in err and "2 SysEx messages" in err


junk = st.one_of(
    st.sampled_from([YAMAHA, UNIVERSAL, ESQ1, b"\xf0\xf7", b"\x90\x3c\x40", b"\x00", b"\xc0\x05"]),
    st.binary(max_size=6).map(lambda b: bytes(x & 0x7F for x in b)),  # stray data bytes
)
mirage = st.sampled_from(
    [
        sx.encode_ack(),
        sx.encode_nak(),
        _dump(1, 3),
        sx.encode_keys([1, 2]),
        sx.encode_wavesample_parameter(False, 1, 2, 3),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(junk, mirage), min_size=1, max_size=6),
    st.lists(st.integers(0, 10**6)),
    st.integers(1, 64),
)
def test_interleaved_streams_round_trip(pairs, rt_at, piece):
    """Any interleaving, real-time bytes anywhere, any piece size: the Mirage's messages and
    nothing else, and every byte accounted for."""
    stream = bytearray(b"".join(j + m for j, m in pairs))
    for k in rt_at:
        stream.insert(k % (len(stream) + 1), 0xF8)
    stream = bytes(stream)
    stats = sx.ScanStats()
    got = list(sx.iter_decode([stream[i : i + piece] for i in range(0, len(stream), piece)], stats))
    assert _strip_offsets([m.to_dict() for m in got]) == _decoded([m for _, m in pairs])
    assert stats.realtime_bytes == len(rt_at)
    assert stats.bytes == len(stream) == sum(len(m) for _, m in pairs) + stats.skipped_bytes


# ----------------------------------------------------------------- the CLI


def test_cli_decode_mixed_human_and_json(tmp_path, capsys):
    stream, msgs = _mixed()
    f = tmp_path / "mixed.syx"
    f.write_bytes(stream)
    capsys.readouterr()
    assert main(["sysex", "decode", str(f)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and "wavesample_dump" in out
    notes = [line for line in err.splitlines() if line.startswith("miragen: note:")]
    assert len(notes) == 1 and "skipped" in notes[0] and str(f) in notes[0]
    assert main(["sysex", "decode", str(f), "--json"]) == 0
    objs = json.loads(capsys.readouterr().out)
    kinds = [o["kind"] for o in objs]
    assert kinds == ["wavesample_dump", "wavesample_parameter", "ack", "summary"]
    summary = objs[-1]
    assert summary["ok"] and summary["messages"] == 3
    assert summary["skipped_messages"] == 4
    assert summary["skipped_bytes"] == len(stream) - sum(map(len, msgs))
    assert _strip_offsets(objs[:-1]) == _decoded(msgs)


def test_cli_json_error_after_messages_is_still_one_json_document(tmp_path, capsys):
    d = bytearray(_dump(1))
    d[-2] ^= 0x01
    f = tmp_path / "bad.syx"
    f.write_bytes(sx.encode_ack() + b"\xf8" + bytes(d))
    capsys.readouterr()
    assert main(["sysex", "decode", str(f), "--json"]) == 2
    out, err = capsys.readouterr()
    objs = json.loads(out)
    assert objs[0]["kind"] == "ack" and objs[-1]["kind"] == "error" and not objs[-1]["ok"]
    assert f"at byte {5 + 1 + len(d) - 2}" in objs[-1]["error"]
    assert err.count("\n") == 1 and err.startswith(f"miragen: error: {f}:") and "checksum" in err


def test_cli_human_error_names_file_and_offset(tmp_path, capsys):
    f = tmp_path / "cut.syx"
    f.write_bytes(YAMAHA + _dump(1)[:200])
    assert main(["sysex", "decode", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"miragen: error: {f}: ") and "no F7" in err
    assert f"at byte {len(YAMAHA) + 199}" in err


def test_hex_text_form_streamed_in_pieces(tmp_path):
    stream, _ = _mixed()
    txt = tmp_path / "mixed.txt.syx"
    txt.write_text(stream.hex(" ").upper() + "\n")
    assert b"".join(cmd.open_syx(txt, chunk_size=7)) == stream
    bad = tmp_path / "bad.txt.syx"
    bad.write_text("F0 0F 01 09 F7 zz")
    with pytest.raises(Exception, match="not a hex digit"):
        b"".join(cmd.open_syx(bad, chunk_size=4))


def test_multi_megabyte_stream_same_results(tmp_path, capsys):
    """A 3 MB file read in 1 MB pieces (dumps straddle the pieces), decoded as a stream: the
    same messages as decoding each one alone; and the small-stream result equals the strict,
    whole-file decoder's."""
    rng = random.Random(7)
    msgs = [sx.encode_wavesample_dump(rng.randbytes(255 * 256)) for _ in range(24)]
    stream = b"".join(msgs)
    assert len(stream) > 3_000_000
    f = tmp_path / "big.syx"
    f.write_bytes(stream)
    capsys.readouterr()
    assert main(["sysex", "decode", str(f), "--json"]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert objs[-1]["messages"] == 24 and objs[-1]["bytes"] == len(stream)
    want = _decoded(msgs)
    assert _strip_offsets(objs[:-1]) == want
    assert [o["offset"] for o in objs[:-1]] == [sum(map(len, msgs[:i])) for i in range(24)]
    small = b"".join(msgs[:3])
    assert [m.to_dict() for m in sx.decode_stream(small)] == want[:3]


# ----------------------------------------------------------------- inputs and outputs


def _fifo(tmp_path, name):
    p = tmp_path / name
    os.mkfifo(p)
    return p


@pytest.mark.timeout(10)
def test_fifo_as_syx_is_refused_at_once(tmp_path, capsys):
    f = _fifo(tmp_path, "pipe.syx")
    t0 = time.monotonic()
    assert main(["sysex", "decode", str(f)]) == 2
    assert main(["sysex", "decode", str(f), "--json"]) == 2
    out, err = capsys.readouterr()
    assert "FIFO" in err and json.loads(out)["ok"] is False
    assert main(["deliver", str(f), "--sim"]) == 2
    assert "FIFO" in capsys.readouterr().err
    assert time.monotonic() - t0 < 5


@pytest.mark.timeout(10)
def test_fifo_inputs_of_encode_are_refused(tmp_path, capsys):
    f = _fifo(tmp_path, "pipe.pcm")
    assert main(["sysex", "encode", "wavesample", str(f), "-o", str(tmp_path / "o.syx")]) == 2
    g = _fifo(tmp_path, "pipe.img")
    out = str(tmp_path / "o.syx")
    assert main(["sysex", "encode", "program", str(g), "lower1", "-o", out]) == 2
    assert capsys.readouterr().err.count("FIFO") == 2
    assert not (tmp_path / "o.syx").exists()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("what", ["folder", "missing", "fifo", "input"])
def test_bad_outputs_of_encode(tmp_path, capsys, what):
    pcm = tmp_path / "w.pcm"
    pcm.write_bytes(bytes(range(1, 256)) * 2)
    img = tmp_path / "t.img"
    img.write_bytes(D.synthetic_template())
    before = (pcm.read_bytes(), img.read_bytes())
    outs = {
        "folder": [tmp_path] * 3,
        "missing": [tmp_path / "no" / "o.syx"] * 3,
        "fifo": [_fifo(tmp_path, "out.syx")] * 3,
        "input": [pcm, img, pcm],
    }[what]
    runs = [
        ["sysex", "encode", "wavesample", str(pcm), "-o", str(outs[0])],
        ["sysex", "encode", "program", str(img), "upper1", "-o", str(outs[1])],
        ["sysex", "encode", "keys", "1", "enter", "-o", str(outs[2])],
    ]
    if what == "input":
        runs.pop()  # keys have no input file
    for argv in runs:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("miragen: error: "), err
    assert (pcm.read_bytes(), img.read_bytes()) == before
    assert not (tmp_path / "no").exists()


def test_encode_warning_prefix(tmp_path, capsys):
    pcm = tmp_path / "w.pcm"
    pcm.write_bytes(b"\x00" + bytes(range(1, 256)))  # a 0x00 byte: converted, with a warning
    rc = main(["sysex", "encode", "wavesample", str(pcm), "-o", str(tmp_path / "w.syx")])
    err = capsys.readouterr().err
    assert rc == 0
    for line in err.splitlines():
        assert line.startswith("miragen: "), line


# ----------------------------------------------------------------- deliver X.syx


def test_deliver_syx_with_other_makers(tmp_path, capsys):
    stream, _ = _mixed()
    f = tmp_path / "mixed.syx"
    f.write_bytes(stream)
    capsys.readouterr()
    assert main(["deliver", str(f), "--sim", "--json", "--chunk-gap-ms", "0"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert res["ok"] and res["pages"] == 2
    assert "miragen: note:" in err and "skipped" in err
    assert res["syx_skipped"]["skipped_bytes"] > 0 and res["syx_skipped"]["realtime_bytes"] > 0


def test_deliver_syx_malformed_names_offset(tmp_path, capsys):
    d = bytearray(_dump(1))
    d[-2] ^= 0x01
    f = tmp_path / "bad.syx"
    f.write_bytes(UNIVERSAL + bytes(d))
    assert main(["deliver", str(f), "--sim"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "checksum" in err and f"at byte {len(UNIVERSAL) + len(d) - 2}" in err
