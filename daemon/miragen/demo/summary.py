"""The demo's summary: a dict (``miragen demo --json``, ``DIR/demo-summary.json``) and the same
as a few lines for people (:func:`format_summary`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from .findings import DemoRun, Findings
from .folder import CONFIG_NAME, SIM_STATE
from .settings import SYSEX_HALF

SYSEX_FIELDS = (
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
JUDGE_NOTE = (
    "the daemon's held-out judge (judge.metrics.evaluate on 64 generated waves against the "
    "sounds trained on and the sounds held out); a fail verdict is reported and does not fail "
    "the demo"
)


# ------------------------------------------------------------------------------ the dict
def build_summary(run: DemoRun, total_s: float) -> dict[str, Any]:
    found = run.found
    classes = {c: _class_entry(found, c) for c in run.classes}
    best = next(
        (classes[c]["candidates"][0] for c in run.classes if classes[c].get("candidates")), None
    )
    train = found.cfg.get("train", {})
    return {
        "ok": bool(run.stages) and all(s.ok for s in run.stages),
        "folder": str(run.folder),
        "config": str(run.folder / CONFIG_NAME),
        "seconds_total": round(total_s, 1),
        "train_seconds_per_class": train.get("seconds"),
        "engine": train.get("engine"),
        "oneshot_classes": train.get("oneshot_classes", ""),
        "stages": [asdict(s) for s in run.stages],
        "timings_s": _timings(run),
        "classes": classes,
        "judge": {
            "verdicts": found.verdicts,
            "passed": sum(v == "pass" for v in found.verdicts.values()),
            "of": len(found.verdicts),
            "fails_the_demo": False,
            "note": JUDGE_NOTE,
        },
        "delivered": {"disk": _disk_delivered(found), "sysex": _sysex_delivered(found)},
        "previews": found.previews,
        "contact_sheet": found.contact_sheet,
        "pcm_checked": found.pcm_checked,
        "sim_exit": found.sim_exit,
        "next": next_steps(run.folder, best),
    }


def _class_entry(found: Findings, c: str) -> dict[str, Any]:
    """One class: its sounds, its model and verdict, its request (each as the daemon says)."""
    daemon = found.classes.get(c, {})
    model = daemon.get("model") or {}
    entry: dict[str, Any] = {
        "mode": found.modes.get(c, "cycle"),
        "sounds": daemon.get("sounds", found.dropped.get(c, 0)),
        "trained_on": model.get("trained_on"),
        "held_out": model.get("held_out"),
    }
    if model:
        entry.update(
            model=model["path"],
            steps=model.get("steps"),
            train_seconds=model.get("train_seconds"),
            device=model.get("device"),
            judged=bool(model.get("judged")),
            verdict=model["verdict"],
            reasons=list(model.get("reasons") or []),
            metrics=model.get("metrics") or {},
        )
    rec = found.records.get(c)
    if rec:
        best = rec.get("delivered")
        entry["request"] = found.requests[c]
        entry["gate"] = rec.get("gate", "")
        entry["candidates"] = ([best] if best else []) + [  # delivered first
            f for f in rec.get("candidates", []) if f != best
        ]
        entry["delivered"] = best
        entry["state"] = rec.get("state")
        sx = rec.get("delivery", {}).get("sysex", {})
        entry["sysex"] = {k: sx.get(k) for k in SYSEX_FIELDS}
        entry["request_image"] = rec.get("delivery", {}).get("disk", {}).get("image")
    return entry


def _timings(run: DemoRun) -> dict[str, float]:
    """Seconds per part: setup and the demo's own stages (when they succeeded) as timed, the
    daemon's parts from its jobs."""
    stages = {s.name: s for s in run.stages}
    own = {
        n: stages[n].seconds for n in ("disk", "previews", "check") if n in stages and stages[n].ok
    }
    out = {"setup": stages["setup"].seconds} if "setup" in stages else {}
    out.update(run.found.timings)
    out.update(own)
    return out


def _disk_delivered(found: Findings) -> dict[str, Any] | None:
    if not found.disk:
        return None
    return {
        **found.disk,
        "synthetic_template": True,
        "note": "made from the synthetic template: it does not boot a Mirage",
    }


def _sysex_delivered(found: Findings) -> dict[str, Any] | None:
    if not found.pty:
        return None
    return {
        "transport": f"serial:{found.pty}",
        "sim_state": SIM_STATE,
        "half": SYSEX_HALF,
        "held_by_sim": found.sim_holds,
        "pages_held": found.sim_pages,
        "sim_counters": found.sim_counters,
    }


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


# ------------------------------------------------------------------------------ for people
def format_summary(s: dict[str, Any]) -> str:
    """The summary as a few lines for people."""
    lines = [_headline(s), ""]
    lines += _trained_lines(s)
    lines += _judge_lines(s["judge"])
    lines.append("")
    lines += _delivered_lines(s)
    if s.get("contact_sheet"):
        lines.append(_previews_line(s))
    lines.append("")
    lines.append(
        "Time: "
        + " · ".join(
            f"{k.replace('_and_', '+')} {v:.1f} s" if v >= 0.05 else f"{k} <0.1 s"
            for k, v in s["timings_s"].items()
        )
    )
    lines.append("")
    lines.append("Next, with real hardware:")
    lines += [f"  {x}" for x in s["next"]]
    return "\n".join(lines)


def _headline(s: dict[str, Any]) -> str:
    failed = [st for st in s["stages"] if not st["ok"]]
    head = (
        "every stage ok"
        if s["ok"]
        else f"FAILED at stage {failed[0]['name']}: {failed[0]['error']}"
        if failed
        else "FAILED"
    )
    return f"Miragen demo in {s['folder']}: {s['seconds_total']:.0f} s, {head}"


def _trained_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"Trained ({s.get('engine')}, {s.get('train_seconds_per_class')} s per class):"]
    for c, e in s["classes"].items():
        row = f"  {c:9} {e['sounds']} {'one-shots' if e.get('mode') == 'oneshot' else 'sounds'}"
        if e.get("trained_on") is not None:
            row += f" ({e['trained_on']} trained on, {e['held_out']} held out)"
        if e.get("steps") is not None:
            row += f", {e['steps']} steps in {e.get('train_seconds', 0):.0f} s on {e.get('device')}"
        if "verdict" in e:
            row += f", judge {e['verdict'].upper()}"
        lines.append(row)
        if e.get("verdict") in ("fail", "inconclusive") and e.get("reasons"):
            lines.append(f"            {_reason_text(e['reasons'])}")
    return lines


def _judge_lines(j: dict[str, Any]) -> list[str]:
    if not j["of"]:
        return []
    undecided = sum(v == "inconclusive" for v in j["verdicts"].values())
    return [
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
    ]


def _delivered_lines(s: dict[str, Any]) -> list[str]:
    lines = []
    dk, sx = s["delivered"]["disk"], s["delivered"]["sysex"]
    if dk:
        lines.append(
            f"Disk image: {dk['image']} with {dk['img_cfg']} "
            "(synthetic template: it does not boot a Mirage)"
        )
        for c, p in dk["placed"].items():
            how = f", the cycle tiled ×{p['tiled']}" if p["tiled"] > 1 else ""
            if p.get("mode") == "oneshot":
                how = f" = {p['bytes'] // 256} pages, the one-shot once, silence after it"
            lines.append(
                f"  {p['sound']} wavesample {p['wavesample']} = {c} "
                f"({p['pcm']}, {p['bytes']:,} bytes{how})"
            )
    if sx and any(e.get("sysex") for e in s["classes"].values()):
        lines.append(f"SysEx to the simulated Mirage over {sx['transport']}:")
        for c, e in s["classes"].items():
            if e.get("sysex"):
                lines.append(_sysex_line(c, e["sysex"], sx, e.get("mode") == "oneshot"))
    return lines


def _previews_line(s: dict[str, Any]) -> str:
    shots = [c for c, e in s["classes"].items() if e.get("mode") == "oneshot"]
    cycles = len(s["classes"]) - len(shots)
    what = "; ".join(
        ([f"{'a cycle' if cycles == 1 else 'cycles'}: one second, looped"] if cycles else [])
        + ([f"{', '.join(shots)}: the one-shot as it is"] if shots else [])
    )
    return f"Previews: out/previews/<class>.wav ({what}) and .png; {s['contact_sheet']}"


def _sysex_line(c: str, d: dict[str, Any], sx: dict[str, Any], oneshot: bool = False) -> str:
    state = ("ACK" if d.get("ok") else f"no ACK ({d.get('error')})") + (
        ", read back and verified" if d.get("verified") else ""
    )
    held = sx["held_by_sim"].get(c)
    pages = sx.get("pages_held", {}).get(c)
    what = f"{pages} page{'s' if pages != 1 else ''}" + (
        ", the one-shot as it is" if oneshot else ""
    )
    where = (
        "" if held is None else f", held by the sim ({what})" if held else ", NOT held by the sim"
    )
    return (
        f"  {d.get('half')} wavesample {d.get('wavesample')} = {c}: {state} in "
        f"{d.get('elapsed_s') or 0:.1f} s{where}"
    )


def _reason_text(reasons: list[str], limit: int = 3) -> str:
    """The judge's reasons, short: the figure and its limit, without the explanation."""
    short = [r.split(" — ")[0] for r in reasons]
    return "; ".join(short[:limit]) + (
        f"; and {len(short) - limit} more" if len(short) > limit else ""
    )
