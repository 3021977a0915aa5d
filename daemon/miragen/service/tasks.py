"""The daemon's heavy jobs, run in a child process: ``python -m miragen.service.tasks``.

Training, generation and the sorting of unsorted material import torch, the engines and
scikit-learn (hundreds of MB). The daemon runs each such job in a fresh child process, so the
daemon itself never loads them and stays small when idle (docs/daemon.md, "Footprint"). The
parent side is :mod:`.child`.

Protocol: the parent writes one JSON line (the task) on the child's stdin and closes it; the
child writes JSON lines on its stdout, one per event:

- ``{"ev": "phase", "text": …}`` and ``{"ev": "progress", "text": …, "run_s": …}``: the
  child is alive (the parent beats the worker's watchdog heartbeat on each line and kills a
  child silent for longer than its limit);
- ``{"ev": "done", "result": {…}}``: the task finished;
- ``{"ev": "stopped", "run_s": …}``: SIGTERM/SIGINT stopped it (training saved its checkpoint);
- ``{"ev": "error", "reason": …, "input": bool}``: it failed (``input``: a problem with the
  material or the model, not worth a retry).

Anything a library prints goes to stderr (the daemon's log), never into the protocol.

The child dies with the daemon: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux), and a thread that
checks ``getppid()`` once a second (other systems, and the moment before prctl took effect).
Results are written atomically: a model folder is saved as ``vNNNN.part`` and renamed; the
candidates of a request are written into ``out/.<name>.part/`` with their manifest
(``generate.json``) and renamed to ``out/<name>/``; a kill -9 of either process leaves no
half-written result under a real name, and the next attempt removes the stale ``.part`` folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import MiragenError

log = logging.getLogger("miragen.worker")

MIN_TRAIN_CLASS = 5  # fewer sounds than this: the class waits for more material (engines need ≥ 5)
MIN_JUDGE_CLASS = 20  # fewer sounds than this: no held-out split (the judge needs ≥ 4 held out)
SMALL_CLASS = 30  # below this the wavegan engine keeps no held-out set of its own
JUDGE_SAMPLES = 64
MANIFEST = "generate.json"
PR_SET_PDEATHSIG = 1


class StopRequested(Exception):
    """SIGTERM/SIGINT reached the child outside a training loop."""


class _Child:
    """The child's side of the protocol (one per process)."""

    def __init__(self, out_fd: int):
        self.out_fd = out_fd
        self.stop = threading.Event()
        self.in_fit = False
        self._lock = threading.Lock()
        self.t_main = time.time()

    def emit(self, ev: str, **fields: Any) -> None:
        line = (json.dumps({"ev": ev, **fields}, default=str) + "\n").encode()
        with self._lock:
            try:
                os.write(self.out_fd, line)
            except OSError:  # the daemon is gone: nobody to work for
                os._exit(3)

    def phase(self, text: str) -> None:
        self.emit("phase", text=text)
        if self.stop.is_set():
            raise StopRequested()

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stop.set()
        if (
            not self.in_fit
        ):  # training stops at its next step and checkpoints; anything else stops now
            raise StopRequested()


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the daemon dies (Linux); else a once-a-second check of the parent's pid."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the thread below does it
        pass
    if os.getppid() != parent:  # the daemon died before prctl took effect
        os._exit(3)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _heavy_imports() -> None:
    """scipy before torch: scipy's array-API layer inspects torch when both load (see git log)."""
    import scipy.signal
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401


def _dataset(root: Path, cfg: dict[str, Any], cls: str):
    from ..corpus.dataset import load_dataset

    a = cfg["audio"]
    return load_dataset(
        root / "corpus",
        cfg["train"]["mode"],
        rate=a["rate"],
        raw_rate=a["raw_rate"],
        max_len=a["max_bytes"],
        only_class=cls,
    )


# ------------------------------------------------------------------------------ train
def task_train(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Train (or, when the model folder was saved before a kill, only judge) one class."""
    from ..engines.base import Budget, Progress, engine_class, load_model

    root, cfg, cls = Path(spec["state"]), spec["cfg"], spec["class"]
    t = cfg["train"]
    ch.phase("loading torch")
    _heavy_imports()
    ch.phase(f"loading class {cls}")
    ds = _dataset(root, cfg, cls)
    if len(ds) < MIN_TRAIN_CLASS:
        return {
            "skipped": f"class {cls} has {len(ds)} sounds; training needs at least "
            f"{MIN_TRAIN_CLASS}",
            "files": len(ds),
        }
    model_dir = root / spec["model_dir"]
    ckpt_dir = model_dir.with_name(f"checkpoint-{model_dir.name}")
    remaining = float(spec["remaining_s"])
    stop = ch.stop

    class StoppableBudget(Budget):
        """Counts from the training loop's first step: a fresh process spends a few seconds in
        the engine's set-up (first torch calls, imports), which must not eat a short budget."""

        looping = False

        def done(self, step: int) -> bool:
            if not self.looping:
                self.looping = True
                self.restart()
            return stop.is_set() or super().done(step)

    budget = StoppableBudget(seconds=remaining)

    def progress(pr: Progress) -> None:
        ch.emit(
            "progress",
            text=f"{cls} step {pr.step} ({budget.elapsed():.0f}/{remaining:.0f} s)",
            step=pr.step,
            run_s=budget.elapsed(),
        )

    options: dict[str, Any] = {
        "device": t["device"],
        "threads": t["threads"],
        "checkpoint_every": t["checkpoint_every"],
    }
    train_ds, held_ds = ds.split(0.8, seed=0) if len(ds) >= MIN_JUDGE_CLASS else (ds, None)
    if t["engine"] == "wavegan" and len(train_ds) < SMALL_CLASS:
        options["holdout"] = (
            0.0  # its snapshot judge needs ≥ 4 held-out sounds; a small class keeps them all
        )
    if (model_dir / "model.json").is_file():  # saved before a kill: judge it, do not train again
        model = load_model(model_dir)
    else:
        engine = engine_class(t["engine"])(**options)
        ch.phase(f"training class {cls} ({len(ds)} sounds, {model_dir.name}, {remaining:.0f} s)")
        ch.in_fit = True
        try:
            model = engine.fit(train_ds, budget, progress, ckpt_dir)
        except (
            KeyboardInterrupt
        ):  # an engine that turns the stop into an interrupt (pygan) has checkpointed
            ch.stop.set()
        finally:
            ch.in_fit = False
        if ch.stop.is_set():
            return {"stopped": True, "run_s": budget.elapsed()}
        ch.phase(f"saving model {model_dir.name}")
        part = model_dir.with_name(model_dir.name + ".part")
        if part.exists():
            shutil.rmtree(
                part
            )  # our own half-saved model folder from a killed run (never user data)
        model.save(part)
        os.replace(part, model_dir)
    report: dict[str, Any] = {"files": len(ds), "seconds": t["seconds"]}
    passed = False
    if held_ds is not None and len(held_ds):
        from ..judge.metrics import evaluate

        ch.phase(f"judging model {model_dir.name}")
        gen = model.sample(JUDGE_SAMPLES, cls, seed=0)
        try:
            rep = evaluate(
                gen,
                train_ds.classes[cls],
                held_ds.classes[cls],
                t["mode"],
                rate=cfg["audio"]["rate"],
            )
        except MiragenError as exc:
            report.update(judged=False, passed=False, reasons=[f"the judge could not run: {exc}"])
        else:
            passed = bool(rep.passed)
            reasons = list(rep.reasons) + (
                [rep.inconclusive_reason()] if rep.verdict == "inconclusive" else []
            )
            report.update(
                judged=True,
                passed=passed,
                verdict=rep.verdict,
                reasons=reasons,
                power=rep.power,
                metrics=rep.to_dict().get("metrics", {}),
            )
    else:
        report.update(
            judged=False,
            passed=False,
            reasons=[f"class has {len(ds)} sounds; {MIN_JUDGE_CLASS} needed to judge"],
        )
    return {"passed": passed, "report": report, "files": len(ds), "run_s": budget.elapsed()}


# ------------------------------------------------------------------------------ generate
def part_dir(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.part")


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The committed result of a generation (None: not generated, or cut by a kill)."""
    try:
        return json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def task_generate(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Draw, gate and write a request's candidates; commit them with their manifest."""
    from ..engines.base import load_model
    from ..engines.generate import generate_to_folder
    from ..fsutil import atomic_write_text, fsync_dir

    root, cfg, cls, name = Path(spec["state"]), spec["cfg"], spec["class"], spec["name"]
    out_dir = root / "out" / name
    done = read_manifest(out_dir)
    if done is not None:
        return done
    timing = {
        "start_s": round(ch.t_main - float(spec.get("spawned", ch.t_main)), 3)
    }  # python + miragen import
    t_mark = time.time()
    ch.phase("loading torch")
    _heavy_imports()
    t = cfg["train"]
    if t["threads"]:
        import torch

        torch.set_num_threads(int(t["threads"]))
    timing["torch_s"] = round(time.time() - t_mark, 3)
    t_mark = time.time()
    ch.phase(f"loading model {spec['model']}")
    model = load_model(root / spec["model"])
    timing["model_s"] = round(time.time() - t_mark, 3)
    t_mark = time.time()
    try:
        train_waves = _dataset(root, cfg, cls).classes.get(cls)
    except MiragenError:
        train_waves = None
    part = part_dir(out_dir)
    if part.exists():
        shutil.rmtree(part)  # our own folder from a killed attempt
    ch.phase(f"generating {spec['count']} of {cls}")
    g = cfg["generate"]
    result = generate_to_folder(
        model,
        int(spec["count"]),
        part,
        cls=cls,
        cfg=cfg,
        gate=g["gate"],
        train_waves=train_waves,
        seed=int(spec["seed"]),
    )
    timing["generate_s"] = round(time.time() - t_mark, 3)
    timing["total_s"] = round(time.time() - float(spec.get("spawned", ch.t_main)), 3)

    def rel(f) -> str:
        return str((out_dir / Path(f).name).relative_to(root))

    manifest = {
        "files": [rel(f) for f in result.files],
        "pcm": [rel(f) for f in result.pcm],  # best first
        "summary": result.summary,
        "warnings": result.warnings[:20],
        "model": spec["model"],
        "class": cls,
        "timing": timing,
    }
    part.mkdir(parents=True, exist_ok=True)
    if (
        out_dir.exists()
    ):  # a folder made by something else first (an older daemon): move file by file
        for f in sorted(part.iterdir()):
            os.replace(f, out_dir / f.name)
        fsync_dir(out_dir)
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(part)
    else:
        atomic_write_text(part / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        os.replace(part, out_dir)
        fsync_dir(out_dir.parent)
    return manifest


# ------------------------------------------------------------------------------ sort (cluster)
def task_sort(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Features of the pool and of the auto classes' members → k-means labels (see .classing)."""
    from .classing import cluster_pool

    ch.phase("loading the unsorted pool")
    return cluster_pool(
        Path(spec["state"]), spec["cfg"], spec["pool"], spec["members"], progress=ch.phase
    )


TASKS = {"train": task_train, "generate": task_generate, "sort": task_sort}


def main() -> int:
    out_fd = os.dup(
        1
    )  # the protocol channel; fd 1 becomes stderr so that library prints never corrupt it
    os.set_inheritable(out_fd, False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ch = _Child(out_fd)
    try:
        spec = json.loads(sys.stdin.readline())
        parent = int(spec.get("parent", os.getppid()))
    except (ValueError, TypeError) as exc:
        ch.emit("error", reason=f"worker: bad task description ({exc})", input=True)
        return 2
    _die_with_parent(parent)
    logging.basicConfig(
        level=spec.get("log_level", "INFO"),
        stream=sys.stderr,
        format=f"%(levelname)s %(name)s [worker {os.getpid()}]: %(message)s",
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, ch.on_signal)
    task = TASKS.get(spec.get("task", ""))
    if task is None:
        ch.emit("error", reason=f"worker: unknown task {spec.get('task')!r}", input=True)
        return 2
    try:
        result = task(ch, spec)
    except StopRequested:
        ch.emit("stopped", run_s=0.0)
        return 0
    except MiragenError as exc:
        ch.emit("error", reason=str(exc), input=True)
        return 1
    except Exception as exc:  # noqa: BLE001  (a bug or a broken library: the daemon retries, then fails the job with this)
        if ch.stop.is_set():
            ch.emit("stopped", run_s=0.0)
            return 0
        log.error("%s task failed:\n%s", spec.get("task"), traceback.format_exc())
        ch.emit("error", reason=f"{type(exc).__name__}: {exc}", input=False)
        return 1
    if result.get("stopped"):
        ch.emit("stopped", run_s=float(result.get("run_s", 0.0)))
    else:
        ch.emit("done", result=result)
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)  # everything is committed and reported: skip tearing torch down (about a second)
