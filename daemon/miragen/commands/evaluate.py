"""``miragen evaluate``: judge a folder of generated sounds against training and held-out sets."""

from __future__ import annotations

import argparse
import json

from ..errors import MiragenError
from ..judge.metrics import Thresholds, evaluate
from ..judge.sets import load_waves
from ._args import float_range, seed, source_rate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="judge generated sounds: novelty, copies, diversity, precision/recall, NDB/K, "
        "Fréchet, clusters, repeats",
        description="Compare a folder of generated sounds with the training set and a held-out set "
        "of real sounds; prints every metric beside the held-out figure and the verdict: pass "
        "(exit 0), fail (exit 1), or inconclusive (exit 3: every check passed, but neither the "
        "held-out sounds nor the generated ones are enough to tell the set from a half-collapsed "
        "one; the report says what slipped). The checks at the generator's size want about as "
        "many generated sounds as training sounds, and at least 64; an inconclusive report says "
        "about how many would do. Cycles of a stepped class (most of its training cycles on a "
        "grid of at most 32 levels: pulses, console wave tables) are also checked for being "
        "stepped as often. docs/judge.md.",
    )
    p.add_argument("--gen", required=True, metavar="DIR", help="generated sounds")
    p.add_argument("--train", required=True, metavar="DIR", help="the training sounds")
    p.add_argument(
        "--held",
        required=True,
        metavar="DIR",
        help="real sounds of the same class not used in training",
    )
    p.add_argument(
        "--kind", required=True, choices=("cycle", "oneshot"), help="single cycles or one-shots"
    )
    p.add_argument(
        "--raw-rate",
        type=source_rate(),
        default=29411,
        metavar="HZ",
        help="rate of headerless .pcm files (one-shots), 1,000..1,000,000",
    )
    p.add_argument("--seed", type=seed(), default=0, help="seed of the random draws")
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


def _evaluate(args: argparse.Namespace) -> int:
    gen, _ = load_waves(args.gen, args.kind, raw_rate=args.raw_rate)
    train, _ = load_waves(args.train, args.kind, raw_rate=args.raw_rate)
    held, _ = load_waves(args.held, args.kind, raw_rate=args.raw_rate)
    if not args.allowance >= 0:
        raise MiragenError(f"--allowance must be ≥ 0 (got {args.allowance})")
    report = evaluate(
        gen,
        train,
        held,
        args.kind,
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
