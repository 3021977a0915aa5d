"""The daemon's heavy jobs, run in a child process: ``python -m miragen.service.tasks``.

Training, generation and the sorting of unsorted material import torch, the engines and
scikit-learn (hundreds of MB). The daemon runs each such job in a fresh child process, so the
daemon itself never loads them and stays small when idle (docs/daemon.md, "Footprint"). The
parent side is :mod:`.child`.

Protocol: the parent writes one JSON line (the task) on the child's stdin and closes it; the
child writes JSON lines on its stdout, one per event:

- ``{"ev": "phase", "text": …}`` and ``{"ev": "progress", "text": …, "run_s": …}``: the
  child is alive (the parent beats its worker thread's watchdog heartbeat on each line and
  kills a child silent for longer than its limit); a training's phases name their ``state``
  (``training``, ``saving``, ``judging``) and its progress has ``step``, ``run_s`` and
  ``budget_s`` (seconds of this run) and, for a judged snapshot, ``snapshot: true``, its
  ``score`` and the judge's ``metrics`` (the daemon writes them into
  ``live/training-<class>.json``, :mod:`.live`);
- ``{"ev": "done", "result": {…}}``: the task finished;
- ``{"ev": "stopped", "run_s": …}``: SIGTERM/SIGINT stopped it (training saved its checkpoint);
- ``{"ev": "error", "reason": …, "input": bool}``: it failed (``input``: a problem with the
  material or the model, not worth a retry).

Anything a library prints goes to stderr (the daemon's log), never into the protocol.

The child dies with the daemon: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux), and a thread that
checks ``getppid()`` once a second (other systems, and the moment before prctl took effect).
A warm child (``--warm PARENT_PID``, :class:`.child.WarmChild`) does that and its heavy imports
first, then waits for its task line; an empty stdin lets it go (exit 0).
Results are written atomically: a model folder is saved as ``vNNNN.part`` and renamed; the
candidates of a request are written into ``out/.<name>.part/`` with their manifest
(``generate.json``, :mod:`.manifest`) and renamed to ``out/<name>/``; a kill -9 of either process
leaves no half-written result under a real name, and the next attempt removes the stale
``.part`` folder.
"""

from __future__ import annotations

import ctypes
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

from ..corpus.dataset import Dataset, load_dataset
from ..engines.base import Budget, Model, Progress, engine_class, load_model
from ..engines.base import training_options as base_training_options
from ..engines.generate import generate_to_folder
from ..errors import MiragenError
from ..judge.metrics import evaluate
from .classing import cluster_pool
from .live import snapshot_score
from .manifest import commit, part_dir, read_manifest
from .state import KIT, POOL, class_mode

log = logging.getLogger("miragen.service.tasks")  # __main__ in the child

MIN_TRAIN_CLASS = 5  # fewer sounds than this: the class waits for more material (engines need ≥ 5)
MIN_JUDGE_CLASS = 20  # fewer sounds than this: no held-out split (the judge needs ≥ 4 held out)
JUDGE_SAMPLES = 64
PR_SET_PDEATHSIG = 1
MODEL_META_FACTS = ("steps", "train_seconds", "device")  # from the model's meta, into its report


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
        self.warm = False  # started ahead of need (.child.WarmChild)

    def emit(self, ev: str, **fields: Any) -> None:
        line = (json.dumps({"ev": ev, **fields}, default=str) + "\n").encode()
        with self._lock:
            try:
                os.write(self.out_fd, line)
            except OSError:  # the daemon is gone: nobody to work for
                os._exit(3)

    def phase(self, text: str, **fields: Any) -> None:
        self.emit("phase", text=text, **fields)
        if self.stop.is_set():
            raise StopRequested()

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stop.set()
        if not self.in_fit:  # training stops at its next step and checkpoints; the rest at once
            raise StopRequested()


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the daemon dies (Linux); else a once-a-second check of the parent's pid."""
    try:
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


def _dataset(root: Path, cfg: dict[str, Any], cls: str) -> Dataset:
    """Class ``cls`` of the corpus, or for :data:`~.state.KIT` every class but the unsorted
    pool (each with at least :data:`MIN_TRAIN_CLASS` sounds: fewer wait for more material)."""
    a = cfg["audio"]
    ds = load_dataset(
        root / "corpus",
        class_mode(cfg, cls),
        rate=a["rate"],
        raw_rate=a["raw_rate"],
        max_len=a["max_bytes"],
        only_class=None if cls == KIT else cls,
    )
    if cls == KIT:
        for c in list(ds.classes):
            small = len(ds.classes[c]) < MIN_TRAIN_CLASS
            if c == POOL or small or class_mode(cfg, c) != "oneshot":
                del ds.classes[c]
                ds.names.pop(c, None)
    return ds


# ------------------------------------------------------------------------------ train
class StoppableBudget(Budget):
    """The training budget: ends early when the child is asked to stop, and counts from the
    training loop's first step: a fresh process spends a few seconds in the engine's set-up
    (first torch calls, imports), which must not eat a short budget."""

    def __init__(self, stop: threading.Event, seconds: float):
        super().__init__(seconds=seconds)
        self.stop = stop
        self.looping = False

    def done(self, step: int) -> bool:
        if not self.looping:
            self.looping = True
            self.restart()
        return self.stop.is_set() or super().done(step)


def task_train(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Train (or, when the model folder was saved before a kill, only judge) one class.

    The class is split into the sounds the model is trained on and the sounds held out for the
    judge (none below :data:`MIN_JUDGE_CLASS`); the report says how many of each were used."""
    root, cfg, cls = Path(spec["state"]), spec["cfg"], spec["class"]
    ch.phase("loading torch")
    _heavy_imports()
    ch.phase(f"loading class {cls}")
    ds = _dataset(root, cfg, cls)
    if len(ds) < MIN_TRAIN_CLASS:
        what = "the kit's classes have" if cls == KIT else f"class {cls} has"
        return {
            "skipped": f"{what} {len(ds)} sounds; training needs at least {MIN_TRAIN_CLASS}"
            + (" in a class" if cls == KIT else ""),
            "files": len(ds),
        }
    train_ds, held_ds = ds.split(0.8, seed=0) if len(ds) >= MIN_JUDGE_CLASS else (ds, None)
    model_dir = root / spec["model_dir"]
    budget = StoppableBudget(ch.stop, float(spec["remaining_s"]))
    if (model_dir / "model.json").is_file():  # saved before a kill: judge it, do not train again
        model = load_model(model_dir)
    else:
        ch.phase(
            f"training class {cls} ({len(ds)} sounds, {model_dir.name}, {budget.seconds:.0f} s)",
            state="training",
        )
        model = _fit(ch, cfg, cls, train_ds, model_dir, budget)
        if model is None:
            return {"stopped": True, "run_s": budget.elapsed()}
        _save(ch, model, model_dir)
    report: dict[str, Any] = {
        "files": len(ds),
        "seconds": cfg["train"]["seconds"],
        "trained_on": len(train_ds),
        "held_out": len(held_ds) if held_ds is not None else 0,
        **{k: model.meta.get(k) for k in MODEL_META_FACTS},
    }
    if cls == KIT:
        report.update(_judge_kit(ch, cfg, model, model_dir.name, train_ds, held_ds))
    else:
        report.update(_judge(ch, cfg, cls, model, model_dir.name, train_ds, held_ds))
    return {
        "passed": report["passed"],
        "report": report,
        "files": len(ds),
        "run_s": budget.elapsed(),
    }


def train_threads(cfg: dict[str, Any]) -> int:
    """torch CPU threads for one training: ``train.threads``; when that is 0 (all cores) and
    ``train.workers`` trainings may run at once, the cores shared among them (0: torch's choice,
    all cores, for a single worker)."""
    t = cfg["train"]
    if t["threads"] or t["workers"] <= 1:
        return int(t["threads"])
    return max(1, (os.cpu_count() or 1) // int(t["workers"]))


def training_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The engine options of a daemon training: device, threads and checkpoints from
    ``[train]``, then ``train.set``, which may override any of them."""
    return base_training_options(cfg["train"], train_threads(cfg))


def _fit(
    ch: _Child,
    cfg: dict[str, Any],
    cls: str,
    train_ds: Dataset,
    model_dir: Path,
    budget: StoppableBudget,
) -> Model | None:
    """Train the engine on ``train_ds`` (resuming from its checkpoint); None when stopped."""
    t = cfg["train"]
    engine = engine_class(t["engine"])(**training_options(cfg))

    def progress(pr: Progress) -> None:
        ch.emit(**progress_event(pr, cls, budget.elapsed(), budget.seconds))

    ch.in_fit = True
    try:
        model = engine.fit(
            train_ds, budget, progress, model_dir.with_name(f"checkpoint-{model_dir.name}")
        )
    except KeyboardInterrupt:  # an engine that turns the stop into an interrupt (pygan) has
        ch.stop.set()  # checkpointed
    finally:
        ch.in_fit = False
    return None if ch.stop.is_set() else model


def progress_event(pr: Progress, cls: str, run_s: float, budget_s: float) -> dict[str, Any]:
    """The ``progress`` event of one engine report: step and seconds of this run, and for a
    judged snapshot (``message`` "snapshot (score…)") its score and the judge's metrics."""
    ev: dict[str, Any] = {
        "ev": "progress",
        "text": f"{cls} step {pr.step} ({run_s:.0f}/{budget_s:.0f} s)",
        "step": pr.step,
        "run_s": run_s,
        "budget_s": budget_s,
    }
    score = snapshot_score(pr.message or "")
    if score is not None:
        ev.update(snapshot=True, score=score, metrics=dict(pr.metrics))
    return ev


def _save(ch: _Child, model: Model, model_dir: Path) -> None:
    """Save as ``vNNNN.part`` and rename: no half-saved model under a real name."""
    ch.phase(f"saving model {model_dir.name}", state="saving")
    part = model_dir.with_name(model_dir.name + ".part")
    if part.exists():
        shutil.rmtree(part)  # our own half-saved model folder from a killed run (never user data)
    model.save(part)
    os.replace(part, model_dir)


def _judge(
    ch: _Child,
    cfg: dict[str, Any],
    cls: str,
    model: Model,
    version: str,
    train_ds: Dataset,
    held_ds: Dataset | None,
) -> dict[str, Any]:
    """The held-out judge's verdict on the model (``judged``, ``passed``, ``verdict``, …)."""
    if held_ds is None or not len(held_ds):
        n = len(train_ds) + (len(held_ds) if held_ds is not None else 0)
        return {
            "judged": False,
            "passed": False,
            "reasons": [f"class has {n} sounds; {MIN_JUDGE_CLASS} needed to judge"],
        }
    ch.phase(f"judging model {version}", state="judging")
    gen = model.sample(JUDGE_SAMPLES, cls, seed=0)
    try:
        rep = evaluate(
            gen,
            train_ds.classes[cls],
            held_ds.classes[cls],
            class_mode(cfg, cls),
            rate=cfg["audio"]["rate"],
        )
    except MiragenError as exc:
        return {"judged": False, "passed": False, "reasons": [f"the judge could not run: {exc}"]}
    inconclusive = [rep.inconclusive_reason()] if rep.verdict == "inconclusive" else []
    return {
        "judged": True,
        "passed": bool(rep.passed),
        "verdict": rep.verdict,
        "reasons": list(rep.reasons) + inconclusive,
        "power": rep.power,
        "metrics": rep.to_dict().get("metrics", {}),
    }


VERDICT_ORDER = ("fail", "inconclusive", "pass")


def _judge_kit(
    ch: _Child,
    cfg: dict[str, Any],
    model: Model,
    version: str,
    train_ds: Dataset,
    held_ds: Dataset | None,
) -> dict[str, Any]:
    """A kit's model judged class by class (``classes``: each class's report, as a model of
    that class alone would have); the kit passes when every class passes, and its verdict is the
    worst of its classes'."""
    per: dict[str, dict[str, Any]] = {}
    for c in train_ds.class_names:
        held = held_ds.subset(c) if held_ds is not None and held_ds.classes.get(c) else None
        per[c] = _judge(ch, cfg, c, model, version, train_ds.subset(c), held)
        per[c].update(trained_on=len(train_ds.classes[c]), held_out=len(held) if held else 0)
    judged = {c: r for c, r in per.items() if r.get("judged")}
    verdicts = [r.get("verdict") or ("pass" if r["passed"] else "fail") for r in judged.values()]
    out: dict[str, Any] = {
        "judged": bool(judged),
        "passed": bool(judged)
        and len(judged) == len(per)
        and all(r["passed"] for r in per.values()),
        "reasons": [f"{c}: {why}" for c, r in per.items() for why in r.get("reasons", [])],
        "classes": per,
    }
    if verdicts:
        out["verdict"] = min(verdicts, key=VERDICT_ORDER.index)
    return out


# ------------------------------------------------------------------------------ generate
def task_generate(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Draw, gate and write a request's candidates; commit them with their manifest."""
    root, cfg, cls, name = Path(spec["state"]), spec["cfg"], spec["class"], spec["name"]
    out_dir = root / "out" / name
    done = read_manifest(out_dir)
    if done is not None:
        return done
    spawned = float(spec.get("spawned", ch.t_main))
    # python + miragen import (a warm child had them done before its task came)
    timing = {"start_s": round(ch.t_main - spawned, 3), "warm": ch.warm}
    t_mark = time.time()
    ch.phase("loading torch")
    _heavy_imports()
    if cfg["train"]["threads"]:
        import torch

        torch.set_num_threads(int(cfg["train"]["threads"]))
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
    result = generate_to_folder(
        model,
        int(spec["count"]),
        part,
        cls=cls,
        cfg=cfg,
        gate=cfg["generate"]["gate"],
        train_waves=train_waves,
        seed=int(spec["seed"]),
    )
    timing["generate_s"] = round(time.time() - t_mark, 3)
    timing["total_s"] = round(time.time() - spawned, 3)

    def rel(f) -> str:
        return str((out_dir / Path(f).name).relative_to(root))

    manifest = {
        "files": [rel(f) for f in result.files],
        "pcm": [rel(f) for f in result.pcm],  # best first
        "figures": {rel(f): fig for f, fig in zip(result.pcm, result.figures)},  # the gate's
        "summary": result.summary,
        "warnings": result.warnings[:20],
        "model": spec["model"],
        "class": cls,
        "timing": timing,
    }
    commit(part, out_dir, manifest)
    return manifest


# ------------------------------------------------------------------------------ sort (cluster)
def task_sort(ch: _Child, spec: dict[str, Any]) -> dict[str, Any]:
    """Features of the pool and of the auto classes' members → k-means labels (see .classing)."""
    ch.phase("loading the unsorted pool")
    return cluster_pool(
        Path(spec["state"]), spec["cfg"], spec["pool"], spec["members"], progress=ch.phase
    )


TASKS = {"train": task_train, "generate": task_generate, "sort": task_sort}


def main() -> int:
    # the protocol channel; fd 1 becomes stderr so that library prints never corrupt it
    out_fd = os.dup(1)
    os.set_inheritable(out_fd, False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ch = _Child(out_fd)
    warm = ch.warm = sys.argv[1:2] == ["--warm"]
    if warm:  # import everything, then wait for the task
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the daemon's to handle
        _die_with_parent(int(sys.argv[2]))
        _heavy_imports()
    line = sys.stdin.readline()
    if warm and not line.strip():
        return 0  # let go unused
    ch.t_main = time.time()
    try:
        spec = json.loads(line)
        parent = int(spec.get("parent", os.getppid()))
    except (ValueError, TypeError) as exc:
        ch.emit("error", reason=f"child process: bad task description ({exc})", input=True)
        return 2
    if not warm:
        _die_with_parent(parent)
    logging.basicConfig(
        level=spec.get("log_level", "INFO"),
        stream=sys.stderr,
        format=f"%(levelname)s %(name)s [child {os.getpid()}]: %(message)s",
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, ch.on_signal)
    task = TASKS.get(spec.get("task", ""))
    if task is None:
        ch.emit("error", reason=f"child process: unknown task {spec.get('task')!r}", input=True)
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
