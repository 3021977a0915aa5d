"""Pictures of waveforms: one wave per PNG, or a contact sheet of many.

Drawn with numpy into a grayscale array (a min/max envelope per pixel column, so a 64 KB
one-shot costs as little as a 256-point cycle) and saved with Pillow; titles use Pillow's
built-in bitmap font. Files are written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_bytes

WIDTH = 512
HEIGHT = 160
CELL_W = 256
CELL_H = 112
TITLE_H = 14
INK = 0
GROUND = 255
GRID = 200


def _as_float(wave: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
    """uint8 bytes (0x80 = centre) or a float array in [-1, 1] → float64 in [-1, 1]."""
    if isinstance(wave, (bytes, bytearray, memoryview)):
        a = np.frombuffer(wave, dtype=np.uint8)
    else:
        a = np.asarray(wave)
    a = a.reshape(-1)
    if a.dtype == np.uint8:
        return (a.astype(np.float64) - 128.0) / 128.0
    f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(f, -1.0, 1.0)


def draw(wave: np.ndarray | bytes, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """The wave as a ``height`` × ``width`` uint8 image: white ground, black line, grey centre."""
    img = np.full((height, width), GROUND, dtype=np.uint8)
    img[height // 2, ::4] = INK  # the centre line, dotted (keeps the picture two-tone: small PNGs)
    x = _as_float(wave)
    n = len(x)
    if n == 0:
        return img
    rows = np.rint((1.0 - x) * 0.5 * (height - 1))  # +1 at the top row
    if n <= width:
        pos = np.linspace(0, n - 1, width) if n > 1 else np.zeros(width)
        v = np.interp(pos, np.arange(n), rows)
        lo = np.minimum(v, np.concatenate([v[1:], v[-1:]]))
        hi = np.maximum(v, np.concatenate([v[1:], v[-1:]]))
    else:
        edges = (np.arange(width) * n) // width
        lo = np.minimum.reduceat(rows, edges)
        hi = np.maximum.reduceat(rows, edges)
        # join each column to the next one so the line has no gaps
        nxt_lo = np.concatenate([lo[1:], lo[-1:]])
        nxt_hi = np.concatenate([hi[1:], hi[-1:]])
        lo, hi = np.minimum(lo, nxt_lo), np.maximum(hi, nxt_hi)
    r = np.arange(height)[:, None]
    img[(r >= np.floor(lo)) & (r <= np.ceil(hi))] = INK
    return img


def _png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    two_tone = not np.any((img != INK) & (img != GROUND))
    pil = Image.fromarray(img > 127) if two_tone else Image.fromarray(img)  # 1-bit when possible
    pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


_FONT = None


def _font():
    global _FONT
    if _FONT is None:
        from PIL import ImageFont

        _FONT = ImageFont.load_default()
    return _FONT


def _with_title(img: np.ndarray, title: str | None) -> np.ndarray:
    if not title:
        return img
    from PIL import Image, ImageDraw

    h, w = img.shape
    out = np.full((h + TITLE_H, w), GROUND, dtype=np.uint8)
    out[TITLE_H:] = img
    pil = Image.fromarray(out)
    ImageDraw.Draw(pil).text((3, 1), str(title)[: max(1, w // 6)], fill=INK, font=_font())
    return np.asarray(pil)


def waveform_png_bytes(wave: np.ndarray | bytes, *, title: str | None = None) -> bytes:
    """The PNG file content of :func:`waveform_png`."""
    return _png_bytes(_with_title(draw(wave), title))


def waveform_png(
    wave: np.ndarray | bytes, path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Write a picture of ``wave`` (uint8 bytes/array, or floats in [-1, 1]) to ``path``."""
    return atomic_write_bytes(path, waveform_png_bytes(wave, title=title))


def contact_sheet(
    waves: Sequence[np.ndarray | bytes],
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    cols: int = 4,
) -> Path:
    """Write many waves as a grid of small pictures (``cols`` per row), each with its title."""
    waves = list(waves)
    cols = max(1, int(cols))
    if titles is not None and len(titles) != len(waves):
        raise ValueError(f"{len(titles)} titles for {len(waves)} waves")
    n = max(1, len(waves))
    rows = (n + cols - 1) // cols
    ch = CELL_H + TITLE_H
    sheet = np.full((rows * ch + 1, min(cols, n) * CELL_W + 1), GRID, dtype=np.uint8)
    for i, w in enumerate(waves):
        cell = _with_title(
            draw(w, CELL_W - 1, CELL_H - 1), titles[i] if titles is not None else None
        )
        if titles is None:
            cell = np.vstack([np.full((TITLE_H, CELL_W - 1), GROUND, dtype=np.uint8), cell])
        r, c = divmod(i, cols)
        sheet[
            r * ch + 1 : r * ch + 1 + cell.shape[0], c * CELL_W + 1 : c * CELL_W + 1 + cell.shape[1]
        ] = cell
    return atomic_write_bytes(path, _png_bytes(sheet))
