"""Benchmark: ``miragen sysex decode`` of a large .syx file of valid messages.

Builds a file of about ``--mb`` MB of 0x06 wavesample dumps with the encoder (``--pages``
pages each, random sample bytes 0x01..0xFF, fixed seed), or of small messages (``--kind
parameter``: 9-byte 0x0E parameter changes; ``--kind ack``: 5-byte ACKs), then runs
``python -m miragen sysex decode FILE [--json]`` in a child process, output to /dev/null, and
measures its wall time and peak RSS (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``).
Prints one JSON object: time_s, peak_rss_mb, bytes, messages, kind, pages, json, rc.

    .venv/bin/python bench/sysex_decode.py [--mb 10] [--pages 255] [--kind wavesample]
                                           [--json] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from miragen.mirage import sysex as sx  # noqa: E402


def build(
    path: Path, mb: float, pages: int, kind: str = "wavesample", seed: int = 14
) -> tuple[int, int]:
    """Write the file; returns (bytes, messages)."""
    rng = random.Random(seed)
    target = int(mb * 1_000_000)
    size = 0
    count = 0
    with open(path, "wb") as fh:
        while size < target:
            if kind == "wavesample":
                data = bytes(rng.randrange(1, 256) for _ in range(pages * sx.PAGE))
                msg = sx.encode_wavesample_dump(data)
            elif kind == "parameter":
                number, param, value = rng.randrange(16), rng.randrange(128), rng.randrange(256)
                msg = sx.encode_wavesample_parameter(False, number, param, value)
            else:
                msg = sx.encode_ack()
            fh.write(msg)
            size += len(msg)
            count += 1
    return size, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="size of the file in MB (default 10)")
    ap.add_argument(
        "--pages", type=int, default=255, help="pages per wavesample dump, 1..255 (default 255)"
    )
    ap.add_argument(
        "--kind",
        choices=("wavesample", "parameter", "ack"),
        default="wavesample",
        help="what the file holds: wavesample dumps (default), or many small messages "
        "(9-byte 0x0E parameter changes, 5-byte ACKs)",
    )
    ap.add_argument(
        "--json", action="store_true", help="time `sysex decode --json` instead of the text listing"
    )
    ap.add_argument(
        "--keep", metavar="FILE", help="write the .syx here and keep it (default: a temporary file)"
    )
    args = ap.parse_args(argv)

    tmp = None
    if args.keep:
        path = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="miragen-bench-")
        path = Path(tmp.name) / "bench.syx"
    try:
        nbytes, messages = build(path, args.mb, args.pages, args.kind)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "daemon"))
        cmd = [sys.executable, "-m", "miragen", "sysex", "decode", str(path)]
        if args.json:
            cmd.append("--json")
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as null:
            proc = subprocess.run(cmd, stdout=null, stderr=subprocess.PIPE, env=env, check=False)
        rc = proc.returncode
        elapsed = time.perf_counter() - t0
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        print(
            json.dumps(
                {
                    "time_s": round(elapsed, 3),
                    "peak_rss_mb": round(rss_kb / 1024, 1),
                    "bytes": nbytes,
                    "messages": messages,
                    "kind": args.kind,
                    "pages": args.pages if args.kind == "wavesample" else None,
                    "json": args.json,
                    "rc": rc,
                }
            )
        )
        return 0 if rc == 0 else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
