"""The demo's stages, in order: each one runs, is timed and records what it found.

A stage is a method of :class:`Stages` that returns a line for people (``Stage.detail``) or
raises; once one fails the later ones are skipped (:func:`run_stage`). What the stages find goes
into :class:`Findings`, which the summary (:mod:`.summary`) reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..app import disk as disk_app
from ..audio.io import read_audio, write_wav_u8
from ..audio.loops import tile_cycle
from ..audio.render import contact_sheet, waveform_png
from ..corpus.synth import write_default_corpus
from ..errors import MiragenError
from ..fsutil import atomic_write_text
from ..service.state import class_mode
from . import facts
from .checks import check_outputs
from .findings import DemoRun, Stage, delivered_pcm, is_oneshot, rel
from .folder import CONFIG_NAME
from .settings import (
    COUNT,
    DISK_SOUND,
    PER_CLASS,
    SYSEX_HALF,
    TRAINING_SHOWN,
    config_text,
    demo_config,
)
from .sim import SimProcess

log = logging.getLogger(__name__)

PREVIEW_SECONDS = 1.0

Progress = Callable[[str], None]


def run_stage(run: DemoRun, name: str, say: Progress, fn: Callable[[], str]) -> bool:
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
    except Exception as exc:  # the summary names the stage and the error; the caller stops the sim
        log.debug("stage %s failed", name, exc_info=True)
        st.error = f"{type(exc).__name__}: {exc}"
    st.seconds = round(time.monotonic() - t0, 2)
    say(
        f"    {'ok' if st.ok else 'FAILED'} ({st.seconds:.1f} s)"
        f"{': ' + (st.detail if st.ok else st.error) if (st.detail or st.error) else ''}"
    )
    return st.ok


class Stages:
    """The demo's stages on one folder, with the simulated Mirage and the training budget."""

    def __init__(self, run: DemoRun, sim: SimProcess, per_class: int, say: Progress):
        self.run, self.sim, self.per_class, self.say = run, sim, per_class, say
        self.folder = run.folder
        self.found = run.found

    def all(self) -> None:
        for name, fn in (
            ("setup", self.setup),
            ("daemon", self.daemon),
            ("judge", self.judge),
            ("disk", self.disk_image),
            ("previews", self.previews),
            ("check", self.check),
        ):
            run_stage(self.run, name, self.say, fn)

    def setup(self) -> str:
        """The corpus into inbox/, a request per class into requests/, the simulated Mirage,
        the configuration."""
        written = write_default_corpus(self.folder / "inbox", per_class=PER_CLASS, hits=True)
        keep = set(self.run.classes)
        for p in written:  # classes left out of this demo are not dropped
            if p.parent.name not in keep:
                p.unlink()
        for d in (self.folder / "inbox").iterdir():
            if d.is_dir() and d.name not in keep:
                d.rmdir()
        counts = {c: sum(1 for p in written if p.parent.name == c) for c in self.run.classes}
        self.found.dropped = counts
        self._drop_requests()
        pty = self.found.pty = self.sim.start()
        cfg = self.found.cfg
        cfg.update(demo_config(self.folder, f"serial:{pty}", self.per_class))
        atomic_write_text(self.folder / CONFIG_NAME, config_text(cfg, cfg["deliver"]["transport"]))
        modes = self.found.modes
        modes.update({c: class_mode(cfg, c) for c in self.run.classes})  # as the daemon sees them
        shots = [c for c in self.run.classes if modes[c] == "oneshot"]
        return (
            f"{sum(counts.values())} sounds in {len(counts)} classes dropped into inbox/"
            + (f" ({', '.join(shots)}: one-shots; the others single cycles)" if shots else "")
            + f", a request per class into requests/; simulated Mirage on {pty}; "
            f"{self.per_class} s of training per class"
            + ("; the previous demo in this folder was replaced" if self.found.rerun else "")
        )

    def _drop_requests(self) -> None:
        """requests/demo-<class>.toml: COUNT candidates of class i, the best one to wavesample i
        by SysEx and into a disk image. Dropped with the corpus: the daemon holds a request until
        its class has a model, so a class's sound is made while the next class trains."""
        names = self.found.requests
        for i, c in enumerate(self.run.classes):
            names[c] = f"demo-{c}"
            text = (
                f'name = "{names[c]}"\nclass = "{c}"\ncount = {COUNT}\nhalf = "{SYSEX_HALF}"\n'
                f'wavesample = {i + 1}\nroute = "both"\nsound = "{DISK_SOUND}"\n'
            )
            atomic_write_text(self.folder / "requests" / f"{names[c]}.toml", text)

    def daemon(self) -> str:
        """The daemon until idle (ingest → a training run per class, judged → each request as
        soon as its class has a model: candidates, gate, SysEx and disk); then its records:
        every job done, a model for every class, every request done."""
        self.say(
            "    the daemon until idle: ingest → train+judge class by class → each class's "
            "request as soon as its model is there → SysEx + disk"
        )
        t0 = time.time()
        facts.run_daemon(self.found.cfg)
        jobs = facts.jobs(self.folder)
        ingests = [j for j in jobs if j.kind == "ingest"]
        trains = [j for j in jobs if j.kind == "train"]
        _all_done(ingests + trains)
        self.found.timings.update(_spans(t0, jobs))
        rejected = facts.rejected(self.folder)
        if rejected:
            raise MiragenError(
                f"{len(rejected)} demo sounds were rejected: {', '.join(rejected[:5])}"
            )
        classes = self.found.classes = facts.classes(self.found.cfg)
        missing = [c for c in self.run.classes if not classes.get(c, {}).get("model")]
        if missing:
            raise MiragenError(f"no model for class {', '.join(missing)}")
        records = self.found.records = facts.records(self.folder, self.found.requests)
        failed = [
            f"{c}: {r.get('state', 'no record')} {r.get('reason', '')}".strip()
            for c, r in records.items()
            if r.get("state") != "done"
        ]
        if failed:
            raise MiragenError("request(s) not done: " + "; ".join(failed))
        trained = sum(1 for e in classes.values() if e.get("model"))
        last_train = max(j.updated for j in trains)
        early = sum(
            1 for j in jobs if j.kind == "deliver" and j.state == "done" and j.updated < last_train
        )
        return (
            f"{len(ingests)} sounds ingested, {trained} models trained; {len(records)} requests "
            "done: candidates written, the best of each sent by SysEx (ACK, read back) and "
            f"written to a disk image ({early} of them while later classes were training)"
        )

    def judge(self) -> str:
        """The daemon's verdict on the model serving each class."""
        verdicts = self.found.verdicts
        for c in self.run.classes:
            model = self.found.classes[c]["model"]
            if not model.get("judged"):
                raise MiragenError(
                    f"class {c} was not judged: {'; '.join(model.get('reasons') or [])}"
                )
            verdicts[c] = model["verdict"]
        passed = [c for c, v in verdicts.items() if v == "pass"]
        return (
            f"verdict per class: {', '.join(f'{c} {v.upper()}' for c, v in verdicts.items())}"
            + (
                ""
                if len(passed) == len(verdicts)
                else " (a fail or inconclusive verdict is reported, not hidden; the demo goes on)"
            )
        )

    def disk_image(self) -> str:
        """out/demo.img: class i's delivered candidate in wavesample i of the demo's sound."""
        image = disk_app.load_template("")  # the synthetic template: the demo has no Mirage
        placed = {}
        for i, c in enumerate(self.run.classes):
            best = delivered_pcm(self.folder, self.found.records[c])
            data = best.read_bytes()
            # a single cycle fills the slot (no 0x80 tail); a one-shot goes in as it is, with
            # 0x80 (silence) after it: whole pages too, but repeating it would replay the hit
            cycle = not is_oneshot(self.found, c) and disk_app.is_cycle(data)
            put = disk_app.place(image, DISK_SOUND, i + 1, data, cycle=cycle)
            image = put.image
            placed[c] = {
                "sound": DISK_SOUND,
                "wavesample": i + 1,
                "mode": self.found.modes.get(c, "cycle"),
                "pcm": rel(self.folder, best),
                "bytes": len(data),
                "tiled": put.tiled,  # copies of the cycle in the slot
                "written": put.report["written"],
                "capacity": put.report["capacity"],
                "warnings": put.warnings,
            }
        pub = disk_app.publish(image, self.folder / "out" / "demo.img")
        self.found.disk = {
            "image": rel(self.folder, Path(pub["image"])),
            "img_cfg": "out/IMG.CFG",
            "placed": placed,
        }
        where = ", ".join(
            f"{c} → {DISK_SOUND} wavesample {p['wavesample']}" for c, p in placed.items()
        )
        return f"out/demo.img: {where}"

    def previews(self) -> str:
        """Each delivered sound as a WAV (a cycle looped for one second, a one-shot as it is), its
        picture, and a contact sheet."""
        rate = int(self.found.cfg["audio"]["rate"])
        out = self.folder / "out" / "previews"
        waves, titles, files = [], [], []
        trained_on = facts.training_sounds(self.folder, self.run.classes, TRAINING_SHOWN)
        for c in self.run.classes:
            rec = self.found.records[c]
            pcms = [self.folder / f for f in rec.get("candidates", [])]  # best first
            best = delivered_pcm(self.folder, rec)
            data = best.read_bytes()
            files.append(write_wav_u8(out / f"{c}.wav", self._heard(c, data, rate), rate))
            files.append(waveform_png(data, out / f"{c}.png", title=f"{c}: best of {len(pcms)}"))
            # a row per class: a few of the sounds it was trained on, then its candidates, so
            # that one sees at a glance that they belong to the class and are not copies
            shown = trained_on[c]
            for k, path in enumerate(shown):
                waves.append(read_audio(path).samples)
                titles.append(f"{c}: trained on #{k + 1}")
            for _ in range(TRAINING_SHOWN - len(shown)):
                waves.append(np.zeros(0, dtype=np.float32))
                titles.append("")
            for k, p in enumerate(pcms[:COUNT]):
                waves.append(p.read_bytes())
                titles.append(f"{c}: new #{k + 1}" + (" (delivered)" if p == best else ""))
            for _ in range(COUNT - len(pcms[:COUNT])):
                waves.append(np.zeros(0, dtype=np.float32))
                titles.append("")
        sheet = contact_sheet(
            waves,
            self.folder / "out" / "contact-sheet.png",
            titles=titles,
            cols=TRAINING_SHOWN + COUNT,
        )
        self.found.previews = [rel(self.folder, f) for f in files]
        self.found.contact_sheet = rel(self.folder, sheet)
        shots = sum(is_oneshot(self.found, c) for c in self.run.classes)
        return (
            f"{len(files) // 2} WAV previews ({len(files) // 2 - shots} cycles looped for one "
            f"second, {shots} one-shot{'s' if shots != 1 else ''} as it is) and waveform PNGs in "
            f"out/previews/, out/contact-sheet.png (per class: {TRAINING_SHOWN} training sounds, "
            "then its candidates)"
        )

    def _heard(self, c: str, data: bytes, rate: int) -> bytes:
        """What a preview plays: a one-shot as it is (its attack, its decay, the 0x80 after
        it); a single cycle looped for one second (a tone, where one 8.7 ms cycle is a click)."""
        if is_oneshot(self.found, c):
            return data
        reps = max(1, round(PREVIEW_SECONDS * rate / len(data)))
        return tile_cycle(data, len(data) * reps)

    def check(self) -> str:
        """What was written and delivered reads back (:func:`.checks.check_outputs`)."""
        return check_outputs(self.folder, self.found)


def _spans(t0: float, jobs: list[Any]) -> dict[str, float]:
    """The daemon's run in consecutive parts, from its job records: each part ends when the last
    job of its kind ended and begins where the one before ended. Generation and delivery that
    ran while later classes trained count as training time: ``generate`` is what came after the
    last training run."""
    out, at = {}, t0
    for part, kind in (
        ("ingest", "ingest"),
        ("train_and_judge", "train"),
        ("generate", "generate"),
        ("deliver", "deliver"),
    ):
        end = max([at] + [j.updated for j in jobs if j.kind == kind])
        out[part], at = round(end - at, 2), end
    return out


def _all_done(jobs: list[Any]) -> None:
    """Raise with the first few jobs that did not end done (and whether the daemon stopped
    before its work was done)."""
    bad = [j for j in jobs if j.state != "done"]
    if not bad:
        return
    unfinished = any(j.state in ("queued", "running") for j in bad)
    raise MiragenError(
        ("the daemon stopped before its work was done (interrupted?): " if unfinished else "")
        + "; ".join(
            f"{j.kind} {j.subject} {j.state}" + (f" ({j.last_error})" if j.last_error else "")
            for j in bad[:5]
        )
    )
