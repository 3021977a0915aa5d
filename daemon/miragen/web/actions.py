"""What the studio page changes, always through the daemon's own doors.

- an upload lands in ``inbox/<class>/`` exactly as a file copied into the drop folder would
  (written under a hidden ``.part`` name, renamed when whole): the daemon's ingest checks it,
  files it in the corpus or moves it to ``rejected/`` with the reason;
- a request (or "send this candidate") becomes a request file in ``requests/``, the same
  schema as a file dropped there (:mod:`miragen.service.requests`);
- MIDI learn writes ``live/learn.json``; the daemon answers in ``live/learned.json``;
- learned triggers are ``triggers.json``, which the daemon reloads without a restart;
- keep / discard marks are the page's own, in ``web/choices.json``.

Every write is atomic: nobody sees half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError, MiragenError
from ..fsutil import atomic_write_text, fsync_dir
from ..service.requests import normalise, unique_name
from ..service.state import StateDir, class_name, safe_name
from ..service.triggers import write_triggers_file
from .views import CHOICES_FILE, choices, learned_triggers, plain

UPLOAD_SUFFIXES = (".wav", ".wave", ".aif", ".aiff", ".flac", ".pcm", ".raw", ".img", ".edm")
LEARN_S = 30.0  # how long "learn" waits for a MIDI message
MAX_LEARNED = 128


class ActionError(MiragenError):
    """A request the page sent that cannot be carried out (the page shows the reason)."""


# ---------------------------------------------------------------------------- uploads
def upload_problem(filename: str, size: int | None, max_bytes: int) -> str | None:
    """Why an uploaded file is refused before it is written (None: accepted)."""
    shown = ascii(filename)[1:-1][:80]
    if not filename.lower().endswith(UPLOAD_SUFFIXES):
        return f"{shown}: not a sound file Miragen reads ({', '.join(UPLOAD_SUFFIXES)})"
    if size is not None and size > max_bytes:
        return f"{shown}: larger than {max_bytes // 2**20} MB (daemon.max_file_mb)"
    return None


def save_upload(state: StateDir, cls: str, filename: str, src: BinaryIO, max_bytes: int) -> str:
    """Copy one uploaded file into ``inbox/<class>/`` (or the top of ``inbox/``, the unsorted
    pool, when ``cls`` is empty); returns the name it was given there."""
    problem = upload_problem(filename, None, max_bytes)
    if problem:
        raise ActionError(problem)
    folder = state.inbox / class_name(cls) if cls else state.inbox
    folder.mkdir(parents=True, exist_ok=True)
    name = safe_name(Path(filename).name, fallback="upload")
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            copied = 0
            while chunk := src.read(1 << 20):
                copied += len(chunk)
                if copied > max_bytes:
                    raise ActionError(
                        f"{ascii(filename)[1:-1][:80]}: larger than {max_bytes // 2**20} MB "
                        "(daemon.max_file_mb)"
                    )
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        dest = state.unique_in(folder, name)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return dest.name


# ---------------------------------------------------------------------------- requests
def submit_request(state: StateDir, data: Any) -> str:
    """Check a request (the request-file schema) and drop it into ``requests/``; returns the
    name its result record will have."""
    req = normalise(data, "request")  # RequestError names every bad key
    wanted = req["name"] or f"web-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    name = unique_name(state, wanted)
    while (state.requests / f"{name}.json").exists():
        name = unique_name(state, f"{name}-{secrets.token_hex(2)}")
    body = {k: v for k, v in req.items() if v != "" or k == "name"} | {"name": name}
    atomic_write_text(state.requests / f"{name}.json", json.dumps(body, indent=2) + "\n")
    return name


# ---------------------------------------------------------------------------- choices
def set_choice(state: StateDir, candidate: str, choice: str) -> dict[str, str]:
    """Mark a candidate ``request/file.pcm`` as kept, discarded or neither (``""``)."""
    if choice not in ("keep", "discard", ""):
        raise ActionError(f"choice: must be 'keep', 'discard' or '' (got {choice!r:.40})")
    request, _, file = candidate.partition("/")
    plain(request, "request")
    plain(file, "candidate")
    current = choices(state)
    if choice:
        current[f"{request}/{file}"] = choice
    else:
        current.pop(f"{request}/{file}", None)
    atomic_write_text(state.root / CHOICES_FILE, json.dumps(current, indent=1, sort_keys=True))
    return current


# ---------------------------------------------------------------------------- MIDI learn
def start_learn(state: StateDir) -> dict[str, Any]:
    learn = {"id": secrets.token_hex(8), "until": time.time() + LEARN_S}
    atomic_write_text(state.root / "live" / "learn.json", json.dumps(learn))
    return learn


def add_trigger(state: StateDir, table: Any) -> list[dict[str, Any]]:
    """Add a trigger table (the ``[[trigger]]`` schema) in front of the learned ones."""
    if not isinstance(table, dict):
        raise ActionError("trigger: must be a table of keys")
    current = learned_triggers(state)
    if len(current) >= MAX_LEARNED:
        raise ActionError(f"{MAX_LEARNED} learned triggers already; delete one first")
    return write_triggers_file(state.triggers_file, [table, *current])  # checked there


def delete_trigger(state: StateDir, index: Any) -> list[dict[str, Any]]:
    current = learned_triggers(state)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(current):
        raise ActionError(f"trigger: no learned trigger number {index!r:.20}")
    del current[index]
    return write_triggers_file(state.triggers_file, current)


def free_bytes(state: StateDir) -> int:
    try:
        return shutil.disk_usage(state.root).free
    except OSError as exc:
        raise InputError(state.root, f"cannot read the free space ({exc})") from None
