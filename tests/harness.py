"""The reliability harness: the real daemon on a temporary state folder, driven as a user would.

:class:`Harness` writes a configuration, starts ``python -m miragen daemon`` as a subprocess
(and a simulated Mirage on a pseudo-terminal, ``miragen sim --pty``, that outlives every daemon
it serves), drops files, slow copies and request files, kills the daemon at chosen moments,
watches its memory (:class:`RssWatch`) and checks every invariant of the state folder
(:meth:`Harness.check`). The reliability tests (``test_crash_restart.py``, ``test_storm.py``,
``test_hostile.py``, ``test_hostile_transport.py``) and the soak benchmark (``bench/soak.py``)
use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(
    os.environ,
    PYTHONUNBUFFERED="1",
    OMP_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    OPENBLAS_NUM_THREADS="1",
)
PHASES = ("ingest", "train", "generate", "deliver")
TEMP_SUFFIXES = (".part", ".tmp", ".crdownload", "~")


# ------------------------------------------------------------------------------ inputs
def cycle(rng: random.Random) -> bytes:
    """One 256-byte single cycle, 8 random harmonics, Mirage 8-bit (1..255), never silent."""
    h = [rng.gauss(0, 1) / (1 + k) for k in range(8)]
    ph = [rng.uniform(0, 6.283) for _ in range(8)]
    x = [
        sum(h[k] * math.sin(2 * math.pi * (k + 1) * i / 256 + ph[k]) for k in range(8))
        for i in range(256)
    ]
    peak = max(abs(v) for v in x) or 1.0
    return bytes(min(255, max(1, round(128 + 120 * v / peak))) for v in x)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (training and generation run in child processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                out += kids
                todo += kids
        except (OSError, ValueError):
            continue
    return out


class RssWatch:
    """Samples VmHWM/VmRSS of a process (and the peak of its child processes) every ``every``
    seconds until it exits."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every = pid, every
        self.hwm_kb = self.rss_kb = self.child_hwm_kb = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        self.hwm_kb = max(self.hwm_kb, _status_kb(self.pid, "VmHWM"))
        for child in _children(self.pid):
            self.child_hwm_kb = max(self.child_hwm_kb, _status_kb(child, "VmHWM"))
        self.rss_kb = _status_kb(self.pid, "VmRSS") or self.rss_kb

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)


# ------------------------------------------------------------------------------ the harness
class Harness:
    """A state folder, its config, a simulated Mirage on a pty, and the daemon's lifecycle."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int = 0,
        train_seconds: float = 2.0,
        route: str = "both",
        sim: bool = True,
        sim_faults: tuple[str, ...] = (),
        config: dict[str, dict[str, Any]] | None = None,
        triggers: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state = self.root / "state"
        self.inbox = self.state / "inbox"
        self.log = self.root / "daemon.log"
        self.seed = seed
        self.rng = random.Random(seed)
        self.env = dict(ENV, **(env or {}))
        self.good: dict[str, str] = {}  # sha256 -> original name: must end in the corpus, once
        self.data: dict[str, bytes] = {}  # sha256 -> bytes of the good inputs
        self.dups: dict[
            str, list[str]
        ] = {}  # sha256 -> further names the same bytes were dropped under
        self.bad: dict[
            str, str
        ] = {}  # original name (relative to inbox/) -> reason fragment: must end in rejected/
        self.requests: dict[
            str, dict[str, Any]
        ] = {}  # request name -> request (must end done or failed)
        self.inputs_tried = 0
        self.kills = 0
        self.phase_hits: Counter[str] = Counter()
        self.phase_missed: list[str] = []  # "phase: what ran instead" for each kill that missed
        self.crashes = 0
        self.peak_rss_kb = 0
        self.peak_worker_rss_kb = 0
        self.orphans = 0  # child processes still running 10 s after their daemon was killed
        self.threads: list[threading.Thread] = []
        self.sim_proc: subprocess.Popen | None = None
        self.sim_state = self.root / "sim.json"
        self._slave_fd: int | None = None
        self._slot = 0
        transport = "sim"
        if sim:
            transport = "serial:" + self.start_sim(sim_faults)
        self.config_sections: dict[str, dict[str, Any]] = {
            "paths": {"state": str(self.state)},
            "train": {
                "seconds": int(max(1, train_seconds)),
                "debounce_s": 0.3,
                "device": "cpu",
                "threads": 1,
                "checkpoint_every": 10,
            },
            # no candidate gate: its verdict on a 2-second model is not what these runs test, and a
            # request it empties would fail for a reason unrelated to crashes and restarts
            "generate": {"count": 1, "oversample": 2, "gate": False},
            "daemon": {"settle_s": 0.3, "rescan_s": 2.0, "max_file_mb": 1, "watchdog_s": 30.0},
            "deliver": {"transport": transport, "route": route, "tries": 2, "ack_margin_s": 1.0},
            "logging": {"level": "INFO"},
        }
        for sec, body in (config or {}).items():
            self.config_sections.setdefault(sec, {}).update(body)
        self.triggers = triggers or []
        self.config = self.write_config()
        for d in (self.inbox, self.state / "requests"):
            d.mkdir(parents=True, exist_ok=True)

    # -- setup ----------------------------------------------------------------------------
    def write_config(self) -> Path:
        lines = []
        for sec, body in self.config_sections.items():
            lines.append(f"[{sec}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
        for t in self.triggers:
            lines.append("[[trigger]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in t.items()]
        path = self.root / "miragen.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_sim(self, faults: tuple[str, ...] = ()) -> str:
        args = [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(self.sim_state)]
        for f in faults:
            args += ["--fault", f]
        with open(self.root / "sim.log", "ab") as err:
            self.sim_proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=self.env)
        path = self.sim_proc.stdout.readline().decode().strip()
        if not path.startswith("/dev/"):
            raise RuntimeError(
                f"miragen sim --pty did not start: {(self.root / 'sim.log').read_text()[-2000:]}"
            )
        # hold the slave open ourselves (never read): the pty keeps working while no daemon runs
        self._slave_fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        return path

    # -- inputs ---------------------------------------------------------------------------
    def _place(self, rel: str, data: bytes, how: str) -> None:
        dest = self.inbox / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if how == "rename":  # what a careful copy tool does: write elsewhere, rename in
            tmp = self.root / f".drop-{self.rng.getrandbits(48):012x}"
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        elif how == "dotpart":  # rsync style: hidden temp name in the folder, then rename
            tmp = dest.with_name(f".{dest.name}.{self.rng.getrandbits(24):06x}")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        else:  # written in place in one go
            dest.write_bytes(data)

    def drop_good(self, rel: str, data: bytes | None = None, how: str | None = None) -> str:
        data = data if data is not None else cycle(self.rng)
        h = sha(data)
        if h in self.good:
            raise ValueError("test input collision")
        self.good[h] = rel
        self.data[h] = data
        self.inputs_tried += 1
        self._place(rel, data, how or self.rng.choice(["rename", "direct", "dotpart"]))
        return h

    def drop_bad(self, rel: str, data: bytes, reason: str = "", how: str = "rename") -> None:
        self.bad[rel] = reason
        self.inputs_tried += 1
        self._place(rel, data, how)

    def drop_duplicate(self, rel: str) -> None:
        """The bytes of an earlier good input under another name: exactly one of the names ends
        in the corpus, every other one in rejected/ as a duplicate (whichever is claimed first)."""
        h = self.rng.choice(sorted(self.data))
        self.dups.setdefault(h, []).append(rel)
        self.inputs_tried += 1
        self._place(rel, self.data[h], "rename")

    def slow_copy(self, rel: str, pieces: int = 8, gap: float = 0.3, reopen: bool = False) -> str:
        """Write a new good file in ``pieces`` over ``pieces × gap`` seconds (a slow network
        copy)."""
        data = b"".join(cycle(self.rng) for _ in range(pieces))
        h = sha(data)
        self.good[h] = rel
        self.data[h] = data
        self.inputs_tried += 1
        dest = self.inbox / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        step = len(data) // pieces

        def run() -> None:
            if reopen:
                for k in range(pieces):
                    with open(dest, "ab") as fh:
                        fh.write(data[k * step : (k + 1) * step])
                    time.sleep(gap)
            else:
                with open(dest, "wb") as fh:
                    for k in range(pieces):
                        fh.write(data[k * step : (k + 1) * step])
                        fh.flush()
                        time.sleep(gap)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)
        return h

    def wait_copies(self) -> None:
        for t in self.threads:
            t.join()
        self.threads.clear()

    def next_slot(self) -> tuple[str, int]:
        half = ("lower", "upper")[(self._slot // 8) % 2]
        number = self._slot % 8 + 1
        self._slot += 1
        return half, number

    def drop_request(
        self, name: str, cls: str, *, as_json: bool | None = None, **fields: Any
    ) -> dict[str, Any]:
        half, number = self.next_slot()
        req = {"class": cls, "half": half, "wavesample": number, **fields}
        self.requests[name] = req
        self.inputs_tried += 1
        as_json = self.rng.random() < 0.5 if as_json is None else as_json
        folder = self.state / "requests"
        tmp = self.root / f".req-{name}"
        if as_json:
            tmp.write_text(json.dumps(req))
            os.replace(tmp, folder / f"{name}.json")
        else:
            tmp.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in req.items()))
            os.replace(tmp, folder / f"{name}.toml")
        return req

    # -- the daemon -----------------------------------------------------------------------
    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "miragen", "daemon", "--config", str(self.config), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(self.env, **(env or {})),
                cwd=str(self.root),
            )
        proc.rss = RssWatch(proc.pid)  # type: ignore[attr-defined]
        return proc

    def _reap(self, proc: subprocess.Popen, killed: bool) -> int:
        rc = proc.wait()
        w = getattr(proc, "rss", None)
        if w is not None:
            w.stop()
            self.peak_rss_kb = max(self.peak_rss_kb, w.hwm_kb)
            self.peak_worker_rss_kb = max(self.peak_worker_rss_kb, w.child_hwm_kb)
        if not killed and rc != 0:
            self.crashes += 1
        return rc

    def db(self) -> sqlite3.Connection | None:
        path = self.state / "miragen.db"
        if not path.exists():
            return None
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    def running_kinds(self) -> set[str]:
        """Kinds of the jobs running now; ``ingest`` also while ingest jobs wait (a storm is
        being worked through: each ingest job runs for milliseconds only)."""
        try:
            c = self.db()
            if c is None:
                return set()
            try:
                kinds = {r[0] for r in c.execute("SELECT kind FROM jobs WHERE state='running'")}
                if c.execute(
                    "SELECT 1 FROM jobs WHERE kind='ingest' AND state='queued' LIMIT 1"
                ).fetchone():
                    kinds.add("ingest")
                return kinds
            finally:
                c.close()
        except sqlite3.Error:
            return set()

    def checkpoints(self) -> dict[str, float]:
        """Engine checkpoint files under models/ and their mtimes."""
        folder = self.state / "models"
        return {str(p): p.stat().st_mtime for p in folder.rglob("*.pt")} if folder.is_dir() else {}

    def kill_during(
        self,
        phase: str | None,
        timeout: float = 40.0,
        extra_delay: float = 0.8,
        before_kill: Callable[[], None] | None = None,
    ) -> bool:
        """Start the daemon, wait until a ``phase`` job runs (or a random moment when ``phase`` is
        None or never comes), wait a random moment more, SIGKILL it. True when the phase was hit."""
        proc = self.start()
        hit = False
        t0 = time.monotonic()
        if phase is None:
            time.sleep(self.rng.uniform(0.3, 6.0))
        else:
            before = self.checkpoints()
            wall0 = time.time()
            while time.monotonic() - t0 < timeout and proc.poll() is None:
                if phase in self.running_kinds():
                    if phase != "train":
                        hit = True
                        break
                    # training: wait for a checkpoint of this run, so that the restart can resume
                    if any(m > wall0 and before.get(p) != m for p, m in self.checkpoints().items()):
                        hit = True
                        break
                time.sleep(0.02)
            time.sleep(self.rng.uniform(0.0, extra_delay))
            running = self.running_kinds()
            if not (hit and phase in running):
                waited = time.monotonic() - t0
                self.phase_missed.append(
                    f"{phase} after {waited:.1f} s{' (it had begun)' if hit else ''}: "
                    f"running {sorted(running)}"
                )
            hit = hit and phase in running
        if before_kill:
            before_kill()
        killed = proc.poll() is None
        kids = _children(proc.pid) if killed else []
        if killed:
            proc.kill()
            self.kills += 1
            if hit:
                self.phase_hits[phase] += 1  # type: ignore[index]
        self._reap(proc, killed)
        self._check_orphans(kids)
        return hit

    def _check_orphans(self, pids: list[int], grace_s: float = 10.0) -> None:
        """Child processes must die with the daemon; survivors are counted, then ended."""

        def alive(pid: int) -> bool:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
            except (OSError, IndexError):
                return False

        deadline = time.monotonic() + grace_s
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:
            if alive(pid):
                self.orphans += 1
                try:
                    os.kill(pid, signal.SIGKILL)  # a child process our daemon started, left running
                except OSError:
                    pass

    def finish(self, timeout: float = 300.0) -> int:
        """Run ``--until-idle`` to the end of the queue; returns its exit status."""
        self.wait_copies()
        proc = self.start("--until-idle", "--max-seconds", str(int(timeout)))
        try:
            proc.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            self._reap(proc, True)
            self.crashes += 1
            return -9
        return self._reap(proc, False)

    def quiet(self, kinds: tuple[str, ...] = ("ingest", "request")) -> bool:
        """Nothing of ``kinds`` queued or running, no input waiting in the drop folders or in
        processing/, no copy still being written."""
        if any(t.is_alive() for t in self.threads):
            return False
        st = self.state
        for d in ("inbox", "requests", "processing"):
            folder = st / d
            if folder.is_dir() and any(
                (p.is_file() or p.is_symlink())
                and not p.name.startswith(".")
                and not p.name.endswith(TEMP_SUFFIXES)
                for p in folder.rglob("*")
            ):
                return False
        c = self.db()
        if c is None:
            return False
        try:
            marks = ",".join("?" * len(kinds))
            n = c.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('queued','running') "
                f"AND kind IN ({marks})",
                kinds,
            ).fetchone()[0]
        except sqlite3.Error:
            return False
        finally:
            c.close()
        return n == 0

    def wait_for(
        self,
        cond: Callable[[], bool],
        timeout: float,
        what: str,
        proc: subprocess.Popen | None = None,
        stable_s: float = 0.0,
    ) -> None:
        """Poll ``cond`` until it holds (for ``stable_s`` seconds); raise AssertionError on timeout
        or when ``proc`` exits."""
        t0 = time.monotonic()
        since: float | None = None
        while time.monotonic() - t0 < timeout:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(
                    f"the daemon exited ({proc.returncode}) while waiting for {what}\n"
                    f"{self.log_tail()}"
                )
            if cond():
                since = since or time.monotonic()
                if time.monotonic() - since >= stable_s:
                    return
            else:
                since = None
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tail()}"
        )

    def stop(self, proc: subprocess.Popen, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            self._reap(proc, True)
            self.crashes += 1
            return -9, time.monotonic() - t0
        return self._reap(proc, False), time.monotonic() - t0

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def close(self) -> None:
        for t in self.threads:
            t.join(timeout=30)
        if self.sim_proc is not None and self.sim_proc.poll() is None:
            self.sim_proc.terminate()
            try:
                self.sim_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sim_proc.kill()
                self.sim_proc.wait()
        if self._slave_fd is not None:
            os.close(self._slave_fd)
            self._slave_fd = None

    # -- the checks -----------------------------------------------------------------------
    def record(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.state / "out" / "requests" / f"{name}.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def rejected(self) -> dict[str, str]:
        """printable(original) -> reason, from the reason file beside each entry of ``rejected/``.

        An entry without a reason file, or a reason file without its entry, is listed under the
        key ``"__orphans__"`` (space-separated)."""
        out: dict[str, str] = {}
        folder = self.state / "rejected"
        if not folder.is_dir():
            return out
        names = {
            n for n in os.listdir(folder) if not n.startswith(".")
        }  # hidden: temp files of killed writes
        inputs = {n for n in names if n + ".reason.txt" in names}
        reasons = {n + ".reason.txt" for n in inputs}
        orphans = sorted(names - inputs - reasons)
        for n in inputs:
            text = (folder / (n + ".reason.txt")).read_text(errors="replace")
            fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
            out[fields.get("file", "")] = fields.get("reason", "")
        if orphans:
            out["__orphans__"] = " ".join(orphans)
        return out

    def check(self, ignore_kinds: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every invariant of the state folder; ``ignore_kinds``: job kinds that may still wait
        (e.g. ``train`` when its debounce was pushed out of the way on purpose)."""
        from miragen.audio.mirage8 import check_mirage8
        from miragen.errors import MiragenError
        from miragen.service.state import printable

        st = self.state
        corpus = (
            [p for p in (st / "corpus").rglob("*") if p.is_file() and not p.name.startswith(".")]
            if (st / "corpus").is_dir()
            else []
        )
        corpus_hashes = Counter(sha(p.read_bytes()) for p in corpus if p.suffix != ".img")
        rejected = self.rejected()
        lost: list[str] = []
        wrongly_rejected: dict[str, str] = {}
        processed_twice: list[str] = [h for h, n in corpus_hashes.items() if n > 1]
        for h, rel in self.good.items():
            names = [rel] + self.dups.get(h, [])
            rej = [n for n in names if printable(n) in rejected]
            if corpus_hashes[h] == 0:
                if rej:
                    wrongly_rejected.update({n: rejected[printable(n)] for n in rej})
                lost += [n for n in names if n not in rej]
            elif len(rej) == len(names):
                processed_twice.append(rel)  # in the corpus and yet every name rejected
            elif len(rej) < len(names) - 1:
                lost += [n for n in names if n not in rej][1:]
        lost += [rel for rel in self.bad if printable(rel) not in rejected]
        leftovers = [
            str(p.relative_to(st))
            for d in ("inbox", "processing", "requests")
            if (st / d).is_dir()
            for p in (st / d).rglob("*")
            if (p.is_file() or p.is_symlink())
            and not p.name.startswith(".")
            and not p.name.endswith(TEMP_SUFFIXES)
        ]
        res: dict[str, Any] = {}
        c = self.db()
        unfinished = failed_no_reason = dup_deliveries = 0
        deliveries_done: list[tuple[str, str]] = []
        if c is not None:
            try:
                marks = ",".join("?" * len(ignore_kinds)) or "''"
                unfinished = c.execute(
                    "SELECT count(*) FROM jobs WHERE state IN ('queued','running') "
                    f"AND kind NOT IN ({marks})",
                    ignore_kinds,
                ).fetchone()[0]
                failed_no_reason = c.execute(
                    "SELECT count(*) FROM jobs WHERE state='failed' AND trim(last_error)=''"
                ).fetchone()[0]
                dup_deliveries = c.execute(
                    "SELECT count(*) FROM (SELECT request, route, count(*) AS n FROM deliveries "
                    "WHERE state='done' GROUP BY request, route HAVING n > 1)"
                ).fetchone()[0]
                deliveries_done = [
                    tuple(r)
                    for r in c.execute(
                        "SELECT request, route FROM deliveries WHERE state='done' ORDER BY finished"
                    )
                ]
            finally:
                c.close()
        req_states: Counter[str] = Counter()
        req_problems: list[str] = []
        done_sysex: dict[tuple[str, int], bytes] = {}  # slot -> bytes of the LAST delivery to it
        sysex_bytes: dict[str, tuple[tuple[str, int], bytes]] = {}
        for name, req in self.requests.items():
            rec = self.record(name)
            state = rec.get("state", "missing")
            req_states[state] += 1
            if state not in ("done", "failed"):
                req_problems.append(f"{name}: state {state}")
            elif state == "failed" and not str(rec.get("reason", "")).strip():
                req_problems.append(f"{name}: failed without a reason")
            elif state == "done":
                for part, r in (rec.get("delivery") or {}).items():
                    if not r.get("ok"):
                        req_problems.append(f"{name}: done but {part} not ok")
                    if part == "sysex" and r.get("ok"):
                        pcm = next((f for f in rec.get("files", []) if f.endswith(".pcm")), None)
                        if pcm:
                            sysex_bytes[name] = (
                                (req["half"], int(req["wavesample"])),
                                (st / pcm).read_bytes(),
                            )
        for (
            request,
            route,
        ) in deliveries_done:  # in the order they finished: the last one stays in the Mirage
            if route == "sysex" and request in sysex_bytes:
                slot, data = sysex_bytes[request]
                done_sysex[slot] = data
        partial, bad_out = [], []
        out = st / "out"
        if out.is_dir():
            for p in out.rglob("*"):
                if not p.is_file() or p.name.startswith("."):
                    continue
                if p.name.endswith(TEMP_SUFFIXES):
                    partial.append(str(p.relative_to(st)))
                elif p.suffix == ".pcm":
                    try:
                        check_mirage8(p.read_bytes())
                    except MiragenError as exc:
                        bad_out.append(f"{p.relative_to(st)}: {exc}")
                elif p.suffix == ".img" and p.stat().st_size != 450560:
                    bad_out.append(f"{p.relative_to(st)}: {p.stat().st_size} bytes")
                elif p.suffix == ".json":
                    try:
                        json.loads(p.read_text())
                    except ValueError:
                        bad_out.append(f"{p.relative_to(st)}: not JSON")
        mismatch, resent = [], 0
        if self.sim_state.exists() and done_sysex:
            from miragen.transport.simulated import read_state

            sim = read_state(self.sim_state)
            for (half, n), data in done_sysex.items():
                if sim["wavesample_data"][half][n][: len(data)] != data:
                    mismatch.append(f"{half} {n}")
            sysex_done = sum(1 for _r, route in deliveries_done if route == "sysex")
            resent = max(0, sim["counters"].get("dumps_stored", 0) - sysex_done)
        log_text = self.log.read_text(errors="replace") if self.log.exists() else ""
        tracebacks = log_text.count("Traceback (most recent call last)")
        res.update(
            inputs_tried=self.inputs_tried,
            kills_survived=self.kills if not unfinished else 0,
            phase_hits=dict(self.phase_hits),
            phase_missed=self.phase_missed,
            files_lost=len(lost),
            lost=lost[:10],
            wrongly_rejected=dict(list(wrongly_rejected.items())[:10]),
            processed_twice=len(processed_twice),
            leftovers=len(leftovers),
            leftover_names=leftovers[:10],
            corpus_files=sum(corpus_hashes.values()),
            rejected_files=len([k for k in rejected if k != "__orphans__"]),
            rejected_orphans=rejected.get("__orphans__", "").split()[:10],
            unfinished_jobs=unfinished,
            failed_without_reason=failed_no_reason,
            requests=dict(req_states),
            request_problems=req_problems[:10],
            duplicate_deliveries=dup_deliveries,
            resent_after_kill=resent,
            mirage_mismatch=mismatch,
            partial_out_files=len(partial),
            bad_out_files=bad_out[:10],
            crashes=self.crashes + tracebacks,
            tracebacks_in_log=tracebacks,
            train_resumes=log_text.count("resumed from"),
            stale_temp_files=sum(1 for p in st.rglob(".*.part")),
            peak_rss_mb=round(self.peak_rss_kb / 1024, 1),
            peak_worker_rss_mb=round(self.peak_worker_rss_kb / 1024, 1),
            orphan_workers=self.orphans,
        )
        res["ok"] = not (
            self.orphans
            or res["files_lost"]
            or res["processed_twice"]
            or wrongly_rejected
            or res["leftovers"]
            or res["unfinished_jobs"]
            or res["failed_without_reason"]
            or req_problems
            or dup_deliveries
            or mismatch
            or partial
            or bad_out
            or res["crashes"]
            or res["rejected_orphans"]
        )
        return res


# ------------------------------------------------------------------------------ the soak
