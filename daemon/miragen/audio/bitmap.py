"""The seed article's representation: a waveform drawn as a square grayscale line picture.

**encode** (wave → ``size`` × ``size`` uint8 image): white ground (255), a black (0) line one
pixel wide. Column ``c`` holds sample ``c``; value ``v`` (0..255) sits at row
``round((255 − v) · (size − 1) / 255)``, so 255 is the top row and, at size 256, value ``v`` is
row ``255 − v`` exactly. Longer waves are averaged down to ``size`` columns (as the article
did), shorter ones linearly interpolated up. Consecutive points are joined the way a 1-pixel
line is rasterised "vertical first": column ``c`` is dark from its own point up to, but not
including, the row of the next point (the last column is just its point), so the line is
8-connected and has no gaps.

**decode** (image → uint8 wave), two paths:

1. *exact*: a clean picture (two grey levels, one dark run per column, every run ending next to
   the following column's point) is read back algebraically from the last column to the first,
   and accepted only if encoding the result redraws the very same picture. So every wave drawn
   by ``encode`` at one sample per column comes back byte for byte.
2. *robust*, for anything else (what a GAN draws: thick, blurred, noisy lines, any numeric
   range): intensities are normalised per image (its own darkest → ink, lightest → ground;
   floats, negative values and 16-bit ranges are fine, nothing wraps around; a light line on
   a dark ground is recognised because the ground is what most pixels are); in every column
   the pixels darker than half that column's darkest are kept and their darkness-weighted
   centroid is the column's row; columns with no ink (darkest below a quarter of the image's)
   are interpolated from their neighbours; where the line is steep (a column's centroid more
   than a pixel from the previous one) the row is read half a column back, since encode draws
   each column from its point towards the next. Rows map back to values on the same fixed scale as
   encode — the decoded wave is never stretched to full scale.

An image three pixels too large (``size + 3`` square, e.g. 259 × 259, as some generators
output) is cropped to its centre ``size`` × ``size`` (offset 1). The column values are then
interpolated (linear or cubic) to ``length`` samples, column ``c`` standing for the centre of
its share of the wave. Decoded values are Mirage-safe: 0 becomes 1.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ..errors import FormatError, InputError
from .io import read_audio

log = logging.getLogger(__name__)

INK = 0
GROUND = 255
CROP_EXTRA = 3  # a (size + 3)² image is cropped to size²
_CROP_SIZES = {s + CROP_EXTRA for s in (16, 32, 64, 128, 256, 512, 1024, 2048)}


# --------------------------------------------------------------------------- encode


def _columns(x: np.ndarray, size: int) -> np.ndarray:
    """n samples → ``size`` column values (block means when longer, interpolation when shorter)."""
    n = len(x)
    if n == size:
        return x.astype(np.float64)
    if n > size:
        edges = (np.arange(size + 1) * n) // size
        sums = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
        return (sums[edges[1:]] - sums[edges[:-1]]) / np.diff(edges)
    if n == 1:
        return np.full(size, float(x[0]))
    pos = (np.arange(size) + 0.5) * n / size - 0.5
    return np.interp(pos, np.arange(n), x.astype(np.float64))


def _rows(values: np.ndarray, size: int) -> np.ndarray:
    return np.rint((255.0 - values) * (size - 1) / 255.0).astype(np.int64)


def _draw(rows: np.ndarray, size: int) -> np.ndarray:
    """Column c: dark from rows[c] up to (excluding) rows[c + 1]; the last column: its point."""
    nxt = np.empty_like(rows)
    nxt[:-1] = rows[1:] - np.sign(rows[1:] - rows[:-1])
    nxt[-1] = rows[-1]
    lo = np.minimum(rows, nxt)
    hi = np.maximum(rows, nxt)
    r = np.arange(size)[:, None]
    img = np.full((size, len(rows)), GROUND, dtype=np.uint8)
    img[(r >= lo) & (r <= hi)] = INK
    return img


def encode(x_uint8: np.ndarray | bytes, size: int = 256) -> np.ndarray:
    """8-bit unsigned wave → ``size`` × ``size`` uint8 line picture (see module doc)."""
    if size < 2:
        raise ValueError(f"size must be at least 2 (got {size})")
    if isinstance(x_uint8, (bytes, bytearray, memoryview)):
        x = np.frombuffer(x_uint8, dtype=np.uint8)
    else:
        x = np.asarray(x_uint8).reshape(-1)
    if len(x) == 0:
        raise ValueError("cannot draw an empty wave")
    x = np.clip(x.astype(np.float64), 0, 255)
    return _draw(_rows(_columns(x, size), size), size)


# --------------------------------------------------------------------------- decode


def _gray(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 3:
        if a.shape[2] in (2, 4):  # drop alpha
            a = a[:, :, :-1]
        a = a.astype(np.float64).mean(axis=2)
    if a.ndim != 2:
        raise FormatError(
            f"a bitmap must be a 2-D grayscale (or colour) image, got shape {np.shape(img)}"
        )
    if a.shape[0] < 2 or a.shape[1] < 1:
        raise FormatError(f"bitmap of shape {a.shape} is too small")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.shape[0] == a.shape[1] and a.shape[0] in _CROP_SIZES:
        off = 1
        s = a.shape[0] - CROP_EXTRA
        a = a[off : off + s, off : off + s]
    return a


def _decode_exact(a: np.ndarray) -> np.ndarray | None:
    """Rows of a clean ``encode`` picture, or None when ``a`` is not one."""
    if not np.issubdtype(a.dtype, np.integer) and not np.issubdtype(a.dtype, np.floating):
        return None
    ink, ground = a.min(), a.max()
    if not (np.isfinite(ink) and np.isfinite(ground)) or ink == ground:
        return None
    dark = a == ink
    if not np.all(dark | (a == ground)):  # more than two grey levels: not a clean picture
        return None
    h, w = dark.shape
    any_dark = dark.any(axis=0)
    if not any_dark.all():
        return None
    lo = np.argmax(dark, axis=0)
    hi = h - 1 - np.argmax(dark[::-1], axis=0)
    if not np.array_equal(dark.sum(axis=0), hi - lo + 1):  # one run per column
        return None
    lo_l, hi_l = lo.tolist(), hi.tolist()
    rows = [0] * w
    if lo_l[-1] != hi_l[-1]:
        return None
    rows[-1] = lo_l[-1]
    for c in range(w - 2, -1, -1):
        a_, b_, nx = lo_l[c], hi_l[c], rows[c + 1]
        if a_ == b_:
            if abs(nx - a_) > 1:
                return None
            rows[c] = a_
        elif nx == b_ + 1:
            rows[c] = a_
        elif nx == a_ - 1:
            rows[c] = b_
        else:
            return None
    r = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(_draw(r, h) == INK, dark):
        return None
    return r.astype(np.float64)


def _decode_robust(a: np.ndarray) -> np.ndarray:
    """Per-column row (float) of a drawn line: thick, blurred, noisy, any intensity range."""
    f = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(f)
    if not finite.all():
        f = np.where(finite, f, np.nanmax(np.where(finite, f, -np.inf)))
    lo, hi = float(f.min()), float(f.max())
    if not hi - lo > 0:
        raise FormatError("the bitmap is blank (one flat colour): there is no line to read")
    dark = (hi - f) / (hi - lo)  # 1 = ink, 0 = ground
    ground = float(np.median(dark))
    if ground > 0.5:  # a light line on a dark ground: the ground is what most pixels are
        dark = 1.0 - dark
        ground = 1.0 - ground
    dark -= ground  # the ground level, whatever it is
    np.clip(dark, 0.0, None, out=dark)
    col_max = dark.max(axis=0)
    img_max = float(col_max.max())
    if img_max <= 0:
        raise FormatError("the bitmap has no dark line to read")
    weights = np.where(dark >= 0.5 * col_max[None, :], dark, 0.0)
    total = weights.sum(axis=0)
    valid = (col_max >= 0.25 * img_max) & (total > 0)
    rows_idx = np.arange(f.shape[0], dtype=np.float64)[:, None]
    centroid = np.divide(
        (weights * rows_idx).sum(axis=0), total, out=np.zeros_like(total), where=total > 0
    )
    cols = np.arange(f.shape[1])
    if not valid.all():
        if valid.sum() == 0:
            raise FormatError("the bitmap has no dark line to read")
        log.debug("bitmap: %d empty column(s) interpolated", int((~valid).sum()))
        centroid = np.interp(cols, cols[valid], centroid[valid])
    # encode draws column c from its point towards the next one, so where the line is steep a
    # column's centroid lies half-way to the next point: read such columns half a column back
    back = np.concatenate([centroid[:1], 0.5 * (centroid[1:] + centroid[:-1])])
    steep = np.clip((np.abs(np.diff(centroid, prepend=centroid[0])) - 1.0) / 2.0, 0.0, 1.0)
    return steep * back + (1.0 - steep) * centroid


def _interp(values: np.ndarray, length: int, interp: str) -> np.ndarray:
    w = len(values)
    if length == w:
        return values
    pos = (np.arange(length) + 0.5) * w / length - 0.5  # column c stands for its share's centre
    pos = np.clip(pos, 0, w - 1)
    if interp == "linear" or w < 4:
        return np.interp(pos, np.arange(w), values)
    from scipy.interpolate import CubicSpline

    return CubicSpline(np.arange(w), values, bc_type="not-a-knot")(pos)


def decode(img: np.ndarray, length: int | None = None, interp: str = "linear") -> np.ndarray:
    """Line picture → uint8 wave of ``length`` samples (default: one per column), values 1..255."""
    if interp not in ("linear", "cubic"):
        raise ValueError(f"interp must be 'linear' or 'cubic' (got {interp!r})")
    a = _gray(img)
    h, w = a.shape
    length = w if length is None else int(length)
    if length < 1:
        raise ValueError(f"length must be at least 1 (got {length})")
    rows = _decode_exact(a)
    if rows is None:
        rows = _decode_robust(a)
    values = 255.0 - rows * 255.0 / (h - 1)
    out = np.rint(_interp(values, length, interp))
    return np.clip(out, 1, 255).astype(np.uint8)


# --------------------------------------------------------------------------- files


def wave_bytes(path: str, *, raw_rate: int = 29411) -> np.ndarray:
    """Any accepted audio file as 8-bit unsigned values, unchanged in length and rate.

    ``.pcm``/``.raw`` bytes come back as they are (``(u8 − 128) / 128`` is exact in float32);
    other formats map ``x → round(128 + 128·x)``, limited to 1..255.
    """
    audio = read_audio(path, raw_rate=raw_rate)
    return np.clip(np.rint(audio.samples.astype(np.float64) * 128.0 + 128.0), 1, 255).astype(
        np.uint8
    )


def png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def read_image(path: str) -> np.ndarray:
    """Load a picture (PNG, or a ``.npy`` array of any numeric type) as an array, unchanged."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(p, f"not a readable numpy array ({exc})") from None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "LA", "RGB", "RGBA", "1"):
                return np.asarray(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except UnidentifiedImageError:
        raise InputError(p, "not an image file Pillow can read (PNG expected)") from None
    except OSError as exc:
        raise InputError(p, f"cannot read the image: {exc}") from None
