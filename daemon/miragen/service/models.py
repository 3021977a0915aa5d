"""The model registry: the ``models`` table of the daemon's database (:mod:`.db`).

One row per trained model and class (``models/<class>/vNNNN``; a kit's model,
``models/@kit/vNNNN``, has a row for each of its classes) with its judge report (what the train task
reported: the verdict, its reasons and metrics, how many sounds it was trained on and how many
held out) and whether it *serves* its class now (``current``: one per class at most).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .db import Database


def model_verdict(report: dict[str, Any]) -> str:
    """pass, fail or inconclusive, from a model's judge report (older records: pass/fail)."""
    return report.get("verdict") or ("pass" if report.get("passed") else "fail")


class ModelRegistry:
    def __init__(self, db: Database):
        self.db = db

    def add(
        self, cls: str, path: str, passed: bool, report: dict[str, Any], make_current: bool
    ) -> int:
        """Record a trained model; with ``make_current`` it serves its class from now on."""
        with self.db.transaction() as c:
            if make_current:
                c.execute("UPDATE models SET current=0 WHERE class=?", (cls,))
            cur = c.execute(
                "INSERT INTO models(class, path, created, passed, current, report) VALUES "
                "(?,?,?,?,?,?)",
                (
                    cls,
                    path,
                    time.time(),
                    int(passed),
                    int(make_current),
                    json.dumps(report, default=str),
                ),
            )
            return int(cur.lastrowid)

    def current(self, cls: str) -> dict[str, Any] | None:
        """The model serving ``cls`` (its row, the report parsed), or None."""
        row = self.db.row(
            "SELECT * FROM models WHERE class=? AND current=1 ORDER BY id DESC LIMIT 1", (cls,)
        )
        return dict(row, report=json.loads(row["report"])) if row else None

    def serving(self) -> dict[str, dict[str, Any]]:
        """{class: the row of the model serving it}."""
        return {m["class"]: m for m in self.all() if m["current"]}

    def known(self, path: str, cls: str) -> bool:
        """Is the model folder ``path`` (relative to the state folder) recorded for ``cls``? (A
        kit's model is recorded once for each of its classes.)"""
        row = self.db.row("SELECT 1 FROM models WHERE path=? AND class=?", (path, cls))
        return row is not None

    def all(self) -> list[dict[str, Any]]:
        """Every model, oldest first (the report parsed)."""
        rows = self.db.rows("SELECT * FROM models ORDER BY id")
        return [dict(r, report=json.loads(r["report"])) for r in rows]
