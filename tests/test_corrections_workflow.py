"""Corrections as a workflow: `timeline correct` / `retract` by a short id, re-ingest of a changed source
record, dry runs, and the graft source renamed (stored events of the first format read through the
upcaster, ids unchanged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.events.problems import RejectedError

ROOT = Path(__file__).resolve().parent.parent


def _run(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args], capture_output=True,
                          text=True, timeout=300)


def _write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


COUNT = {"type": "blood_count", "patient_id": "P1", "occurred_on": "2025-03-04", "platelets_e9_per_l": 1340,
         "anc_e9_per_l": 0.4, "source": "lab", "source_record_id": "lims:42"}


def test_correct_and_retract_by_short_id_from_the_command_line(tmp_path):
    store = tmp_path / "data"
    assert _run(store, "ingest", str(_write(tmp_path / "a.jsonl", [COUNT]))).returncode == 0
    history = _run(store, "history", "P1")
    short = history.stdout.splitlines()[2].split()[0]
    assert len(short) == 8
    r = _run(store, "correct", short[:6], "platelets_e9_per_l=134", "--reason", "typed 1340 for 134", "--by", "dm.a")
    assert r.returncode == 0, r.stderr
    assert "corrected" in r.stdout
    history = _run(store, "history", "P1").stdout
    line = next(x for x in history.splitlines() if x.startswith(short))
    assert "platelets_e9_per_l=134" in line and "platelets_e9_per_l=1340" not in line
    assert "anc_e9_per_l=0.4" in line  # the rest is kept
    assert "corrected" in history and "by dm.a: typed 1340 for 134" in history
    r = _run(store, "retract", short, "--reason", "wrong patient", "--by", "dm.b", "--patient", "P1")
    assert r.returncode == 0, r.stderr
    assert "RETRACTED" in _run(store, "history", "P1").stdout and "by dm.b: wrong patient" in \
        _run(store, "history", "P1").stdout


def test_an_unknown_or_ambiguous_prefix_is_a_clear_error(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest([COUNT, {**COUNT, "occurred_on": "2025-03-05", "source_record_id": "lims:43"}])
        with pytest.raises(LookupError, match="no event"):
            tl.find("ffffffff")
        with pytest.raises(LookupError, match="at least 4 characters"):
            tl.find("ab")
        ids = sorted(f.original.event_id for f in tl.facts("P1"))
        common = next(i for i in range(36) if ids[0][i] != ids[1][i])
        if common >= 4:
            with pytest.raises(LookupError, match="give more characters"):
                tl.find(ids[0][:common])
        assert tl.find(ids[0]).original.event_id == ids[0]


def test_a_changed_source_record_is_recorded_as_a_correction(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        first = _write(tmp_path / "export1.jsonl", [COUNT])
        assert tl.ingest_file(first).new == 1
        again = tl.ingest_file(first)
        assert (again.new, again.present, again.corrected) == (0, 1, 0)
        fixed = _write(tmp_path / "export2.jsonl", [{**COUNT, "platelets_e9_per_l": 134}])
        dry = tl.ingest_file(fixed, dry_run=True)
        assert (dry.new, dry.present, dry.corrected, dry.dry_run) == (0, 0, 1, True)
        assert not any(f.corrections for f in tl.facts("P1"))  # the dry run stored nothing
        report = tl.ingest_file(fixed)
        assert (report.new, report.present, report.corrected) == (0, 0, 1)
        [fact] = tl.facts("P1")
        assert fact.content["platelets_e9_per_l"] == 134 and len(fact.corrections) == 1
        assert tl.ingest_file(fixed).present == 1  # the corrected record is now present
        # back to the first content: a second correction
        assert tl.ingest_file(first).corrected == 1
        assert tl.facts("P1")[0].content["platelets_e9_per_l"] == 1340


def test_a_source_record_of_another_patient_is_refused(tmp_path):
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest([COUNT])
        with pytest.raises(RejectedError) as e:
            tl.ingest([{**COUNT, "patient_id": "P2", "anc_e9_per_l": 0.9}])
        [problem] = e.value.problems
        assert problem.field == "source_record_id" and "another patient" in problem.rule and "P1" not in problem.rule


def test_ingest_reports_new_present_and_corrected_and_dry_run(tmp_path):
    store = tmp_path / "data"
    first = _write(tmp_path / "e1.jsonl", [COUNT])
    r = _run(store, "ingest", str(first))
    assert r.returncode == 0 and "1 new, 0 already present, 0 corrected" in r.stdout
    assert "created a new store at" in r.stderr
    changed = _write(tmp_path / "e2.jsonl", [{**COUNT, "anc_e9_per_l": 0.5}])
    r = _run(store, "ingest", "--dry-run", str(changed))
    assert r.returncode == 0 and "0 new, 0 already present, 1 corrected (dry run: nothing stored)" in r.stdout
    r = _run(store, "ingest", str(changed))
    assert "0 new, 0 already present, 1 corrected" in r.stdout and "created" not in r.stderr


def test_the_graft_source_is_graft_source_and_the_old_name_is_refused_naming_it(tmp_path):
    infusion = {"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2025-01-10",
                "donor": "haploidentical", "source": "peripheral_blood"}
    with Timeline.open(tmp_path / "data") as tl:
        with pytest.raises(RejectedError) as e:
            tl.ingest([infusion])
        [problem] = e.value.problems
        assert problem.field == "graft_source" and "`graft_source`" in problem.rule and "`source`" in problem.rule
        renamed = {**{k: v for k, v in infusion.items() if k != "source"}, "graft_source": "peripheral_blood",
                   "source": "form"}
        assert tl.ingest([renamed]).new == 1  # an infusion can now say where its record came from


def test_a_store_of_the_first_format_is_read_through_the_upcaster(tmp_path):
    """Stored infusions of the first format (graft source in `source`) read as `graft_source`, in history,
    in the projections and in `Timeline.events`; re-ingesting them in today's format adds nothing."""
    from timeline.events.catalogue import content_id_bytes
    from timeline.store.recorders import split_state

    legacy = (b'{"type":"stem_cell_infusion","patient_id":"P1","occurred_on":"2025-01-10","source":"bone_marrow",'
              b'"donor":"matched_sibling","cd34_e6_per_kg":4.1,"transplant_number":1}')
    eid = content_id_bytes(legacy)
    hx = eid.hex()
    state = legacy[:-1] + (f',"event_id":"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:]}",'
                           f'"recorded_at":"2025-01-11T00:00:00.000001Z"}}').encode()
    assert split_state(state) == (eid, eid)
    with Timeline.open(tmp_path / "data") as tl:
        with tl.store.recorder.append_transaction() as tx:  # written as the first format wrote it
            tx.insert([("P1", 1, "stem_cell_infusion", state)], ([], [eid]), 1_736_553_600_000_001)
        [event] = tl.events("P1")
        assert event.event.graft_source == "bone_marrow" and event.event.source is None
        again = tl.ingest([{"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2025-01-10",
                            "graft_source": "bone_marrow", "donor": "matched_sibling", "cd34_e6_per_kg": 4.1}])
        assert (again.new, again.present) == (0, 1)
        tl.project()
        assert tl.sql("SELECT graft_source FROM patients")["graft_source"].to_list() == ["bone_marrow"]
        assert tl.sql("SELECT payload->>'graft_source' AS g FROM events")["g"].to_list() == ["bone_marrow"]
        text = _run(tmp_path / "data", "history", "P1").stdout
        assert "graft_source=bone_marrow" in text
