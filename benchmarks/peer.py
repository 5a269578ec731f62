"""The naive peer approach both benchmarks compare with: one eventsourcing aggregate per patient, each
clinical event an aggregate event, saved through an `Application` with the library's SQLite persistence."""

from __future__ import annotations

import json
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class PatientTimeline(Aggregate):
    """A patient as a plain eventsourcing aggregate: its events kept in a list."""

    def __init__(self, patient_id: str):
        self.patient_id = patient_id
        self.events: list[dict] = []

    @event("Recorded")
    def record(self, data: dict) -> None:
        self.events.append(data)


def sample_lines(path: Path, patients: int) -> dict[str, list[str]]:
    """The raw lines of the first `patients` patients of a JSON Lines file (grouped by patient)."""
    by_patient: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            pid = json.loads(line)["patient_id"]
            if pid not in by_patient and len(by_patient) >= patients:
                break
            by_patient.setdefault(pid, []).append(line)
    return by_patient


def application(db: Path) -> Application:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
