#!/usr/bin/env python3
"""Soak: the real daemon under drop storms, slow copies, requests and kill -9; prints one JSON line.

    .venv/bin/python bench/soak.py [--quick] [--seed N] [--files N] [--slow N] [--kills N]
                                   [--requests N] [--keep DIR]

What it does (each step against the real ``python -m miragen daemon`` subprocess, a temporary
state folder and a simulated Mirage on a pseudo-terminal, ``miragen sim --pty --state``, that
outlives every daemon it serves):

1. drops the storm (``--files`` cycles in 4 classes, half by atomic rename, half written in
   place, some duplicates and bad files among them), starts ``--slow`` slow copies (written in
   pieces over a few seconds) and ``--requests`` request files, a few at a time;
2. ``--kills`` times: starts the daemon, waits until a job of the chosen phase (ingest, train,
   generate, deliver, in turn) is running, waits a random moment more and kills it with SIGKILL
   (new material keeps arriving in between, so every phase has work);
3. a last ``--until-idle`` run finishes the queue; then every invariant is checked.

JSON fields: ``inputs_tried`` (inputs dropped: audio files, bad files, requests),
``kills_survived`` (SIGKILLs after which the queue finished), ``phase_hits`` (kills that landed
while a job of that kind ran), ``files_lost`` (inputs neither in the corpus nor in ``rejected/``:
must be 0), ``processed_twice`` (good inputs found both in the corpus and in ``rejected/``, or
twice in the corpus), ``duplicate_deliveries`` (deliveries recorded done more than once for one
request and route: must be 0), ``resent_after_kill`` (SysEx dumps the Mirage stored beyond one
per delivered request: a kill after the ACK and before the record resends the same bytes to the
same wavesample; informational), ``rejected_orphans`` (an entry of ``rejected/`` without its
reason file or the reverse), ``crashes`` (daemon processes that exited by themselves with an
error, plus Python tracebacks in the log: must be 0), ``unfinished_jobs``,
``failed_without_reason``, ``requests`` (states), ``partial_out_files`` and ``bad_out_files`` (a
visible file in ``out/`` with a temporary name, or a ``.pcm`` that breaks the Mirage rules: must
be 0), ``mirage_mismatch``
(delivered bytes not in the simulated Mirage's memory), ``train_resumes`` (restarts that resumed
training from a checkpoint), ``stale_temp_files`` (hidden ``.NAME.XXXX.part`` files of atomic
writes cut by a kill: never visible under a real name, never cleaned up; informational),
``peak_rss_mb`` (highest VmHWM of any daemon process), ``peak_worker_rss_mb`` (highest VmHWM of
the child processes it starts for training and generation, sampled every 0.2 s),
``orphan_workers`` (child processes still alive 10 s after their daemon was killed: must be 0),
``seconds``,
and ``ok`` (every must-be-zero figure is zero). Exit status 0 when ``ok``.

``--quick`` (300 files, 5 slow copies, 10 kills, 6 requests) finishes in about 1.5 minutes; the
full run (2,000 files, 20 slow copies, 100 kills, 24 requests) in about 15 minutes on 2 cores.

The harness (``tests/harness.py``) is the one the reliability tests use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import PHASES, Harness  # noqa: E402  (the tests' harness, by path)

CLASSES = ("bass", "lead", "pad", "organ")


def soak(
    root: Path,
    *,
    files: int,
    slow: int,
    kills: int,
    n_requests: int,
    seed: int,
    train_seconds: float = 4.0,
    final_timeout: float = 600.0,
) -> dict[str, Any]:
    t0 = time.monotonic()
    # slow-paced dumps (32-byte chunks, 20 ms apart) so that a kill can land inside a delivery;
    # a checkpoint every 3 steps so that a kill inside training has one to resume from
    h = Harness(
        root,
        seed=seed,
        train_seconds=train_seconds,
        route="both",
        config={
            "deliver": {"chunk_size": 32, "chunk_gap_ms": 20.0},
            "train": {"checkpoint_every": 3},
        },
    )
    rng = h.rng
    try:
        # material arrives in waves between the kills, so that every phase keeps having work
        waves = max(1, kills // 2)
        per_wave = [files // (waves + 1)] * (waves + 1)
        per_wave[0] += files - sum(per_wave)
        n = 0

        def drop_wave(count: int) -> None:
            nonlocal n
            for _ in range(count):
                cls = CLASSES[n % len(CLASSES)]
                h.drop_good(f"{cls}/c{n:05d}.pcm")
                n += 1
            h.drop_bad(f"bad-{n}.wav", b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "WAV")
            h.drop_bad(f"{CLASSES[0]}/silent-{n}.pcm", b"\x80" * 512, "silent")

        drop_wave(per_wave[0])
        slow_left = slow
        req_left = n_requests
        for k in range(kills):
            phase = PHASES[k % len(PHASES)]
            if k // 2 + 1 < len(per_wave) and k % 2 == 0:
                drop_wave(per_wave[k // 2 + 1])
            if slow_left and rng.random() < 0.5:
                h.slow_copy(
                    f"{CLASSES[slow_left % len(CLASSES)]}/slow-{slow_left}.pcm",
                    pieces=12,
                    gap=0.15,
                    reopen=bool(slow_left % 2),
                )
                slow_left -= 1
            if req_left and phase in ("generate", "deliver"):
                h.drop_request(f"req-{n_requests - req_left:03d}", CLASSES[req_left % len(CLASSES)])
                req_left -= 1
            h.kill_during(phase, timeout=30.0, extra_delay=0.5)
        while slow_left:
            h.slow_copy(
                f"{CLASSES[slow_left % len(CLASSES)]}/slow-{slow_left}.pcm", pieces=12, gap=0.15
            )
            slow_left -= 1
        while req_left:
            h.drop_request(f"req-{n_requests - req_left:03d}", CLASSES[req_left % len(CLASSES)])
            req_left -= 1
        rc = h.finish(timeout=final_timeout)
        res = h.check()
        res["final_exit_status"] = rc
    finally:
        h.close()
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["seed"] = seed
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="300 files, 5 slow copies, 10 kills, 6 requests"
    )
    ap.add_argument("--files", type=int)
    ap.add_argument("--slow", type=int)
    ap.add_argument("--kills", type=int)
    ap.add_argument("--requests", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--keep",
        metavar="DIR",
        help="work in DIR and keep it (default: a temporary folder, removed)",
    )
    a = ap.parse_args(argv)
    size = (
        {"files": 300, "slow": 5, "kills": 10, "n_requests": 6}
        if a.quick
        else {"files": 2000, "slow": 20, "kills": 100, "n_requests": 24}
    )
    for key, val in (
        ("files", a.files),
        ("slow", a.slow),
        ("kills", a.kills),
        ("n_requests", a.requests),
    ):
        if val is not None:
            size[key] = val
    if a.keep:
        res = soak(Path(a.keep), seed=a.seed, **size)
    else:
        with tempfile.TemporaryDirectory(prefix="miragen-soak-") as tmp:
            res = soak(Path(tmp), seed=a.seed, **size)
    print(json.dumps(res, sort_keys=True))
    return 0 if res["ok"] and res["final_exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
