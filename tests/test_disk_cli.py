"""``miragen disk …`` end to end: info, extract, write, template, malformed input."""

from __future__ import annotations

import json
import math

import pytest
from miragen.cli import main
from miragen.mirage import disk as D


@pytest.fixture
def tpl(tmp_path):
    p = tmp_path / "t.img"
    assert main(["disk", "template", "--synthetic", str(p)]) == 0
    return p


def _pcm(path, n, value=None):
    data = bytes(value or (128 + int(90 * math.sin(i / 7))) for i in range(n))
    path.write_bytes(data)
    return data


def test_template_and_info(tpl, capsys):
    capsys.readouterr()
    assert main(["disk", "info", str(tpl), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == 450560 and info["synthetic"] is True
    assert set(info["sounds"]) == set(D.SOUNDS)
    s = info["sounds"]["lower1"]
    assert set(s) == {"param_sha256", "wave_sha256", "wavesamples", "programs", "keyboard"}
    assert len(s["wavesamples"]) == 8 and len(s["programs"]) == 4
    assert main(["disk", "info", str(tpl)]) == 0
    text = capsys.readouterr().out
    assert "does NOT boot" in text and "== upper3" in text and "filter_cutoff" in text


def test_template_requires_synthetic(tmp_path, capsys):
    assert main(["disk", "template", str(tmp_path / "x.img")]) == 2
    assert "synthetic" in capsys.readouterr().err
    assert not (tmp_path / "x.img").exists()


def test_write_extract_round_trip(tpl, tmp_path, capsys):
    a = _pcm(tmp_path / "a.pcm", 3000)
    b = _pcm(tmp_path / "b.pcm", 40000)
    out = tmp_path / "out.img"
    rc = main(
        [
            "disk",
            "write",
            "--template",
            str(tpl),
            "-o",
            str(out),
            "--json",
            f"lower1:3={tmp_path / 'a.pcm'}",
            f"upper3={tmp_path / 'b.pcm'}",
            "--program",
            "upper1:2:filter_cutoff=99",
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["writes"][0]["unused"] == 8192 - 3000 and rep["writes"][0]["converted"] is False
    assert rep["writes"][1]["unused"] == 65536 - 40000
    img = out.read_bytes()
    tplb = tpl.read_bytes()
    # nothing outside the wave areas and program blocks changed
    mask = bytearray(b"\x01" * D.SIZE)
    for off, n in D.writable_ranges():
        mask[off : off + n] = bytes(n)
    assert all(x == y for x, y, m in zip(img, tplb, mask) if m)
    ex = tmp_path / "ex"
    assert main(["disk", "extract", str(out), str(ex)]) == 0
    ws3 = (ex / "lower1-ws3.pcm").read_bytes()
    assert ws3 == a + b"\x80" * (8192 - 3000)
    assert (ex / "upper3.pcm").read_bytes() == b + b"\x80" * (65536 - 40000)
    side = json.loads((ex / "lower1-ws3.json").read_text())
    assert side["start_page"] == 64 and side["end_page"] == 95 and side["loop_end_fine"] == 255
    assert (ex / "lower1-ws3.wav").read_bytes()[:4] == b"RIFF"
    assert len(list(ex.glob("*.pcm"))) == 6 + 48
    info = D.parse(img).info()
    assert info["sounds"]["upper1"]["programs"][1]["filter_cutoff"] == 99


def test_write_converts_audio(tpl, tmp_path, shared_data, capsys):
    wav = min((shared_data / "akwf").rglob("*.wav"))
    out = tmp_path / "o.img"
    assert main(["disk", "write", "--template", str(tpl), "-o", str(out), f"lower2:8={wav}"]) == 0
    wave = D.read_wave(out.read_bytes(), "lower2")
    part = wave[224 * 256 :]
    assert 0 not in part and len(set(part)) > 10


def test_write_refusals(tpl, tmp_path, capsys):
    _pcm(tmp_path / "big.pcm", 9000)
    out = tmp_path / "o.img"
    assert (
        main(
            [
                "disk",
                "write",
                "--template",
                str(tpl),
                "-o",
                str(out),
                f"lower1:1={tmp_path / 'big.pcm'}",
            ]
        )
        == 2
    )
    assert "8,192" in capsys.readouterr().err and not out.exists()
    small = tmp_path / "small.img"
    small.write_bytes(bytes(1000))
    assert (
        main(
            [
                "disk",
                "write",
                "--template",
                str(small),
                "-o",
                str(out),
                f"lower1:1={tmp_path / 'big.pcm'}",
            ]
        )
        == 2
    )
    assert "1,000 bytes" in capsys.readouterr().err
    assert main(["disk", "write", "--template", str(tpl), "-o", str(out), "middle:1=x.pcm"]) == 2
    assert main(["disk", "write", "--template", str(tpl), "-o", str(out), "lower1:9=x.pcm"]) == 2
    assert (
        main(
            [
                "disk",
                "write",
                "--template",
                str(tpl),
                "-o",
                str(out),
                "--program",
                "lower1:1:nope=3",
            ]
        )
        == 2
    )
    assert "unknown program field" in capsys.readouterr().err
    assert not out.exists()


def test_hfe_without_hxcfe(tpl, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _pcm(tmp_path / "a.pcm", 300)
    out = tmp_path / "o.img"
    rc = main(
        [
            "disk",
            "write",
            "--template",
            str(tpl),
            "-o",
            str(out),
            f"lower1:1={tmp_path / 'a.pcm'}",
            "--hfe",
        ]
    )
    assert rc == 2 and out.exists()
    assert "hxcfe" in capsys.readouterr().err


def test_hfe_with_fake_hxcfe(tpl, tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "hxcfe"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in -finput:*) in=${a#-finput:};; '
        "-foutput:*) out=${a#-foutput:};; esac; done\n"
        'case "$in" in *.edm) cp "$in" "$out";; *) exit 3;; esac\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    _pcm(tmp_path / "a.pcm", 300)
    out = tmp_path / "o.img"
    assert (
        main(
            [
                "disk",
                "write",
                "--template",
                str(tpl),
                "-o",
                str(out),
                f"lower1:1={tmp_path / 'a.pcm'}",
                "--hfe",
            ]
        )
        == 0
    )
    assert (tmp_path / "o.hfe").read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"\x0d\x0a" + bytes(500), "EDE"),
        (bytes(450559), "450,559"),
        (b"", "0 bytes"),
    ],
)
def test_malformed_images_no_traceback(tmp_path, cli, content, needle):
    bad = tmp_path / "bad.img"
    bad.write_bytes(content)
    r = cli("disk", "info", str(bad))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert needle in err and "Traceback" not in err


def test_missing_image_no_traceback(tmp_path, cli):
    r = cli("disk", "extract", str(tmp_path / "nope.img"), str(tmp_path / "x"))
    assert r.returncode == 2 and b"not found" in r.stderr and b"Traceback" not in r.stderr
