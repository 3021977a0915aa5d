"""Back up a Mirage over MIDI into a disk image, and restore sounds of an image to a Mirage.

:func:`backup` reads both parameter blocks (0x03/0x13, two equal replies: program dumps carry
no checksum) and both halves' wave memory (0x0B, in chunks, each reply checked), and rebuilds a
disk image: the lower half becomes sound ``lower<slot>``, the upper ``upper<slot>``, in a copy
of a template (or of the synthetic template, which does NOT boot a Mirage).

:func:`restore` sends sounds of an image back: the 64 KB wave area by 0x0C in chunks, each
acknowledged and read back, then the 625-byte parameter block by 0x05/0x15, read back.

Both resume after a dropped connection. A backup keeps ``OUT.part`` (the memory read so far)
and ``OUT.progress.json`` (the blocks, and each verified chunk with its SHA-256) beside the
output; a rerun re-reads the two blocks (if either changed, a sound was loaded in between:
it starts over), keeps the chunks whose bytes still match their SHA-256 and reads the rest;
the image appears atomically at the end and the two files go. A restore keeps
``IMAGE.restore.progress.json`` (the image's SHA-256, the chunks stored and verified); a
rerun reads the last of them back first and starts that sound over if the Mirage no longer
holds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..limits import HALF_BYTES, PAGE
from ..mirage import disk
from ..mirage import params as P
from ..transport.base import LinkLost, Transport, TransportError
from ..transport.memory import (
    HALVES,
    MemoryLink,
    TransferFailed,
    chunks,
    read_block_bytes,
    read_chunk_bytes,
    write_block_bytes,
    write_chunk_bytes,
)

log = logging.getLogger(__name__)

BACKUP_FORMAT = "miragen-backup-progress/1"
RESTORE_FORMAT = "miragen-restore-progress/1"
DEFAULT_CHUNK_PAGES = 16  # 4 KB: an 8,206-byte 0x0C message, 2.6 s on the wire
PART_SIZE = len(HALVES) * HALF_BYTES

Progress = Callable[[int, int], None]  # (wire bytes done, wire bytes planned)


def part_paths(output: str | os.PathLike) -> tuple[Path, Path]:
    """``OUT.part`` and ``OUT.progress.json`` beside ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".part"), out.with_name(out.name + ".progress.json")


def restore_state_path(image: str | os.PathLike) -> Path:
    img = Path(image)
    return img.with_name(img.name + ".restore.progress.json")


def _sha(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


class _Wire:
    """The progress callback of one run: wire bytes done of those planned."""

    def __init__(self, progress: Progress | None):
        self.progress, self.total = progress, 0

    def __call__(self, done: int) -> None:
        if self.progress is not None:
            self.progress(min(done, self.total), self.total)


def _failure(out: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, LinkLost):
        out["error"] = f"link lost: {exc}"
    else:
        out["error"] = str(exc)


# --------------------------------------------------------------------------- backup


@dataclass
class BackupState:
    """What ``OUT.progress.json`` holds."""

    chunk_pages: int
    blocks: dict[str, bytes]
    chunks: dict[str, dict[int, str]] = field(default_factory=lambda: {h: {} for h in HALVES})

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": BACKUP_FORMAT,
                "chunk_pages": self.chunk_pages,
                "blocks": {h: b.hex() for h, b in self.blocks.items()},
                "chunks": {h: {str(a): s for a, s in c.items()} for h, c in self.chunks.items()},
            }
        )

    @classmethod
    def load(cls, path: Path) -> BackupState | None:
        """The state in ``path``, or None when there is none or it cannot be used."""
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            if obj.get("format") != BACKUP_FORMAT:
                return None
            blocks = {h: bytes.fromhex(obj["blocks"][h]) for h in HALVES}
            done = {h: {int(a): str(s) for a, s in obj["chunks"][h].items()} for h in HALVES}
            pages = int(obj["chunk_pages"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if not 1 <= pages <= 255 or any(len(b) != P.BLOCK_SIZE for b in blocks.values()):
            return None
        return cls(pages, blocks, done)


def _verified_chunks(state: BackupState, memory: bytes) -> dict[str, dict[int, bytes]]:
    """The chunks of ``state`` whose bytes in ``memory`` (the ``.part``) still match."""
    size = state.chunk_pages * PAGE
    have: dict[str, dict[int, bytes]] = {h: {} for h in HALVES}
    for i, h in enumerate(HALVES):
        for addr, n in chunks(0, HALF_BYTES, size):
            data = memory[i * HALF_BYTES + addr : i * HALF_BYTES + addr + n]
            if state.chunks[h].get(addr) == _sha(data):
                have[h][addr] = data
    return have


def rebuild_image(template: bytes, memory: bytes, blocks: dict[str, bytes], slot: int) -> bytes:
    """``template`` with the lower half (wave memory and parameter block, all 625 bytes as the
    Mirage holds them) in sound ``lower<slot>`` and the upper in ``upper<slot>``; every other
    byte as in the template."""
    image = bytes(template)
    for i, h in enumerate(HALVES):
        sound = f"{h}{slot}"
        wave = memory[i * HALF_BYTES : (i + 1) * HALF_BYTES]
        image, _ = disk.write_wave_area(image, sound, wave, allow_zero=True, force=True)
        out = bytearray(image)
        off = disk.param_offset(sound)
        out[off : off + P.BLOCK_SIZE] = blocks[h]
        image = bytes(out)
    return image


class _PartFile:
    """``OUT.part``: 2 × 64 KB, written chunk by chunk (each synced before it is recorded)."""

    def __init__(self, path: Path, fresh: bool):
        self.path = path
        if fresh or not path.is_file() or path.stat().st_size != PART_SIZE:
            atomic_write_bytes(path, b"\x80" * PART_SIZE)
        self.memory = bytearray(path.read_bytes())

    def put(self, half: str, addr: int, data: bytes) -> None:
        at = HALVES.index(half) * HALF_BYTES + addr
        self.memory[at : at + len(data)] = data
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, at)
            os.fsync(fd)
        finally:
            os.close(fd)


def _backup_state(
    link: MemoryLink, prog: Path, chunk_pages: int, restart: bool, notes: list[str]
) -> tuple[BackupState, bool]:
    """The state to go on from (and whether it is fresh), after reading both blocks."""
    old = None if restart else BackupState.load(prog)
    blocks = {h: link.read_block(h) for h in HALVES}
    if old is not None and old.blocks != blocks:
        notes.append(
            "the Mirage's parameter blocks changed since the interrupted backup (a sound was "
            "loaded?): starting over"
        )
        old = None
    if old is not None and old.chunk_pages != chunk_pages:
        notes.append(f"going on with the interrupted backup's chunks of {old.chunk_pages} pages")
    if old is None:
        return BackupState(chunk_pages, blocks), True
    return old, False


def backup(
    transport: Transport,
    output: str | os.PathLike,
    *,
    template: bytes | None = None,
    slot: int = 1,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    tries: int = 3,
    ack_margin_s: float = 2.0,
    backoff_s: float = 0.5,
    restart: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Read the whole Mirage (both parameter blocks, both halves' 64 KB) into the image
    ``output``, resuming an interrupted backup of the same output unless ``restart``.

    Returns ``{"ok", "image", "error", "resumed_chunks", "chunks_read", "notes", "synthetic",
    …figures, …counts}``; a failure keeps ``OUT.part`` and ``OUT.progress.json`` for a rerun."""
    if slot not in (1, 2, 3):
        raise InputError(str(slot), "slot: expected 1, 2 or 3 (lower1/upper1 … lower3/upper3)")
    template = disk.synthetic_template() if template is None else bytes(template)
    disk.check_image(template)
    part, prog = part_paths(output)
    wire = _Wire(progress)
    link = MemoryLink(
        transport, tries=tries, ack_margin_s=ack_margin_s, backoff_s=backoff_s, progress=wire
    )
    notes: list[str] = []
    out: dict[str, Any] = {"ok": False, "image": str(output), "error": None, "notes": notes}
    wire.total = 2 * read_block_bytes(2) + sum(
        read_chunk_bytes(n) for _a, n in chunks(0, PART_SIZE, chunk_pages * PAGE)
    )
    try:
        state, fresh = _backup_state(link, prog, chunk_pages, restart, notes)
        store = _PartFile(part, fresh)
        have = _verified_chunks(state, bytes(store.memory))
        out["resumed_chunks"] = sum(len(h) for h in have.values())
        if out["resumed_chunks"]:
            notes.append(f"resumed: {out['resumed_chunks']} chunk(s) already read and verified")
        size = state.chunk_pages * PAGE
        wire.total = link.bytes_sent + link.bytes_received
        wire.total += sum(
            read_chunk_bytes(n)
            for h in HALVES
            for a, n in chunks(0, HALF_BYTES, size)
            if a not in have[h]
        )
        atomic_write_text(prog, state.to_json())
        for h in HALVES:

            def keep(addr: int, data: bytes, h: str = h) -> None:
                store.put(h, addr, data)
                state.chunks[h][addr] = _sha(data)
                atomic_write_text(prog, state.to_json())

            link.read_area(h, 0, HALF_BYTES, size, have=have[h], on_chunk=keep)
        image = rebuild_image(template, bytes(store.memory), state.blocks, slot)
        atomic_write_bytes(output, image)
        for f in (part, prog):
            f.unlink(missing_ok=True)
        out.update(ok=True, synthetic=disk.is_synthetic(image), slot=slot)
        out["sounds"] = {f"{h}{slot}": _sound_summary(state.blocks[h]) for h in HALVES}
        out["problems"] = disk.plausibility_problems(image)
    except (TransferFailed, TransportError) as exc:
        _failure(out, exc)
        out["resume"] = f"{part.name} and {prog.name} are kept: rerun the same command to go on"
    finally:
        link.close()
    out.update(link.figures(), **link.stats.to_dict(), transport=transport.name)
    return out


def _sound_summary(block: bytes) -> dict[str, Any]:
    used = [ws for ws in P.parse_sound_params(block).wavesamples if ws.used]
    return {"wavesamples_used": len(used), "pages": sum(ws.pages for ws in used)}


# --------------------------------------------------------------------------- restore


@dataclass
class RestoreState:
    """What ``IMAGE.restore.progress.json`` holds: per target ``sound>half``, the chunks
    stored and verified, and whether its parameter block went too."""

    image_sha256: str
    chunk_pages: int
    done: dict[str, list[int]] = field(default_factory=dict)
    blocks: list[str] = field(default_factory=list)

    def save(self, path: Path | None) -> None:
        if path is not None:
            atomic_write_text(path, json.dumps({"format": RESTORE_FORMAT, **self.__dict__}))

    @classmethod
    def load(cls, path: Path | None, image_sha: str, chunk_pages: int) -> RestoreState | None:
        if path is None:
            return None
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            if obj.get("format") != RESTORE_FORMAT or obj.get("image_sha256") != image_sha:
                return None
            if int(obj["chunk_pages"]) != chunk_pages:
                return None
            done = {str(k): [int(a) for a in v] for k, v in obj["done"].items()}
            return cls(image_sha, chunk_pages, done, [str(b) for b in obj["blocks"]])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def restore_targets(sounds: Sequence[str], half: str | None = None) -> list[tuple[str, str]]:
    """``(sound, half)`` pairs: each sound to its own half, or one sound to ``half``."""
    if not sounds:
        raise InputError("restore", "no sound given")
    for s in sounds:
        if s not in disk.SOUNDS:
            raise InputError(s, f"unknown sound; expected one of {', '.join(disk.SOUNDS)}")
    if half is not None and len(sounds) != 1:
        raise InputError(half, "--half chooses the half of one sound; give one --sound with it")
    out = [(s, half or s.rstrip("123")) for s in sounds]
    halves = [h for _s, h in out]
    if len(set(halves)) != len(halves):
        raise InputError(
            "restore", "two sounds for the same half: the second would replace the first"
        )
    return out


def _check_restorable(image: bytes, targets: list[tuple[str, str]]) -> None:
    for sound, _half in targets:
        problems = P.block_problems(disk.read_param_block(image, sound))
        if problems:
            raise InputError(sound, "its parameter block cannot be played: " + "; ".join(problems))


def _resume_target(
    link: MemoryLink, key: str, half: str, wave: bytes, state: RestoreState, notes: list[str]
) -> set[int]:
    """The chunks of ``key`` already restored, after reading the last of them back: if the
    Mirage no longer holds it (switched off, another sound loaded), the target starts over."""
    done = sorted(state.done.get(key, []))
    if not done:
        return set()
    size = state.chunk_pages * PAGE
    last = done[-1]
    want = wave[last : last + size]
    if link.read_chunk(half, last, len(want)) == want:
        notes.append(f"{key}: resumed after {len(done)} chunk(s) restored and verified before")
        return set(done)
    notes.append(f"{key}: the Mirage no longer holds what was restored before: starting over")
    state.done[key] = []
    if key in state.blocks:
        state.blocks.remove(key)
    return set()


def _restore_one(
    link: MemoryLink,
    image: bytes,
    sound: str,
    half: str,
    state: RestoreState,
    state_path: Path | None,
    verify: bool,
    notes: list[str],
) -> dict[str, Any]:
    key = f"{sound}>{half}"
    wave = disk.read_wave(image, sound)
    done = _resume_target(link, key, half, wave, state, notes)

    def keep(addr: int, _n: int) -> None:
        state.done.setdefault(key, []).append(addr)
        state.save(state_path)

    sent = link.write_area(
        half, 0, wave, state.chunk_pages * PAGE, verify=verify, done=done, on_chunk=keep
    )
    if key not in state.blocks:
        link.write_block(half, disk.read_param_block(image, sound), verify=verify)
        state.blocks.append(key)
        state.save(state_path)
    return {"sound": sound, "half": half, "chunks_sent": sent, "resumed_chunks": len(done)}


def restore(
    transport: Transport,
    image: bytes,
    targets: Sequence[tuple[str, str]],
    *,
    state_path: Path | None = None,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    verify: bool = True,
    require_ack: bool = True,
    tries: int = 3,
    ack_margin_s: float = 2.0,
    backoff_s: float = 0.5,
    restart: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Send each ``(sound, half)`` of ``image`` to a Mirage: the whole wave area by 0x0C
    (acknowledged, and read back with ``verify``), then the parameter block by 0x05/0x15 (read
    back). With a ``state_path`` an interrupted restore of the same image goes on where it
    stopped (unless ``restart``); the file goes when all is done.

    Returns ``{"ok", "verified", "error", "targets", "notes", …figures, …counts}``."""
    disk.check_image(image)
    targets = list(targets)
    _check_restorable(image, targets)
    sha = _sha(image)
    state = None if restart else RestoreState.load(state_path, sha, chunk_pages)
    state = state or RestoreState(sha, chunk_pages)
    verify = verify or not require_ack
    wire = _Wire(progress)
    link = MemoryLink(
        transport,
        tries=tries,
        ack_margin_s=ack_margin_s,
        backoff_s=backoff_s,
        require_ack=require_ack,
        progress=wire,
    )
    wire.total = _restore_wire_bytes(targets, state, verify, require_ack)
    notes: list[str] = []
    out: dict[str, Any] = {"ok": False, "verified": False, "error": None, "notes": notes}
    out["targets"] = []
    try:
        state.save(state_path)
        for sound, half in targets:
            out["targets"].append(
                _restore_one(link, image, sound, half, state, state_path, verify, notes)
            )
        if state_path is not None:
            state_path.unlink(missing_ok=True)
        out.update(ok=True, verified=verify)
    except (TransferFailed, TransportError) as exc:
        _failure(out, exc)
        if state_path is not None:
            out["resume"] = f"{state_path.name} is kept: rerun the same command to go on"
    finally:
        link.close()
    out.update(link.figures(), **link.stats.to_dict(), transport=transport.name)
    return out


def _restore_wire_bytes(
    targets: list[tuple[str, str]], state: RestoreState, verify: bool, ack: bool
) -> int:
    size = state.chunk_pages * PAGE
    total = 0
    for sound, half in targets:
        key = f"{sound}>{half}"
        done = set(state.done.get(key, []))
        total += read_chunk_bytes(size) if done else 0
        total += sum(
            write_chunk_bytes(n, verify, ack)
            for a, n in chunks(0, HALF_BYTES, size)
            if a not in done
        )
        total += 0 if key in state.blocks else write_block_bytes(verify)
    return total
