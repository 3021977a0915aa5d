"""The demo's folder: the marker that makes it the demo's, what the demo owns in it, the lock.

A folder is the demo's when it holds :data:`MARKER`; only then is it cleaned for a rerun, and
only of the entries in :data:`OWNED` (the demo's files and the daemon's state). One demo per
folder at a time (:func:`lock_folder`), and never while a daemon runs on it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from ..errors import MiragenError
from ..fsutil import atomic_write_text

MARKER = ".miragen-demo"
SIM_STATE = "sim-state.json"
SIM_LOG = "sim.log"
CONFIG_NAME = "miragen.toml"
SUMMARY_NAME = "demo-summary.json"
# Everything the demo creates in DIR; a rerun removes these (and only these) first.
OWNED = (
    MARKER,
    CONFIG_NAME,
    SIM_STATE,
    SIM_LOG,
    SUMMARY_NAME,
    "inbox",
    "requests",
    "processing",
    "rejected",
    "corpus",
    "models",
    "out",
    "miragen.db",
    "miragen.db-wal",
    "miragen.db-shm",
    "miragen.lock",
    "status.json",
    "live",
)


class DemoError(MiragenError):
    """The demo cannot start (bad folder, bad budget)."""


def prepare_folder(folder: Path) -> bool:
    """Make ``folder`` ready for a fresh demo; returns True when an earlier demo was cleaned.

    Only the demo's own entries are removed, and only in a folder that carries the demo's
    marker; a non-empty folder without it is refused (it may be somebody's studio).
    """
    import fcntl  # POSIX only: deferred so that the command line loads everywhere

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: exists and is not a folder; pick another --dir")
    if folder.is_symlink():
        raise DemoError(f"{folder}: is a symbolic link; pass the real folder as --dir")
    cleaned = False
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise DemoError(
                f"{folder}: not empty and not a Miragen demo folder (no {MARKER} in it); "
                "pick an empty or new --dir"
            )
        lock = folder / "miragen.lock"
        if lock.exists():
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DemoError(
                    f"{folder}: a miragen daemon runs on this folder now; stop it first"
                ) from None
            finally:
                os.close(fd)
        for name in OWNED:
            p = folder / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
        cleaned = True
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        folder / MARKER,
        json.dumps({"format": "miragen-demo/1", "created": time.time(), "owned": list(OWNED)})
        + "\n",
    )
    return cleaned


def lock_folder(folder: Path) -> int:
    """Create ``folder`` when missing and hold an exclusive flock on it (freed when the demo
    ends)."""
    import fcntl  # POSIX only: deferred so that the command line loads everywhere

    if folder.is_symlink():
        raise DemoError(f"{folder}: is a symbolic link; pass the real folder as --dir")
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: exists and is not a folder; pick another --dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DemoError(
            f"{folder}: cannot make or open the demo folder: {exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DemoError(f"{folder}: another miragen demo runs in this folder now") from None
    return fd
