"""The state folder's layout and the rules for names that come from outside.

```
<paths.state>/
  inbox/            drop training sounds here (a subfolder is a class)
  requests/         drop request files here (TOML or JSON)
  processing/       inputs claimed by atomic rename, waiting for their job
  rejected/         bad inputs, each with NAME.reason.txt
  corpus/<class>/   accepted material, content-addressed (<sha256 prefix>.<ext>)
  corpus/unsorted/  the unsorted pool (top of inbox/), sorted into corpus/auto-N/ (see classing.py)
  models/<class>/   trained models (v0001, v0002, …) and the engine's checkpoint
  out/<request>/    generated candidates (.pcm/.wav/.png), generate.json and disk images
  out/requests/     one result record per request (<name>.json)
  miragen.db        the job queue (SQLite, WAL)
  status.json       the running daemon's health (transport, worker threads), for `miragen status`
  triggers.json     learned MIDI triggers (written by the web process; read by the daemon)
  live/             what the daemon does now, for the web process (docs/live-files.md):
    delivery.json        the delivery under way (or the last one)
    training-<class>.json  a class's training run: steps, snapshots, verdict
    learn.json           the web asks: learn the next MIDI message (id, until)
    learned.json         the daemon's answer: the message it learned
```

Nothing in it is ever deleted by the daemon.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_write_text

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DEFAULT_CLASS = "default"
POOL = "unsorted"  # the class of sounds dropped without one (sorted by k-means: classing.py)
# the subject of the one training job of a kit (``train.kit``): no class name can be this
KIT = "@kit"
AUTO_HITS_PREFIX = "auto-hits-"  # the pool's one-shots when train.mode says cycles (classing.py)
AUTO_HITS = re.compile(rf"^{AUTO_HITS_PREFIX}(\d+)$")


def class_mode(cfg: dict, cls: str) -> str:
    """What class ``cls`` holds: ``train.mode``, or "oneshot" for a class that
    ``train.oneshot_classes`` names, for the kit (made of one-shots) and for the ``auto-hits-N``
    classes into which the unsorted pool's one-shots are sorted (``.classing``)."""
    t = cfg["train"]
    if t["mode"] == "oneshot" or cls == KIT or AUTO_HITS.match(cls):
        return "oneshot"
    patterns = [p.strip() for p in t.get("oneshot_classes", "").split(",") if p.strip()]
    return "oneshot" if any(fnmatch.fnmatchcase(cls, p) for p in patterns) else "cycle"


def train_subject(cfg: dict, cls: str) -> str:
    """What new material of class ``cls`` retrains: the class, or the kit (``train.kit``: the
    one-shot classes together)."""
    kit = cfg["train"]["kit"] and cls != POOL and class_mode(cfg, cls) == "oneshot"
    return KIT if kit else cls


REQUEST_CLASS = "_requests"  # internal marker for claimed request files


def safe_name(name: str, *, max_len: int = 80, fallback: str = "file") -> str:
    """A file name that is safe anywhere: [A-Za-z0-9._-], no leading dot, bounded length.

    Control characters, path separators, ``..`` and bytes that are not UTF-8 (surrogate
    escapes) all become ``_``.
    """
    s = _UNSAFE.sub("_", name).lstrip(".")
    s = s.replace("..", "_")
    if len(s) > max_len:
        stem, dot, ext = s.rpartition(".")
        if dot and 0 < len(ext) <= 8:
            s = stem[: max_len - len(ext) - 1] + "." + ext
        else:
            s = s[:max_len]
    return s or fallback


def class_name(name: str) -> str:
    """A class name from a folder name (same rules, no dots, ≤ 40 characters)."""
    return safe_name(name.replace(".", "_"), max_len=40, fallback=DEFAULT_CLASS)


def printable(name: str) -> str:
    """How an untrusted name is shown in logs and reason files (escapes everything odd)."""
    return ascii(name)[1:-1]


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def requests(self) -> Path:
        return self.root / "requests"

    @property
    def processing(self) -> Path:
        return self.root / "processing"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def records(self) -> Path:
        return self.root / "out" / "requests"

    @property
    def db(self) -> Path:
        return self.root / "miragen.db"

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    @property
    def triggers_file(self) -> Path:
        """Learned MIDI triggers (written by the web process)."""
        return self.root / "triggers.json"

    @property
    def live(self) -> Path:
        """Ephemeral files the daemon and the web process exchange (docs/live-files.md)."""
        return self.root / "live"

    @property
    def live_delivery(self) -> Path:
        return self.live / "delivery.json"

    @property
    def learn_file(self) -> Path:
        return self.live / "learn.json"

    @property
    def learned_file(self) -> Path:
        return self.live / "learned.json"

    def live_training(self, cls: str) -> Path:
        return self.live / f"training-{safe_name(cls, max_len=40, fallback=DEFAULT_CLASS)}.json"

    def create(self) -> None:
        for p in (
            self.inbox,
            self.requests,
            self.processing,
            self.rejected,
            self.corpus,
            self.models,
            self.out,
            self.records,
            self.live,
        ):
            p.mkdir(parents=True, exist_ok=True)

    def record_path(self, request: str) -> Path:
        return self.records / f"{safe_name(request, fallback='request')}.json"

    def unique_in(self, folder: Path, name: str) -> Path:
        """``folder/name``, or ``folder/stem-2.ext`` … when taken (with a reason file beside it)."""
        p = folder / name
        stem, ext = os.path.splitext(name)
        n = 1
        while p.exists() or p.is_symlink() or Path(str(p) + ".reason.txt").exists():
            n += 1
            p = folder / f"{stem}-{n}{ext}"
        return p


def reject_file(
    state: StateDir, src: Path, original: str, reason: str, dest: Path | None = None
) -> Path:
    """Move ``src`` into ``rejected/`` with ``NAME.reason.txt``; idempotent when ``dest`` is given.

    The reason file is written first; the rename is the last, atomic, step.
    """
    if dest is None:
        dest = state.unique_in(state.rejected, safe_name(Path(original).name))
    text = (
        f"file: {printable(original)}\n"
        f"reason: {reason}\n"
        f"rejected: {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
    )
    atomic_write_text(str(dest) + ".reason.txt", text)
    if src.exists() or src.is_symlink():
        os.replace(src, dest)
    return dest
