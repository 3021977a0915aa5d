"""The heavy stages of the daemon: request → generate → deliver, and train.

Each function runs one job to its end (done, failed, or put back for later) and is idempotent:
it records where it is in the job's payload before each step that cannot be undone, so a
restart after kill -9 finishes the job without repeating a delivery.

Training policy (one model line per class, ``models/<class>/vNNNN``):
- new material schedules a retrain of its class ``train.debounce_s`` after the latest file;
- the run gets ``train.seconds`` (a run stopped by SIGTERM checkpoints and resumes with the rest
  of its budget);
- the training itself runs in a child process (:func:`.tasks.task_train`): a class with fewer
  than ``MIN_TRAIN_CLASS`` (5) sounds is not trained (it waits for more); the class is split into
  training and held-out material (when it has at least ``MIN_JUDGE_CLASS`` (20) sounds, so that
  ≥ 4 are held out) and the new model is judged by ``judge.metrics.evaluate``; its report (kept
  in the model registry) says how many sounds it was trained on and how many were held out;
- the new model becomes *current* when it passes, or when the class has no current model yet
  (a first model serves even when it fails or the class is too small to judge: the candidate
  gate still filters what it makes, and its status shows the verdict);
- otherwise the previous model keeps serving and the new one is kept beside it, judged failed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ..app import disk as disk_app
from ..app.disk import is_cycle
from ..app.sysex import sysex_body
from ..errors import MiragenError
from ..mirage import sysex as S
from ..transport.deliver import deliver_wavesample
from . import keyboards
from .child import ChildFailed, ChildStopped, run_child, worker_name
from .classing import POOL, run_sort
from .context import Context, Stopping
from .jobs import Job
from .live import DeliveryLive, TrainingLive
from .manifest import read_manifest
from .models import model_verdict
from .requests import (
    RequestError,
    candidate_file,
    parse_request_file,
    read_record,
    unique_name,
    write_record,
)
from .state import KIT, class_mode, printable, reject_file, safe_name

log = logging.getLogger(__name__)

MODEL_WAIT_S = 2.0  # a request whose class is still training is looked at again after this
SAVE_SPENT_S = 5.0  # how often a training run records the budget it has spent


# ------------------------------------------------------------------------------ requests
def run_request(d: Context, job: Job) -> None:
    """A claimed request file (or a trigger's request) → result record + generate job."""
    p = job.payload
    state, queue = d.state, d.queue
    if "name" not in p:
        src = state.root / p["path"]
        original = p.get("original") or src.name
        if "rejected" not in p:
            try:
                if src.is_symlink() or not src.is_file():
                    raise RequestError(
                        f"{printable(Path(original).name)}: not a regular file "
                        "(links are not followed)"
                    )
                request = parse_request_file(src, display=Path(original).name)
            except RequestError as exc:  # names recorded first: a kill here never makes two records
                p["failed_name"] = unique_name(state, Path(original).stem)
                p["rejected"] = str(
                    state.unique_in(state.rejected, safe_name(Path(original).name)).relative_to(
                        state.root
                    )
                )
                p["reason"] = str(exc)
                queue.save_payload(job)
        if "rejected" in p:
            write_record(
                state,
                p["failed_name"],
                state="failed",
                reason=p["reason"],
                source=f"file {printable(original)}",
                request={},
            )
            reject_file(state, src, original, p["reason"], state.root / p["rejected"])
            queue.finish(job)
            log.info("rejected request %s: %s", printable(original), p["reason"])
            return
        p["name"] = unique_name(state, request["name"] or Path(original).stem)
        p["request"] = request
        p["source"] = f"file {printable(original)}"
        queue.save_payload(job)
    name = p["name"]
    record = {"state": "queued", "request": p["request"], "source": p.get("source", "")}
    if p.get("path"):
        src = state.root / p["path"]
        kept = state.records / f"{name}.request{Path(p['path']).suffix.lower()}"
        if src.exists():
            os.replace(src, kept)
        record["request_file"] = str(kept.relative_to(state.root))
    write_record(state, name, **record)
    with d.db.transaction() as c:
        queue.add(
            "generate",
            {"name": name, "request": p["request"]},
            key=f"generate:{name}",
            subject=name,
            conn=c,
        )
        queue.finish(job, conn=c)
    log.info("request %s queued (%s)", name, record["source"])


# ------------------------------------------------------------------------------ training
def run_train(d: Context, job: Job) -> None:
    """Train one class in a child process (:mod:`.tasks`); record the model and its verdict here.

    The pool of unsorted material (class :data:`~.classing.POOL`) is not trained: its "train"
    job sorts it into auto classes (:func:`.classing.run_sort`)."""
    cls = job.subject
    if cls == POOL:
        run_sort(d, job)
        return
    p = job.payload
    if "version" not in p:
        folder = d.state.models / cls
        existing = sorted(folder.glob("v[0-9][0-9][0-9][0-9]")) if folder.is_dir() else []
        p["version"] = f"v{len(existing) + 1:04d}"
        p["elapsed"] = 0.0
        d.queue.save_payload(job)
    model_dir = d.state.models / cls / p["version"]
    spent0 = float(p.get("elapsed", 0.0))
    live = TrainingLive(  # live/training-<class>.json, for the web process
        d.state.live_training(cls),
        cls,
        p["version"],
        budget_s=float(d.cfg["train"]["seconds"]),
        spent0=spent0,
    )
    try:
        res = _train_in_child(d, job, model_dir, spent0, live)
    except ChildStopped as stop:
        p["elapsed"] = spent0 + stop.run_s
        live.set_state("stopped", run_s=round(p["elapsed"], 3))
        d.queue.requeue(job, error="stopped by shutdown; resumes from its checkpoint", uncount=True)
        log.info("training of %s checkpointed at shutdown (%.0f s done)", cls, p["elapsed"])
        return
    except Exception as exc:  # ChildFailed (the job fails), ChildCrashed (retried)
        live.set_state("failed", error=str(exc)[:500])
        if not isinstance(exc, ChildFailed):
            raise
        d.queue.fail(job, f"training class {cls} failed: {exc}")
        return
    p["files"] = res.get("files")
    if res.get("skipped"):
        p["skipped"] = res["skipped"]
        log.info("%s: waiting for more material", p["skipped"])
        d.queue.finish(job)
        return
    serves = _record_model(d, cls, model_dir, res)
    report = res.get("report", {})
    live.set_state(
        "done",
        model=str(model_dir.relative_to(d.state.root)),
        verdict=model_verdict(report),
        passed=bool(res.get("passed")),
        serves=serves,
        run_s=round(spent0 + float(res.get("run_s", 0.0)), 3),
    )
    d.queue.finish(job)


def _train_in_child(
    d: Context, job: Job, model_dir: Path, spent0: float, live: TrainingLive
) -> dict[str, Any]:
    """The train task with the budget this job has left (``spent0`` seconds spent before); the
    seconds spent are saved in the job's payload now and then, so that a kill keeps them. The
    child's phases and progress go into ``live`` (``live/training-<class>.json``)."""
    saved = {"at": time.monotonic()}

    def on_event(ev: dict[str, Any]) -> None:
        live.event(ev)
        if ev.get("ev") == "progress" and time.monotonic() - saved["at"] >= SAVE_SPENT_S:
            job.payload["elapsed"] = spent0 + float(ev.get("run_s", 0.0))
            d.queue.save_payload(job)
            saved["at"] = time.monotonic()

    spec = {
        "class": job.subject,
        "model_dir": str(model_dir.relative_to(d.state.root)),
        "remaining_s": max(1.0, float(d.cfg["train"]["seconds"]) - spent0),
    }
    return run_child(
        d, worker_name("train"), "train", spec, what=f"train {job.subject}", on_event=on_event
    )


def _record_model(d: Context, cls: str, model_dir: Path, res: dict[str, Any]) -> bool:
    """Record the trained model and its report; it serves when :func:`takes_over` says so
    (returned). A kit's model is recorded once for each of its classes, with that class's own
    verdict (returned: whether it serves any)."""
    report = res.get("report", {})
    if cls == KIT:
        facts = {k: v for k, v in report.items() if k not in ("classes", "reasons", "verdict")}
        serves = False
        for c, rep in sorted(report.get("classes", {}).items()):
            one = {"passed": rep["passed"], "report": facts | rep}
            serves = _record_model(d, c, model_dir, one) or serves
        return serves
    passed = bool(res.get("passed"))
    make_current = takes_over(report, d.models.current(cls))
    rel = str(model_dir.relative_to(d.state.root))
    if not d.models.known(rel, cls):  # not recorded before a kill
        d.models.add(cls, rel, passed, report, make_current)
    log.info(
        "class %s: model %s %s%s",
        cls,
        model_dir.name,
        "passed" if passed else "not passed",
        " and serves now" if make_current else "; the previous model keeps serving",
    )
    return make_current


def _verdict_rank(report: dict[str, Any]) -> int:
    return {"pass": 2, "inconclusive": 1}.get(model_verdict(report), 0)


def takes_over(report: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """Does a newly trained model (its judge ``report``) serve instead of ``current`` (the
    models row serving now, or None)? pass > inconclusive (too few held-out sounds to tell) >
    fail or not judged: a model that passes serves; an inconclusive one unless the one serving
    passed; a failed one only when the class has no model yet."""
    if current is None:
        return True
    rank = _verdict_rank(report)
    now = current.get("report") or {"passed": bool(current.get("passed"))}
    return rank >= 1 and rank >= _verdict_rank(now)


# ------------------------------------------------------------------------------ generation
def _pick_class(d: Context, wanted: str) -> str | None:
    if wanted:
        return wanted
    serving = sorted(d.models.serving())
    if serving:
        return serving[0]
    counts = {c: n for c, n in d.corpus.class_counts().items() if c != POOL}  # never trained
    return min(counts) if counts else None


def run_generate(d: Context, job: Job) -> None:
    """A request → its candidates (in a child process), then a deliver job for the best one."""
    p = job.payload
    name, req = p["name"], p["request"]
    if req.get("candidate"):
        _deliver_candidate(d, job, name, req)
        return
    if req.get("kit"):
        if job.payload.get("waiting"):
            _kit_keyboard(d, job, name, req)
        else:
            _expand_kit(d, job, name, req)
        return
    cls = _pick_class(d, req.get("class", ""))
    if cls is None:
        _fail_request(
            d, job, name, "no class to generate from: the corpus is empty (drop sounds into inbox/)"
        )
        return
    current = d.models.current(cls)
    if current is None:
        _wait_for_model(d, job, name, cls)
        return
    write_record(d.state, name, state="running", **{"class": cls})
    res = read_manifest(d.state.out / name)  # committed before a kill: not generated again
    if res is None:
        spec = {
            "name": name,
            "class": cls,
            "model": current["path"],
            "count": int(req["count"]),
            "seed": job.id,
        }
        try:  # in a child process: torch is loaded there, never in the daemon
            res = run_child(d, "generate", "generate", spec, what=f"request {name}")
        except ChildStopped:
            raise Stopping() from None
    files, pcms = list(res.get("files", [])), list(res.get("pcm", []))  # pcm: best first
    if not pcms:
        _fail_request(
            d, job, name, f"no candidate passed the gate ({res.get('summary', '')})", files=files
        )
        return
    write_record(
        d.state,
        name,
        state="running",
        files=files,
        candidates=pcms,
        model=current["path"],
        gate=res.get("summary", ""),
        warnings=list(res.get("warnings", []))[:20],
        worker_timing=res.get("timing", {}),  # the child process's timing (the key is older)
    )
    if (req.get("route") or d.cfg["deliver"]["route"]) == "none":  # candidates only
        write_record(d.state, name, state="done")
        d.queue.finish(job)
        return
    if req.get("keyboard"):
        payload = _keyboard_delivery(d, name, req, pcms if not req["octaves"] else pcms[:1])
    else:
        payload = _delivery(d, name, req, pcms[0])
    with d.db.transaction() as c:
        d.queue.add("deliver", payload, key=f"deliver:{name}", subject=name, conn=c)
        d.queue.finish(job, conn=c)


def _keyboard_delivery(
    d: Context, name: str, req: dict[str, Any], pcms: list[str]
) -> dict[str, Any]:
    """The deliver job's payload for a keyboard (:mod:`.keyboards`): ``pcms`` across the half."""
    return {
        "name": name,
        "pcms": pcms[:8],
        "keyboard": req["keyboard"],
        "octaves": int(req.get("octaves", 0)),
        "route": req.get("route") or d.cfg["deliver"]["route"],
        "half": req["half"],
        "sound": req.get("sound") or d.cfg["deliver"]["sound"],
    }


def _deliver_candidate(d: Context, job: Job, name: str, req: dict[str, Any]) -> None:
    """A request for a candidate an earlier request made (``candidate = "<request>/<file>.pcm"``):
    nothing is generated; the file, once checked (:func:`.requests.candidate_file`), goes to the
    usual deliver job."""
    wanted = req["candidate"]
    try:
        pcm, earlier = candidate_file(d.state, wanted)
    except RequestError as exc:
        _fail_request(d, job, name, str(exc), candidate=wanted)
        return
    write_record(
        d.state,
        name,
        state="running",
        candidate=wanted,
        model=earlier.get("model", ""),
        **{"class": earlier.get("class", "")},
    )
    with d.db.transaction() as c:
        d.queue.add(
            "deliver", _delivery(d, name, req, pcm), key=f"deliver:{name}", subject=name, conn=c
        )
        d.queue.finish(job, conn=c)
    log.info("request %s delivers candidate %s", name, printable(wanted))


def _expand_kit(d: Context, job: Job, name: str, req: dict[str, Any]) -> None:
    """A kit request (``kit = true``): one request per class that has a model, each for one
    class and the next wavesample (``<name>-<class>``, with its own record); the kit's record
    lists them."""
    classes = sorted(c for c in d.models.serving() if c != POOL)
    if not classes:
        trains = d.queue.jobs(kind="train")
        if any(j.state in ("queued", "running") for j in trains) or d.arriving():
            d.heartbeats.set_activity("generate", f"{name} waits for the kit to train")
            d.queue.requeue(job, delay_s=MODEL_WAIT_S, uncount=True)
            return
        _fail_request(d, job, name, "kit: no class has a trained model yet")
        return
    first = int(req["wavesample"])
    if first + len(classes) - 1 > 8:
        _fail_request(
            d,
            job,
            name,
            f"kit: {len(classes)} classes ({', '.join(classes)}) from wavesample {first} need "
            f"wavesamples {first}..{first + len(classes) - 1}; a half has 8",
        )
        return
    children: dict[str, str] = dict(job.payload.get("children", {}))
    for i, cls in enumerate(classes):  # names kept in the payload: a kill never makes two
        children.setdefault(cls, unique_name(d.state, f"{name}-{cls}"))
    job.payload["children"] = children
    d.queue.save_payload(job)
    keyboard = bool(req.get("keyboard"))
    with d.db.transaction() as c:
        for i, cls in enumerate(classes):
            child = dict(req, kit=False, name=children[cls], wavesample=first + i)
            child["class"] = cls
            if keyboard:  # the children make candidates; the kit delivers them as one keyboard
                child.update(keyboard="", octaves=0, route="none", count=1)
            d.queue.add(
                "request",
                {"name": children[cls], "request": child, "source": f"kit request {name}"},
                key=f"request:{children[cls]}",
                subject=children[cls],
                conn=c,
            )
        if not keyboard:
            d.queue.finish(job, conn=c)
    if keyboard:  # a kill before this re-adds nothing: the children's jobs have keys
        job.payload["waiting"] = True
        d.queue.requeue(job, delay_s=MODEL_WAIT_S, uncount=True)
    write_record(
        d.state, name, state="running" if keyboard else "done", kit=children, **{"class": ""}
    )
    log.info("kit request %s: %s", name, ", ".join(f"{c} → {n}" for c, n in children.items()))


def _kit_keyboard(d: Context, job: Job, name: str, req: dict[str, Any]) -> None:
    """A kit request with a keyboard, once its requests are queued: when each has its
    candidate, one keyboard of them (the classes in name order) goes to the half."""
    children: dict[str, str] = job.payload["children"]
    records = {c: read_record(d.state, n) or {} for c, n in children.items()}
    failed = [
        f"{c}: {r.get('reason', '')}" for c, r in records.items() if r.get("state") == "failed"
    ]
    if failed:
        _fail_request(d, job, name, "kit: " + "; ".join(failed))
        return
    if not all(r.get("state") == "done" and r.get("candidates") for r in records.values()):
        d.heartbeats.set_activity("generate", f"{name} waits for its kit's sounds")
        d.queue.requeue(job, delay_s=MODEL_WAIT_S, uncount=True)
        return
    pcms = [records[c]["candidates"][0] for c in sorted(children)]
    write_record(d.state, name, state="running", candidates=pcms)
    with d.db.transaction() as c:
        payload = _keyboard_delivery(d, name, dict(req, octaves=0), pcms)
        d.queue.add("deliver", payload, key=f"deliver:{name}", subject=name, conn=c)
        d.queue.finish(job, conn=c)


def _wait_for_model(d: Context, job: Job, name: str, cls: str) -> None:
    """A class without a model: wait while it trains or while material is still arriving (it may
    be this class's); otherwise fail the request with the reason."""
    trains = d.queue.jobs(kind="train")
    mine = (cls, KIT)  # a class of a kit trains in the kit's job
    if any(j.subject in mine and j.state in ("queued", "running") for j in trains) or d.arriving():
        d.heartbeats.set_activity("generate", f"{name} waits for class {cls} to train")
        d.queue.requeue(job, delay_s=MODEL_WAIT_S, uncount=True)
        return
    known = sorted(d.corpus.class_counts())
    failed = [
        j.last_error or j.payload.get("skipped", "")
        for j in trains
        if j.subject in mine and (j.state == "failed" or j.payload.get("skipped"))
    ][:1]
    why = (
        f"class '{cls}' has no trained model"
        + (f" (classes: {', '.join(known)})" if known else " (the corpus is empty)")
        + (f"; {failed[0]}" if failed else "")
    )
    _fail_request(d, job, name, why)


def _delivery(d: Context, name: str, req: dict[str, Any], pcm: str) -> dict[str, Any]:
    """The deliver job's payload: where the request's best candidate goes."""
    return {
        "name": name,
        "pcm": pcm,
        "route": req.get("route") or d.cfg["deliver"]["route"],
        "half": req["half"],
        "wavesample": req["wavesample"],
        "sound": req.get("sound") or d.cfg["deliver"]["sound"],
    }


def _fail_request(d: Context, job: Job, name: str, reason: str, **fields: Any) -> None:
    write_record(d.state, name, state="failed", reason=reason, **fields)
    d.queue.fail(job, reason)
    log.warning("request %s failed: %s", name, reason)


# ------------------------------------------------------------------------------ delivery
def run_deliver(d: Context, job: Job) -> None:
    """Send the request's best candidate by each route (SysEx, disk image), each once."""
    p = job.payload
    if p.get("keyboard"):
        keyboards.run(d, job)
        return
    name = p["name"]
    data = (d.state.root / p["pcm"]).read_bytes()
    cls = _pcm_class(d, p["pcm"])
    cycle = class_mode(d.cfg, cls) == "cycle" and is_cycle(data)
    parts = ["sysex", "disk"] if p["route"] == "both" else [p["route"]]
    results: dict[str, Any] = dict(p.get("results", {}))
    for part in parts:
        delivery_id = f"{name}:{part}"
        if results.get(part, {}).get("ok"):
            continue  # delivered before a restart: counted once
        d.deliveries.start(delivery_id, job.id, name, part)
        live = DeliveryLive(d.state.live_delivery, name, part)  # for the web process
        try:
            if part == "sysex":
                body = sysex_body(data, cycle=cycle, cycle_pages=d.cfg["deliver"]["cycle_pages"])
                res = _deliver_sysex(d, body, p, live)
            else:
                res = _deliver_disk(d, data, p, live, cls, cycle)
        except Stopping:
            live.fail("stopped by shutdown; sent again after the restart")
            raise
        except Exception as exc:
            live.fail(str(exc)[:500] or type(exc).__name__)
            raise
        live.end(res)
        d.deliveries.end(delivery_id, bool(res.get("ok")), res)
        results[part] = res
        p["results"] = results
        d.queue.save_payload(job)
    ok = all(results[k].get("ok") for k in parts)
    reason = "; ".join(f"{k}: {results[k].get('error')}" for k in parts if not results[k].get("ok"))
    sent = {"delivered": p["pcm"]} if ok else {}  # the candidate that reached the Mirage
    write_record(
        d.state, name, state="done" if ok else "failed", delivery=results, reason=reason, **sent
    )
    if ok:
        d.queue.finish(job)
        log.info("request %s delivered (%s)", name, ", ".join(parts))
    else:
        d.queue.fail(job, reason)
        log.warning("request %s: delivery failed: %s", name, reason)


def _pcm_class(d: Context, pcm: str) -> str:
    """The class a candidate was made of (its request's manifest names it; "" when unknown).
    With :func:`~.state.class_mode` it says whether the candidate is a single cycle, tiled on
    delivery, or a one-shot, which gets its own loop."""
    made = read_manifest(d.state.root / Path(pcm).parent) or {}
    return str(made.get("class", ""))


def _sysex_bytes(data: bytes, p: dict[str, Any]) -> int:
    """The bytes one try of the dump sends (the key presses and the 0x06 message); 0 for data no
    dump can carry (the delivery says why)."""
    try:
        keys = S.encode_keys(S.select_wavesample_keys(p["half"], int(p["wavesample"])))
        return len(keys) + len(S.encode_wavesample_dump(data))
    except (MiragenError, ValueError):
        return 0


def _deliver_sysex(
    d: Context, data: bytes, p: dict[str, Any], live: DeliveryLive
) -> dict[str, Any]:
    c = d.cfg["deliver"]
    link = d.transport
    assert link is not None, "a SysEx delivery needs the daemon's transport"
    live.start(_sysex_bytes(data, p))

    def progress(done: int, total: int) -> None:
        live.progress(done, total)
        d.heartbeats.beat("deliver")
        d.heartbeats.set_activity("deliver", f"{p['name']}: {done}/{total} bytes")
        if d.stopping.is_set():
            raise Stopping()

    try:
        with link.exclusive() as transport:  # a failure is recorded as the transport's
            res = deliver_wavesample(
                transport,
                data,
                half=p["half"],
                number=int(p["wavesample"]),
                tries=c["tries"],
                verify=c["verify"],
                chunk_size=c["chunk_size"],
                chunk_gap_s=c["chunk_gap_ms"] / 1000.0,
                ack_margin_s=c["ack_margin_s"],
                progress=progress,
            )
    except MiragenError as exc:
        return {"ok": False, "error": str(exc), "transport": c["transport"]}
    out = res.to_dict()
    out["transport"] = c["transport"]
    out["pages"] = len(data) // 256
    out["half"], out["wavesample"] = p["half"], int(p["wavesample"])
    if res.ok:
        link.ok()
    else:
        link.failed(str(res.error))
    return out


def _deliver_disk(
    d: Context, data: bytes, p: dict[str, Any], live: DeliveryLive, cls: str, cycle: bool
) -> dict[str, Any]:
    """The request's sound (of class ``cls``; a single ``cycle`` is tiled, a one-shot gets its
    own loop) into the template, as ``out/<name>/<name>.img`` beside IMG.CFG, and onto the USB
    stick when one is configured (:mod:`miragen.app.disk`)."""
    c = d.cfg["deliver"]
    live.start(len(data))
    try:
        template = disk_app.load_template(c["template"])
        oneshot = class_mode(d.cfg, cls) == "oneshot"
        placed = disk_app.place(  # a one-shot gets its own loop (sustained) or none
            template, p["sound"], int(p["wavesample"]), data, cycle=cycle, loop=oneshot
        )
    except (OSError, MiragenError) as exc:
        return {"ok": False, "error": f"disk image: {exc}"}
    out_dir = d.state.out / p["name"]
    pub = disk_app.publish(
        placed.image,
        out_dir / f"{p['name']}.img",
        stick=d.cfg["paths"]["usb_stick"],
        stick_keep=d.cfg["paths"]["stick_keep"],
        about=disk_app.describe(
            p["sound"],
            int(p["wavesample"]),
            p["pcm"],
            request=p["name"],
            cls=cls,
            template=c["template"],
            by="daemon",
        ),
    )
    res: dict[str, Any] = {
        "ok": pub["ok"],
        "image": str(Path(pub["image"]).relative_to(d.state.root)),
        "sound": p["sound"],
        "wavesample": int(p["wavesample"]),
        "report": disk_app.report_json(placed.report),
    }
    for key in ("usb_stick", "stick_removed", "error"):
        if key in pub:
            res[key] = pub[key]
    if pub["warnings"]:
        res["warnings"] = pub["warnings"]
    return res
