"""``miragen evaluate``: judge generated sounds against training and held-out sets: a folder of
them (``--gen``), or ``-n`` drawn from a model as ``miragen generate`` draws them (``--model``)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .. import config as configmod
from ..engines.base import load_model
from ..engines.generate import REFERENCE, generate_to_folder
from ..errors import MiragenError
from ..judge.metrics import Thresholds, evaluate
from ..judge.sets import load_waves
from ._args import float_range, int_range, seed, source_rate

MODEL_DRAWS = 64  # evaluate --model: sounds drawn when -n is not given


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="judge generated sounds: novelty, copies, diversity, precision/recall, NDB/K, "
        "Fréchet, clusters, repeats",
        description="Compare generated sounds (a folder, or drawn from a model) with the training "
        "set and a held-out set of real sounds; prints every metric beside the held-out figure "
        "and the verdict: pass "
        "(exit 0), fail (exit 1), or inconclusive (exit 3: every check passed, but neither the "
        "held-out sounds nor the generated ones are enough to tell the set from a half-collapsed "
        "one; the report says what slipped). The checks at the generator's size want about as "
        "many generated sounds as training sounds, and at least 64; an inconclusive report says "
        "about how many would do: --model MODEL -n N draws them as `miragen generate` does (the "
        "configured gate, the postprocess) into a temporary folder and judges them. Where enough "
        "training cycles are stepped (on a grid of at most 32 levels: pulses, console wave "
        "tables) for it to tell, generated cycles are also checked for being stepped as often. "
        "docs/judge.md.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gen", metavar="DIR", help="a folder of generated sounds")
    src.add_argument(
        "--model",
        metavar="MODEL",
        help="draw the generated sounds from this model folder (as `miragen generate` does)",
    )
    p.add_argument(
        "--class",
        dest="cls",
        metavar="NAME",
        help="with --model: the class to draw (default: the model's first)",
    )
    p.add_argument(
        "-n",
        type=int_range(1),
        default=None,
        metavar="N",
        help=f"with --model: sounds to draw, at least 1 (default {MODEL_DRAWS})",
    )
    p.add_argument(
        "--config", metavar="FILE", help="with --model: configuration file (gate, audio)"
    )
    p.add_argument("--train", required=True, metavar="DIR", help="the training sounds")
    p.add_argument(
        "--held",
        required=True,
        metavar="DIR",
        help="real sounds of the same class not used in training",
    )
    p.add_argument(
        "--kind",
        choices=("cycle", "oneshot"),
        help="single cycles or one-shots (needed with --gen; with --model, the model's)",
    )
    p.add_argument(
        "--raw-rate",
        type=source_rate(),
        default=29411,
        metavar="HZ",
        help="rate of headerless .pcm files (one-shots), 1,000..1,000,000",
    )
    p.add_argument(
        "--seed",
        type=seed(),
        default=0,
        help="seed of the judge's random draws, and of the model's with --model",
    )
    p.add_argument(
        "--allowance",
        type=float_range(0),
        default=1.645,
        metavar="Z",
        help="sampling-noise allowance in standard errors "
        "(default 1.645; 0 applies the bare thresholds)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_evaluate)


def _drawn(args: argparse.Namespace, model, train: list) -> list:
    """``-n`` sounds drawn from ``model`` through the generate pipeline (the configured gate,
    the postprocess), written to a temporary folder and read back as ``--gen`` reads a folder.
    The gate compares with the model's own reference waves, or with ``--train`` where the model
    folder has none."""
    n = args.n or MODEL_DRAWS
    cfg = configmod.load(args.config)
    own = (Path(args.model) / REFERENCE).is_file()
    with tempfile.TemporaryDirectory(prefix="miragen-evaluate-") as tmp:
        res = generate_to_folder(
            model,
            n,
            tmp,
            cls=args.cls,
            cfg=cfg,
            gate=cfg["generate"]["gate"],
            train_waves=None if own else train,
            seed=args.seed,
        )
        gen, _ = load_waves(tmp, model.mode, raw_rate=cfg["audio"]["rate"])
    short = f", {res.shortfall} fewer than asked" if res.shortfall else ""
    print(
        f"miragen: note: drew {len(gen)} sounds of class '{model.resolve_class(args.cls)}' from "
        f"{args.model} (seed {args.seed}; {res.summary}{short})",
        file=sys.stderr,
    )
    return gen


def _model_and_kind(args: argparse.Namespace):
    """(the ``--model`` loaded, or None; the kind of sounds judged)."""
    if args.model is None:
        if args.cls or args.n or args.config:
            raise MiragenError("--class, -n and --config go with --model (not with --gen)")
        if args.kind is None:
            raise MiragenError("--kind is needed with --gen (cycle or oneshot)")
        return None, args.kind
    model = load_model(args.model)
    model.folder = Path(args.model)
    if args.kind and args.kind != model.mode:
        raise MiragenError(f"{args.model}: a {model.mode} model, not --kind {args.kind}")
    return model, model.mode


def _evaluate(args: argparse.Namespace) -> int:
    if not args.allowance >= 0:
        raise MiragenError(f"--allowance must be ≥ 0 (got {args.allowance})")
    model, kind = _model_and_kind(args)
    train, _ = load_waves(args.train, kind, raw_rate=args.raw_rate)
    held, _ = load_waves(args.held, kind, raw_rate=args.raw_rate)
    if model is not None:
        gen = _drawn(args, model, train)
    else:
        gen, _ = load_waves(args.gen, kind, raw_rate=args.raw_rate)
    report = evaluate(
        gen,
        train,
        held,
        kind,
        seed=args.seed,
        thresholds=Thresholds(z=args.allowance),
        half_sets=30 if args.allowance > 0 else 0,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.table())
    return {"pass": 0, "inconclusive": EXIT_INCONCLUSIVE}.get(report.verdict, 1)


EXIT_INCONCLUSIVE = 3
