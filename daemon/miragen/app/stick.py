"""The Gotek's USB stick as Miragen keeps it: the one place the CLI and the daemon write it.

- :func:`prepare`: FlashFloppy's ``FF.CFG`` (settings for the Mirage) and ``IMG.CFG`` (the
  Mirage's ``[::450560]`` geometry), written atomically; a user's own files are kept (reported,
  or merged with ``merge``: missing lines added, the user's values kept), never overwritten.
- :func:`check`: mounted, filesystem (FlashFloppy reads FAT only), writable, free space, and
  what an interrupted copy left behind.
- :func:`deliver`: an image under a name FlashFloppy lists in delivery order
  (``0001-bass-01.img``: it sorts a folder by name, case-insensitively), written as a hidden
  temp file, fsynced and renamed (never half an image under a real name), listed in the index
  ``MIRAGEN.JSON`` (facts, for the program) and ``MIRAGEN.TXT`` (the same, for people), and at
  most ``keep`` of Miragen's images kept: the oldest beyond go, only those the index lists and
  that are unchanged since Miragen wrote them.
- :func:`listing`: the images in FlashFloppy's order with what each holds.

Everything on the stick is written by :func:`write_atomic`; its temp names
(``.NAME.<8 random characters>.part``: a leading dot, which FlashFloppy never lists) are
what :func:`leftovers` recognises and :func:`clean` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError, MiragenError
from ..fsutil import fsync_dir, kind_of, refuse_special_target
from ..mirage import disk

_DATA = resources.files("miragen").joinpath("data")
FF_CFG = _DATA.joinpath("FF.CFG").read_text(encoding="utf-8")  # deploy/FF.CFG links to it
IMG_CFG = _DATA.joinpath("IMG.CFG").read_text(encoding="utf-8")
IMG_CFG_SECTION = "[::450560]"  # the section FlashFloppy needs to read a Mirage image
INDEX_JSON = "MIRAGEN.JSON"
INDEX_TXT = "MIRAGEN.TXT"
INDEX_FORMAT = "miragen-stick/1"
LOCK = ".miragen.lock"  # a leading dot: FlashFloppy never lists it
CONFIG_DIR = "FF"  # when it exists, FlashFloppy reads FF.CFG and IMG.CFG there only
SEQ_WIDTH = 4
SEQ_MAX = 10**SEQ_WIDTH - 1
LOCK_WAIT_S = 30.0
# The extensions FlashFloppy lists as images (src/image/image.c, image_valid): any other file
# (.txt, .json, .cfg, dot files) is never shown on the Gotek.
FF_IMAGE_EXTS = frozenset(
    "adf d81 dsk hdm hfe img ima out st adl adm mbd mgt fdi trd opd ssd dsd sdu jvc vdk v9t9 "
    "xdf".split()
)
SEQ_NAME = re.compile(r"^(\d{4,})-(.+)\.img$", re.IGNORECASE)
OWN_FILES = ("FF.CFG", "IMG.CFG", INDEX_JSON, INDEX_TXT)
# what write_atomic (and fsutil's atomic writes before it) leaves when cut short
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.part$", re.IGNORECASE)
FOREIGN_TEMP = (".part", ".partial", ".tmp", ".crdownload", "~")
FAT_TYPES = ("vfat", "msdos", "fat")


# ------------------------------------------------------------------------------ writing


def write_atomic(path: Path, data: bytes) -> Path:
    """``data`` as ``path``, whole or not at all: a hidden temp name in the same folder, the
    bytes, fsync, rename, fsync of the folder. No chmod (a FAT mount may refuse one). An error
    removes the temp file; a stick pulled out mid-copy leaves at most that temp file, which the
    next delivery or ``stick prepare --clean`` removes."""
    refuse_special_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # readable by all where modes exist (not on FAT)
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _write_all(fh: BinaryIO, data: bytes, chunk: int = 1 << 16) -> None:
    """The bytes in chunks (what a USB stick is written in; the tests cut it here)."""
    view = memoryview(data)
    for i in range(0, len(view), chunk):
        fh.write(view[i : i + chunk])


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer at a time on a stick (the daemon and a command line may both deliver): an
    advisory lock on a hidden file, waited for up to :data:`LOCK_WAIT_S`."""
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - not POSIX: one writer at a time is the user's
        yield
        return
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MiragenError(
                        f"{root}: another Miragen has been writing to the stick for "
                        f"{LOCK_WAIT_S:.0f} s; try again when it is done"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ names


def ff_sort_key(name: str) -> bytes:
    """FlashFloppy's order of a folder (``folder-sort``; ``strcmp_lower`` in src/main.c): the
    names' bytes compared with A-Z read as a-z, nothing else changed."""
    return name.encode("utf-8", "surrogateescape").lower()


def is_ff_image(name: str, size: int) -> bool:
    """Whether FlashFloppy lists this file as an image: not a dot file, a known extension, not
    empty."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return not name.startswith(".") and ext in FF_IMAGE_EXTS and size > 0


def slug(label: str) -> str:
    """A label as the part of an image name after the sequence number: letters, digits, ``-``
    and ``_`` only (what every FAT tool and the Gotek's display show alike), at most 40."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-_")
    text = re.sub(r"^\d{4,}-", "", text)  # an earlier sequence number is not repeated
    return text[:40].strip("-_") or "sound"


def config_dir(root: Path) -> Path:
    """Where FlashFloppy reads FF.CFG and IMG.CFG: FF/ when it exists, else the root."""
    sub = root / CONFIG_DIR
    return sub if sub.is_dir() else root


# ------------------------------------------------------------------------------ the index


def read_index(root: Path) -> tuple[dict[str, Any], list[str]]:
    """``MIRAGEN.JSON`` (the images Miragen wrote here), and warnings. A missing index is an
    empty one; an unreadable one too, with a warning (nothing it listed is removed then)."""
    path = root / INDEX_JSON
    empty: dict[str, Any] = {"format": INDEX_FORMAT, "images": []}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty, []
    except (OSError, ValueError) as exc:
        return empty, [f"{path} cannot be read ({exc}); starting a new index"]
    images = index.get("images") if isinstance(index, dict) else None
    if not isinstance(images, list) or not all(
        isinstance(e, dict) and isinstance(e.get("file"), str) for e in images
    ):
        return empty, [f"{path} is not Miragen's index; starting a new one"]
    return {"format": INDEX_FORMAT, "images": images}, []


def write_index(root: Path, index: dict[str, Any], keep: int | None = None) -> None:
    """Both index files, each atomically: the facts first, then the text made from them."""
    if keep is not None:
        index["keep"] = keep
    text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    write_atomic(root / INDEX_JSON, text.encode("utf-8"))
    write_atomic(root / INDEX_TXT, render_index_text(root, index).encode("utf-8"))


def entry(name: str, seq: int, image: bytes, about: dict[str, Any]) -> dict[str, Any]:
    """One image in the index: its file, number, date, size, digest and what it holds."""
    return {
        "file": name,
        "seq": seq,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "bytes": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
        "request": str(about.get("request", "")),
        "class": str(about.get("class", "")),
        "contents": list(about.get("contents", [])),
        "template": str(about.get("template", "")),
        "by": str(about.get("by", "")),
    }


# ------------------------------------------------------------------------------ deliver


def deliver(
    stick: str | Path,
    image: bytes,
    *,
    label: str,
    keep: int = 0,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``image`` onto the stick as ``NNNN-<label>.img`` (next number), listed in the index,
    IMG.CFG beside it when the stick has none; then Miragen's oldest images beyond ``keep``
    (0: keep all) removed. Returns ``{"usb_stick", "file", "removed", "cleaned",
    "warnings"}``. Raises :class:`InputError` for a stick folder that is missing or not a
    folder, :class:`OSError` when the stick cannot be written."""
    root = _stick_folder(stick)
    warnings = mount_warnings(root)
    with _locked(root):
        cleaned = clean(root)  # what a copy cut short left: always Miragen's own
        index, problems = read_index(root)
        warnings += problems
        seq = _next_seq(root, index)
        name = f"{seq:0{SEQ_WIDTH}d}-{slug(label)}.img"
        write_atomic(root / name, image)
        index["images"] = [e for e in index["images"] if (root / e["file"]).is_file()]
        index["images"].append(entry(name, seq, image, about or {}))
        write_index(root, index, keep)  # the new image is listed before anything is removed
        removed, notes = keep_newest(root, index, keep)
        warnings += notes
        if removed or notes:
            write_index(root, index, keep)
        warnings += _ensure_img_cfg(root)
    return {
        "usb_stick": str(root / name),
        "file": name,
        "removed": removed,
        "cleaned": cleaned,
        "warnings": warnings,
    }


def _stick_folder(stick: str | Path) -> Path:
    root = Path(stick)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise InputError(
            root, "the USB stick folder does not exist (is the stick mounted?)"
        ) from None
    except OSError as exc:
        raise InputError(root, f"cannot use the USB stick folder: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(root, f"the USB stick folder is {kind_of(st.st_mode)}, not a folder")
    return root


def _next_seq(root: Path, index: dict[str, Any]) -> int:
    """One past every number in use: the index's and any ``NNNN-…img`` on the stick (an image
    whose index entry was lost keeps its number). Past 9999 Miragen's images are renumbered
    from 0001, in order, so the names keep sorting in delivery order."""
    seq = max(_numbers_in_use(root, index), default=0) + 1
    if seq <= SEQ_MAX:
        return seq
    _renumber(root, index)
    seq = max(_numbers_in_use(root, index), default=0) + 1
    if seq > SEQ_MAX:
        raise MiragenError(
            f"{root}: no image number left below {SEQ_MAX + 1} (images not written by Miragen "
            "hold the high numbers); remove some and try again"
        )
    return seq


def _numbers_in_use(root: Path, index: dict[str, Any]) -> list[int]:
    found = [int(e.get("seq", 0)) for e in index["images"]]
    for name in os.listdir(root):
        m = SEQ_NAME.match(name)
        if m:
            found.append(int(m.group(1)))
    return found


def _renumber(root: Path, index: dict[str, Any]) -> None:
    """Miragen's images as 0001-…, 0002-…, in their order; a name taken by a file Miragen did
    not write is skipped (that image keeps its name)."""
    for n, e in enumerate(sorted(index["images"], key=lambda e: int(e.get("seq", 0))), 1):
        m = SEQ_NAME.match(e["file"])
        new = f"{n:0{SEQ_WIDTH}d}-{m.group(2) if m else slug(e['file'])}.img"
        if new == e["file"] or (root / new).exists():
            continue
        os.rename(root / e["file"], root / new)
        e["file"], e["seq"] = new, n
    fsync_dir(root)
    write_index(root, index)


def unchanged(path: Path, e: dict[str, Any]) -> bool:
    """Whether the image is still the bytes Miragen wrote (size, then sha256)."""
    try:
        if path.stat().st_size != int(e.get("bytes", -1)):
            return False
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return False
    return h.hexdigest() == e.get("sha256")


def keep_newest(root: Path, index: dict[str, Any], keep: int) -> tuple[list[str], list[str]]:
    """Remove Miragen's oldest images beyond ``keep`` (0: none): only images the index lists,
    still as Miragen wrote them. One changed since (saved on the Mirage?) is kept, marked
    ``changed`` and no longer counted. Returns the removed names and notes."""
    removed: list[str] = []
    notes: list[str] = []
    if keep <= 0:
        return removed, notes
    counted = sorted(
        (e for e in index["images"] if not e.get("changed")), key=lambda e: int(e.get("seq", 0))
    )
    excess = len(counted) - keep
    for e in counted:
        if excess <= 0:
            break
        excess -= 1
        path = root / e["file"]
        if unchanged(path, e):
            path.unlink()
            removed.append(e["file"])
            index["images"].remove(e)
        else:
            e["changed"] = True
            notes.append(
                f"{path} changed since Miragen wrote it (saved on the Mirage?): kept, and no "
                "longer counted among Miragen's images"
            )
    if removed:
        fsync_dir(root)
    return removed, notes


def _ensure_img_cfg(root: Path) -> list[str]:
    """IMG.CFG where FlashFloppy reads it, when the stick has none; a warning when the one
    there lacks the Mirage's section."""
    path = config_dir(root) / "IMG.CFG"
    if not path.exists():
        write_atomic(path, IMG_CFG.encode("utf-8"))
        return []
    if not has_mirage_section(path.read_text(encoding="utf-8", errors="replace")):
        return [
            f"{path} exists without a {IMG_CFG_SECTION} section; FlashFloppy will not read "
            "the image (`miragen stick prepare --merge` adds the section)"
        ]
    return []


def has_mirage_section(text: str) -> bool:
    return re.search(r"^\s*\[\s*::\s*450560\s*\]", text, re.MULTILINE) is not None


# ------------------------------------------------------------------------------ leftovers


def leftovers(root: Path) -> tuple[list[str], list[str]]:
    """What interrupted copies left in the root folder (and FF/): Miragen's own temp files
    (``.NAME.<8 random characters>.part`` of an image, FF.CFG, IMG.CFG or the index), and other
    files that look like a cut copy (``*.part``, ``*.tmp``, …), which Miragen did not write."""
    own: list[str] = []
    foreign: list[str] = []
    for folder in dict.fromkeys((root, config_dir(root))):
        for name in sorted(os.listdir(folder)):
            rel = str((folder / name).relative_to(root))
            if not (folder / name).is_file():
                continue
            m = TEMP_NAME.match(name)
            if m and (m["target"].lower().endswith(".img") or m["target"] in OWN_FILES):
                own.append(rel)
            elif name.lower().endswith(FOREIGN_TEMP):
                foreign.append(rel)
    return own, foreign


def clean(root: Path) -> list[str]:
    """Remove Miragen's own leftover temp files; returns their names."""
    own, _ = leftovers(root)
    gone = []
    for rel in own:
        with contextlib.suppress(FileNotFoundError):
            (root / rel).unlink()
            gone.append(rel)
    if gone:
        fsync_dir(root)
    return gone


# ------------------------------------------------------------------------------ check


@dataclass
class StickCheck:
    """What :func:`check` found. ``problems`` stop a delivery; ``warnings`` do not."""

    path: str
    mount_point: str | None = None
    fstype: str | None = None
    own_mount: bool | None = None
    read_only: bool = False
    writable: bool = False
    free_bytes: int | None = None
    total_bytes: int | None = None
    images_fit: int | None = None
    config_dir: str = ""  # where FlashFloppy reads FF.CFG and IMG.CFG
    leftovers: list[str] = field(default_factory=list)
    foreign_leftovers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def check(stick: str | Path) -> StickCheck:
    """Check a stick folder: it exists, is mounted (``/proc/mounts``), FAT, writable (a probe
    file written and removed), room for an image (``os.statvfs``), nothing half-written."""
    root = _stick_folder(stick)
    res = StickCheck(path=str(root), config_dir=str(config_dir(root)))
    _check_mount(root, res)
    _check_space(root, res)
    _check_writable(root, res)
    res.leftovers, res.foreign_leftovers = leftovers(root)
    return res


def mount_of(path: Path, mounts: str | None = None) -> tuple[str, str, list[str]] | None:
    """The mount ``path`` lies on: (mount point, filesystem type, options), from
    ``/proc/mounts`` (or ``mounts``, its text); None where there is no such file."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    real = os.path.realpath(path)
    best: tuple[str, str, list[str]] | None = None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):  # the last mount wins
            best = (point, parts[2], parts[3].split(","))
    return best


def _check_mount(root: Path, res: StickCheck) -> None:
    found = mount_of(root)
    if found is None:
        res.warnings.append(
            "cannot tell the filesystem (no /proc/mounts here): make sure it is a USB stick "
            "formatted FAT32, the only kind FlashFloppy reads"
        )
        return
    res.mount_point, res.fstype, options = found
    res.own_mount = os.path.realpath(root) == res.mount_point
    res.read_only = "ro" in options
    res.warnings += mount_warnings(root, found)


def mount_warnings(root: Path, found: tuple[str, str, list[str]] | None = None) -> list[str]:
    """What is wrong with where ``root`` lies, for FlashFloppy: not a mount of its own (the
    stick may not be mounted: the files would land on the computer's disk), not FAT."""
    found = found or mount_of(root)
    if found is None:
        return []
    point, fstype, _ = found
    out = []
    if fstype.lower() not in FAT_TYPES:
        out.append(
            f"{root} is on the {fstype} filesystem mounted at {point}: FlashFloppy reads FAT "
            "only (FAT32; not exFAT or NTFS); format the stick FAT32, e.g. `mkfs.vfat -F 32`"
        )
    if os.path.realpath(root) != point and fstype.lower() not in FAT_TYPES:
        out.append(f"{root} is not a mount point: is the stick mounted? (the files go to {point})")
    return out


def _check_space(root: Path, res: StickCheck) -> None:
    try:
        st = os.statvfs(root)
    except (OSError, AttributeError):  # no statvfs (not POSIX)
        res.warnings.append("cannot tell the free space here")
        return
    res.free_bytes = st.f_bavail * st.f_frsize
    res.total_bytes = st.f_blocks * st.f_frsize
    res.images_fit = res.free_bytes // disk.SIZE
    if res.images_fit < 1:
        res.problems.append(
            f"{root}: {res.free_bytes:,} bytes free; one Mirage image needs {disk.SIZE:,}"
        )


def _check_writable(root: Path, res: StickCheck) -> None:
    if res.read_only:
        res.problems.append(f"{root}: mounted read-only (remount it read-write)")
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{INDEX_TXT}.", suffix=".part", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        res.problems.append(f"{root}: cannot write there: {exc.strerror or exc}")
        return
    res.writable = True


# ------------------------------------------------------------------------------ prepare


def prepare(stick: str | Path, *, merge: bool = False, clean_up: bool = False) -> dict[str, Any]:
    """Check the stick and put FF.CFG and IMG.CFG where FlashFloppy reads them. A file already
    there is kept: what it lacks or sets otherwise is reported, and with ``merge`` the
    missing lines are added (the user's values stay). ``clean_up`` removes Miragen's leftover
    temp files. Returns ``{"ok", "check", "done", "warnings"}``."""
    found = check(stick)
    root = Path(found.path)
    done: list[str] = []
    warnings = list(found.warnings)
    if found.ok:
        where = config_dir(root)
        if where != root and (root / "FF.CFG").exists():
            warnings.append(
                f"{root / 'FF.CFG'} is ignored by FlashFloppy: FF/ exists, so it reads "
                f"{where / 'FF.CFG'} only"
            )
        _prepare_ff_cfg(where / "FF.CFG", merge, done, warnings)
        _prepare_img_cfg(where / "IMG.CFG", merge, done, warnings)
        if clean_up:
            done += [f"removed {root / rel} (left by an interrupted copy)" for rel in clean(root)]
            found.leftovers = []
    for rel in found.leftovers:
        warnings.append(
            f"{root / rel} was left by an interrupted copy (Miragen's): "
            "`miragen stick prepare --clean` removes it"
        )
    for rel in found.foreign_leftovers:
        warnings.append(
            f"{root / rel} looks like a cut-off copy, not Miragen's: left alone (remove it by "
            "hand if it is one)"
        )
    return {"ok": found.ok, "check": found.to_dict(), "done": done, "warnings": warnings}


def cfg_options(text: str) -> dict[str, str]:
    """``name = value`` lines of an FF.CFG, as FlashFloppy reads them (``#`` starts a comment;
    later lines win)."""
    opts: dict[str, str] = {}
    for line in text.splitlines():
        body = line.split("#", 1)[0].strip()
        if "=" in body:
            key, value = body.split("=", 1)
            opts[key.strip()] = value.strip().strip('"')
    return opts


def cfg_groups(text: str) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """Miragen's FF.CFG as groups: the comment lines, then the option lines they explain
    (``(name, line)``), in order."""
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    comments: list[str] = []
    options: list[tuple[str, str]] = []
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            options.append((stripped.split("=", 1)[0].strip(), line))
            continue
        if options:
            groups.append((comments, options))
            comments, options = [], []
        if not stripped or stripped.startswith("##"):
            comments = []
        elif stripped.startswith("#"):
            comments.append(line)
    return groups


def merged_lines(missing: list[str]) -> str:
    """Miragen's lines for the ``missing`` options, each group with its comment."""
    out = []
    for comments, options in cfg_groups(FF_CFG):
        lines = [line for name, line in options if name in missing]
        if lines:
            out.append("\n".join([*comments, *lines]))
    return "\n\n".join(out)


def _prepare_ff_cfg(path: Path, merge: bool, done: list[str], warnings: list[str]) -> None:
    if not path.exists():
        write_atomic(path, FF_CFG.encode("utf-8"))
        done.append(f"wrote {path} (FlashFloppy settings for the Mirage)")
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    theirs, ours = cfg_options(text), cfg_options(FF_CFG)
    missing = [k for k in ours if k not in theirs]
    differ = [k for k in ours if k in theirs and theirs[k] != ours[k]]
    for k in differ:
        warnings.append(
            f"{path} sets {k} = {theirs[k]} where Miragen's sets {k} = {ours[k]}: kept yours "
            "(docs/delivery-disk.md says why Miragen's; delete FF.CFG and run `miragen stick "
            "prepare` again to take Miragen's)"
        )
    if not missing:
        done.append(f"kept {path}: it sets every option Miragen's does")
        return
    if not merge:
        warnings.append(
            f"{path} is yours and lacks {', '.join(missing)}: kept as it is "
            "(`miragen stick prepare --merge` adds Miragen's lines for them, your values stay)"
        )
        return
    added = merged_lines(missing)
    head = "\n\n# Added by `miragen stick prepare --merge` (Ensoniq Mirage):\n"
    write_atomic(path, (text.rstrip("\n") + head + added + "\n").encode("utf-8"))
    done.append(f"added {', '.join(missing)} to {path} (your other lines are as they were)")


def _prepare_img_cfg(path: Path, merge: bool, done: list[str], warnings: list[str]) -> None:
    if not path.exists():
        write_atomic(path, IMG_CFG.encode("utf-8"))
        done.append(f"wrote {path} (the Mirage disk's {IMG_CFG_SECTION} geometry)")
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    if has_mirage_section(text):
        done.append(f"kept {path}: it has the {IMG_CFG_SECTION} section")
        return
    if not merge:
        warnings.append(
            f"{path} is yours and has no {IMG_CFG_SECTION} section: FlashFloppy will not read "
            "Mirage images (`miragen stick prepare --merge` adds the section)"
        )
        return
    section = IMG_CFG[IMG_CFG.index(IMG_CFG_SECTION) :]
    head = "\n\n# Ensoniq Mirage, added by `miragen stick prepare --merge`:\n"
    write_atomic(path, (text.rstrip("\n") + head + section).encode("utf-8"))
    done.append(f"added the {IMG_CFG_SECTION} section to {path}")


# ------------------------------------------------------------------------------ listing


def listing(stick: str | Path, *, verify: bool = False) -> dict[str, Any]:
    """The images on the stick in FlashFloppy's order (``slot``: the place in its list, from 0,
    with this FF.CFG's ``sort-priority = files``) with what the index says each holds, and the
    index entries whose file is gone. ``verify`` compares each of Miragen's images with the
    digest it wrote."""
    root = _stick_folder(stick)
    index, warnings = read_index(root)
    by_name = {e["file"]: e for e in index["images"]}
    rows = []
    names = []
    for item in os.scandir(root):
        with contextlib.suppress(OSError):
            if item.is_file() and is_ff_image(item.name, item.stat().st_size):
                names.append((item.name, item.stat().st_size))
    for slot, (name, size) in enumerate(sorted(names, key=lambda n: ff_sort_key(n[0]))):
        e = by_name.get(name)
        row = {"slot": slot, "file": name, "bytes": size, "miragen": e is not None, "note": ""}
        if e is not None:
            row.update({k: e.get(k) for k in ("seq", "date", "request", "class", "template")})
            row["contents"] = e.get("contents", [])
            row["note"] = _note(root / name, e, size, verify)
        elif size != disk.SIZE:
            row["note"] = f"not a Mirage image ({size:,} bytes, not {disk.SIZE:,})"
        rows.append(row)
    listed = {n for n, _ in names}
    missing = [e["file"] for e in index["images"] if e["file"] not in listed]
    return {"path": str(root), "images": rows, "missing": missing, "warnings": warnings}


def _note(path: Path, e: dict[str, Any], size: int, verify: bool) -> str:
    if e.get("changed"):
        return "changed since Miragen wrote it (kept; not counted)"
    if size != e.get("bytes"):
        return f"{size:,} bytes, not the {e.get('bytes'):,} Miragen wrote"
    if verify:
        return "verified" if unchanged(path, e) else "changed since Miragen wrote it"
    return ""


def what(row: dict[str, Any]) -> str:
    """What an image holds, in a few words: ``lower1 ws1: gen-0007.pcm (bass)``."""
    if not row.get("miragen"):
        return "(not Miragen's)"
    parts = []
    for c in row.get("contents") or []:
        src = Path(str(c.get("source", ""))).name or "?"
        cls = f" ({c['class']})" if c.get("class") else ""
        parts.append(f"{c.get('sound', '?')} ws{c.get('wavesample', '?')}: {src}{cls}")
    return "; ".join(parts) or "-"


def render_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The listing as aligned text lines (a header, then one line per image)."""
    table = [("slot", "file", "date", "request", "class", "wavesamples")]
    for r in rows:
        date = str(r.get("date") or "")[:16].replace("T", " ")
        table.append(
            (
                f"{r['slot']:03d}",
                r["file"],
                date or "-",
                str(r.get("request") or "-"),
                str(r.get("class") or "-"),
                what(r) + (f"  [{r['note']}]" if r.get("note") else ""),
            )
        )
    widths = [max(len(t[i]) for t in table) for i in range(5)]
    return ["  ".join(c.ljust(w) for c, w in zip(t[:5], widths)) + "  " + t[5] for t in table]


def render_index_text(root: Path, index: dict[str, Any]) -> str:
    """MIRAGEN.TXT: every image on the stick in the Gotek's order, with what it holds."""
    listed = listing(root)
    keep = index.get("keep", 0)
    lines = [
        "MIRAGEN.TXT: the disk images on this stick in the order the Gotek lists them",
        "(FlashFloppy sorts by name). Rewritten by Miragen at each delivery; MIRAGEN.JSON",
        "holds the same facts for the program. Each image is a copy of its template with the",
        "wavesample(s) named here replaced; every other wavesample is the template's.",
        "Miragen keeps "
        + (f"its newest {keep} images here;" if keep else "every image it writes here;")
        + " it removes only images it wrote,",
        "listed in MIRAGEN.JSON and unchanged since (an image the Mirage saved onto is kept).",
        "",
        *render_rows(listed["images"]),
    ]
    templates = sorted({str(r.get("template")) for r in listed["images"] if r.get("template")})
    if templates:
        lines += ["", "templates: " + ", ".join(templates)]
    return "\n".join(lines) + "\n"
