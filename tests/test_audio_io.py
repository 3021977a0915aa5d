"""miragen.audio.io: every accepted format decodes; every bad input is an InputError naming
the file."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import soundfile as sf
from miragen.audio import io as aio
from miragen.audio.io import read_audio, wav_u8_bytes, write_pcm, write_wav_u8
from miragen.errors import InputError

RATE = 44100


def _sine(n=2000, f=441.0, rate=RATE, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / rate)).astype(np.float64)


def _riff(chunks: list[tuple[bytes, bytes]], form=b"WAVE", magic=b"RIFF", size=None) -> bytes:
    body = form
    for cid, payload in chunks:
        body += (
            cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")
        )
    return magic + struct.pack("<I", len(body) if size is None else size) + body


def _fmt(tag=1, ch=1, rate=RATE, bits=16, align=None) -> bytes:
    align = ch * ((bits + 7) // 8) if align is None else align
    return struct.pack("<HHIIHH", tag, ch, rate, rate * align, align, bits)


def _pcm16(x) -> bytes:
    return (np.asarray(x) * 32767).astype("<i2").tobytes()


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    "fmt,subtype",
    [
        ("WAV", "PCM_U8"),
        ("WAV", "PCM_16"),
        ("WAV", "PCM_24"),
        ("WAV", "PCM_32"),
        ("WAV", "FLOAT"),
        ("WAV", "DOUBLE"),
        ("WAVEX", "PCM_24"),
        ("RF64", "PCM_16"),
        ("AIFF", "PCM_16"),
        ("AIFF", "PCM_24"),
        ("AIFF", "FLOAT"),
        ("FLAC", "PCM_16"),
        ("FLAC", "PCM_24"),
    ],
)
def test_formats_decode_to_float_mono(tmp_path, fmt, subtype):
    x = _sine()
    ext = {"WAV": ".wav", "WAVEX": ".wav", "RF64": ".wav", "AIFF": ".aiff", "FLAC": ".flac"}[fmt]
    path = tmp_path / f"t{ext}"
    sf.write(path, x, RATE, format=fmt, subtype=subtype)
    a = read_audio(path)
    assert a.rate == RATE
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert len(a.samples) == len(x)
    tol = 2 / 256 if subtype == "PCM_U8" else 1e-3
    assert np.max(np.abs(a.samples - x)) < tol
    assert a.path == str(path)


def test_big_endian_rifx_wav(tmp_path):
    path = tmp_path / "big.wav"
    sf.write(path, _sine(), RATE, format="WAV", subtype="PCM_16", endian="BIG")
    assert path.read_bytes()[:4] == b"RIFX"
    assert np.max(np.abs(read_audio(path).samples - _sine())) < 1e-3


def test_aifc_is_accepted(tmp_path):
    path = tmp_path / "t.aifc"
    sf.write(path, _sine(), RATE, format="AIFF", subtype="FLOAT")  # float AIFF is written as AIFC
    assert path.read_bytes()[8:12] in (b"AIFC", b"AIFF")
    assert len(read_audio(path).samples) == 2000


def test_channels_are_mixed_to_mono(tmp_path):
    left, right = _sine(amp=0.8), -_sine(amp=0.2)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), RATE, subtype="PCM_24")
    a = read_audio(path)
    assert a.channels == 2
    assert np.allclose(a.samples, (left + right) / 2, atol=1e-4)
    six = np.stack([_sine(f=100.0 * (i + 1), amp=0.1) for i in range(6)], axis=1)
    sf.write(tmp_path / "six.wav", six, RATE)
    assert read_audio(tmp_path / "six.wav").channels == 6


def test_unknown_chunks_are_skipped(tmp_path):
    x = _sine(1000)
    data = _riff(
        [
            (b"JUNK", b"\1" * 27),
            (b"fmt ", _fmt()),
            (b"zzzz", b"hello"),
            (b"data", _pcm16(x)),
            (b"LIST", b"INFOabcd"),
        ]
    )
    path = tmp_path / "chunks.wav"
    path.write_bytes(data)
    assert np.max(np.abs(read_audio(path).samples - x)) < 1e-3


def test_float_wav_over_full_scale_is_scaled_into_range(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, _sine(amp=3.0), RATE, subtype="FLOAT")
    a = read_audio(path)
    assert np.max(np.abs(a.samples)) == pytest.approx(1.0, abs=1e-6)


def test_raw_pcm_is_unsigned_8bit_at_raw_rate_and_accepts_zero_bytes(tmp_path):
    path = tmp_path / "w.pcm"
    path.write_bytes(bytes([0, 1, 128, 255]))
    a = read_audio(path, raw_rate=22050)
    assert a.rate == 22050 and a.format == "raw"
    assert a.samples.tolist() == [-1.0, -127 / 128, 0.0, 127 / 128]
    (tmp_path / "w.raw").write_bytes(b"\x80" * 10)
    assert read_audio(tmp_path / "w.raw").rate == 29411


def test_magic_decides_not_the_name(tmp_path):
    path = tmp_path / "actually_flac.wav"
    sf.write(path, _sine(), RATE, format="FLAC")
    assert read_audio(path).format == "flac"


def test_writers_are_valid_8bit_files(tmp_path):
    data = bytes(range(1, 256)) + b"\x80"
    write_pcm(tmp_path / "a.pcm", data)
    assert (tmp_path / "a.pcm").read_bytes() == data
    write_wav_u8(tmp_path / "a.wav", data, 29411)
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (29411, 1, "PCM_U8", 256)
    back = read_audio(tmp_path / "a.wav")
    assert np.array_equal(
        np.rint(back.samples * 128 + 128).astype(int), np.frombuffer(data, np.uint8)
    )
    odd = wav_u8_bytes(b"\x81" * 3, 8000)
    assert len(odd) % 2 == 0 and sf.info(__import__("io").BytesIO(odd)).frames == 3


# --------------------------------------------------------------------------- real files


def test_real_akwf_files_with_smpl_and_acid_chunks(shared_data):
    files = sorted((shared_data / "akwf").glob("AKWF_*/*.wav"))[:60]
    assert files
    for f in files:
        raw = f.read_bytes()
        assert b"smpl" in raw and b"acid" in raw  # the chunks a reader must skip
        a = read_audio(f)
        assert a.rate == 44100 and len(a.samples) == 600
        assert np.max(np.abs(a.samples)) <= 1.0


def test_real_high_rate_and_24bit_stereo_oneshots(shared_data):
    found = {}
    for f in sorted((shared_data / "oneshots" / "sonic-pi").glob("*.wav")):
        info = sf.info(f)
        if info.samplerate in (96000, 192000):
            found[info.samplerate] = f
        if info.subtype == "PCM_24" and info.channels == 2:
            found["24st"] = f
    assert set(found) == {96000, 192000, "24st"}, found
    for f in found.values():
        a = read_audio(f)
        info = sf.info(f)
        assert a.rate == info.samplerate and len(a.samples) == info.frames
        assert a.channels == info.channels
        assert 0.01 < np.max(np.abs(a.samples)) <= 1.0


# --------------------------------------------------------------------------- bad files


def _good_wav(tmp_path, n=1000) -> bytes:
    return _riff([(b"fmt ", _fmt()), (b"data", _pcm16(_sine(n)))])


BAD_WAVS = {
    "zero_channels": (
        lambda: _riff([(b"fmt ", _fmt(ch=0, align=2)), (b"data", b"\0" * 100)]),
        "0 channels",
    ),
    "absurd_channels": (
        lambda: _riff([(b"fmt ", _fmt(ch=5000, align=10000)), (b"data", b"\0" * 100)]),
        "channels",
    ),
    "zero_rate": (
        lambda: _riff([(b"fmt ", _fmt(rate=0)), (b"data", b"\0" * 100)]),
        "sample rate 0 Hz",
    ),
    "huge_rate": (
        lambda: _riff([(b"fmt ", _fmt(rate=5_000_000)), (b"data", b"\0" * 100)]),
        "out of range",
    ),
    "zero_bits": (
        lambda: _riff([(b"fmt ", _fmt(bits=0, align=2)), (b"data", b"\0" * 100)]),
        "0 bits",
    ),
    "bad_block_align": (
        lambda: _riff([(b"fmt ", _fmt(ch=2, bits=16, align=3)), (b"data", b"\0" * 96)]),
        "block size",
    ),
    "no_fmt": (lambda: _riff([(b"data", b"\0" * 100)]), "'fmt '"),
    "no_data": (lambda: _riff([(b"fmt ", _fmt())]), "no 'data' chunk"),
    "empty_data": (lambda: _riff([(b"fmt ", _fmt()), (b"data", b"")]), "0 samples"),
    "short_fmt": (lambda: _riff([(b"fmt ", b"\1\0\1\0"), (b"data", b"\0" * 10)]), "too short"),
    "not_wave": (lambda: _riff([(b"fmt ", _fmt())], form=b"AVI "), "not WAV audio"),
    "header_only": (lambda: b"RIFF\x24\0\0\0WA", "too short"),
    "text": (lambda: b"hello, this is not audio at all\n" * 4, "not a WAV, AIFF or FLAC"),
}


def _truncated(tmp_path) -> bytes:
    return _good_wav(tmp_path, 4000)[: 44 + 3000]


@pytest.mark.parametrize("name", sorted(BAD_WAVS))
def test_bad_wav_headers(tmp_path, capfd, name):
    make, needle = BAD_WAVS[name]
    path = tmp_path / f"{name}.wav"
    path.write_bytes(make())
    with pytest.raises(InputError) as ei:
        read_audio(path)
    assert ei.value.path == str(path)
    assert needle in ei.value.reason, ei.value.reason
    assert str(path) in str(ei.value)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no stray libsndfile message


def test_frames_larger_than_file(tmp_path):
    """The header announces frames × channels × width beyond the end of the file."""
    raw = bytearray(_good_wav(tmp_path, 1000))
    data_at = raw.index(b"data")
    struct.pack_into("<I", raw, data_at + 4, 0x7FFFFFF0)
    path = tmp_path / "impossible.wav"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="truncated"):
        read_audio(path)


def test_truncated_wav(tmp_path, capfd):
    path = tmp_path / "cut.wav"
    path.write_bytes(_truncated(tmp_path))
    with pytest.raises(
        InputError, match=r"truncated: the header announces 8000 bytes of audio but only 3000"
    ):
        read_audio(path)
    assert capfd.readouterr() == ("", "")


def test_truncated_aiff_and_flac(tmp_path, capfd):
    sf.write(tmp_path / "a.aiff", _sine(4000), RATE, format="AIFF")
    full = (tmp_path / "a.aiff").read_bytes()
    (tmp_path / "cut.aiff").write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_audio(tmp_path / "cut.aiff")
    sf.write(
        tmp_path / "a.flac", np.random.default_rng(1).uniform(-1, 1, 40000), RATE, format="FLAC"
    )
    full = (tmp_path / "a.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="truncated") as ei:
        read_audio(tmp_path / "cut.flac")
    assert "cut.flac" in str(ei.value)
    (tmp_path / "stub.flac").write_bytes(full[:20])
    with pytest.raises(InputError, match="too short"):
        read_audio(tmp_path / "stub.flac")
    assert capfd.readouterr() == ("", "")


def test_bad_aiff_header_values(tmp_path):
    sf.write(tmp_path / "a.aiff", _sine(100), RATE, format="AIFF")
    full = bytearray((tmp_path / "a.aiff").read_bytes())
    comm = full.index(b"COMM") + 8
    zero_ch = bytearray(full)
    struct.pack_into(">h", zero_ch, comm, 0)
    (tmp_path / "zc.aiff").write_bytes(bytes(zero_ch))
    with pytest.raises(InputError, match="0 channels"):
        read_audio(tmp_path / "zc.aiff")
    zero_rate = bytearray(full)
    zero_rate[comm + 8 : comm + 18] = bytes(10)
    (tmp_path / "zr.aiff").write_bytes(bytes(zero_rate))
    with pytest.raises(InputError, match="sample rate 0 Hz"):
        read_audio(tmp_path / "zr.aiff")
    (tmp_path / "form.aiff").write_bytes(b"FORM\0\0\0\x04ABCD")
    with pytest.raises(InputError, match="not AIFF audio"):
        read_audio(tmp_path / "form.aiff")


def test_empty_files(tmp_path):
    for name in ("e.wav", "e.pcm", "e.flac"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(InputError, match="empty file"):
            read_audio(tmp_path / name)


def test_missing_folder_and_unreadable(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="file not found"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(InputError, match="is a folder"):
        read_audio(tmp_path)
    (tmp_path / "locked.wav").write_bytes(_good_wav(tmp_path))

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(aio.os, "open", deny)  # the reader opens with os.open (non-blocking)
    with pytest.raises(InputError, match="permission denied") as ei:
        read_audio(tmp_path / "locked.wav")
    monkeypatch.undo()
    assert "locked.wav" in str(ei.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_by_permissions(tmp_path):
    path = tmp_path / "locked.wav"
    path.write_bytes(_good_wav(tmp_path))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_audio(path)


def test_too_large(tmp_path):
    path = tmp_path / "big.wav"
    with open(path, "wb") as fh:  # sparse: costs no disk
        fh.write(b"RIFF")
        fh.truncate(64 * 2**20 + 1)
    with pytest.raises(InputError, match="larger than the 64 MB limit"):
        read_audio(path)
    small = tmp_path / "small.pcm"
    small.write_bytes(b"\x80" * 2000)
    with pytest.raises(InputError, match="larger than"):
        read_audio(small, max_file_bytes=1000)


def test_nan_float_wav(tmp_path):
    x = _sine()
    x[10] = np.nan
    sf.write(tmp_path / "nan.wav", x, RATE, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN"):
        read_audio(tmp_path / "nan.wav")


def test_undecodable_payload_is_translated(tmp_path, capfd):
    # a valid-looking header with an encoding tag libsndfile does not know
    path = tmp_path / "weird.wav"
    path.write_bytes(_riff([(b"fmt ", _fmt(tag=0x7777)), (b"data", b"\1" * 200)]))
    with pytest.raises(InputError) as ei:
        read_audio(path)
    assert "weird.wav" in str(ei.value)
    assert "WAV encoding 0x7777 cannot be decoded" in ei.value.reason
    assert "sndfile" not in str(ei.value).lower()
    assert capfd.readouterr() == ("", "")
