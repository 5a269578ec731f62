"""The few facts a reader of the projection file asks of a plain SQLite store (its identity, how far it goes,
the event at a position, a patient's stream), read with Python's sqlite3 alone, read-only: `timeline sql`
answers without the store's stack (the eventsourcing library, the event models).

Only a store in a data folder, not encrypted, with no key given, is probed; for any other (an encrypted one,
PostgreSQL, memory, none at all) `SQLiteProbe.open` returns None and the caller opens the store in full,
which says what is wrong, if anything."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from ..settings import CIPHER_KEY_ENV, KEY_FILE_ENV, SQLITE_FILE, store_location
from .rows import StoredRow

#: the library's table of stored events (each row's rowid is its log position)
EVENTS = "stored_events"


class SQLiteProbe:
    """A read-only connection to a plain SQLite store: `projections.state.StorePositions`."""

    def __init__(self, con: sqlite3.Connection, data_dir: Path):
        self.con = con
        self.data_dir = data_dir

    @classmethod
    def open(cls, location: str | None) -> SQLiteProbe | None:
        """The probe of the store `location` names, or None when it is not a plain SQLite store (or cannot be
        read by a probe: then the full store says why)."""
        loc = store_location(location)
        if loc == "memory" or loc.startswith(("postgresql://", "postgres://")):
            return None
        if os.environ.get(CIPHER_KEY_ENV) or os.environ.get(KEY_FILE_ENV):
            return None
        path = Path(loc) / SQLITE_FILE
        if not path.is_file():
            return None
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return None
        probe = cls(con, Path(loc))
        try:
            if probe._meta("store_id") is not None and probe._meta("key_check") is None:
                return probe
        except sqlite3.Error:
            pass
        con.close()
        return None

    def _meta(self, name: str) -> str | None:
        row = self.con.execute("SELECT value FROM timeline_meta WHERE name = ?", [name]).fetchone()
        return row[0] if row else None

    def store_id(self) -> str:
        return self._meta("store_id") or ""

    def event_id_at(self, position: int) -> str | None:
        row = self.con.execute(f"SELECT state FROM {EVENTS} WHERE rowid = ?", [position]).fetchone()
        if row is None:
            return None
        state = bytes(row[0])
        cut = state.rindex(b',"event_id":"') + 13  # a state ends `,"event_id":"…","recorded_at":"…"}`
        return str(uuid.UUID(state[cut:cut + 36].decode()))

    def read_stream(self, patient_id: str) -> list[StoredRow]:
        """One patient's stream in version order, as the store's recorder reads it (in a plain store a patient's
        stream id is the id itself): what a replay of that patient reads."""
        rows = self.con.execute(f"SELECT originator_version, topic, state FROM {EVENTS} WHERE originator_id = ? "
                                "ORDER BY originator_version", [patient_id]).fetchall()
        return [StoredRow(0, patient_id, version, topic, bytes(state)) for version, topic, state in rows]

    def max_position(self) -> int:
        return self.con.execute(f"SELECT max(rowid) FROM {EVENTS}").fetchone()[0] or 0

    def count_after(self, position: int) -> int:
        return self.con.execute(f"SELECT count(*) FROM {EVENTS} WHERE rowid > ?", [position]).fetchone()[0]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SQLiteProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
