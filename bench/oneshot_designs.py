"""One-shot generator designs against each other at equal CPU time (issue 17).

    .venv/bin/python bench/oneshot_designs.py [--seconds 300] [--designs synth,spec,wave]
        [--sets sonic-pi,avl-drumkits] [--out bench/results/oneshot-designs.jsonl]
        [--set KEY=VALUE ...]

Every design (``oneshot_design`` of the wavegan engine) is trained on every one-shot set of
``../shared/data/oneshots`` by ``bench/quality.py --mode oneshot --threads 1 --trace`` in a child
process, two runs at a time (one core each), for the same seconds; the saved model is judged
against the held-out 20 % (velocity layers of one piece stay on one side), every snapshot is
traced. One JSON line per run is appended to ``--out`` as it ends (rerunning skips the runs
already there); the last line printed is a table: per run the verdict, the failed rules, the
steps, the steps per second and the seconds to the first snapshot passing every check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import quality  # bench/quality.py: its child-process runner

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("MIRAGEN_SHARED_DATA", HERE.parents[1] / "shared" / "data"))


def run(data: Path, design: str, args) -> dict:
    """One design on one set: ``quality.run_bank`` (a child process on one core)."""
    job = argparse.Namespace(
        mode="oneshot",
        seconds=args.seconds,
        samples=128,
        eval_every=args.eval_every,
        seed=0,
        sets=[f"oneshot_design={design}", *args.sets_extra],
    )
    row = quality.run_bank(data, job)
    row.update(set=data.name, design=design)
    if args.sets_extra:
        row["options"] = list(args.sets_extra)
    return row


def brief(row: dict) -> dict:
    if "error" in row:
        return {"set": row["set"], "design": row["design"], "error": row["error"][-200:]}
    cls = next(iter(row.get("classes", {}).values()), {})
    meta = row.get("meta", {})
    steps = meta.get("steps")
    train_s = meta.get("train_seconds") or row.get("seconds")
    return {
        "set": row["set"],
        "design": row["design"],
        "verdict": cls.get("verdict"),
        "failed": cls.get("failed"),
        "steps": steps,
        "steps_per_s": round(steps / train_s, 2) if steps and train_s else None,
        "first_pass_s": row.get("first_pass_s"),
        "kept_step": meta.get("best_step"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--designs", default="synth,spec,wave")
    p.add_argument("--sets", default="sonic-pi,avl-drumkits")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=HERE / "results" / "oneshot-designs.jsonl")
    p.add_argument(
        "--set",
        dest="sets_extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an engine option for every run (as `miragen train --set`)",
    )
    args = p.parse_args(argv)
    runs = [
        (SHARED / "oneshots" / s, d)
        for d in args.designs.split(",")
        for s in args.sets.split(",")
        if s and d
    ]
    done: dict[tuple[str, str], dict] = {}
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            try:
                row = json.loads(line)
                done[(row["set"], row["design"])] = row
            except (ValueError, KeyError):
                continue
    todo = [(s, d) for s, d in runs if (s.name, d) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as fh, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(lambda sd: run(sd[0], sd[1], args), todo):
            fh.write(json.dumps(row, sort_keys=True, default=float) + "\n")
            fh.flush()
            done[(row["set"], row["design"])] = row
            print(json.dumps(brief(row)), file=sys.stderr, flush=True)
    table = [brief(done[(s.name, d)]) for s, d in runs if (s.name, d) in done]
    print(json.dumps({"seconds": args.seconds, "runs": table}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
