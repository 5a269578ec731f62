"""Data locks and the audit trail (issue 11, Deliver 3): a report at a lock reproduces byte for byte after
the store has changed; `--lock` works wherever `--known-at` does; `timeline audit` lists every correction and
retraction (who, when, why, what it replaced, before and after) and every lock; nothing edits the trail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from timeline.app import Timeline

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def run(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def locked(tmp_path_factory) -> Path:
    """The seed store locked as `L1` (report written), then changed: a correction, a retraction, a new event."""
    from timeline.demo import seed_files

    store = tmp_path_factory.mktemp("locks") / "data"
    with Timeline.open(store) as tl:
        for path in seed_files(SEED):
            tl.ingest_file(path)
        tl.project()
    r = run(store, "lock", "L1", "--by", "dm.lead")
    assert r.returncode == 0 and "locked data lock L1: as known at" in r.stdout, r.stderr
    assert run(store, "report", "--lock", "L1", "--out", str(store.parent / "at-lock")).returncode == 0
    with Timeline.open(store) as tl:
        [count] = [f for f in tl.facts("JH-01") if f.type == "blood_count"][:1]
        tl.correct(count.original.event_id, {"anc_e9_per_l": 0.2}, reason="typed 2.0", by="dm.smith")
        [follow] = [f for f in tl.facts("JH-02") if f.type == "follow_up"][:1]
        tl.retract(follow.original.event_id, reason="entered twice", by="dm.jones")
        tl.record({"type": "follow_up", "patient_id": "JH-03", "occurred_on": "2025-09-01",
                   "disease_status": "remission"})
        tl.project()
    return store


def test_a_report_at_a_lock_reproduces_byte_for_byte_after_changes(locked):
    again = locked.parent / "again"
    r = run(locked, "report", "--lock", "L1", "--out", str(again))
    assert r.returncode == 0, r.stderr
    first = locked.parent / "at-lock"
    names = sorted(p.name for p in first.iterdir())
    assert {"report.md", "report.html"} <= set(names) and any(n.endswith(".png") for n in names)
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    md = (again / "report.md").read_text()
    assert "View: data lock L1: as known at" in md and "dm.lead" in md


def test_lock_works_wherever_known_at_does(locked):
    with Timeline.open(locked) as tl:
        from timeline.locks import find_lock

        lock = find_lock(tl, "L1")
    known = lock.known_at.isoformat()
    for args in (("history", "JH-02"), ("sql", "SELECT count(*) AS n FROM events", "--format", "csv"),
                 ("km", "os", "--format", "csv")):
        at_lock, at_time = run(locked, *args, "--lock", "L1"), run(locked, *args, "--known-at", known)
        assert at_lock.returncode == at_time.returncode and at_lock.stdout == at_time.stdout, args
    r = run(locked, "sql", "SELECT 1", "--lock", "L1", "--known-at", known)
    assert r.returncode == 2 and "give one" in r.stderr
    r = run(locked, "sql", "SELECT 1", "--lock", "NOPE")
    assert r.returncode == 1 and "no data lock 'NOPE'; the locks: L1" in r.stderr


def test_a_lock_is_never_moved_and_a_past_lock_counts_what_was_known(locked):
    r = run(locked, "lock", "L1")
    assert r.returncode == 1 and "exists already; a lock is never moved" in r.stderr
    r = run(locked, "lock", "EARLY", "--at", "2001-01-01T00:00:00Z")
    assert r.returncode == 0 and "store position 0" in r.stdout
    r = run(locked, "lock", "LATER", "--at", "2999-01-01T00:00:00Z")
    assert r.returncode == 1 and "in the future" in r.stderr


def test_the_audit_trail_lists_amendments_with_before_and_after_and_every_lock(locked):
    r = run(locked, "audit", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    correction = next(x for x in rows if x["by"] == "dm.smith")
    assert correction["action"] == "correction" and correction["patient_id"] == "JH-01"
    assert correction["reason"] == "typed 2.0" and correction["after"] == "anc_e9_per_l=0.2"
    assert correction["before"].startswith("anc_e9_per_l=") and correction["before"] != correction["after"]
    retraction = next(x for x in rows if x["by"] == "dm.jones")
    assert retraction["action"] == "retraction" and retraction["after"] == "retracted"
    assert retraction["before"].startswith("follow_up ") and retraction["reason"] == "entered twice"
    locks = [x for x in rows if x["action"] == "data lock"]
    assert [x["target"] for x in locks][:1] == ["L1"] and locks[0]["by"] == "dm.lead"
    assert [x["at"] for x in rows] == sorted(x["at"] for x in rows)
    at_lock = json.loads(run(locked, "audit", "--lock", "L1", "--format", "json").stdout)
    assert not any(x["by"] in ("dm.smith", "dm.jones") for x in at_lock)
    since = json.loads(run(locked, "audit", "--since", locks[0]["at"], "--format", "json").stdout)
    assert {x["by"] for x in since} >= {"dm.smith", "dm.jones"} and "dm.lead" not in {x["by"] for x in since}
    mine = json.loads(run(locked, "audit", "--patient", "JH-01", "--format", "json").stdout)
    assert {x["patient_id"] for x in mine} == {"JH-01"}


def test_nothing_in_the_tool_edits_the_trail():
    """No command deletes or updates the audit table or an amendment: the only statements on the audit
    table are its creation and inserts."""
    import re

    root = Path(__file__).resolve().parent.parent / "timeline"
    code = "\n".join(p.read_text() for p in root.rglob("*.py"))
    assert not re.search(r"(UPDATE|DELETE FROM)\s+\{?[\w.]*audit", code, re.IGNORECASE)
    assert not re.search(r"(UPDATE|DELETE FROM)\s+\{(self\.table|n\.events|self\.names\.events)\}", code)
