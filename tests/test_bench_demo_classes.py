"""bench/demo_classes.py: a demo class trained as the daemon trains it, judged on several draws."""

import json

import pytest
from conftest import load_bench
from miragen.corpus.synth import write_default_corpus
from miragen.demo.settings import config_text, demo_config


def _demo_folder(tmp_path):
    """What the bench reads of a demo folder: its configuration and its ingested corpus."""
    folder = tmp_path / "demo"
    write_default_corpus(folder / "corpus", per_class=20)  # 4 held out
    cfg = demo_config(folder, "sim", 2)
    (folder / "miragen.toml").write_text(config_text(cfg, "serial:/dev/null"))
    return folder


def test_a_class_is_trained_with_the_demo_options_and_judged_on_each_draw(tmp_path, capsys):
    q = load_bench("demo_classes")
    folder = _demo_folder(tmp_path)
    out = tmp_path / "runs.jsonl"
    argv = [str(folder), "--classes", "saw", "--seeds", "0,1", "--seconds", "6", "--draws", "2"]
    assert q.main(argv + ["--set", "width=8", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["sets"] for r in rows] == [["width=8", "seed=0"], ["width=8", "seed=1"]]
    for r in rows:
        assert r["class"] == "saw" and r["steps"] > 0 and len(r["draws"]) == 2
        assert r["passes"] == sum(d["verdict"] == "pass" for d in r["draws"])
        assert all(0.0 <= d["clusters"] <= 1.0 for d in r["draws"])
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_a_folder_without_a_demo_is_refused_by_name(tmp_path, capsys):
    q = load_bench("demo_classes")
    with pytest.raises(SystemExit):
        q.main([str(tmp_path)])
    assert str(tmp_path) in capsys.readouterr().err


def test_saved_judges_the_model_the_demo_saved_without_training(tmp_path, capsys):
    from miragen import config
    from miragen.engines.base import Budget, engine_class
    from miragen.service.tasks import _dataset

    q = load_bench("demo_classes")
    folder = _demo_folder(tmp_path)
    argv = [str(folder), "--classes", "saw", "--draws", "2", "--saved"]
    assert q.main(argv) == 1  # no saved model yet: that run's error, named
    assert "no saved model of class saw" in capsys.readouterr().out
    cfg = config.load(folder / "miragen.toml")
    train, _ = _dataset(folder, cfg, "saw").split(0.8, seed=0)
    model = engine_class("wavegan")(threads=1, width=8).fit(
        train, Budget(seconds=1), None, tmp_path / "ck"
    )
    model.save(folder / "models" / "saw" / "v0001")
    assert q.main(argv) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["saved"] is True and row["steps"] == model.meta["steps"]
    assert len(row["draws"]) == 2 and row["sets"] == []
    with pytest.raises(SystemExit):
        q.main(argv + ["--set", "batch=16"])
