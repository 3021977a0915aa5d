"""Sweep, cluster: tested with a tiny numpy-only engine registered for the test (no torch)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from miragen.engines import base
from miragen.engines.options import EngineOptions, option
from miragen.judge.cluster import cluster_waves


class ToyModel(base.Model):
    """Mixtures of two training waves of the class, plus noise: 'mix' 0 makes plain copies."""

    engine = "toy"

    def __init__(self, *a, waves=None, **kw):
        super().__init__(*a, **kw)
        self.waves = waves or {}

    def sample(self, n, cls=None, seed=None):
        cls = self.resolve_class(cls)
        rng = np.random.default_rng(seed)
        pool = self.waves[cls]
        mix, noise = float(self.meta["mix"]), float(self.meta["noise"])
        out = []
        for _ in range(n):
            i, j = rng.choice(len(pool), 2, replace=False)
            a = rng.uniform(0, mix)
            w = (1 - a) * pool[i] + a * pool[j] + rng.normal(0, noise, len(pool[i]))
            out.append((w / max(np.max(np.abs(w)), 1e-9)).astype(np.float32))
        return out

    def _save_files(self, folder: Path) -> None:
        np.savez(folder / "toy.npz", **{c: np.stack(v) for c, v in self.waves.items()})

    @classmethod
    def _load_files(cls, folder, header):
        data = np.load(folder / "toy.npz")
        return cls(
            header["mode"],
            header["classes"],
            header["lengths"],
            header["rate"],
            header["meta"],
            waves={c: list(data[c]) for c in data.files},
        )


@dataclass(frozen=True)
class ToyOptions(EngineOptions):
    engine: ClassVar[str] = "toy engine"

    mix: float = option(0.5, "share of a second training wave", at_least=0.0, at_most=1.0)
    noise: float = option(0.0, "added noise", at_least=0.0)
    seed: int = 0
    explode: bool = option(False, "fail on purpose")


class ToyEngine(base.Engine):
    name = "toy"
    model_class = ToyModel
    options_class = ToyOptions

    def fit(self, dataset, budget, progress, checkpoint_dir):
        if self.options.explode:
            raise base.EngineError("toy engine: exploded on purpose")
        meta = {"mix": self.options.mix, "noise": self.options.noise}
        return ToyModel(
            dataset.mode,
            dataset.class_names,
            {c: 256 for c in dataset.class_names},
            dataset.rate,
            meta,
            waves={c: list(v) for c, v in dataset.classes.items()},
        )


@pytest.fixture
def toy_engine(monkeypatch):
    monkeypatch.setitem(base.ENGINES, "toy", f"{__name__}:ToyEngine")
    return "toy"


def make_data(shared: Path, tmp: Path, banks=("ebass", "linear"), per=30) -> Path:
    data = tmp / "data"
    for b in banks:
        (data / b).mkdir(parents=True)
        for f in sorted((shared / "pcm8" / b).glob("*.pcm"))[:per]:
            shutil.copy(f, data / b / f.name)
    return data


def test_sweep_runs_grid_keeps_metadata_and_names_best(shared_data, tmp_path, toy_engine):
    from miragen.cli import main

    data = make_data(shared_data, tmp_path)
    out = tmp_path / "sweep"
    rc = main(
        [
            "sweep",
            "--engine",
            "toy",
            "--data",
            str(data),
            "--grid",
            "mix=0,0.6",
            "--grid",
            "explode=false,true",
            "--set",
            "noise=0.002",
            "--seconds",
            "1",
            "-o",
            str(out),
            "--count",
            "12",
        ]
    )
    assert rc == 0
    con = sqlite3.connect(out / "sweep.db")
    rows = con.execute(
        "SELECT id, params, seed, status, error, passed, failed_count, frechet_ratio, metrics, "
        "train_s FROM runs ORDER BY id"
    ).fetchall()
    best = con.execute("SELECT best_run, versions FROM sweeps").fetchone()
    assert len(rows) == 4
    by = {(json.loads(r[1])["mix"], json.loads(r[1])["explode"]): r for r in rows}
    assert by[(0, True)][3] == "failed" and "exploded" in by[(0, True)][4]
    copies, mixed = by[(0, False)], by[(0.6, False)]
    assert copies[3] == mixed[3] == "done" and copies[9] is not None
    m = json.loads(copies[8])
    assert set(m) == {"ebass", "linear"} and "copy_fraction" in m["ebass"]["failed"]
    assert best[0] == mixed[0], "the run that does not copy must win"
    assert "numpy" in json.loads(best[1])
    folder = out / f"run{mixed[0]:03d}"
    assert len(list((folder / "ebass").glob("cand*.pcm"))) == 12
    assert all(len(p.read_bytes()) == 256 for p in (folder / "linear").glob("*.pcm"))
    assert (folder / "contact.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "model" / "model.json").is_file()
    assert json.loads((folder / "report.json").read_text())["params"] == {
        "mix": 0.6,
        "explode": False,
    }
    assert (out / "summary.png").is_file()
    tsv = (out / "summary.tsv").read_text().splitlines()
    assert len(tsv) == 5 and "*best*" in next(
        line for line in tsv if "mix=0.6 explode=False" in line
    )


def test_sweep_refuses_bad_grid_before_training(shared_data, tmp_path, toy_engine):
    from miragen.cli import main

    data = make_data(shared_data, tmp_path, per=10)
    assert (
        main(
            [
                "sweep",
                "--engine",
                "toy",
                "--data",
                str(data),
                "--grid",
                "colour=red",
                "--seconds",
                "1",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "o").exists()
    assert (
        main(
            [
                "sweep",
                "--engine",
                "nope",
                "--data",
                str(data),
                "--grid",
                "mix=1",
                "--seconds",
                "1",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "sweep",
                "--engine",
                "toy",
                "--data",
                str(data),
                "--grid",
                "mix",
                "--seconds",
                "1",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_cluster_waves_separates_banks(shared_data):
    from sklearn.metrics import adjusted_rand_score

    banks = ("sin", "ebass", "granular")
    waves, truth = [], []
    for k, b in enumerate(banks):
        for f in sorted((shared_data / "pcm8" / b).glob("*.pcm"))[:12]:
            waves.append((np.frombuffer(f.read_bytes(), np.uint8).astype(float) - 128) / 128)
            truth.append(k)
    labels = cluster_waves(waves, 3)
    assert adjusted_rand_score(truth, labels) > 0.5
    auto = cluster_waves(waves, "auto")
    assert 2 <= len(set(auto.tolist())) <= 12
    sizes = np.bincount(labels)
    assert list(sizes) == sorted(sizes, reverse=True)  # class 0 is the largest


def test_cli_cluster_copies_never_moves(shared_data, tmp_path, cli):
    src = tmp_path / "mixed"
    src.mkdir()
    for b in ("sin", "ebass"):
        for f in sorted((shared_data / "pcm8" / b).glob("*.pcm"))[:6]:
            shutil.copy(f, src / f.name)
    before = sorted(p.name for p in src.iterdir())
    r = cli("cluster", str(src), "--k", "2", "-o", str(tmp_path / "out"), "--json")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(r.stdout)
    assert doc["k"] == 2 and doc["kind"] == "cycle" and len(doc["files"]) == 12
    assert sorted(p.name for p in src.iterdir()) == before
    copied = sorted(p.name for p in (tmp_path / "out").rglob("*.pcm"))
    assert copied == before
    again = cli("cluster", str(src), "--k", "2", "-o", str(tmp_path / "out"))
    assert again.returncode == 2 and b"not empty" in again.stderr
    labels = cli("cluster", str(src), "--k", "auto")
    assert labels.returncode == 0 and labels.stdout.count(b"\tAKWF_") == 12


def _blobs(spec: list[tuple[float, int]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs in 2-D (spread 1) at (x, 0) with n points each; features and truth."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal((cx, 0.0), 1.0, (n, 2)) for cx, n in spec])
    truth = np.concatenate([np.full(n, i) for i, (_, n) in enumerate(spec)])
    return x, truth


def test_auto_sorting_splits_a_class_larger_than_max_class():
    """The silhouette over everything picks the broadest division (two near blobs against a far
    one); a class over ``max_class`` is split again on its own members, and only then."""
    from miragen.judge.cluster import cluster_features
    from sklearn.metrics import adjusted_rand_score

    x, truth = _blobs([(0.0, 100), (6.0, 100), (60.0, 50)])
    whole = cluster_features(x, "auto")
    assert whole.k == 2 and np.bincount(whole.labels).tolist() == [200, 50]
    assert cluster_features(x, "auto", max_class=200).k == 2  # not larger: kept
    split = cluster_features(x, "auto", max_class=160)
    assert split.k == 3 and np.bincount(split.labels).tolist() == [100, 100, 50]
    assert adjusted_rand_score(truth, split.labels) == 1.0
    assert split.silhouette is not None and split.silhouette < whole.silhouette
    assert split.scores == whole.scores  # the top level's choice, as before
    assert cluster_features(x, 3, max_class=160).k == 3  # a number of classes is kept


def test_the_parts_of_a_split_are_joined_again_while_they_fit():
    """A split into three, of which two fit under ``max_class`` together: the nearest two are
    joined again (a family sliced by k-means comes back whole where it fits)."""
    from miragen.judge.cluster import cluster_features
    from sklearn.metrics import adjusted_rand_score

    x, truth = _blobs([(0.0, 60), (6.0, 60), (12.0, 80), (60.0, 50)])
    res = cluster_features(x, "auto", max_class=160)
    assert res.k == 3 and np.bincount(res.labels).tolist() == [120, 80, 50]
    assert adjusted_rand_score(truth, res.labels) < 1.0  # not the four blobs
    joined = np.where(truth == 1, 0, truth)  # the two nearest blobs as one
    assert adjusted_rand_score(joined, res.labels) == 1.0


def test_a_class_is_not_split_into_parts_under_the_smallest_class():
    """A class over ``max_class`` whose every split leaves a part under MIN_SPLIT_CLASS stays
    whole: no class of a handful of sounds, which no generator learns from."""
    from miragen.judge.cluster import MIN_SPLIT_CLASS, cluster_features

    n = 2 * MIN_SPLIT_CLASS - 2
    x, _ = _blobs([(0.0, n), (60.0, n)])
    res = cluster_features(x, "auto", max_class=MIN_SPLIT_CLASS)
    assert res.k == 2 and np.bincount(res.labels).tolist() == [n, n]


def test_cli_cluster_max_class_is_refused_where_it_means_nothing(shared_data, tmp_path, cli):
    src = tmp_path / "few"
    src.mkdir()
    for f in sorted((shared_data / "pcm8" / "sin").glob("*.pcm"))[:4]:
        shutil.copy(f, src / f.name)
    r = cli("cluster", str(src), "--k", "2", "--max-class", "40")
    assert r.returncode == 2 and b"--max-class applies to --k auto" in r.stderr
    r = cli("cluster", str(src), "--max-class", "-1")
    assert r.returncode == 2 and b"--max-class must be 0" in r.stderr
    assert cli("cluster", str(src), "--max-class", "0").returncode == 0


def test_parse_k():
    from miragen.errors import MiragenError
    from miragen.judge.cluster import parse_k

    assert parse_k("auto") == "auto" and parse_k("3") == 3
    for bad in ("zero", "0", "-2"):
        with pytest.raises(MiragenError, match="--k"):
            parse_k(bad)
