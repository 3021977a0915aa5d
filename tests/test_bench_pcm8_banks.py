"""bench/pcm8_banks.py: the WAV banks rebuilt from the 8-bit files by name, wherever pcm8 keeps
them; a WAV without an 8-bit twin is counted, not guessed."""

import json
from pathlib import Path

import pytest
from conftest import load_bench


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    akwf, pcm8 = tmp_path / "akwf", tmp_path / "pcm8"
    for bank, names in {
        "AKWF_0001": ["AKWF_0001", "AKWF_0002"],
        "AKWF_sin": ["AKWF_sin_0001"],
    }.items():
        (akwf / bank).mkdir(parents=True)
        for n in names:
            (akwf / bank / f"{n}.wav").write_bytes(b"RIFF")
    (pcm8 / "AKWF").mkdir(parents=True)
    (pcm8 / "AKWF" / "AKWF_0001.pcm").write_bytes(bytes([128]) * 256)  # grouped elsewhere
    (pcm8 / "AKWF_sin_0001.pcm").write_bytes(bytes([129]) * 256)  # loose
    return akwf, pcm8


def test_banks_are_rebuilt_by_file_name_and_gaps_counted(tmp_path, capsys):
    pb = load_bench("pcm8_banks")
    akwf, pcm8 = _tree(tmp_path)
    out = tmp_path / "banks"
    assert pb.main(["--out", str(out), "--akwf", str(akwf), "--pcm8", str(pcm8)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["banks"] == 2 and report["linked"] == 2
    assert report["missing"] == {"AKWF_0001": 1}  # AKWF_0002 has no 8-bit twin
    assert sorted(p.name for p in (out / "AKWF_0001").iterdir()) == ["AKWF_0001.pcm"]
    assert (out / "AKWF_sin" / "AKWF_sin_0001.pcm").read_bytes() == bytes([129]) * 256
    # again on the same folder: nothing changes, nothing fails
    assert pb.link_banks(akwf, pcm8, out)["linked"] == 2
    assert sorted(p.name for p in out.rglob("*.pcm")) == ["AKWF_0001.pcm", "AKWF_sin_0001.pcm"]


def test_two_pcm8_files_of_one_name_are_refused(tmp_path):
    pb = load_bench("pcm8_banks")
    akwf, pcm8 = _tree(tmp_path)
    (pcm8 / "AKWF_0001.pcm").write_bytes(bytes([130]) * 256)
    with pytest.raises(SystemExit, match="AKWF_0001.pcm"):
        pb.link_banks(akwf, pcm8, tmp_path / "banks")
