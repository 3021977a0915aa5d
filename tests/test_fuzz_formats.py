"""Fuzzing the Mirage format parsers: disk images, SysEx (``.syx``) and the MIDI stream splitter.

Each input ends in a result that keeps its promises or in one
:class:`~miragen.errors.MiragenError` (``FormatError``/``SysexError``) — never another
exception type, never a hang, and for the stream splitter never more memory than its bounds.
Derandomized, no example database: CI runs the same examples every time.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from miragen.errors import MiragenError
from miragen.mirage import disk
from miragen.mirage import params as P
from miragen.mirage import sysex as sx
from miragen.transport.base import MidiStreamParser

N = int(os.environ.get("MIRAGEN_FUZZ_EXAMPLES", "400"))


def fuzz(n: int = N) -> settings:
    return settings(
        max_examples=n,
        derandomize=not os.environ.get("MIRAGEN_FUZZ_RANDOM"),
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


EXAMPLE_SECONDS = 10.0
TEMPLATE = disk.synthetic_template()


def _timed(fn, *args):
    t0 = time.monotonic()
    try:
        return fn(*args)
    finally:
        elapsed = time.monotonic() - t0
        assert elapsed < EXAMPLE_SECONDS, f"{fn.__name__} took {elapsed:.1f} s"


# --------------------------------------------------------------------------- disk images

PARAM_REGIONS = [(disk.param_offset(s), P.BLOCK_SIZE) for s in disk.SOUNDS]


@st.composite
def mutated_image(draw) -> bytes:
    img = bytearray(TEMPLATE)
    for _ in range(draw(st.integers(1, 24))):
        if draw(st.integers(0, 3)):
            off, n = draw(st.sampled_from(PARAM_REGIONS))  # control and program blocks
            pos = off + draw(st.integers(0, n - 1))
        else:
            pos = draw(st.integers(0, disk.SIZE - 1))
        chunk = draw(st.binary(min_size=1, max_size=24))
        img[pos : pos + len(chunk)] = chunk
        del img[disk.SIZE :]
    if draw(st.integers(0, 9)) == 0:  # size off by a little, or an EDE header
        how = draw(st.sampled_from(["short", "long", "ede"]))
        if how == "short":
            del img[-draw(st.integers(1, 5632)) :]
        elif how == "long":
            img += draw(st.binary(min_size=1, max_size=64))
        else:
            img[:2] = b"\r\n"
    return bytes(img)


def _check_disk(image: bytes) -> str:
    try:
        d = disk.parse(image)
        info = d.info()
        json.dumps(info)  # the CLI prints it
        samples = disk.training_samples(image, "fz")
    except MiragenError as exc:
        assert str(exc).strip()
        return "error"
    assert len(image) == disk.SIZE
    assert set(info["sounds"]) == set(disk.SOUNDS)
    for name, data in samples:
        assert name.startswith("fz-")
        assert 0 < len(data) <= disk.HALF and len(data) % disk.PAGE == 0
    return "ok"


@fuzz()
@given(
    image=mutated_image(),
    sound=st.sampled_from(disk.SOUNDS),
    number=st.integers(1, 8),
    pages=st.integers(1, 40),
)
def test_mutated_disk_images_parse_or_fail_clearly(image, sound, number, pages):
    outcome = _timed(_check_disk, image)
    # writing into a damaged template either works inside the wave area or is refused
    data = bytes([0x81]) * (pages * disk.PAGE)
    try:
        new, _report = disk.write_wavesample(image, sound, number, data)
    except MiragenError:
        return
    assert outcome == "ok"
    assert len(new) == disk.SIZE
    for off, n in disk.writable_ranges():  # only wave areas and program blocks may change
        new = new[:off] + image[off : off + n] + new[off + n :]
    assert new == image


@fuzz(60)
@given(size=st.integers(0, disk.SIZE + 4096), fill=st.integers(0, 255))
def test_any_size_but_the_right_one_is_refused(size, fill):
    image = bytes([fill]) * size
    if size == disk.SIZE and image[:2] != b"\r\n":
        _check_disk(image)
    else:
        with pytest.raises(MiragenError):
            disk.parse(image)


# --------------------------------------------------------------------------- SysEx

VALID_MESSAGES = [
    sx.encode_config_request(),
    sx.encode_wavesample_request(),
    sx.encode_program_request(True),
    sx.encode_keys(["1", "2"]),
    sx.encode_ack(),
    sx.encode_nak(),
    sx.encode_wavesample_dump(bytes(range(1, 256)) + b"\x80"),
    sx.encode_wavesample_dump(b"\x80" * 512),
    sx.encode_program_dump(
        bytes(range(256)) * (sx.PROGRAM_BLOCK_SIZE // 256) + bytes(sx.PROGRAM_BLOCK_SIZE % 256),
        False,
    ),
    sx.encode_config_dump(bytes(range(sx.CONFIG_SIZE))),
    sx.encode_absolute_request(0, 255, True),
    sx.encode_absolute_dump(256, bytes(range(1, 200)), False),
    sx.encode_program_parameter(True, 3, 40, 200),
    sx.encode_wavesample_parameter(False, 2, 60, 17),
    sx.encode_wavesample_status(True, 4),
]


@st.composite
def mutated_sysex(draw) -> bytes:
    msgs = draw(st.lists(st.sampled_from(VALID_MESSAGES), min_size=1, max_size=3))
    data = bytearray(b"".join(msgs))
    for _ in range(draw(st.integers(0, 4))):
        n = len(data)
        if n == 0:
            break
        pos = draw(st.one_of(st.integers(0, min(n, 16) - 1), st.integers(0, n - 1)))
        op = draw(st.sampled_from(["byte", "flip", "truncate", "insert", "delete"]))
        if op == "byte":
            data[pos] = draw(
                st.sampled_from([0x00, 0x0F, 0x10, 0x7F, 0x80, 0xF0, 0xF7, 0xFF])
                | st.integers(0, 255)
            )
        elif op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 32))]
    return bytes(data)


def _check_syx(stream: bytes) -> None:
    try:
        parts = sx.split_messages(stream)
    except MiragenError as exc:
        assert str(exc).strip()
        parts = None
    if parts is not None:
        assert b"".join(parts) == stream
        for m in parts:
            assert m[0] == 0xF0 and m[-1] == 0xF7
    try:
        decoded = sx.decode_stream(stream)
    except MiragenError as exc:
        assert str(exc).strip()
        offset = getattr(exc, "offset", None)
        assert offset is None or 0 <= offset <= max(len(stream) - 1, 0), (offset, len(stream))
        return
    assert parts is not None and len(decoded) == len(parts)
    for m in decoded:
        json.dumps(m.to_dict())  # the CLI prints it
        if m.data is not None:
            assert isinstance(m.data, bytes)


@fuzz()
@given(stream=mutated_sysex())
def test_mutated_sysex_decodes_or_fails_with_an_offset(stream):
    _timed(_check_syx, stream)
    for part in (stream, stream[:5], stream[-8:]):
        try:
            sx.decode(part)
        except MiragenError:
            pass


@fuzz()
@given(stream=st.binary(max_size=600))
def test_random_bytes_as_syx(stream):
    _timed(_check_syx, stream)


def test_huge_syx_is_linear():
    """A 4 MB .syx (one giant message, then many small ones) is split in seconds."""
    giant = b"\xf0\x0f\x01\x0e" + b"\x01" * (4 * 2**20) + b"\xf7"
    t0 = time.monotonic()
    with pytest.raises(MiragenError):
        sx.decode_stream(giant)
    many = sx.encode_ack() * 200_000
    assert len(sx.split_messages(many)) == 200_000
    assert time.monotonic() - t0 < 60


# --------------------------------------------------------------------------- MIDI stream splitter


@st.composite
def midi_chunks(draw) -> list[bytes]:
    pieces = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=64),
                st.sampled_from(VALID_MESSAGES),
                st.sampled_from(
                    [
                        b"\x90\x3c\x40",
                        b"\xc0\x05",
                        b"\xb0\x07\x7f",
                        b"\x3c\x00",
                        b"\xf8",
                        b"\xfe",
                        b"\xf2\x01\x02",
                        b"\xf6",
                    ]
                ),
                st.builds(
                    lambda n: b"\xf0" + b"\x01" * n, st.integers(0, 3000)
                ),  # long, unterminated
                st.just(b"\xf7"),
            ),
            max_size=40,
        )
    )
    stream = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    out, prev = [], 0
    for c in cuts + [len(stream)]:
        out.append(stream[prev:c])
        prev = c
    return out


@fuzz()
@given(
    chunks=midi_chunks(),
    max_message=st.sampled_from([16, 300, 4096]),
    max_queued=st.sampled_from([1, 4, 64]),
)
def test_midi_stream_parser_stays_bounded(chunks, max_message, max_queued):
    p = MidiStreamParser(max_message_bytes=max_message, max_queued=max_queued)
    t0 = time.monotonic()
    for c in chunks:
        p.feed(c)
        assert len(p) <= max_queued
        assert p._sysex is None or len(p._sysex) <= max_message
        assert len(p._partial) <= 3
    assert time.monotonic() - t0 < EXAMPLE_SECONDS
    while (m := p.pop()) is not None:
        if m[0] == 0xF0:
            assert m[-1] == 0xF7 and len(m) <= max_message
            assert all(b < 0x80 for b in m[1:-1])
        else:
            assert 0x80 <= m[0] < 0xF8 and m[0] != 0xF7
            assert all(b < 0x80 for b in m[1:])
            assert len(m) <= 3


def test_midi_stream_parser_flood_is_bounded():
    """16 MB of garbage, with a never-ending SysEx in it: memory stays at the bounds."""
    import random

    rng = random.Random(7)
    p = MidiStreamParser(max_message_bytes=4096, max_queued=64)
    garbage = bytes(rng.randrange(256) for _ in range(65536))
    endless = b"\xf0" + b"\x11" * 65535
    t0 = time.monotonic()
    for i in range(256):
        p.feed(endless if i % 2 else garbage)
        assert len(p) <= 64
        assert p._sysex is None or len(p._sysex) <= 4096
    assert time.monotonic() - t0 < 60
    assert p.oversize >= 1
