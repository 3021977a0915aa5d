"""Replay ``select=cv``'s one-standard-error rule (option ``select_se``) on the snapshot traces
of whole-folder runs (``bench/quality.py --folder …``, which traces every snapshot).

    .venv/bin/python bench/select_replay.py bench/results/quality-akwf-pick-slopes.jsonl … \
        [--se 0,0.5,1,2,100]

Each snapshot of a trace holds its verdict against the bank's held-out 20 % (draws of another
seed than the saved model's) and the trainer's cross-validated figures with their standard
errors. For each multiple ``k``, the snapshots are fed in order to the trainer's own rule
(:func:`miragen.engines.wavegan.selection.cv_keeps`); the last one kept is the replayed choice.
Prints one JSON object: per file and ``k``, the banks whose kept snapshot fails no check against
the held-out 20 %, which fail; and over all files, how often ``k`` moves the kept snapshot
against ``k = 0`` (the best figure itself) and how often that turns a failing snapshot into one
failing no check, or back. Choose on one half of the banks, confirm on the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from miragen.engines.wavegan.selection import cv_keeps, least_figure


def score(snap: dict) -> tuple[tuple[float, float], float]:
    """((no copy failure, least cross-validated figure), that figure's standard error)."""
    tr = snap.get("trainer", {})
    least, se = least_figure(tr)
    return (float(tr.get("copy_ok", 1.0)), least), se


def kept(snaps: list[dict], k_se: float) -> dict:
    peak, peak_se, choice = None, 0.0, snaps[0]
    for snap in snaps:
        s, se = score(snap)
        keep, new = (True, True) if peak is None else cv_keeps(s, peak, peak_se, k_se)
        if new:
            peak, peak_se = s, se
        if keep:
            choice = snap
    return choice


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--se", default="0,0.5,1,2,100", help="multiples of the standard error")
    args = ap.parse_args()
    ks = [float(x) for x in args.se.split(",")]
    out: dict = {"files": {}, "moved_against_k0": {}}
    runs = []
    for f in args.files:
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        traced = [r for r in rows if r.get("snapshots") and r.get("verdict") != "unjudged"]
        runs += traced
        per = out["files"][str(f)] = {"banks": len(traced)}
        for k in ks:
            failing = sorted(
                r["bank"] for r in traced if kept(r["snapshots"], k)["verdict"] == "fail"
            )
            per[f"k={k:g}"] = {
                "not_failing": f"{len(traced) - len(failing)}/{len(traced)}",
                "failing": failing,
            }
    for k in ks:
        moved = fixed = broke = 0
        for r in runs:
            a, b = kept(r["snapshots"], 0.0), kept(r["snapshots"], k)
            if a["step"] != b["step"]:
                moved += 1
                fixed += a["verdict"] == "fail" and b["verdict"] != "fail"
                broke += a["verdict"] != "fail" and b["verdict"] == "fail"
        out["moved_against_k0"][f"k={k:g}"] = {
            "runs": len(runs),
            "moved": moved,
            "fail_to_not_failing": fixed,
            "not_failing_to_fail": broke,
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
