"""Files in and out, safely.

- Atomic writes: temp file in the same folder, fsync, rename. Nobody ever sees a half-written
  file under its final name, and a target that exists but is not a regular file (a device node,
  a FIFO, a folder) is never replaced.
- :func:`read_regular`: read an input only when it is a regular file (a FIFO, a device or a
  socket would block or never end), with a size limit, and one clear error naming the file.
- :func:`check_output`: what every command checks before it writes a file a user named: not a
  folder, not a special file, its folder exists, and it is not one of the command's inputs
  (the same file by device and inode, not only by name).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError


def kind_of(mode: int) -> str:
    """A file type in words: 'a folder', 'a FIFO', 'a character device', ..."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def open_regular(path: str | os.PathLike, *, what: str = "file") -> tuple[int, os.stat_result]:
    """A read-only descriptor on ``path`` and its ``fstat``, if it is a regular file.

    Opened non-blocking and checked on the open descriptor, so a FIFO or a device
    (``/dev/zero``) is refused at once instead of hanging or reading forever, and a file swapped
    after a check cannot slip through. Raises :class:`InputError` naming the file and the reason;
    the caller closes the descriptor.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise InputError(p, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(p, f"{what} is a folder, not a file") from None
    except PermissionError:
        raise InputError(p, f"{what} cannot be read (permission denied)") from None
    except OSError as exc:
        raise InputError(p, f"{what} cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(p, f"{what} is {kind_of(st.st_mode)}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(
    path: str | os.PathLike, *, max_bytes: int | None = None, what: str = "file"
) -> bytes:
    """The bytes of ``path`` if it is a regular file (:func:`open_regular`) of at most
    ``max_bytes`` bytes. Raises :class:`InputError` naming the file and the reason."""
    p = Path(path)
    fd, st = open_regular(p, what=what)
    try:
        if max_bytes is not None and st.st_size > max_bytes:
            raise InputError(p, f"{what} is {st.st_size:,} bytes; expected at most {max_bytes:,}")
        chunks = []
        total = 0
        limit = (max_bytes + 1) if max_bytes is not None else None
        while True:
            want = 1 << 20 if limit is None else min(1 << 20, limit - total)
            if want <= 0:
                break
            b = os.read(fd, want)
            if not b:
                break
            chunks.append(b)
            total += len(b)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputError(p, f"{what} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(p, f"{what} grew past {max_bytes:,} bytes while it was read")
    return data


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when both paths exist and are the same file (device and inode)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _stat_target(path: str | os.PathLike, what: str) -> tuple[Path, os.stat_result | None]:
    """The path of an output and its stat (None when nothing is there yet)."""
    if str(path) == "":
        raise InputError("''", f"empty {what} path")
    p = Path(path)
    try:
        return p, os.stat(p)
    except FileNotFoundError:
        return p, None
    except OSError as exc:
        raise InputError(p, f"cannot use this {what}: {exc.strerror or exc}") from None


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output",
) -> Path:
    """Refuse an output path a command must not write; returns it as a Path.

    Refused, each with :class:`InputError` naming the path and the reason: a path that exists
    and is not a regular file (a folder, a device node, a FIFO: never replaced), a path whose
    folder does not exist (nothing is created silently), and a path that is one of ``inputs``
    (the same file by device and inode, through any name or link).
    """
    p, st = _stat_target(path, what)
    if st is not None and not stat.S_ISREG(st.st_mode):
        extra = (
            "; give a file name inside it"
            if stat.S_ISDIR(st.st_mode)
            else "; refusing to replace it"
        )
        raise InputError(p, f"{what} exists and is {kind_of(st.st_mode)}{extra}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError(p, f"the folder {parent} does not exist (create it first)")
    if not parent.is_dir():
        raise InputError(p, f"{parent} is not a folder")
    for src in inputs:
        if src is not None and st is not None and same_file(p, src):
            raise InputError(
                p,
                f"{what} is the input {src}; writing it would destroy the input "
                f"(choose another {what})",
            )
    return p


def prepare_output_dir(
    path: str | os.PathLike, *, what: str = "output folder"
) -> tuple[Path, bool]:
    """A folder to write into: refused when it exists as anything but a folder; created (with
    its parents) when missing. Returns (path, created) so the caller can say it was created."""
    p, st = _stat_target(path, what)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(p, f"{what} exists and is {kind_of(st.st_mode)}, not a folder")
        return p, False
    try:
        p.mkdir(parents=True)
    except FileExistsError:
        if not p.is_dir():
            raise InputError(p, f"{what} exists and is not a folder") from None
        return p, False
    except OSError as exc:
        raise InputError(p, f"cannot create the {what}: {exc.strerror or exc}") from None
    return p, True


def refuse_special_target(path: Path) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            path, f"exists and is {kind_of(st.st_mode)}; refusing to replace it with a file"
        )


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_special_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a regular file so that ``dst`` appears whole or not at all."""
    return atomic_write_bytes(dst, read_regular(src))


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (best effort on filesystems that refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
