"""The demo's last stage: what was written and delivered reads back.

- every ``.pcm`` under ``out/`` follows the Mirage 8-bit rules;
- ``out/demo.img`` parses and each placed wavesample holds its class's delivered candidate: a
  single cycle repeated over the whole slot, a one-shot once with 0x80 (silence) after it;
- the simulated Mirage's state file holds each class's delivered candidate, sent by SysEx,
  ACKed and verified (the request's record says how it went): a single cycle repeated a whole
  number of times (``deliver.cycle_pages``), a one-shot byte for byte, once;
- each request's own disk image (the daemon's disk route) parses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..audio.mirage8 import check_mirage8
from ..errors import MiragenError
from ..mirage import disk
from ..transport.simulated import read_state
from .findings import Findings, delivered_pcm, is_oneshot, rel
from .folder import SIM_STATE
from .settings import DISK_SOUND, SYSEX_HALF


def check_outputs(folder: Path, found: Findings) -> str:
    """Check everything; the problems (the first 8) are raised as one MiragenError."""
    problems: list[str] = []
    pcms = sorted((folder / "out").rglob("*.pcm"))
    problems += _check_pcms(folder, pcms)
    problems += _check_demo_image(folder, found)
    st = read_state(folder / SIM_STATE)
    problems += _check_sim(folder, found, st)
    problems += _check_request_images(folder, found)
    found.sim_counters = st.get("counters", {})
    found.pcm_checked = len(pcms)
    if problems:
        raise MiragenError("; ".join(problems[:8]))
    return (
        f"demo.img reads back; the simulated Mirage holds all {len(found.sim_holds)} wavesamples; "
        f"{len(pcms)} .pcm files follow the Mirage 8-bit rules"
    )


def _check_pcms(folder: Path, pcms: list[Path]) -> list[str]:
    problems = []
    for p in pcms:
        try:
            check_mirage8(p.read_bytes())
        except MiragenError as exc:
            problems.append(f"{rel(folder, p)}: {exc}")
    return problems


def _check_demo_image(folder: Path, found: Findings) -> list[str]:
    assert found.disk is not None
    parsed = disk.parse((folder / "out" / "demo.img").read_bytes())
    snd = parsed.sounds[DISK_SOUND]
    problems = []
    for c, pl in found.disk["placed"].items():
        data = (folder / pl["pcm"]).read_bytes()
        got = disk.wavesample_bytes(snd.wave, snd.params.wavesample(pl["wavesample"]))
        want = data * pl["tiled"]
        if is_oneshot(found, c):  # once, then silence to the end of the slot
            want = data + b"\x80" * (len(got) - len(data))
        if got[: len(want)] != want or len(got) < len(want):
            problems.append(
                f"demo.img {DISK_SOUND} wavesample {pl['wavesample']} does not hold {c}'s candidate"
            )
    return problems


def _check_sim(folder: Path, found: Findings, st: dict[str, Any]) -> list[str]:
    """Each class's delivered candidate is what the simulated Mirage holds (the pipeline may
    repeat a single cycle over several pages: ``deliver.cycle_pages``; a one-shot, never)."""
    problems = []
    for c, rec in found.records.items():
        sx = rec.get("delivery", {}).get("sysex", {})
        n = int(sx.get("wavesample", 0))
        data = delivered_pcm(folder, rec).read_bytes()
        got = st["wavesample_data"][SYSEX_HALF].get(n, b"")
        times = 1 if is_oneshot(found, c) else max(1, len(got) // len(data))
        found.sim_holds[c] = bool(got) and got == data * times
        found.sim_pages[c] = len(got) // 256
        if not found.sim_holds[c]:
            problems.append(
                f"the simulated Mirage's {SYSEX_HALF} wavesample {n} does not hold {c}'s candidate"
            )
        if not (sx.get("ok") and sx.get("verified")):
            problems.append(f"{c}: SysEx delivery not ACKed and verified ({sx.get('error') or sx})")
    return problems


def _check_request_images(folder: Path, found: Findings) -> list[str]:
    """Each request's own image (the daemon's disk route) parses."""
    problems = []
    for c, rec in found.records.items():
        own = rec.get("delivery", {}).get("disk", {}).get("image")
        if not own:
            problems.append(f"{c}: the daemon wrote no disk image")
            continue
        try:
            disk.parse((folder / own).read_bytes())
        except (OSError, MiragenError) as exc:
            problems.append(f"{own}: {exc}")
    return problems
