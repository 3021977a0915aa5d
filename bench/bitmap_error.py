"""Measure the bitmap representation's round-trip error (the figures in docs/audio.md).

Prints one JSON object, one entry per case, each with n (waves), rms_lsb, mean_abs_lsb,
p99_abs_lsb and snr_db (signal RMS about 0x80 over error RMS):

- ``pcm8_exact``: every 256-byte cycle of ../shared/data/pcm8 at size 256 (exact path);
- ``pcm8_blur*``: a tenth of them with the picture blurred (robust path);
- ``akwf600_*``: a fifth of the AKWF WAVs (600 samples) → 256 columns → 600 samples;
- ``oneshot{512,4096}_*``: the first N samples of each converted drum one-shot → 256 → N,
  and ``*_ideal``: the same through exact block means (what the averaging alone costs).

    .venv/bin/python bench/bitmap_error.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))

from miragen.audio.bitmap import _columns, _interp, decode, encode, wave_bytes  # noqa: E402
from miragen.audio.convert import convert_file  # noqa: E402


def _stats(errs: list[np.ndarray], sigs: list[np.ndarray]) -> dict:
    e = np.concatenate(errs).astype(np.float64)
    s = np.concatenate(sigs).astype(np.float64)
    mse = float(np.mean(e**2))
    return {
        "n": len(errs),
        "rms_lsb": round(mse**0.5, 2),
        "mean_abs_lsb": round(float(np.mean(np.abs(e))), 2),
        "p99_abs_lsb": round(float(np.percentile(np.abs(e), 99)), 1),
        "snr_db": round(float(10 * np.log10(np.mean(s**2) / mse)), 1) if mse > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    from scipy.ndimage import gaussian_filter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    data = Path(ap.parse_args(argv).data)
    out: dict[str, dict] = {}

    pcm = sorted((data / "pcm8").rglob("*.pcm"))
    cycles = [np.fromfile(f, np.uint8) for f in pcm]
    errs = [decode(encode(u)).astype(int) - u for u in cycles]
    out["pcm8_exact"] = _stats(errs, [u - 128.0 for u in cycles])
    for sigma in (0.7, 1.5):
        sub = cycles[::10]
        errs = [
            decode(gaussian_filter(encode(u).astype(float), sigma)).astype(int) - u for u in sub
        ]
        out[f"pcm8_blur{sigma}"] = _stats(errs, [u - 128.0 for u in sub])

    akwf = [wave_bytes(str(f)) for f in sorted((data / "akwf").glob("AKWF_*/*.wav"))[::5]]
    for interp in ("linear", "cubic"):
        errs = [decode(encode(u), len(u), interp).astype(int) - u for u in akwf]
        out[f"akwf600_{interp}"] = _stats(errs, [u - 128.0 for u in akwf])

    shots = [
        np.frombuffer(convert_file(f, dither="none").data, np.uint8)
        for f in sorted((data / "oneshots" / "sonic-pi").glob("*.wav"))
    ]
    for n in (512, 4096):
        waves = [w[:n] for w in shots if len(w) >= n and np.std(w[:n].astype(float)) > 4]
        sigs = [u - 128.0 for u in waves]
        for interp in ("linear", "cubic"):
            errs = [decode(encode(u), n, interp).astype(int) - u for u in waves]
            out[f"oneshot{n}_{interp}"] = _stats(errs, sigs)
        ideal = [np.rint(_interp(_columns(u.astype(float), 256), n, "cubic")) - u for u in waves]
        out[f"oneshot{n}_cubic_ideal"] = _stats(ideal, sigs)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
