"""Mixed-bank benchmark: several banks poured into one unsorted folder, sorted by the daemon's
k-means, each class it finds trained and judged as the quality bench does.

    .venv/bin/python bench/mixed_banks.py --folder ../shared/data/akwf \
        --banks AKWF_bw_saw,AKWF_fmsynth,... --seconds 300 --out bench-results/mixed.jsonl

What a musician does who drops a few hundred single cycles into the top of ``inbox/``:

1. every file of the named banks is copied into one folder (``WORK/pool``), names prefixed with
   their bank so that the truth is known, and nothing else;
2. the daemon's own sorting (:func:`miragen.service.classing.cluster_pool`, the code the daemon's
   ``sort`` task runs, with the embedded default configuration) assigns each sound a class
   ``auto-N``; how well that matches the banks is the adjusted Rand index (1: the banks exactly,
   0: chance) and, per class, the share of its largest bank (purity);
3. the classes go into ``WORK/classes/auto-N/`` and ``bench/quality.py --folder`` trains and
   judges each of them (80 / 20 split, ``--seconds`` each, two at a time, one core each), one
   JSON line per class in ``--out``.

With ``--draws`` instead of ``--banks`` nothing is sorted: each ``NAME:N:SEED`` draws N cycles at
random (seeded) from every bank of ``--folder`` together into one class ``NAME``, trained as one
bank: a musician's folder of mixed cycles dropped into one class folder (the issue's bank C, "160
mixed cycles, one folder"). Banks with more files are drawn from more often, as in such a folder.

    .venv/bin/python bench/mixed_banks.py --folder ../shared/data/akwf \
        --draws mix160a:160:1,mix160b:160:2,mix300:300:3,mix60:60:4 --seconds 300 \
        --out bench-results/mixone.jsonl

``--sort-max-class N`` sorts as the daemon does with ``daemon.sort_max_class = N`` (0: the
silhouette's classes, never split again; the figures before stop 43).

The last line printed (and ``OUT.summary.json``) is the summary: the sorting's figures and the
quality bench's summary of the classes. Rerunning with the same ``--out`` resumes the classes not
yet judged (the sorting is deterministic: seed 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from miragen import config as configmod
from miragen.corpus.dataset import list_audio_files
from miragen.service.classing import cluster_pool
from sklearn.metrics import adjusted_rand_score

HERE = Path(__file__).resolve().parent


def pour(folder: Path, banks: list[str], work: Path) -> dict[str, str]:
    """Copy the banks' files into ``work/pool``; {relative path: bank}."""
    pool = work / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    truth = {}
    for bank in banks:
        files = list_audio_files(folder / bank)
        if not files:
            raise SystemExit(f"{folder / bank}: no sounds")
        for f in files:
            dst = pool / f"{bank}__{f.name}"
            shutil.copyfile(f, dst)
            truth[str(dst.relative_to(work))] = bank
    return truth


def sort_pool(work: Path, truth: dict[str, str], max_class: int | None = None) -> dict:
    """The daemon's sorting of the pool (``max_class``: daemon.sort_max_class, None: the
    default); the classes written as folders of links."""
    cfg = configmod.load(None)
    if max_class is not None:
        cfg["daemon"]["sort_max_class"] = max_class
    pool = [[hashlib.sha256(p.encode()).hexdigest(), p] for p in sorted(truth)]
    res = cluster_pool(work, cfg, pool, [])
    by_sha = {sha: path for sha, path in pool}
    classes = work / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    labels, banks = [], []
    members: dict[str, list[str]] = {}
    for sha, cls in sorted(res["assign"].items()):
        path = by_sha[sha]
        (classes / cls).mkdir(parents=True, exist_ok=True)
        (classes / cls / Path(path).name).symlink_to((work / path).resolve())
        labels.append(cls)
        banks.append(truth[path])
        members.setdefault(cls, []).append(truth[path])
    purity = {
        c: {
            "sounds": len(m),
            "largest_bank": Counter(m).most_common(1)[0][0],
            "purity": round(Counter(m).most_common(1)[0][1] / len(m), 3),
        }
        for c, m in sorted(members.items())
    }
    return {
        "sounds": len(truth),
        "sorted": len(labels),
        "k": res["k"],
        "silhouette": res["silhouette"],
        "adjusted_rand": round(float(adjusted_rand_score(banks, labels)), 3),
        "classes": purity,
    }


def draw_classes(folder: Path, specs: list[str], work: Path) -> dict:
    """``NAME:N:SEED`` each: N sounds drawn at random (seeded) from every bank of ``folder``
    together, linked into ``work/classes/NAME`` (names prefixed with their bank); no sorting."""
    everything = [
        (bank.name, f)
        for bank in sorted(p for p in folder.iterdir() if p.is_dir())
        for f in list_audio_files(bank)
    ]
    classes = work / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    drawn = {}
    for spec in specs:
        name, n, seed = spec.split(":")
        picked = random.Random(int(seed)).sample(everything, int(n))
        (classes / name).mkdir(parents=True)
        for bank, f in picked:
            (classes / name / f"{bank}__{f.name}").symlink_to(f.resolve())
        drawn[name] = {"sounds": int(n), "seed": int(seed), "banks": len({b for b, _ in picked})}
    return {"pool": len(everything), "classes": drawn}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--folder", required=True, help="a folder of banks (one subfolder each)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--banks", help="comma-separated bank names to mix and sort")
    which.add_argument(
        "--draws", help="NAME:N:SEED,...: N sounds drawn from all banks into one class, unsorted"
    )
    p.add_argument("--seconds", type=float, default=300.0, help="training seconds per class")
    p.add_argument("--out", required=True, help="results file (JSON lines, one per class)")
    p.add_argument("--work", help="work folder (default: OUT without its suffix, + '.work')")
    p.add_argument("--jobs", type=int, default=2, help="classes trained at a time")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--sort-max-class",
        type=int,
        metavar="N",
        help="the sorting's daemon.sort_max_class (default: the configuration's; 0: never split)",
    )
    p.add_argument(
        "--user-path",
        action="store_true",
        help="judge each class the musician's way too (bench/quality.py --user-path)",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_suffix(".work")
    if args.draws:
        banks = [s.strip() for s in args.draws.split(",") if s.strip()]
        sorting = {"unsorted": draw_classes(Path(args.folder), banks, work)}
    else:
        banks = [b.strip() for b in args.banks.split(",") if b.strip()]
        sorting = sort_pool(work, pour(Path(args.folder), banks, work), args.sort_max_class)
    print(json.dumps({"sorting": sorting}), flush=True)
    cmd = [
        sys.executable, str(HERE / "quality.py"), "--folder", str(work / "classes"),
        "--seconds", str(args.seconds), "--out", str(out), "--jobs", str(args.jobs),
    ]  # fmt: skip
    for s in args.sets:
        cmd += ["--set", s]
    if args.user_path:
        cmd.append("--user-path")
    subprocess.run(cmd, check=True)
    quality = json.loads(out.with_suffix(".summary.json").read_text())
    summary = {"banks": banks, "seconds": args.seconds, "sorting": sorting, "quality": quality}
    out.with_suffix(".mixed.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
