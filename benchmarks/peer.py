"""What both benchmarks share: the cohort file, the command-line arguments, and the naive peer approach
they compare with (one eventsourcing aggregate per patient, each clinical event an aggregate event,
saved through an `Application` with the library's SQLite persistence)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def arguments(doc: str, argv: list[str] | None,
              more: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The options every benchmark takes; `more(parser)` adds a benchmark's own."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-patients", type=int, default=500)
    if more is not None:
        more(ap)
    return ap.parse_args(argv)


def cohort_file(patients: int, seed: int) -> Path:
    """The synthetic cohort as JSON Lines (generated once by `timeline.testing.cohort`, then reused)."""
    from timeline.testing.cohort import write_cohort_jsonl

    path = OUT / f"cohort-{patients}-seed{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        t = time.perf_counter()
        n = write_cohort_jsonl(tmp, patients, seed=seed)
        tmp.rename(path)
        print(f"generated {n:,} events for {patients:,} patients in {time.perf_counter() - t:.1f} s -> {path}")
    return path


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
