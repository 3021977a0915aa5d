"""What a demo run found: its stages, and the facts the summary reports.

The facts about the daemon's work are the daemon's, read from its records (:mod:`.facts`);
the rest (what was dropped, the disk image, the previews, what the simulated Mirage holds) are
the demo's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MiragenError


@dataclass
class Stage:
    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    error: str = ""


@dataclass
class Findings:
    """What the stages found (the daemon's facts as its records say them, and the demo's own)."""

    rerun: bool = False  # an earlier demo in the folder was replaced
    dropped: dict[str, int] = field(default_factory=dict)  # sounds the demo dropped, per class
    pty: str = ""  # the simulated Mirage's pty
    cfg: dict[str, Any] = field(default_factory=dict)  # the configuration the daemon ran with
    modes: dict[str, str] = field(default_factory=dict)  # class -> "cycle" | "oneshot"
    timings: dict[str, float] = field(default_factory=dict)  # from the daemon's jobs
    classes: dict[str, Any] = field(default_factory=dict)  # the daemon's classes (facts.classes)
    verdicts: dict[str, str] = field(default_factory=dict)  # the daemon's verdict per class
    requests: dict[str, str] = field(default_factory=dict)  # class -> its request's name
    records: dict[str, Any] = field(default_factory=dict)  # class -> its request's record
    disk: dict[str, Any] | None = None  # out/demo.img and what was placed in it
    previews: list[str] = field(default_factory=list)
    contact_sheet: str | None = None
    sim_holds: dict[str, bool] = field(default_factory=dict)  # the sim holds each class's sound
    sim_pages: dict[str, int] = field(default_factory=dict)
    sim_counters: dict[str, Any] = field(default_factory=dict)
    pcm_checked: int = 0
    sim_exit: int | None = None


@dataclass
class DemoRun:
    folder: Path
    seconds: int
    classes: list[str]
    stages: list[Stage] = field(default_factory=list)
    found: Findings = field(default_factory=Findings)


def delivered_pcm(folder: Path, record: dict[str, Any]) -> Path:
    """The candidate the daemon delivered for a request, as its record says."""
    pcm = record.get("delivered")
    if not pcm:
        raise MiragenError(
            f"request {record.get('name', '?')}: its record names no delivered candidate"
        )
    return folder / pcm


def is_oneshot(found: Findings, cls: str) -> bool:
    """Class ``cls`` holds one-shots (``train.oneshot_classes``), not single cycles."""
    return found.modes.get(cls) == "oneshot"


def rel(folder: Path, p: Path) -> str:
    try:
        return str(Path(p).relative_to(folder))
    except ValueError:
        return str(p)
