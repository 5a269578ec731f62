"""Ingest of JSON Lines and CSV files, and the `timeline` command end to end (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.ingest import read_json_lines

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def run(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = [
    {"type": "patient_registered", "patient_id": "P1", "occurred_on": "2020-01-01", "birth_date": "2012-05-01",
     "sex": "female"},
    {"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2020-03-01", "donor": "haploidentical",
     "graft_source": "peripheral_blood"},
    {"type": "blood_count", "patient_id": "P1", "occurred_on": "2020-03-05", "anc_e9_per_l": 0.1},
]


def test_ingest_reports_counts_and_is_idempotent(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", GOOD)
    r = run("ingest", str(f), store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{f}: 3 new, 0 already present, 0 corrected"
    r = run("ingest", str(f), str(SEED / "JH-01.jsonl"), store=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == f"{f}: 0 new, 3 already present, 0 corrected"
    assert lines[1].endswith("JH-01.jsonl: 164 new, 0 already present, 0 corrected")
    assert lines[2] == "total: 164 new, 3 already present, 0 corrected"


def test_bad_file_reports_every_problem_and_stores_nothing(tmp_path):
    rows = [GOOD[0], {**GOOD[2], "anc_e9_per_l": -1}, "not json at all",
            {**GOOD[2], "occurred_on": "2020-02-30"}, {**GOOD[2], "colour": "red"},
            {"type": "blood_count", "patient_id": "P 1", "occurred_on": "2020-03-06", "anc_e9_per_l": 1}, GOOD[1]]
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    r = run("ingest", str(f), store=tmp_path / "s")
    assert r.returncode == 1
    assert "REFUSED, nothing stored" in r.stderr
    for needle in ("bad.jsonl:line 2: anc_e9_per_l = -1", "line 3: (line)", "line 4: occurred_on = \"2020-02-30\"",
                   "line 5: colour", "line 6: patient_id = \"P 1\""):
        assert needle in r.stderr, (needle, r.stderr)
    assert "expected ×10⁹/L, 0–100" in r.stderr and "unknown field" in r.stderr
    assert Timeline.open(tmp_path / "s").patients() == []


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**GOOD[0], "sex": "x"}])
    r = run("ingest", str(bad), str(good), store=tmp_path / "s")
    assert r.returncode == 1
    assert f"{good}: 3 new, 0 already present, 0 corrected" in r.stdout
    assert "total: 3 new, 0 already present, 0 corrected (1 file(s) refused)" in r.stdout
    assert "sex" in r.stderr and "must be one of" in r.stderr


def test_csv_lists_empty_cells_and_errors(tmp_path):
    csv = tmp_path / "labs.csv"
    csv.write_text(
        "type,patient_id,occurred_on,anc_e9_per_l,platelets_e9_per_l,agents\n"
        "blood_count,P1,2020-03-05,0.4,,\n"
        "gvhd_prophylaxis_started,P1,2020-02-28,,,ptcy|tacrolimus|mmf\n"
    )
    tl = Timeline.open(tmp_path / "s")
    report = tl.ingest_file(csv)
    assert report.new == 2
    proph = [v.event for v in tl.events("P1") if v.event.type == "gvhd_prophylaxis_started"][0]
    assert list(proph.agents) == ["ptcy", "tacrolimus", "mmf"]
    bad = tmp_path / "bad.csv"
    bad.write_text("type,patient_id,occurred_on,anc_e9_per_l\nblood_count,P2,2020-03-05,abc\n")
    r = run("ingest", str(bad), store=tmp_path / "s")
    assert r.returncode == 1 and "line 2: anc_e9_per_l" in r.stderr


def test_seed_csv_and_jsonl_give_the_same_events_as_json(tmp_path):
    tl = Timeline.open(tmp_path / "s")
    assert tl.ingest_file(SEED / "JH-03-labs.csv").new == 55
    again = tl.ingest([v.event for v in tl.events("JH-03")])
    assert (again.new, again.present) == (0, 55)


def test_parallel_and_serial_parsing_agree(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", GOOD * 3 + [{**GOOD[2], "anc_e9_per_l": "x"}])
    serial = list(read_json_lines(f, date(2030, 1, 1), parallel=False))
    parallel = list(read_json_lines(f, date(2030, 1, 1), parallel=True))
    assert serial == parallel and len(serial) == 10


def test_schema_command_prints_generated_schema(tmp_path):
    r = run("schema", store=tmp_path / "s")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    text = json.dumps(schema)
    for name in ("blood_count", "stem_cell_infusion", "event_corrected", "gvhd_diagnosed", "mrd_test"):
        assert f'"{name}"' in text


def test_history_shows_days_and_corrections(tmp_path):
    store = tmp_path / "s"
    tl = Timeline.open(store)
    tl.ingest(GOOD)
    count_id = [f.original.event_id for f in tl.facts("P1") if f.original.type == "blood_count"][0]
    lock = max(f.original.recorded_at for f in tl.facts("P1"))
    tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2020-04-01", "corrects": count_id,
               "replacement": {"type": "blood_count", "occurred_on": "2020-03-06", "anc_e9_per_l": 0.2},
               "recorded_by": "dm2", "note": "wrong date"})
    tl.close()
    r = run("history", "P1", store=store)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "2020-03-01      0  stem_cell_infusion" in out
    assert "2020-03-06     +5  blood_count                 anc_e9_per_l=0.2" in out
    assert "corrected" in out and "by dm2: wrong date" in out and "was 2020-03-05 blood_count anc_e9_per_l=0.1" in out
    assert "2020-01-01    -60  patient_registered" in out
    r = run("history", "P1", "--known-at", lock.isoformat(), store=store)
    assert "(0 corrected, 0 retracted)" in r.stdout and "^ corrected" not in r.stdout
    assert "2020-03-05     +4  blood_count" in r.stdout
    r = run("history", "NOBODY", store=store)
    assert r.returncode == 1 and "no events" in r.stderr


def test_future_event_is_refused_with_its_line(tmp_path):
    f = write_jsonl(tmp_path / "f.jsonl", [GOOD[0], {**GOOD[2], "occurred_on": "2999-01-01"}])
    r = run("ingest", str(f), store=tmp_path / "s")
    assert r.returncode == 1 and "line 2: occurred_on" in r.stderr and "future" in r.stderr


@pytest.mark.parametrize("bad_store", ["file"])
def test_store_setting_errors_are_clear(tmp_path, bad_store):
    not_a_folder = tmp_path / "x"
    not_a_folder.write_text("")
    r = run("history", "P1", store=not_a_folder)
    assert r.returncode != 0 and "is a file" in r.stderr
