"""Consent withdrawal (issue 11, Deliver 2): from when a `consent_withdrawn` is known, the patient is in no
projection (so in no estimate, report or export); as known before it, the patient is still there, so a
past data lock reproduces; a catch-up equals a rebuild; retracting the withdrawal brings the patient back."""

from __future__ import annotations

from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.projections import graph

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
WITHDRAWN = {"type": "consent_withdrawn", "patient_id": "JH-01", "occurred_on": "2025-09-01", "scope": "research",
             "recorded_by": "dm.smith"}


def _with_patient(view, patient: str) -> dict[str, int]:
    """table -> rows of the patient, for every projection table with a patient_id column."""
    out = {}
    for name in graph.models():
        cols = view.sql(f"SELECT * FROM {name} LIMIT 0").columns
        if "patient_id" in cols:
            out[name] = view.sql(f"SELECT count(*) AS n FROM {name} WHERE patient_id = ?", [patient])["n"][0]
    return out


@pytest.fixture(scope="module")
def withdrawn(tmp_path_factory):
    from timeline.demo import seed_files

    tl = Timeline.open(tmp_path_factory.mktemp("consent") / "data")
    for path in seed_files(SEED):
        tl.ingest_file(path)
    tl.project()
    before = tl.store.now_us()
    assert tl.record(WITHDRAWN).new == 1
    report = tl.project()
    yield tl, before, report
    tl.close()


def test_a_withdrawn_patient_is_in_no_projection_from_when_it_is_known(withdrawn):
    tl, before, report = withdrawn
    assert report.mode == "catch-up" and report.patients == 1
    with tl.as_of() as now:
        rows = _with_patient(now, "JH-01")
        assert rows and set(rows.values()) == {0}, rows
        assert now.sql("SELECT count(*) AS n FROM patients")["n"][0] == 4
        assert "JH-01" not in now.sql("SELECT patient_id FROM endpoints")["patient_id"].to_list()
    from timeline.clock import us_to_datetime

    with tl.as_of(known_at=us_to_datetime(before)) as then:
        assert _with_patient(then, "JH-01")["patients"] == 1
        assert then.sql("SELECT count(*) AS n FROM patients")["n"][0] == 5


def test_the_catch_up_equals_a_rebuild_and_fresh(withdrawn):
    from projection_compare import assert_same_snapshots, snapshot

    tl, _before, _report = withdrawn
    with tl.as_of() as caught_up:
        a = snapshot(caught_up, ignore=())
    with tl.as_of(fresh=True) as fresh:
        b = snapshot(fresh, ignore=())
    assert_same_snapshots(a, b, labels=("catch-up", "fresh"))


def test_retracting_the_withdrawal_brings_the_patient_back(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest_file(SEED / "JH-01.jsonl")
        tl.record(WITHDRAWN)
        tl.project()
        assert tl.sql("SELECT count(*) AS n FROM patients")["n"][0] == 0
        [consent] = [f for f in tl.facts("JH-01") if f.type == "consent_withdrawn"]
        tl.retract(consent.original.event_id, reason="recorded for the wrong patient", by="dm.smith")
        tl.project()
        assert tl.sql("SELECT count(*) AS n FROM patients")["n"][0] == 1
