"""Transport faults under the running daemon, with systemd's watchdog listening.

The daemon delivers over ``serial:`` into a pseudo-terminal whose other end is a simulated
Mirage run by this test, so its faults can be switched between requests (one daemon for the
whole matrix). The daemon runs with ``NOTIFY_SOCKET`` pointing at a datagram socket this test
binds and ``WATCHDOG_USEC`` set, as under systemd. For each fault: the request ends ``done`` (a
fault that clears on retry) or ``failed`` with the reason in its record after its retries; the
daemon stays up, and the ``WATCHDOG=1`` pings never pause for long.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import socket
import tempfile
import threading
import time
import tty
from pathlib import Path

import harness as soak
import pytest
from miragen.transport.base import LinkLost
from miragen.transport.simulated import Faults, SimulatedMirage

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


class PtyMirage:
    """A SimulatedMirage behind a pty master, served by a thread; faults switchable at run time."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.sim = SimulatedMirage()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.link_up = True
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def set_faults(self, specs: list[str]) -> None:
        with self.lock:
            self.sim.faults = Faults.parse(specs)
            self.sim.counters["bytes_received"] = 0  # 'disconnect=N' counts from now

    def _run(self) -> None:
        out = bytearray()
        while not self._stop.is_set() and self.link_up:
            r, w, _ = select.select([self.master], [self.master] if out else [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if data:
                    with self.lock:
                        try:
                            for reply in self.sim.feed(data):
                                out += reply
                        except LinkLost:
                            self.link_up = False  # the cable is pulled: the pty goes away
                            os.close(self.master)
                            os.close(self.slave)
                            return
                else:
                    time.sleep(0.01)
            if w and out:
                try:
                    k = os.write(self.master, bytes(out))
                    del out[:k]
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        if self.link_up:
            os.close(self.master)
            os.close(self.slave)


class Notify:
    """The systemd side of sd_notify: a bound datagram socket recording every message."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="mn", dir="/tmp")  # AF_UNIX paths are short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode("utf-8", "replace").splitlines():
                self.messages.append((time.monotonic(), line))

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if m == "WATCHDOG=1"]

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


# fault spec, expected end state, a word the failure reason must hold
MATRIX = [  # nak=1 and noise=200 end done: a clean delivery after a retry, and through junk
    (["nak"], "failed", "NAK"),
    (["drop"], "failed", "timed out"),
    (["silent"], "failed", "timed out"),
    (["nak=1"], "done", ""),
    (["noise=200"], "done", ""),
    (["disconnect=300"], "failed", ""),
]


def test_fault_matrix_retries_then_fails_clearly_and_the_watchdog_keeps_pinging(tmp_path):
    mirage = PtyMirage()
    notify = Notify()
    h = soak.Harness(
        tmp_path / "h",
        seed=31,
        sim=False,
        route="sysex",
        config={
            "deliver": {"transport": f"serial:{mirage.path}", "tries": 2, "ack_margin_s": 1.0},
            "train": {"seconds": 2, "debounce_s": 0.3},
        },
        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"},
    )
    try:
        for i in range(8):
            h.drop_good(f"a/c{i}.pcm")
        proc = h.start()
        h.wait_for(lambda: any(m == "READY=1" for _t, m in notify.messages), 60, "READY=1", proc)
        h.wait_for(
            lambda: (h.state / "models" / "a" / "v0001" / "model.json").exists(),
            120,
            "the first model",
            proc,
        )
        t_faults = time.monotonic()
        results = {}
        for k, (faults, want, word) in enumerate(MATRIX):
            mirage.set_faults(faults)
            name = f"fault-{k}"
            h.drop_request(name, "a", as_json=True)
            h.wait_for(
                lambda name=name: h.record(name).get("state") in ("done", "failed"),
                90,
                f"request {name} ({faults})",
                proc,
            )
            rec = h.record(name)
            tries = rec.get("delivery", {}).get("sysex", {}).get("tries")
            results[" ".join(faults) or "none"] = (rec["state"], rec.get("reason", ""), tries)
            assert rec["state"] == want, (faults, rec)
            if want == "failed":
                assert rec["reason"].strip() and word in rec["reason"], (faults, rec["reason"])
                if faults[0] in ("nak", "drop", "silent"):
                    assert rec["delivery"]["sysex"]["tries"] == 2, rec
            else:
                sysex = rec["delivery"]["sysex"]
                assert sysex["ok"], rec
                if faults and faults[0] == "nak=1":
                    assert sysex["tries"] == 2, rec
            assert proc.poll() is None, h.log_tail()
        t_end = time.monotonic()
        # the transport health shows the lost link; the daemon still ingests
        h.drop_good("a/after.pcm")
        h.wait_for(lambda: h.quiet(), 60, "ingest after the faults", proc)
        status = json.loads((h.state / "status.json").read_text())
        rc, stop_s = h.stop(proc)
        assert rc == 0 and stop_s < 10
        pings = [t for t in notify.pings() if t >= t_faults - 1]
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        span = t_end - t_faults
        print(
            f"fault matrix: {results}; {len(pings)} pings over {span:.0f} s, "
            f"longest gap {max(gaps):.2f} s; "
            f"transport {status['transport']}"
        )
        assert len(pings) >= span / 2, (len(pings), span)
        assert max(gaps) < 5.0, max(gaps)
        assert any(m == "STOPPING=1" for _t, m in notify.messages)
        assert any(m.startswith("STATUS=") for _t, m in notify.messages)
        assert "Traceback" not in h.log.read_text(errors="replace")
    finally:
        h.close()
        notify.close()
        mirage.close()
