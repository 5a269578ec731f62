"""Errors that help: plausible ranges naming their unit, files as people write them (semicolons, tabs, a
byte-order mark, a JSON array), 'did you mean', the list of types once per file, one line for a store that
cannot be reached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.events.problems import RejectedError

REG = {"type": "patient_registered", "patient_id": "P1", "occurred_on": "2025-01-02", "birth_date": "2014-02-03",
       "sex": "male"}


def _run(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args], capture_output=True,
                          text=True, timeout=300)


def _refusal(event: dict) -> str:
    with Timeline.open("memory") as tl:
        with pytest.raises(RejectedError) as e:
            tl.ingest([event])
    [problem] = e.value.problems
    return str(problem)


WRONG_UNITS = [
    ({"type": "blood_count", "anc_e9_per_l": 1500}, "expected ×10⁹/L, 0–100; as cells/µL this would be 1.5 ×10⁹/L"),
    ({"type": "blood_count", "platelets_e9_per_l": 45000}, "expected ×10⁹/L, 0–2000; as cells/µL this would be 45"),
    ({"type": "blood_count", "hb_g_per_dl": 87}, "expected g/dL, 0–25; as g/L this would be 8.7 g/dL"),
    ({"type": "blood_count", "hb_g_per_dl": 120}, "as g/L this would be 12 g/dL"),
    ({"type": "conditioning_started", "regimen": "TBI", "intensity": "myeloablative", "tbi_gy": 1200},
     "expected Gy, 0–20; as cGy this would be 12 Gy"),
    ({"type": "stem_cell_infusion", "donor": "haploidentical", "graft_source": "peripheral_blood",
      "cd34_e6_per_kg": 7_100_000}, "as cells/kg this would be 7.1 ×10⁶/kg"),
    ({"type": "chimerism_test", "donor_percent": 197, "compartment": "whole_blood"}, "expected % donor cells, 0–100"),
]


@pytest.mark.parametrize("fields, words", WRONG_UNITS, ids=[w[1][:30] for w in WRONG_UNITS])
def test_a_value_in_another_unit_is_refused_naming_the_unit(fields, words):
    assert words in _refusal({"patient_id": "P1", "occurred_on": "2025-01-02", **fields})


def test_a_chimerism_fraction_is_accepted_and_queried_not_refused(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        assert tl.ingest([{"type": "chimerism_test", "patient_id": "P1", "occurred_on": "2025-01-02",
                           "donor_percent": 0.97, "compartment": "whole_blood"}]).new == 1


def test_did_you_mean_for_fields_types_and_values():
    assert "did you mean `platelets_e9_per_l`?" in _refusal({"type": "blood_count", "patient_id": "P1",
                                                            "occurred_on": "2025-01-02", "platelets_e9_per_L": 45})
    assert "unknown type; did you mean `blood_count`?" in _refusal({"type": "blod_count", "patient_id": "P1",
                                                                    "occurred_on": "2025-01-02"})
    assert "did you mean `female`?" in _refusal({**REG, "sex": "femal"})


def test_the_types_are_listed_once_per_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"type": "blod_count", "patient_id": f"P{i}", "occurred_on": "2025-01-02"})
                           + "\n" for i in range(5)), encoding="utf-8")
    r = _run(tmp_path / "data", "ingest", str(bad))
    assert r.returncode == 1
    assert r.stderr.count("did you mean `blood_count`?") == 5
    assert r.stderr.count("the event types are:") == 1 and "patient_registered" in r.stderr


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_csv_with_semicolons_or_tabs_is_read(tmp_path, delimiter):
    path = tmp_path / "labs.csv"
    path.write_text(delimiter.join(["type", "patient_id", "occurred_on", "anc_e9_per_l"]) + "\n"
                    + delimiter.join(["blood_count", "P1", "2025-01-02", "0.5"]) + "\n", encoding="utf-8")
    with Timeline.open(tmp_path / "data") as tl:
        assert tl.ingest_file(path).new == 1


def test_json_lines_with_a_byte_order_mark_and_a_json_array_are_read(tmp_path):
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(REG).encode() + b"\n")
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{**REG, "patient_id": "P2"}, {**REG, "patient_id": "P3"}]), encoding="utf-8")
    with Timeline.open(tmp_path / "data") as tl:
        assert tl.ingest_file(with_bom).new == 1
        assert tl.ingest_file(array).new == 2


def test_a_json_array_with_an_invalid_item_is_refused_once_per_item(tmp_path):
    array = tmp_path / "array.json"
    array.write_text(json.dumps([REG, {**REG, "sex": "x"}]), encoding="utf-8")
    with Timeline.open(tmp_path / "data") as tl:
        with pytest.raises(RejectedError) as e:
            tl.ingest_file(array)
    [problem] = e.value.problems
    assert problem.line == 2 and problem.field == "sex"


def test_a_csv_without_type_says_what_its_header_needs(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("patient;date\nP1;2025-01-01\n", encoding="utf-8")
    with Timeline.open(tmp_path / "data") as tl:
        with pytest.raises(RejectedError) as e:
            tl.ingest_file(path)
    assert "header row naming at least `type`" in e.value.problems[0].rule


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist_is_one_line(pg_base_url):
    base = pg_base_url.rsplit("/", 1)[0]
    r = subprocess.run([sys.executable, "-m", "timeline", "--store", f"{base}/no_such_database_here", "sql",
                        "SELECT 1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_database_here" in lines[0] and "127.0.0.1:5432" in lines[0]


def test_a_missing_field_is_named_without_a_value():
    """A field that is absent has no value to show ('graft_source = null' read as if null had been given)."""
    said = _refusal({"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2025-01-02",
                     "donor": "haploidentical", "source": "bone_marrow"})
    assert said.startswith("line 1: graft_source: required: the graft source is now `graft_source`"), said
