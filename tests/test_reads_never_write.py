"""Reads never write: every reader opens the projection file read-only, so readers work together, and a
writer (`timeline project`) never makes one fail or answer from half a table set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.testing.cohort import iter_cohort

#: one answer identifies the table set it came from: the file's position and counts of several tables
QUERY = ("SELECT (SELECT position FROM _tracking) AS position, (SELECT count(*) FROM patients) AS patients, "
         "(SELECT count(*) FROM events) AS events, (SELECT count(*) FROM endpoints) AS endpoints")


def _write(path: Path, events) -> None:
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def _cli(store: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "timeline", "--store", str(store), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("readers")
    events = list(iter_cohort(150, seed=3))
    _write(d / "a.jsonl", [e for e in events if int(e["patient_id"][-6:]) <= 100])
    _write(d / "b.jsonl", [e for e in events if int(e["patient_id"][-6:]) > 100])
    with Timeline.open(d / "data") as tl:
        tl.ingest_file(d / "a.jsonl")
        tl.project()
    return d


def _answer(store: Path) -> dict:
    with Timeline.open(store / "data") as tl:
        return tl.sql(QUERY).to_dicts()[0]


def test_an_open_view_does_not_lock_out_another_reader(store):
    """The original defect: with one `as_of` view open in this process, `timeline sql` in another failed with
    DuckDB's 'Could not set lock on file'."""
    with Timeline.open(store / "data") as tl, tl.as_of() as view:
        r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(store / "data"), "sql",
                            "SELECT count(*) AS n FROM patients", "--format", "json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [{"n": 100}] and view.sql("SELECT count(*) AS n FROM patients")["n"][0] == 100


def test_reads_leave_the_file_untouched(store):
    path = store / "data" / "projections.duckdb"
    before = (path.stat().st_mtime_ns, path.stat().st_size)
    for args in (["sql", "SELECT count(*) FROM events"], ["km", "os"], ["cif", "relapse"],
                 ["sql", "SELECT count(*) FROM patients", "--as-of", "2020-01-01"]):
        p = _cli(store / "data", *args)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert (path.stat().st_mtime_ns, path.stat().st_size) == before
    assert not Path(f"{path}.wal").exists()


def test_readers_in_a_loop_while_the_file_is_rebuilt_and_caught_up(store):
    """Two `timeline sql` readers run in a loop while `timeline project --rebuild` runs (and then a catch-up
    of more events): no lock error, and every answer comes from one whole table set, before or after."""
    data = store / "data"
    before = _answer(store)
    stop = store / "stop"
    loop = (f"import subprocess, sys, pathlib\n"
            f"answers = []\n"
            f"while not pathlib.Path({str(stop)!r}).exists():\n"
            f"    r = subprocess.run([sys.executable, '-m', 'timeline', '--store', {str(data)!r}, 'sql', {QUERY!r},"
            f" '--format', 'json'], capture_output=True, text=True)\n"
            f"    if r.returncode != 0:\n"
            f"        print('ERROR', r.stderr.replace(chr(10), ' '), flush=True); continue\n"
            f"    print(r.stdout.replace(chr(10), ''), flush=True)\n")
    readers = [subprocess.Popen([sys.executable, "-c", loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    try:
        time.sleep(2.0)
        for args in (["project", "--rebuild"], ["ingest", str(store / "b.jsonl")], ["project"]):
            p = _cli(data, *args)
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            time.sleep(1.5)
    finally:
        stop.touch()
        outputs = [r.communicate(timeout=120)[0] for r in readers]
    after = _answer(store)
    assert after["patients"] == 150 and after["position"] > before["position"]
    answers = [line for out in outputs for line in out.splitlines() if line.strip()]
    errors = [a for a in answers if a.startswith("ERROR")]
    assert errors == []
    sets = {json.dumps(json.loads(a)[0], sort_keys=True) for a in answers}
    assert sets <= {json.dumps(before, sort_keys=True), json.dumps(after, sort_keys=True)}
    assert len(answers) >= 6


def test_a_reader_says_when_the_file_is_behind_and_fresh_builds_from_the_store(store, tmp_path):
    data = tmp_path / "data"
    with Timeline.open(data) as tl:
        tl.ingest_file(store / "a.jsonl")
        tl.project()
        tl.ingest([{"type": "follow_up", "patient_id": "SYN-000001", "occurred_on": "2026-11-20",
                    "disease_status": "not_assessed"}])
    r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(data), "sql",
                        "SELECT max(last_contact_on) AS d FROM patients WHERE patient_id = 'SYN-000001'",
                        "--format", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "projections are 1 event(s) behind the store; run `timeline project`" in r.stderr
    r2 = subprocess.run([sys.executable, "-m", "timeline", "--store", str(data), "sql",
                         "SELECT max(last_contact_on) AS d FROM patients WHERE patient_id = 'SYN-000001'",
                         "--format", "json", "--fresh"], capture_output=True, text=True, timeout=120)
    assert r2.returncode == 0 and "behind" not in r2.stderr
    assert json.loads(r2.stdout) == [{"d": "2026-11-20"}] != json.loads(r.stdout)


def test_no_projections_yet_is_a_clear_error(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest([{"type": "follow_up", "patient_id": "P1", "occurred_on": "2025-01-02",
                    "disease_status": "not_assessed"}])
    env = {k: v for k, v in os.environ.items() if k != "TIMELINE_PROJECTIONS"}
    r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(tmp_path / "data"), "sql", "SELECT 1"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1 and "no projections yet; run `timeline project`" in r.stderr
    assert not (tmp_path / "data" / "projections.duckdb").exists()
