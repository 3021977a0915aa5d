"""Engine ``pygan``: the seed article's pipeline, kept working, fixed where it was broken, measured.

The article turned 8-bit single cycles into 256×256 line bitmaps, trained PyGAN's
``GANImageGenerator`` on a folder of them, drew images and turned them back into audio. This
engine does exactly that, behind the common engine interface:

    class waves → 8-bit (audio.mirage8.to_mirage8, no dither)
    → bitmaps (audio.bitmap.encode) written as PNG files into a folder, as PyGAN expects
    → PyGAN ``GANImageGenerator`` / ``EBGANImageGenerator`` / ``EBAAEImageGenerator``
    → ``learn()`` in small slices until the budget ends (checkpoint after each few slices)
    → the generator's ``draw()``
    → :func:`crop_and_normalise` (PyGAN's GAN generator adds 3 pixels: 256 → 259; then a real
      per-image min-max to 0..255 — the article's loop never wrote its result back, so values
      of −5..+3 wrapped around when cast to 8 bits)
    → audio.bitmap.decode, interpolated to the class's length → float waves in [−1, 1]
      (the generate pipeline then applies the Mirage 8-bit rules).

What PyGAN really does (read in ``accelbrainbase``; it explains the article's "copies"): the
generator is *conditioned on a real training bitmap*: ``GenerativeModel.draw()`` takes a batch of
training images from the same folder (z-scored, + Gaussian noise σ=1e-3), adds uniform noise of
±1e-5 and runs two transposed convolutions over it. Nothing else feeds it, so every output is a
filtered version of one training image: mode collapse onto the training set by construction.
:func:`copy_report` measures it (which training wave each draw is nearest to, and whether that
is the very one it was fed).

Backends: PyGAN's torch code (default, ``cpu`` or ``cuda``) or its mxnet code when ``mxnet``
is installed (``backend=mxnet``; mxnet 1.9.1 needs numpy < 1.24 and, on CPUs where its MKL-DNN
kernels fail with "could not create a primitive descriptor for a reorder primitive", the
environment variable ``MXNET_MKLDNN_ENABLED=0``: :func:`mxnet_probe` tries it in a subprocess
and sets the variable before mxnet is imported here).

Workarounds in OUR code (PyGAN's files are never edited):

- ``GANController.load_parameters`` calls ``torch.load`` with the default ``weights_only=True``
  of torch ≥ 2.6 on a file holding numpy arrays, so it fails; we save and load the controller's
  ``state_dict`` ourselves (``torch.load(..., weights_only=True)`` on tensors only).
- The discriminator's dense head (``NeuralNetworks``) creates its layers lazily on the first
  forward pass, so a freshly built network has no such keys; before loading a state we run one
  forward pass to create them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..audio.bitmap import decode, encode
from ..audio.mirage8 import to_mirage8
from ..errors import FormatError
from ..fsutil import atomic_write_bytes
from .base import Budget, Engine, EngineError, Model, Progress, ProgressFn
from .options import EngineOptions, option

log = logging.getLogger(__name__)

# variant -> (module name inside pygan._torch / pygan._mxnet, class, controller attribute)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "gan": ("gan_image_generator", "GANImageGenerator", "GAN"),
    "ebgan": ("ebgan_image_generator", "EBGANImageGenerator", "EBGAN"),
    "ebaae": ("ebaae_image_generator", "EBAAEImageGenerator", "EBAAE"),
}
BACKENDS = ("torch", "mxnet")
STATE_FORMAT = 1
CKPT_PREFIX = "pygan-"


# --------------------------------------------------------------------------------------------
# pure functions: the article's post-processing, done right


def crop_and_normalise(img: np.ndarray, size: int) -> np.ndarray:
    """One generated image → ``size``×``size`` uint8, values 0..255, no wraparound.

    ``img`` may be 2-D or carry leading singleton axes (``(1, H, W)``). A larger image is
    cropped around its centre (PyGAN's GAN generator grows 256 → 259: rows/columns 1..256 are
    kept, the ones its 6-wide transposed kernel centres on). Values are min-max scaled per image
    in float64, rounded and clipped, so −5..+3 becomes 0..255 instead of wrapping. Non-finite
    values count as the image's minimum; a constant (or all non-finite) image becomes all 0.
    """
    a = np.asarray(img, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"expected one 2-D image, got shape {np.shape(img)}")
    h, w = a.shape
    if h < size or w < size:
        raise ValueError(f"image {h}×{w} is smaller than the requested {size}×{size}")
    top, left = (h - size) // 2, (w - size) // 2
    a = a[top : top + size, left : left + size]
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros((size, size), dtype=np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    a = np.where(finite, a, lo)
    if hi - lo <= 1e-12 * max(1.0, abs(hi), abs(lo)):
        return np.zeros((size, size), dtype=np.uint8)
    out = np.rint((a - lo) * (255.0 / (hi - lo)))
    return np.clip(out, 0, 255).astype(np.uint8)


def image_to_wave(img: np.ndarray, size: int, length: int) -> np.ndarray:
    """A generated image → float32 wave of ``length`` points in [−1, 1] (0x80 is 0)."""
    x = _decode(img, size, length)
    return np.clip((x - 128.0) / 127.0, -1.0, 1.0).astype(np.float32)


def waves_to_u8(waves: list[np.ndarray]) -> list[np.ndarray]:
    """Class waves → the article's 8-bit material (Mirage quantiser, no dither: deterministic)."""
    return [
        np.asarray(to_mirage8(np.asarray(w, dtype=np.float32), dither="none"), dtype=np.uint8)
        for w in waves
    ]


def write_bitmaps(u8_waves: list[np.ndarray], folder: Path, size: int) -> list[Path]:
    """Write one PNG line bitmap per wave into ``folder`` (emptied of our old PNGs first)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    paths = []
    for i, u8 in enumerate(u8_waves):
        img = np.asarray(encode(np.asarray(u8, dtype=np.uint8), size=size), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img, mode="L").save(buf, format="PNG")
        paths.append(atomic_write_bytes(folder / f"{i:05d}.png", buf.getvalue()))
    return paths


def nearest(a: np.ndarray, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a``: index of and RMS distance to the nearest row of ``bank``."""
    d2 = (a * a).sum(1)[:, None] + (bank * bank).sum(1)[None, :] - 2.0 * a @ bank.T
    d = np.sqrt(np.maximum(d2, 0.0) / a.shape[1])
    idx = d.argmin(1)
    return idx, d[np.arange(len(a)), idx]


# --------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class PyGANOptions(EngineOptions):
    """The article's knobs (``miragen train --engine pygan --set KEY=VALUE``)."""

    engine: ClassVar[str] = "pygan"

    variant: str = option("gan", "PyGAN's model", choices=tuple(VARIANTS))
    backend: str = option("torch", "PyGAN's backend", choices=BACKENDS)
    device: str = option("auto", "where to train", choices=("auto", "cpu", "cuda"))
    size: int = option(
        256, "bitmap side in pixels (64 trains ~16× faster)", at_least=16, at_most=1024
    )
    batch_size: int = option(40, "images per batch", at_least=1, at_most=4096)
    learning_rate: float = option(1e-3, "one rate for both networks", above=0.0, at_most=10.0)
    k_step: int = option(10, "discriminator steps per iteration", at_least=1, at_most=1000)
    d_output: str = option(
        "sigmoid", "the discriminator's last activation (variant gan)", choices=("sigmoid", "tanh")
    )
    checkpoint_every: int = option(20, "iterations between checkpoints …", at_least=1)
    checkpoint_s: float = option(60.0, "… or seconds, whichever comes first", above=0.0)
    threads: int = option(0, "torch CPU threads (0: leave as is)", at_least=0)
    seed: int = 0

    def relations(self) -> list[str]:
        if self.d_output == "tanh" and self.variant != "gan":
            return [
                "d_output=tanh only exists for variant gan "
                "(the EB variants' discriminator is an autoencoder)"
            ]
        return []

    def network_key(self) -> dict[str, Any]:
        """What must match for a saved state to fit a freshly built network."""
        return {
            "variant": self.variant,
            "backend": self.backend,
            "size": self.size,
            "batch_size": self.batch_size,
            "d_output": self.d_output,
        }


# --------------------------------------------------------------------------------------------
# backends


# The probe runs PyGAN's own mxnet GAN for one tiny iteration: simple convolutions pass with
# MKL-DNN on CPUs where PyGAN's training still fails ("could not create a primitive descriptor
# for a reorder primitive"), so nothing smaller tells the truth.
_MXNET_PROBE = """
import sys, tempfile, os
import numpy as np
from PIL import Image
import mxnet as mx
from pygan._mxnet.gan_image_generator import GANImageGenerator
d = tempfile.mkdtemp(prefix="miragen-mxprobe-")
try:
    for i in range(2):
        a = np.full((16, 16), 255, np.uint8)
        a[np.arange(16) * (i + 1) % 16, np.arange(16)] = 0
        Image.fromarray(a).save(os.path.join(d, "%d.png" % i))
    g = GANImageGenerator(dir_list=[d], width=16, height=16, channel=1, batch_size=2, ctx=mx.cpu())
    g.learn(iter_n=1, k_step=1)
    g.GAN.generative_model.draw().asnumpy()
finally:
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)
print(mx.__version__)
"""
_mxnet_checked: dict[str, str] | None = None


def mxnet_probe() -> dict[str, str]:
    """Check that mxnet imports and computes; set ``MXNET_MKLDNN_ENABLED=0`` when it must.

    Runs in subprocesses so that a crashing mxnet cannot take this process down. Raises one
    :class:`EngineError` line when mxnet is missing or unusable. Returns {"version", "mkldnn"}.
    """
    global _mxnet_checked
    if _mxnet_checked is not None:
        return _mxnet_checked
    if importlib.util.find_spec("mxnet") is None:
        raise EngineError(
            "pygan: backend 'mxnet' is not installed (pip install mxnet==1.9.1 'numpy<1.24' on "
            "x86_64; or use backend=torch)"
        )
    if tuple(int(p) for p in np.__version__.split(".")[:2]) >= (1, 24):
        raise EngineError(
            f"pygan: mxnet 1.9.1 needs numpy < 1.24 but numpy {np.__version__} is installed "
            "(use a separate environment, or backend=torch)"
        )
    tries = (
        [os.environ.get("MXNET_MKLDNN_ENABLED")]
        if "MXNET_MKLDNN_ENABLED" in os.environ
        else [None, "0"]
    )
    last = ""
    for value in tries:
        env = dict(os.environ)
        if value is not None:
            env["MXNET_MKLDNN_ENABLED"] = value
        try:
            res = subprocess.run(
                [sys.executable, "-c", _MXNET_PROBE],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            last = "a one-iteration test of PyGAN on mxnet did not finish in 300 s"
            continue
        if res.returncode == 0:
            if value is not None:
                os.environ["MXNET_MKLDNN_ENABLED"] = value
                if "mxnet" in sys.modules and value == "0":
                    log.warning(
                        "mxnet was imported before MXNET_MKLDNN_ENABLED=0 could be set; it may fail"
                    )
            log.info(
                "mxnet %s works with MXNET_MKLDNN_ENABLED=%s",
                res.stdout.strip(),
                value if value is not None else "(unset)",
            )
            _mxnet_checked = {
                "version": res.stdout.strip().splitlines()[-1],
                "mkldnn": "off" if value == "0" else "on",
            }
            return _mxnet_checked
        lines = [ln for ln in (res.stderr or "").strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {res.returncode}"
    raise EngineError(f"pygan: mxnet is installed but cannot compute here ({last[:200]})")


def _torch_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineError(
            "pygan: device=cuda asked but torch sees no CUDA device (use device=cpu or auto)"
        )
    return device


@contextmanager
def _seeded(seed: int | None, backend: str) -> Iterator[None]:
    """Seed numpy's global RNG (PyGAN draws with it), torch and mxnet; restore numpy afterwards."""
    if seed is None:
        yield
        return
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        if backend == "torch":
            import torch

            with torch.random.fork_rng(
                devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
            ):
                torch.manual_seed(seed)
                yield
        else:
            import mxnet as mx

            mx.random.seed(seed)
            yield
    finally:
        np.random.set_state(state)


def pygan_module(backend: str, variant: str):
    """PyGAN's module for ``variant`` on ``backend``. Importing it the first time draws from
    torch's global generator, so callers that seed import it before seeding."""
    module_name = VARIANTS[variant][0]
    try:
        return importlib.import_module(f"pygan._{backend}.{module_name}")
    except ImportError as exc:
        raise EngineError(
            f"pygan: PyGAN's {backend} code cannot be imported ({exc}); pip install "
            "pygan==1.1.2 accel-brain-base==1.1.0"
        ) from None


class PyGANSession:
    """One PyGAN image generator for one class: built over a folder of bitmaps."""

    def __init__(self, opts: PyGANOptions, bitmap_dir: Path):
        self.opts = opts
        self.bitmap_dir = bitmap_dir
        self.backend = opts.backend
        module_name, cls_name, self.controller_attr = VARIANTS[opts.variant]
        if self.backend == "mxnet":
            mxnet_probe()
            try:
                import mxnet as mx
            except (ImportError, OSError, RuntimeError) as exc:  # MXNetError is a RuntimeError
                raise EngineError(f"pygan: mxnet cannot be imported ({exc})") from None
            self.device = "cuda" if opts.device == "cuda" else "cpu"
            ctx = mx.gpu(0) if self.device == "cuda" else mx.cpu()
        else:
            try:
                import torch
            except ImportError:
                raise EngineError(
                    "pygan: backend 'torch' is not installed (pip install torch)"
                ) from None
            self.device = _torch_device(opts.device)
            ctx = self.device
            if opts.threads > 0:
                torch.set_num_threads(opts.threads)
        module = pygan_module(self.backend, opts.variant)
        kwargs: dict[str, Any] = {
            "dir_list": [str(bitmap_dir)],
            "width": opts.size,
            "height": opts.size,
            "channel": 1,
            "batch_size": opts.batch_size,
            "learning_rate": opts.learning_rate,
            "ctx": ctx,
        }
        if opts.variant == "ebaae":
            # the adversarial prior must have the shape of the encoder's output (32×H×W)
            kwargs.update(normal_height=opts.size, normal_width=opts.size)
        self.generator = getattr(module, cls_name)(**kwargs)
        self.controller = getattr(self.generator, self.controller_attr)
        if opts.d_output == "tanh":
            self._set_tanh_output()
        self.iteration = 0
        self._materialised = False
        self._count_generator_steps()

    # -- the article's tanh knob
    def _set_tanh_output(self) -> None:
        head = self.controller.discriminative_model.model.output_nn
        if self.backend == "torch":
            import torch

            head.activation_list[-1] = torch.nn.Tanh()
        else:
            head.activation_list[-1] = "tanh"

    # -- training
    def learn(self, iterations: int) -> None:
        """Run PyGAN's ``learn()``; a Ctrl-C that PyGAN swallows (it prints "Keyboard
        Interrupt." and returns) is raised again here so training really stops."""
        before = self._g_steps
        self.generator.learn(iter_n=iterations, k_step=self.opts.k_step)
        done = self._g_steps - before
        self.iteration += done
        self._materialised = True
        if done < iterations:
            raise KeyboardInterrupt

    def _count_generator_steps(self) -> None:
        """Count finished generator steps (the last thing of each PyGAN iteration)."""
        self._g_steps = 0
        original = self.controller.train_generator

        def counted() -> Any:
            out = original()
            self._g_steps += 1
            return out

        # an instance attribute: PyGAN's learn() calls self.train_generator(), finds this one
        object.__setattr__(self.controller, "train_generator", counted)

    def last_losses(self) -> dict[str, float]:
        out = {}
        for name, attr in (
            ("d", "discriminative_loss_arr"),
            ("g", "generative_loss_arr"),
            ("fm", "feature_matching_loss_arr"),
            ("posterior", "posterior_logs_arr"),
        ):
            arr = getattr(self.controller, attr, None)
            if arr is not None and len(arr):
                out[name] = float(np.asarray(arr[-1], dtype=np.float64).mean())
        return out

    # -- drawing
    def _to_numpy(self, arr: Any) -> np.ndarray:
        if self.backend == "torch":
            return arr.detach().to("cpu").numpy()
        return arr.asnumpy()

    def draw(self, with_condition: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One batch from the generator's ``draw()`` (and the real images it was fed)."""
        gm = self.controller.generative_model
        cs = gm.condition_sampler
        fed: list[Any] = []
        original = cs.draw

        def recording_draw() -> Any:
            cond, sampled = original()
            fed.append(cond)
            return cond, sampled

        cs.draw = recording_draw  # instance attribute: PyGAN's own method is untouched
        try:
            if self.backend == "torch":
                import torch

                with torch.no_grad():
                    out = gm.draw()
            else:
                out = gm.draw()
        finally:
            del cs.draw
        self._materialised = True
        if isinstance(out, tuple):
            # EBAAE: (encoded, observed, decoded); the image is the decoder's reconstruction
            out = out[2]
        cond = self._to_numpy(fed[0]) if (with_condition and fed) else None
        return self._to_numpy(out), cond

    def draw_images(self, n: int, seed: int | None = None) -> list[np.ndarray]:
        images: list[np.ndarray] = []
        with _seeded(seed, self.backend):
            while len(images) < n:
                batch, _ = self.draw()
                images.extend(batch[:, :1])
        return [im[0] for im in images[:n]]

    def discriminator_facts(self) -> dict[str, Any]:
        """Variant gan, torch: D's mean output on a real and a drawn batch, and whether the
        optimizer PyGAN built holds D's dense head (built lazily after the optimizer was)."""
        if self.opts.variant != "gan" or self.backend != "torch":
            return {}
        import torch

        gm, dm = self.controller.generative_model, self.controller.discriminative_model
        with torch.no_grad():
            real = float(dm.inference(self.controller.true_sampler.draw()).mean())
            fake = float(dm.inference(gm.draw()).mean())
        in_opt = {
            id(p) for g in self.controller.discriminator_optimizer.param_groups for p in g["params"]
        }
        head = list(dm.model.output_nn.parameters())
        return {
            "d_mean_on_real": real,
            "d_mean_on_drawn": fake,
            "d_head_parameters": int(sum(p.numel() for p in head)),
            "d_head_in_optimizer": bool(head) and all(id(p) in in_opt for p in head),
        }

    def _materialise(self) -> None:
        """Run one forward pass so lazily built layers (D's dense head) exist before loading."""
        if self._materialised or self.opts.variant != "gan":
            self._materialised = True
            return
        gm = self.controller.generative_model
        dm = self.controller.discriminative_model
        if self.backend == "torch":
            import torch

            with torch.no_grad():
                dm.inference(gm.draw())
        else:
            dm.inference(gm.draw())
        self._materialised = True

    # -- state
    def state_bytes(self) -> dict[str, bytes]:
        self._materialise()  # an untrained network must save its lazily built layers too
        if self.backend == "torch":
            import torch

            buf = io.BytesIO()
            torch.save(
                {
                    # the controller does not register its two models as submodules, so its
                    # own state_dict() is empty: save each model's state
                    "generative": self.controller.generative_model.model.state_dict(),
                    "discriminative": self.controller.discriminative_model.model.state_dict(),
                    "d_opt": self.controller.discriminator_optimizer.state_dict(),
                    "g_opt": self.controller.generator_optimizer.state_dict(),
                },
                buf,
            )
            return {"torch": buf.getvalue()}
        with tempfile.TemporaryDirectory(prefix="miragen-pygan-") as tmp:
            g, d = Path(tmp) / "g.params", Path(tmp) / "d.params"
            self.controller.generative_model.save_parameters(str(g))
            self.controller.discriminative_model.save_parameters(str(d))
            return {"mx_g": g.read_bytes(), "mx_d": d.read_bytes()}

    def load_state(self, blobs: dict[str, bytes], iteration: int) -> None:
        self._materialise()
        if self.backend == "torch":
            import torch

            if "torch" not in blobs:
                raise EngineError(
                    "pygan: the saved state was made by the mxnet backend; use backend=mxnet"
                )
            state = torch.load(
                io.BytesIO(blobs["torch"]), map_location=self.device, weights_only=True
            )
            self.controller.generative_model.model.load_state_dict(state["generative"], strict=True)
            self.controller.discriminative_model.model.load_state_dict(
                state["discriminative"], strict=True
            )
            self.controller.discriminator_optimizer.load_state_dict(state["d_opt"])
            self.controller.generator_optimizer.load_state_dict(state["g_opt"])
        else:
            if "mx_g" not in blobs:
                raise EngineError(
                    "pygan: the saved state was made by the torch backend; use backend=torch"
                )
            import mxnet as mx

            ctx = mx.gpu(0) if self.device == "cuda" else mx.cpu()
            with tempfile.TemporaryDirectory(prefix="miragen-pygan-") as tmp:
                g, d = Path(tmp) / "g.params", Path(tmp) / "d.params"
                g.write_bytes(blobs["mx_g"])
                d.write_bytes(blobs["mx_d"])
                self.controller.generative_model.load_parameters(str(g), ctx=ctx)
                self.controller.discriminative_model.load_parameters(str(d), ctx=ctx)
        self.iteration = int(iteration)


# --------------------------------------------------------------------------------------------
# state files (one .npz per class: header JSON, network blobs, the 8-bit training waves)


def _data_digest(u8_waves: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for u in u8_waves:
        h.update(len(u).to_bytes(4, "little"))
        h.update(np.asarray(u, dtype=np.uint8).tobytes())
    return h.hexdigest()[:16]


def write_state(
    path: Path, header: dict[str, Any], blobs: dict[str, bytes], u8_waves: list[np.ndarray]
) -> Path:
    arrays: dict[str, np.ndarray] = {
        "header": np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8),
        "train_lengths": np.array([len(u) for u in u8_waves], dtype=np.int64),
        "train_data": np.concatenate([np.asarray(u, dtype=np.uint8) for u in u8_waves])
        if u8_waves
        else np.zeros(0, np.uint8),
    }
    for k, v in blobs.items():
        arrays[f"blob_{k}"] = np.frombuffer(v, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_state(path: Path) -> tuple[dict[str, Any], dict[str, bytes], list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode("utf-8"))
            blobs = {k[5:]: bytes(z[k]) for k in z.files if k.startswith("blob_")}
            lengths = z["train_lengths"]
            data = z["train_data"]
    except (OSError, ValueError, KeyError) as exc:
        raise EngineError(f"{path}: unreadable pygan state ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise EngineError(f"{path}: not a pygan state of format {STATE_FORMAT}")
    waves, pos = [], 0
    for n in lengths:
        waves.append(np.array(data[pos : pos + int(n)], dtype=np.uint8))
        pos += int(n)
    return header, blobs, waves


def _class_file(index: int, cls: str) -> str:
    return f"{CKPT_PREFIX}{index:03d}-{hashlib.sha1(cls.encode('utf-8')).hexdigest()[:8]}.npz"


# --------------------------------------------------------------------------------------------
# model and engine


class PyGANModel(Model):
    engine = "pygan"

    def __init__(
        self,
        mode: str,
        classes: list[str],
        lengths: dict[str, int],
        rate: int,
        meta: dict[str, Any] | None = None,
        *,
        states: dict[str, tuple[dict[str, Any], dict[str, bytes], list[np.ndarray]]] | None = None,
    ):
        super().__init__(mode, classes, lengths, rate, meta)
        self.states = dict(states or {})

    def options(self) -> PyGANOptions:
        opts = dict(self.meta.get("options", {}))
        opts.update(self.meta.get("runtime", {}))
        return PyGANOptions.from_mapping(opts)

    @contextmanager
    def session(self, cls: str, **runtime: Any) -> Iterator[tuple[PyGANSession, list[np.ndarray]]]:
        """A live PyGAN generator for ``cls`` rebuilt from the saved state (temporary bitmaps)."""
        header, blobs, u8 = self.states[cls]
        base = self.options()
        # a model trained on CUDA must still draw on a machine without it
        runtime.setdefault("device", "auto")
        opts = base.replace(**runtime)
        with tempfile.TemporaryDirectory(prefix="miragen-pygan-") as tmp:
            folder = Path(tmp) / "bitmaps"
            write_bitmaps(u8, folder, opts.size)
            sess = PyGANSession(opts, folder)
            sess.load_state(blobs, header.get("iteration", 0))
            yield sess, u8

    def sample(self, n: int, cls: str | None = None, seed: int | None = None) -> list[np.ndarray]:
        cls = self.resolve_class(cls)
        if n <= 0:
            return []
        length = self.lengths[cls]
        with self.session(cls) as (sess, _):
            images = sess.draw_images(
                n, seed=seed if seed is not None else int(np.random.randint(0, 2**31 - 1))
            )
        return [image_to_wave(im, sess.opts.size, length) for im in images]

    def _save_files(self, folder: Path) -> None:
        for old in folder.glob(f"{CKPT_PREFIX}*.npz"):
            old.unlink()
        files = {}
        for i, cls in enumerate(self.classes):
            header, blobs, u8 = self.states[cls]
            name = _class_file(i, cls)
            write_state(folder / name, header, blobs, u8)
            files[cls] = name
        self.meta["files"] = files

    @classmethod
    def _load_files(cls, folder: Path, header: dict[str, Any]) -> PyGANModel:
        meta = header.get("meta", {})
        files = meta.get("files", {})
        states = {}
        for c in header.get("classes", []):
            if c not in files:
                raise EngineError(f"{folder}: pygan model has no state file for class '{c}'")
            states[c] = read_state(folder / files[c])
        return cls(
            header["mode"],
            header["classes"],
            header["lengths"],
            header["rate"],
            meta,
            states=states,
        )


class PyGANEngine(Engine):
    """Trains one PyGAN image generator per class (see the module docstring)."""

    name = "pygan"
    model_class = PyGANModel

    options_class = PyGANOptions
    options: PyGANOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.opts = self.options

    def fit(
        self, dataset: Any, budget: Budget, progress: ProgressFn | None, checkpoint_dir: Path
    ) -> PyGANModel:
        if self.opts.backend == "mxnet":
            mxnet_probe()  # one clear line before anything is built
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        classes = list(dataset.class_names)
        if not classes:
            raise EngineError("pygan: the dataset holds no class")
        if dataset.mode != "cycle":
            raise EngineError(
                f"pygan: draws single cycles only (a {self.opts.size}-pixel bitmap holds "
                f"{self.opts.size} points); train mode '{dataset.mode}' with the wavegan engine"
            )
        t0 = time.monotonic()
        per_class_s = budget.seconds / len(classes) if budget.seconds is not None else None
        states, lengths = {}, {}
        for i, cls in enumerate(classes):
            waves = dataset.classes[cls]
            lengths[cls] = int(dataset.cycle_len)
            cls_budget = Budget(seconds=per_class_s, steps=budget.steps)
            states[cls] = self._fit_class(i, cls, waves, cls_budget, progress, checkpoint_dir, t0)
        meta = {
            "options": self.opts.to_dict(),
            "runtime": {},
            "iterations": {c: states[c][0]["iteration"] for c in classes},
            "pygan": _pygan_versions(self.opts.backend),
        }
        return PyGANModel(dataset.mode, classes, lengths, dataset.rate, meta, states=states)

    def _fit_class(
        self,
        index: int,
        cls: str,
        waves: list[np.ndarray],
        budget: Budget,
        progress: ProgressFn | None,
        checkpoint_dir: Path,
        t0: float,
    ):
        opts = self.opts
        u8 = waves_to_u8(waves)
        digest = _data_digest(u8)
        ckpt = checkpoint_dir / _class_file(index, cls)
        bitmap_dir = checkpoint_dir / "pygan-bitmaps" / f"{index:03d}"
        write_bitmaps(u8, bitmap_dir, opts.size)
        pygan_module(opts.backend, opts.variant)  # its first import draws random numbers
        with _seeded(opts.seed + index, opts.backend):
            sess = PyGANSession(opts, bitmap_dir)
        header = {
            "format": STATE_FORMAT,
            "class": cls,
            "data": digest,
            **opts.network_key(),
            "iteration": 0,
        }
        if ckpt.exists():
            _resume_class(sess, ckpt, header, cls)
        budget.restart()
        # PyGAN draws its batches and noise from the global generators: seeded from where this
        # run starts, so the same data, settings and seed train the same network
        try:
            with _seeded(opts.seed + index + 7919 * sess.iteration, opts.backend):
                self._learn(
                    sess,
                    cls,
                    budget,
                    progress,
                    t0,
                    lambda: write_state(
                        ckpt, {**header, "iteration": sess.iteration}, sess.state_bytes(), u8
                    ),
                )
        except KeyboardInterrupt:
            log.info(
                "pygan: interrupted; class '%s' saved at iteration %d in %s",
                cls,
                sess.iteration,
                ckpt,
            )
            raise
        blobs = sess.state_bytes()
        header = {**header, "iteration": sess.iteration}
        write_state(ckpt, header, blobs, u8)
        shutil.rmtree(bitmap_dir, ignore_errors=True)
        return header, blobs, u8

    def _learn(self, sess, cls, budget, progress, t0, save) -> None:
        """PyGAN's iterations until the budget is spent; ``save`` writes the class's checkpoint
        every ``checkpoint_every`` iterations or ``checkpoint_s`` seconds, and on an interrupt."""
        opts = self.opts
        last_ckpt, last_ckpt_t = sess.iteration, time.monotonic()
        warned_nan = False
        try:
            while not budget.done(sess.iteration):
                sess.learn(1)
                losses = sess.last_losses()
                if not warned_nan and not all(np.isfinite(v) for v in losses.values()):
                    warned_nan = True
                    log.warning(
                        "pygan: class '%s' iteration %d: non-finite losses %s%s",
                        cls,
                        sess.iteration,
                        losses,
                        " (d_output=tanh: PyGAN's loss takes the log of D's output, negative with "
                        "tanh)"
                        if opts.d_output == "tanh"
                        else "",
                    )
                if (
                    sess.iteration - last_ckpt >= opts.checkpoint_every
                    or time.monotonic() - last_ckpt_t >= opts.checkpoint_s
                ):
                    save()
                    last_ckpt, last_ckpt_t = sess.iteration, time.monotonic()
                if progress is not None:
                    progress(
                        Progress(
                            step=sess.iteration,
                            elapsed_s=time.monotonic() - t0,
                            losses=losses,
                            message=f"class {cls}",
                        )
                    )
        except KeyboardInterrupt:
            if sess.iteration > last_ckpt:
                save()
            raise


def _resume_class(sess, ckpt: Path, header: dict[str, Any], cls: str) -> None:
    """Load the class's checkpoint when it was made for the same data and settings."""
    old, blobs, _ = read_state(ckpt)
    if all(old.get(k) == v for k, v in header.items() if k != "iteration"):
        sess.load_state(blobs, old["iteration"])
        log.info("pygan: class '%s' resumes at iteration %d from %s", cls, sess.iteration, ckpt)
    else:
        log.warning(
            "pygan: %s was made for other data or settings; class '%s' starts afresh", ckpt, cls
        )


def _pygan_versions(backend: str) -> dict[str, str]:
    out = {}
    for pkg in ("pygan", "accel-brain-base", backend):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------
# the mode-collapse measurement


def copy_report(
    model: PyGANModel, cls: str | None = None, n: int = 40, seed: int = 0
) -> dict[str, Any]:
    """Measure why PyGAN's output copies its training set.

    For ``n`` draws: the wave decoded from each draw, the wave decoded from the real training
    bitmap PyGAN fed into the generator for it, and every training wave (all at the bitmap's
    resolution, mean removed, scaled to RMS 1: shapes). Reports the RMS distance of each draw to
    its nearest training wave and to the one it was fed, the fraction of draws whose nearest
    training wave is the very one they were fed, and the training set's own nearest-neighbour
    distance for scale. For variant gan (torch) it adds :meth:`PyGANSession.discriminator_facts`.
    """
    cls = model.resolve_class(cls)
    with model.session(cls) as (sess, u8):
        size = sess.opts.size
        draws, fed = [], []
        with _seeded(seed, sess.backend):
            while len(draws) < n:
                out, cond = sess.draw(with_condition=True)
                for k in range(out.shape[0]):
                    draws.append(_decode(out[k], size))
                    fed.append(_decode(cond[k], size))
            facts = sess.discriminator_facts()
    draws_a = np.array(draws[:n])
    fed_a = np.array(fed[:n])
    # the training pictures as PyGAN feeds them (z-scored, Gaussian noise σ=1e-3), read back by
    # the same crop/normalise/decode path as the draws: a perfect copy would be at distance ~0
    rng = np.random.default_rng(seed)
    bank = np.array([_decode(_as_fed(encode(u, size=size), rng), size) for u in u8])
    draws_a, fed_a, bank = _shape_only(draws_a), _shape_only(fed_a), _shape_only(bank)
    near_idx, near_d = nearest(draws_a, bank)
    fed_idx, fed_d = nearest(fed_a, bank)
    if len(bank) > 1:
        d2 = ((bank[:, None, :] - bank[None, :, :]) ** 2).mean(2)
        np.fill_diagonal(d2, np.inf)
        train_nn = float(np.median(np.sqrt(d2.min(1))))
    else:
        train_nn = float("nan")
    return {
        "class": cls,
        "draws": int(n),
        "train_size": len(bank),
        "nearest_is_fed_fraction": float(np.mean(near_idx == fed_idx)),
        "chance_fraction": 1.0 / len(bank),
        "distinct_nearest": len(set(near_idx.tolist())),
        "median_draw_to_nearest_train": float(np.median(near_d)),
        "median_fed_to_nearest_train": float(np.median(fed_d)),
        "median_draw_to_its_fed": float(np.median(np.sqrt(((draws_a - fed_a) ** 2).mean(1)))),
        "median_train_to_nearest_other_train": train_nn,
        "ratio": float(np.median(near_d) / train_nn)
        if train_nn and np.isfinite(train_nn)
        else float("nan"),
        "units": "RMS distance of shapes (mean removed, scaled to RMS 1, as the Mirage pipeline "
        "normalises anyway): 0 = same shape, 1.41 = uncorrelated; waves at the bitmap's resolution",
        **facts,
    }


def _shape_only(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    rms = np.sqrt((a * a).mean(1, keepdims=True))
    return a / np.where(rms > 1e-9, rms, 1.0)


def _as_fed(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A training picture as PyGAN's iterator hands it over: z-scored, plus N(0, 0.001) noise."""
    a = np.asarray(picture, dtype=np.float64)
    a = (a - a.mean()) / (a.std() or 1e-8)
    return a + rng.normal(0.0, 1e-3, a.shape)


def _decode(img: np.ndarray, size: int, length: int | None = None) -> np.ndarray:
    """Crop, normalise and read a generated image (``length`` points, default one per column).

    A blank image (no line to read) comes back as the centre line, i.e. silence, with a warning.
    """
    try:
        return np.asarray(decode(crop_and_normalise(img, size), length=length), dtype=np.float64)
    except FormatError as exc:
        log.warning("pygan: a drawn image holds no line (%s); it reads as silence", exc)
        return np.full(length or size, 128.0)
