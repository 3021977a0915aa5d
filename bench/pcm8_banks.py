"""The AKWF banks as 8-bit PCM: a folder of bank folders, named as in ``../shared/data/akwf``,
each holding links to the ``../shared/data/pcm8`` files of its waveforms (matched by file name:
``AKWF_0101.wav`` is ``AKWF_0101.pcm``), for ``bench/quality.py --folder``.

    .venv/bin/python bench/pcm8_banks.py --out DIR [--akwf ../shared/data/akwf] \
        [--pcm8 ../shared/data/pcm8]

``../shared/data/pcm8`` groups the same waveforms otherwise (the numbered banks in one folder,
the basic waveforms loose), so its own folders are not the banks the WAV runs judged. Prints
one JSON line: banks, waveforms linked, and per bank the WAVs that have no 8-bit twin. Running
it again on the same ``DIR`` adds what is missing and changes nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SHARED = Path(
    os.environ.get("MIRAGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def link_banks(akwf: Path, pcm8: Path, out: Path) -> dict:
    """Link every WAV bank of ``akwf`` into ``out`` as 8-bit files of ``pcm8``."""
    by_stem: dict[str, Path] = {}
    for p in sorted(pcm8.rglob("*.pcm")):
        if p.stem in by_stem:
            raise SystemExit(f"{p}: a second file named {p.name} ({by_stem[p.stem]})")
        by_stem[p.stem] = p.resolve()
    banks, linked, missing = 0, 0, {}  # missing: per bank, WAVs without a twin
    for bank in sorted(b for b in akwf.iterdir() if b.is_dir()):
        wavs = sorted(bank.glob("*.wav"))
        dest = out / bank.name
        dest.mkdir(parents=True, exist_ok=True)
        banks += 1
        for w in wavs:
            src = by_stem.get(w.stem)
            if src is None:
                missing[bank.name] = missing.get(bank.name, 0) + 1
                continue
            link = dest / f"{w.stem}.pcm"
            if not (link.is_symlink() or link.exists()):
                link.symlink_to(src)
            linked += 1
    return {
        "banks": banks,
        "linked": linked,
        "missing": missing,
        "out": str(out),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--akwf", type=Path, default=SHARED / "akwf")
    p.add_argument("--pcm8", type=Path, default=SHARED / "pcm8")
    args = p.parse_args(argv)
    for folder in (args.akwf, args.pcm8):
        if not folder.is_dir():
            p.error(f"{folder}: no such folder")
    print(json.dumps(link_banks(args.akwf, args.pcm8, args.out), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
