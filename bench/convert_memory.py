"""Peak memory of ``miragen convert`` on inputs whose cost used to follow the header, not the file.

Issue 14, class 1: the whole input used to be resampled before it was cut to the Mirage's
length, so a 100 KB WAV whose header says 1 Hz asked for 21.9 GiB, a 30 MB 8 kHz WAV took 1.76 GB
and a 10-minute WAV 651 MB. Now the reader decodes only what the output can hold (plus the
resampling filter's reach) and the rest is counted, not kept.

Each case runs ``miragen convert`` in a fresh Python process and reads its high-water mark
(``VmHWM`` of /proc/self/status) at the end; the baseline is the same command on a 0.1 s WAV in
the same run (the interpreter, numpy, scipy, soundfile and Pillow), so ``over_baseline_mb`` is
what the input itself costs. Prints one JSON object. Target: ``peak_mb`` ≤ 200 for every case.

    python bench/convert_memory.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = (
    "import sys\n"
    "from miragen.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('HWM', int(hwm.split()[1]), rc)\n"
)


def wav(path: Path, pcm: bytes, rate: int, bits: int) -> Path:
    width = bits // 8
    path.write_bytes(
        struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF",
            36 + len(pcm),
            b"WAVE",
            b"fmt ",
            16,
            1,
            1,
            rate,
            rate * width,
            width,
            bits,
            b"data",
            len(pcm),
        )
        + pcm
    )
    return path


def make_inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(0.1 * 44100))
    sine16 = (12000 * np.sin(2 * np.pi * 440 * t / 44100)).astype("<i2").tobytes()
    out = {"baseline_0.1s_44k": wav(folder / "short.wav", sine16, 44100, 16)}
    out["header_1hz_100kb"] = wav(
        folder / "hz1.wav", rng.integers(1, 256, 100_000).astype(np.uint8).tobytes(), 1, 8
    )
    out["header_1khz_4mb_67min"] = wav(
        folder / "hz1000.wav", rng.integers(1, 256, 4_000_000).astype(np.uint8).tobytes(), 1000, 8
    )
    t = np.arange(600 * 44100)
    out["ten_minutes_44k_16bit"] = wav(
        folder / "tenmin.wav",
        (12000 * np.sin(2 * np.pi * 440 * t / 44100)).astype("<i2").tobytes(),
        44100,
        16,
    )
    t = np.arange(15_000_000)
    out["wav_30mb_8k_16bit"] = wav(
        folder / "big8k.wav",
        (12000 * np.sin(2 * np.pi * 440 * t / 8000)).astype("<i2").tobytes(),
        8000,
        16,
    )
    return out


def run(path: Path, out: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, "convert", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    secs = time.monotonic() - t0
    line = [x for x in r.stdout.splitlines() if x.startswith("HWM")]
    kb, rc = (int(line[0].split()[1]), int(line[0].split()[2])) if line else (0, r.returncode)
    err = [x for x in r.stderr.splitlines() if "error" in x or "warning" in x]
    return {
        "input_bytes": path.stat().st_size,
        "exit": rc,
        "peak_mb": round(kb / 1024, 1),
        "seconds": round(secs, 2),
        "message": err[0] if err else "",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", metavar="DIR", help="make the inputs here and keep them")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="miragen-convmem-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        inputs = make_inputs(folder)
        rows = {name: run(p, folder / "out") for name, p in inputs.items()}
    base = rows["baseline_0.1s_44k"]["peak_mb"]
    for r in rows.values():
        r["over_baseline_mb"] = round(r["peak_mb"] - base, 1)
    worst = max(r["peak_mb"] for r in rows.values())
    print(
        json.dumps(
            {
                "bench": "convert_memory",
                "target_peak_mb": 200,
                "worst_peak_mb": worst,
                "pass": worst <= 200,
                "cases": rows,
            },
            indent=1,
        )
    )
    return 0 if worst <= 200 else 1


if __name__ == "__main__":
    sys.exit(main())
