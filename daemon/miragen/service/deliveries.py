"""The delivery ledger: the ``deliveries`` table of the daemon's database (:mod:`.db`).

A row with the id ``<request>:<route>`` is written *before* the bytes leave (state
``sending``) and completed with the result *after* (``done`` or ``failed``), so a delivery
interrupted by a kill is sent again after the restart and still counts once, and a route already
delivered is never sent again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from .db import Database


class DeliveryLedger:
    def __init__(self, db: Database):
        self.db = db

    def start(self, delivery_id: str, job_id: int, request: str, route: str) -> None:
        """Record that ``route`` of ``request`` is being sent (once: a resend keeps the row)."""
        self.db.write(
            "INSERT OR IGNORE INTO deliveries(id, job_id, request, route, state, started) "
            "VALUES (?,?,?,?, 'sending', ?)",
            (delivery_id, job_id, request, route, time.time()),
        )

    def end(
        self,
        delivery_id: str,
        ok: bool,
        result: dict[str, Any],
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Record how the delivery ended, with its result."""
        self.db.write(
            "UPDATE deliveries SET state=?, finished=?, result=? WHERE id=?",
            ("done" if ok else "failed", time.time(), json.dumps(result, default=str), delivery_id),
            conn,
        )

    def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last deliveries, newest first, each with its result."""
        rows = self.db.rows("SELECT * FROM deliveries ORDER BY started DESC LIMIT ?", (limit,))
        return [dict(r, result=json.loads(r["result"] or "{}")) for r in rows]

    def done(self) -> int:
        """How many deliveries succeeded, in all."""
        row = self.db.row("SELECT count(*) AS n FROM deliveries WHERE state='done'")
        return int(row["n"]) if row else 0
