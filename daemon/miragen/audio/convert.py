"""Any accepted audio file → Mirage-ready 8-bit wave data, and the files that show it.

``convert_file`` = :func:`miragen.audio.io.read_audio` + :func:`miragen.audio.mirage8.prepare`;
``write_outputs`` writes ``<stem>.pcm`` (headerless unsigned 8-bit), ``<stem>.wav`` (8-bit
unsigned PCM WAV at the target rate) and ``<stem>.png`` (a picture of the waveform).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import DEFAULT_MAX_FILE_BYTES, read_audio, write_pcm, write_wav_u8
from .mirage8 import Prepared, prepare
from .render import waveform_png


def convert_file(
    path: str | os.PathLike,
    *,
    rate: int = 29411,
    max_bytes: int = 65536,
    dither: str = "tpdf",
    strict: bool = False,
    raw_rate: int = 29411,
    fade_ms: float = 10.0,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    rng: np.random.Generator | None = None,
) -> Prepared:
    """Decode ``path`` and prepare it for the Mirage. Raises ``InputError`` for bad input."""
    audio = read_audio(path, raw_rate=raw_rate, max_file_bytes=max_file_bytes)
    return prepare(
        audio.samples,
        audio.rate,
        target_rate=rate,
        max_bytes=max_bytes,
        dither=dither,
        strict=strict,
        fade_ms=fade_ms,
        rng=rng,
        source=str(path),
    )


def write_outputs(
    prepared: Prepared, out_dir: str | os.PathLike, stem: str, rate: int, *, png: bool = True
) -> list[Path]:
    """Write ``stem``.pcm, ``stem``.wav and (unless ``png`` is False) ``stem``.png atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_pcm(out / f"{stem}.pcm", prepared.data), write_wav_u8(out / f"{stem}.wav", prepared.data, rate)]
    if png:
        title = f"{stem}  {len(prepared.data)} bytes, {prepared.pages} pages, {rate} Hz"
        files.append(waveform_png(prepared.data, out / f"{stem}.png", title=title))
    return files
