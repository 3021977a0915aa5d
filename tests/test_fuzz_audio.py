"""Fuzzing the one audio reader, ``miragen.audio.io.read_audio``.

Valid WAV/RIFX/RF64/AIFF/AIFC/FLAC files are built with soundfile, then their bytes are
flipped, overwritten with interesting header values, truncated, cut and extended. Whatever
comes in, the reader ends in a decoded ``Audio`` that keeps its promises (float32 mono in
[-1, 1], a sane rate) or in exactly one :class:`~miragen.errors.MiragenError` naming the file;
never another exception type, never a hang, never an allocation sized by a lying header.

Runs derandomized (fixed examples, no example database) so CI is reproducible.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from miragen.audio.io import MAX_RATE, read_audio
from miragen.errors import MiragenError

FUZZ = settings(
    max_examples=int(os.environ.get("MIRAGEN_FUZZ_EXAMPLES", "800")),
    derandomize=not os.environ.get("MIRAGEN_FUZZ_RANDOM"),
    database=None,
    deadline=None,  # wall time is checked per example below, with a margin for a loaded CI box
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLE_SECONDS = 10.0  # a parse of a few-KB file that takes longer than this is a hang
PEAK_BYTES = 64 * 2**20  # Python/numpy allocations per example (files are a few KB)
MAX_FILE_BYTES = 1 * 2**20

INTERESTING_32 = [
    0,
    1,
    2,
    3,
    7,
    8,
    16,
    255,
    256,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
]
INTERESTING_16 = [
    0,
    1,
    2,
    3,
    4,
    6,
    8,
    12,
    16,
    24,
    32,
    33,
    64,
    65,
    255,
    256,
    0x7FFF,
    0x8000,
    0xFFFE,
    0xFFFF,
]


def _sine(n: int, ch: int) -> np.ndarray:
    t = np.arange(n) / 200.0
    x = 0.6 * np.sin(2 * np.pi * 3 * t)
    return np.stack([x * (0.5 + 0.5 * c / max(ch, 1)) for c in range(ch)], axis=1) if ch > 1 else x


def _build(fmt: str, subtype: str, ch: int = 1, n: int = 300, endian: str = "FILE") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _sine(n, ch), 22050, format=fmt, subtype=subtype, endian=endian)
    return buf.getvalue()


SEEDS: list[tuple[str, bytes]] = [
    (".wav", _build("WAV", "PCM_U8")),
    (".wav", _build("WAV", "PCM_16", ch=2)),
    (".wav", _build("WAV", "PCM_24")),
    (".wav", _build("WAV", "FLOAT")),
    (".wav", _build("WAV", "DOUBLE")),
    (".wav", _build("WAV", "IMA_ADPCM")),
    (".wav", _build("WAV", "ULAW")),
    (".wav", _build("WAVEX", "PCM_16", ch=3)),
    (".wav", _build("WAV", "PCM_16", endian="BIG")),  # RIFX
    (".wav", _build("RF64", "PCM_16")),
    (".aiff", _build("AIFF", "PCM_16")),
    (".aiff", _build("AIFF", "PCM_S8", ch=2)),
    (".aiff", _build("AIFF", "FLOAT")),  # AIFC fl32
    (".aiff", _build("AIFF", "ULAW")),  # AIFC ulaw
    (".flac", _build("FLAC", "PCM_16")),
    (".flac", _build("FLAC", "PCM_24", ch=2)),
    (".pcm", bytes((np.arange(600) * 7 % 255 + 1).astype(np.uint8))),
]


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    suffix, seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        # most mutations hit the header fields (bytes 4..95, past the magic), some anywhere
        head = st.integers(min(4, n - 1), max(min(n, 96) - 1, 0)) if n else st.just(0)
        body = st.integers(min(4, n - 1), n - 1) if n else st.just(0)
        pos = draw(st.one_of(head, head, head, body, st.integers(0, max(n - 1, 0))))
        op = draw(
            st.sampled_from(["flip", "set32", "set16", "truncate", "insert", "delete", "byte"])
        )
        if n == 0:
            op = "insert"
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif op == "set32" and pos + 4 <= n:
            v = draw(st.sampled_from(INTERESTING_32) | st.integers(0, 2**32 - 1))
            struct.pack_into(draw(st.sampled_from(["<I", ">I"])), data, pos, v)
        elif op == "set16" and pos + 2 <= n:
            v = draw(st.sampled_from(INTERESTING_16))
            struct.pack_into(draw(st.sampled_from(["<H", ">H"])), data, pos, v)
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
    if draw(st.booleans()) and suffix != ".pcm":
        # the name does not decide the format; sometimes lie about it
        suffix = draw(st.sampled_from([".wav", ".aiff", ".flac", ".bin"]))
    return suffix, bytes(data)


def check_read(path: Path) -> str:
    """Read ``path`` under the fuzzing rules; returns "ok" or "error"."""
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        try:
            a = read_audio(path, max_file_bytes=MAX_FILE_BYTES)
        except MiragenError as exc:
            msg = str(exc)
            assert msg.strip(), "an error with no message"
            assert path.name in msg, f"the error does not name the file: {msg!r}"
            outcome = "error"
        else:
            x = a.samples
            assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 1
            assert len(x) > 0
            assert np.all(np.isfinite(x)) and float(np.max(np.abs(x))) <= 1.0
            assert 1 <= a.rate <= MAX_RATE
            outcome = "ok"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - t0
    assert elapsed < EXAMPLE_SECONDS, f"read_audio took {elapsed:.1f} s"
    assert peak < PEAK_BYTES, (
        f"read_audio allocated {peak / 2**20:.0f} MB for a {path.stat().st_size}-byte file"
    )
    return outcome


def test_seeds_are_valid(tmp_path):
    for i, (suffix, data) in enumerate(SEEDS):
        p = tmp_path / f"seed{i}{suffix}"
        p.write_bytes(data)
        assert check_read(p) == "ok", p


@FUZZ
@given(case=mutated())
def test_mutated_files_end_in_audio_or_one_error(tmp_path_factory, case):
    suffix, data = case
    p = tmp_path_factory.mktemp("fz") / f"fuzzed{suffix}"
    p.write_bytes(data)
    check_read(p)


@FUZZ
@given(
    magic=st.sampled_from([b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b""]),
    body=st.binary(max_size=300),
    suffix=st.sampled_from([".wav", ".aiff", ".flac", ".pcm", ".raw", ".txt"]),
)
def test_random_bytes_behind_a_magic(tmp_path_factory, magic, body, suffix):
    p = tmp_path_factory.mktemp("fz") / f"noise{suffix}"
    p.write_bytes(magic + body)
    check_read(p)


# --------------------------------------------------------------------------- lying headers


def _flac_total(data: bytes, total: int, channels: int | None = None) -> bytes:
    b = bytearray(data)
    f = int.from_bytes(b[18:26], "big")
    f = (f & ~((1 << 36) - 1)) | total
    if channels is not None:
        f = (f & ~(0x7 << 41)) | ((channels - 1) << 41)
    b[18:26] = f.to_bytes(8, "big")
    return bytes(b)


def _set_after(data: bytes, tag: bytes, skip: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    i = b.find(tag)
    assert i >= 0, tag
    struct.pack_into(fmt, b, i + skip, value)
    return bytes(b)


def _lying_headers() -> dict[str, bytes]:
    wav16 = _build("WAV", "PCM_16", n=2000)
    aiff = _build("AIFF", "PCM_16", n=2000)
    flac = _build("FLAC", "PCM_16", n=2000)
    flac8 = _build("FLAC", "PCM_16", ch=8, n=2000)
    ulaw_aiff = _build("AIFF", "ULAW", n=2000)
    rf64 = _build("RF64", "PCM_16", n=2000)
    return {
        "wav_data_2g.wav": _set_after(wav16, b"data", 4, "<I", 0x7FFFFFFF),
        "wav_data_4g.wav": _set_after(wav16, b"data", 4, "<I", 0xFFFFFFFF),
        "wav_rate_huge.wav": _set_after(wav16, b"fmt ", 12, "<I", 0xFFFFFFFF),
        "wav_channels_65535.wav": _set_after(wav16, b"fmt ", 10, "<H", 0xFFFF),
        "rf64_ds64_huge.wav": _set_after(rf64, b"ds64", 16, "<Q", 2**62),
        "aiff_frames_2g.aiff": _set_after(aiff, b"COMM", 10, ">I", 0x7FFFFFFF),
        "aiff_ulaw_frames_4g.aiff": _set_after(ulaw_aiff, b"COMM", 10, ">I", 0xFFFFFFFF),
        "flac_total_2e36.flac": _flac_total(flac, (1 << 36) - 1),
        "flac_total_2e30_8ch.flac": _flac_total(flac8, 1 << 30),
        "flac_total_2e25_8ch.flac": _flac_total(flac8, 1 << 25),
        "flac_total_2e22.flac": _flac_total(flac, 1 << 22),
        "flac_unknown_length.flac": _flac_total(flac, 0),  # legal, but libsndfile cannot stream it
    }


_CHILD = r"""
import json, resource, sys, time, tracemalloc
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from miragen.audio.io import read_audio
from miragen.errors import MiragenError
out = {}
for p in sys.argv[2:]:
    t0 = time.monotonic()
    tracemalloc.start()
    try:
        a = read_audio(p)
        r = "ok %d" % len(a.samples)
    except MiragenError as e:
        r = "error " + str(e)
    except BaseException as e:
        r = "CRASH %s: %s" % (type(e).__name__, e)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out[p] = [r, round(time.monotonic() - t0, 2), round(peak, 1)]
# VmHWM is this process's own peak RSS. ru_maxrss is not: Linux carries it over from the
# forked copy of the parent across exec, so a large pytest process would be counted.
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
out["maxrss_mb"] = hwm / 1024
print(json.dumps(out))
"""


def test_lying_headers_do_not_allocate_what_they_claim(tmp_path):
    """Headers that announce 2^31 frames (or 2^36 FLAC samples) must not be allocated: the
    reader runs in a child process whose address space is capped at 1.5 GB."""
    paths = []
    for name, data in _lying_headers().items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(str(p))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(1536 * 2**20), *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out.pop("maxrss_mb")
    bad = {Path(p).name: r for p, (r, _t, _m) in out.items() if r.startswith("CRASH")}
    assert not bad, bad
    slow = {Path(p).name: t for p, (_r, t, _m) in out.items() if t > EXAMPLE_SECONDS}
    assert not slow, slow
    big = {Path(p).name: m for p, (_r, _t, m) in out.items() if m > 64}
    assert not big, f"MB allocated (tracemalloc peak) per file: {big}"
    for p, (r, _t, _m) in out.items():
        assert r.startswith("error"), f"{Path(p).name} was accepted although its header lies: {r}"
        assert Path(p).name in r
    assert rss < 400, f"peak RSS {rss:.0f} MB while reading a few KB of lying headers"


def test_decompression_bomb_is_refused(tmp_path):
    """A small FLAC that decodes to more samples than the size limit allows is refused."""
    p = tmp_path / "bomb.flac"
    sf.write(p, np.zeros(600_000, dtype=np.float32), 44100, format="FLAC", subtype="PCM_16")
    assert p.stat().st_size < 100_000
    with pytest.raises(MiragenError, match="samples"):
        read_audio(p, max_file_bytes=200_000)
    assert len(read_audio(p).samples) == 600_000
