"""The unsorted pool: material dropped without a class is sorted into classes by k-means.

Files dropped at the top of ``inbox/`` (or into ``inbox/unsorted/``) are ingested into the pool,
class :data:`POOL` (``corpus/unsorted/``), which is never trained. Like any class, new material
schedules the pool's debounced "train" job; for the pool that job *sorts* instead
(:func:`run_sort`), once the pool holds at least ``daemon.unsorted_min`` sounds (default 16;
fewer: they wait for more):

1. in a child process (:mod:`.child`, :mod:`.tasks`; scikit-learn stays out of the daemon) the
   pool's sounds and the members of the existing auto classes are clustered together on the
   judge's features (:func:`miragen.judge.cluster.cluster`, k by the best silhouette, the seed
   article's proposal). When ``train.mode`` says cycles, the pool's hits and decaying notes
   (:func:`miragen.judge.sets.sound_kind`) are told apart first and clustered on their own, on
   the one-shot features, into ``auto-hits-N`` classes, which train as one-shots
   (:func:`.state.class_mode`; with ``train.kit`` they join the kit);
2. each cluster is named: after the existing auto class most of whose members it holds (each
   auto class names one cluster at most, the biggest overlap first), else the next free
   ``auto-N``; so names stay stable when the pool is sorted again later, and material already
   sorted never moves;
3. the pool's new labels are recorded in the corpus index (SQLite) in ONE transaction, with
   the assignment kept in the job's payload;
4. only then each file is renamed (one atomic step, never copied, never deleted) from
   ``corpus/unsorted/`` into ``corpus/auto-N/``; a restart after a kill finds the job's
   assignment and finishes the renames (idempotent);
5. a retrain of every class that received material is scheduled.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import read_audio
from ..corpus.dataset import KEEP_SECONDS
from ..errors import InputError
from ..fsutil import fsync_dir
from ..judge.cluster import cluster
from ..judge.sets import sound_kind, to_kind
from .child import ChildFailed, ChildStopped, run_child, worker_name
from .context import Context, Stopping
from .jobs import Job
from .state import AUTO_HITS, AUTO_HITS_PREFIX, POOL, class_mode, train_subject

log = logging.getLogger(__name__)

AUTO_PREFIX = "auto-"
MEMBERS_PER_CLASS = 64  # members of each existing auto class taken into a re-clustering
_AUTO = re.compile(r"^auto-(\d+)$")


def name_clusters(
    labels: Sequence[int],
    known: Sequence[str | None],
    existing: Sequence[str],
    prefix: str = AUTO_PREFIX,
) -> dict[int, str]:
    """A class name for each cluster label.

    ``labels``: the cluster of every sound; ``known``: that sound's current auto class (None
    for a pool sound); ``existing``: every auto class name already in use. A cluster takes the
    name of the existing class with the largest share of it (pairs matched greedily, biggest
    overlap first, one cluster per class); the others get the next free ``auto-N``.
    """
    overlap: dict[tuple[int, str], int] = {}
    for lab, cls in zip(labels, known):
        if cls is not None:
            overlap[(int(lab), cls)] = overlap.get((int(lab), cls), 0) + 1
    names: dict[int, str] = {}
    used: set[str] = set()
    for (lab, cls), _n in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1])):
        if lab not in names and cls not in used:
            names[lab] = cls
            used.add(cls)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    numbers = [int(m.group(1)) for c in existing if (m := pattern.match(c))]
    nxt = max(numbers, default=0) + 1
    for lab in sorted({int(v) for v in labels}):
        if lab not in names:
            names[lab] = f"{prefix}{nxt}"
            nxt += 1
    return names


def cluster_pool(
    root: Path,
    cfg: dict[str, Any],
    pool: list[list[str]],
    members: list[list[str]],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """(Child side.) ``pool``: [sha, path]; ``members``: [sha, path, class]. Returns the assignment
    {sha: class} of the pool's sounds, k and the silhouette (of the kind with the most pool
    sounds; ``groups``: each kind's)."""
    groups: dict[str, _Group] = {}
    for item, is_pool in [(m, True) for m in pool] + [(m, False) for m in members]:
        try:
            audio = read_audio(
                root / item[1], raw_rate=cfg["audio"]["raw_rate"], keep_seconds=KEEP_SECONDS
            )
        except InputError as exc:
            log.warning("sorting: skipped %s (%s)", item[1], exc.reason)
            continue
        x = np.asarray(audio.samples, dtype=np.float64)
        kind = _pool_kind(cfg, x, audio.rate) if is_pool else class_mode(cfg, item[2])
        g = groups.setdefault(kind, _Group())
        g.waves.append(to_kind(x, audio.rate, kind))
        g.known.append(None if is_pool else item[2])
        g.shas.append(item[0] if is_pool else None)
    if progress:
        progress(f"clustering {len(pool)} unsorted sounds with {len(members)} already sorted")
    existing = sorted({m[2] for m in members})
    assign: dict[str, str] = {}
    report: dict[str, dict[str, Any]] = {}
    for kind, g in sorted(groups.items()):
        if not any(sha is not None for sha in g.shas):
            continue  # only members of this kind: nothing new to sort
        res = cluster(g.waves, "auto", kind, max_class=int(cfg["daemon"]["sort_max_class"]))
        hits = kind == "oneshot" and cfg["train"]["mode"] != "oneshot"
        names = name_clusters(
            res.labels.tolist(), g.known, existing, AUTO_HITS_PREFIX if hits else AUTO_PREFIX
        )
        for sha, lab in zip(g.shas, res.labels.tolist()):
            if sha is not None:
                assign[sha] = names[int(lab)]
        report[kind] = {
            "sounds": sum(sha is not None for sha in g.shas),
            "k": res.k,
            "silhouette": res.silhouette,
        }
    main = max(report, key=lambda k: report[k]["sounds"]) if report else None
    return {
        "assign": assign,
        "k": sum(r["k"] for r in report.values()),
        "silhouette": report[main]["silhouette"] if main else None,
        "groups": report,
        "sizes": {
            n: int(sum(1 for v in assign.values() if v == n)) for n in sorted(set(assign.values()))
        },
    }


class _Group:
    """The sounds of one kind taken into a sorting: waves as the judge takes them, each one's
    current auto class (None: a pool sound) and content hash (pool sounds only)."""

    def __init__(self) -> None:
        self.waves: list[np.ndarray] = []
        self.known: list[str | None] = []
        self.shas: list[str | None] = []


def _pool_kind(cfg: dict[str, Any], x: np.ndarray, rate: int) -> str:
    """A pool sound's kind: ``train.mode`` when it says one-shots, else what the sound is
    (:func:`miragen.judge.sets.sound_kind`: a hit or a decaying note is a one-shot even when
    the configuration says cycles, and is sorted into an ``auto-hits-N`` class)."""
    return "oneshot" if cfg["train"]["mode"] == "oneshot" else sound_kind(x, rate)


def run_sort(d: Context, job: Job) -> None:
    """(Daemon side.) The pool's "train" job: sort the pool into auto classes (see the module)."""
    p = job.payload
    if "assign" not in p:
        pool, members = _pool_and_members(d)
        need = int(d.cfg["daemon"]["unsorted_min"])
        if len(pool) < need:
            p["skipped"] = (
                f"the unsorted pool has {len(pool)} sounds; sorting needs at least {need} "
                "(daemon.unsorted_min)"
            )
            log.info("%s: waiting for more material", p["skipped"])
            d.queue.finish(job)
            return
        try:
            res = run_child(
                d,
                worker_name("train"),
                "sort",
                {"pool": pool, "members": members},
                what=f"sort {len(pool)} unsorted sounds",
            )
        except ChildStopped:
            raise Stopping() from None
        except ChildFailed as exc:
            d.queue.fail(job, f"sorting the unsorted pool failed: {exc}")
            return
        _record_labels(d, job, res)
    moved = _move_assigned(d, p["assign"])
    with d.db.transaction() as c:
        for subject in sorted({train_subject(d.cfg, cls) for cls in p["assign"].values()}):
            d.queue.schedule_train(subject, 0.0, conn=c)
        d.queue.finish(job, conn=c)
    log.info(
        "unsorted pool: %d files filed into %s", moved, ", ".join(sorted(set(p["assign"].values())))
    )


def _pool_and_members(d: Context) -> tuple[list[list[str]], list[list[str]]]:
    """The pool's sounds ([sha, path]) and the latest members of each auto class
    ([sha, path, class]), disk images left out."""
    rows = d.corpus.files_of(POOL, prefix=AUTO_PREFIX)
    pool = [
        [r["sha256"], r["path"]]
        for r in rows
        if r["class"] == POOL and not r["path"].endswith(".img")
    ]
    per: dict[str, list[list[str]]] = {}
    for r in rows:
        auto = _AUTO.match(r["class"]) or AUTO_HITS.match(r["class"])
        if r["class"] != POOL and auto and not r["path"].endswith(".img"):
            per.setdefault(r["class"], []).append([r["sha256"], r["path"], r["class"]])
    members = [m for cls in sorted(per) for m in per[cls][-MEMBERS_PER_CLASS:]]
    return pool, members


def _record_labels(d: Context, job: Job, res: dict[str, Any]) -> None:
    """The labels, all at once: from here on the index says where each file belongs, and the
    job's payload keeps the assignment (a restart finishes the renames)."""
    job.payload.update(
        assign=res["assign"], k=res["k"], silhouette=res["silhouette"], sizes=res["sizes"]
    )
    with d.db.transaction() as c:
        for sha, cls in res["assign"].items():
            d.corpus.move(sha, POOL, cls, c)
        d.queue.save_payload(job, conn=c)
    log.info(
        "sorted %d unsorted sounds into %d classes (silhouette %s): %s",
        len(res["assign"]),
        res["k"],
        "-" if res["silhouette"] is None else f"{res['silhouette']:.3f}",
        ", ".join(f"{k}: {v}" for k, v in res["sizes"].items()),
    )


def _move_assigned(d: Context, assign: dict[str, str]) -> int:
    """Rename each assigned file from the pool folder to its class folder (idempotent)."""
    root = d.state.root
    moved = 0
    folders: set[Path] = set()
    for sha, cls in assign.items():
        row = d.corpus.find(sha)
        if row is None or row["class"] != cls:
            continue
        dst = root / row["path"]
        src = d.state.corpus / POOL / dst.name
        if dst.exists() or not (src.exists() or src.is_symlink()):
            continue  # moved before a kill
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        folders.update((dst.parent, src.parent))
        moved += 1
    for f in folders:
        fsync_dir(f)
    return moved
