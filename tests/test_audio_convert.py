"""convert_file / write_outputs and the real ``miragen convert`` command."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
from miragen.audio.convert import convert_file, write_outputs
from miragen.audio.mirage8 import check_mirage8
from miragen.errors import InputError
from PIL import Image


def _sine_file(path, seconds=0.05, rate=44100, f=440.0, subtype="PCM_16", channels=1, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * f * t)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    sf.write(path, x, rate, subtype=subtype)
    return path


def _check_outputs(out, stem, rate=29411):
    pcm = (out / f"{stem}.pcm").read_bytes()
    check_mirage8(pcm)
    info = sf.info(out / f"{stem}.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        rate,
        1,
        "PCM_U8",
        len(pcm),
    )
    wav_u8 = np.rint(sf.read(out / f"{stem}.wav", dtype="float64")[0] * 128 + 128).astype(np.uint8)
    assert wav_u8.tobytes() == pcm
    with Image.open(out / f"{stem}.png") as im:
        assert im.format == "PNG" and im.size[0] >= 256
    return pcm


def test_convert_file_and_outputs(tmp_path):
    src = _sine_file(tmp_path / "a.wav", seconds=0.1, rate=48000, subtype="PCM_24", channels=2)
    p = convert_file(src)
    assert len(p.data) == -(-int(0.1 * 29411) // 256) * 256 and not p.cut
    files = write_outputs(p, tmp_path / "out", "a", 29411)
    assert [f.name for f in files] == ["a.pcm", "a.wav", "a.png"]
    assert _check_outputs(tmp_path / "out", "a") == p.data
    assert write_outputs(p, tmp_path / "o2", "b", 29411, png=False)[-1].name == "b.wav"
    assert not (tmp_path / "o2" / "b.png").exists()


def test_convert_file_bad_input_names_the_file(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"nonsense" * 10)
    with pytest.raises(InputError) as ei:
        convert_file(tmp_path / "x.wav")
    assert str(tmp_path / "x.wav") in str(ei.value)


def test_real_akwf_and_oneshots_convert(shared_data):
    akwf = sorted((shared_data / "akwf").glob("AKWF_*/*.wav"))
    for f in akwf[::100]:
        p = convert_file(f)
        check_mirage8(p.data)
        assert (
            p.samples == 401 and len(p.data) == 512
        )  # 600 frames at 44.1 kHz → ⌈400.15⌉ at 29,411 Hz
    shots = sorted((shared_data / "oneshots" / "sonic-pi").glob("*.wav"))
    special = [f for f in shots if sf.info(f).samplerate != 44100 or sf.info(f).subtype == "PCM_24"]
    assert len(special) >= 3
    for f in special:
        info = sf.info(f)
        p = convert_file(f)
        check_mirage8(p.data)
        assert p.samples == min(-(-info.frames * 29411 // info.samplerate), 65536)


def test_real_long_oneshot_is_cut(shared_data):
    longest = max(
        (shared_data / "oneshots" / "sonic-pi").glob("*.wav"), key=lambda f: sf.info(f).duration
    )
    p = convert_file(longest)
    assert p.cut and len(p.data) == 65536 and p.warnings
    with pytest.raises(InputError, match="too long"):
        convert_file(longest, strict=True)


# --------------------------------------------------------------------------- the CLI


def test_cli_convert_good_and_bad_inputs(tmp_path, cli):
    good1 = _sine_file(tmp_path / "one.wav")
    good2 = tmp_path / "two.pcm"
    good2.write_bytes(bytes(range(256)) * 3)  # raw 8-bit, 0x00 accepted on read
    bad = {
        "empty.wav": b"",
        "magic.wav": b"GIF89a" + b"\0" * 100,
        "trunc.wav": _sine_file(tmp_path / "full.wav", seconds=0.2).read_bytes()[:3000],
        "zeroch.wav": b"RIFF"
        + struct.pack("<I", 36 + 8)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 0, 44100, 0, 0, 16)
        + b"data"
        + struct.pack("<I", 8)
        + b"\0" * 8,
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    out = tmp_path / "out"
    args = [
        str(good1),
        *(str(tmp_path / n) for n in bad),
        str(good2),
        str(tmp_path / "missing.flac"),
    ]
    r = cli("convert", *args, "-o", str(out))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("miragen: error:")]
    assert len(lines) == len(bad) + 1
    for name in [*bad, "missing.flac"]:
        assert any(name in ln for ln in lines), (name, err)
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [
        "one.pcm",
        "one.png",
        "one.wav",
        "two.pcm",
        "two.png",
        "two.wav",
    ]
    _check_outputs(out, "one")
    two = _check_outputs(out, "two")
    assert len(two) == 768 and 0 not in two


def test_cli_convert_options_and_config(tmp_path, cli):
    src = _sine_file(tmp_path / "long.wav", seconds=1.0, rate=44100)
    r = cli(
        "convert",
        str(src),
        "-o",
        str(tmp_path / "a"),
        "--max-bytes",
        "4096",
        "--rate",
        "22050",
        "--dither",
        "none",
    )
    assert r.returncode == 0, r.stderr
    assert "cut" in r.stderr.decode() and "warning" in r.stderr.decode()
    assert len((tmp_path / "a" / "long.pcm").read_bytes()) == 4096
    assert sf.info(tmp_path / "a" / "long.wav").samplerate == 22050
    r = cli("convert", str(src), "-o", str(tmp_path / "b"), "--max-bytes", "4096", "--strict")
    assert r.returncode == 2 and "too long" in r.stderr.decode()
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    cfg = tmp_path / "m.toml"
    cfg.write_text("[audio]\nrate = 16000\nmax_bytes = 2048\nstrict = true\n")
    r = cli("convert", str(src), "-o", str(tmp_path / "c"), "--config", str(cfg))
    assert r.returncode == 2 and "too long" in r.stderr.decode()
    cfg.write_text("[audio]\nrate = 16000\nmax_bytes = 65536\n")
    r = cli("convert", str(src), "-o", str(tmp_path / "c"), "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert sf.info(tmp_path / "c" / "long.wav").samplerate == 16000
    assert len((tmp_path / "c" / "long.pcm").read_bytes()) == 16128  # 16000 samples → 63 pages
    r = cli("convert", str(src), "-o", str(tmp_path / "d"), "--max-bytes", "100")
    assert r.returncode == 2 and "--max-bytes" in r.stderr.decode()


def test_cli_convert_same_stem_twice_keeps_both(tmp_path, cli):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = _sine_file(tmp_path / "x" / "s.wav")
    b = _sine_file(tmp_path / "y" / "s.wav", f=880.0)
    r = cli("convert", str(a), str(b), "-o", str(tmp_path / "o"))
    assert r.returncode == 0
    assert (tmp_path / "o" / "s.pcm").exists() and (tmp_path / "o" / "s-2.pcm").exists()


def test_cli_convert_oversize_file(tmp_path, cli):
    big = tmp_path / "big.wav"
    with open(big, "wb") as fh:
        fh.write(b"RIFF")
        fh.truncate(64 * 2**20 + 10)  # sparse
    r = cli("convert", str(big), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "64 MB" in r.stderr.decode() and "big.wav" in r.stderr.decode()


def test_output_writer_batches_atomically(tmp_path):
    from miragen.audio.convert import OutputWriter
    from miragen.audio.mirage8 import prepare

    p = prepare(np.sin(np.arange(1000) / 7.0), 29411)
    with OutputWriter(tmp_path / "o", 29411, batch=3, png=False) as w:
        for i in range(5):
            w.add(p, f"w{i}")
        # after 3 conversions the first batch is final; the rest are still temporary files
        names = sorted(f.name for f in (tmp_path / "o").iterdir())
        assert [n for n in names if not n.startswith(".")] == [
            f"w{i}.{e}" for i in range(3) for e in ("pcm", "wav")
        ]
        assert sum(n.endswith(".part") for n in names) == 4
    names = sorted(f.name for f in (tmp_path / "o").iterdir())
    assert names == sorted(f"w{i}.{e}" for i in range(5) for e in ("pcm", "wav"))
    assert (tmp_path / "o" / "w4.pcm").read_bytes() == p.data
    assert len(w.written) == 10
    with pytest.raises(RuntimeError), OutputWriter(tmp_path / "e", 29411) as w2:
        w2.add(p, "lost")
        raise RuntimeError("boom")
    assert list((tmp_path / "e").iterdir()) == []  # nothing half-done left behind
