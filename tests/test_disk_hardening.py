"""``miragen disk`` and ``deliver --disk`` as a careless user or an attacker would use them
(issue 14): implausible images, special files, outputs that are inputs, extract → write-back
identity, one-line errors, ``--tile-cycle`` on converted cycles, messages."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from miragen.cli import main
from miragen.commands import _wave
from miragen.errors import FormatError
from miragen.mirage import disk as D
from miragen.mirage import params as P

SHARED = Path(__file__).resolve().parents[2] / "shared"
AKWF = "AKWF_sin.pcm"


@pytest.fixture
def tpl(tmp_path) -> Path:
    p = tmp_path / "t.img"
    p.write_bytes(D.synthetic_template())
    return p


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pcm(path: Path, n: int = 3000) -> Path:
    path.write_bytes(bytes(128 + int(90 * np.sin(i / 7)) for i in range(n)))
    return path


def _write(tpl: Path, out: Path, *rest: str) -> int:
    """``miragen disk write --template TPL -o OUT REST...`` in this process."""
    return main(["disk", "write", "--template", str(tpl), "-o", str(out), *rest])


def _err_line(capsys) -> str:
    """The one line a refused command prints (stdout empty without --json)."""
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("miragen: error: ")
    return lines[0]


def _image_with_zeros(seed: int = 3) -> bytes:
    """The synthetic template whose wave areas hold random bytes, many of them 0x00, as real
    disk images do."""
    rnd = random.Random(seed)
    img = bytearray(D.synthetic_template())
    for s in D.SOUNDS:
        for _k, off, n in D.wave_runs(s):
            choices = (0, 0, 1, 0x40, 0x80, 0xC0, 0xFF)
            img[off : off + n] = bytes(
                rnd.choice(choices) if rnd.random() < 0.8 else rnd.randrange(256) for _ in range(n)
            )
    return bytes(img)


def _real_images() -> list[Path]:
    if not SHARED.is_dir():
        return []
    found = []
    for p in sorted(SHARED.rglob("*")):
        if p.suffix.lower() in (".img", ".edm") and p.is_file() and p.stat().st_size == D.SIZE:
            found.append(p)
    return found


def _real_image_params():
    images = _real_images()
    if images:
        return [pytest.param(p, id=p.name) for p in images]
    why = (
        f"{SHARED} is absent"
        if not SHARED.is_dir()
        else f"no real Mirage disk image (.img/.edm of {D.SIZE:,} bytes) under {SHARED}"
    )
    return [pytest.param(None, marks=pytest.mark.skip(reason=why), id="no-real-image")]


# ----------------------------------------------------------------- plausibility (item 6)


def test_zero_and_random_images_are_refused_force_reads(tmp_path, tpl, capsys):
    zero = tmp_path / "zero.img"
    zero.write_bytes(bytes(D.SIZE))
    rnd = tmp_path / "random.img"
    rnd.write_bytes(random.Random(5).randbytes(D.SIZE))
    assert main(["disk", "info", str(zero)]) == 2
    line = _err_line(capsys)
    assert "tracks 0-1" in line and "--force" in line
    assert main(["disk", "info", str(rnd)]) == 2
    line = _err_line(capsys)
    assert "not a plausible Mirage disk image" in line and "wavesample" in line and "loop" in line
    ex = tmp_path / "ex"
    assert main(["disk", "extract", str(rnd), str(ex)]) == 2 and not ex.exists()
    _err_line(capsys)
    # --force reads them anyway, saying so
    assert main(["disk", "info", str(rnd), "--force", "--json"]) == 0
    cap = capsys.readouterr()
    info = json.loads(cap.out)
    assert info["plausible"] is False and info["problems"] and "warning" in cap.err
    assert main(["disk", "info", str(zero), "--force"]) == 0
    assert "NOT a plausible Mirage disk image" in capsys.readouterr().out
    assert main(["disk", "extract", str(rnd), str(ex), "--force"]) == 0
    assert (ex / "lower1.pcm").read_bytes() == D.read_wave(rnd.read_bytes(), "lower1")
    assert "read anyway (--force)" in capsys.readouterr().err
    # write refuses such a template unless --force
    src = _pcm(tmp_path / "a.pcm", 200)
    out = tmp_path / "o.img"
    assert _write(zero, out, f"lower1={src}") == 2
    assert "--force" in _err_line(capsys) and not out.exists()
    assert _write(zero, out, f"lower1={src}", "--force") == 0
    assert D.read_wave(out.read_bytes(), "lower1")[:200] == src.read_bytes()
    # the library refuses them too (the daemon's ingest goes through training_samples)
    for img in (zero.read_bytes(), rnd.read_bytes()):
        with pytest.raises(FormatError, match="plausible"):
            D.training_samples(img, "x")
        with pytest.raises(FormatError, match="plausible"):
            D.write_wavesample(img, "lower1", 1, b"\x80")
    from miragen.service.ingest import Rejected, _disk_waves

    with pytest.raises(Rejected, match="plausible"):
        _disk_waves(rnd.read_bytes(), "rnd")
    assert D.plausibility_problems(tpl.read_bytes()) == []


@pytest.mark.parametrize(
    "field,value,needle",
    [
        (17, 40, "lower2 wavesample 4 (pages 96..127): loop start page 40 lies outside its pages"),
        (18, 200, "lower2 wavesample 4 (pages 96..127): loop end page 200 lies outside its pages"),
    ],
)
def test_problem_names_sound_wavesample_and_field(field, value, needle):
    img = bytearray(D.synthetic_template())
    cb = D.param_offset("lower2") + P.control_offset(4)
    img[cb + field] = value
    assert D.plausibility_problems(bytes(img)) == []  # loop off: its loop points are not used
    img[cb + P.CONTROL_FIELDS["loop_on"]] = 1
    assert D.plausibility_problems(bytes(img)) == [needle]
    with pytest.raises(FormatError, match="lower2 wavesample 4"):
        D.parse(bytes(img))
    assert D.parse(bytes(img), force=True).problems == [needle]


def test_loop_start_after_loop_end_and_unused_wavesamples():
    img = bytearray(D.synthetic_template())
    cb = D.param_offset("upper3") + P.control_offset(2)
    img[cb + P.CONTROL_FIELDS["loop_on"]] = 1
    img[cb + 17], img[cb + 18] = 60, 50  # inside pages 32..63, but start after end
    problems = D.plausibility_problems(bytes(img))
    assert "loop start page 60 lies after the loop end page 50" in problems[0]
    # an unused wavesample (end < start) is not judged, whatever its loop bytes hold
    img = bytearray(D.synthetic_template())
    img[cb + 15], img[cb + 16], img[cb + 17], img[cb + 18] = 9, 8, 250, 3
    assert D.plausibility_problems(bytes(img)) == []


@pytest.mark.parametrize("image", _real_image_params())
def test_real_images_are_plausible(image):
    assert D.plausibility_problems(image.read_bytes()) == []


# ----------------------------------------------------------------- special files (item 5)


@pytest.fixture
def fifo(tmp_path) -> Path:
    p = tmp_path / "fifo.img"
    os.mkfifo(p)
    return p


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "argv",
    [
        ["disk", "info", "{fifo}"],
        ["disk", "extract", "{fifo}", "{tmp}/ex"],
        ["disk", "write", "--template", "{fifo}", "-o", "{tmp}/o.img", "lower1:1={pcm}"],
        ["disk", "write", "--template", "{tpl}", "-o", "{tmp}/o.img", "lower1:1={fifo_pcm}"],
        ["disk", "write", "--template", "{tpl}", "-o", "{tmp}/o.img", "lower1:1={fifo_wav}"],
        ["deliver", "{pcm}", "--disk", "{tmp}/o.img", "--template", "{fifo}"],
        ["deliver", "{fifo_pcm}", "--disk", "{tmp}/o.img", "--template", "{tpl}"],
    ],
)
def test_fifo_inputs_are_refused_at_once(argv, fifo, tpl, tmp_path, capsys):
    pcm = _pcm(tmp_path / "a.pcm", 300)
    os.mkfifo(tmp_path / "f.pcm")
    os.mkfifo(tmp_path / "f.wav")
    subst = {
        "fifo": fifo,
        "tmp": tmp_path,
        "pcm": pcm,
        "tpl": tpl,
        "fifo_pcm": tmp_path / "f.pcm",
        "fifo_wav": tmp_path / "f.wav",
    }
    argv = [a.format(**subst) for a in argv]
    assert main(argv) == 2
    line = _err_line(capsys)
    assert "FIFO" in line
    assert not (tmp_path / "o.img").exists() and not (tmp_path / "ex").exists()


# ----------------------------------------------------------------- outputs that are inputs (item 3)


@pytest.mark.parametrize("link", ["hard", "sym"])
def test_output_that_is_an_input_is_refused(link, tmp_path, tpl, capsys):
    pcm = _pcm(tmp_path / "a.pcm", 300)
    alias = tmp_path / "alias.img"
    (os.link if link == "hard" else os.symlink)(tpl, alias)
    before = _sha(tpl)
    cases = [
        ["disk", "write", "--template", str(tpl), "-o", str(tpl), f"lower1:1={pcm}"],
        ["disk", "write", "--template", str(tpl), "-o", str(alias), f"lower1:1={pcm}"],
        ["deliver", str(pcm), "--disk", str(tpl), "--template", str(tpl)],
        ["deliver", str(pcm), "--disk", str(alias), "--template", str(tpl)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        assert "input" in _err_line(capsys)
        assert _sha(tpl) == before
    # a SPEC file or IN is an input too
    pcm_alias = tmp_path / "pcm_alias.img"
    (os.link if link == "hard" else os.symlink)(pcm, pcm_alias)
    pcm_before = _sha(pcm)
    assert _write(tpl, pcm_alias, f"lower1:1={pcm}") == 2
    assert main(["deliver", str(pcm), "--disk", str(pcm_alias)]) == 2
    capsys.readouterr()
    assert _sha(pcm) == pcm_before
    # disk extract: a file of the folder that is the image itself is refused before any write
    ex = tmp_path / "ex"
    ex.mkdir()
    (os.link if link == "hard" else os.symlink)(tpl, ex / "lower1-ws1.pcm")
    assert main(["disk", "extract", str(tpl), str(ex)]) == 2
    assert "input" in _err_line(capsys)
    assert _sha(tpl) == before and sorted(p.name for p in ex.iterdir()) == ["lower1-ws1.pcm"]


# ----------------------------------------------------------------- one-line errors (item 7)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["disk", "write", "--template", "{tpl}", "-o", "{folder}", "lower1:1={pcm}"], "folder"),
        (["disk", "extract", "{tpl}", "{regular}"], "not a folder"),
        (
            ["disk", "write", "--template", "{tpl}", "-o", "/proc/x.img", "lower1:1={pcm}"],
            "/proc/x.img",
        ),
        (["disk", "template", "--synthetic", "/proc/x.img"], "/proc/x.img"),
        (["deliver", "{pcm}", "--disk", "{folder}"], "folder"),
        (["deliver", "{pcm}", "--disk", "/proc/x.img"], "/proc/x.img"),
        (["disk", "template", "--synthetic", "{folder}"], "folder"),
        (
            ["disk", "write", "--template", "{tpl}", "-o", "{tmp}/missing/o.img", "lower1:1={pcm}"],
            "does not exist",
        ),
    ],
)
def test_bad_outputs_give_one_line(argv, needle, tmp_path, tpl, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    regular = tmp_path / "regular.txt"
    regular.write_text("hello\n")
    pcm = _pcm(tmp_path / "a.pcm", 300)
    argv = [a.format(tpl=tpl, folder=folder, regular=regular, pcm=pcm, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    line = _err_line(capsys)
    assert needle in line
    assert regular.read_text() == "hello\n" and list(folder.iterdir()) == []
    if argv[0] == "deliver" or argv[1] == "write":  # commands with --json: an error object
        assert main([*argv, "--json"]) == 2
        cap = capsys.readouterr()
        obj = json.loads(cap.out)
        assert obj["ok"] is False and needle in obj["error"]


def test_cli_subprocess_one_line_no_traceback(cli, tmp_path, tpl):
    r = cli("disk", "extract", str(tpl), str(tpl))
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(tpl) in err


# ----------------------------------------------------------------- extract → write back (item 4)


def _write_back_argv(ex: Path) -> list[str]:
    specs = []
    for f in sorted(ex.glob("*.pcm")):
        if "-ws" in f.stem:
            sound, n = f.stem.split("-ws")
            specs.append(f"{sound}:{n}={f}")
        else:
            specs.append(f"{f.stem}={f}")
    return specs


def _identity(image: Path, tmp_path: Path, capsys, *extra: str) -> str:
    ex = tmp_path / "ex"
    assert main(["disk", "extract", str(image), str(ex), *extra]) == 0
    specs = _write_back_argv(ex)
    used = sum(
        ws.used
        for s in D.parse(image.read_bytes(), force=True).sounds.values()
        for ws in s.params.wavesamples
    )
    assert len(specs) == 6 + used
    back = tmp_path / "back.img"
    capsys.readouterr()
    assert main(["disk", "write", "--template", str(image), "-o", str(back), *specs, *extra]) == 0
    out = capsys.readouterr()
    assert back.read_bytes() == image.read_bytes(), (
        f"{sum(a != b for a, b in zip(back.read_bytes(), image.read_bytes()))} bytes changed"
    )
    return out.out + out.err


def test_extract_write_back_identity_with_zero_bytes(tmp_path, capsys):
    img = tmp_path / "zeros.img"
    img.write_bytes(_image_with_zeros())
    assert img.read_bytes().count(0) > 10000
    text = _identity(img, tmp_path, capsys)
    lines = [x for x in text.splitlines() if " → " in x]
    assert len(lines) == 6 + 48 and all("taken byte for byte (extracted from" in x for x in lines)
    assert "warning" not in text  # put back where they came from: nothing to warn about
    side = json.loads((tmp_path / "ex" / "lower2.json").read_text())
    assert side["kind"] == "wave area" and side["zero_bytes"] > 0
    assert side["sha256"] == _sha(tmp_path / "ex" / "lower2.pcm")


@pytest.mark.parametrize("image", _real_image_params())
def test_extract_write_back_identity_on_real_images(image, tmp_path, capsys):
    _identity(image, tmp_path, capsys)


def test_extracted_file_elsewhere_edited_and_keep_bytes(tmp_path, tpl, capsys):
    img = tmp_path / "zeros.img"
    img.write_bytes(_image_with_zeros())
    ex = tmp_path / "ex"
    assert main(["disk", "extract", str(img), str(ex)]) == 0
    ws = ex / "lower1-ws2.pcm"
    data = ws.read_bytes()
    assert 0 in data
    # put back elsewhere: still byte for byte (it fits), with a warning about the 0x00 bytes
    out = tmp_path / "o.img"
    capsys.readouterr()
    assert _write(tpl, out, f"upper3:5={ws}") == 0
    cap = capsys.readouterr()
    assert "taken byte for byte" in cap.out and "0x00" in cap.err and "warning" in cap.err
    wave = D.read_wave(out.read_bytes(), "upper3")
    assert wave[128 * 256 : 160 * 256] == data
    # an edited copy (its SHA-256 no longer matches the sidecar) is converted like any .pcm
    edited = ex / "edited.pcm"
    edited.write_bytes(data[:-1] + b"\x81")
    (ex / "edited.json").write_text((ex / "lower1-ws2.json").read_text())
    assert _write(tpl, out, f"upper3:5={edited}", "--json") == 0
    rep = json.loads(capsys.readouterr().out)["writes"][0]
    assert rep["converted"] is True and rep["how"].startswith("converted")
    assert "--keep-bytes" in rep["how"]
    assert 0 not in D.read_wave(out.read_bytes(), "upper3")
    # --keep-bytes takes any raw file as it is, 0x00 included, with a warning
    assert _write(tpl, out, f"upper3:5={edited}", "--keep-bytes") == 0
    cap = capsys.readouterr()
    assert "taken byte for byte" in cap.out and "--keep-bytes" in cap.err and "0x00" in cap.err
    assert D.read_wave(out.read_bytes(), "upper3")[128 * 256 : 160 * 256] == edited.read_bytes()
    # too long with --keep-bytes: refused (nothing is cut)
    big = tmp_path / "big.pcm"
    big.write_bytes(b"\x00\x90" * 5000)
    assert _write(tpl, out, f"upper3:5={big}", "--keep-bytes") == 2
    assert "10,000 bytes do not fit" in _err_line(capsys)


def test_text_output_says_converted_or_byte_for_byte(tmp_path, tpl, shared_data, capsys):
    wav = min((shared_data / "akwf").rglob("*.wav"))
    pcm = shared_data / "pcm8" / AKWF
    out = tmp_path / "o.img"
    assert _write(tpl, out, f"lower1:1={wav}", f"lower1:2={pcm}") == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if " → " in x]
    assert "converted to 29,411 Hz (resampled, normalised, dithered)" in lines[0]
    assert lines[1].endswith("taken byte for byte")


# ----------------------------------------------------------------- --tile-cycle (item 11)


def _sine_wav(path: Path, n: int = 600, rate: int = 44100) -> Path:
    sf.write(path, 0.8 * np.sin(2 * np.pi * np.arange(n) / n), rate, subtype="PCM_16")
    return path


class _Args:
    rate = 29411
    raw_rate = 29411
    dither = "tpdf"
    cut = False
    convert_pcm = False


@pytest.mark.parametrize("rate,period", [(18816, 256), (29411, 512)])
def test_tile_cycle_of_a_converted_cycle_is_seamless(tmp_path, rate, period):
    """600 samples at 44.1 kHz: 256 points at 18,816 Hz (k = 1), 400.15 at 29,411 Hz (k = 2)."""
    from miragen.audio.loops import fill_with_cycle

    wav = _sine_wav(tmp_path / "sine.wav")
    args = _Args()
    args.rate = rate
    wave = _wave.load_cycle(wav, args, max_bytes=8 * 256)
    assert len(wave.data) == period and wave.converted and 0 not in wave.data
    tiled = np.frombuffer(fill_with_cycle(wave.data, 8 * 256), dtype=np.uint8).astype(int)
    assert len(tiled) == 8 * 256
    periods = tiled.reshape(-1, period)
    assert (periods == periods[0]).all()  # every period identical
    # no discontinuity anywhere, page boundaries and the wrap included: a sine of amplitude
    # ~126 LSB over `period` points moves at most 2π·126/period per sample (+ 1 LSB of dither)
    jumps = np.abs(np.diff(np.concatenate([tiled, tiled[:1]])))
    assert jumps.max() <= 2 * np.pi * 127 / period + 2
    assert not any((tiled[i : i + 8] == 0x80).all() for i in range(len(tiled) - 8))  # no padding


def test_tile_cycle_cli_disk_and_byte_for_byte(tmp_path, tpl, capsys):
    wav = _sine_wav(tmp_path / "sine.wav")
    out = tmp_path / "o.img"
    assert (
        main(
            [
                "deliver",
                str(wav),
                "--disk",
                str(out),
                "--template",
                str(tpl),
                "--wavesample",
                "3",
                "--tile-cycle",
                "--json",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["report"]["unused"] == 0 and res["converted"] is True
    img = out.read_bytes()
    ws = P.parse_sound_params(D.read_param_block(img, "lower1")).wavesample(3)
    data = np.frombuffer(D.wavesample_bytes(D.read_wave(img, "lower1"), ws), dtype=np.uint8)
    assert (data.reshape(-1, 512) == data[:512]).all()
    # a byte-for-byte .pcm of whole pages tiles as it is; one that is not whole pages is
    # resampled like a converted cycle (200 bytes → 1 page)
    sine = 128 + np.round(100 * np.sin(2 * np.pi * np.arange(200) / 200))
    cyc = bytes(np.clip(sine, 1, 255).astype(np.uint8))
    odd = tmp_path / "odd.pcm"
    odd.write_bytes(cyc)
    assert _write(tpl, out, f"upper1:2={odd}", "--tile-cycle") == 0
    assert "resampled periodically" in capsys.readouterr().out
    img = out.read_bytes()
    data = np.frombuffer(D.read_wave(img, "upper1")[32 * 256 : 64 * 256], dtype=np.uint8)
    assert (data.reshape(-1, 256) == data[:256]).all() and 0x80 in data


# ----------------------------------------------------------------- messages (item 12)


def test_too_long_input_suggests_cut_and_template(tmp_path, tpl, capsys):
    long_wav = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(long_wav, 0.3 * rng.standard_normal(29411), 29411, subtype="PCM_16")
    out = tmp_path / "o.img"
    assert _write(tpl, out, f"lower1:1={long_wav}") == 2
    line = _err_line(capsys)
    assert "too long: 29411 samples" in line and "--cut" in line and "strict" not in line
    assert "--template with an image whose wavesample is large enough" in line
    assert main(["deliver", str(long_wav), "--disk", str(out)]) == 2
    line = _err_line(capsys)
    assert "--cut" in line and "--template" in line and "pages 0..31" in line
    assert "strict" not in line
    assert _write(tpl, out, f"lower1:1={long_wav}", "--cut") == 0
    assert "cut from 1.00 s" in capsys.readouterr().err
    # a raw file too long: its length and --cut
    big = _pcm(tmp_path / "big.pcm", 9000)
    assert main(["deliver", str(big), "--disk", str(out)]) == 2
    line = _err_line(capsys)
    assert "9,000 bytes do not fit the 8,192 bytes" in line and "--cut" in line
