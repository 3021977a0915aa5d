"""The wavegan engine end to end through the real CLI: train → generate, resume after kill -9,
save/load/export/import, novelty, gate off. Tiny budgets: these check the plumbing; the quality
bar is measured by bench/quality.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from miragen.corpus.synth import write_default_corpus  # noqa: E402
from miragen.engines.base import Budget, EngineError, load_model  # noqa: E402

FAST = [
    "--set",
    "eval_every=20",
    "--set",
    "eval_samples=32",
    "--set",
    "checkpoint_every=10",
    "--set",
    "threads=1",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    write_default_corpus(folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    from conftest import run_cli

    model = tmp_path_factory.mktemp("m") / "model"
    r = run_cli(
        "train",
        "--engine",
        "wavegan",
        "--mode",
        "cycle",
        "--data",
        str(corpus),
        "--steps",
        "40",
        "-o",
        str(model),
        "--json",
        *FAST,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert b"step" in r.stderr  # progress lines on stderr
    return model, json.loads(r.stdout)


def test_train_then_generate_cli(trained, tmp_path, cli):
    """Train → generate through the CLI, gate on. Nothing here is left to chance: training is
    seeded (engine seed 0, one thread: the same weights every run) and so is the draw
    (``--seed 7``), so the gate's outcome is fixed. With the default gate, 3 of the 12
    candidates (-n 3 × oversample 4) are kept: exit 0, the 3 files listed on stdout. Fewer
    than asked is exit 1 with an error line naming the shortfall; that is forced with a gate
    that calls every candidate a copy (copy_factor 10: nearer to the training set than 10×
    its typical spacing; at seed 7 all 12 candidates already are at 3×)."""
    model, summary = trained
    assert summary["meta"]["steps"] == 40 and summary["engine"] == "wavegan"
    assert not (model / "checkpoint").exists()  # a finished run leaves no checkpoint behind
    header = json.loads((model / "model.json").read_text())
    assert (
        header["engine"] == "wavegan" and header["mode"] == "cycle" and len(header["classes"]) == 4
    )
    cls = header["classes"][1]

    def generate(out: Path, *extra: str):
        return cli(
            "generate",
            str(model),
            "--class",
            cls,
            "-n",
            "3",
            "-o",
            str(out),
            "--seed",
            "7",
            "--gate",
            "on",
            *extra,
        )

    r = generate(tmp_path / "out")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    pcm = sorted((tmp_path / "out").glob("*.pcm"))
    assert [p.name for p in pcm] == [f"{cls}-{k:03d}.pcm" for k in (1, 2, 3)]
    assert r.stdout.decode().splitlines() == [str(p) for p in pcm]
    assert "miragen: note: 3 kept of 12" in err and "miragen: error" not in err, err
    for p in pcm:
        data = p.read_bytes()
        assert len(data) == 256 and 0 not in data
        assert p.with_suffix(".wav").is_file() and p.with_suffix(".png").is_file()

    config = tmp_path / "copies.toml"
    config.write_text("[generate]\ncopy_factor = 10.0\n")
    short = generate(tmp_path / "short", "--config", str(config))
    err = short.stderr.decode()
    assert short.returncode == 1, err
    assert short.stdout == b""
    assert "miragen: note: 0 kept of 12, 12 copy" in err, err
    assert "miragen: error: only 0 of 3 candidates passed the gate" in err, err
    assert "Traceback" not in err
    assert not list((tmp_path / "short").glob("*.pcm"))


def test_gate_off_writes_every_candidate(trained, tmp_path, cli):
    model, _ = trained
    r = cli("generate", str(model), "-n", "5", "-o", str(tmp_path), "--gate", "off", "--seed", "1")
    assert r.returncode == 0, r.stderr.decode()
    files = sorted(tmp_path.glob("*.pcm"))
    assert len(files) == 5 and all(
        len(f.read_bytes()) == 256 and 0 not in f.read_bytes() for f in files
    )


def test_evaluate_draws_from_a_model_as_generate_does(trained, corpus, tmp_path, cli):
    """``evaluate --model`` draws -n sounds through the generate pipeline (gate, postprocess),
    judges them and names what it drew; the same draw written by ``generate`` and judged with
    ``--gen`` gets the same report. Options that belong to the other source are refused."""
    model, _ = trained
    header = json.loads((model / "model.json").read_text())
    cls = header["classes"][1]
    sets = ["--train", str(corpus / cls), "--held", str(corpus / cls), "--json"]
    r = cli("evaluate", "--model", str(model), "--class", cls, "-n", "8", "--seed", "3", *sets)
    assert r.returncode in (0, 1, 3), r.stderr.decode()
    drawn = json.loads(r.stdout)
    assert drawn["sizes"]["gen"] == 8 and drawn["kind"] == "cycle"
    assert f"drew 8 sounds of class '{cls}'".encode() in r.stderr
    g = cli("generate", str(model), "--class", cls, "-n", "8", "--seed", "3", "-o", str(tmp_path))
    assert g.returncode == 0, g.stderr.decode()
    r2 = cli("evaluate", "--gen", str(tmp_path), "--kind", "cycle", "--seed", "3", *sets)
    assert json.loads(r2.stdout)["metrics"] == drawn["metrics"]
    for extra, says in (
        (["--model", str(model), "--kind", "oneshot"], b"a cycle model, not --kind oneshot"),
        (["--gen", str(tmp_path), "--kind", "cycle", "-n", "4"], b"go with --model"),
        (["--gen", str(tmp_path)], b"--kind is needed with --gen"),
    ):
        bad = cli("evaluate", *extra, *sets)
        assert bad.returncode != 0 and says in bad.stderr, bad.stderr.decode()


def test_samples_differ_from_training_and_each_other(trained, corpus):
    from miragen.corpus.dataset import load_dataset

    model, _ = trained
    m = load_model(model)
    cls = m.classes[0]
    gen = m.sample(16, cls, seed=3)
    assert all(
        g.shape == (256,) and g.dtype == np.float32 and np.all(np.abs(g) <= 1.0 + 1e-6) for g in gen
    )
    train = load_dataset(corpus, "cycle").classes[cls]
    dist = np.array(
        [
            [np.min([np.abs(g - np.roll(t, s)).max() for s in range(0, 256, 8)]) for t in train]
            for g in gen
        ]
    )
    assert dist.min() > 0.02  # no generated cycle is a (rotated) training cycle
    assert np.std(np.stack(gen), axis=0).mean() > 1e-3  # not one output for every z
    again = m.sample(16, cls, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(gen, again))  # same seed, same sounds


def test_export_import_round_trip(trained, tmp_path, cli):
    model, _ = trained
    f = tmp_path / "m.tar.gz"
    r = cli("model", "export", str(model), "-o", str(f))
    assert r.returncode == 0, r.stderr.decode()
    r = cli("model", "import", str(f), "-o", str(tmp_path / "imported"))
    assert r.returncode == 0, r.stderr.decode()
    a, b = load_model(model), load_model(tmp_path / "imported")
    assert a.classes == b.classes and a.lengths == b.lengths
    assert all(np.array_equal(x, y) for x, y in zip(a.sample(4, seed=11), b.sample(4, seed=11)))
    # importing again without --force is refused with a clear message, not a traceback
    r = cli("model", "import", str(f), "-o", str(tmp_path / "imported"))
    assert r.returncode == 2 and b"already exists" in r.stderr and b"Traceback" not in r.stderr
    # a path-traversal archive is refused
    import tarfile

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(model / "model.json", arcname="../evil.json")
    r = cli("model", "import", str(bad), "-o", str(tmp_path / "evil"))
    assert (
        r.returncode == 2
        and not (tmp_path / "evil").exists()
        and not (tmp_path / "evil.json").exists()
    )


def test_resume_after_kill9(corpus, tmp_path):
    import torch

    model = tmp_path / "model"
    ckpt = model / "checkpoint" / "wavegan-checkpoint.pt"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = [
        sys.executable,
        "-m",
        "miragen",
        "train",
        "--engine",
        "wavegan",
        "--data",
        str(corpus),
        "--class",
        "saw",
        "-o",
        str(model),
        "--set",
        "eval_every=100000",
        "--set",
        "checkpoint_every=5",
        "--set",
        "threads=1",
    ]
    proc = subprocess.Popen(
        args + ["--steps", "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not ckpt.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ckpt.is_file(), "no checkpoint written"
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    step = int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"])
    assert step >= 5 and step % 5 == 0
    r = subprocess.run(
        args + ["--steps", str(step + 3), "--json"], capture_output=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr.decode()
    assert f"resumed at step {step}".encode() in r.stderr
    assert json.loads(r.stdout)["meta"]["steps"] == step + 3


def test_oneshot_tiny(tmp_path, cli):
    from miragen.audio.io import write_wav_u8  # noqa: F401  (the audio core is what writes inputs)
    from miragen.audio.mirage8 import pad_to_pages, to_mirage8

    data = tmp_path / "hits"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        n = int(rng.integers(1500, 6000))
        t = np.arange(n)
        x = np.sin(2 * np.pi * rng.uniform(80, 400) * t / 29411) * np.exp(
            -t / (n / 5)
        ) + 0.1 * rng.standard_normal(n) * np.exp(-t / 300)
        (data / f"hit{i}.pcm").write_bytes(bytes(pad_to_pages(to_mirage8(x))))
    model = tmp_path / "m"
    r = cli(
        "train",
        "--mode",
        "oneshot",
        "--data",
        str(data),
        "--steps",
        "3",
        "-o",
        str(model),
        "--set",
        "oneshot_len=1024",
        "--set",
        "eval_every=1000",
        "--set",
        "threads=1",
    )
    assert r.returncode == 0, r.stderr.decode()
    m = load_model(model)
    waves = m.sample(3, seed=1)
    assert all(2 <= len(w) <= 6144 and np.all(np.isfinite(w)) for w in waves)
    r = cli("generate", str(model), "-n", "2", "-o", str(tmp_path / "out"), "--gate", "off")
    assert r.returncode == 0, r.stderr.decode()
    for p in (tmp_path / "out").glob("*.pcm"):
        b = p.read_bytes()
        assert len(b) % 256 == 0 and 0 < len(b) <= 65536 and 0 not in b


def test_options_are_checked(tmp_path, cli):
    from miragen.engines.wavegan import WaveGANEngine, WaveGANOptions

    with pytest.raises(EngineError, match="unknown option"):
        WaveGANEngine(widht=3)
    with pytest.raises(EngineError, match="recipe"):
        WaveGANEngine(recipe="nope")
    paper = WaveGANOptions.from_mapping({"recipe": "wavegan-paper"})
    assert paper.loss == "wgan-gp" and paper.d_steps == 5 and paper.width == 64
    # text from --set and typed values mean the same; a recipe's values yield to given ones
    assert WaveGANOptions.from_mapping({"mbstd": "false", "width": "32"}) == (
        WaveGANOptions.from_mapping({"mbstd": False, "width": 32})
    )
    assert WaveGANOptions.from_mapping({"recipe": "wavegan-paper", "width": "8"}).width == 8
    with pytest.raises(EngineError, match="'mbstd' must be true or false"):
        WaveGANEngine(mbstd="maybe")
    with pytest.raises(EngineError, match="'width' must be a whole number"):
        WaveGANEngine(width="1.5")
    with pytest.raises(EngineError, match="ema_beta must be < 1.0"):
        WaveGANEngine(ema_beta=1)
    with pytest.raises(EngineError, match="did you mean 'width'"):
        WaveGANEngine(widht=3)
    r = cli(
        "train",
        "--data",
        str(tmp_path),
        "--steps",
        "1",
        "-o",
        str(tmp_path / "m"),
        "--set",
        "bogus=1",
    )
    assert r.returncode == 2 and b"Traceback" not in r.stderr


def test_the_configurations_engine_options_are_the_base_of_set(corpus, tmp_path, cli):
    """``train.set`` in the configuration gives every training its engine options (the daemon's
    and ``miragen train``'s); ``--set`` overrides a key of it; a key the engine does not know is
    refused with the configuration's key named."""
    cfg = tmp_path / "m.toml"
    cfg.write_text('[train]\nset = "width=8, z_dim=16"\n')
    out = tmp_path / "m"
    args = ("train", "--config", str(cfg), "--data", str(corpus / "saw"), "--steps", "2")
    r = cli(*args, "-o", str(out), "--set", "z_dim=8", "--set", "eval_every=100", "--json")
    assert r.returncode == 0, r.stderr.decode()
    opts = json.loads((out / "model.json").read_text())["meta"]["options"]
    assert (opts["width"], opts["z_dim"]) == (8, 8)
    cfg.write_text('[train]\nset = "widht=8"\n')
    r = cli(*args, "-o", str(tmp_path / "m2"))
    assert r.returncode == 2 and b"train.set" in r.stderr and b"did you mean 'width'" in r.stderr
    r = cli("config", "check", str(cfg))  # before the daemon ever trains with it
    assert r.returncode == 2 and b"train.set: wavegan: unknown option 'widht'" in r.stderr
    cfg.write_text('[train]\nset = "width"\n')
    r = cli(*args, "-o", str(tmp_path / "m3"))
    assert r.returncode != 0 and b"train.set: must be KEY=VALUE" in r.stderr


def test_paper_recipe_trains(corpus, tmp_path):
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANEngine

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    m = WaveGANEngine(recipe="wavegan-paper", width=8, batch=8, eval_every=1000, threads=1).fit(
        ds, Budget(steps=2), None, tmp_path / "ck"
    )
    m.save(tmp_path / "m")
    assert load_model(tmp_path / "m").sample(2, seed=0)[0].shape == (256,)


def test_cover_features_are_the_judges():
    """The coverage term measures distance in the judge's own feature space."""
    import torch
    from miragen.engines.wavegan.loss import cover_features
    from miragen.judge.features import cycle_features

    rng = np.random.default_rng(3)
    k = np.arange(1, 129)
    waves = []
    for i in range(12):  # band-limited cycles with spectra from bright to dull, random phases
        mags = k ** -rng.uniform(0.5, 2.5) * (rng.uniform(size=128) < 0.7)
        spec = np.zeros(129, complex)
        spec[1:] = mags * np.exp(2j * np.pi * rng.uniform(size=128))
        waves.append(np.fft.irfft(spec, 256).astype(np.float32))
    for width in (8, 40, 128):  # steep edges and flat tops (the slope part), 8-bit quantised
        pulse = np.where(np.arange(256) < width, 0.8, -0.8) + rng.uniform(-0.5, 0.5, 256) / 128
        waves.append((np.round(pulse * 128) / 128).astype(np.float32))
    ref = cycle_features(waves)
    ours = cover_features(torch.as_tensor(np.stack(waves))).numpy()
    d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    d_ours = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    iu = np.triu_indices(len(waves), 1)
    assert np.corrcoef(d_ref[iu], d_ours[iu])[0, 1] > 0.99
    assert np.allclose(d_ours[iu], d_ref[iu], rtol=0.1, atol=0.05)


def test_snapshot_score_weighs_how_far_rules_miss():
    from miragen.engines.wavegan.selection import margin, shortfall
    from miragen.judge.metrics import Check

    hair = Check("diversity", 0.89, 0.9, 0.9, "≥ 0.9", False)
    mile = [
        Check("diversity", 0.5, 0.9, 0.9, "≥ 0.9", False),
        Check("recall", 0.2, 0.9, 0.72, "≥ 0.8 × H", False),
    ]
    assert shortfall(hair) < sum(shortfall(c) for c in mile)
    assert shortfall(Check("ndb_k", 0.1, 0.0, 0.2, "≤ H + 0.1", True)) == 0.0
    assert shortfall(Check("ndb_k", 0.3, 0.0, 0.2, "≤ H + 0.1", False)) == pytest.approx(0.1)
    assert shortfall(Check("frechet", 40.0, 10.0, 20.0, "≤ 2 × H", False)) == pytest.approx(
        np.log(2)
    )
    # among passing snapshots, the one farthest from its nearest limit ranks first
    assert (
        margin(Check("diversity", 1.0, 0.9, 0.9, "≥ 0.9", True))
        > margin(Check("diversity", 0.91, 0.9, 0.9, "≥ 0.9", True))
        > 0
    )
    assert margin(Check("frechet", 10.0, 10.0, 20.0, "≤ 2 × H", True)) == pytest.approx(np.log(2))


def test_cv_keeps_the_latest_snapshot_within_one_standard_error_of_the_best():
    from miragen.engines.wavegan.selection import cv_keeps

    def replay(trace, k_se):
        peak, peak_se, kept = None, 0.0, None
        for step, ok, least, se in trace:
            if peak is None:
                keep, new = True, True
            else:
                keep, new = cv_keeps((ok, least), peak, peak_se, k_se)
            if new:
                peak, peak_se = (ok, least), se
            if keep:
                kept = step
        return kept

    trace = [
        (300, 1, 0.90, 0.05),
        (600, 1, 0.95, 0.02),
        (900, 1, 0.94, 0.01),
        (1200, 1, 0.92, 0.01),
    ]
    assert replay(trace, 0.0) == 600  # the best figure itself
    assert replay(trace, 1.0) == 900  # 0.94 ≥ 0.95 − 0.02; 0.92 is not
    assert replay(trace, 2.0) == 1200
    # a copy failure is never traded for a better figure, and never kept within the error
    assert replay([*trace, (1500, 0, 0.99, 0.0)], 10.0) == 1200
    # a new best resets the reference: later snapshots are measured against it
    assert replay([*trace, (1500, 1, 1.10, 0.01), (1800, 1, 1.05, 0.01)], 1.0) == 1500


def test_select_cv_keeps_the_latest_snapshot_within_select_se(corpus, tmp_path, monkeypatch):
    """The trainer applies the rule online: scripted cross-validated scores at steps 2, 4, 6 and
    8 keep step 4 (the best) with ``select_se=0`` and step 6 (within one error) with 1; step 8
    failed a copy rule and is never kept."""
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANEngine, train

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    small = dict(width=8, batch=8, threads=1, eval_every=2, eval_samples=32, checkpoint_every=100)
    script = [(1, 0.90, 0.05), (1, 0.95, 0.02), (1, 0.94, 0.01), (0, 0.99, 0.01)]
    for k_se, kept in ((0.0, 4), (1.0, 6)):
        left = list(script)
        monkeypatch.setattr(
            train, "judge_score", lambda *a, **kw: ((1, 0.0, 0.0), {"cv": left.pop(0)})
        )
        eng = WaveGANEngine(select="cv", select_se=k_se, **small)
        model = eng.fit(ds, Budget(steps=8), None, tmp_path / f"k{k_se}")
        assert model.meta["best_step"] == kept and not left


def test_coverage_latents_survive_resume(corpus, tmp_path):
    """The coverage latents are checkpointed and a resumed run continues with them: marked in
    the checkpoint, they come back in the checkpoint the resumed run writes a step later (with
    no re-matching in between); a fresh start would have drawn new ones."""
    import torch
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANEngine

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    opts = dict(eval_every=1000, checkpoint_every=3, cover_every=2, threads=1, batch=8)
    WaveGANEngine(**opts).fit(ds, Budget(steps=3), None, tmp_path / "ck")
    ckpt = tmp_path / "ck" / "wavegan-checkpoint.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    z = state["cover_z"]
    assert z.shape == (len(ds.classes["pulse"]) - round(0.15 * len(ds.classes["pulse"])), 64)
    assert torch.isfinite(z).all() and state["step"] == 3
    marker = torch.full_like(z, 0.5)
    state["cover_z"] = marker
    torch.save(state, ckpt)
    said = []
    resumed = dict(opts, cover_every=1000)  # not part of the checkpoint's fingerprint
    WaveGANEngine(**resumed).fit(ds, Budget(steps=4), lambda p: said.append(p.message), ckpt.parent)
    assert "resumed at step 3" in said
    after = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert after["step"] == 4 and torch.equal(after["cover_z"], marker)
    off = WaveGANEngine(**opts, cover_lambda=0).fit(ds, Budget(steps=2), None, tmp_path / "ck2")
    assert off.meta["steps"] == 2


def test_copy_and_spread_hinges():
    import torch
    from miragen.engines.wavegan.loss import copy_hinge, spread_hinge

    real = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    real_y = torch.tensor([0, 1])
    radius = torch.tensor([1.0, 1.0])
    # an exact copy of its own class's sound is pushed; the other class's sound does not count
    assert copy_hinge(
        torch.tensor([[0.0, 0.0]]), torch.tensor([0]), real, real_y, radius
    ).item() == pytest.approx(1.0)
    assert (
        copy_hinge(torch.tensor([[10.0, 0.0]]), torch.tensor([0]), real, real_y, radius).item()
        == 0.0
    )
    assert (
        copy_hinge(torch.tensor([[0.0, 3.0]]), torch.tensor([0]), real, real_y, radius).item()
        == 0.0
    )
    target = torch.tensor([2.0, 2.0])
    y = torch.tensor([0, 0, 1])
    collapsed = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    spread = torch.tensor([[0.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
    assert spread_hinge(collapsed, y, target).item() == pytest.approx(
        1.0
    )  # (2 − 0) / 2, squared; only the same-class pair counts
    assert spread_hinge(spread, y, target).item() == 0.0
    # the gradient spreads a collapsed class apart
    x = collapsed.clone() + torch.tensor([[0.0, 0.0], [0.0, 0.1], [0.0, 0.0]])
    x.requires_grad_(True)
    spread_hinge(x, y, target).backward()
    assert x.grad[0, 1] > 0 > x.grad[1, 1]


def test_local_hinge_pushes_huddled_outputs_apart():
    import torch
    from miragen.engines.wavegan.loss import knn_mean, local_hinge

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(40, 8, generator=gen)
    target = {0: torch.tensor([0.0] * 4 + [float(knn_mean(real[:n], 3)) for n in range(4, 41)])}
    # twelve outputs in three tight groups of four: spread on the whole, huddled locally
    centres = real[:3].repeat_interleave(4, dim=0)
    huddled = (centres + 0.01 * torch.randn(12, 8, generator=gen)).requires_grad_(True)
    y = torch.zeros(12, dtype=torch.long)
    loss = local_hinge(huddled, y, target, 3)
    assert loss.item() > 0.5  # their 3rd neighbours are far nearer than real sounds'
    loss.backward()
    before = knn_mean(huddled.detach(), 3)
    assert knn_mean(huddled.detach() - 0.5 * huddled.grad, 3) > before
    # real-like outputs are not pushed, nor a class without a target, nor a class of too few
    assert local_hinge(real[20:32], y, target, 3).item() < 0.05
    assert local_hinge(real[20:32], y + 1, target, 3).item() == 0.0
    assert local_hinge(real[20:23], y[:3], target, 3).item() == 0.0


def test_twin_hinge_pulls_families_of_near_twins_apart():
    import torch
    from miragen.engines.wavegan.loss import twin_hinge

    gen = torch.Generator().manual_seed(0)
    # eight families of four near-twins (what a model that memorises 8 sounds with an offset
    # draws): every output has a class-mate within 0.05, the radius is 1
    centres = 10 * torch.randn(8, 6, generator=gen)
    fam = centres.repeat_interleave(4, dim=0) + 0.01 * torch.randn(32, 6, generator=gen)
    fam.requires_grad_(True)
    y = torch.zeros(32, dtype=torch.long)
    radius = torch.tensor([1.0, 1.0])
    loss = twin_hinge(fam, y, radius)
    assert loss.item() > 0.9
    loss.backward()
    nn_before = torch.cdist(fam.detach(), fam.detach()).fill_diagonal_(float("inf")).min(1).values
    moved = fam.detach() - 0.2 * fam.grad
    nn_after = torch.cdist(moved, moved).fill_diagonal_(float("inf")).min(1).values
    assert nn_after.mean() > nn_before.mean()
    # outputs farther apart than the radius are not pushed; nor twins of different classes,
    # nor a class with no radius (a class of one sound has no spacing)
    assert twin_hinge(centres, y[:8], radius).item() == 0.0
    pair = torch.zeros(2, 6)
    assert twin_hinge(pair, torch.tensor([0, 1]), radius).item() == 0.0
    assert twin_hinge(fam.detach(), y, torch.tensor([0.0, 1.0])).item() == 0.0


def test_inside_hinge_pulls_outputs_back_into_the_real_balls():
    import torch
    from miragen.engines.wavegan.loss import inside_hinge

    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 0, 1])
    radii = torch.tensor([1.0, 1.0, 1.0, float("inf")])  # class 1: too small for a ball
    scale = torch.tensor([2.0, 1.0])
    out = torch.tensor([[0.5, 0.5], [4.0, 0.0], [50.0, 50.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1])
    loss = inside_hinge(out, y, real, labels, radii, scale)
    # inside a ball: 0; (4, 0) lies 3 from (1, 0), 2 beyond its ball, ÷ the scale 2; class 1: 0
    assert loss.item() == pytest.approx((0.0 + 1.0 + 0.0) / 3)
    loss.backward()
    assert out.grad[1, 0] > 0 and out.grad[0].abs().sum() == 0 and out.grad[2].abs().sum() == 0
    # another class's ball does not count
    assert inside_hinge(real[3:], torch.tensor([0]), real, labels, radii, scale).item() > 1


def test_select_chooses_which_snapshot_is_kept(corpus, tmp_path):
    """``select``: the judge's score on the internal hold-out (default), the cross-validated
    figures on the training set (``cv``), or the latest snapshot (``last``)."""
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANEngine

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    small = dict(width=8, batch=8, threads=1, eval_every=2, eval_samples=32, checkpoint_every=100)
    last = WaveGANEngine(select="last", **small).fit(ds, Budget(steps=6), None, tmp_path / "a")
    assert last.meta["best_step"] == 6
    cv = WaveGANEngine(select="cv", **small).fit(ds, Budget(steps=6), None, tmp_path / "b")
    figures = cv.meta["best_metrics"]
    assert {"cv_recall", "cv_coverage", "cv_diversity", "cv_precision"} <= set(figures)
    assert cv.meta["best_step"] in (2, 4, 6)
    with pytest.raises(EngineError, match="select must be one of judge, cv, last"):
        WaveGANEngine(select="best")


def test_a_diverged_run_stops_with_a_clear_error_and_keeps_nothing(corpus, tmp_path):
    """The losses stay on the device and are read on the host every ``LOSS_CHECK_EVERY`` steps
    at most (and at every report, judged snapshot and checkpoint): a run whose losses turn
    non-finite stops there with an error naming the step, before anything is kept."""
    import re

    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANOptions
    from miragen.engines.wavegan import train as wt

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    opts = WaveGANOptions(width=8, batch=8, eval_every=1000, checkpoint_every=1000, threads=1)
    trainer = wt.Trainer(ds, opts, tmp_path / "ck")
    g_step = trainer.g_step

    def g_step_going_wrong():
        loss = g_step()
        return loss * float("nan") if trainer.step >= 3 else loss

    trainer.g_step = g_step_going_wrong
    with pytest.raises(EngineError, match="diverged") as err:
        trainer.run(Budget(steps=200))
    assert int(re.search(r"at step (\d+)", str(err.value)).group(1)) == wt.LOSS_CHECK_EVERY
    assert "nan" in str(err.value)
    assert trainer.best is None and not (tmp_path / "ck" / wt.CHECKPOINT).exists()


@pytest.mark.parametrize(
    "factor,kernel,padding",
    [(2, 9, "zeros"), (2, 9, "circular"), (4, 25, "zeros"), (3, 7, "circular")],
)
def test_the_polyphase_upsampling_is_the_nearest_upsampling_then_the_convolution(
    factor, kernel, padding
):
    """The generator's blocks run "upsample ×factor (nearest), then convolve" as one shorter
    convolution per output phase: the same outputs and the same gradients (to the input and
    to the weights), for both paddings and both modes' shapes."""
    import torch
    import torch.nn.functional as F
    from miragen.engines.wavegan.networks import UpBlock

    torch.manual_seed(0)
    blk = UpBlock(8, 6, factor, kernel, padding, transpose=False).double()
    x = torch.randn(3, 8, 16, dtype=torch.float64, requires_grad=True)
    fast = blk(x)
    slow = blk.conv(F.interpolate(x, scale_factor=factor, mode="nearest"))
    slow = F.leaky_relu(blk.conv2(F.leaky_relu(slow, 0.2)), 0.2) + F.leaky_relu(slow, 0.2)
    assert fast.shape == slow.shape == (3, 6, 16 * factor)
    assert torch.allclose(fast, slow, atol=1e-12)
    wrt = [x, blk.conv.weight, blk.conv.bias]
    probe = torch.randn_like(slow)
    for a, b in zip(
        torch.autograd.grad((fast * probe).sum(), wrt),
        torch.autograd.grad((slow * probe).sum(), wrt),
    ):
        assert torch.allclose(a, b, atol=1e-11)
    # the phases' tap sums are a buffer built from the kernel: not in a model's saved weights
    assert not any("taps" in k for k in blk.state_dict())


def test_the_generator_step_leaves_the_discriminators_gradients_alone(corpus, tmp_path):
    """The G step treats D's weights as constants (it does not compute their gradients, which
    the D step would discard), gives the generator the same gradients as before, and leaves D
    trainable."""
    import torch
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANOptions
    from miragen.engines.wavegan import train as wt

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    opts = WaveGANOptions(width=8, batch=8, eval_every=1000, checkpoint_every=1000, threads=1)
    trainer = wt.Trainer(ds, opts, tmp_path / "ck")
    trainer.d_step()
    d_grads = [p.grad.clone() for p in trainer.d.parameters()]
    trainer.opt_g.step = lambda: None  # keep G as it is: its gradients are compared below
    state = torch.get_rng_state()
    trainer.g_step()
    g_grads = [p.grad.clone() for p in trainer.g.parameters()]
    assert all(p.requires_grad for p in trainer.d.parameters())
    assert all(torch.equal(p.grad, g) for p, g in zip(trainer.d.parameters(), d_grads))
    # the same step with D's gradients computed gives G the same gradients
    torch.set_rng_state(state)
    trainer.d.requires_grad_ = lambda flag: trainer.d  # no longer switched off
    trainer.g_step()
    for p, g in zip(trainer.g.parameters(), g_grads):
        assert torch.allclose(p.grad, g, atol=1e-6)
    assert any(not torch.equal(p.grad, g) for p, g in zip(trainer.d.parameters(), d_grads))


def test_the_minibatch_deviation_is_the_groups_standard_deviation():
    """MinibatchStd's channel: the standard deviation over each group (biased), averaged over
    the features, as torch's ``var`` gives it."""
    import torch
    from miragen.engines.wavegan.networks import MinibatchStd

    torch.manual_seed(0)
    x = torch.randn(12, 5, 7, dtype=torch.float64)
    out = MinibatchStd(group=4)(x)
    ref = (x.view(4, -1, 5, 7).var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2])
    assert out.shape == (12, 6, 7)
    assert torch.allclose(out[:, :5], x)
    assert torch.allclose(out[:, 5], ref.view(-1, 1).repeat(4, 7), atol=1e-12)


def test_the_cpu_adam_is_the_per_tensor_update_looped_in_cpp(corpus, tmp_path):
    """On the CPU both optimisers take the multi-tensor (foreach) update: the per-tensor
    update's arithmetic, so a few steps give the weights a per-tensor Adam gives; and a
    checkpoint written with another device's update (a GPU's fused kernel) resumes with the
    CPU's."""
    import torch
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANOptions
    from miragen.engines.wavegan import train as wt

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    opts = WaveGANOptions(width=8, batch=8, eval_every=1000, checkpoint_every=1000, threads=1)
    runs = []
    for foreach in (True, False):
        trainer = wt.Trainer(ds, opts, tmp_path / f"ck-{foreach}")
        groups = trainer.opt_g.param_groups + trainer.opt_d.param_groups
        assert all(g["foreach"] is True and not g["fused"] for g in groups)
        for g in groups:
            g["foreach"] = foreach
        torch.manual_seed(1)
        for _ in range(4):
            trainer.d_step(), trainer.g_step()
            trainer.step += 1
        runs.append(
            [p.detach().clone() for p in [*trainer.g.parameters(), *trainer.d.parameters()]]
        )
    for a, b in zip(*runs):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    # a checkpoint from a GPU (fused update) resumes on the CPU with the foreach one
    trainer.save_checkpoint()
    ckpt = trainer.ckpt_path
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    for name in ("opt_g", "opt_d"):
        for g in state[name]["param_groups"]:
            g.update(fused=True, foreach=False)
    torch.save(state, ckpt)
    resumed = wt.Trainer(ds, opts, ckpt.parent)
    assert resumed.step == 4
    groups = resumed.opt_g.param_groups + resumed.opt_d.param_groups
    assert all(g["foreach"] is True and not g["fused"] for g in groups)


def test_the_terms_read_each_output_as_if_it_were_alone(corpus, tmp_path):
    """The hinged terms take the features of the outputs and of the covering latents' outputs
    in one pass: each output's features (and so each term, and its gradient) are what a pass
    over that output alone gives."""
    import torch
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.wavegan import WaveGANOptions
    from miragen.engines.wavegan import train as wt

    ds = load_dataset(corpus, "cycle", only_class="pulse")
    opts = WaveGANOptions(width=8, batch=8, eval_every=1000, checkpoint_every=1000, threads=1)
    trainer = wt.Trainer(ds, opts, tmp_path / "ck")
    terms = trainer.terms
    assert terms.cover and terms.twin and terms.novel
    torch.manual_seed(2)
    idx = torch.randint(0, trainer.n_real, (8,))
    both = torch.randn(16, 1, 256, requires_grad=True)
    y = trainer.class_labels[idx]
    passes = []
    joint = terms.feats

    def counted(x):
        passes.append(len(x))
        return joint(x)

    terms.feats = counted
    loss_joint = terms.loss(both[:8], both[8:], y, idx, {})
    assert passes == [16]
    terms.feats = lambda x: torch.cat([joint(r[None]) for r in x])  # one output at a time
    loss_alone = terms.loss(both[:8], both[8:], y, idx, {})
    assert torch.allclose(loss_joint, loss_alone, rtol=1e-5, atol=1e-6)
    g_joint, g_alone = (torch.autograd.grad(v, both)[0] for v in (loss_joint, loss_alone))
    assert g_joint.abs().sum() > 0
    assert torch.allclose(g_joint, g_alone, rtol=1e-4, atol=1e-6)
