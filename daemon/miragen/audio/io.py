"""Read every audio file Miragen accepts; write 8-bit ``.pcm`` and ``.wav``.

One reader for the whole project: :func:`read_audio` turns WAV (8/16/24/32-bit integer,
32/64-bit float, any rate, any channel count, unknown chunks skipped), AIFF/AIFC, FLAC and
raw headerless unsigned 8-bit ``.pcm``/``.raw`` into float32 mono samples in [-1, 1].

Decoding is done by libsndfile (through ``soundfile``), but the container headers are first
checked here, so that every bad file gives an :class:`~miragen.errors.InputError` that names
the file and says in plain words what is wrong (empty, truncated, wrong magic, absurd header
values, too large, unreadable) instead of a libsndfile message.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

RAW_SUFFIXES = frozenset({".pcm", ".raw"})
MAX_RATE = 1_000_000  # Hz; anything above is an absurd header value
MAX_CHANNELS = 256
DEFAULT_RAW_RATE = 29411
DEFAULT_MAX_FILE_BYTES = 64 * 2**20


@dataclass
class Audio:
    """Decoded audio: float32 mono samples in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int
    path: str
    channels: int = 1  # channel count of the source (mixed down to mono)
    format: str = ""  # "wav", "aiff", "flac" or "raw"

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.rate) if self.rate else 0.0


@dataclass
class _Header:
    """What the container header announces (checked before decoding)."""

    format: str
    channels: int
    rate: float
    bits: int
    frames: int | None  # frames announced, None when unknown (compressed)
    data_bytes: int | None  # bytes of audio announced
    available: int | None  # bytes of audio present in the file
    encoding: int | None = None  # WAV format tag (1 PCM, 3 float, 0xFFFE extensible, ...)


# --------------------------------------------------------------------------- reading


def read_audio(
    path: str | os.PathLike,
    *,
    raw_rate: int = DEFAULT_RAW_RATE,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Audio:
    """Decode ``path`` into float32 mono samples in [-1, 1].

    ``.pcm``/``.raw`` files are headerless unsigned 8-bit at ``raw_rate`` Hz (0x00 bytes are
    accepted on read). Everything else is recognised by its magic bytes (RIFF/RIFX/RF64 WAVE,
    FORM AIFF/AIFC, fLaC), whatever its name. Channels are mixed down by averaging.

    Raises :class:`InputError` naming the file and the reason for any bad input.
    """
    p = Path(path)
    data = _read_bytes(p, max_file_bytes)
    if p.suffix.lower() in RAW_SUFFIXES:
        if raw_rate <= 0 or raw_rate > MAX_RATE:
            raise InputError(p, f"raw sample rate {raw_rate} Hz is out of range (1..{MAX_RATE})")
        u8 = np.frombuffer(data, dtype=np.uint8)
        samples = (u8.astype(np.float32) - 128.0) / 128.0
        return Audio(samples, int(raw_rate), str(p), 1, "raw")
    header = _check_header(p, data)
    # an uncompressed file holds at most one sample per byte; more decoded samples than the
    # size limit allows is a lying header or a decompression bomb
    return _decode(p, data, header, max_file_bytes)


def _read_bytes(p: Path, max_file_bytes: int) -> bytes:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except PermissionError:
        raise InputError(p, "cannot read the file: permission denied") from None
    except OSError as exc:
        raise InputError(p, f"cannot read the file: {exc.strerror or exc}") from None
    if p.is_dir():
        raise InputError(p, "is a folder, not an audio file")
    if st.st_size == 0:
        raise InputError(p, "empty file (0 bytes)")
    if st.st_size > max_file_bytes:
        raise InputError(
            p, f"file is {st.st_size / 2**20:.1f} MB, larger than the {max_file_bytes / 2**20:g} MB limit"
        )
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_file_bytes + 1)
    except PermissionError:
        raise InputError(p, "cannot read the file: permission denied") from None
    except OSError as exc:
        raise InputError(p, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) == 0:
        raise InputError(p, "empty file (0 bytes)")
    if len(data) > max_file_bytes:
        raise InputError(p, f"file is larger than the {max_file_bytes / 2**20:g} MB limit")
    return data


def _check_header(p: Path, data: bytes) -> _Header:
    magic = data[:4]
    if magic in (b"RIFF", b"RIFX", b"RF64"):
        h = _check_wav(p, data)
    elif magic == b"FORM":
        h = _check_aiff(p, data)
    elif magic == b"fLaC":
        h = _check_flac(p, data)
    else:
        shown = data[:4].decode("latin-1").encode("unicode_escape").decode("ascii")
        hint = ""
        if p.suffix.lower() in {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac"}:
            hint = f" although it is named {p.suffix}"
        raise InputError(
            p,
            f"not a WAV, AIFF or FLAC file{hint} (it starts with '{shown}'); "
            "raw 8-bit audio must be named .pcm or .raw",
        )
    _check_values(p, h)
    return h


def _check_values(p: Path, h: _Header) -> None:
    if h.channels <= 0:
        raise InputError(p, f"bad {h.format.upper()} header: it says {h.channels} channels")
    if h.channels > MAX_CHANNELS:
        raise InputError(p, f"bad {h.format.upper()} header: it says {h.channels} channels (at most {MAX_CHANNELS})")
    if not (h.rate > 0) or h.rate > MAX_RATE:
        raise InputError(
            p, f"bad {h.format.upper()} header: sample rate {h.rate:g} Hz is out of range (1..{MAX_RATE})"
        )
    if h.bits <= 0 or h.bits > 64:
        raise InputError(p, f"bad {h.format.upper()} header: {h.bits} bits per sample")
    if h.frames == 0 or h.data_bytes == 0:
        raise InputError(p, "no audio: the file holds 0 samples")
    if h.data_bytes is not None and h.available is not None and h.data_bytes > h.available:
        raise InputError(
            p,
            f"truncated: the header announces {h.data_bytes} bytes of audio but only "
            f"{max(h.available, 0)} are present",
        )


def _walk_chunks(p: Path, data: bytes, start: int, big: bool, what: str):
    """Yield (id, payload offset, declared length) for each chunk of a RIFF/IFF body."""
    pos = start
    n = len(data)
    hdr = ">4sI" if big else "<4sI"
    while pos + 8 <= n:
        cid, length = struct.unpack_from(hdr, data, pos)
        yield cid, pos + 8, length
        pos += 8 + length + (length & 1)
    if pos < n and pos + 8 > n and n - pos > 1:
        log.debug("%s: %d stray bytes after the last %s chunk", p, n - pos, what)


def _check_wav(p: Path, data: bytes) -> _Header:
    if len(data) < 12:
        raise InputError(p, f"truncated: only {len(data)} bytes, too short for a WAV header")
    riff, form = data[:4], data[8:12]
    if form != b"WAVE":
        shown = form.decode("latin-1").encode("unicode_escape").decode("ascii")
        raise InputError(p, f"a RIFF file, but not WAV audio (form type '{shown}')")
    big = riff == b"RIFX"
    fmt = None
    data_off = data_len = None
    ds64_data = None
    for cid, off, length in _walk_chunks(p, data, 12, big, "WAV"):
        if cid == b"ds64" and length >= 28:
            ds64_data = struct.unpack_from("<Q", data, off + 8)[0] if off + 16 <= len(data) else None
        elif cid == b"fmt ":
            if length < 16 or off + 16 > len(data):
                raise InputError(p, "bad WAV header: the 'fmt ' chunk is too short")
            fmt = struct.unpack_from(">HHIIHH" if big else "<HHIIHH", data, off)
        elif cid == b"data":
            data_off, data_len = off, length
            if riff == b"RF64" and length == 0xFFFFFFFF and ds64_data is not None:
                data_len = ds64_data
            break
    if fmt is None:
        if data_off is not None:
            raise InputError(p, "bad WAV header: the audio comes before any 'fmt ' chunk")
        raise InputError(p, "bad or truncated WAV: no 'fmt ' chunk (format description) found")
    tag, channels, rate, _byte_rate, block_align, bits = fmt
    if data_off is None:
        raise InputError(p, "truncated or incomplete WAV: no 'data' chunk (no audio) found")
    h = _Header("wav", channels, float(rate), bits, None, data_len, len(data) - data_off, tag)
    if channels > 0 and 0 < bits <= 64 and tag in (1, 3, 0xFFFE):
        width = (bits + 7) // 8
        if block_align != channels * width:
            raise InputError(
                p,
                f"bad WAV header: block size {block_align} bytes does not match "
                f"{channels} channel(s) of {bits} bits",
            )
        h.frames = data_len // block_align
    return h


def _extended_to_float(b: bytes) -> float:
    exp = ((b[0] & 0x7F) << 8) | b[1]
    mant = int.from_bytes(b[2:10], "big")
    if exp == 0 and mant == 0:
        return 0.0
    if exp == 0x7FFF:
        return float("inf")
    e = exp - 16383 - 63
    if e > 960:  # beyond any double (2.0 ** e would raise OverflowError): an absurd rate
        return float("inf")
    val = mant * 2.0**e
    return -val if b[0] & 0x80 else val


def _check_aiff(p: Path, data: bytes) -> _Header:
    if len(data) < 12:
        raise InputError(p, f"truncated: only {len(data)} bytes, too short for an AIFF header")
    form = data[8:12]
    if form not in (b"AIFF", b"AIFC"):
        shown = form.decode("latin-1").encode("unicode_escape").decode("ascii")
        raise InputError(p, f"an IFF file, but not AIFF audio (form type '{shown}')")
    comm = None
    compression = b"NONE"
    ssnd = None
    for cid, off, length in _walk_chunks(p, data, 12, True, "AIFF"):
        if cid == b"COMM":
            if length < 18 or off + 18 > len(data):
                raise InputError(p, "bad AIFF header: the 'COMM' chunk is too short")
            channels, frames, bits = struct.unpack_from(">hIh", data, off)
            rate = _extended_to_float(data[off + 8 : off + 18])
            comm = (channels, frames, bits, rate)
            if form == b"AIFC" and length >= 22 and off + 22 <= len(data):
                compression = data[off + 18 : off + 22]
        elif cid == b"SSND":
            if off + 8 > len(data):
                raise InputError(p, "truncated: the 'SSND' (audio) chunk is cut short")
            offset = struct.unpack_from(">I", data, off)[0]
            ssnd = (off + 8 + offset, length - 8 - offset)
    if comm is None:
        raise InputError(p, "bad or truncated AIFF: no 'COMM' chunk (format description) found")
    channels, frames, bits, rate = comm
    h = _Header("aiff", channels, rate, bits, frames, None, None)
    if frames > 0 and ssnd is None:
        raise InputError(p, "truncated or incomplete AIFF: no 'SSND' chunk (no audio) found")
    if compression in (b"NONE", b"twos", b"sowt", b"raw ", b"fl32", b"FL32", b"fl64", b"FL64", b"in24", b"in32", b"42ni", b"23ni") and ssnd is not None:
        width = (bits + 7) // 8 if bits > 0 else 0
        if compression in (b"fl32", b"FL32"):
            width = 4
        elif compression in (b"fl64", b"FL64"):
            width = 8
        if channels > 0 and width > 0:
            h.data_bytes = frames * channels * width
            h.available = len(data) - ssnd[0]
    return h


def _check_flac(p: Path, data: bytes) -> _Header:
    if len(data) < 8 + 34:
        raise InputError(p, f"truncated: only {len(data)} bytes, too short for a FLAC header")
    block_type = data[4] & 0x7F
    length = int.from_bytes(data[5:8], "big")
    if block_type != 0 or length < 34:
        raise InputError(p, "bad FLAC header: the stream information block is missing")
    si = data[8 : 8 + 34]
    bits_field = int.from_bytes(si[10:18], "big")
    rate = bits_field >> 44
    channels = ((bits_field >> 41) & 0x7) + 1
    bps = ((bits_field >> 36) & 0x1F) + 1
    total = bits_field & ((1 << 36) - 1)
    if rate == 0:
        raise InputError(p, "bad FLAC header: sample rate 0 Hz")
    return _Header("flac", channels, float(rate), bps, total or None, None, None)


_SNDFILE_REASONS = (
    ("format not recognised", "not a recognised audio format"),
    ("unsupported", "an audio encoding this reader does not support"),
    ("malformed", "malformed audio file"),
    ("unexpected end", "truncated: the file ends in the middle of the audio"),
    ("end of file", "truncated: the file ends in the middle of the audio"),
    ("short", "truncated: the file ends in the middle of the audio"),
    ("channel", "bad header: impossible channel count"),
    ("sample rate", "bad header: impossible sample rate"),
    ("samplerate", "bad header: impossible sample rate"),
)


def _translate(exc: Exception, h: _Header) -> str:
    if h.encoding is not None and h.encoding not in (1, 3, 0xFFFE):
        return f"WAV encoding 0x{h.encoding:04X} cannot be decoded (use integer PCM or float WAV)"
    text = str(exc).lower()
    for needle, reason in _SNDFILE_REASONS:
        if needle in text:
            return reason
    return f"cannot decode the {h.format.upper()} audio (the file is damaged or uses an unusual encoding)"


_DECODE_BLOCK = 65536  # frames per read: memory follows what is decoded, never the header's claim
_UNKNOWN_FRAMES = 2**63 - 1  # what libsndfile reports for a stream of unknown length


def _decode(p: Path, data: bytes, h: _Header, max_samples: int) -> Audio:
    """Decode in blocks, mixing each down to mono; refuse more than ``max_samples`` samples
    (frames × channels), so neither a lying header (a FLAC claiming 2^36 samples) nor a
    decompression bomb can make the reader allocate without bound."""
    import soundfile as sf

    blocks: list[np.ndarray] = []
    frames = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate, channels = f.samplerate, f.channels
            if f.frames != _UNKNOWN_FRAMES and f.frames * channels > max_samples:
                raise InputError(
                    p,
                    f"the header announces {f.frames} frames of {channels} channel(s), more than "
                    f"the {max_samples} samples a file within the size limit may hold",
                )
            while True:
                b = f.read(_DECODE_BLOCK, dtype="float32", always_2d=True)
                if len(b) == 0:
                    break
                frames += len(b)
                if frames * channels > max_samples:
                    raise InputError(
                        p, f"decodes to more than the {max_samples} samples a file within the size limit may hold"
                    )
                blocks.append(b.mean(axis=1, dtype=np.float32) if channels > 1 else b[:, 0].copy())
    except (RuntimeError, ValueError, TypeError, EOFError, sf.SoundFileError) as exc:
        log.debug("%s: libsndfile said: %s", p, exc)
        raise InputError(p, _translate(exc, h)) from None
    if frames == 0:
        raise InputError(p, "no audio: the file holds 0 samples")
    if h.frames is not None and frames < h.frames:
        raise InputError(
            p, f"truncated: the header announces {h.frames} frames but only {frames} could be decoded"
        )
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    if not np.all(np.isfinite(x)):
        raise InputError(p, "the audio contains invalid (NaN or infinite) sample values")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:  # float files may exceed full scale; keep the promise of [-1, 1]
        x = x / np.float32(peak)
    return Audio(np.ascontiguousarray(x, dtype=np.float32), int(rate), str(p), int(channels), h.format)


# --------------------------------------------------------------------------- writing


def write_pcm(path: str | os.PathLike, data: bytes) -> Path:
    """Write headerless unsigned 8-bit PCM atomically."""
    return atomic_write_bytes(path, bytes(data))


def wav_u8_bytes(data: bytes, rate: int) -> bytes:
    """An 8-bit unsigned mono PCM WAV file holding ``data`` at ``rate`` Hz."""
    data = bytes(data)
    n = len(data)
    pad = b"\x80" if n & 1 else b""  # RIFF chunks are word aligned; pad with the centre line
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        4 + 8 + 16 + 8 + n + len(pad),
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        int(rate),
        int(rate),  # byte rate
        1,  # block align
        8,  # bits
        b"data",
        n,
    )
    return header + data + pad


def write_wav_u8(path: str | os.PathLike, data: bytes, rate: int) -> Path:
    """Write an 8-bit unsigned mono PCM WAV atomically."""
    return atomic_write_bytes(path, wav_u8_bytes(data, rate))
