"""``miragen cluster``: group unlabeled sounds into classes on the judge's features."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import config as configmod
from ..errors import MiragenError
from ..fsutil import atomic_copy
from ..judge.cluster import cluster, parse_k
from ..judge.sets import guess_kind, read_folder, to_kind
from ._args import seed, source_rate

_MAX_CLASS = configmod.SCHEMA["daemon"]["sort_max_class"]  # one default and range for both


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cluster",
        help="group unlabeled sounds into classes (k-means on the judge's features)",
        description="Group the sounds of DIR into classes. With -o the files are COPIED into class "
        "folders OUT/class01, OUT/class02, … (largest class first); without it the labels are "
        "printed. Nothing in DIR is moved or deleted.",
    )
    p.add_argument("dir", metavar="DIR", help="folder of sounds")
    p.add_argument(
        "--k",
        default="auto",
        metavar="auto|N",
        help="number of classes, or 'auto' (best silhouette, 2..12, large classes split again)",
    )
    p.add_argument(
        "--max-class",
        type=int,
        default=None,
        metavar="N",
        help=f"with --k auto: split a class of more than N sounds again on its own sounds "
        f"(default {_MAX_CLASS.default}, as the daemon's sorting, daemon.sort_max_class; "
        "0: never)",
    )
    p.add_argument(
        "-o",
        "--out",
        metavar="OUT",
        help="write class folders of copies here (must be empty or new)",
    )
    p.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "cycle", "oneshot"),
        help="auto: cycles when every file has ≤ 2048 samples",
    )
    p.add_argument("--recursive", action="store_true", help="include subfolders of DIR")
    p.add_argument(
        "--raw-rate",
        type=source_rate(),
        default=29411,
        metavar="HZ",
        help="rate of headerless .pcm files, 1,000..1,000,000",
    )
    p.add_argument("--seed", type=seed(), default=0, help="seed of k-means (0..4,294,967,295)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cluster)


def class_name(label: int) -> str:
    return f"class{label + 1:02d}"


def _cluster(args: argparse.Namespace) -> int:
    k = parse_k(args.k)
    if args.max_class is not None and k != "auto":
        raise MiragenError("--max-class applies to --k auto only (a number of classes is kept)")
    max_class = _MAX_CLASS.default if args.max_class is None else args.max_class
    if (reason := _MAX_CLASS.check(max_class)) is not None:
        raise MiragenError(
            f"--max-class must be 0 (never split) or a size daemon.sort_max_class takes: {reason}"
        )
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MiragenError(
            f"{out}: output folder exists and is not empty "
            "(class folders are only written into an empty or new folder)"
        )
    items = read_folder(args.dir, raw_rate=args.raw_rate, recursive=args.recursive)
    kind = guess_kind([len(x) for _, x, _ in items]) if args.kind == "auto" else args.kind
    waves = [to_kind(x, r, kind) for _, x, r in items]
    res = cluster(waves, k, kind, seed=args.seed, max_class=max_class)
    src = Path(args.dir)
    written: list[str] = []
    if out is not None:
        used: dict[Path, int] = {}
        for (path, _, _), label in zip(items, res.labels):
            folder = out / class_name(int(label))
            dst = folder / path.name
            if dst in used:  # same name from two subfolders (--recursive)
                used[dst] += 1
                dst = folder / f"{path.stem}_{used[dst]}{path.suffix}"
            used.setdefault(dst, 0)
            atomic_copy(path, dst)
            written.append(str(dst))
    if args.json:
        doc = {
            "kind": kind,
            "k": res.k,
            "silhouette": res.silhouette,
            "scores": {str(kk): v for kk, v in res.scores.items()},
            "files": [
                {"path": str(p), "class": class_name(int(label))}
                for (p, _, _), label in zip(items, res.labels)
            ],
            "out": str(out) if out else None,
        }
        print(json.dumps(doc, indent=2))
    else:
        for (p, _, _), label in zip(items, res.labels):
            rel = p.relative_to(src) if p.is_relative_to(src) else p
            print(f"{class_name(int(label))}\t{rel}")
        sil = "-" if res.silhouette is None else f"{res.silhouette:.3f}"
        sizes = ", ".join(f"{class_name(c)}: {int((res.labels == c).sum())}" for c in range(res.k))
        print(f"{len(items)} {kind} sounds → {res.k} classes (silhouette {sil}; {sizes})")
        if out is not None:
            print(f"copied {len(written)} files into {out}")
    return 0
