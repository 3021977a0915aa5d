"""Serial pacing benchmark: how fast do SysEx bytes leave `SerialTransport` at 31,250 baud?

A pty has no speed limit of its own, so this measures our own wall-clock pacing: a reader
thread timestamps every arrival on the master side of a pty while `SerialTransport` writes a
wavesample dump into the slave side. Then (unless --no-e2e) a whole `deliver_wavesample` with
read-back against `miragen sim --pty --fault slow` (true 31,250-baud speed both ways) running as
a separate process.

Prints one JSON object. Must hold: never_faster is true (no arrival ahead of the 3,125 bytes/s
wire by more than the timing jitter) and ratio_to_floor ≥ 0.98 with no throttling configured.

    .venv/bin/python bench/deliver.py [--pages 16] [--chunks 16,256] [--no-e2e]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import tty

from miragen.mirage import sysex as S
from miragen.transport.base import MIDI_BYTES_PER_S
from miragen.transport.deliver import deliver_wavesample
from miragen.transport.serial import SerialTransport

JITTER_S = 0.02  # reader wake-up jitter allowed when checking "never faster" (2 cores, loaded)


def measure(nbytes: int, chunk_size: int, data: bytes) -> dict:
    master, slave = os.openpty()
    tty.setraw(slave)
    arrivals: list[tuple[float, int]] = []

    def reader() -> None:
        got = 0
        while got < nbytes:
            chunk = os.read(master, 65536)
            arrivals.append((time.monotonic(), len(chunk)))
            got += len(chunk)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        with SerialTransport(os.ttyname(slave), chunk_size=chunk_size, chunk_gap_s=0.0) as t:
            t0 = time.monotonic()
            t.send(data)
            send_s = time.monotonic() - t0
        th.join(30)
    finally:
        os.close(master)
        os.close(slave)
    t_first = arrivals[0][0]
    before = 0
    worst_ahead = float("-inf")
    for t, k in arrivals:
        # a UART model: every byte before this arrival must have left the wire by now
        worst_ahead = max(worst_ahead, before - MIDI_BYTES_PER_S * (t - t_first))
        before += k
    span = arrivals[-1][0] - t_first
    last = arrivals[-1][1]
    # the wire carried every byte before the last arrival between the first and last arrival
    achieved = (nbytes - last) / span if span > 0 else float("inf")
    return {
        "chunk_size": chunk_size,
        "bytes": nbytes,
        "arrivals": len(arrivals),
        "send_s": round(send_s, 4),
        "wire_floor_s": round(nbytes / MIDI_BYTES_PER_S, 4),
        "achieved_bytes_per_s": round(achieved, 1),
        "ratio_to_floor": round(achieved / MIDI_BYTES_PER_S, 4),
        "send_ratio": round((nbytes / MIDI_BYTES_PER_S) / send_s, 4),
        "worst_ahead_bytes": round(worst_ahead, 1),
        "worst_ahead_s": round(worst_ahead / MIDI_BYTES_PER_S, 4),
        "never_faster": worst_ahead <= MIDI_BYTES_PER_S * JITTER_S,
    }


def end_to_end(data: bytes) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "miragen", "sim", "--pty", "--fault", "slow"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        with SerialTransport(path) as t:
            res = deliver_wavesample(t, data, half="lower", number=1, verify=True, ack_margin_s=2.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    d = res.to_dict()
    # dump out + read-back in, both at 31,250 baud (the sim runs at true speed)
    d["overhead_ratio"] = round(res.elapsed_s / (2 * res.wire_floor_s), 4)
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pages",
        type=int,
        default=16,
        help="wavesample pages in the dump (default 16: 8,200 bytes, 2.6 s)",
    )
    ap.add_argument(
        "--chunks",
        default="16,256",
        help="chunk sizes to measure, comma-separated (default 16,256)",
    )
    ap.add_argument(
        "--no-e2e", action="store_true", help="skip the end-to-end delivery to `miragen sim --pty`"
    )
    args = ap.parse_args()
    wave = bytes((i % 254) + 1 for i in range(256 * args.pages))
    dump = S.encode_wavesample_dump(wave)
    out: dict = {
        "bench": "deliver",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "floor_bytes_per_s": MIDI_BYTES_PER_S,
        "pacing": [],
    }
    for c in (int(x) for x in args.chunks.split(",")):
        out["pacing"].append(measure(len(dump), c, dump))
    out["min_ratio_to_floor"] = min(p["ratio_to_floor"] for p in out["pacing"])
    out["never_faster"] = all(p["never_faster"] for p in out["pacing"])
    if not args.no_e2e:
        out["end_to_end"] = end_to_end(wave)
    print(json.dumps(out, indent=2))
    return 0 if out["never_faster"] and out["min_ratio_to_floor"] >= 0.98 else 1


if __name__ == "__main__":
    sys.exit(main())
