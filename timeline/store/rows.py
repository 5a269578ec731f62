"""One stored event as read back, in a module of its own: a reader of a plain SQLite store's streams
(`probe.SQLiteProbe.read_stream`) makes them without importing the store's stack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored event as read back: its global position, stream coordinates and JSON state."""

    position: int
    patient_id: str
    version: int
    type: str
    state: bytes
