"""Issue 14, the audio side: every class of defect found trying the CLI as an attacker would.

- memory follows the output, never the input (cut in the source's time, then resample);
- outputs never replace a special file, an input (by inode), or appear in a folder nobody made;
- special files as inputs are refused at once;
- pure DC stays silent; other formats get a message that says what to do; a streamed WAV reads;
- every error is one line (and an error object with --json).
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from miragen.audio.io import read_audio, scan_audio
from miragen.audio.mirage8 import prepare
from miragen.audio.resample import input_needed, resample, resample_head
from miragen.cli import main
from miragen.errors import InputError

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def wav8(
    path: Path,
    data: bytes,
    rate: int,
    *,
    riff_size: int | None = None,
    data_size: int | None = None,
) -> Path:
    """An 8-bit WAV whose header says what the test wants (the bytes are the test's)."""
    n = len(data)
    hdr = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + n if riff_size is None else riff_size,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate,
        1,
        8,
        b"data",
        n if data_size is None else data_size,
    )
    path.write_bytes(hdr + bytes(data))
    return path


def _noise_u8(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(1, 256, n).astype(np.uint8).tobytes()


# --------------------------------------------------------------------------- 1. memory


@pytest.mark.parametrize(
    "src,dst",
    [(44100, 29411), (8000, 29411), (96000, 29411), (1000, 29411), (29411, 4000), (48000, 22050)],
)
def test_resample_head_is_the_start_of_the_full_resampling(src, dst):
    x = np.random.default_rng(src).normal(size=60000)
    n = 1000 if dst < src else 3000
    full = resample(x, src, dst)[:n]
    head = resample_head(x, src, dst, n)
    assert len(head) == len(full) == min(n, len(resample(x, src, dst)))
    assert np.max(np.abs(head - full)) < 1e-5
    assert input_needed(n, src, dst) < len(x)  # it really used less than the whole input


def test_convert_cost_follows_the_output_not_the_header(tmp_path):
    """A 1 Hz header is refused as the damaged header it is; a 4 MB file whose 1 kHz header
    makes it last 67 minutes, and a 30 MB 8 kHz WAV, are cut in their own time first: each
    converts in a child whose address space is capped, with a peak RSS far below the 1.76 GB
    that the old path took for the 30 MB file."""
    wav8(tmp_path / "hz1.wav", _noise_u8(100_000), 1)
    wav8(tmp_path / "hz1000.wav", _noise_u8(4_000_000), 1000)
    t = np.arange(15_000_000) / 8000.0
    sf.write(
        tmp_path / "big8k.wav",
        (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        8000,
        subtype="PCM_16",
    )
    del t
    child = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))\n"
        "from miragen.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print('RSS', int(hwm.split()[1]) // 1024)\n"
        "sys.exit(rc)\n"
    )
    for name, rc_wanted in (("hz1.wav", 2), ("hz1000.wav", 0), ("big8k.wav", 0)):
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                child,
                "convert",
                str(tmp_path / name),
                "-o",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
            check=False,
        )
        assert r.returncode == rc_wanted, r.stderr
        assert "Traceback" not in r.stderr
        rss = int(r.stdout.split("RSS")[-1])
        assert rss < 200, f"{name}: peak RSS {rss} MB"  # bench/README.md: target ≤ 200 MB
        if rc_wanted == 0:
            assert "cut from" in r.stderr
            assert len((tmp_path / "out" / name.replace(".wav", ".pcm")).read_bytes()) == 65536
        else:
            assert "sample rate 1 Hz is out of range" in r.stderr and name in r.stderr


def test_read_audio_keeps_only_what_it_is_asked_and_counts_the_rest(tmp_path):
    x = np.sin(np.arange(200_000) / 7.0).astype(np.float32) * 0.5
    sf.write(tmp_path / "a.flac", x, 44100)
    a = read_audio(tmp_path / "a.flac", keep_seconds=0.5)
    assert len(a.samples) == 22050 and a.total_frames == 200_000
    assert abs(a.seconds - 200_000 / 44100) < 1e-9
    assert np.allclose(a.samples, x[:22050], atol=1e-4)
    s = scan_audio(tmp_path / "a.flac")
    assert len(s.samples) == 1 and s.total_frames == 200_000
    assert s.hi == pytest.approx(0.5, abs=1e-3) and s.lo == pytest.approx(-0.5, abs=1e-3)


def test_prepare_of_a_head_equals_prepare_of_the_whole(tmp_path):
    x = np.random.default_rng(3).normal(size=200_000) * 0.1
    whole = prepare(x, 44100, rng=np.random.default_rng(0))
    need = input_needed(65536, 44100, 29411)
    head = prepare(x[:need], 44100, total_frames=len(x), rng=np.random.default_rng(0))
    assert whole.data == head.data and whole.cut and head.cut


def test_a_too_long_input_refused_by_strict_is_refused_before_any_resampling(tmp_path):
    x = np.zeros(10)
    with pytest.raises(InputError, match="too long.*use --cut"):
        prepare(x, 1000, total_frames=10**9, strict=True, too_long_hint="use --cut")


# --------------------------------------------------------------------------- 2, 3. outputs


def test_convert_never_replaces_its_input(tmp_path, capsys):
    same = tmp_path / "same"
    same.mkdir()
    src = same / "x.wav"
    sf.write(src, np.sin(np.arange(3000) / 5.0) * 0.5, 44100, subtype="PCM_24")
    before = src.read_bytes()
    assert main(["convert", str(src), "-o", str(same)]) == 2
    err = capsys.readouterr().err
    assert "would destroy the input" in err and "Traceback" not in err
    assert src.read_bytes() == before
    # the same file through another name (a hard link) is caught by its inode
    other = tmp_path / "other"
    other.mkdir()
    os.link(src, other / "x.wav")
    link_src = tmp_path / "x.wav"
    os.symlink(src, link_src)
    assert main(["convert", str(link_src), "-o", str(other)]) == 2
    assert src.read_bytes() == before


def test_convert_refuses_to_replace_a_special_file_and_says_when_it_creates_a_folder(
    tmp_path, capsys
):
    src = tmp_path / "x.wav"
    sf.write(src, np.sin(np.arange(3000) / 5.0) * 0.5, 44100)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "x.pcm")
    assert main(["convert", str(src), "-o", str(out)]) == 2
    assert stat.S_ISFIFO(os.stat(out / "x.pcm").st_mode)
    assert "FIFO" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(tmp_path / "new" / "deeper")]) == 0
    assert "created the output folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["convert", str(src), "-o", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_atomic_write_never_replaces_a_device_node(tmp_path):
    from miragen.fsutil import atomic_write_bytes

    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with pytest.raises(InputError, match="character device"):
        atomic_write_bytes(node, b"x")
    assert stat.S_ISCHR(os.stat(node).st_mode)


# --------------------------------------------------------------------------- 5. special inputs


@pytest.mark.timeout(20)
def test_special_files_as_audio_are_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "f.wav"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        read_audio(fifo)
    with pytest.raises(InputError, match="character device"):
        read_audio("/dev/zero")
    assert main(["convert", str(fifo), "/dev/zero", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "FIFO" in err and "character device" in err and "0 bytes" not in err


# --------------------------------------------------------------------------- 10, 12. content


def test_pure_dc_is_silent_not_a_click(tmp_path, capsys):
    sf.write(tmp_path / "dc.wav", np.full(20000, 0.5, np.float32), 44100, subtype="PCM_16")
    assert main(["convert", str(tmp_path / "dc.wav"), "-o", str(tmp_path / "o")]) == 0
    data = (tmp_path / "o" / "dc.pcm").read_bytes()
    assert set(data) == {0x80}
    assert "silent" in capsys.readouterr().err
    # a sine riding on a DC offset ends near the centre line, without a step at the end
    t = np.arange(20000)
    sf.write(
        tmp_path / "off.wav", (0.6 + 0.3 * np.sin(2 * np.pi * t / 100)).astype(np.float32), 44100
    )
    p = prepare(read_audio(tmp_path / "off.wav").samples, 44100, dither="none")
    body = np.frombuffer(p.data[: p.samples], np.uint8).astype(int) - 128
    slope = 126 * 2 * np.pi * 44100 / 100 / 29411  # the sine's steepest step, in LSB
    assert np.max(np.abs(np.diff(body[-40:]))) <= slope + 2  # no step from the offset at the end
    assert np.max(np.abs(np.diff(body[:40]))) <= slope + 2  # nor at the start


@pytest.mark.parametrize(
    "head,what", [(b"ID3\x04\x00", "MP3"), (b"\xff\xfb\x90\x00", "MP3"), (b"OggS\x00\x02", "Ogg")]
)
def test_other_formats_say_what_to_do(tmp_path, head, what):
    p = tmp_path / "song.wav"
    p.write_bytes(head + bytes(2000))
    with pytest.raises(InputError, match=f"{what}.*convert it to WAV or FLAC first"):
        read_audio(p)


def test_a_streamed_wav_is_read(tmp_path):
    x = (np.sin(np.arange(5000) / 9.0) * 100).astype(np.int64) + 128
    p = wav8(
        tmp_path / "stream.wav",
        x.astype(np.uint8).tobytes(),
        22050,
        riff_size=0xFFFFFFFF,
        data_size=0xFFFFFFFF,
    )
    a = read_audio(p)
    assert len(a.samples) == 5000 and a.rate == 22050
    # a real RIFF size with a data size claiming 4 GB is still a lie
    q = wav8(tmp_path / "liar.wav", x.astype(np.uint8).tobytes(), 22050, data_size=0xFFFFFFFF)
    with pytest.raises(InputError, match="truncated"):
        read_audio(q)


# --------------------------------------------------------------------------- 7. one line, JSON


def test_errors_are_one_line_and_an_object_with_json(tmp_path, capsys):
    missing = tmp_path / "nope.img"
    assert main(["disk", "info", str(missing), "--json"]) == 2
    cap = capsys.readouterr()
    obj = json.loads(cap.out)
    assert obj["ok"] is False and obj["file"] == str(missing) and "not found" in obj["reason"]
    assert len(cap.err.strip().splitlines()) == 1 and str(missing) in cap.err
