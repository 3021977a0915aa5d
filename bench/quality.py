"""Quality benchmark: train every engine on the same 80 % split, judge against the other 20 %.

    .venv/bin/python bench/quality.py --data DIR --mode cycle|oneshot --seconds S [--engines ...]

One JSON line per engine (wavegan defaults, the WaveGAN paper's recipe, pygan when importable)
with every judge metric, the held-out baseline, the verdict and ``first_pass_s``: the training
seconds until a snapshot first passed the whole gate against the held-out 20 % (wavegan rows:
checked at every snapshot evaluation; other engines: only the final model, so it is the budget
or null). The judge's own time inside training counts as training time (pessimistic).

Whole-folder mode: every bank (subfolder) of a folder, two at a time, one core each:

    .venv/bin/python bench/quality.py --folder ../shared/data/akwf --seconds 300 \
        --out bench-results/akwf.jsonl [--subset pick|confirm] [--jobs 2] [--set KEY=VALUE]

Each bank is trained by a child process (``--data BANK --engines wavegan --threads 1 --trace``)
and adds one JSON line to ``--out`` as soon as it ends; rerunning the same command skips the
banks already there (resumable; a torn last line is ignored). ``--subset pick`` takes the banks
at even positions of the sorted list, ``confirm`` the others: choose a recipe on one half, confirm
it on the other. The last line printed (and ``OUT.summary.json``) is the summary: the pass rate of
the saved models, the median seconds to the first passing snapshot, per failed rule how many
banks, and how often the trainer's own snapshot verdict agreed with the held-out 20 %.

``--keep DIR`` keeps each bank's saved model in ``DIR/BANK/wavegan``; ``--folder F --rescore DIR
--out OUT`` judges those models again with today's judge (the same split and draws, no
training), so a change of the judge can be measured on the models it judged before. With
``--draws K`` each kept model is judged on K draws of its generator (seeds 0..K-1) and the summary
says whose verdict changes between draws: how much a saved model's verdict rests on one draw.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROWS = {
    "wavegan": ("wavegan", {}),
    "wavegan-paper": ("wavegan", {"recipe": "wavegan-paper"}),
    "pygan": ("pygan", {}),
}


def overall_verdict(per_class: dict) -> str:
    """A bank's verdict from its classes': fail if one fails, else inconclusive if one is,
    else pass; unjudged when no class has the held-out sounds the judge needs."""
    verdicts = [c["verdict"] for c in per_class.values()]
    if not verdicts:
        return "unjudged"
    return next((v for v in ("fail", "inconclusive") if v in verdicts), "pass")


def judge(model, train, held, mode: str, rate: int, n: int, seed: int, probes: int = 10) -> dict:
    from miragen.judge.metrics import evaluate

    per_class = {}
    for cls in train.class_names:
        if len(held.classes.get(cls, [])) < 4:
            continue
        gen = model.sample(n, cls, seed=seed)
        rep = evaluate(
            gen, train.classes[cls], held.classes[cls], mode, rate=rate, power_probes=probes
        )
        per_class[cls] = {
            "passed": rep.passed,
            "verdict": rep.verdict,
            "failed": rep.failed,
            "metrics": rep.metrics,
            "baseline": rep.baseline,
            "power": rep.power,  # why a pass is inconclusive: probes that slipped, size needed
        }
    verdict = overall_verdict(per_class)
    return {"passed": verdict == "pass", "verdict": verdict, "classes": per_class}


def user_path(model, train, held, mode: str, workdir: Path, n: int = 64) -> dict:
    """What a musician's ``miragen generate MODEL -n 64 --seed 0 -o OUT`` and ``miragen
    evaluate --gen OUT`` say of the saved model (``--user-path``): the model saved and loaded
    again, ``n`` sounds per class through the candidate gate with the embedded default
    configuration, written as Mirage 8-bit files, read back from the folder and judged as the
    command judges (allowance 1.645, 30 half-sets), against the same training and held-out
    sounds as :func:`judge`. The bench's own verdict judges ungated draws at the model's float
    output; this one judges what the user gets."""
    from miragen.engines.base import load_model
    from miragen.engines.generate import generate_to_folder, save_reference
    from miragen.judge.metrics import Thresholds, evaluate
    from miragen.judge.sets import load_waves

    saved = model.save(workdir / "saved")
    save_reference(saved, train.classes)  # as `miragen train` does
    loaded = load_model(saved)
    loaded.folder = saved
    per_class = {}
    for cls in train.class_names:
        if len(held.classes.get(cls, [])) < 4:
            continue
        out = workdir / "generated" / cls
        # fewer than n may pass the gate (`generate` then exits 1): what was written is judged
        res = generate_to_folder(loaded, n, out, cls=cls, seed=0)
        gen, _ = load_waves(out, mode)
        rep = evaluate(
            gen,
            train.classes[cls],
            held.classes[cls],
            mode,
            seed=0,
            thresholds=Thresholds(z=1.645),
            half_sets=30,
        )
        per_class[cls] = {
            "verdict": rep.verdict,
            "failed": rep.failed,
            "written": len(res.pcm),
            "gate": res.summary,
            "metrics": rep.metrics,
            "power": rep.power,  # why a pass is inconclusive
        }
    return {"verdict": overall_verdict(per_class), "classes": per_class}


def internal_held(train, options: dict) -> int:
    """Sounds the wavegan trainer held out of the smallest class to judge its snapshots (its
    own split, from the saved options); 0 when a class was too small to hold out from and its
    snapshots were judged against its own training part."""
    from miragen.engines.wavegan.data import internal_split

    if "holdout" not in options or "seed" not in options:
        return -1  # not a wavegan model: unknown
    _, held = internal_split(train, float(options["holdout"]), int(options["seed"]))
    return min(len(h) for h in held)


def run_row(name: str, args, train, held, workdir: Path) -> dict:
    from miragen.engines.base import Budget, engine_class

    engine_name, opts = ROWS[name]
    opts = dict(opts, threads=args.threads)
    if engine_name == "wavegan" and name == "wavegan":
        opts.update(args.options)
    row: dict = {
        "engine": name,
        "data": str(args.data),
        "mode": args.mode,
        "seconds": args.seconds,
        "train_sounds": len(train),
        "held_sounds": len(held),
    }
    try:
        cls = engine_class(engine_name)
    except ImportError as exc:
        row["skipped"] = f"engine not importable: {exc}"
        return row
    first = {"s": None, "step": None}
    extra = {}
    if engine_name == "wavegan":
        opts["eval_every"] = args.eval_every

        trace = row.setdefault("snapshots", []) if args.trace else None

        def hook(model, step, elapsed, figures):
            if first["s"] is not None and trace is None:
                return
            res = judge(model, train, held, args.mode, train.rate, args.samples, 1, probes=0)
            if res["passed"] and first["s"] is None:
                first.update(s=round(elapsed, 1), step=step)
            if trace is not None:
                failed = sorted({f for c in res["classes"].values() for f in c["failed"]})
                trace.append(
                    {
                        "step": step,
                        "s": round(elapsed, 1),
                        "passed": res["passed"],
                        "verdict": res["verdict"],
                        "failed": failed,
                        "held_out": {
                            c: {
                                k: round(float(v["metrics"][k]) / max(v["baseline"][k], 1e-9), 3)
                                for k in ("recall", "precision", "diversity")
                                if k in v["baseline"]
                            }
                            for c, v in res["classes"].items()
                        },
                        "trainer": figures,
                    }
                )

        extra["snapshot_hook"] = hook
    t0 = time.monotonic()
    model = cls(**opts, **extra).fit(train, Budget(seconds=args.seconds), None, workdir / name)
    row["train_s"] = round(time.monotonic() - t0, 1)
    t1 = time.monotonic()
    model.sample(args.samples, train.class_names[0], seed=0)
    row["sample_s_per_item"] = round((time.monotonic() - t1) / args.samples, 5)
    row.update(judge(model, train, held, args.mode, train.rate, args.samples, 0))
    if first["s"] is None and row["passed"]:
        first.update(s=row["train_s"], step=model.meta.get("steps"))
    row["first_pass_s"], row["first_pass_step"] = first["s"], first["step"]
    row["meta"] = {
        k: model.meta.get(k) for k in ("steps", "best_step", "device") if k in model.meta
    }
    best = model.meta.get("best_metrics") or {}
    if "passed" in best:  # the trainer's own verdict on the snapshot it kept
        row["internal_passed"] = bool(best["passed"])
        row["internal_held"] = internal_held(train, model.meta.get("options") or {})
    if engine_name == "wavegan" and name == "wavegan" and args.options:
        row["options"] = args.options
    if getattr(args, "user_path", False):
        row["user_path"] = user_path(model, train, held, args.mode, workdir / "user")
    if getattr(args, "keep", None):  # the saved model, for judging again later (--rescore)
        row["kept"] = str(model.save(Path(args.keep) / name))
    return row


# ------------------------------------------------------------------------------------------
# whole-folder mode


def banks_of(folder: Path, subset: str) -> list[Path]:
    """The bank folders (sorted); ``pick``: even positions, ``confirm``: odd ones."""
    banks = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subset == "pick":
        return banks[0::2]
    if subset == "confirm":
        return banks[1::2]
    return banks


def read_results(out: Path) -> dict[str, dict]:
    """The banks already measured in ``out`` (a torn last line is ignored)."""
    done = {}
    if out.is_file():
        for line in out.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            done[row["bank"]] = row
    return done


def held_out_fraction(ds) -> float:
    """The share of each class the judge holds out: 20 %, or, for a bank whose 20 % is fewer
    sounds than the judge needs (``MIN_SET``, 4: banks of 9 to 17 sounds), those 4, as long as
    the training part keeps the judge's ``MIN_TRAIN`` (5). Such a bank trains on less than
    80 % and is judged at 4 held-out sounds (a verdict of at most *inconclusive*): a verdict
    all the same, where a bank of 9 to 17 sounds had none. Only a one-class bank is widened
    (one fraction splits every class: a kit's small class must not move its others' split)."""
    from miragen.judge.metrics import MIN_SET, MIN_TRAIN

    if len(ds.classes) != 1:
        return 0.2
    n = len(next(iter(ds.classes.values())))
    if n - round(0.8 * n) >= MIN_SET or n - MIN_SET < MIN_TRAIN:
        return 0.2
    return MIN_SET / n


def judged_split(ds, seed: int):
    """(training part, held-out part) of ``ds`` for the judge (:func:`held_out_fraction`)."""
    return ds.split(1.0 - held_out_fraction(ds), seed=seed)


def unjudgeable(bank: Path, args) -> dict | None:
    """A bank whose held-out part is still too small for the judge (fewer than 4 sounds, with
    at least 5 to train on: banks of fewer than 9 sounds) is recorded as such without
    training: no verdict could be given."""
    from miragen.corpus.dataset import load_dataset
    from miragen.judge.metrics import MIN_SET

    ds = load_dataset(bank, args.mode)
    train, held = judged_split(ds, args.seed)
    if min(len(v) for v in held.classes.values()) >= MIN_SET:
        return None
    return {
        "bank": bank.name,
        "verdict": "unjudged",
        "train_sounds": len(train),
        "held_sounds": len(held),
        "wall_s": 0.0,
    }


def run_bank(bank: Path, args) -> dict:
    """Train and judge one bank in a child process (one core)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--data",
        str(bank),
        "--mode",
        args.mode,
        "--seconds",
        str(args.seconds),
        "--engines",
        "wavegan",
        "--threads",
        "1",
        "--samples",
        str(args.samples),
        "--eval-every",
        str(args.eval_every),
        "--seed",
        str(args.seed),
        "--trace",
    ]
    if getattr(args, "keep", None):
        cmd += ["--keep", str(Path(args.keep) / bank.name)]
    if getattr(args, "user_path", False):
        cmd += ["--user-path"]
    for item in args.sets:
        cmd += ["--set", item]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = round(time.monotonic() - t0, 1)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"bank": bank.name, "error": (r.stderr or r.stdout)[-2000:], "wall_s": wall}
    row = json.loads(lines[-1])
    row.update(bank=bank.name, wall_s=wall)
    return row


# snapshot choices compared on the same runs (each snapshot's held-out verdict is in the trace):
# what the trainer kept, the last one, and choices by the cross-validated figures on the
# training set (judge/crossval.py), which need no held-out sounds
def _cv(name: str):
    return lambda t: t.get("trainer", {}).get(name, float("-inf"))


SELECTION_RULES = {
    "kept_by_trainer": None,
    "last": lambda t: t["step"],
    "max_cv_recall": _cv("cv_recall"),
    "max_cv_coverage": _cv("cv_coverage"),
    # what select=cv keeps: no copy or silence failure, then the least of the four figures
    "select_cv": lambda t: (
        t.get("trainer", {}).get("copy_ok", 1.0),
        min(
            t.get("trainer", {}).get(k, float("-inf"))
            for k in ("cv_recall", "cv_coverage", "cv_diversity", "cv_precision")
        ),
    ),
    "max_cv_least": lambda t: min(
        t.get("trainer", {}).get(k, float("-inf"))
        for k in ("cv_recall", "cv_coverage", "cv_diversity", "cv_precision")
    ),
}


def selection_rates(rows: list[dict]) -> dict[str, str]:
    """For each rule: held-out passes of the snapshot it picks / banks with a trace."""
    traced = [r for r in rows if r.get("snapshots") and r.get("verdict") != "unjudged"]
    out = {}
    for name, key in SELECTION_RULES.items():
        wins = 0
        for r in traced:
            snaps = r["snapshots"]
            if key is None:
                best = r.get("meta", {}).get("best_step")
                pick = next((t for t in snaps if t["step"] == best), snaps[-1])
            else:
                pick = max(snaps, key=lambda t: (key(t), t["step"]))
            wins += pick["verdict"] != "fail"
        out[name] = f"{wins}/{len(traced)}"
    out["any_snapshot"] = (
        f"{sum(any(t['verdict'] != 'fail' for t in r['snapshots']) for r in traced)}/{len(traced)}"
    )
    return out


def summarise(rows: list[dict]) -> dict:
    """Pass rate of the saved models, median time to the first passing snapshot, failures by
    rule, and how often the trainer's internal verdict agreed with the held-out one."""
    judged = [r for r in rows if r.get("verdict") in ("pass", "inconclusive", "fail")]
    verdicts = {v: sum(r["verdict"] == v for r in judged) for v in ("pass", "inconclusive", "fail")}
    verdicts["unjudged"] = sum(r.get("verdict") == "unjudged" for r in rows)
    by_rule: dict[str, int] = {}
    for r in judged:
        for rule in sorted({f for c in r["classes"].values() for f in c["failed"]}):
            by_rule[rule] = by_rule.get(rule, 0) + 1
    firsts = [r["first_pass_s"] for r in judged if r.get("first_pass_s") is not None]
    # the trainer's verdict is comparable only where it had a hold-out of its own: a class too
    # small to hold out from is judged against its own training part (rows before
    # 2026-11-30 lack the count and are all taken)
    both = [r for r in judged if "internal_passed" in r and r.get("internal_held", 1) != 0]
    agree = sum(r["internal_passed"] == (r["verdict"] != "fail") for r in both)
    return {
        "summary": True,
        "banks": len(rows),
        "errors": sorted(r["bank"] for r in rows if "error" in r),
        "verdicts": verdicts,
        "pass_rate": round(verdicts["pass"] / len(judged), 3) if judged else None,
        "pass_or_inconclusive_rate": (
            round((verdicts["pass"] + verdicts["inconclusive"]) / len(judged), 3)
            if judged
            else None
        ),
        "failed_banks": sorted(r["bank"] for r in judged if r["verdict"] == "fail"),
        "failures_by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1])),
        "ever_passed": len(firsts),
        "median_first_pass_s": round(statistics.median(firsts), 1) if firsts else None,
        "internal_agrees_with_held_out": f"{agree}/{len(both)}",
        "no_internal_hold_out": sorted(r["bank"] for r in judged if r.get("internal_held") == 0),
        "snapshot_choice_not_failing": selection_rates(rows),
        **user_path_summary(judged),
    }


def user_path_summary(judged: list[dict]) -> dict:
    """``--user-path`` rows: the verdicts of what ``generate`` then ``evaluate`` give, their
    failures by rule, and on how many banks that verdict's pass-or-not agrees with the bench's."""
    users = [r for r in judged if r.get("user_path", {}).get("verdict") not in (None, "unjudged")]
    if not users:
        return {}
    by_rule: dict[str, int] = {}
    for r in users:
        for rule in sorted({f for c in r["user_path"]["classes"].values() for f in c["failed"]}):
            by_rule[rule] = by_rule.get(rule, 0) + 1
    verdicts = [r["user_path"]["verdict"] for r in users]
    same = sum((r["user_path"]["verdict"] == "fail") == (r["verdict"] == "fail") for r in users)
    return {
        "user_path": {
            "verdicts": {v: verdicts.count(v) for v in ("pass", "inconclusive", "fail")},
            "pass_rate": round(verdicts.count("pass") / len(users), 3),
            "failed_banks": sorted(r["bank"] for r in users if r["user_path"]["verdict"] == "fail"),
            "failures_by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1])),
            "fails_where_the_bench_fails": f"{same}/{len(users)}",
        }
    }


def run_folder(args) -> int:
    out = args.out or Path("bench-results") / f"quality-{args.folder.name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    banks = banks_of(args.folder, args.subset)
    done = read_results(out)
    todo = [b for b in banks if b.name not in done]
    print(
        f"{len(banks)} banks, {len(banks) - len(todo)} already in {out}, "
        f"{len(todo)} to run ({args.jobs} at a time, {args.seconds:.0f} s each)",
        file=sys.stderr,
        flush=True,
    )
    with out.open("a") as fh, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(lambda b: unjudgeable(b, args) or run_bank(b, args), todo):
            fh.write(json.dumps(row, sort_keys=True, default=float) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done[row["bank"]] = row
            state = row.get("verdict", "error")
            print(f"  {row['bank']}: {state} ({row['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    rows = [done[b.name] for b in banks if b.name in done]
    summary = summarise(rows)
    summary.update(folder=str(args.folder), subset=args.subset, seconds=args.seconds)
    summary["options"] = args.sets
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, sort_keys=True))
    return 0


def rescore_bank(bank: Path, args) -> dict:
    """Judge the model a ``--keep`` run saved for ``bank`` again: the same split (``--seed``)
    and the same draws (seed 0), today's judge. Rows keep the run's training figures."""
    from miragen.corpus.dataset import load_dataset
    from miragen.engines.base import load_model

    t0 = time.monotonic()
    folder = args.rescore / bank.name / "wavegan"
    if not (folder / "model.json").is_file():
        return {"bank": bank.name, "error": f"no kept model in {folder}", "wall_s": 0.0}
    model = load_model(folder)
    train, held = judged_split(load_dataset(bank, args.mode), args.seed)
    row = {"bank": bank.name, "rescored_from": str(folder), "steps": model.meta.get("steps")}
    row.update(judge(model, train, held, args.mode, train.rate, args.samples, 0))
    if args.user_path:
        with tempfile.TemporaryDirectory() as tmp:
            row["user_path"] = user_path(model, train, held, args.mode, Path(tmp))
    if args.draws > 1:
        row["draws"] = [draw_figures(row, 0)] + [
            draw_figures(judge(model, train, held, args.mode, train.rate, args.samples, s), s)
            for s in range(1, args.draws)
        ]
    row["wall_s"] = round(time.monotonic() - t0, 1)
    return row


def draw_figures(res: dict, seed: int) -> dict:
    """What one draw of a saved model scored (``--draws``): its verdict, the rules it failed,
    and each class's value of the two checks at G's size (their limits are in the row)."""
    return {
        "seed": seed,
        "verdict": res["verdict"],
        "failed": sorted({f for c in res["classes"].values() for f in c["failed"]}),
        "whole": {
            cls: {k: round(float(c["metrics"][k]), 4) for k in ("clusters", "repeats")}
            for cls, c in res["classes"].items()
            if "clusters" in c["metrics"]
        },
    }


def draw_summary(rows: list[dict]) -> dict:
    """How much a saved model's verdict rests on its draw (``--draws``): per bank, the verdicts
    of its draws; the banks whose verdict changes between draws; per rule, the banks that fail
    it in some draw and in every draw; per class, the spread (max − min) of ``clusters``."""
    drawn = [r for r in rows if r.get("draws")]
    verdicts = {r["bank"]: [d["verdict"] for d in r["draws"]] for r in drawn}
    some: dict[str, int] = {}
    every: dict[str, int] = {}
    spreads = []
    for r in drawn:
        fails = [set(d["failed"]) for d in r["draws"]]
        for rule in sorted(set().union(*fails)):
            some[rule] = some.get(rule, 0) + 1
            every[rule] = every.get(rule, 0) + all(rule in f for f in fails)
        for cls in r["draws"][0]["whole"]:
            vals = [d["whole"][cls]["clusters"] for d in r["draws"] if cls in d["whole"]]
            spreads.append(max(vals) - min(vals))
    return {
        "draws_per_bank": len(drawn[0]["draws"]) if drawn else 0,
        "verdicts_by_draw": verdicts,
        "verdict_changes_between_draws": sorted(b for b, v in verdicts.items() if len(set(v)) > 1),
        "pass_share_of_draws": (
            round(
                sum(v.count("pass") for v in verdicts.values()) / sum(map(len, verdicts.values())),
                3,
            )
            if verdicts
            else None
        ),
        "failed_in_some_draw": some,
        "failed_in_every_draw": every,
        "clusters_spread_median": round(statistics.median(spreads), 4) if spreads else None,
        "clusters_spread_max": round(max(spreads), 4) if spreads else None,
    }


def rescore_folder(args) -> int:
    """``--folder F --rescore DIR --out OUT``: every bank's kept model judged again."""
    import torch

    torch.set_num_threads(args.threads)
    out = args.out or Path("bench-results") / f"rescore-{args.folder.name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with out.open("w") as fh:
        for bank in banks_of(args.folder, args.subset):
            row = unjudgeable(bank, args) or rescore_bank(bank, args)
            rows.append(row)
            fh.write(json.dumps(row, sort_keys=True, default=float) + "\n")
            print(f"  {bank.name}: {row.get('verdict', 'error')}", file=sys.stderr, flush=True)
    summary = summarise(rows)
    summary.update(folder=str(args.folder), subset=args.subset, rescored_from=str(args.rescore))
    if args.draws > 1:
        summary["draws"] = draw_summary(rows)
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="one bank (a folder of sounds)")
    src.add_argument("--folder", type=Path, help="whole-folder mode: every bank in FOLDER")
    p.add_argument("--out", type=Path, help="whole-folder mode: results file (JSON lines)")
    p.add_argument("--jobs", type=int, default=2, help="whole-folder mode: banks at a time")
    p.add_argument(
        "--subset",
        choices=("all", "pick", "confirm"),
        default="all",
        help="whole-folder mode: all banks, or the even (pick) / odd (confirm) half",
    )
    p.add_argument("--mode", choices=("cycle", "oneshot"), default="cycle")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument(
        "--engines",
        default="wavegan,wavegan-paper,pygan",
        help="comma-separated rows: " + ",".join(ROWS),
    )
    p.add_argument("--samples", type=int, default=128, help="generated sounds judged per class")
    p.add_argument(
        "--eval-every", type=int, default=300, help="wavegan: steps between snapshot evaluations"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the 80/20 split (4 held out of a bank of 9-17)"
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="wavegan row: an engine option (typed by the engine, as `miragen train --set`)",
    )
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep each saved model in DIR (whole-folder mode: DIR/BANK/ENGINE)",
    )
    p.add_argument(
        "--rescore",
        type=Path,
        metavar="DIR",
        help="whole-folder mode: judge the models a run kept in DIR again with today's judge "
        "(no training; the same split and draws)",
    )
    p.add_argument(
        "--draws",
        type=int,
        default=1,
        metavar="K",
        help="with --rescore: judge each kept model on K draws (seeds 0..K-1) and say how "
        "often its verdict changes between them (the row's own verdict stays draw 0's)",
    )
    p.add_argument(
        "--user-path",
        action="store_true",
        help="also judge the saved model as a musician does: `miragen generate -n 64 --seed 0` "
        "(gate on, 8-bit files), then `miragen evaluate` on that folder (row's 'user_path')",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="wavegan rows: judge every snapshot against the held-out 20 %% "
        "(listed in 'snapshots')",
    )
    args = p.parse_args(argv)
    from miragen.engines.options import parse_sets  # the same rules as `miragen train --set`
    from miragen.errors import MiragenError

    try:
        args.options = parse_sets(args.sets)
    except MiragenError as exc:
        p.error(str(exc))
    if args.draws < 1 or (args.draws > 1 and args.rescore is None):
        p.error("--draws K needs K >= 1, and K > 1 only with --rescore")
    if args.folder is not None:
        return rescore_folder(args) if args.rescore else run_folder(args)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    from miragen.corpus.dataset import load_dataset

    ds = load_dataset(args.data, args.mode)
    train, held = judged_split(ds, args.seed)
    device = (
        "cuda"
        if torch.cuda.is_available()
        else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            if name not in ROWS:
                p.error(f"unknown engine row {name!r}")
            row = run_row(name, args, train, held, Path(tmp))
            row["device"] = device
            print(json.dumps(row, sort_keys=True, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
