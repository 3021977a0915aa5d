"""Requests: "make COUNT new sounds of CLASS and deliver the best to HALF/WAVESAMPLE".

A request comes from a request file dropped in ``requests/`` (TOML or JSON) or from a MIDI
trigger. Request file keys (all optional)::

    name = "bass-01"        # names the result record out/requests/<name>.json (default: file name)
    class = "bass"          # class to generate from (default: the first class with a model)
    count = 4               # candidates to make (1..64)
    half = "lower"          # memory half for SysEx delivery
    wavesample = 1          # wavesample 1..8
    route = "sysex"         # sysex, disk or both (default: deliver.route)
    sound = "lower1"        # sound of the disk image for disk delivery (default: deliver.sound)
    candidate = "bass-01/bass-01-2.pcm"  # deliver this candidate of an earlier request instead
                            # of generating: "<request name>/<file>.pcm", one listed in that
                            # request's record (``candidates``); class and count are then unused

Unknown keys and bad values reject the file (into ``rejected/`` with the reason, and a result
record in state ``failed``). No key names a path: every output lands inside the state folder.

Each request has a result record ``out/requests/<name>.json``: ``state`` (``queued``,
``running``, ``done`` or ``failed``), the request, the produced files (relative to the state
folder), the delivery results and, when failed, the reason.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from ..config import SOUNDS, TRIGGER_REQUEST_KEYS, TRIGGER_SCHEMA, Key, _check_value
from ..errors import MiragenError
from ..fsutil import atomic_write_text
from .state import StateDir, printable, safe_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_REQUEST_BYTES = 64 * 1024
REQUEST_KEYS: dict[str, Key] = {
    "name": Key(str, "", "name of the request and its result record"),
    "class": TRIGGER_SCHEMA["class"],
    "count": TRIGGER_SCHEMA["count"],
    "half": TRIGGER_SCHEMA["half"],
    "wavesample": TRIGGER_SCHEMA["wavesample"],
    "route": TRIGGER_SCHEMA["route"],
    "sound": Key(str, "", "sound of the disk image (empty: deliver.sound)", choices=("",) + SOUNDS),
    "candidate": Key(
        str, "", "deliver this candidate of an earlier request: <request name>/<file>.pcm"
    ),
    "kit": TRIGGER_SCHEMA["kit"],
    "keyboard": TRIGGER_SCHEMA["keyboard"],
    "octaves": TRIGGER_SCHEMA["octaves"],
}


class RequestError(MiragenError):
    """A request file or trigger cannot be turned into a request."""


def normalise(data: Any, source: str) -> dict[str, Any]:
    """Check a request mapping; returns it with every key filled (defaults)."""
    if not isinstance(data, dict):
        raise RequestError(
            f"{source}: a request must be a table of keys (got {type(data).__name__})"
        )
    problems: list[str] = []
    out = {k: v.default for k, v in REQUEST_KEYS.items()}
    for key, value in data.items():
        spec = REQUEST_KEYS.get(str(key))
        if spec is None:
            problems.append(f"{key!s:.40}: unknown key (known: {', '.join(REQUEST_KEYS)})")
            continue
        reason = _check_value(key, spec, value)
        if reason:
            problems.append(reason[:300])
        else:
            out[key] = value
    if out["class"] and safe_name(out["class"], max_len=40) != out["class"]:
        problems.append(
            f"class: {out['class']!r:.60} is not a class name (letters, digits, '_', '-')"
        )
    if out["candidate"]:
        reason = candidate_problem(out["candidate"])
        if reason:
            problems.append(f"candidate: {reason}")
    if out["octaves"] and not out["keyboard"]:
        problems.append("octaves: only with keyboard (a preset name)")
    if out["keyboard"] and out["octaves"] and out["kit"]:
        problems.append("octaves: a kit's keyboard has one sound of each class, not octaves")
    for key in ("keyboard", "candidate"):
        if out[key] and out["route"] == "none":
            problems.append(f"{key}: route none delivers nothing")
    if problems:
        raise RequestError(f"{source}: " + "; ".join(problems))
    return out


def candidate_problem(candidate: str) -> str | None:
    """Why ``candidate`` is not ``"<request name>/<file name>.pcm"`` (two plain names: no
    folder above, no leading dot, no ``..``), or None when it is."""
    parts = candidate.split("/")
    shown = f"{candidate!r:.80}"
    if len(parts) != 2:
        return f"{shown} must be <request name>/<file name>.pcm"
    if any(not part or safe_name(part) != part for part in parts):
        return f"{shown}: each part must be a plain name (letters, digits, '.', '_', '-')"
    if not parts[1].endswith(".pcm"):
        return f"{shown}: the file must be a .pcm candidate"
    return None


def candidate_file(state: StateDir, candidate: str) -> tuple[str, dict[str, Any]]:
    """The candidate file a request names (``candidate``), checked: listed in the earlier
    request's record (``candidates``), a regular file (no link) inside ``out/<request>/``.
    Returns (its path relative to the state folder, the earlier record); raises RequestError
    with the reason."""
    reason = candidate_problem(candidate)
    if reason:
        raise RequestError(f"candidate {reason}")
    request, file = candidate.split("/")
    shown = f"candidate {printable(candidate)}"
    record = read_record(state, request)
    if record is None:
        raise RequestError(f"{shown}: no request named {printable(request)}")
    rel = f"out/{request}/{file}"
    if rel not in [str(c) for c in record.get("candidates") or []]:
        raise RequestError(f"{shown}: no such candidate of request {printable(request)}")
    path = state.out / request / file
    try:
        st = os.lstat(path)
        inside = path.resolve(strict=True) == state.out.resolve(strict=True) / request / file
    except OSError:
        raise RequestError(f"{shown}: the file is gone from out/{printable(request)}/") from None
    if not stat.S_ISREG(st.st_mode) or not inside:
        raise RequestError(f"{shown}: not a regular file inside out/ (links are not followed)")
    return rel, record


def parse_request_file(path: Path, display: str | None = None) -> dict[str, Any]:
    """Read a request file (``.toml`` or ``.json``); raises RequestError with the reason.

    ``display``: the name shown in messages (the name it was dropped under)."""
    shown = printable(display) if display is not None else path.name
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise RequestError(f"{shown}: a request file must be named .toml or .json")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RequestError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(
            f"{shown}: larger than {MAX_REQUEST_BYTES // 1024} KB; a request is a few lines"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        kind = "JSON" if suffix == ".json" else "TOML"
        raise RequestError(f"{shown}: not valid {kind} ({str(exc)[:200]})") from None
    return normalise(data, shown)


def from_trigger(trigger: dict[str, Any]) -> dict[str, Any]:
    """The request a matched ``[[trigger]]`` table asks for."""
    return normalise({k: trigger[k] for k in TRIGGER_REQUEST_KEYS}, "trigger")


def unique_name(state: StateDir, wanted: str) -> str:
    """A request name whose record does not exist yet (``name``, ``name-2``, …)."""
    base = safe_name(wanted, max_len=60, fallback="request")
    name, n = base, 1
    while state.record_path(name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def write_record(sd: StateDir, name: str, /, **fields: Any) -> dict[str, Any]:
    """Create or update the result record of request ``name`` (atomic)."""
    path = sd.record_path(name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        record = {
            "name": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": [],
            "delivery": {},
            "reason": "",
        }
    record.update(fields)
    record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return record


def read_record(state: StateDir, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(state.record_path(name).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
