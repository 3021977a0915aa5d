"""kill -9 the real daemon at chosen moments of ingest, training, generation and delivery.

Ten kills (the soak, ``bench/soak.py``, does a hundred): each one starts the daemon, waits until
a job of the phase runs (training: until the run has written a checkpoint), waits a random moment
more and sends SIGKILL. New material and requests keep arriving in between. A last
``--until-idle`` run must then leave:

- every input in the corpus (exactly once) or in ``rejected/`` with a reason file;
- every job done or failed with a reason; every request record ``done`` or ``failed`` (with a
  reason); nothing left in ``inbox/``, ``requests/`` or ``processing/``;
- no half-written file under a visible name in ``out/``, every ``.pcm`` within the Mirage rules;
- no delivery recorded twice, and the simulated Mirage (a separate process that outlives every
  daemon) holding each delivered wavesample;
- training resumed from its checkpoint after a kill inside it (the log says so, at a step > 0);
- no training or generation child process outlives its killed daemon by more than 10 s.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import harness as soak
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


KILLS = int(os.environ.get("MIRAGEN_CI_KILLS", "10"))
CLASSES = ("bass", "lead", "pad")


def test_kill9_ten_times_across_every_phase(tmp_path):
    h = soak.Harness(
        tmp_path,
        seed=5,
        train_seconds=4,
        route="both",
        config={
            "deliver": {"chunk_size": 32, "chunk_gap_ms": 20.0},
            "train": {"checkpoint_every": 3},
        },
    )
    try:
        n = 0

        def material(count: int) -> None:
            nonlocal n
            for _ in range(count):
                h.drop_good(f"{CLASSES[n % 3]}/c{n:04d}.pcm")
                n += 1

        material(24)
        h.drop_bad("junk.wav", b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "WAV")
        requests = 0
        order = [
            "train",
            "ingest",
            "generate",
            "deliver",
            "train",
            "deliver",
            "ingest",
            "generate",
            "train",
            "deliver",
        ]
        for k in range(KILLS):
            phase = order[k % len(order)]
            if phase in ("ingest", "train"):
                material(
                    30 if phase == "ingest" else 6
                )  # new material: an ingest storm, then a retrain
            if phase in ("generate", "deliver"):
                h.drop_request(f"req-{requests}", CLASSES[requests % 3])
                requests += 1
            if k == 3:
                h.slow_copy("lead/slow-a.pcm", pieces=10, gap=0.15)
                h.slow_copy("pad/slow-b.pcm", pieces=10, gap=0.15, reopen=True)
            # a delivery needs its class's model and its generation first: give it the time a
            # busy 2-core machine takes (two test workers share it)
            wait = 45.0 if phase in ("generate", "deliver") else 25.0
            h.kill_during(phase, timeout=wait, extra_delay=0.5)
        rc = h.finish(timeout=240)
        res = h.check()
        print(json.dumps({k: res[k] for k in ("phase_hits", "phase_missed")}))  # -s shows it
        assert rc == 0, h.log_tail()
        assert res["ok"], json.dumps(res, indent=1)
        assert h.kills == KILLS and res["kills_survived"] == KILLS
        # a job killed MAX_INTERRUPTS[kind] times in a row is failed on purpose (a poisonous input
        # must not crash-loop the daemon): the only acceptable reason for a request to fail here
        for i in range(requests):
            rec = h.record(f"req-{i}")
            assert rec["state"] == "done" or "interrupted too many times" in rec["reason"], rec
        assert res["requests"].get("done", 0) >= requests - 1, res
        # the phases that last long enough to be hit for sure
        assert (
            res["phase_hits"].get("train", 0) >= 1 and res["phase_hits"].get("deliver", 0) >= 1
        ), res
        steps = [int(s) for s in re.findall(r"resumed from \S+ at step (\d+)", h.log.read_text())]
        assert steps and max(steps) > 0, "training never resumed from a checkpoint after a kill"
        assert res["duplicate_deliveries"] == 0 and res["files_lost"] == 0 and res["crashes"] == 0
        assert res["orphan_workers"] == 0  # training/generation child processes die with the daemon
    finally:
        h.close()
