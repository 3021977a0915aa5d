"""The corpus index: the ``files`` table of the daemon's database (:mod:`.db`).

One row per accepted sound, by content hash (SHA-256): its class, its path in ``corpus/``
(relative to the state folder), where it came from and when. The hash is the deduplication (the
same content is never filed twice); the class is what a train job trains and what the unsorted
pool's sorting changes. A second table, ``sounds``, keys each file by the hash of its decoded
samples and rate (:func:`..ingest.sound_key`), so that the same sound in another file format
(``kick.pcm`` beside the ``kick.wav`` preview ``miragen generate`` writes of the same bytes) is
not filed twice either. Files filed before that table existed have no key there.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import PurePosixPath
from typing import Any

from .db import Database, storable


class CorpusIndex:
    def __init__(self, db: Database):
        self.db = db

    def find(self, sha256: str) -> dict[str, Any] | None:
        """The row of this content (sha256, class, path, source, added), or None."""
        row = self.db.row("SELECT * FROM files WHERE sha256=?", (sha256,))
        return dict(row) if row else None

    def find_sound(self, key: str) -> dict[str, Any] | None:
        """The row of the file whose decoded samples have this key (:func:`..ingest.sound_key`),
        or None."""
        row = self.db.row(
            "SELECT files.* FROM sounds JOIN files USING (sha256) WHERE sounds.key=?", (key,)
        )
        return dict(row) if row else None

    def add(
        self,
        sha256: str,
        cls: str,
        path: str,
        source: str,
        conn: sqlite3.Connection,
        sound: str | None = None,
    ) -> bool:
        """Index a file (inside the caller's transaction), with the key of its decoded samples
        when given; False when the content was known."""
        cur = conn.execute(
            "INSERT OR IGNORE INTO files(sha256, class, path, source, added) VALUES (?,?,?,?,?)",
            (sha256, cls, path, storable(source), time.time()),
        )
        if sound:
            conn.execute("INSERT OR IGNORE INTO sounds(key, sha256) VALUES (?,?)", (sound, sha256))
        return bool(cur.rowcount)

    def move(self, sha256: str, source: str, dest: str, conn: sqlite3.Connection) -> None:
        """Re-file a sound of class ``source`` into class ``dest`` (``corpus/<dest>/<its name>``);
        a sound no longer in ``source`` is left alone. Only the index: the caller renames."""
        row = conn.execute("SELECT path FROM files WHERE sha256=?", (sha256,)).fetchone()
        name = PurePosixPath(row["path"]).name if row else ""
        conn.execute(
            "UPDATE files SET class=?, path=? WHERE sha256=? AND class=?",
            (dest, f"corpus/{dest}/{name}", sha256, source),
        )

    def files_of(self, *classes: str, prefix: str | None = None) -> list[dict[str, Any]]:
        """Index rows (sha256, class, path, source, added) of these classes, and of the classes
        whose name starts with ``prefix``; oldest first."""
        marks = ",".join("?" * len(classes)) or "''"
        sql = (
            f"SELECT * FROM files WHERE class IN ({marks})"
            + (" OR substr(class, 1, ?) = ?" if prefix else "")
            + " ORDER BY added, sha256"
        )
        args: list[Any] = [*classes] + ([len(prefix), prefix] if prefix else [])
        return [dict(r) for r in self.db.rows(sql, args)]

    def class_counts(self) -> dict[str, int]:
        """{class: sounds} over the whole corpus."""
        return {
            r["class"]: r["n"]
            for r in self.db.rows("SELECT class, count(*) AS n FROM files GROUP BY class")
        }
