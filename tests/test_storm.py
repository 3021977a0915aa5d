"""Drop storms against the real daemon: every file is processed exactly once.

CI size: 300 files dropped at once (three ways: atomic rename, written in place, hidden temp
name then rename) into four classes, plus 5 slow copies (some held open with pauses longer than
``daemon.settle_s``, some reopened for each piece), duplicates and bad files among them. Then
the daemon is stopped, more files arrive while it is down, and it restarts with the polling
observer (network shares) to find them. The 2,000-file storm with 20 slow copies is in
``bench/soak.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import harness as soak
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


CLASSES = ("bass", "lead", "pad", "organ")


def test_storm_of_300_plus_5_slow_copies_each_processed_once(tmp_path):
    h = soak.Harness(
        tmp_path,
        seed=11,
        sim=False,
        config={"train": {"debounce_s": 86400.0}, "daemon": {"settle_s": 0.5, "rescan_s": 4.0}},
    )
    try:
        proc = h.start()
        h.wait_for(lambda: (h.state / "status.json").exists(), 60, "the daemon to start", proc)
        t0 = time.monotonic()
        for i in range(300):
            h.drop_good(f"{CLASSES[i % 4]}/storm-{i:03d}.pcm" if i % 10 else f"top-{i:03d}.pcm")
        for i in range(3):  # held open, pauses longer than settle_s: must wait for the close
            h.slow_copy(f"{CLASSES[i]}/slow-open-{i}.pcm", pieces=6, gap=0.8)
        for i in range(2):  # closed and reopened for each piece, quicker than settle_s
            h.slow_copy(f"{CLASSES[i]}/slow-reopen-{i}.pcm", pieces=10, gap=0.15, reopen=True)
        for i in range(12):
            h.drop_duplicate(f"{CLASSES[i % 4]}/again-{i}.pcm")
        h.drop_bad("bass/broken.wav", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", "WAV")
        h.drop_bad("lead/silence.pcm", b"\x80" * 1024, "silent")
        h.drop_bad("empty.aiff", b"", "empty")
        h.wait_for(h.quiet, 150, "the storm to be filed", proc, stable_s=1.0)
        storm_s = time.monotonic() - t0
        rc, stop_s = h.stop(proc)
        assert rc == 0 and stop_s < 10, (rc, stop_s)
        res = h.check(ignore_kinds=("train",))
        assert res["ok"], json.dumps(res, indent=1)
        assert res["corpus_files"] == 305, res
        assert res["rejected_files"] == 12 + 3, res

        # files that arrive while the daemon is down are found at start, with the polling observer
        h.config_sections["daemon"]["polling"] = True
        h.write_config()
        for i in range(60):
            h.drop_good(f"{CLASSES[i % 4]}/offline-{i:02d}.pcm")
        proc = h.start()
        for i in range(30):
            h.drop_good(f"{CLASSES[i % 4]}/polled-{i:02d}.pcm")
        h.wait_for(h.quiet, 90, "the offline and polled files to be filed", proc, stable_s=2.5)
        rc, _ = h.stop(proc)
        assert rc == 0
        res = h.check(ignore_kinds=("train",))
        assert res["ok"], json.dumps(res, indent=1)
        assert res["corpus_files"] == 305 + 90, res
        print(
            f"storm of {h.inputs_tried} inputs filed in {storm_s:.1f} s; "
            f"peak RSS {res['peak_rss_mb']} MB"
        )
        assert res["peak_rss_mb"] < 150, res  # ingest never imports torch
    finally:
        h.close()
