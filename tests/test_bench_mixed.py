"""bench/mixed_banks.py: the class folders it hands to the quality bench must hold working links
whatever the form of ``--out`` (a relative path gave links relative to the wrong folder)."""

from pathlib import Path

import numpy as np
from conftest import load_bench
from miragen.audio.io import write_wav_u8


def _cycle(kind: str, i: int) -> bytes:
    t = np.arange(256) / 256.0
    x = np.sin(2 * np.pi * t) if kind == "sine" else 2 * ((t + 0.01 * i) % 1.0) - 1
    x = x * (0.6 + 0.02 * i)
    return bytes(np.clip(np.round(x * 127 + 128), 1, 255).astype(np.uint8))


def test_sorted_classes_are_links_that_resolve_from_a_relative_work_folder(tmp_path, monkeypatch):
    mixed = load_bench("mixed_banks")
    banks = tmp_path / "banks"
    for kind in ("sine", "saw"):
        (banks / kind).mkdir(parents=True)
        for i in range(8):
            write_wav_u8(banks / kind / f"{kind}{i}.wav", _cycle(kind, i), 44100)
    monkeypatch.chdir(tmp_path)
    work = Path("out") / "mixed.work"  # relative, as `--out bench/results/x.jsonl` gives
    truth = mixed.pour(banks, ["sine", "saw"], work)
    sorting = mixed.sort_pool(work, truth)
    assert sorting["sorted"] == 16
    links = sorted((work / "classes").glob("*/*.wav"))
    assert len(links) == 16
    for link in links:
        assert link.is_symlink() and link.resolve().is_file(), link
