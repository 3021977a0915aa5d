"""Ingest one claimed input file: check it, deduplicate it, file it in the corpus.

The claimed file (``processing/<class>/<token>__<name>``) ends in exactly one place:
- ``corpus/<class>/<sha256 prefix>.<ext>`` when it is usable audio never seen before
  (WAV, AIFF, FLAC kept as they are; raw 8-bit as ``.pcm``);
- for a Mirage disk image (450,560 bytes): the image as ``corpus/<class>/<sha>.img`` (the
  dataset loader ignores it) and each of its wavesamples as ``corpus/<class>/<sha>.pcm``;
- ``rejected/<name>`` with ``<name>.reason.txt`` otherwise (unreadable, empty, too big, silent,
  a symbolic link, not a regular file, or a duplicate of material already in the corpus).

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

from ..errors import FormatError, InputError, MiragenError
from ..fsutil import atomic_write_bytes, fsync_dir
from .jobs import Job, JobQueue
from .state import StateDir, printable, reject_file

log = logging.getLogger(__name__)

DISK_SUFFIXES = {".img", ".edm"}
FORMAT_SUFFIX = {"wav": ".wav", "aiff": ".aif", "flac": ".flac", "raw": ".pcm"}
SILENCE_PEAK = 1e-3


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


def _check_audio(src: Path, cfg: dict[str, Any], max_bytes: int) -> str:
    """Check and measure the whole file with the project's one reader, without keeping it
    (memory does not grow with the file); returns the corpus suffix for its format."""
    from ..audio.io import scan_audio

    try:
        audio = scan_audio(src, raw_rate=cfg["audio"]["raw_rate"], max_file_bytes=max_bytes)
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
    return FORMAT_SUFFIX.get(getattr(audio, "format", ""), src.suffix.lower() or ".wav")


def _disk_waves(data: bytes, name: str) -> list[tuple[str, bytes]]:
    from ..mirage import disk

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


def ingest(job: Job, state: StateDir, queue: JobQueue, cfg: dict[str, Any]) -> IngestOutcome:
    """Run one ingest job to its end (corpus or rejected); records the job as done."""
    p = job.payload
    src = state.root / p["path"]
    cls = p.get("class") or "default"
    original = p.get("original") or src.name
    max_bytes = min(int(cfg["daemon"]["max_file_mb"]), int(cfg["audio"]["max_input_mb"])) * 2**20

    if "rejected" in p:  # resumed after a kill: finish the rejection
        dest = state.root / p["rejected"]
        reject_file(state, src, original, p["reason"], dest)
        queue.finish(job)
        return IngestOutcome(False, cls, p["rejected"], p["reason"])

    if "dest" not in p:
        try:
            data = _read_claimed(src, max_bytes)
            sha = hashlib.sha256(data).hexdigest()
            seen = queue.has_file(sha)
            if seen is not None:
                raise Rejected(
                    f"duplicate: the same content is already in the corpus as {seen['path']}"
                )
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
            else:
                suffix = _check_audio(src, cfg, max_bytes)
        except Rejected as exc:
            dest = state.unique_in(state.rejected, _rejected_name(original))
            p["rejected"] = str(dest.relative_to(state.root))
            p["reason"] = exc.reason
            queue.save_payload(job)
            reject_file(state, src, original, exc.reason, dest)
            queue.finish(job)
            log.info("rejected %s: %s", printable(original), exc.reason)
            return IngestOutcome(False, cls, p["rejected"], exc.reason)
        p["sha256"] = sha
        p["dest"] = f"corpus/{cls}/{sha[:24]}{suffix}"
        p["extra"] = extra
        queue.save_payload(job)

    dest = state.root / p["dest"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if p.get("extra"):
        image = src.read_bytes() if src.exists() else dest.read_bytes()
        waves = {
            hashlib.sha256(b).hexdigest(): b for _, b in _disk_waves(image, Path(original).stem)
        }
        for wsha, wpath, _ in p["extra"]:
            target = state.root / wpath
            if not target.exists() and wsha in waves:
                atomic_write_bytes(target, waves[wsha])
    if src.exists() or src.is_symlink():
        os.replace(src, dest)
        fsync_dir(dest.parent)
    added = 0
    with queue.transaction() as c:
        added += queue.add_file(p["sha256"], cls, p["dest"], original, c)
        for wsha, wpath, wname in p.get("extra", []):
            added += queue.add_file(wsha, cls, wpath, f"{original}:{wname}", c)
        queue.schedule_train(cls, float(cfg["train"]["debounce_s"]), conn=c)
        queue.finish(job, conn=c)
    log.info("ingested %s into %s", printable(original), p["dest"])
    return IngestOutcome(True, cls, p["dest"], added=added)


def _rejected_name(original: str) -> str:
    from .state import safe_name

    return safe_name(Path(original).name)


def _disk_size() -> int:
    from ..mirage.disk import SIZE

    return int(SIZE)


def _is_disk(src: Path, data: bytes) -> bool:
    """Named .img/.edm, or a nameless file of exactly the disk size."""
    suffix = src.suffix.lower()
    return suffix in DISK_SUFFIXES or (suffix == "" and len(data) == _disk_size())
