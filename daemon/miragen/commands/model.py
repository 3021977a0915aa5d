"""``miragen model export|import``: move a trained model between machines as one file.

The file is a gzipped tar holding the model folder's plain files (model.json, the engine's
weights as CPU tensors, the gate's reference waves). Import checks every member name (no
absolute paths, no ``..``, no links) and that the result loads, then renames it into place.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from .. import config as configmod
from ..engines.base import load_model, read_header
from ..errors import InputError, MiragenError
from ..fsutil import atomic_write_bytes

MAX_IMPORT_BYTES = 2 * 2**30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="export or import a trained model as one portable file")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    msub.required = True
    e = msub.add_parser("export", help="pack a model folder into one .tar.gz file")
    e.add_argument("model", metavar="MODEL", help="model folder")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write (.tar.gz)")
    e.set_defaults(func=_export)
    i = msub.add_parser("import", help="unpack an exported model into the models folder")
    i.add_argument("file", metavar="FILE", help="file written by `miragen model export`")
    i.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="model folder to create (default: <paths.state>/models/<name>)",
    )
    i.add_argument("--config", metavar="FILE", help="configuration file")
    i.add_argument("--force", action="store_true", help="replace an existing model folder")
    i.set_defaults(func=_import)


def export_model(folder: str | Path, out: str | Path) -> Path:
    folder = Path(folder)
    read_header(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                tar.add(f, arcname=f.name, recursive=False)
            elif f.is_dir() and f.name != "checkpoint":
                raise MiragenError(f"{f}: model folders hold plain files only")
    return atomic_write_bytes(out, buf.getvalue())


def import_model(file: str | Path, dest: str | Path, force: bool = False) -> Path:
    file, dest = Path(file), Path(dest)
    try:
        if file.stat().st_size > MAX_IMPORT_BYTES:
            raise InputError(file, f"larger than {MAX_IMPORT_BYTES // 2**20} MB")
        tar = tarfile.open(file, mode="r:*")
    except FileNotFoundError:
        raise InputError(file, "file not found") from None
    except tarfile.TarError:
        raise InputError(file, "not an exported model (not a tar archive)") from None
    except OSError as exc:
        raise InputError(file, f"cannot read ({exc.strerror or exc})") from None
    if dest.exists() and not force:
        raise MiragenError(f"{dest}: already exists (use --force to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tar:
            members = tar.getmembers()
            if not members:
                raise InputError(file, "empty archive")
            for m in members:
                name = m.name
                if (
                    not m.isfile()
                    or "/" in name
                    or "\\" in name
                    or name in ("", ".", "..")
                    or name.startswith(".")
                ):
                    raise InputError(
                        file, f"unexpected member {name!r} (only plain files at the top level)"
                    )
                src = tar.extractfile(m)
                (tmp / name).write_bytes(src.read())
        load_model(tmp)  # refuse what does not load
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(file, f"unreadable archive ({exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _export(args: argparse.Namespace) -> int:
    path = export_model(args.model, args.output)
    print(path)
    return 0


def _import(args: argparse.Namespace) -> int:
    file = Path(args.file)
    if args.output:
        dest = Path(args.output)
    else:
        cfg = configmod.load(args.config)
        name = file.name
        for suffix in (".tar.gz", ".tgz", ".tar"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        dest = Path(cfg["paths"]["state"]) / "models" / (name or "model")
    path = import_model(file, dest, force=args.force)
    print(path)
    print(f"imported {file} → {path}", file=sys.stderr)
    return 0
