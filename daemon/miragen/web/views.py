"""What the studio page shows, read from the daemon's state folder (never written here).

Every file the page may fetch is named by identifiers, never by a path: a class and a corpus
file name, a request and one of the files its result record lists. Each identifier must be a
plain name (:data:`NAME`), the file must be listed where the daemon put it, and it is opened
only when it is a regular file (no link) inside the state folder.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import MiragenError
from ..service.state import POOL, StateDir, class_mode
from ..service.triggers import read_triggers_file

NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,119}$")
SOUND_SUFFIXES = (".pcm", ".wav", ".aif", ".aiff", ".flac")
MEDIA = {
    ".pcm": "application/octet-stream",
    ".wav": "audio/wav",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".flac": "audio/flac",
    ".png": "image/png",
    ".img": "application/octet-stream",
}
MAX_RECORDS = 200  # requests shown, newest first
MAX_SOUNDS_LISTED = 400  # corpus files listed per class
CHOICES_FILE = "web/choices.json"


class NotFound(MiragenError):
    """An identifier that names nothing the page may show (the page answers 404)."""


def plain(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise NotFound(f"{what}: not a plain name")
    return name


def _regular(path: Path, root: Path, what: str) -> Path:
    """``path`` when it is a regular file (not a link) inside ``root``."""
    try:
        st = os.lstat(path)
    except OSError:
        raise NotFound(f"{what}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(f"{what}: not a regular file")
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(root))):
        raise NotFound(f"{what}: outside the state folder")
    return path


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


# ---------------------------------------------------------------------------- sounds
def class_sounds(state: StateDir, cls: str) -> list[dict[str, Any]]:
    """The corpus files of a class that the page can play (name and size), newest first."""
    folder = state.corpus / plain(cls, "class")
    try:
        entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    entries = [e for e in entries if e.name.lower().endswith(SOUND_SUFFIXES)]
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    return [
        {"name": e.name, "bytes": e.stat(follow_symlinks=False).st_size}
        for e in entries[:MAX_SOUNDS_LISTED]
    ]


def sound_file(state: StateDir, cls: str, name: str) -> Path:
    plain(cls, "class")
    if not plain(name, "sound").lower().endswith(SOUND_SUFFIXES):
        raise NotFound("sound: not a sound file")
    return _regular(state.corpus / cls / name, state.root, "sound")


# ---------------------------------------------------------------------------- requests
def records(state: StateDir, limit: int = MAX_RECORDS) -> list[dict[str, Any]]:
    """The requests' result records, newest first."""
    try:
        paths = [
            p
            for p in state.records.glob("*.json")
            if not p.is_symlink() and not p.name.endswith(".request.json")  # the request's copy
        ]
    except OSError:
        return []
    paths.sort(key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    out = []
    for p in paths[:limit]:
        rec = read_json(p)
        if isinstance(rec, dict) and isinstance(rec.get("name"), str):
            out.append(rec)
    return out


def record(state: StateDir, request: str) -> dict[str, Any]:
    rec = read_json(state.record_path(plain(request, "request")))
    if not isinstance(rec, dict):
        raise NotFound("request: no such request")
    return rec


def request_file(state: StateDir, request: str, name: str) -> Path:
    """A file that request ``request``'s record lists (a candidate, its preview, its picture,
    its disk image)."""
    rec = record(state, request)
    rel = f"out/{request}/{plain(name, 'file')}"
    listed = set(rec.get("files", [])) | set(rec.get("candidates", []))
    disk = (rec.get("delivery") or {}).get("disk") or {}
    if isinstance(disk, dict) and disk.get("image"):
        listed.add(disk["image"])
    if rel not in listed:
        raise NotFound("file: not a file of this request")
    return _regular(state.root / rel, state.root, "file")


def choices(state: StateDir) -> dict[str, str]:
    data = read_json(state.root / CHOICES_FILE, {})
    return (
        {k: v for k, v in data.items() if v in ("keep", "discard")}
        if isinstance(data, dict)
        else {}
    )


def candidates(state: StateDir, cfg: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The requests that produced candidates, newest first, with each candidate's files, the
    musician's choice (keep / discard), whether it was delivered, and whether its class holds
    single cycles (``cycle``: the player loops those at the key played)."""
    chosen = choices(state)
    out = []
    for rec in records(state):
        name = rec["name"]
        pcms = [p for p in rec.get("candidates", []) if isinstance(p, str)]
        if not pcms:
            continue
        files = {Path(f).name for f in rec.get("files", []) if isinstance(f, str)}
        figures = _gate_figures(state, name)
        items = []
        for rel in pcms:
            pcm = Path(rel).name
            stem = pcm[: -len(".pcm")]
            cid = f"{name}/{pcm}"
            items.append(
                {
                    "id": cid,
                    "request": name,
                    "file": pcm,
                    "wav": f"{stem}.wav" if f"{stem}.wav" in files else None,
                    "png": f"{stem}.png" if f"{stem}.png" in files else None,
                    "bytes": _size(state.root / rel),
                    "choice": chosen.get(cid, ""),
                    "delivered": rec.get("delivered") == rel,
                    "figures": figures.get(pcm, {}),
                }
            )
        out.append(
            {
                "request": name,
                "class": rec.get("class", ""),
                "cycle": cfg is not None and class_mode(cfg, str(rec.get("class", ""))) == "cycle",
                "model": rec.get("model", ""),
                "gate": rec.get("gate", ""),
                "state": rec.get("state", ""),
                "updated": rec.get("updated", ""),
                "candidates": items,
            }
        )
    return out


def _gate_figures(state: StateDir, request: str) -> dict[str, dict[str, Any]]:
    data = read_json(state.out / request / "generate.json", {})
    figs = data.get("figures", {}) if isinstance(data, dict) else {}
    return {Path(k).name: v for k, v in figs.items() if isinstance(v, dict)}


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


# ---------------------------------------------------------------------------- live files
def training(state: StateDir) -> dict[str, Any]:
    """{class: what the daemon last wrote of its training (steps, snapshots, verdict)}."""
    out: dict[str, Any] = {}
    folder = state.root / "live"
    try:
        paths = sorted(folder.glob("training-*.json"))
    except OSError:
        return out
    for p in paths:
        data = read_json(p)
        if isinstance(data, dict) and isinstance(data.get("class"), str):
            out[data["class"]] = data
    return out


def delivery(state: StateDir) -> dict[str, Any] | None:
    data = read_json(state.root / "live" / "delivery.json")
    return data if isinstance(data, dict) else None


def learned(state: StateDir) -> dict[str, Any] | None:
    data = read_json(state.root / "live" / "learned.json")
    return data if isinstance(data, dict) else None


def triggers(state: StateDir, cfg: dict[str, Any]) -> dict[str, Any]:
    """The learned triggers (``triggers.json``, editable here) and the configuration's
    (``[[trigger]]``, read-only), in the order the daemon matches them."""
    return {
        "learned": learned_triggers(state),
        "configured": list(cfg.get("trigger", [])),
    }


def learned_triggers(state: StateDir) -> list[dict[str, Any]]:
    """The learned trigger tables as the daemon reads them (a file with a problem raises
    ConfigError naming it and the reason: the page shows it)."""
    return read_triggers_file(state.triggers_file)


def classes(
    state: StateDir, status: dict[str, Any], cfg: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The corpus's classes (the unsorted pool last) with their model's verdict and whether
    they hold single cycles (``cycle``)."""
    out = []
    for cls, c in status.get("classes", {}).items():
        m = c.get("model") or {}
        out.append(
            {
                "class": cls,
                "pool": cls == POOL,
                "cycle": cfg is not None and class_mode(cfg, cls) == "cycle",
                "sounds": c.get("sounds", 0),
                "models": c.get("models", 0),
                "model": m.get("path"),
                "verdict": m.get("verdict") if m else None,
                "metrics": m.get("metrics", {}) if m else {},
                "reasons": m.get("reasons", []) if m else [],
            }
        )
    out.sort(key=lambda c: (c["pool"], c["class"]))
    return out
