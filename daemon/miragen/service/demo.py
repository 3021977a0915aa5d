"""``miragen demo``: the whole pipeline on the embedded default corpus, no hardware needed.

What it does, in order (each a *stage* with its own time and ``ok``):

1. ``setup``: makes the studio state folder ``DIR`` (the daemon's layout, see docs/daemon.md),
   writes the embedded corpus (:func:`miragen.corpus.synth.write_default_corpus`) into
   ``DIR/inbox/<class>/``, starts a simulated Mirage as a separate process
   (``miragen sim --pty --state DIR/sim-state.json``) and writes the configuration the daemon
   runs with: the embedded default with ``paths.state = DIR``, ``deliver.route = "both"``,
   ``deliver.transport = "serial:<the sim's pty>"``, ``deliver.verify = true`` and a training
   budget of ``seconds / classes`` per class. ``DIR/miragen.toml`` keeps it for reruns of
   ``miragen daemon --config DIR/miragen.toml`` (with ``transport = "sim"``, because the pty
   dies with the demo).
2. ``ingest``, ``train`` (+ the daemon's held-out judge): the real daemon
   (:class:`miragen.service.daemon.Daemon`, in this process) until idle.
3. ``generate``, ``deliver``: one request file per class in ``DIR/requests/``, the daemon
   again until idle: candidates → candidate gate → Mirage 8-bit → SysEx dump over the pty
   (ACK, read-back) and a disk image per request.
4. ``disk``: ``DIR/out/demo.img`` from the synthetic template, class *i*'s best candidate
   (a single cycle, tiled to fill the 32-page slot, :func:`miragen.audio.loops.tile_cycle`) in
   wavesample *i* of ``lower1``, with FlashFloppy's ``IMG.CFG`` beside it.
5. ``previews``: ``DIR/out/previews/<class>.wav`` (the best cycle looped for one second),
   ``<class>.png`` and ``DIR/out/contact-sheet.png`` (every kept candidate, best first).
6. ``check``: the image parses and holds the bytes written, the simulated Mirage's state file
   holds every delivered wavesample, every ``.pcm`` follows the Mirage 8-bit rules.

The judge's verdict is reported per class (pass or fail, with its reasons). Judging is a
stage that succeeds when it runs and gives a verdict for every class; a *fail* verdict does not
fail the demo (a one-minute CPU budget rarely trains a model that passes), but the summary says
so plainly.

Rerunning in the same ``DIR``: a folder that holds the marker file :data:`MARKER` (written by
the demo) is cleaned of the demo's own entries (:data:`OWNED`) and started afresh; anything
else in it is left alone. A non-empty folder without the marker is refused.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MiragenError
from ..fsutil import atomic_write_text
from .handlers import model_verdict

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 60
MARKER = ".miragen-demo"
SIM_STATE = "sim-state.json"
SIM_LOG = "sim.log"
CONFIG_NAME = "miragen.toml"
SUMMARY_NAME = "demo-summary.json"
# Everything the demo creates in DIR; a rerun removes these (and only these) first.
OWNED = (
    MARKER,
    CONFIG_NAME,
    SIM_STATE,
    SIM_LOG,
    SUMMARY_NAME,
    "inbox",
    "requests",
    "processing",
    "rejected",
    "corpus",
    "models",
    "out",
    "miragen.db",
    "miragen.db-wal",
    "miragen.db-shm",
    "miragen.lock",
    "status.json",
)
COUNT = 4  # candidates kept per class
DISK_SOUND = "lower1"
SYSEX_HALF = "lower"
PREVIEW_SECONDS = 1.0
SIM_START_S = 30.0
DAEMON_LIMIT_S = 1800.0  # a safety net: a stuck daemon run ends here and the stage fails

Progress = Callable[[str], None]


class DemoError(MiragenError):
    """The demo cannot start (bad folder, bad budget)."""


@dataclass
class Stage:
    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass
class DemoRun:
    folder: Path
    seconds: int
    classes: list[str]
    stages: list[Stage] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ folder
def prepare_folder(folder: Path) -> bool:
    """Make ``folder`` ready for a fresh demo; returns True when an earlier demo was cleaned.

    Only the demo's own entries are removed, and only in a folder that carries the demo's
    marker; a non-empty folder without it is refused (it may be somebody's studio).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: exists and is not a folder; pick another --dir")
    if folder.is_symlink():
        raise DemoError(f"{folder}: is a symbolic link; pass the real folder as --dir")
    cleaned = False
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise DemoError(
                f"{folder}: not empty and not a Miragen demo folder (no {MARKER} in it); "
                "pick an empty or new --dir"
            )
        lock = folder / "miragen.lock"
        if lock.exists():
            import fcntl

            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise DemoError(
                    f"{folder}: a miragen daemon runs on this folder now; stop it first"
                ) from None
            finally:
                os.close(fd)
        for name in OWNED:
            p = folder / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
        cleaned = True
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        folder / MARKER,
        json.dumps({"format": "miragen-demo/1", "created": time.time(), "owned": list(OWNED)})
        + "\n",
    )
    return cleaned


# ------------------------------------------------------------------------------ the sim
def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the demo's finally still stops the sim
        pass


class SimProcess:
    """``miragen sim --pty --state FILE`` as a child process; always stopped by :meth:`stop`."""

    def __init__(self, state_file: Path, log_file: Path):
        self.state_file = state_file
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.pty = ""

    def start(self) -> str:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_file, "ab") as err:
            # its own session: a Ctrl-C in the terminal stops the daemon cleanly, and the demo then
            # stops the sim itself; it dies with the demo (SIGTERM) even if the demo is killed
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "miragen", "sim", "--pty", "--state", str(self.state_file)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # noqa: PLW1509 (started before the daemon's threads)
        assert self.proc.stdout is not None
        line = b""
        deadline = time.monotonic() + SIM_START_S
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 256)
                if not chunk:
                    break
                line += chunk
        self.pty = line.decode("ascii", "replace").strip()
        if not self.pty.startswith("/dev/"):
            self.stop()
            raise MiragenError(
                f"the simulated Mirage did not start (no pty path within {SIM_START_S:.0f} s; see "
                f"{self.log_file})"
            )
        return self.pty

    def stop(self) -> int | None:
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()
        return p.returncode


# ------------------------------------------------------------------------------ config
def demo_threads() -> int:
    """torch CPU threads for the demo's training: half the cores (1 on a 2-core machine), at most 4.

    All cores (``train.threads = 0``) collapse when anything else runs: measured on the 2-core
    container at load 8, 8 s of training made 4 steps with 2 threads and 34-54 with 1 (OpenMP
    threads waiting for each other on an oversubscribed CPU).
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def demo_config(folder: Path, transport: str, seconds_per_class: int) -> dict[str, Any]:
    """The embedded default with the demo's settings (validated like any configuration)."""
    from .. import config as configmod

    overrides = {
        "paths": {"state": str(folder.resolve()), "usb_stick": ""},
        "train": {"seconds": int(seconds_per_class), "debounce_s": 1.0, "threads": demo_threads()},
        "generate": {"count": COUNT},
        "deliver": {
            "route": "both",
            "transport": transport,
            "verify": True,
            "template": "",
            "sound": DISK_SOUND,
            "half": SYSEX_HALF,
        },
        "daemon": {"settle_s": 0.3},
    }
    base = configmod.parse_text(configmod.default_text(), "embedded default")
    for section, body in overrides.items():
        base[section].update(body)
    data = {k: v for k, v in base.items() if k != "trigger"}
    return configmod.validate(data, "demo configuration")


def config_text(cfg: dict[str, Any], used_transport: str) -> str:
    from .. import config as configmod

    saved = json.loads(json.dumps(cfg))
    saved["deliver"]["transport"] = "sim"
    head = (
        "# Written by `miragen demo`. Rerun the studio with:\n"
        f"#   miragen daemon --config {Path(cfg['paths']['state']) / CONFIG_NAME}\n"
        f"# The demo itself delivered over serial:{used_transport.partition(':')[2]} "
        "(the pty of a\n"
        "# `miragen sim --pty` process that ended with the demo), so deliver.transport is "
        '"sim" here.\n'
        '# With a Mirage: deliver.transport = "serial:/dev/ttyTHS1" (Jetson UART) or '
        '"raw:/dev/snd/midiC1D0";\n'
        "# see `miragen ports`. A rerun of `miragen demo` in this folder replaces this file.\n\n"
    )
    return head + configmod.render(saved)


# ------------------------------------------------------------------------------ helpers
def _run_daemon(cfg: dict[str, Any]) -> None:
    from .daemon import Daemon

    t0 = time.monotonic()
    rc = Daemon(cfg).run(until_idle=True, max_seconds=DAEMON_LIMIT_S)
    if rc != 0:
        raise MiragenError(f"the daemon ended with status {rc}")
    if time.monotonic() - t0 > DAEMON_LIMIT_S:
        raise MiragenError(f"the daemon did not finish within {DAEMON_LIMIT_S:.0f} s")


def _jobs(folder: Path) -> list[Any]:
    from .jobs import JobQueue

    q = JobQueue(folder / "miragen.db", readonly=True)
    try:
        return q.jobs(limit=100000)
    finally:
        q.close()


def _models(folder: Path) -> list[dict[str, Any]]:
    from .jobs import JobQueue

    q = JobQueue(folder / "miragen.db", readonly=True)
    try:
        return q.models()
    finally:
        q.close()


def _rel(folder: Path, p: Path) -> str:
    try:
        return str(Path(p).relative_to(folder))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------------------ the demo
def run_demo(
    folder: str | os.PathLike = "miragen-demo",
    seconds: int = DEFAULT_SECONDS,
    *,
    classes: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole demo in ``folder``; returns the summary (``summary["ok"]``: every stage ok)."""
    from ..corpus import synth

    say = progress or (lambda _msg: None)
    folder = Path(folder).absolute()
    classes = list(classes or synth.CLASSES)
    unknown = [c for c in classes if c not in synth.CLASSES]
    if unknown or len(classes) < 2:
        raise DemoError(f"demo classes {classes}: need at least 2 of {', '.join(synth.CLASSES)}")
    if int(seconds) < len(classes):
        raise DemoError(
            f"--seconds {seconds}: at least 1 second of training per class is needed "
            f"({len(classes)} classes)"
        )
    per_class = int(seconds) // len(classes)
    t_start = time.monotonic()
    lock = _lock_folder(
        folder
    )  # one demo per folder: a second one would clean the first one's files
    try:
        rerun = prepare_folder(
            folder
        )  # a folder that is not the demo's: DemoError before anything starts
        run = DemoRun(folder, int(seconds), classes)
        sim = SimProcess(folder / SIM_STATE, folder / SIM_LOG)
        info: dict[str, Any] = {"rerun": rerun}
        try:
            _stages(run, sim, per_class, info, say)
        finally:
            rc = sim.stop()
            info["sim_exit"] = rc
        summary = _summary(run, info, time.monotonic() - t_start)
        try:
            atomic_write_text(
                folder / SUMMARY_NAME, json.dumps(summary, indent=2, default=str) + "\n"
            )
        except OSError as exc:  # the summary is printed anyway
            log.warning("cannot write %s: %s", folder / SUMMARY_NAME, exc)
    finally:
        os.close(lock)
    return summary


def _lock_folder(folder: Path) -> int:
    """Create ``folder`` when missing and hold an exclusive flock on it (freed when the demo
    ends)."""
    import fcntl

    if folder.is_symlink():
        raise DemoError(f"{folder}: is a symbolic link; pass the real folder as --dir")
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: exists and is not a folder; pick another --dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise DemoError(
            f"{folder}: cannot make or open the demo folder: {exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DemoError(f"{folder}: another miragen demo runs in this folder now") from None
    return fd


def _stage(run: DemoRun, name: str, say: Progress, fn: Callable[[], str]) -> bool:
    """Run one stage; later stages are skipped once one failed."""
    st = Stage(name)
    run.stages.append(st)
    if any(not s.ok for s in run.stages[:-1]):
        st.error = "skipped: an earlier stage failed"
        return False
    say(f"[{len(run.stages)}] {name} …")
    t0 = time.monotonic()
    try:
        st.detail = fn() or ""
        st.ok = True
    except MiragenError as exc:
        st.error = str(exc)
    except (
        Exception
    ) as exc:  # the summary names the stage and the error; the sim is stopped by the caller
        log.debug("stage %s failed", name, exc_info=True)
        st.error = f"{type(exc).__name__}: {exc}"
    st.seconds = round(time.monotonic() - t0, 2)
    say(
        f"    {'ok' if st.ok else 'FAILED'} ({st.seconds:.1f} s)"
        f"{': ' + (st.detail if st.ok else st.error) if (st.detail or st.error) else ''}"
    )
    return st.ok


def _stages(
    run: DemoRun, sim: SimProcess, per_class: int, info: dict[str, Any], say: Progress
) -> None:
    from ..corpus.synth import write_default_corpus

    folder = run.folder
    cfg: dict[str, Any] = {}

    def setup() -> str:
        written = write_default_corpus(folder / "inbox")
        keep = set(run.classes)
        for p in written:  # classes left out of this demo are not dropped
            if p.parent.name not in keep:
                p.unlink()
        for d in (folder / "inbox").iterdir():
            if d.is_dir() and d.name not in keep:
                d.rmdir()
        counts = {c: sum(1 for p in written if p.parent.name == c) for c in run.classes}
        info["corpus"] = counts
        pty = sim.start()
        info["pty"] = pty
        cfg.update(demo_config(folder, f"serial:{pty}", per_class))
        atomic_write_text(folder / CONFIG_NAME, config_text(cfg, cfg["deliver"]["transport"]))
        return (
            f"{sum(counts.values())} sounds in {len(counts)} classes dropped into inbox/; "
            f"simulated Mirage on {pty}; {per_class} s of training per class"
            + ("; the previous demo in this folder was replaced" if info["rerun"] else "")
        )

    def ingest_train() -> str:
        t0 = time.time()
        _run_daemon(cfg)
        jobs = _jobs(folder)
        ingests = [j for j in jobs if j.kind == "ingest"]
        trains = [j for j in jobs if j.kind == "train"]
        bad = [j for j in ingests + trains if j.state != "done"]
        if bad:
            unfinished = any(j.state in ("queued", "running") for j in bad)
            raise MiragenError(
                (
                    "the daemon stopped before its work was done (interrupted?): "
                    if unfinished
                    else ""
                )
                + "; ".join(
                    f"{j.kind} {j.subject} {j.state}"
                    + (f" ({j.last_error})" if j.last_error else "")
                    for j in bad[:5]
                )
            )
        ingest_end = max((j.updated for j in ingests), default=t0)
        info["ingest_s"] = round(ingest_end - t0, 2)
        info["train_s"] = round(time.time() - ingest_end, 2)
        rejected = [
            p.name for p in (folder / "rejected").iterdir() if not p.name.endswith(".reason.txt")
        ]
        if rejected:
            raise MiragenError(
                f"{len(rejected)} demo sounds were rejected: {', '.join(rejected[:5])}"
            )
        models = {m["class"]: m for m in _models(folder) if m["current"]}
        missing = [c for c in run.classes if c not in models]
        if missing:
            raise MiragenError(f"no model for class {', '.join(missing)}")
        info["models"] = models
        return f"{len(ingests)} sounds ingested, {len(models)} models trained"

    def judge() -> str:
        models = info["models"]
        verdicts = {}
        for c in run.classes:
            rep = models[c]["report"]
            if not rep.get("judged"):
                raise MiragenError(f"class {c} was not judged: {'; '.join(rep.get('reasons', []))}")
            verdicts[c] = model_verdict(rep)
        info["verdicts"] = verdicts
        passed = [c for c, v in verdicts.items() if v == "pass"]
        return (
            f"verdict per class: {', '.join(f'{c} {v.upper()}' for c, v in verdicts.items())}"
            + (
                ""
                if len(passed) == len(verdicts)
                else " (a fail or inconclusive verdict is reported, not hidden; the demo goes on)"
            )
        )

    def generate_deliver() -> str:
        req_dir = folder / "requests"
        names = {}
        for i, c in enumerate(run.classes):
            name = f"demo-{c}"
            names[c] = name
            text = (
                f'name = "{name}"\nclass = "{c}"\ncount = {COUNT}\nhalf = "{SYSEX_HALF}"\n'
                f'wavesample = {i + 1}\nroute = "both"\nsound = "{DISK_SOUND}"\n'
            )
            atomic_write_text(req_dir / f"{name}.toml", text)
        info["requests"] = names
        t0 = time.time()
        _run_daemon(cfg)
        from .requests import read_record
        from .state import StateDir

        sd = StateDir(folder)
        records = {c: read_record(sd, n) or {} for c, n in names.items()}
        jobs = _jobs(folder)
        delivered = {j.subject: j.payload.get("pcm") for j in jobs if j.kind == "deliver"}
        for c, n in names.items():  # the file the deliver job sent: the summary's "best" candidate
            if delivered.get(n):
                records[c]["delivered_pcm"] = delivered[n]
        info["records"] = records
        failed = [
            f"{c}: {r.get('state', 'no record')} {r.get('reason', '')}".strip()
            for c, r in records.items()
            if r.get("state") != "done"
        ]
        gen_end = max((j.updated for j in jobs if j.kind == "generate"), default=t0)
        info["generate_s"] = round(gen_end - t0, 2)
        info["deliver_s"] = round(time.time() - gen_end, 2)
        if failed:
            raise MiragenError("request(s) not done: " + "; ".join(failed))
        return (
            f"{len(records)} requests done: candidates written, best of each sent by SysEx "
            "(ACK, read back) and written to a disk image"
        )

    def disk_image() -> str:
        from ..app import disk as disk_app

        image = disk_app.load_template("")  # the synthetic template: the demo has no Mirage
        placed = {}
        for i, c in enumerate(run.classes):
            best = _best_pcm(folder, info["records"][c])
            data = best.read_bytes()
            # a single cycle fills the slot (no 0x80 tail); longer sounds go in as they are
            put = disk_app.place(image, DISK_SOUND, i + 1, data, cycle=disk_app.is_cycle(data))
            image = put.image
            placed[c] = {
                "sound": DISK_SOUND,
                "wavesample": i + 1,
                "pcm": _rel(folder, best),
                "bytes": len(data),
                "tiled": put.tiled,
                "written": put.report["written"],
                "capacity": put.report["capacity"],
                "warnings": put.warnings,
            }
        pub = disk_app.publish(image, folder / "out" / "demo.img")
        info["disk"] = {
            "image": _rel(folder, Path(pub["image"])),
            "img_cfg": "out/IMG.CFG",
            "placed": placed,
        }
        where = ", ".join(
            f"{c} → {DISK_SOUND} wavesample {p['wavesample']}" for c, p in placed.items()
        )
        return f"out/demo.img: {where}"

    def previews() -> str:
        from ..audio.io import write_wav_u8
        from ..audio.loops import tile_cycle
        from ..audio.render import contact_sheet, waveform_png

        rate = int(cfg["audio"]["rate"])
        out = folder / "out" / "previews"
        waves, titles, files = [], [], []
        for c in run.classes:
            rec = info["records"][c]
            pcms = [folder / f for f in rec.get("files", []) if f.endswith(".pcm")]
            best = _best_pcm(folder, rec)
            data = best.read_bytes()
            reps = max(1, round(PREVIEW_SECONDS * rate / len(data)))
            files.append(write_wav_u8(out / f"{c}.wav", tile_cycle(data, len(data) * reps), rate))
            files.append(waveform_png(data, out / f"{c}.png", title=f"{c}: best of {len(pcms)}"))
            for k, p in enumerate(pcms):
                waves.append(p.read_bytes())
                titles.append(f"{c} #{k + 1}" + (" (delivered)" if p == best else ""))
        sheet = contact_sheet(
            waves, folder / "out" / "contact-sheet.png", titles=titles, cols=COUNT
        )
        info["previews"] = [_rel(folder, f) for f in files]
        info["contact_sheet"] = _rel(folder, sheet)
        return (
            f"{len(files) // 2} one-second WAV previews and waveform PNGs in out/previews/, "
            f"out/contact-sheet.png ({len(waves)} candidates)"
        )

    def check() -> str:
        from ..audio.mirage8 import check_mirage8
        from ..mirage import disk
        from ..transport.simulated import read_state

        problems = []
        pcms = sorted((folder / "out").rglob("*.pcm"))
        for p in pcms:
            try:
                check_mirage8(p.read_bytes())
            except MiragenError as exc:
                problems.append(f"{_rel(folder, p)}: {exc}")
        image = (folder / "out" / "demo.img").read_bytes()
        parsed = disk.parse(image)
        info["disk_info"] = parsed.info()
        for c, pl in info["disk"]["placed"].items():
            data = (folder / pl["pcm"]).read_bytes()
            snd = parsed.sounds[DISK_SOUND]
            got = disk.wavesample_bytes(snd.wave, snd.params.wavesample(pl["wavesample"]))
            if got[: len(data) * pl["tiled"]] != data * pl["tiled"]:
                problems.append(
                    f"demo.img {DISK_SOUND} wavesample {pl['wavesample']} does not hold {c}'s "
                    "candidate"
                )
        st = read_state(folder / SIM_STATE)
        held: dict[str, bool] = {}
        pages: dict[str, int] = {}
        for c, rec in info["records"].items():
            sx = rec.get("delivery", {}).get("sysex", {})
            n = int(sx.get("wavesample", 0))
            data = _best_pcm(folder, rec).read_bytes()
            got = st["wavesample_data"][SYSEX_HALF].get(n, b"")
            # the pipeline may repeat a single cycle over several pages (deliver.cycle_pages)
            held[c] = (
                bool(got) and len(got) % len(data) == 0 and got == data * (len(got) // len(data))
            )
            pages[c] = len(got) // 256
            if not held[c]:
                problems.append(
                    f"the simulated Mirage's {SYSEX_HALF} wavesample {n} does not hold {c}'s "
                    "candidate"
                )
            if not (sx.get("ok") and sx.get("verified")):
                problems.append(
                    f"{c}: SysEx delivery not ACKed and verified ({sx.get('error') or sx})"
                )
        for c, rec in info["records"].items():  # each request's own image (the daemon's disk route)
            own = rec.get("delivery", {}).get("disk", {}).get("image")
            if not own:
                problems.append(f"{c}: the daemon wrote no disk image")
                continue
            try:
                disk.parse((folder / own).read_bytes())
            except (OSError, MiragenError) as exc:
                problems.append(f"{own}: {exc}")
        info["sim_counters"] = st.get("counters", {})
        info["sim_holds"] = held
        info["sim_pages"] = pages
        info["pcm_checked"] = len(pcms)
        if problems:
            raise MiragenError("; ".join(problems[:8]))
        return (
            f"demo.img reads back; the simulated Mirage holds all {len(held)} wavesamples; "
            f"{len(pcms)} .pcm files follow the Mirage 8-bit rules"
        )

    _stage(run, "setup", say, setup)
    _stage(run, "ingest+train", say, ingest_train)
    _stage(run, "judge", say, judge)
    _stage(run, "generate+deliver", say, generate_deliver)
    _stage(run, "disk", say, disk_image)
    _stage(run, "previews", say, previews)
    _stage(run, "check", say, check)
    run.summary["cfg"] = cfg


# ------------------------------------------------------------------------------ helpers
def _best_pcm(folder: Path, record: dict[str, Any]) -> Path:
    """The delivered candidate of a request: what its deliver job sent, else the first ``.pcm``
    of its record (best first)."""
    if record.get("delivered_pcm"):
        return folder / record["delivered_pcm"]
    pcms = [f for f in record.get("files", []) if f.endswith(".pcm")]
    if not pcms:
        raise MiragenError(
            f"request {record.get('request', {}).get('name', '?')}: no candidate in its record"
        )
    return folder / pcms[0]


def _model_meta(model_dir: Path) -> dict[str, Any]:
    from ..engines.base import MODEL_META

    try:
        return dict(
            json.loads((model_dir / MODEL_META).read_text(encoding="utf-8")).get("meta", {})
        )
    except (OSError, ValueError, AttributeError):
        return {}


def _held_out(n: int) -> int:
    """How many of ``n`` sounds the daemon holds out for its judge (Dataset.split(0.8))."""
    from .handlers import MIN_JUDGE_CLASS

    if n < MIN_JUDGE_CLASS:
        return 0
    return n - min(max(round(0.8 * n), 1), n - 1)


def _reason_text(reasons: list[str], limit: int = 3) -> str:
    """The judge's reasons, short: the figure and its limit, without the explanation."""
    short = [r.split(" — ")[0] for r in reasons]
    return "; ".join(short[:limit]) + (
        f"; and {len(short) - limit} more" if len(short) > limit else ""
    )


def next_steps(folder: Path, best: str | None) -> list[str]:
    pcm = str(folder / best) if best else "SOUND.pcm"
    return [
        "miragen ports                                   "
        "# which MIDI interfaces and UARTs this machine has",
        f"miragen deliver {pcm} --serial /dev/ttyTHS1 --verify   "
        "# Jetson UART → Mirage (MASOS booted)",
        f"miragen deliver {pcm} --raw /dev/snd/midiC1D0 --verify # a USB-MIDI interface",
        f"miragen disk write --template mine.img -o new.img lower1:1={pcm}   "
        "# a disk saved on your Mirage as template;",
        "    copy new.img and IMG.CFG to the root of the Gotek's USB stick (FlashFloppy ≥ 3.39)",
        f"miragen daemon --config {folder / CONFIG_NAME}   "
        "# the studio on your own sounds: inbox/<class>/, requests/",
        "sudo deploy/install-jetson.sh                   "
        "# the daemon as a systemd service (deploy/README.md)",
    ]


def _summary(run: DemoRun, info: dict[str, Any], total_s: float) -> dict[str, Any]:
    folder = run.folder
    cfg = run.summary.get("cfg") or {}
    stages = {s.name: s for s in run.stages}
    ok = bool(run.stages) and all(s.ok for s in run.stages)
    classes: dict[str, Any] = {}
    for c in run.classes:
        n = info.get("corpus", {}).get(c, 0)
        entry: dict[str, Any] = {"sounds": n, "held_out": _held_out(n)}
        entry["trained_on"] = n - entry["held_out"]
        m = info.get("models", {}).get(c)
        if m:
            rep = m["report"]
            meta = _model_meta(folder / m["path"])
            entry.update(
                model=m["path"],
                steps=meta.get("steps"),
                train_seconds=meta.get("train_seconds"),
                device=meta.get("device"),
                judged=bool(rep.get("judged")),
                verdict=model_verdict(rep) if rep.get("judged") else "not judged",
                reasons=list(rep.get("reasons", [])),
                metrics=rep.get("metrics", {}),
            )
        rec = info.get("records", {}).get(c)
        if rec:
            entry["request"] = info["requests"][c]
            entry["gate"] = rec.get("gate", "")
            cands = [f for f in rec.get("files", []) if f.endswith(".pcm")]
            best = rec.get("delivered_pcm")
            entry["candidates"] = ([best] if best else []) + [
                f for f in cands if f != best
            ]  # delivered first
            entry["delivered"] = best
            entry["state"] = rec.get("state")
            sx = rec.get("delivery", {}).get("sysex", {})
            entry["sysex"] = {
                k: sx.get(k)
                for k in (
                    "ok",
                    "verified",
                    "tries",
                    "naks",
                    "elapsed_s",
                    "bytes_sent",
                    "dump_bytes",
                    "readback_bytes",
                    "wire_floor_s",
                    "half",
                    "wavesample",
                    "error",
                )
            }
            dk = rec.get("delivery", {}).get("disk", {})
            entry["request_image"] = dk.get("image")
        classes[c] = entry
    verdicts = info.get("verdicts", {})
    disk_info = info.get("disk")
    best = next(
        (classes[c]["candidates"][0] for c in run.classes if classes[c].get("candidates")), None
    )
    return {
        "ok": ok,
        "folder": str(folder),
        "config": str(folder / CONFIG_NAME),
        "seconds_total": round(total_s, 1),
        "train_seconds_per_class": cfg.get("train", {}).get("seconds"),
        "engine": cfg.get("train", {}).get("engine"),
        "stages": [asdict(s) for s in run.stages],
        "timings_s": {
            k: v
            for k, v in (
                ("setup", stages["setup"].seconds if "setup" in stages else None),
                ("ingest", info.get("ingest_s")),
                ("train_and_judge", info.get("train_s")),
                ("generate", info.get("generate_s")),
                ("deliver", info.get("deliver_s")),
                (
                    "disk",
                    stages["disk"].seconds if "disk" in stages and stages["disk"].ok else None,
                ),
                (
                    "previews",
                    stages["previews"].seconds
                    if "previews" in stages and stages["previews"].ok
                    else None,
                ),
                (
                    "check",
                    stages["check"].seconds if "check" in stages and stages["check"].ok else None,
                ),
            )
            if v is not None
        },
        "classes": classes,
        "judge": {
            "verdicts": verdicts,
            "passed": sum(v == "pass" for v in verdicts.values()),
            "of": len(verdicts),
            "fails_the_demo": False,
            "note": "the daemon's held-out judge (judge.metrics.evaluate on 64 generated waves "
            "against the 80 % trained on and the 20 % held out); a fail verdict is reported and "
            "does not fail the demo",
        },
        "delivered": {
            "disk": None
            if not disk_info
            else {
                **disk_info,
                "synthetic_template": True,
                "note": "made from the synthetic template: it does not boot a Mirage",
            },
            "sysex": None
            if "pty" not in info
            else {
                "transport": f"serial:{info['pty']}",
                "sim_state": SIM_STATE,
                "half": SYSEX_HALF,
                "held_by_sim": info.get("sim_holds", {}),
                "pages_held": info.get("sim_pages", {}),
                "sim_counters": info.get("sim_counters", {}),
            },
        },
        "previews": info.get("previews", []),
        "contact_sheet": info.get("contact_sheet"),
        "pcm_checked": info.get("pcm_checked", 0),
        "sim_exit": info.get("sim_exit"),
        "next": next_steps(folder, best),
    }


def format_summary(s: dict[str, Any]) -> str:
    """The summary as a few lines for people."""
    lines = []
    failed = [st for st in s["stages"] if not st["ok"]]
    head = (
        "every stage ok"
        if s["ok"]
        else f"FAILED at stage {failed[0]['name']}: {failed[0]['error']}"
        if failed
        else "FAILED"
    )
    lines.append(f"Miragen demo in {s['folder']}: {s['seconds_total']:.0f} s, {head}")
    lines.append("")
    lines.append(f"Trained ({s.get('engine')}, {s.get('train_seconds_per_class')} s per class):")
    for c, e in s["classes"].items():
        row = (
            f"  {c:9} {e['sounds']} sounds ({e['trained_on']} trained on, {e['held_out']} held out)"
        )
        if e.get("steps") is not None:
            row += f", {e['steps']} steps in {e.get('train_seconds', 0):.0f} s on {e.get('device')}"
        if "verdict" in e:
            row += f", judge {e['verdict'].upper()}"
        lines.append(row)
        if e.get("verdict") in ("fail", "inconclusive") and e.get("reasons"):
            lines.append(f"            {_reason_text(e['reasons'])}")
    j = s["judge"]
    if j["of"]:
        undecided = sum(v == "inconclusive" for v in j["verdicts"].values())
        lines.append(
            f"Judge: {j['passed']} of {j['of']} classes pass the held-out judge"
            + (
                f", {undecided} inconclusive (too few held-out sounds to tell a real set from a "
                "half-collapsed one)."
                if undecided
                else "."
            )
            + (
                ""
                if j["passed"] + undecided == j["of"]
                else " A FAIL is the honest verdict of a short CPU run: train longer (--seconds, "
                "or train.seconds in miragen.toml); the candidate gate still kept only new, "
                "non-silent, non-duplicate sounds."
            )
        )
    lines.append("")
    dk, sx = s["delivered"]["disk"], s["delivered"]["sysex"]
    if dk:
        lines.append(
            f"Disk image: {dk['image']} with {dk['img_cfg']} "
            "(synthetic template: it does not boot a Mirage)"
        )
        for c, p in dk["placed"].items():
            tiled = f", the cycle tiled ×{p['tiled']}" if p["tiled"] > 1 else ""
            lines.append(
                f"  {p['sound']} wavesample {p['wavesample']} = {c} "
                f"({p['pcm']}, {p['bytes']} bytes{tiled})"
            )
    if sx and any(e.get("sysex") for e in s["classes"].values()):
        lines.append(f"SysEx to the simulated Mirage over {sx['transport']}:")
        for c, e in s["classes"].items():
            d = e.get("sysex") or {}
            if not d:
                continue
            state = ("ACK" if d.get("ok") else f"no ACK ({d.get('error')})") + (
                ", read back and verified" if d.get("verified") else ""
            )
            held = sx["held_by_sim"].get(c)
            pages = sx.get("pages_held", {}).get(c)
            lines.append(
                f"  {d.get('half')} wavesample {d.get('wavesample')} = {c}: {state} in "
                f"{d.get('elapsed_s') or 0:.1f} s"
                + (
                    ""
                    if held is None
                    else f", held by the sim ({pages} page{'s' if pages != 1 else ''})"
                    if held
                    else ", NOT held by the sim"
                )
            )
    if s.get("contact_sheet"):
        lines.append(
            "Previews: out/previews/<class>.wav (one second, looped cycle) and .png; "
            f"{s['contact_sheet']}"
        )
    lines.append("")
    t = s["timings_s"]
    lines.append(
        "Time: "
        + " · ".join(
            f"{k.replace('_and_', '+')} {v:.1f} s" if v >= 0.05 else f"{k} <0.1 s"
            for k, v in t.items()
        )
    )
    lines.append("")
    lines.append("Next, with real hardware:")
    lines += [f"  {x}" for x in s["next"]]
    return "\n".join(lines)
