"""A generation's committed result: ``out/<name>/`` with its manifest ``generate.json``.

The child (:mod:`.tasks`) writes a request's candidates into ``out/.<name>.part/``, then the
manifest, then renames the folder to ``out/<name>/``: a result with a manifest is whole. The
daemon (:mod:`.handlers`) reads the manifest before it starts a generation, so a generation
committed just before a kill is not made again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text, fsync_dir

MANIFEST = "generate.json"


def part_dir(out_dir: Path) -> Path:
    """Where a generation for ``out_dir`` is written before it is committed."""
    return out_dir.with_name(f".{out_dir.name}.part")


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The committed result of a generation (None: not generated, or cut by a kill)."""
    try:
        return json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def commit(part: Path, out_dir: Path, manifest: dict[str, Any]) -> None:
    """Make the files in ``part`` the result in ``out_dir``, with ``manifest``, in one step."""
    text = json.dumps(manifest, indent=2) + "\n"
    part.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():  # a folder made by something else first (an older daemon): file by file
        for f in sorted(part.iterdir()):
            os.replace(f, out_dir / f.name)
        fsync_dir(out_dir)
        atomic_write_text(out_dir / MANIFEST, text)
        shutil.rmtree(part)
    else:
        atomic_write_text(part / MANIFEST, text)
        os.replace(part, out_dir)
        fsync_dir(out_dir.parent)
