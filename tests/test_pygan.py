"""Engine ``pygan``: the article's PyGAN pipeline, its crop/normalisation fix, resume, backends."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from miragen.audio.bitmap import decode, encode
from miragen.audio.mirage8 import check_mirage8, prepare
from miragen.corpus.dataset import Dataset
from miragen.corpus.synth import default_corpus
from miragen.engines.base import Budget, EngineError, engine_class, load_model
from miragen.engines.pygan_engine import (
    PyGANEngine,
    PyGANModel,
    PyGANOptions,
    copy_report,
    crop_and_normalise,
    mxnet_probe,
)

pytestmark = pytest.mark.timeout(120)

TINY = {"size": 16, "batch_size": 2, "k_step": 1, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def bank() -> Dataset:
    corpus = default_corpus(0)
    cls = min(corpus)
    waves = corpus[cls][:8]
    return Dataset("cycle", 29411, {cls: waves}, {cls: [f"w{i}" for i in range(len(waves))]})


@pytest.fixture(scope="module")
def trained(bank, tmp_path_factory) -> tuple[Path, Path]:
    ckpt = tmp_path_factory.mktemp("ckpt")
    model = PyGANEngine(**TINY).fit(bank, Budget(steps=2), None, ckpt)
    folder = model.save(tmp_path_factory.mktemp("model") / "m")
    return folder, ckpt


# ---------------------------------------------------------------- crop and normalisation


def test_crop_259_to_256_keeps_the_centre():
    img = np.arange(259 * 259, dtype=np.float64).reshape(259, 259)
    out = crop_and_normalise(img, 256)
    assert out.shape == (256, 256) and out.dtype == np.uint8
    # rows/columns 1..256 are kept: the first kept pixel is the minimum, the last the maximum
    assert out[0, 0] == 0 and out[-1, -1] == 255
    ref = img[1:257, 1:257]
    expect = np.rint((ref - ref.min()) * 255 / (ref.max() - ref.min()))
    assert np.array_equal(out, expect.astype(np.uint8))


def test_article_range_minus5_to_3_maps_to_0_255_without_wraparound():
    rng = np.random.default_rng(0)
    img = rng.uniform(-5.0, 3.0, size=(1, 259, 259))
    img[0, 10, 10], img[0, 20, 20], img[0, 30, 30] = -5.0, 3.0, -1.0
    out = crop_and_normalise(img, 256)
    assert out.min() == 0 and out.max() == 255
    assert out[9, 9] == 0 and out[19, 19] == 255 and out[29, 29] == 128  # −1 is the middle
    # order is preserved everywhere (wraparound would break it): a monotonic map
    flat_in, flat_out = img[0, 1:257, 1:257].ravel(), out.ravel().astype(int)
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order]) >= 0)
    # the article's cast wraps −5 to 251; ours does not
    assert np.array(-5.0).astype(np.int64).astype(np.uint8) == 251


def test_normalise_constant_and_nonfinite_images():
    assert not crop_and_normalise(np.full((32, 32), 7.0), 32).any()
    assert not crop_and_normalise(np.full((32, 32), np.nan), 32).any()
    img = np.zeros((32, 32))
    img[0, 0], img[1, 1] = np.inf, 2.0
    out = crop_and_normalise(img, 32)
    assert out[1, 1] == 255 and out[0, 0] == 0
    with pytest.raises(ValueError):
        crop_and_normalise(np.zeros((16, 16)), 32)


def test_normalised_generator_picture_decodes_like_the_original():
    x = (128 + 100 * np.sin(np.linspace(0, 2 * np.pi, 256, endpoint=False))).astype(np.uint8)
    pic = encode(x, size=256).astype(np.float64)
    # what a generator hands back: 3 pixels larger, any value range (here −5..+3)
    big = np.full((259, 259), 3.0)
    big[1:257, 1:257] = -5.0 + pic * 8.0 / 255.0
    back = decode(crop_and_normalise(big, 256))
    assert np.abs(back.astype(int) - x.astype(int)).max() <= 1


# ---------------------------------------------------------------- options


def test_options_are_checked():
    with pytest.raises(EngineError, match="unknown option 'colour'"):
        PyGANEngine(colour="red")
    with pytest.raises(EngineError, match="'batch_size' must be a whole number"):
        PyGANEngine(batch_size="many")
    with pytest.raises(EngineError, match="tanh only exists for variant gan"):
        PyGANEngine(variant="ebgan", d_output="tanh")
    opts = PyGANOptions.from_mapping(
        {"size": "64", "learning_rate": "1e-4", "k-step": "3", "variant": "ebaae"}
    )
    assert (opts.size, opts.learning_rate, opts.k_step, opts.variant) == (64, 1e-4, 3, "ebaae")
    assert engine_class("pygan") is PyGANEngine and PyGANEngine.model_class is PyGANModel


def test_one_shots_are_refused_with_a_reason(tmp_path):
    ds = Dataset("oneshot", 29411, {"drums": [np.zeros(3000, np.float32)]}, {"drums": ["kick.wav"]})
    with pytest.raises(EngineError, match="single cycles only"):
        PyGANEngine(**TINY).fit(ds, Budget(steps=1), None, tmp_path)


# ---------------------------------------------------------------- the pipeline


def test_pipeline_end_to_end_gives_mirage_ready_waves(bank, trained, tmp_path):
    folder, _ = trained
    model = load_model(folder)
    assert isinstance(model, PyGANModel) and model.meta["iterations"] == {bank.class_names[0]: 2}
    waves = model.sample(5, seed=3)
    assert len(waves) == 5
    for w in waves:
        assert w.dtype == np.float32 and w.shape == (256,)
        assert np.all(np.isfinite(w)) and np.abs(w).max() <= 1.0
    again = model.sample(5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(waves, again))
    try:
        from miragen.engines.generate import generate_to_folder
    except ImportError:
        generate_to_folder = None
    if generate_to_folder is not None:
        res = generate_to_folder(model, 2, tmp_path / "out", gate=False, seed=4)
        pcms = sorted((tmp_path / "out").glob("*.pcm"))
        assert len(pcms) == 2, res
        datas = [p.read_bytes() for p in pcms]
    else:
        datas = [prepare(w, model.rate).data for w in waves]
    for data in datas:
        assert len(data) == 256 and b"\x00" not in data
        check_mirage8(data)


def test_training_feeds_pygan_a_folder_of_the_class_bitmaps(bank, tmp_path):
    from PIL import Image

    seen: list[list[np.ndarray]] = []
    ckpt = tmp_path / "ck"

    def look(_progress):
        if not seen:
            files = sorted((ckpt / "pygan-bitmaps" / "000").glob("*.png"))
            seen.append([np.asarray(Image.open(f)) for f in files])

    PyGANEngine(**TINY).fit(bank, Budget(steps=1), look, ckpt)
    imgs = seen[0]
    assert len(imgs) == len(bank.classes[bank.class_names[0]])
    assert all(im.shape == (16, 16) and im.dtype == np.uint8 for im in imgs)
    assert not (ckpt / "pygan-bitmaps" / "000").exists()  # cleaned up after training


@pytest.mark.parametrize("variant", ["ebgan", "ebaae"])
def test_other_variants_train_and_draw(bank, tmp_path, variant):
    model = PyGANEngine(variant=variant, **TINY).fit(bank, Budget(steps=1), None, tmp_path)
    waves = model.sample(2, seed=0)
    assert [w.shape for w in waves] == [(256,), (256,)]


def test_an_untrained_model_saves_and_draws(bank, tmp_path):
    # a time budget can end before the first iteration: the state must still load
    model = PyGANEngine(**TINY).fit(bank, Budget(steps=0), None, tmp_path / "ck")
    back = load_model(model.save(tmp_path / "m"))
    assert back.meta["iterations"] == {bank.class_names[0]: 0}
    assert len(back.sample(1, seed=0)) == 1


def test_tanh_output_knob_trains(bank, tmp_path):
    model = PyGANEngine(d_output="tanh", **TINY).fit(bank, Budget(steps=1), None, tmp_path)
    with model.session(model.classes[0]) as (sess, _):
        head = sess.controller.discriminative_model.model.output_nn
        assert type(head.activation_list[-1]).__name__ == "Tanh"


def test_the_seed_makes_training_repeatable(bank, tmp_path):
    """PyGAN draws its batches and noise from numpy's and torch's global generators; the engine
    seeds them, so the same data, settings and seed train the same network, and another seed
    another one."""
    draws = []
    for i, seed in enumerate((5, 5, 6)):
        model = PyGANEngine(**TINY, seed=seed).fit(bank, Budget(steps=3), None, tmp_path / f"{i}")
        draws.append(np.stack(model.sample(4, seed=0)))
    assert np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])


def test_training_resumes_from_the_checkpoint(bank, tmp_path):
    steps: list[int] = []
    PyGANEngine(**TINY).fit(bank, Budget(steps=2), None, tmp_path)
    model = PyGANEngine(**TINY).fit(bank, Budget(steps=3), lambda p: steps.append(p.step), tmp_path)
    assert steps == [3]  # only the missing iteration ran
    assert model.meta["iterations"] == {bank.class_names[0]: 3}
    # other settings do not reuse a checkpoint made for different networks
    steps.clear()
    PyGANEngine(**{**TINY, "size": 32}).fit(
        bank, Budget(steps=1), lambda p: steps.append(p.step), tmp_path
    )
    assert steps == [1]


def test_copy_report_measures_the_conditioning(trained):
    model = load_model(trained[0])
    rep = copy_report(model, n=8, seed=0)
    assert rep["draws"] == 8 and rep["train_size"] == 8
    # what PyGAN fed the generator really is a training picture (z-scored + tiny noise)
    assert rep["median_fed_to_nearest_train"] < 0.1 * rep["median_train_to_nearest_other_train"]
    assert 0.0 <= rep["nearest_is_fed_fraction"] <= 1.0
    assert rep["median_draw_to_nearest_train"] >= 0.0
    # PyGAN builds D's dense head lazily, after D's optimizer: the head is never trained
    assert rep["d_head_parameters"] > 0 and rep["d_head_in_optimizer"] is False
    assert 0.0 <= rep["d_mean_on_real"] <= 1.0 and 0.0 <= rep["d_mean_on_drawn"] <= 1.0


# ---------------------------------------------------------------- backends


def test_missing_mxnet_backend_is_one_clear_error(bank, tmp_path, monkeypatch):
    import miragen.engines.pygan_engine as pe

    real = importlib.util.find_spec
    monkeypatch.setattr(pe, "_mxnet_checked", None)
    monkeypatch.setattr(
        pe.importlib.util, "find_spec", lambda name, *a: None if name == "mxnet" else real(name, *a)
    )
    with pytest.raises(EngineError, match="backend 'mxnet' is not installed"):
        PyGANEngine(backend="mxnet", **TINY).fit(bank, Budget(steps=1), None, tmp_path)


def test_missing_cuda_is_one_clear_error(bank, tmp_path):
    torch = pytest.importorskip("torch")

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EngineError, match="device=cuda asked but torch sees no CUDA device"):
        PyGANEngine(device="cuda", **TINY).fit(bank, Budget(steps=1), None, tmp_path)


def _mxnet_usable() -> str | None:
    if importlib.util.find_spec("mxnet") is None:
        return (
            "mxnet is not installed (optional backend: pip install mxnet==1.9.1 'numpy<1.24', "
            "x86_64 only)"
        )
    try:
        mxnet_probe()
    except EngineError as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_mxnet_usable() is not None, reason=str(_mxnet_usable()))
def test_mxnet_backend_pipeline(bank, tmp_path):
    import os

    info = mxnet_probe()
    assert info["mkldnn"] in ("on", "off")
    if info["mkldnn"] == "off":
        assert os.environ["MXNET_MKLDNN_ENABLED"] == "0"
    model = PyGANEngine(backend="mxnet", device="cpu", **TINY).fit(
        bank, Budget(steps=2), None, tmp_path / "ck"
    )
    folder = model.save(tmp_path / "m")
    back = load_model(folder)
    waves = back.sample(3, seed=1)
    assert [w.shape for w in waves] == [(256,)] * 3
    assert all(np.all(np.isfinite(w)) for w in waves)
    resumed = PyGANEngine(backend="mxnet", device="cpu", **TINY).fit(
        bank, Budget(steps=3), None, tmp_path / "ck"
    )
    assert resumed.meta["iterations"] == {bank.class_names[0]: 3}


def test_ctrl_c_swallowed_by_pygan_stops_training_and_keeps_the_work(bank, tmp_path, monkeypatch):
    from accelbrainbase.controllablemodel._torch.gan_controller import GANController

    calls = {"n": 0}
    real = GANController.train_generator

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # PyGAN catches this inside learn() and just prints
        return real(self)

    monkeypatch.setattr(GANController, "train_generator", flaky)
    with pytest.raises(KeyboardInterrupt):
        PyGANEngine(**{**TINY, "checkpoint_every": 100}).fit(bank, Budget(steps=10), None, tmp_path)
    monkeypatch.setattr(GANController, "train_generator", real)
    steps: list[int] = []
    PyGANEngine(**{**TINY, "checkpoint_every": 100}).fit(
        bank, Budget(steps=3), lambda p: steps.append(p.step), tmp_path
    )
    assert steps == [3]  # iterations 1 and 2 were saved when Ctrl-C came


def test_cli_train_and_generate_with_pygan(cli, tmp_path):
    from miragen.corpus.synth import write_default_corpus

    write_default_corpus(tmp_path / "data")
    sets = ["--set", "size=16", "--set", "batch_size=2", "--set", "k_step=1"]
    bad = cli(
        "train",
        "--engine",
        "pygan",
        "--data",
        str(tmp_path / "data"),
        "--class",
        "saw",
        "--iterations",
        "1",
        "--set",
        "backend=nope",
        "-o",
        str(tmp_path / "bad"),
    )
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
    assert b"backend must be one of torch, mxnet (got 'nope')" in bad.stderr
    r = cli(
        "train",
        "--engine",
        "pygan",
        "--data",
        str(tmp_path / "data"),
        "--class",
        "saw",
        "--iterations",
        "2",
        *sets,
        "-o",
        str(tmp_path / "model"),
    )
    assert r.returncode == 0, r.stderr.decode()
    g = cli(
        "generate",
        str(tmp_path / "model"),
        "-n",
        "2",
        "-o",
        str(tmp_path / "out"),
        "--seed",
        "1",
        "--gate",
        "off",
    )
    assert g.returncode == 0, g.stderr.decode()
    pcms = sorted((tmp_path / "out").glob("*.pcm"))
    assert len(pcms) == 2
    for p in pcms:
        data = p.read_bytes()
        assert len(data) == 256 and b"\x00" not in data
        check_mirage8(data)
