"""Replay ``select=cv`` with ``copy_guard=cv`` and an allowance on ``cv_novelty``, on the
snapshot traces of whole-folder runs (``bench/quality.py --folder … --set copy_guard=cv``).

    .venv/bin/python bench/copy_guard_replay.py bench/results/quality-akwf-pick-guardcv.jsonl \
        [--allowances 0,0.02,0.04,0.06,0.08,0.1] [--se 0,1,2]

Each snapshot's trace holds its verdict against the bank's held-out 20 % (draws of another seed
than the saved model's) and the trainer's cross-validated figures. For each allowance ``a`` (an
absolute amount) and each multiple ``k`` of the figure's own standard error, the copy guard
reads ``cv_novelty ≥ 0.8 − a − k·se`` and ``cv_copy ≤ 0.05`` (the judge's novelty limit and copy
margin), and the snapshot kept is the one ``select=cv`` keeps under that guard: no copy
failure first, then the highest least cross-validated figure, then the latest. Prints one JSON
object: for each (a, k), the banks whose kept snapshot fails no check against the held-out 20 %,
and which banks fail. Choose on one half of the banks, confirm on the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from miragen.engines.wavegan.selection import CV_FIGURES
from miragen.judge.metrics import Thresholds

NOVELTY_MIN, COPY_MARGIN = Thresholds().novelty_min, Thresholds().copy_margin


def kept(snaps: list[dict], allow: float, k_se: float) -> dict:
    def key(t: dict) -> tuple:
        tr = t.get("trainer", {})
        if "cv_novelty" in tr:
            limit = NOVELTY_MIN - allow - k_se * tr.get("cv_novelty_se", 0.0)
            ok = tr["cv_novelty"] >= limit and tr.get("cv_copy", 0.0) <= COPY_MARGIN
            ok = ok and not tr.get("silent", 0.0)
        else:  # too few training sounds to split: the trainer's own copy check
            ok = bool(tr.get("copy_ok", 1.0))
        least = min(tr.get(f, float("-inf")) for f in CV_FIGURES)
        return (ok, least, t["step"])

    return max(snaps, key=key)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--allowances", default="0,0.02,0.04,0.06,0.08,0.1")
    ap.add_argument("--se", default="0,1,2", help="multiples of cv_novelty's standard error")
    args = ap.parse_args()
    rows = [json.loads(line) for f in args.files for line in f.read_text().splitlines() if line]
    traced = [r for r in rows if r.get("snapshots") and r.get("verdict") != "unjudged"]
    out: dict = {"files": [str(f) for f in args.files], "banks": len(traced), "rules": []}
    for allow in (float(x) for x in args.allowances.split(",")):
        for k in (float(x) for x in args.se.split(",")):
            picks = {r["bank"]: kept(r["snapshots"], allow, k) for r in traced}
            failing = sorted(b for b, t in picks.items() if t["verdict"] == "fail")
            out["rules"].append(
                {
                    "allowance": allow,
                    "se_multiple": k,
                    "not_failing": f"{len(traced) - len(failing)}/{len(traced)}",
                    "failing": failing,
                }
            )
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
