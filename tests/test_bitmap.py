"""The article's waveform ⇄ bitmap representation (miragen.audio.bitmap, ``miragen bitmap``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from miragen.audio.bitmap import decode, encode
from miragen.errors import FormatError
from PIL import Image
from scipy.ndimage import gaussian_filter, grey_erosion

cycles = arrays(np.uint8, 256, elements=st.integers(1, 255))


def _sine_u8(n=256, cycles_=1, amp=127):
    return (np.rint(amp * np.sin(2 * np.pi * cycles_ * np.arange(n) / n)) + 128).astype(np.uint8)


# --------------------------------------------------------------------------- encode


def test_encode_drawing_rules():
    x = np.array([255, 0] + [128] * 254, dtype=np.uint8)
    img = encode(x)
    assert img.shape == (256, 256) and img.dtype == np.uint8
    assert set(np.unique(img).tolist()) == {0, 255}  # white ground, black line
    assert img[0, 0] == 0  # value 255 at the top row
    assert img[:, 0].sum() // 255 == 1 and img[255, 1] == 0  # vertical run joins column 0 to 1
    dark = img == 0
    # one pixel wide where the wave is flat; every column holds exactly one run
    assert dark[:, 10].sum() == 1 and dark[127, 10]
    for c in range(256):
        rows = np.flatnonzero(dark[:, c])
        assert len(rows) and rows[-1] - rows[0] + 1 == len(rows)


def test_encode_line_is_connected():
    img = encode(_sine_u8(cycles_=5)) == 0
    for c in range(255):
        a, b = np.flatnonzero(img[:, c]), np.flatnonzero(img[:, c + 1])
        assert min(abs(a[:, None] - b[None, :]).ravel()) <= 1  # 8-connected


def test_encode_averages_longer_waves_down():
    x = np.repeat(_sine_u8(), 4)  # 1024 samples
    assert np.array_equal(encode(x), encode(_sine_u8()))
    rng = np.random.default_rng(7)
    noisy = rng.integers(1, 256, 1024).astype(np.uint8)
    means = 255 - np.rint(255 - noisy.reshape(256, 4).mean(axis=1))  # rounded in row space
    assert np.array_equal(decode(encode(noisy)), means)  # block means, exactly
    uneven = rng.integers(1, 256, 600).astype(np.uint8)  # 600 → 256: shares of 2 or 3 samples
    edges = (np.arange(257) * 600) // 256
    ref = 255 - np.rint([255 - uneven[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    assert np.array_equal(decode(encode(uneven)), ref)


def test_encode_other_sizes_and_bytes():
    img = encode(bytes(_sine_u8()), size=64)
    assert img.shape == (64, 64)
    assert np.array_equal(encode(bytes(_sine_u8())), encode(_sine_u8()))
    with pytest.raises(ValueError):
        encode(np.zeros(0, np.uint8))


# --------------------------------------------------------------------------- exact round trip


@settings(max_examples=150, deadline=None)
@given(cycles)
def test_roundtrip_exact_for_any_256_cycle(x):
    assert np.array_equal(decode(encode(x)), x)


def test_roundtrip_exact_on_every_real_pcm8_file(shared_data):
    files = sorted((shared_data / "pcm8").rglob("*.pcm"))
    assert len(files) > 3000
    bad = []
    for f in files:
        x = np.fromfile(f, dtype=np.uint8)
        assert len(x) == 256
        if not np.array_equal(decode(encode(x)), x):
            bad.append(f.name)
    assert not bad, bad[:10]


def test_small_range_cycle_is_not_stretched():
    x = _sine_u8(amp=10)  # 118..138
    assert np.array_equal(decode(encode(x)), x)
    img = encode(x).astype(np.float64)
    blurred = gaussian_filter(img, 1.0)
    y = decode(blurred)
    assert 110 <= y.min() and y.max() <= 146  # not normalised to full scale


def test_decode_never_zero():
    x = np.array([0, 0, 255, 128] * 64, dtype=np.uint8)
    y = decode(encode(x))
    assert y.min() == 1 and np.array_equal(y[2:], np.maximum(x, 1)[2:])


# --------------------------------------------------------------------------- robust decode


def _mean_err(y, x):
    return float(np.mean(np.abs(y.astype(int) - x.astype(int))))


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.0])
def test_blurred_lines(sigma):
    x = _sine_u8(cycles_=2)
    y = decode(gaussian_filter(encode(x).astype(np.float64), sigma))
    assert _mean_err(y, x) < 1.0 and np.max(np.abs(y.astype(int) - x)) <= 8


def test_thick_lines():
    x = _sine_u8(cycles_=3)
    thick = grey_erosion(encode(x), size=(5, 3))  # a 5-pixel-tall, 3-wide pen
    assert _mean_err(decode(thick), x) < 1.5


def test_any_value_range_float_and_inverted_scale():
    x = _sine_u8()
    img = encode(x).astype(np.float64)
    for arr in (
        img / 255.0 * 2 - 1,
        img / 255.0,
        img * 256,
        (img - 128).astype(np.int16),
        img.astype(np.float32) * 1e-3,
    ):
        assert _mean_err(decode(arr), x) < 0.6, arr.dtype
    noisy = img / 255.0 + np.random.default_rng(0).normal(0, 0.05, img.shape)
    assert _mean_err(decode(noisy), x) < 2.0


def test_light_line_on_dark_ground():
    x = _sine_u8(cycles_=2)
    assert _mean_err(decode(255 - gaussian_filter(encode(x).astype(float), 0.8)), x) < 1.0


def test_uint8_cast_would_wrap_but_decode_does_not():
    """A GAN's float output in [-1, 1] must never be wrapped by an unsigned cast."""
    x = _sine_u8()
    img = encode(x).astype(np.float64) / 127.5 - 1.0
    y = decode(img)
    assert _mean_err(y, x) < 0.6


def test_empty_columns_are_interpolated():
    x = _sine_u8()
    img = encode(x)
    img[:, 100:110] = 255
    y = decode(img)
    assert np.max(np.abs(y[100:110].astype(int) - x[100:110])) <= 3
    assert np.max(np.abs(y[:95].astype(int) - x[:95])) <= 2


def test_259_image_is_cropped():
    x = _sine_u8(cycles_=2)
    img = encode(x)
    big = np.full((259, 259), 255, np.uint8)
    big[1:257, 1:257] = img
    assert np.array_equal(decode(big), x)
    big_f = gaussian_filter(big.astype(float), 0.8)
    assert _mean_err(decode(big_f), x) < 1.0


def test_colour_and_rgba_images():
    x = _sine_u8()
    img = encode(x)
    rgb = np.stack([img] * 3, axis=2)
    rgba = np.concatenate([rgb, np.full((256, 256, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(decode(rgb), x) and np.array_equal(decode(rgba), x)


def test_blank_and_malformed_images():
    with pytest.raises(FormatError, match="blank"):
        decode(np.full((256, 256), 255, np.uint8))
    with pytest.raises(FormatError):
        decode(np.zeros(10))
    with pytest.raises(ValueError):
        decode(encode(_sine_u8()), interp="nearest")


def test_interpolation_to_length():
    x = _sine_u8()
    img = encode(x)
    for interp in ("linear", "cubic"):
        y = decode(img, length=1024, interp=interp)
        ref = np.rint(127 * np.sin(2 * np.pi * (np.arange(1024) + 0.5) / 1024 - np.pi / 256)) + 128
        assert len(y) == 1024 and y.min() >= 1
        assert np.mean(np.abs(y - ref)) < 1.5
    assert len(decode(img, length=100)) == 100


def test_longer_samples_error_is_bounded():
    """4096-sample waves through 256 columns: the loss is the 16× averaging (low-pass)."""
    rng = np.random.default_rng(3)
    t = np.arange(4096) / 4096
    smooth = 0.6 * np.sin(2 * np.pi * 3 * t) + 0.3 * np.sin(2 * np.pi * 7 * t + 1)
    x = (np.rint(smooth * 127) + 128).astype(np.uint8)
    y = decode(encode(x), length=4096, interp="cubic")
    assert np.sqrt(np.mean((y.astype(float) - x) ** 2)) < 1.5
    noise = (rng.integers(1, 256, 4096)).astype(np.uint8)  # no structure at all: mostly lost
    assert np.sqrt(np.mean((decode(encode(noise), 4096).astype(float) - noise) ** 2)) > 30


# --------------------------------------------------------------------------- the CLI


def test_cli_encode_decode(tmp_path, cli, shared_data):
    src = sorted((shared_data / "pcm8").rglob("*.pcm"))[42]
    png, back = tmp_path / "w.png", tmp_path / "w.pcm"
    r = cli("bitmap", "encode", str(src), str(png))
    assert r.returncode == 0, r.stderr
    with Image.open(png) as im:
        assert im.size == (256, 256) and im.mode == "L"
    r = cli("bitmap", "decode", str(png), str(back))
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == src.read_bytes()
    r = cli(
        "bitmap",
        "decode",
        str(png),
        str(tmp_path / "l.pcm"),
        "--length",
        "1000",
        "--interp",
        "cubic",
    )
    assert r.returncode == 0 and len((tmp_path / "l.pcm").read_bytes()) == 1000
    r = cli("bitmap", "encode", str(src), str(tmp_path / "s.png"), "--size", "64")
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (64, 64)


def test_cli_bad_inputs(tmp_path, cli):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256), 255, np.uint8)).save(blank)
    notimg = tmp_path / "x.png"
    notimg.write_text("not a picture")
    empty = tmp_path / "e.pcm"
    empty.write_bytes(b"")
    for args in (
        ("decode", str(blank), str(tmp_path / "o.pcm")),
        ("decode", str(notimg), str(tmp_path / "o.pcm")),
        ("decode", str(tmp_path / "missing.png"), str(tmp_path / "o.pcm")),
        ("encode", str(empty), str(tmp_path / "o.png")),
    ):
        r = cli("bitmap", *args)
        err = r.stderr.decode()
        assert r.returncode == 2 and args[1] in err and "Traceback" not in err, err
    assert not (tmp_path / "o.pcm").exists() and not (tmp_path / "o.png").exists()
