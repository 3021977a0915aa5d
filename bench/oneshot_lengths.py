"""What one-shots longer than the longest internal length (65,536 samples at 29,411 Hz, 2.2 s)
lose when they are cut there, per set of ``../shared/data/oneshots``.

    .venv/bin/python bench/oneshot_lengths.py [--limit 65536]

Each sound is read, mixed to mono, resampled to 29,411 Hz, cut at its onset and its trailing
silence as the wavegan engine does (``engines/wavegan/data.py``). Prints one JSON line per set:
the number of sounds, the median and 90th-percentile lengths in seconds, and for every sound
longer than the limit its length and the share of its energy past the cut.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from miragen.audio.io import read_audio  # noqa: E402
from miragen.audio.resample import resample  # noqa: E402
from miragen.engines.wavegan.data import onset_align, trim_tail  # noqa: E402

RATE = 29411
SHARED = Path(
    os.environ.get("MIRAGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--limit", type=int, default=65536)
    p.add_argument("--sets", default="sonic-pi,avl-drumkits")
    args = p.parse_args(argv)
    for name in args.sets.split(","):
        lengths, long = [], []
        for f in sorted((SHARED / "oneshots" / name).glob("*.wav")):
            a = read_audio(f, keep_seconds=None)
            x = a.samples if a.samples.ndim == 1 else a.samples.mean(axis=1)
            x = trim_tail(onset_align(resample(np.asarray(x, np.float64), int(a.rate), RATE)))
            lengths.append(len(x))
            if len(x) > args.limit:
                share = float(np.sum(x[args.limit :] ** 2) / max(np.sum(x**2), 1e-12))
                long.append({"file": f.name, "s": round(len(x) / RATE, 2), "tail": round(share, 4)})
        n = np.asarray(lengths) / RATE
        print(
            json.dumps(
                {
                    "set": name,
                    "sounds": len(lengths),
                    "median_s": round(float(np.median(n)), 2),
                    "p90_s": round(float(np.percentile(n, 90)), 2),
                    "longer": len(long),
                    "tail_energy_max": max((x["tail"] for x in long), default=0.0),
                    "longer_sounds": sorted(long, key=lambda x: -x["tail"]),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
