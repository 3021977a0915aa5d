"""Any accepted audio file → Mirage-ready 8-bit wave data, and the files that show it.

``convert_file`` = :func:`miragen.audio.io.read_audio` + :func:`miragen.audio.mirage8.prepare`
(+ :func:`with_loop`: the loop points, a crossfade baked into the loop where asked, and the
loop's figures);
``write_outputs`` writes ``<stem>.pcm`` (headerless unsigned 8-bit), ``<stem>.wav`` (8-bit
unsigned PCM WAV at the target rate) and ``<stem>.png`` (a picture of the waveform).
"""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..fsutil import fsync_dir, refuse_special_target
from .io import DEFAULT_MAX_FILE_BYTES, read_audio, wav_u8_bytes, write_pcm, write_wav_u8
from .loops import loop_report
from .mirage8 import Prepared, prepare
from .render import waveform_png, waveform_png_bytes
from .resample import SUPPORT_MARGIN_S

log = logging.getLogger(__name__)


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
    too_long_hint: str = "",
    loop: bool = False,
    xfade_ms: float = 0.0,
    xfade_shape: str = "auto",
) -> Prepared:
    """Decode ``path`` and prepare it for the Mirage. Raises ``InputError`` for bad input;
    ``too_long_hint`` ends the message for a refused long input (say which option cuts it).
    With ``loop`` the result also carries its loop (:func:`with_loop`)."""
    # decode only what the output can hold (plus the resampling filter's reach): a long file, or
    # a header whose rate stretches a small file over hours, costs what is kept
    keep = min(int(max_bytes), 65536) / float(rate) + SUPPORT_MARGIN_S
    audio = read_audio(path, raw_rate=raw_rate, max_file_bytes=max_file_bytes, keep_seconds=keep)
    prepared = prepare(
        audio.samples,
        audio.rate,
        target_rate=rate,
        max_bytes=max_bytes,
        dither=dither,
        strict=strict,
        fade_ms=fade_ms,
        rng=rng,
        source=str(path),
        too_long_hint=too_long_hint,
        total_frames=audio.total_frames,
    )
    return with_loop(prepared, xfade_ms=xfade_ms, xfade_shape=xfade_shape) if loop else prepared


def with_loop(prepared: Prepared, *, xfade_ms: float = 0.0, xfade_shape: str = "auto") -> Prepared:
    """``prepared`` with its loop (:func:`miragen.audio.loops.loop_report`): ``loop`` holds the
    points and figures, and ``data`` the crossfade when ``xfade_ms`` > 0 (inside the loop
    only; bytes stay 1..255)."""
    data, report = loop_report(
        prepared.data,
        rate=prepared.rate,
        length=prepared.samples or None,
        xfade_ms=xfade_ms,
        xfade_shape=xfade_shape,
    )
    return replace(prepared, data=data, loop=report)


def write_outputs(
    prepared: Prepared, out_dir: str | os.PathLike, stem: str, rate: int, *, png: bool = True
) -> list[Path]:
    """Write ``stem``.pcm, ``stem``.wav and (unless ``png`` is False) ``stem``.png atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [
        write_pcm(out / f"{stem}.pcm", prepared.data),
        write_wav_u8(out / f"{stem}.wav", prepared.data, rate),
    ]
    if png:
        files.append(
            waveform_png(prepared.data, out / f"{stem}.png", title=_title(prepared, stem, rate))
        )
    return files


def _title(prepared: Prepared, stem: str, rate: int) -> str:
    return f"{stem}  {len(prepared.data)} bytes, {prepared.pages} pages, {rate} Hz"


def _output_blobs(prepared: Prepared, stem: str, rate: int, png: bool) -> list[tuple[str, bytes]]:
    blobs = [(f"{stem}.pcm", prepared.data), (f"{stem}.wav", wav_u8_bytes(prepared.data, rate))]
    if png:
        blobs.append(
            (f"{stem}.png", waveform_png_bytes(prepared.data, title=_title(prepared, stem, rate)))
        )
    return blobs


def _syncfs(fd: int) -> bool:
    """Flush the whole filesystem holding ``fd`` (Linux ``syncfs``); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs(fd) == 0
    except (OSError, AttributeError):
        return False


class OutputWriter:
    """Writes the outputs of many conversions atomically and durably, in batches.

    Each file is first written under a temporary name in the output folder; once ``batch``
    conversions are pending (and at :meth:`close`), the filesystem is flushed once
    (``syncfs``; per-file ``fsync`` where that is missing), the temporary files are renamed to
    their final names and the folder is flushed. Nobody sees a half-written file under a final
    name, as with :func:`write_outputs`, but a thousand files cost two flushes instead of two
    thousand — the difference between ~60 and ~1,000 files/s on a busy disk.
    """

    def __init__(
        self, out_dir: str | os.PathLike, rate: int, *, png: bool = True, batch: int = 256
    ):
        self.out = Path(out_dir)
        self.rate = int(rate)
        self.png = png
        self.batch = max(1, int(batch))
        self._pending: list[tuple[str, Path]] = []  # (temp path, final path)
        self._count = 0
        self.written: list[Path] = []

    def add(self, prepared: Prepared, stem: str) -> list[Path]:
        """Queue the outputs of one conversion; returns their final paths."""
        self.out.mkdir(parents=True, exist_ok=True)
        finals = []
        for name, data in _output_blobs(prepared, stem, self.rate, self.png):
            final = self.out / name
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=self.out)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o644)
            except BaseException:
                os.unlink(tmp)
                raise
            self._pending.append((tmp, final))
            finals.append(final)
        self._count += 1
        if self._count >= self.batch:
            self.flush()
        return finals

    def flush(self) -> None:
        if not self._pending:
            return
        dfd = os.open(self.out, os.O_RDONLY)
        try:
            if not _syncfs(dfd):
                for tmp, _ in self._pending:
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
        finally:
            os.close(dfd)
        for tmp, final in self._pending:
            refuse_special_target(final)  # never rename a file over a device node or a FIFO
            os.replace(tmp, final)
            self.written.append(final)
        self._pending.clear()
        self._count = 0
        fsync_dir(self.out)

    def discard(self) -> None:
        """Remove pending temporary files (after an error)."""
        for tmp, _ in self._pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._pending.clear()
        self._count = 0

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
