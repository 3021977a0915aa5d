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

import logging
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import atomic_write_bytes, open_regular
from ..limits import SOURCE_RATE_MAX, source_rate_problem

log = logging.getLogger(__name__)

RAW_SUFFIXES = frozenset({".pcm", ".raw"})
MAX_RATE = SOURCE_RATE_MAX  # Hz; anything above is an absurd header value
MAX_CHANNELS = 256
DEFAULT_RAW_RATE = 29411
DEFAULT_MAX_FILE_BYTES = 64 * 2**20


@dataclass
class Audio:
    """Decoded audio: float32 mono samples in [-1, 1] at ``rate`` Hz.

    When the reader was asked to keep only the start of a long file (``keep_seconds``),
    ``samples`` holds that start and ``total_frames`` the length of the whole file.
    """

    samples: np.ndarray
    rate: int
    path: str
    channels: int = 1  # channel count of the source (mixed down to mono)
    format: str = ""  # "wav", "aiff", "flac" or "raw"
    total_frames: int = -1  # frames in the whole file (-1: same as len(samples))
    lo: float = 0.0  # lowest and highest mono sample value decoded (over the whole file when
    hi: float = 0.0  # it was measured whole: see scan_audio)

    def __post_init__(self) -> None:
        if self.total_frames < 0:
            self.total_frames = len(self.samples)
        if self.lo == 0.0 and self.hi == 0.0 and len(self.samples):
            self.lo, self.hi = float(np.min(self.samples)), float(np.max(self.samples))

    @property
    def seconds(self) -> float:
        """Duration of the whole file (not only of what was kept)."""
        return self.total_frames / float(self.rate) if self.rate else 0.0

    @property
    def kept_all(self) -> bool:
        return len(self.samples) >= self.total_frames


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


class _Source:
    """One open regular file, read by offset (``pread``): headers are checked without loading
    the file, so memory follows what is decoded, never the file's size."""

    def __init__(self, path: Path, fd: int, size: int):
        self.path, self.fd, self.size = path, fd, size

    def read(self, offset: int, n: int) -> bytes:
        if offset >= self.size or n <= 0:
            return b""
        return os.pread(self.fd, min(n, self.size - offset), offset)


# --------------------------------------------------------------------------- reading


def read_audio(
    path: str | os.PathLike,
    *,
    raw_rate: int = DEFAULT_RAW_RATE,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    keep_seconds: float | None = None,
    keep_frames: int | None = None,
    measure_all: bool = False,
) -> Audio:
    """Decode ``path`` into float32 mono samples in [-1, 1].

    ``.pcm``/``.raw`` files are headerless unsigned 8-bit at ``raw_rate`` Hz (0x00 bytes are
    accepted on read). Everything else is recognised by its magic bytes (RIFF/RIFX/RF64 WAVE,
    FORM AIFF/AIFC, fLaC), whatever its name. Channels are mixed down by averaging.

    ``keep_seconds``: decode only the first ``keep_seconds`` of the file (the rest is measured,
    not kept: :attr:`Audio.total_frames`), so a long file, or a header whose rate makes a small
    file last for hours, costs what is kept; ``keep_frames`` does the same in frames (the smaller
    of the two applies). ``measure_all`` decodes the rest too, block by block without keeping
    it, so that :attr:`Audio.lo`/:attr:`Audio.hi` cover the whole file. Only regular files are
    read (a FIFO or a device is refused at once). Raises :class:`InputError` naming the file and
    the reason for bad input.
    """
    p = Path(path)
    fd, size = _open_regular(p, max_file_bytes)
    try:
        src = _Source(p, fd, size)
        if p.suffix.lower() in RAW_SUFFIXES:
            return _read_raw(src, raw_rate, keep_seconds, keep_frames, measure_all)
        header = _check_header(p, src)
        return _decode(src, header, max_file_bytes, keep_seconds, keep_frames, measure_all)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def _open_regular(p: Path, max_file_bytes: int) -> tuple[int, int]:
    """Open ``p`` for reading if it is a non-empty regular file within the size limit."""
    fd, st = open_regular(p, what="file")
    try:
        if st.st_size == 0:
            raise InputError(p, "empty file (0 bytes)")
        if st.st_size > max_file_bytes:
            raise InputError(
                p,
                f"file is {st.st_size / 2**20:.1f} MB, larger than the "
                f"{max_file_bytes / 2**20:g} MB limit",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, int(st.st_size)


def _keep_frames(keep_seconds: float | None, keep_frames: int | None, rate: float) -> int | None:
    keep = None if keep_frames is None else max(1, int(keep_frames))
    if keep_seconds is not None:
        by_time = max(1, math.ceil(max(0.0, keep_seconds) * rate))
        keep = by_time if keep is None else min(keep, by_time)
    return keep


def _read_raw(
    src: _Source,
    raw_rate: int,
    keep_seconds: float | None,
    keep_frames: int | None,
    measure_all: bool,
) -> Audio:
    problem = source_rate_problem(raw_rate)
    if problem:
        raise InputError(src.path, f"raw {problem}")
    keep = _keep_frames(keep_seconds, keep_frames, raw_rate)
    n = src.size if keep is None else min(src.size, keep)
    try:
        data = src.read(0, n)
        lo, hi = _raw_range(src) if measure_all and n < src.size else (None, None)
    except OSError as exc:
        raise InputError(src.path, f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise InputError(src.path, "empty file (0 bytes)")
    samples = u8_samples(data)
    a = Audio(samples, int(raw_rate), str(src.path), 1, "raw", total_frames=src.size)
    if lo is not None:
        a.lo, a.hi = lo, hi
    return a


def _raw_range(src: _Source) -> tuple[float, float]:
    lo, hi = 255, 0
    for off in range(0, src.size, 1 << 20):
        b = np.frombuffer(src.read(off, 1 << 20), dtype=np.uint8)
        if len(b):
            lo, hi = min(lo, int(b.min())), max(hi, int(b.max()))
    return (lo - 128.0) / 128.0, (hi - 128.0) / 128.0


def u8_samples(data: bytes) -> np.ndarray:
    """Headerless unsigned 8-bit bytes as float32 samples in [-1, 1) (0x80 is silence)."""
    return (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0


def scan_audio(
    path: str | os.PathLike,
    *,
    raw_rate: int = DEFAULT_RAW_RATE,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Audio:
    """Check and measure a whole file without keeping it: rate, channels, format, length
    (:attr:`Audio.total_frames`) and the range of its values (:attr:`Audio.lo`, ``hi``), in
    memory that does not grow with the file. ``samples`` holds only the first frame."""
    return read_audio(
        path, raw_rate=raw_rate, max_file_bytes=max_file_bytes, keep_frames=1, measure_all=True
    )


# Other formats, recognised so that the message says what to do instead of "not a WAV".
_OTHER_FORMATS = (
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file (Vorbis or Opus)"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM file"),
    (b"caff", "a Core Audio (CAF) file"),
    (b".snd", "a Sun/NeXT .au file"),
    (b"MThd", "a Standard MIDI File (notes, not audio)"),
)


def _other_format(head: bytes) -> str | None:
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return "an MP3 or AAC stream"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A file"
    return None


def _check_header(p: Path, src: _Source) -> _Header:
    try:
        head = src.read(0, 12)
    except OSError as exc:
        raise InputError(p, f"cannot read the file: {exc.strerror or exc}") from None
    magic = head[:4]
    if magic in (b"RIFF", b"RIFX", b"RF64"):
        h = _check_wav(p, src)
    elif magic == b"FORM":
        h = _check_aiff(p, src)
    elif magic == b"fLaC":
        h = _check_flac(p, src)
    else:
        other = _other_format(head)
        if other:
            raise InputError(
                p, f"{other}, which Miragen does not read: convert it to WAV or FLAC first"
            )
        shown = head[:4].decode("latin-1").encode("unicode_escape").decode("ascii")
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
        raise InputError(
            p,
            f"bad {h.format.upper()} header: it says {h.channels} channels "
            f"(at most {MAX_CHANNELS})",
        )
    problem = source_rate_problem(h.rate)
    if problem:
        raise InputError(p, f"bad {h.format.upper()} header: {problem}")
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


MAX_CHUNKS = 4096  # a real file has a handful; more is a hostile file made of empty chunks


def _walk_chunks(p: Path, src: _Source, start: int, big: bool, what: str):
    """Yield (id, payload offset, declared length) for each chunk of a RIFF/IFF body."""
    pos = start
    n = src.size
    hdr = ">4sI" if big else "<4sI"
    count = 0
    while pos + 8 <= n:
        count += 1
        if count > MAX_CHUNKS:
            raise InputError(p, f"bad {what} file: more than {MAX_CHUNKS} chunks")
        cid, length = struct.unpack(hdr, src.read(pos, 8))
        yield cid, pos + 8, length
        pos += 8 + length + (length & 1)
    if pos < n and pos + 8 > n and n - pos > 1:
        log.debug("%s: %d stray bytes after the last %s chunk", p, n - pos, what)


STREAMED = 0xFFFFFFFF  # size fields of a WAV written while streaming (length unknown)


def _check_wav(p: Path, src: _Source) -> _Header:
    if src.size < 12:
        raise InputError(p, f"truncated: only {src.size} bytes, too short for a WAV header")
    head = src.read(0, 12)
    riff, form = head[:4], head[8:12]
    if form != b"WAVE":
        shown = form.decode("latin-1").encode("unicode_escape").decode("ascii")
        raise InputError(p, f"a RIFF file, but not WAV audio (form type '{shown}')")
    big = riff == b"RIFX"
    riff_size = struct.unpack(">I" if big else "<I", head[4:8])[0]
    fmt = None
    data_off = data_len = None
    ds64_data = None
    for cid, off, length in _walk_chunks(p, src, 12, big, "WAV"):
        if cid == b"ds64" and length >= 28:
            b = src.read(off + 8, 8)
            ds64_data = struct.unpack("<Q", b)[0] if len(b) == 8 else None
        elif cid == b"fmt ":
            b = src.read(off, 16)
            if length < 16 or len(b) < 16:
                raise InputError(p, "bad WAV header: the 'fmt ' chunk is too short")
            fmt = struct.unpack(">HHIIHH" if big else "<HHIIHH", b)
        elif cid == b"data":
            data_off, data_len = off, length
            if riff == b"RF64" and length == STREAMED and ds64_data is not None:
                data_len = ds64_data
            elif riff == b"RIFF" and length == STREAMED and riff_size in (0, STREAMED):
                # a streamed WAV (both sizes unknown to the writer): the audio runs to the end
                # of the file. A legitimate WAV, not a truncated one; a data size alone that
                # claims 4 GB in a file whose RIFF size is real is still a lie.
                data_len = src.size - off
            break
    if fmt is None:
        if data_off is not None:
            raise InputError(p, "bad WAV header: the audio comes before any 'fmt ' chunk")
        raise InputError(p, "bad or truncated WAV: no 'fmt ' chunk (format description) found")
    tag, channels, rate, _byte_rate, block_align, bits = fmt
    if data_off is None:
        raise InputError(p, "truncated or incomplete WAV: no 'data' chunk (no audio) found")
    h = _Header("wav", channels, float(rate), bits, None, data_len, src.size - data_off, tag)
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


_AIFF_PLAIN = (
    b"NONE",
    b"twos",
    b"sowt",
    b"raw ",
    b"fl32",
    b"FL32",
    b"fl64",
    b"FL64",
    b"in24",
    b"in32",
    b"42ni",
    b"23ni",
)


def _check_aiff(p: Path, src: _Source) -> _Header:
    if src.size < 12:
        raise InputError(p, f"truncated: only {src.size} bytes, too short for an AIFF header")
    form = src.read(8, 4)
    if form not in (b"AIFF", b"AIFC"):
        shown = form.decode("latin-1").encode("unicode_escape").decode("ascii")
        raise InputError(p, f"an IFF file, but not AIFF audio (form type '{shown}')")
    comm = None
    compression = b"NONE"
    ssnd = None
    for cid, off, length in _walk_chunks(p, src, 12, True, "AIFF"):
        if cid == b"COMM":
            b = src.read(off, 22)
            if length < 18 or len(b) < 18:
                raise InputError(p, "bad AIFF header: the 'COMM' chunk is too short")
            channels, frames, bits = struct.unpack_from(">hIh", b, 0)
            rate = _extended_to_float(b[8:18])
            comm = (channels, frames, bits, rate)
            if form == b"AIFC" and length >= 22 and len(b) >= 22:
                compression = b[18:22]
        elif cid == b"SSND":
            b = src.read(off, 4)
            if len(b) < 4 or off + 8 > src.size:
                raise InputError(p, "truncated: the 'SSND' (audio) chunk is cut short")
            offset = struct.unpack(">I", b)[0]
            ssnd = (off + 8 + offset, length - 8 - offset)
    if comm is None:
        raise InputError(p, "bad or truncated AIFF: no 'COMM' chunk (format description) found")
    channels, frames, bits, rate = comm
    h = _Header("aiff", channels, rate, bits, frames, None, None)
    if frames > 0 and ssnd is None:
        raise InputError(p, "truncated or incomplete AIFF: no 'SSND' chunk (no audio) found")
    if compression in _AIFF_PLAIN and ssnd is not None:
        width = (bits + 7) // 8 if bits > 0 else 0
        if compression in (b"fl32", b"FL32"):
            width = 4
        elif compression in (b"fl64", b"FL64"):
            width = 8
        if channels > 0 and width > 0:
            h.data_bytes = frames * channels * width
            h.available = src.size - ssnd[0]
    return h


def _check_flac(p: Path, src: _Source) -> _Header:
    if src.size < 8 + 34:
        raise InputError(p, f"truncated: only {src.size} bytes, too short for a FLAC header")
    data = src.read(0, 8 + 34)
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
    return (
        f"cannot decode the {h.format.upper()} audio "
        "(the file is damaged or uses an unusual encoding)"
    )


_DECODE_SAMPLES = 65536  # samples (frames × channels) per read: memory per block is bounded
_UNKNOWN_FRAMES = 2**63 - 1  # what libsndfile reports for a stream of unknown length


def _decode(
    src: _Source,
    h: _Header,
    max_samples: int,
    keep_seconds: float | None,
    keep_frames: int | None = None,
    measure_all: bool = False,
) -> Audio:
    """Decode in blocks, mixing each down to mono; refuse more than ``max_samples`` samples
    (frames × channels), so neither a lying header (a FLAC claiming 2^36 samples) nor a
    decompression bomb can make the reader allocate without bound. With ``keep_seconds`` only
    that much is kept; the rest is counted (from the header when it says, else by decoding
    block by block and dropping each block)."""
    import soundfile as sf

    p = src.path
    try:
        with open(os.dup(src.fd), "rb", closefd=True) as fh, sf.SoundFile(fh) as f:
            rate, channels = f.samplerate, f.channels
            known = f.frames != _UNKNOWN_FRAMES
            if known and f.frames * channels > max_samples:
                raise InputError(
                    p,
                    f"the header announces {f.frames} frames of {channels} channel(s), more "
                    f"than the {max_samples} samples a file within the size limit may hold",
                )
            keep = _keep_frames(keep_seconds, keep_frames, rate)
            # when the header says how long the rest is, it need not be decoded
            skip_rest = known and not measure_all
            got = _read_blocks(f, p, channels, max_samples, keep, skip_rest, measure_all)
            stopped = skip_rest and keep is not None and got.kept >= keep
            total = int(f.frames) if stopped else got.counted
    except (RuntimeError, ValueError, TypeError, EOFError, sf.SoundFileError) as exc:
        log.debug("%s: libsndfile said: %s", p, exc)
        raise InputError(p, _translate(exc, h)) from None
    if got.kept == 0:
        raise InputError(p, "no audio: the file holds 0 samples")
    if h.frames is not None and got.counted == total and total < h.frames:
        raise InputError(
            p,
            f"truncated: the header announces {h.frames} frames but only {total} could be decoded",
        )
    return _audio(got, total, int(rate), int(channels), p, h.format, measure_all)


@dataclass
class _Blocks:
    """What :func:`_read_blocks` decoded."""

    blocks: list[np.ndarray] = field(default_factory=list)  # the kept part, mono, block by block
    kept: int = 0  # frames kept
    counted: int = 0  # frames decoded
    lo: float = math.inf  # lowest and highest mono sample value decoded (with measure_all)
    hi: float = -math.inf


def _read_blocks(
    f,  # an open soundfile.SoundFile
    p: Path,
    channels: int,
    max_samples: int,
    keep: int | None,
    skip_rest: bool,
    measure_all: bool,
) -> _Blocks:
    """Read ``f`` block by block, mixed down to mono, keeping its first ``keep`` frames (all
    when None); once they are kept, stop with ``skip_rest``, else go on counting (and, with
    ``measure_all``, measuring) to the end. More than ``max_samples`` samples is an error."""
    got = _Blocks()
    block = max(1, _DECODE_SAMPLES // max(1, channels))
    while True:
        want = block if keep is None or got.kept >= keep else min(block, keep - got.kept)
        if keep is not None and got.kept >= keep and skip_rest:
            break
        b = f.read(want, dtype="float32", always_2d=True)
        if len(b) == 0:
            break
        got.counted += len(b)
        if got.counted * channels > max_samples:
            raise InputError(
                p,
                f"decodes to more than the {max_samples} samples a file within the "
                "size limit may hold",
            )
        mono = b.mean(axis=1, dtype=np.float32) if channels > 1 else b[:, 0]
        if measure_all and len(mono):
            got.lo, got.hi = min(got.lo, float(np.min(mono))), max(got.hi, float(np.max(mono)))
        if keep is None or got.kept < keep:
            got.blocks.append(mono if channels > 1 else mono.copy())
            got.kept += len(b)
    return got


def _audio(
    got: _Blocks,
    total: int,
    rate: int,
    channels: int,
    p: Path,
    fmt: str,
    measure_all: bool,
) -> Audio:
    """The decoded blocks as :class:`Audio`: checked finite, scaled into [-1, 1]."""
    x = got.blocks[0] if len(got.blocks) == 1 else np.concatenate(got.blocks)
    if not np.all(np.isfinite(x)):
        raise InputError(p, "the audio contains invalid (NaN or infinite) sample values")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:  # float files may exceed full scale; keep the promise of [-1, 1]
        x = x / np.float32(peak)
    a = Audio(
        np.ascontiguousarray(x, dtype=np.float32),
        rate,
        str(p),
        channels,
        fmt,
        total_frames=max(total, len(x)),
    )
    if measure_all and got.lo <= got.hi:
        scale = max(1.0, peak, abs(got.lo), abs(got.hi))
        a.lo, a.hi = got.lo / scale, got.hi / scale
    return a


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
