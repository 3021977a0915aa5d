"""``miragen generate``: new Mirage-ready wavesamples from a trained model (any engine)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import config as configmod
from ..engines.base import load_model
from ..engines.generate import generate_to_folder
from ..errors import MiragenError
from ._args import int_range, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="make new sounds with a trained model",
        description="Draw candidates from MODEL, pass them through the candidate gate, and write N "
        "Mirage-ready .pcm files (whole pages, no 0x00) with .wav and .png into DIR.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="model folder (written by `miragen train` or `miragen model import`)",
    )
    p.add_argument(
        "--class", dest="cls", metavar="NAME", help="class to generate (default: the model's first)"
    )
    p.add_argument(
        "-n",
        type=int_range(1),
        default=None,
        metavar="N",
        help="sounds to write, at least 1 (default: generate.count)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--gate",
        choices=("on", "off"),
        default=None,
        help="candidate gate (default: generate.gate); off writes every candidate",
    )
    p.add_argument(
        "--seed",
        type=seed(),
        default=None,
        help="random seed, 0..4,294,967,295 (default: a new one each run)",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    n = args.n if args.n is not None else cfg["generate"]["count"]
    if n < 1:
        raise MiragenError(f"-n {n}: must be at least 1")
    gate = cfg["generate"]["gate"] if args.gate is None else args.gate == "on"
    model = load_model(args.model)
    model.folder = Path(args.model)
    result = generate_to_folder(
        model, n, args.output, cls=args.cls, cfg=cfg, gate=gate, seed=args.seed
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        for f in result.pcm:
            print(f)
    print(f"miragen: note: {result.summary}", file=sys.stderr)
    for w in result.warnings:
        print(f"miragen: warning: {w}", file=sys.stderr)
    if len(result.pcm) < n:
        print(
            f"miragen: error: only {len(result.pcm)} of {n} candidates passed the gate",
            file=sys.stderr,
        )
        return 1
    return 0
