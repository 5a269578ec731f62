"""Several real processes appending at once to the same patients lose nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta

import pytest

from timeline.app import Timeline

WRITERS = 4
PATIENTS = 12
PER_PATIENT = 40


def _write_files(tmp_path) -> tuple[list, int]:
    files = []
    unique = set()
    start = date(2023, 1, 1)
    for w in range(WRITERS):
        path = tmp_path / f"writer{w}.jsonl"
        with open(path, "w") as f:
            for i in range(PER_PATIENT):
                for p in range(PATIENTS):
                    ev = {"type": "blood_count", "patient_id": f"C{p:02d}",
                          "occurred_on": (start + timedelta(days=i)).isoformat(),
                          "anc_e9_per_l": round(w + i / 100, 3)}
                    f.write(json.dumps(ev) + "\n")
                    unique.add(json.dumps(ev, sort_keys=True))
            # every writer also carries the same shared events: stored once, whoever wins
            for p in range(PATIENTS):
                ev = {"type": "follow_up", "patient_id": f"C{p:02d}", "occurred_on": "2024-06-01",
                      "disease_status": "remission"}
                f.write(json.dumps(ev) + "\n")
                unique.add(json.dumps(ev, sort_keys=True))
        files.append(path)
    return files, len(unique)


def _run_writers(location: str, files) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "timeline", "--store", location, "ingest", str(f)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "new" in out and "already present" in out


def _check(location: str, expected: int) -> None:
    tl = Timeline.open(location)
    total = 0
    for pid in tl.patients():
        versions = [r.version for r in tl.store.recorder.read_stream(pid)]
        assert versions == list(range(1, len(versions) + 1)), "one stream per patient, no gap, no double"
        total += len(versions)
    assert total == expected
    positions = [r for rows in tl.store.records() for r in rows]
    stamps = [json.loads(r.state)["recorded_at"] for r in positions]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "recorded_at strictly increasing"
    ids = [json.loads(r.state)["event_id"] for r in positions]
    assert len(set(ids)) == len(ids)
    tl.close()


def test_concurrent_writers_sqlite(tmp_path):
    files, expected = _write_files(tmp_path)
    location = str(tmp_path / "store")
    Timeline.open(location).close()  # create the tables once, as a deployment would
    _run_writers(location, files)
    _check(location, expected)


@pytest.mark.postgres
def test_concurrent_writers_postgres(tmp_path, pg_url):
    files, expected = _write_files(tmp_path)
    Timeline.open(pg_url).close()
    _run_writers(pg_url, files)
    _check(pg_url, expected)
