"""The shared generate pipeline (engines/generate.py) with a tiny numpy model: no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from miragen import config as configmod
from miragen.engines.base import Model
from miragen.engines.generate import generate_to_folder, load_reference, save_reference
from miragen.errors import MiragenError


class ToyModel(Model):
    """Random band-limited cycles (or decaying one-shots), one bank per class."""

    engine = "wavegan"

    def sample(self, n, cls=None, seed=None):
        cls = self.resolve_class(cls)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            if self.mode == "cycle":
                k = np.arange(1, 17)
                spec = np.zeros(self.lengths[cls] // 2 + 1, complex)
                spec[1:17] = rng.uniform(0.1, 1, 16) / k * np.exp(2j * np.pi * rng.uniform(size=16))
                w = np.fft.irfft(spec, self.lengths[cls])
            else:
                m = int(rng.integers(300, self.lengths[cls]))
                t = np.arange(m)
                w = np.sin(2 * np.pi * rng.uniform(100, 900) * t / self.rate) * np.exp(-t / (m / 4))
            out.append((w / np.max(np.abs(w))).astype(np.float32))
        return out

    def _save_files(self, folder):
        pass

    @classmethod
    def _load_files(cls, folder, header):
        raise AssertionError("not used")


def _cycles(n, seed):
    return ToyModel("cycle", ["a"], {"a": 256}, 29411).sample(n, seed=seed)


def test_gate_on_writes_whole_pages_no_zero(tmp_path: Path):
    model = ToyModel("cycle", ["a", "b"], {"a": 256, "b": 512}, 29411)
    for cls, size in (("a", 256), ("b", 512)):
        train = model.sample(30, cls, seed=1)
        res = generate_to_folder(model, 3, tmp_path / cls, cls=cls, train_waves=train, seed=5)
        assert len(res.pcm) == 3 and res.gate
        for p in res.pcm:
            data = p.read_bytes()
            assert len(data) == size and 0 not in data  # one exact cycle, no 0x00
            assert p.with_suffix(".wav").is_file() and p.with_suffix(".png").is_file()
        assert res.candidates == 3 * configmod.defaults()["generate"]["oversample"]
        assert len(res.kept) == 3 and all(i not in res.rejected for i in res.kept)


def test_gate_off_writes_every_candidate(tmp_path: Path):
    model = ToyModel("cycle", ["a"], {"a": 256}, 29411)
    res = generate_to_folder(model, 7, tmp_path, gate=False, seed=2)
    assert len(res.pcm) == 7 and res.candidates == 7 and not res.rejected
    assert len(list(tmp_path.glob("*.pcm"))) == 7


def test_gate_rejects_copies(tmp_path: Path):
    class Copier(ToyModel):
        def sample(self, n, cls=None, seed=None):
            return [w.copy() for w in TRAIN[:n]]

    TRAIN = _cycles(20, 3)
    res = generate_to_folder(
        Copier("cycle", ["a"], {"a": 256}, 29411), 4, tmp_path, train_waves=TRAIN, seed=1
    )
    assert res.pcm == [] and all("copy" in r for r in res.rejected.values())


def test_oneshot_pages_and_limit(tmp_path: Path):
    model = ToyModel("oneshot", ["hit"], {"hit": 4000}, 29411)
    res = generate_to_folder(model, 3, tmp_path, gate=False, seed=4)
    for p in res.pcm:
        data = p.read_bytes()
        assert len(data) % 256 == 0 and 0 < len(data) <= 65536 and 0 not in data


def test_reference_round_trip_and_gate_needs_it(tmp_path: Path):
    model = ToyModel("cycle", ["a"], {"a": 256}, 29411)
    with pytest.raises(MiragenError, match="training waves"):
        generate_to_folder(model, 2, tmp_path / "out", seed=1)
    train = _cycles(12, 9)
    save_reference(tmp_path, {"a": train})
    ref = load_reference(tmp_path)
    assert list(ref) == ["a"] and len(ref["a"]) == 12
    assert max(float(np.max(np.abs(r - t))) for r, t in zip(ref["a"], train)) <= 1 / 127 + 1e-6
    model.folder = tmp_path
    res = generate_to_folder(model, 2, tmp_path / "out", seed=1)
    assert len(res.pcm) == 2
    assert load_reference(tmp_path / "nothing") == {}


def test_bad_count(tmp_path: Path):
    with pytest.raises(MiragenError):
        generate_to_folder(ToyModel("cycle", ["a"], {"a": 256}, 29411), 0, tmp_path, gate=False)
