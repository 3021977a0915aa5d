"""Idle footprint of the daemon and drop-to-corpus latency; prints one JSON object.

    .venv/bin/python bench/daemon.py [--idle-seconds 10] [--drops 20] [--settle 1.0] [--polling]
        [--train [--requests 5]]

Starts the real daemon (``python -m miragen daemon``) on a temporary state folder with the
simulated transport and no MIDI input, and training pushed out of the way
(``train.debounce_s`` = 1 day) so that the figures are those of a daemon that has not trained
yet (torch is not imported until a train or generate job runs; ``torch_loaded`` checks it).

- ``idle_rss_mb``: VmRSS after start-up, and again after the drops (``rss_after_drops_mb``);
- ``idle_cpu_percent``: CPU time (user + system, all threads) over ``--idle-seconds`` of idling,
  as a percentage of one core; ``idle_wakeups_per_s``: context switches of all threads per
  second over the same window (a busy-polling loop shows thousands);
- ``drop_to_corpus_s``: for each of ``--drops`` files, the time from its atomic rename into
  ``inbox/bench/`` to the appearance of its content-addressed copy in ``corpus/bench/``
  (min / median / p95 / max). It includes ``daemon.settle_s`` (``--settle``), which dominates.

With ``--train`` (a train + generate cycle): 12 cycles are dropped into ``inbox/trained/`` and
trained for 3 s, then ``--requests`` request files ask for one sound each (route disk), one after
the other. Training and generation run in child processes (``worker_peak_rss_mb``: the highest
VmRSS of any of them, sampled every 0.2 s), so the daemon's own RSS stays small:
``rss_after_training_mb`` and ``train_generate_cycle.idle_rss_after_cycle_mb`` (3 s after the
last request) must be ≤ 150 MB with torch not loaded in the daemon (exit status 1 otherwise).
``request_to_done_s``: request file renamed into ``requests/`` → record ``done`` (includes
``settle_s``); ``worker_median_s``: what each request's child process spent before generating:
``start_s`` (Python and miragen start), ``torch_s`` (importing torch), ``model_s`` (loading the
model), then ``generate_s`` (drawing, gating, writing the candidates). The sum of the first
three is the latency a request pays for the child process; ``warm_children`` counts the requests
whose child was started ahead (``daemon.warm_s``, ``--warm-s``; it had Python, miragen and torch
imported already) and ``warm_child_rss_mb`` is what that child holds while it waits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TICKS = os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


def _switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


class _ChildPeak:
    """Highest VmRSS of any child (child process) of ``pid``, sampled every 0.2 s."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for c in _children(self.pid):
                try:
                    self.peak = max(self.peak, _rss_mb(c))
                except OSError:
                    pass

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return round(self.peak, 1)


def _torch_loaded(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--drops", type=int, default=20)
    ap.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="daemon.settle_s (default: the shipped default, 1.0)",
    )
    ap.add_argument(
        "--polling", action="store_true", help="use the polling observer (daemon.polling)"
    )
    ap.add_argument(
        "--train",
        action="store_true",
        help="then train one class (3 s budget) and serve --requests requests from it; "
        "report the idle RSS after "
        "training (rss_after_training_mb) and after the requests, and each request's latency",
    )
    ap.add_argument(
        "--requests", type=int, default=5, help="requests served after training (with --train)"
    )
    ap.add_argument(
        "--warm-s",
        type=float,
        default=None,
        help="daemon.warm_s (default: the shipped default; 0: every job starts its own child)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="miragen-bench-") as tmp:
        state = Path(tmp) / "state"
        config = Path(tmp) / "miragen.toml"
        config.write_text(
            f'[paths]\nstate = "{state}"\n[train]\n'
            f"debounce_s = {2.0 if args.train else 86400.0}\nseconds = 3\n"
            f"[daemon]\nsettle_s = {args.settle}\nrescan_s = 60.0\n"
            f"polling = {'true' if args.polling else 'false'}\n"
            + (f"warm_s = {args.warm_s}\n" if args.warm_s is not None else "")
            + '[deliver]\ntransport = "sim"\n'
        )
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "miragen", "daemon", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not (state / "status.json").exists():
                if proc.poll() is not None:
                    print(proc.stderr.read().decode(), file=sys.stderr)
                    return 1
                time.sleep(0.05)
            start_s = time.monotonic() - t0
            time.sleep(2.0)
            rss0 = _rss_mb(proc.pid)
            c0, s0, w0 = _cpu_s(proc.pid), _switches(proc.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            c1, s1, w1 = _cpu_s(proc.pid), _switches(proc.pid), time.monotonic()
            idle_cpu = 100.0 * (c1 - c0) / (w1 - w0)
            wakeups = (s1 - s0) / (w1 - w0)

            rng = np.random.default_rng(0)
            lat: list[float] = []
            staging = state / "staging"
            staging.mkdir()
            (state / "inbox" / "bench").mkdir(parents=True, exist_ok=True)
            for i in range(args.drops):
                data = bytes(rng.integers(1, 256, 256, dtype=np.uint8))
                sha = hashlib.sha256(data).hexdigest()
                (staging / f"d{i}.pcm").write_bytes(data)
                target = state / "corpus" / "bench" / f"{sha[:24]}.pcm"
                t = time.monotonic()
                os.replace(staging / f"d{i}.pcm", state / "inbox" / "bench" / f"d{i}.pcm")
                while not target.exists():
                    if time.monotonic() - t > 60 + args.settle:
                        raise SystemExit(f"drop {i} never reached the corpus")
                    time.sleep(0.002)
                lat.append(time.monotonic() - t)
            rss1 = _rss_mb(proc.pid)
            torch = _torch_loaded(proc.pid)
            waiting = [_rss_mb(c) for c in _children(proc.pid)]  # the warm child, if any
            rss_trained = None
            cycle: dict = {}
            if args.train:
                from miragen.corpus.synth import default_corpus

                waves = next(iter(default_corpus(0).values()))[:12]
                peak = _ChildPeak(proc.pid)
                (state / "inbox" / "trained").mkdir()
                for i, w in enumerate(waves):
                    u8 = np.clip(
                        np.round(128 + 120 * w / max(1e-9, float(np.max(np.abs(w))))), 1, 255
                    ).astype(np.uint8)
                    (staging / f"t{i}.pcm").write_bytes(u8.tobytes())
                    os.replace(staging / f"t{i}.pcm", state / "inbox" / "trained" / f"t{i}.pcm")
                t = time.monotonic()
                while not list((state / "models" / "trained").glob("v0001/model.json")):
                    if time.monotonic() - t > 300:
                        raise SystemExit("training never finished")
                    time.sleep(0.2)
                cycle["train_s"] = round(time.monotonic() - t, 2)
                time.sleep(3.0)
                rss_trained = round(_rss_mb(proc.pid), 1)
                # then requests: each one's generate job starts a child process
                # (python, torch, the model)
                records = state / "out" / "requests"
                lat_req, timings = [], []
                for i in range(args.requests):
                    (staging / f"r{i}.toml").write_text(
                        'class = "trained"\ncount = 1\nroute = "disk"\n'
                    )
                    t = time.monotonic()
                    os.replace(staging / f"r{i}.toml", state / "requests" / f"r{i}.toml")
                    rec: dict = {}
                    while rec.get("state") not in ("done", "failed"):
                        if time.monotonic() - t > 300:
                            raise SystemExit(f"request r{i} never finished")
                        time.sleep(0.05)
                        try:
                            rec = json.loads((records / f"r{i}.json").read_text())
                        except (FileNotFoundError, ValueError):
                            rec = {}
                    if rec["state"] != "done":
                        raise SystemExit(f"request r{i} failed: {rec.get('reason')}")
                    lat_req.append(time.monotonic() - t)
                    timings.append(rec.get("worker_timing", {}))
                time.sleep(3.0)
                cycle.update(
                    requests=args.requests,
                    request_to_done_s={
                        "min": round(min(lat_req), 2),
                        "median": round(statistics.median(lat_req), 2),
                        "max": round(max(lat_req), 2),
                    },
                    worker_median_s={
                        k: round(statistics.median(float(x.get(k, 0.0)) for x in timings), 3)
                        for k in ("start_s", "torch_s", "model_s", "generate_s")
                    },
                    warm_children=sum(bool(x.get("warm")) for x in timings),
                    worker_peak_rss_mb=peak.stop(),
                    idle_rss_after_cycle_mb=round(_rss_mb(proc.pid), 1),
                    torch_loaded_after_cycle=_torch_loaded(proc.pid),
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        lat.sort()
        out = {
            "bench": "daemon",
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "observer": "polling" if args.polling else "inotify",
            "settle_s": args.settle,
            "start_to_ready_s": round(start_s, 3),
            "idle_rss_mb": round(rss0, 1),
            "rss_after_drops_mb": round(rss1, 1),
            "torch_loaded": torch,
            "warm_s": args.warm_s,
            "warm_child_rss_mb": round(max(waiting), 1) if waiting else None,
            "rss_after_training_mb": rss_trained,
            **({"train_generate_cycle": cycle} if cycle else {}),
            "idle_seconds": args.idle_seconds,
            "idle_cpu_percent": round(idle_cpu, 3),
            "idle_wakeups_per_s": round(wakeups, 2),
            "drops": args.drops,
            "drop_to_corpus_s": {
                "min": round(lat[0], 3),
                "median": round(statistics.median(lat), 3),
                "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3),
                "max": round(lat[-1], 3),
            },
            "exit_code": proc.returncode,
        }
    print(json.dumps(out, indent=2))
    ok = rss0 <= 150 and not torch and proc.returncode == 0
    if cycle:
        ok = (
            ok
            and rss_trained is not None
            and rss_trained <= 150
            and cycle["idle_rss_after_cycle_mb"] <= 150
            and not cycle["torch_loaded_after_cycle"]
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
