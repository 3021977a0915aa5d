"""A request's keyboard (``keyboard = "<preset>"``): its candidates laid out across one half
and delivered as one playable sound (:mod:`miragen.app.keyboard`).

- ``octaves = 0``: the request's candidates (its ``count``, at most 8, best first) from the
  lowest keys up;
- ``octaves = N``: the best candidate alone, at N octaves (each an octave shorter, filtered);
- a kit request with a keyboard: one candidate of each class, in the class names' order (a
  drum kit across the keys).

By SysEx the half's wave pages go by 0x0C and its parameter block by 0x05/0x15, each read back;
into a disk image the keyboard goes into ``deliver.sound`` of the template. Both routes report
into ``live/delivery.json`` like a single wavesample does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..app import disk as disk_app
from ..app.keyboard import (
    Keyboard,
    Sound,
    deliver_keyboard,
    octave_sounds,
    plan_keyboard,
    write_keyboard_image,
)
from ..errors import MiragenError
from .context import Context, Stopping
from .jobs import Job
from .live import DeliveryLive
from .requests import write_record

log = logging.getLogger(__name__)


def plan(d: Context, p: dict[str, Any]) -> Keyboard:
    """The keyboard of a deliver job's payload (``pcms``, ``keyboard``, ``octaves``)."""
    a = d.cfg["audio"]
    pcms = [d.state.root / rel for rel in p["pcms"]]
    if int(p.get("octaves", 0)) > 0:
        sounds, _warnings = octave_sounds(
            str(pcms[0]),
            int(p["octaves"]),
            rate=a["rate"],
            raw_rate=a["rate"],  # the candidate is Mirage 8-bit at the target rate
            dither=a["dither"],
            cut=True,
        )
    else:
        sounds = [Sound(path.read_bytes(), path.name) for path in pcms]
    return plan_keyboard(sounds, p["keyboard"])


def run(d: Context, job: Job) -> None:
    """Deliver a keyboard by each route once; the request's record says what each key plays."""
    p = job.payload
    name = p["name"]
    parts = ["sysex", "disk"] if p["route"] == "both" else [p["route"]]
    results: dict[str, Any] = dict(p.get("results", {}))
    try:
        keyboard = plan(d, p)
    except (OSError, MiragenError) as exc:
        reason = f"keyboard: {exc}"
        write_record(d.state, name, state="failed", reason=reason)
        d.queue.fail(job, reason)
        return
    for part in parts:
        if results.get(part, {}).get("ok"):
            continue  # delivered before a restart: counted once
        delivery_id = f"{name}:{part}"
        d.deliveries.start(delivery_id, job.id, name, part)
        live = DeliveryLive(d.state.live_delivery, name, part)
        try:
            res = _sysex(d, keyboard, p, live) if part == "sysex" else _disk(d, keyboard, p, live)
        except Stopping:
            live.fail("stopped by shutdown; sent again after the restart")
            raise
        live.end(res)
        d.deliveries.end(delivery_id, bool(res.get("ok")), res)
        results[part] = res
        p["results"] = results
        d.queue.save_payload(job)
    _finish(d, job, parts, results, keyboard)


def _finish(
    d: Context, job: Job, parts: list[str], results: dict[str, Any], keyboard: Keyboard
) -> None:
    p = job.payload
    ok = all(results[k].get("ok") for k in parts)
    reason = "; ".join(f"{k}: {results[k].get('error')}" for k in parts if not results[k].get("ok"))
    write_record(
        d.state,
        p["name"],
        state="done" if ok else "failed",
        delivery=results,
        reason=reason,
        keyboard=keyboard.to_dict(),
        **({"delivered": p["pcms"][0], "delivered_all": p["pcms"]} if ok else {}),
    )
    if ok:
        d.queue.finish(job)
        log.info("request %s: keyboard delivered (%s)", p["name"], ", ".join(parts))
    else:
        d.queue.fail(job, reason)
        log.warning("request %s: keyboard delivery failed: %s", p["name"], reason)


def _sysex(d: Context, keyboard: Keyboard, p: dict[str, Any], live: DeliveryLive) -> dict:
    c = d.cfg["deliver"]
    link = d.transport
    assert link is not None, "a SysEx delivery needs the daemon's transport"
    started = False

    def progress(done: int, total: int) -> None:
        nonlocal started
        if not started:
            live.start(total)
            started = True
        live.progress(done, total)
        d.heartbeats.beat("deliver")
        d.heartbeats.set_activity("deliver", f"{p['name']} (keyboard): {done}/{total} bytes")
        if d.stopping.is_set():
            raise Stopping()

    with link.exclusive() as transport:
        res = deliver_keyboard(
            transport,
            keyboard,
            p["half"],
            verify=c["verify"],
            tries=c["tries"],
            ack_margin_s=c["ack_margin_s"],
            progress=progress,
        )
    if res.get("ok"):
        link.ok()
    else:
        link.failed(str(res.get("error")))
    return res


def _disk(d: Context, keyboard: Keyboard, p: dict[str, Any], live: DeliveryLive) -> dict:
    c = d.cfg["deliver"]
    live.start(len(keyboard.wave))
    try:
        template = disk_app.load_template(c["template"])
        image, report = write_keyboard_image(template, keyboard, p["sound"])
    except (OSError, MiragenError) as exc:
        return {"ok": False, "error": f"disk image: {exc}"}
    about = disk_app.describe(
        p["sound"], 1, p["pcms"][0], request=p["name"], template=c["template"], by="daemon"
    )
    octaves = int(p.get("octaves", 0))
    sources = [p["pcms"][0]] * octaves if octaves else list(p["pcms"])
    about["contents"] = [
        {"sound": p["sound"], "wavesample": i + 1, "source": src} for i, src in enumerate(sources)
    ]
    pub = disk_app.publish(
        image,
        d.state.out / p["name"] / f"{p['name']}.img",
        stick=d.cfg["paths"]["usb_stick"],
        stick_keep=d.cfg["paths"]["stick_keep"],
        about=about,
    )
    res: dict[str, Any] = {
        "ok": pub["ok"],
        "image": str(Path(pub["image"]).relative_to(d.state.root)),
        "sound": p["sound"],
        "report": disk_app.report_json(report),
    }
    for key in ("usb_stick", "stick_removed", "error", "warnings"):
        if pub.get(key):
            res[key] = pub[key]
    return res
