"""Ingest one claimed input file: check it, deduplicate it, file it in the corpus.

The claimed file (``processing/<class>/<token>__<name>``) ends in exactly one place:
- ``corpus/<class>/<sha256 prefix>.<ext>`` when it is usable audio never seen before
  (WAV, AIFF, FLAC kept as they are; raw 8-bit as ``.pcm``);
- for a Mirage disk image (450,560 bytes): the image as ``corpus/<class>/<sha>.img`` (the
  dataset loader ignores it) and each of its wavesamples as ``corpus/<class>/<sha>.pcm``;
- ``rejected/<name>`` with ``<name>.reason.txt`` otherwise (unreadable, empty, too big, silent,
  a symbolic link, not a regular file, or a duplicate of material already in the corpus: the
  same bytes, or the same samples at the same rate in another file format).

Each step is recorded in the job's payload before it happens, so re-running the job after a
kill finishes the same way without filing anything twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import read_audio, u8_samples
from ..errors import FormatError, InputError, MiragenError
from ..fsutil import atomic_write_bytes, fsync_dir
from ..mirage import disk
from .context import Context
from .jobs import Job
from .state import printable, reject_file, safe_name, train_subject

log = logging.getLogger(__name__)

DISK_SUFFIXES = {".img", ".edm"}
FORMAT_SUFFIX = {"wav": ".wav", "aiff": ".aif", "flac": ".flac", "raw": ".pcm"}
SILENCE_PEAK = 1e-3
SOUND_KEY_MAX_FRAMES = 1 << 21  # longer files are compared by their bytes only


@dataclass
class IngestOutcome:
    accepted: bool
    cls: str
    dest: str  # path relative to the state folder (corpus or rejected)
    reason: str = ""
    added: int = 0  # corpus entries added (wavesamples of a disk image count one each)


class Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _read_claimed(src: Path, max_bytes: int) -> bytes:
    """Read a claimed file without following a link and without opening odd files."""
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        raise Rejected("the file disappeared after it was claimed") from None
    if stat.S_ISLNK(st.st_mode):
        raise Rejected(
            "symbolic link: links are never followed; copy the file itself into the inbox"
        )
    if stat.S_ISDIR(st.st_mode):
        raise Rejected("a folder in place of a file")
    if not stat.S_ISREG(st.st_mode):
        raise Rejected("not a regular file (FIFO, socket or device)")
    if st.st_size == 0:
        raise Rejected("empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise Rejected(
            f"file is {st.st_size / 2**20:.1f} MB, larger than the {max_bytes / 2**20:g} MB limit "
            "(daemon.max_file_mb)"
        )
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(src, flags)
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise Rejected(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise Rejected(
            f"file is larger than the {max_bytes / 2**20:g} MB limit (daemon.max_file_mb)"
        )
    return data


def sound_key(samples: np.ndarray, rate: int) -> str:
    """The hash of a sound's decoded mono samples and its rate: the same for the same sound in
    any file format (an 8-bit WAV and the headerless ``.pcm`` of its bytes at the same rate)."""
    h = hashlib.sha256(f"{int(rate)}:".encode())
    h.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    return h.hexdigest()


def _check_audio(src: Path, cfg: dict[str, Any], max_bytes: int) -> tuple[str, str | None]:
    """Check and measure the whole file with the project's one reader, in one pass that keeps
    at most :data:`SOUND_KEY_MAX_FRAMES` frames (memory does not grow with the file); returns
    the corpus suffix for its format and its :func:`sound_key` (None for a longer file)."""
    try:
        audio = read_audio(
            src,
            raw_rate=cfg["audio"]["raw_rate"],
            max_file_bytes=max_bytes,
            keep_frames=SOUND_KEY_MAX_FRAMES,
            measure_all=True,
        )
    except InputError as exc:
        raise Rejected(exc.reason) from None
    except MemoryError:
        raise Rejected("needs more memory to decode than this machine has") from None
    if audio.total_frames < 2:
        raise Rejected("too short: fewer than 2 samples")
    if not (np.isfinite(audio.lo) and np.isfinite(audio.hi)):
        raise Rejected("holds samples that are not finite numbers")
    if (audio.hi - audio.lo) / 2.0 < SILENCE_PEAK:
        raise Rejected("silent or constant (no signal above -60 dBFS)")
    whole = audio.total_frames <= SOUND_KEY_MAX_FRAMES
    suffix = FORMAT_SUFFIX.get(getattr(audio, "format", ""), src.suffix.lower() or ".wav")
    return suffix, sound_key(audio.samples, audio.rate) if whole else None


def _disk_waves(data: bytes, name: str) -> list[tuple[str, bytes]]:
    try:
        samples = disk.training_samples(data, name)
    except (FormatError, MiragenError) as exc:
        raise Rejected(f"not a usable Mirage disk image: {exc}") from None
    samples = [
        (n, bytes(b)) for n, b in samples if len(b) >= 2 and any(v not in (0, 0x80) for v in b)
    ]
    if not samples:
        raise Rejected("Mirage disk image holds no wavesample with sound in it")
    return samples


def ingest(d: Context, job: Job) -> IngestOutcome:
    """Run one ingest job to its end (corpus or rejected); records the job as done."""
    p, state = job.payload, d.state
    src = state.root / p["path"]
    cls = p.get("class") or "default"
    original = p.get("original") or src.name
    if "rejected" in p:  # resumed after a kill: finish the rejection
        reject_file(state, src, original, p["reason"], state.root / p["rejected"])
        d.queue.finish(job)
        return IngestOutcome(False, cls, p["rejected"], p["reason"])
    if "dest" not in p:
        try:
            p.update(_examine(d, src, cls, original))
        except Rejected as exc:
            return _reject(d, job, src, cls, original, exc.reason)
        d.queue.save_payload(job)
    return _file(d, job, src, cls, original)


def _examine(d: Context, src: Path, cls: str, original: str) -> dict[str, Any]:
    """Read and check the claimed file; its hash, its place in the corpus and, for a disk image,
    its wavesamples (``extra``: [sha, path, name]). Raises Rejected with the reason."""
    cfg = d.cfg
    max_bytes = min(int(cfg["daemon"]["max_file_mb"]), int(cfg["audio"]["max_input_mb"])) * 2**20
    data = _read_claimed(src, max_bytes)
    sha = hashlib.sha256(data).hexdigest()
    seen = d.corpus.find(sha)
    if seen is not None:
        raise Rejected(f"duplicate: the same content is already in the corpus as {seen['path']}")
    extra: list[list[str]] = []
    if _is_disk(src, data):
        if len(data) != _disk_size():
            raise Rejected(
                f"a Mirage disk image must be exactly {_disk_size():,} bytes "
                f"(this one is {len(data):,})"
            )
        suffix = ".img"
        for wname, wdata in _disk_waves(data, Path(original).stem):
            wsha = hashlib.sha256(wdata).hexdigest()
            extra.append([wsha, f"corpus/{cls}/{wsha[:24]}.pcm", wname])
        sound = None
    else:
        suffix, sound = _check_audio(src, cfg, max_bytes)
        twin = d.corpus.find_sound(sound) if sound else None
        if twin is not None:
            raise Rejected(
                "duplicate: the same sound (the same samples at the same rate, in another file "
                f"format) is already in the corpus as {twin['path']}"
            )
    return {
        "sha256": sha,
        "dest": f"corpus/{cls}/{sha[:24]}{suffix}",
        "extra": extra,
        "sound": sound,
    }


def _reject(d: Context, job: Job, src: Path, cls: str, original: str, reason: str) -> IngestOutcome:
    """Into rejected/ with the reason (the destination recorded first: a kill finishes it)."""
    p, state = job.payload, d.state
    dest = state.unique_in(state.rejected, _rejected_name(original))
    p["rejected"] = str(dest.relative_to(state.root))
    p["reason"] = reason
    d.queue.save_payload(job)
    reject_file(state, src, original, reason, dest)
    d.queue.finish(job)
    log.info("rejected %s: %s", printable(original), reason)
    return IngestOutcome(False, cls, p["rejected"], reason)


def _file(d: Context, job: Job, src: Path, cls: str, original: str) -> IngestOutcome:
    """Rename the checked file into the corpus, then index it, schedule its class's retrain and
    finish the job in one transaction (idempotent: a kill at any point finishes the same way)."""
    p, root = job.payload, d.state.root
    dest = root / p["dest"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    waves: dict[str, bytes] = {}
    if p.get("extra"):
        image = src.read_bytes() if src.exists() else dest.read_bytes()
        waves = {
            hashlib.sha256(b).hexdigest(): b for _, b in _disk_waves(image, Path(original).stem)
        }
        for wsha, wpath, _ in p["extra"]:
            target = root / wpath
            if not target.exists() and wsha in waves:
                atomic_write_bytes(target, waves[wsha])
    if src.exists() or src.is_symlink():
        os.replace(src, dest)
        fsync_dir(dest.parent)
    added = 0
    raw_rate = int(d.cfg["audio"]["raw_rate"])  # a disk's wavesamples are read as .pcm files
    with d.db.transaction() as c:
        added += d.corpus.add(p["sha256"], cls, p["dest"], original, c, sound=p.get("sound"))
        for wsha, wpath, wname in p.get("extra", []):
            wave = waves.get(wsha)
            sound = sound_key(u8_samples(wave), raw_rate) if wave else None
            added += d.corpus.add(wsha, cls, wpath, f"{original}:{wname}", c, sound=sound)
        d.queue.schedule_train(
            train_subject(d.cfg, cls), float(d.cfg["train"]["debounce_s"]), conn=c
        )
        d.queue.finish(job, conn=c)
    log.info("ingested %s into %s", printable(original), p["dest"])
    return IngestOutcome(True, cls, p["dest"], added=added)


def _rejected_name(original: str) -> str:
    return safe_name(Path(original).name)


def _disk_size() -> int:
    return int(disk.SIZE)


def _is_disk(src: Path, data: bytes) -> bool:
    """Named .img/.edm, or a nameless file of exactly the disk size."""
    suffix = src.suffix.lower()
    return suffix in DISK_SUFFIXES or (suffix == "" and len(data) == _disk_size())
