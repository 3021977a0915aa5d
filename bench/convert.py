"""Benchmark: convert every AKWF WAV under ../shared/data/akwf to Mirage 8-bit, in process.

Measures what ``miragen convert`` does per file — decode (soundfile), resample 44.1 kHz →
29,411 Hz, quantise, pad, and write ``.pcm`` + ``.wav`` atomically through the same
``OutputWriter`` as the command (temp files, one filesystem flush per 256 conversions,
renames) — and, with ``--png``, the waveform picture too. ``--per-file-fsync`` writes with
``write_outputs`` instead (fsync + rename for every file, as the daemon does for one file).
Prints one JSON object: files, failed, seconds, files_per_s, cpu_seconds, files_per_cpu_s
(this process's CPU time: what the machine's other load does not change), peak_rss_mb,
load_avg_1min (at the start), png, writer, rate.

    .venv/bin/python bench/convert.py [--png] [--per-file-fsync] [--data DIR] [--limit N]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from miragen.audio.convert import OutputWriter, convert_file, write_outputs  # noqa: E402
from miragen.errors import InputError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default=str(ROOT.parent / "shared" / "data" / "akwf"),
        help="folder searched for *.wav",
    )
    ap.add_argument("--png", action="store_true", help="also render the .png of each file")
    ap.add_argument(
        "--per-file-fsync", action="store_true", help="write each file with fsync (write_outputs)"
    )
    ap.add_argument("--limit", type=int, default=0, help="convert only the first N files (0: all)")
    ap.add_argument("--out", help="output folder (default: a temporary folder, removed afterwards)")
    ap.add_argument("--rate", type=int, default=29411)
    args = ap.parse_args(argv)

    files = sorted(Path(args.data).rglob("*.wav"))
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(json.dumps({"error": f"no WAV files under {args.data}"}))
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="miragen-bench-"))
    convert_file(files[0], rate=args.rate)  # warm-up: imports and the cached resampling filter
    failed = 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    c0 = time.process_time()
    writer = OutputWriter(out, args.rate, png=args.png)
    for i, f in enumerate(files):
        try:
            prepared = convert_file(f, rate=args.rate)
        except InputError:
            failed += 1
            continue
        if args.per_file_fsync:
            write_outputs(prepared, out, f"{i:05d}_{f.stem}", args.rate, png=args.png)
        else:
            writer.add(prepared, f"{i:05d}_{f.stem}")
    writer.close()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "files": len(files),
                "failed": failed,
                "seconds": round(seconds, 3),
                "files_per_s": round(len(files) / seconds, 1),
                "cpu_seconds": round(cpu, 3),
                "files_per_cpu_s": round(len(files) / cpu, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "load_avg_1min": round(load, 2) if load is not None else None,
                "png": bool(args.png),
                "writer": "per-file-fsync" if args.per_file_fsync else "batched (OutputWriter)",
                "rate": args.rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
