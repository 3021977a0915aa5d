"""The web process (``miragen web``): idle memory, page load time in Chromium, and the delay from
a delivery progress write to the page; prints one JSON object.

    .venv/bin/python bench/web.py [--port P] [--loads 10] [--events 50] [--interval 0.1]
        [--idle-seconds 3] [--no-browser] [--out bench/results/web.json]

Starts the real ``miragen web --config CFG --listen 127.0.0.1:PORT`` (loopback: no token) on a
temporary state folder made like a small real one: the daemon's database with three classes of
12 single cycles each, two finished requests with four candidates each (pictures and the gate's
figures), a training file with 20 snapshots; no daemon runs.

- ``rss``: after start-up and a few requests to every part of the API, ``--idle-seconds`` idle,
  the process's ``VmRSS`` and ``VmHWM`` (``/proc/PID/status``), again after the browser part
  (``after_browser_mb``, the page's event stream still open), which heavy libraries its memory
  maps (numpy, scipy, sklearn, torch), and its largest mappings by resident size
  (``/proc/PID/smaps``). ``imports``: what the memory goes to, from one-off interpreters:
  one that imports ``miragen.web.server`` alone (``web_server_alone``: RSS and which heavy
  modules are in ``sys.modules``), one that imports it in stages (``stages``: the RSS after each
  and its increase over the stage before), and the import chain through which each heavy module
  is first imported (``python -X importtime``). ``what_if_classing_not_imported``: the same
  imports (with watchdog's observer) when ``miragen.service.classing``, which ``service.status``
  and ``web.views`` import for its ``POOL`` name only, is replaced by a stub holding that name:
  what a light home for ``POOL`` would save. Target: idle RSS ≤ 80 MB.
- ``page_load_ms``: headless Chromium loads ``/`` ``--loads`` times (about:blank in between; the
  first load, with an empty cache, is reported apart as ``cold``). Navigation Timing
  (``performance.getEntriesByType('navigation')[0]``: ``responseEnd``,
  ``domContentLoadedEventEnd``, ``loadEventEnd``) and ``status_filled``: when the Status tab's
  daemon panel (``#daemon-facts``) first has children, ``performance.now()`` taken in a
  MutationObserver that a DevTools script installs before the page's own scripts run. All in ms
  from the navigation's start; warm loads as median and max. ``bytes_cold``: bytes transferred
  by the first load (page, script, style, API answers). No target: for the record.
- ``delivery_delay_ms``: with the page open on its Deliver tab, ``--events`` writes of
  ``live/delivery.json`` (the daemon's own writer, ``service.live.write_live``: a temporary file
  then ``os.replace``), ``--interval`` s apart, phase ``sending``, each with ``t`` = the time of
  the write and a distinct ``done``. A MutationObserver on ``#deliver-progress .label`` pushes
  ``Date.now()`` and the label's text (``… sending DONE / TOTAL bytes``) each time it changes;
  the delay of a write is that time − ``t`` (one machine, one clock). Median, p95, max; writes
  never seen are counted in ``missed``. ``sse_client_delay_ms`` is the baseline measured in the
  same run: a plain HTTP client in this process reading the same event stream, i.e. the server's
  share (inotify, the hub, uvicorn); the page's delay minus it is the browser's. Target: page
  delay ≤ 250 ms (p95).

``web_stop``: how the server stopped on SIGTERM (uvicorn shuts down, then re-raises the signal:
exit code -15; ``killed`` if it needed SIGKILL after 10 s); ``web_log_problems``: its log lines
that name an error or a traceback (none expected).

Exit status 0 when every target is met, 1 when one is missed, 2 when the bench cannot run
(chromium or chromedriver missing, the server does not start).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MIRAGEN = ROOT / ".venv" / "bin" / "miragen"
PYTHON = ROOT / ".venv" / "bin" / "python"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")
HEAVY = ("numpy", "scipy", "sklearn", "torch", "soundfile", "PIL")
RSS_TARGET_MB = 80.0
DELAY_TARGET_MS = 250.0
REQUEST = "bench-web"

# ---------------------------------------------------------------------------- page scripts
# Installed by DevTools before any script of the page runs (not subject to its CSP).
STATUS_PROBE = """
(() => {
  window.__bench = { statusFilled: null };
  const check = () => {
    const d = document.getElementById("daemon-facts");
    if (d && d.children.length && window.__bench.statusFilled === null) {
      window.__bench.statusFilled = performance.now();
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(document, { childList: true, subtree: true });
})();
"""
NAV_TIMING = """
const n = performance.getEntriesByType("navigation")[0];
if (!n || !n.loadEventEnd || !window.__bench || window.__bench.statusFilled === null) return null;
const res = performance.getEntriesByType("resource");
return { responseEnd: n.responseEnd, domContentLoadedEventEnd: n.domContentLoadedEventEnd,
         loadEventEnd: n.loadEventEnd, status_filled: window.__bench.statusFilled,
         bytes: n.transferSize + res.reduce((a, r) => a + (r.transferSize || 0), 0) };
"""
LABEL_PROBE = """
window.__del = [];
const lab = document.querySelector("#deliver-progress .label");
new MutationObserver(() => window.__del.push([Date.now(), lab.textContent]))
  .observe(lab, { childList: true, characterData: true, subtree: true });
return lab.textContent;
"""
# "sending DONE / TOTAL bytes", or "sent TOTAL bytes, waiting …" once every byte is out
LABEL = re.compile(r"(?:sending|sent) (\d+) (?:/ \d+ )?bytes")


# ---------------------------------------------------------------------------- helpers
def _proc_status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(val.split()[0]) / 1024, 1)
    return out


def _heavy_mapped(pid: int) -> dict[str, bool]:
    """Which heavy libraries the process has mapped (its shared objects in /proc/PID/maps)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {m: f"/site-packages/{m}/" in maps for m in HEAVY if m != "PIL"} | {
        "libtorch": "libtorch" in maps
    }


def _largest_mappings(pid: int, n: int = 8) -> list[dict[str, Any]]:
    """The process's resident memory by mapping (a file's mappings summed), largest first."""
    sizes: dict[str, int] = {}
    name = "[anonymous]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", parts[0]):
            name = parts[5] if len(parts) > 5 else "[anonymous]"
            if "/site-packages/" in name:  # e.g. numpy/_core/_multiarray_umath...so
                name = "site-packages/" + name.split("/site-packages/", 1)[1]
        elif parts and parts[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(parts[1])
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:n]
    return [{"mapping": k, "rss_mb": round(v / 1024, 1)} for k, v in top]


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {
        "n": len(v),
        "min": round(v[0], 1),
        "median": round(statistics.median(v), 1),
        "p95": round(v[min(len(v) - 1, int(0.95 * len(v)))], 1),
        "max": round(v[-1], 1),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(base + path, timeout=timeout) as r:
        return r.read()


# ---------------------------------------------------------------------------- the state folder
def make_state(root: Path) -> Path:
    """A small state folder as the daemon leaves it: classes, candidates, a training run."""
    from miragen.audio.render import waveform_png_bytes
    from miragen.fsutil import atomic_write_text
    from miragen.service.corpus_index import CorpusIndex
    from miragen.service.db import Database
    from miragen.service.state import StateDir

    sd = StateDir(root)
    sd.create()
    rng = np.random.default_rng(0)
    t = np.arange(256) / 256

    def cycle() -> bytes:
        k = np.arange(1, 17)[:, None]
        w = (rng.uniform(0, 1, (16, 1)) / k * np.sin(2 * np.pi * k * t + rng.uniform(0, 6))).sum(0)
        return np.clip(np.round(128 + 120 * w / np.abs(w).max()), 1, 255).astype(np.uint8).tobytes()

    db = Database(sd.db)
    with db.transaction() as conn:
        index = CorpusIndex(db)
        for cls in ("bass", "lead", "pad"):
            (sd.corpus / cls).mkdir()
            for i in range(12):
                data = cycle()
                sha = hashlib.sha256(data).hexdigest()
                (sd.corpus / cls / f"{sha[:24]}.pcm").write_bytes(data)
                index.add(sha, cls, f"corpus/{cls}/{sha[:24]}.pcm", f"{cls}-{i}.wav", conn)
    db.close()
    for n, cls in ((1, "bass"), (2, "lead")):
        name = f"{cls}-0{n}"
        out = sd.out / name
        out.mkdir()
        files, pcms, figures = [], [], {}
        for i in range(1, 5):
            data = cycle()
            stem = f"{cls}-00{i}"
            (out / f"{stem}.pcm").write_bytes(data)
            (out / f"{stem}.png").write_bytes(waveform_png_bytes(data, title=stem))
            pcms.append(f"out/{name}/{stem}.pcm")
            files += [f"out/{name}/{stem}.pcm", f"out/{name}/{stem}.png"]
            figures[f"{stem}.pcm"] = {"distance": round(float(rng.uniform(0.8, 1.6)), 2)}
        atomic_write_text(out / "generate.json", json.dumps({"figures": figures}))
        rec = {
            "name": name,
            "state": "done",
            "class": cls,
            "source": "web",
            "candidates": pcms,
            "files": files,
            "gate": "4 kept of 16",
            "updated": "2026-11-29T12:00:00Z",
        }
        atomic_write_text(sd.record_path(name), json.dumps(rec))
    snaps = [
        {"step": 250 * k, "run_s": 6.0 * k, "metrics": {"recall": 0.5 + 0.02 * k}, "passed": k > 8}
        for k in range(1, 21)
    ]
    training = {
        "class": "bass",
        "version": "v0001",
        "state": "done",
        "step": 5000,
        "run_s": 120.0,
        "budget_s": 600.0,
        "steps_per_s": 41.7,
        "snapshots": snaps,
        "model": "models/bass/v0001",
        "verdict": "pass",
        "error": "",
        "updated": time.time(),
    }
    atomic_write_text(sd.live_training("bass"), json.dumps(training))
    return sd.root


# ---------------------------------------------------------------------------- imports
STAGES = [
    ("python", []),
    (
        "starlette, sse_starlette, uvicorn",
        ["starlette.applications", "sse_starlette.sse", "uvicorn"],
    ),
    ("numpy", ["numpy"]),
    ("miragen.service.classing (beyond numpy)", ["miragen.service.classing"]),
    ("miragen.service.status (beyond classing)", ["miragen.service.status"]),
    ("miragen.web.server (the rest)", ["miragen.web.server"]),
    ("watchdog.observers (imported when the hub starts)", ["watchdog.observers"]),
]
STAGED = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
out = []
for label, mods in json.loads(sys.argv[1]):
    for m in mods:
        importlib.import_module(m)
    out.append([label, rss()])
print(json.dumps(out))
"""
ALONE = """
import json, sys
import miragen.web.server
rss = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:")][0]
print(json.dumps({"rss_mb": round(rss, 1), "in_sys_modules": {m: m in sys.modules for m in %r}}))
"""

# What if POOL came from a light module: miragen.service.classing replaced by a stub holding it
WITHOUT_CLASSING = """
import json, sys, types
import miragen.service
stub = types.ModuleType("miragen.service.classing")
stub.POOL = "unsorted"
sys.modules["miragen.service.classing"] = stub
import miragen.web.server, watchdog.observers
rss = [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:")][0]
print(json.dumps({"rss_mb": round(rss, 1), "numpy_loaded": "numpy" in sys.modules}))
"""


def _python(code: str, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PYTHON), *flags, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )


def import_chain(stderr: str, module: str) -> list[str] | None:
    """From ``python -X importtime`` output: the chain of imports through which ``module`` was
    first imported (outermost first)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.rstrip().endswith("imported package"):
            continue
        name = line.rsplit("|", 1)[1]
        rows.append((len(name) - len(name.lstrip()), name.strip()))
    for i, (depth, name) in enumerate(rows):
        if name == module:
            chain = [name]
            for d, n in rows[i + 1 :]:  # a parent is listed after its children, less indented
                if d < depth:
                    chain.append(n)
                    depth = d
            return chain[::-1]
    return None


def imports() -> dict[str, Any]:
    alone = json.loads(_python(ALONE % (HEAVY,)).stdout)
    staged = json.loads(_python(STAGED, json.dumps(STAGES)).stdout)
    stages, prev = [], 0.0
    for label, rss in staged:
        stages.append({"stage": label, "rss_mb": round(rss, 1), "adds_mb": round(rss - prev, 1)})
        prev = rss
    trace = _python("import miragen.web.server", flags=("-X", "importtime")).stderr
    chains = {m: import_chain(trace, m) for m, loaded in alone["in_sys_modules"].items() if loaded}
    what_if = json.loads(_python(WITHOUT_CLASSING).stdout)
    return {
        "web_server_alone": alone,
        "stages": stages,
        "chains": chains,
        "what_if_classing_not_imported": what_if,
    }


# ---------------------------------------------------------------------------- the event stream
class SseReader(threading.Thread):
    """Reads ``/api/events`` with a plain HTTP client; keeps (receive time, data) of each
    delivery event."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/api/events", headers={"accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"/api/events answered {self.resp.status}")
        self.got: list[tuple[float, dict]] = []
        self.hello = threading.Event()

    def run(self) -> None:
        kind = ""
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                now = time.time()
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if text.startswith("event:"):
                    kind = text[6:].strip()
                elif text.startswith("data:"):
                    if kind == "hello":
                        self.hello.set()
                    elif kind == "delivery":
                        self.got.append((now, json.loads(text[5:])))
        except Exception:  # the stream closed under it (close()), or broken: stop reading
            return

    def close(self) -> None:
        try:
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


# ---------------------------------------------------------------------------- the browser
def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in CHROME_ARGS:
        opts.add_argument(a)
    opts.add_argument("--window-size=1280,900")
    service = Service(CHROMEDRIVER, log_output=subprocess.DEVNULL)
    try:
        driver = webdriver.Chrome(service=service, options=opts)
    except BaseException:
        service.stop()
        raise
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": STATUS_PROBE})
    return driver, service


def _wait(fn, timeout: float, what: str, step: float = 0.01):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def page_loads(driver, base: str, loads: int) -> dict[str, Any]:
    runs = []
    for _ in range(loads):
        driver.get("about:blank")
        driver.get(base + "/")
        runs.append(_wait(lambda: driver.execute_script(NAV_TIMING), 15, "the status panel"))
    keys = ("responseEnd", "domContentLoadedEventEnd", "loadEventEnd", "status_filled")
    cold = {k: round(runs[0][k], 1) for k in keys}
    warm = {k: _stats([r[k] for r in runs[1:]]) for k in keys}
    for w in warm.values():
        for k in ("n", "min", "p95"):
            w.pop(k, None)
    return {"loads": loads, "cold": cold, "warm": warm, "bytes_cold": int(runs[0]["bytes"])}


def delivery_delay(driver, base: str, state: Path, port: int, n: int, every: float):
    from miragen.service.live import write_live

    driver.get("about:blank")
    driver.get(base + "/#deliver")
    _wait(lambda: driver.execute_script(NAV_TIMING), 15, "the status panel")
    _wait(
        lambda: (
            driver.execute_script("return document.getElementById('live').textContent") == "live"
        ),
        15,
        "the page's event stream",
    )
    driver.execute_script(LABEL_PROBE)
    sse = SseReader(port)
    sse.start()
    try:
        if not sse.hello.wait(10):
            raise RuntimeError("no hello on /api/events")
        total = max(8215, n)
        path = state / "live" / "delivery.json"
        writes = []
        start = time.monotonic() + 0.2
        for i in range(n):
            delay = start + i * every - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            done = (i + 1) * total // n
            t = time.time()
            write_live(
                path,
                {
                    "id": f"{REQUEST}:sysex",
                    "request": REQUEST,
                    "route": "sysex",
                    "phase": "sending",
                    "done": done,
                    "total": total,
                    "ok": None,
                    "error": "",
                    "t": t,
                    "seq": i + 1,
                },
            )
            writes.append((done, t))
        last = writes[-1][0]

        def arrived():
            seen = driver.execute_script("return window.__del")
            return any(LABEL.search(txt) and int(LABEL.search(txt)[1]) == last for _, txt in seen)

        try:
            _wait(arrived, 3.0, "the last event on the page", step=0.05)
        except RuntimeError:
            pass
        page_seen = driver.execute_script("return window.__del")
        time.sleep(0.2)
    finally:
        sse.close()
    page: dict[int, float] = {}
    for ms, txt in page_seen:
        m = LABEL.search(txt)
        if m:
            page.setdefault(int(m[1]), ms / 1000)
    client: dict[int, float] = {}
    for now, data in sse.got:
        if data.get("request") == REQUEST:
            client.setdefault(int(data.get("done", -1)), now)
    page_ms = [1000 * (page[d] - t) for d, t in writes if d in page]
    client_ms = [1000 * (client[d] - t) for d, t in writes if d in client]
    return {
        "events": n,
        "interval_s": every,
        "delivery_delay_ms": _stats(page_ms) | {"missed": n - len(page_ms)},
        "sse_client_delay_ms": _stats(client_ms) | {"missed": n - len(client_ms)},
    }


# ---------------------------------------------------------------------------- main
def _stop(proc: subprocess.Popen | None) -> dict[str, Any] | None:
    """SIGTERM (uvicorn shuts down, then re-raises the signal: exit code -15), SIGKILL after
    10 s."""
    if proc is None:
        return None
    t, killed = time.monotonic(), False
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = True
    return {
        "exit_code": proc.returncode,
        "seconds": round(time.monotonic() - t, 2),
        "killed": killed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    ap.add_argument("--loads", type=int, default=10, help="page loads (the first one is cold)")
    ap.add_argument("--events", type=int, default=50, help="delivery progress writes")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between the writes")
    ap.add_argument("--idle-seconds", type=float, default=3.0, help="idle wait before the RSS")
    ap.add_argument("--no-browser", action="store_true", help="measure the memory only")
    ap.add_argument("--out", metavar="FILE", help="also write the JSON object to FILE")
    args = ap.parse_args()
    if args.loads < 2 or args.events < 1:
        ap.error("--loads must be at least 2 and --events at least 1")
    if not MIRAGEN.exists():
        print(f"bench/web.py: {MIRAGEN} not found (make the venv first)", file=sys.stderr)
        return 2
    if not args.no_browser:
        missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
        if missing:
            print(
                f"bench/web.py: {' and '.join(missing)} not found: install Debian's chromium and "
                "chromium-driver, or run with --no-browser (memory only)",
                file=sys.stderr,
            )
            return 2
        try:
            import selenium  # noqa: F401
        except ImportError:
            print("bench/web.py: selenium is not installed in the venv", file=sys.stderr)
            return 2
    # SIGTERM like Ctrl-C: the finally blocks below stop every process this bench started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    port = args.port or _free_port()
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {
        "bench": "web",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "port": port,
    }
    proc = driver = service = log = None
    with tempfile.TemporaryDirectory(prefix="miragen-bench-web-") as tmp:
        try:
            state = make_state(Path(tmp) / "state")
            config = Path(tmp) / "miragen.toml"
            config.write_text(f'[paths]\nstate = "{state}"\n')
            log = open(Path(tmp) / "web.log", "w+b")
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [str(MIRAGEN), "web", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    print(log.read().decode(errors="replace"), file=sys.stderr)
                    print("bench/web.py: miragen web did not start", file=sys.stderr)
                    return 2
                try:
                    _get(base, "/api/session", timeout=1.0)
                    break
                except OSError:
                    if time.monotonic() - t0 > 30:
                        print("bench/web.py: miragen web not answering after 30 s", file=sys.stderr)
                        return 2
                    time.sleep(0.05)
            result["start_to_ready_s"] = round(time.monotonic() - t0, 2)
            for path in (
                "/",
                "/static/app.js",
                "/static/style.css",
                "/api/status",
                "/api/classes",
                "/api/classes/bass/sounds",
                "/api/candidates",
                "/api/requests",
                "/api/triggers",
                "/api/requests/bass-01/files/bass-001.png",
            ):
                _get(base, path)
            time.sleep(args.idle_seconds)
            rss = _proc_status(proc.pid)
            result["rss"] = {
                "idle_mb": rss["VmRSS"],
                "peak_mb": rss["VmHWM"],
                "target_mb": RSS_TARGET_MB,
                "heavy_libraries_mapped": _heavy_mapped(proc.pid),
                "largest_mappings": _largest_mappings(proc.pid),
            }
            result["imports"] = imports()
            if not args.no_browser:
                driver, service = start_browser()
                result["browser"] = driver.capabilities.get("browserVersion")
                result["page_load_ms"] = page_loads(driver, base, args.loads)
                result.update(delivery_delay(driver, base, state, port, args.events, args.interval))
                result["delivery_delay_ms"]["target_p95_ms"] = DELAY_TARGET_MS
                driver.quit()
                driver = None
                time.sleep(args.idle_seconds)
                rss = _proc_status(proc.pid)
                result["rss"]["after_browser_mb"] = rss["VmRSS"]
                result["rss"]["peak_mb"] = rss["VmHWM"]
        finally:
            if driver is not None:
                try:
                    driver.quit()
                except Exception:
                    pass
            if service is not None:
                service.stop()
            result["web_stop"] = _stop(proc)
            if log is not None:
                log.seek(0)
                lines = log.read().decode(errors="replace").splitlines()
                result["web_log_problems"] = [
                    x for x in lines if re.search(r"Traceback|ERROR|Exception", x)
                ][:10]
                log.close()

    ok = result["rss"]["idle_mb"] <= RSS_TARGET_MB and not result["web_stop"]["killed"]
    if "delivery_delay_ms" in result:
        d = result["delivery_delay_ms"]
        ok = ok and d["missed"] == 0 and d.get("p95", float("inf")) <= DELAY_TARGET_MS
    result["targets_met"] = ok
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
