"""``miragen train``: train any engine on a folder of sounds (engine-agnostic).

Checkpoints go to ``MODEL/checkpoint/``; rerunning the same command after a crash or
``kill -9`` resumes from the last checkpoint (the time already spent counts against
``--seconds``). A finished run removes the checkpoint folder, so the next run starts fresh.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .. import config as configmod
from ..corpus.dataset import load_dataset
from ..engines.base import Budget, Progress, engine_class, training_options
from ..engines.generate import save_reference
from ..engines.options import parse_sets
from ..errors import MiragenError
from ..fsutil import atomic_write_text
from ._args import float_range, int_range

CHECKPOINT_DIR = "checkpoint"
SPENT_FILE = "spent.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a generator on a folder of sounds",
        description="Train an engine on DIR (files directly in DIR are one class; subfolders are "
        "classes) and save the model folder MODEL. Progress lines go to stderr. Rerun the same "
        "command after a crash to resume from the last checkpoint.",
    )
    p.add_argument(
        "--engine", choices=("wavegan", "pygan"), help="generative engine (default: train.engine)"
    )
    p.add_argument(
        "--mode",
        choices=("cycle", "oneshot"),
        help="single cycles or one-shots (default: train.mode)",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="training sounds")
    p.add_argument("--class", dest="cls", metavar="NAME", help="train only this class")
    p.add_argument(
        "--cycle-len",
        type=int,
        choices=(256, 512),
        default=256,
        help="points per single cycle (cycle mode)",
    )
    b = p.add_mutually_exclusive_group()
    b.add_argument(
        "--seconds",
        type=float_range(0, unit="s", lo_open=True),
        metavar="S",
        help="time budget (default: train.seconds)",
    )
    b.add_argument("--steps", type=int_range(1), metavar="N", help="step budget (generator steps)")
    b.add_argument(
        "--iterations", type=int_range(1), metavar="N", help="same as --steps (the article's word)"
    )
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model folder to write")
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option (repeatable), e.g. --set recipe=wavegan-paper",
    )
    p.add_argument(
        "--fresh", action="store_true", help="ignore an existing checkpoint and start over"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    t, a = cfg["train"], cfg["audio"]
    engine_name = args.engine or t["engine"]
    mode = args.mode or t["mode"]
    # the options are checked before any sound is read
    options = {
        # one training: train.threads as it is; the configuration's engine options, which
        # --set overrides
        **training_options(
            {**t, "engine": engine_name},
            t["threads"],
            f"{args.config or 'configuration'}: train.set",
        ),
        **parse_sets(args.sets),
    }
    engine = engine_class(engine_name)(**options)
    ds = load_dataset(
        args.data,
        mode,
        rate=a["rate"],
        raw_rate=a["raw_rate"],
        max_len=a["max_bytes"],
        only_class=args.cls,
        cycle_len=args.cycle_len,
    )
    out = Path(args.output)
    ckpt, spent0 = _checkpoint_folder(out, args.fresh)
    budget = _budget(args, float(t["seconds"]), spent0)
    sizes = ", ".join(f"{c} {len(ds.classes[c])}" for c in ds.class_names)
    print(
        f"training {engine_name} ({mode}) on {len(ds)} sounds [{sizes}] → {out}"
        + (f" (resuming; {spent0:.0f} s spent)" if spent0 else ""),
        file=sys.stderr,
    )
    model = engine.fit(ds, budget, _progress_printer(ckpt / SPENT_FILE, spent0, budget), ckpt)
    model.save(out)
    save_reference(out, {c: ds.classes[c] for c in ds.class_names})
    shutil.rmtree(ckpt, ignore_errors=True)
    summary = {
        "model": str(out),
        "engine": engine_name,
        "mode": mode,
        "classes": ds.class_names,
        "sounds": len(ds),
        "seconds": round(spent0 + budget.elapsed(), 2),
        "meta": {
            k: v
            for k, v in model.meta.items()
            if k in ("steps", "best_step", "best_metrics", "device")
        },
    }
    print(f"saved {out} ({summary['seconds']:.0f} s)", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _checkpoint_folder(out: Path, fresh: bool) -> tuple[Path, float]:
    """``MODEL/checkpoint/`` (emptied with ``--fresh``) and the seconds already spent in it."""
    if out.exists() and not out.is_dir():
        raise MiragenError(f"{out}: exists and is not a folder")
    ckpt = out / CHECKPOINT_DIR
    if fresh and ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    spent_path = ckpt / SPENT_FILE
    if spent_path.is_file():
        try:
            return ckpt, float(json.loads(spent_path.read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return ckpt, 0.0


def _budget(args: argparse.Namespace, default_seconds: float, spent0: float) -> Budget:
    """``--steps`` (absolute: a resumed run continues the count), else the seconds still left."""
    steps = args.steps if args.steps is not None else args.iterations
    if steps is not None:
        if steps < 1:
            raise MiragenError(f"--steps {steps}: must be at least 1")
        return Budget(steps=steps)
    seconds = args.seconds if args.seconds is not None else default_seconds
    if seconds <= 0:
        raise MiragenError(f"--seconds {seconds}: must be positive")
    return Budget(seconds=max(1.0, seconds - spent0))


def _progress_printer(spent_path: Path, spent0: float, budget: Budget):
    """Progress lines on stderr; the time spent saved every 5 s (a rerun after a kill goes on
    with what is left)."""
    last = {"saved": time.monotonic()}

    def progress(pr: Progress) -> None:
        parts = [f"step {pr.step}", f"{pr.elapsed_s:.1f} s"]
        parts += [f"{k} {v:.3f}" for k, v in sorted(pr.losses.items())]
        if pr.message:
            parts.append(pr.message)
        print("  " + "  ".join(parts), file=sys.stderr, flush=True)
        if time.monotonic() - last["saved"] >= 5.0:
            atomic_write_text(spent_path, json.dumps({"seconds": spent0 + budget.elapsed()}))
            last["saved"] = time.monotonic()

    return progress
