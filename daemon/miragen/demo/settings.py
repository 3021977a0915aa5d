"""The configuration the demo runs the daemon with, and the file it leaves for reruns."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import config as configmod
from ..corpus.synth import HIT_CLASSES
from .folder import CONFIG_NAME

COUNT = 4  # candidates kept per class
# sounds per class: the daemon holds out 20 % of a class to judge its model (10 of 50), and
# trains on the rest. 10 held-out sounds are too few for a verdict on their own; the judge's
# checks at the generator's size (64 generated sounds against the 40 trained on) give it
# (docs/judge.md, "Power at the generator's size"), so more sounds would buy slower steps.
PER_CLASS = 50
TRAINING_SHOWN = 3  # training sounds beside them on the contact sheet
# the demo's only engine option: 40 s a class buys about 190 steps at the engine's batch of 32,
# where fm's model passed the judge on 14 of 30 draws (three seeds, ten draws of 64 each); a
# batch of 16 makes about 310 steps and passed 30 of 30, and the other three cycle classes 10
# of 10 (docs/demo.md, "A batch of 16"). The hits (one-shots) train with 16 already.
DEMO_ENGINE_SET = "batch=16"
DISK_SOUND = "lower1"
SYSEX_HALF = "lower"


def demo_threads() -> int:
    """torch CPU threads for the demo's training: half the cores (1 on a 2-core machine), at most 4.

    All cores (``train.threads = 0``) collapse when anything else runs: measured on the 2-core
    container at load 8, 8 s of training made 4 steps with 2 threads and 34-54 with 1 (OpenMP
    threads waiting for each other on an oversubscribed CPU).
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def demo_workers() -> int:
    """Classes the demo trains at once (``train.workers``): two, each with :func:`demo_threads`
    threads (on a 2-core machine one core each), or one on a single core."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def demo_config(folder: Path, transport: str, seconds_per_class: int) -> dict[str, Any]:
    """The embedded default with the demo's settings (validated like any configuration)."""
    overrides = {
        "paths": {"state": str(folder.resolve()), "usb_stick": ""},
        "train": {
            "seconds": int(seconds_per_class),
            "debounce_s": 1.0,
            "threads": demo_threads(),
            "workers": demo_workers(),
            "oneshot_classes": ", ".join(HIT_CLASSES),  # the hits are one-shots
            "set": DEMO_ENGINE_SET,
        },
        "generate": {"count": COUNT},
        "deliver": {
            "route": "both",
            "transport": transport,
            "verify": True,
            "template": "",
            "sound": DISK_SOUND,
            "half": SYSEX_HALF,
        },
        "daemon": {"settle_s": 0.3},
    }
    base = configmod.parse_text(configmod.default_text(), "embedded default")
    for section, body in overrides.items():
        base[section].update(body)
    data = {k: v for k, v in base.items() if k != "trigger"}
    return configmod.validate(data, "demo configuration")


def config_text(cfg: dict[str, Any], used_transport: str) -> str:
    """``DIR/miragen.toml``: the configuration the demo ran with, for reruns of the daemon."""
    saved = json.loads(json.dumps(cfg))
    saved["deliver"]["transport"] = "sim"
    head = (
        "# Written by `miragen demo`. Rerun the studio with:\n"
        f"#   miragen daemon --config {Path(cfg['paths']['state']) / CONFIG_NAME}\n"
        f"# The demo itself delivered over serial:{used_transport.partition(':')[2]} "
        "(the pty of a\n"
        "# `miragen sim --pty` process that ended with the demo), so deliver.transport is "
        '"sim" here.\n'
        '# With a Mirage: deliver.transport = "serial:/dev/ttyTHS1" (Jetson UART) or '
        '"raw:/dev/snd/midiC1D0";\n'
        "# see `miragen ports`. A rerun of `miragen demo` in this folder replaces this file.\n"
        f'# train.set = "{DEMO_ENGINE_SET}" suits the demo\'s short training; for your own sounds '
        "and longer\n# budgets leave it empty (the engine's defaults, docs/wavegan.md).\n\n"
    )
    return head + configmod.render(saved)
