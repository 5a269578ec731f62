"""The event store's guarantees, on every persistence (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from timeline.app import Timeline
from timeline.clock import latest_clinical_date, us_to_datetime
from timeline.events.problems import RejectedError


def count(pid: str, day: str, anc: float, **extra) -> dict:
    return {"type": "blood_count", "patient_id": pid, "occurred_on": day, "anc_e9_per_l": anc, **extra}


@pytest.fixture
def tl(store_location):
    t = Timeline.open(store_location)
    yield t
    t.close()


def test_append_and_read_back(tl):
    r = tl.ingest([count("P1", "2024-01-01", 0.1), count("P1", "2024-01-02", 0.4), count("P2", "2024-01-01", 2.0)])
    assert (r.new, r.present) == (3, 0)
    evs = tl.events("P1")
    assert [e.event.anc_e9_per_l for e in evs] == [0.1, 0.4]
    assert all(e.recorded_at.tzinfo is not None for e in evs)
    assert tl.patients() == ["P1", "P2"]


def test_same_id_same_content_adds_nothing(tl):
    rows = [count("P1", "2024-01-01", 0.1), count("P1", "2024-01-02", 0.4)]
    assert tl.ingest(rows).new == 2
    again = tl.ingest(rows)
    assert (again.new, again.present) == (0, 2)
    # the derived id is the same whatever the key order of the input
    reordered = [{k: rows[0][k] for k in reversed(list(rows[0]))}]
    assert tl.ingest(reordered).present == 1
    assert len(tl.events("P1")) == 2


def test_same_id_other_content_is_an_error_naming_the_fields_not_the_values(tl):
    eid = str(uuid.uuid4())
    tl.record(count("P1", "2024-01-01", 0.1, event_id=eid, note="first"))
    with pytest.raises(RejectedError) as err:
        tl.record(count("P1", "2024-01-01", 0.9, event_id=eid, note="second"))
    msg = str(err.value)
    assert eid in msg and "fields that differ: anc_e9_per_l, note" in msg
    assert "0.1" not in msg and "first" not in msg
    assert [e.event.anc_e9_per_l for e in tl.events("P1")] == [0.1]


def test_same_id_reused_for_another_patient_is_an_error(tl):
    eid = str(uuid.uuid4())
    tl.record(count("P1", "2024-01-01", 0.1, event_id=eid))
    with pytest.raises(RejectedError, match="another patient") as e:
        tl.record(count("P2", "2024-01-01", 0.1, event_id=eid))
    assert "P1" not in str(e.value)  # a message about P2 shows nothing of P1


def test_a_bad_input_stores_nothing_and_reports_every_problem(tl):
    rows = [count("P1", "2024-01-01", 0.1), count("P1", "2024-01-02", -1), {"type": "nope", "patient_id": "P1",
            "occurred_on": "2024-01-03"}, count("P1", "2024-01-04", 0.2)]
    with pytest.raises(RejectedError) as err:
        tl.ingest(rows)
    lines = {p.line for p in err.value.problems}
    assert lines == {2, 3}
    assert {p.field for p in err.value.problems} == {"anc_e9_per_l", "type"}
    assert tl.events("P1") == []


def test_recorded_at_strictly_increasing(tl):
    for i in range(3):
        tl.ingest([count("P1", f"2024-01-{d:02d}", i + d / 10) for d in range(1, 6)])
    stamps = [r.recorded_at for r in tl.store.stream("P1")]
    assert len(stamps) == 15
    assert all(a < b for a, b in zip(stamps, stamps[1:]))


def test_event_in_the_future_of_its_recording_is_rejected(tl):
    now = datetime.now(UTC)
    too_late = latest_clinical_date(now) + timedelta(days=1)
    with pytest.raises(RejectedError) as err:
        tl.record(count("P1", too_late.isoformat(), 0.1))
    assert err.value.problems[0].field == "occurred_on"
    assert "future" in err.value.problems[0].rule
    # today (any time zone's today) is fine
    tl.record(count("P1", now.date().isoformat(), 0.1))


def test_future_check_uses_the_store_clock():
    tl = Timeline.open("memory")
    fixed = int(datetime(2020, 6, 1, 12, tzinfo=UTC).timestamp() * 1_000_000)
    tl.store.now_us = lambda: fixed
    assert latest_clinical_date(us_to_datetime(fixed)) == date(2020, 6, 2)  # UTC+14 is already June 2nd
    tl.record(count("P1", "2020-06-02", 0.1))
    with pytest.raises(RejectedError):
        tl.record(count("P1", "2020-06-03", 0.1))



def test_a_batch_across_a_whole_second_is_stamped_in_order_and_numbered_per_patient():
    """The writer stamps a batch column-wise (`_Appender._rows`): the stamps run on across the second they
    cross, each patient's versions count on from their last, whatever the interleaving."""
    tl = Timeline.open("memory")
    start = int(datetime(2020, 6, 1, 12, 0, 59, tzinfo=UTC).timestamp() * 1_000_000) + 999_998
    tl.store.now_us = lambda: start
    tl.record(count("P2", "2020-01-01", 0.1))  # P2's version 1, stamped at `start`
    rows = [count(pid, f"2020-01-{day:02d}", 0.2) for day, pid in enumerate(["P1", "P2", "P1", "P3", "P2"], 2)]
    assert tl.ingest(rows).new == 5
    stamped = sorted((r.recorded_at, r.patient_id, version) for pid in ("P1", "P2", "P3")
                     for version, r in enumerate(tl.store.stream(pid), start=1))  # a stream is in version order
    micro = [int((t - us_to_datetime(start)) / timedelta(microseconds=1)) for t, _, _ in stamped]
    assert micro == [0, 1, 2, 3, 4, 5]  # strictly increasing, through 12:01:00.000000
    assert [(pid, v) for _, pid, v in stamped] == [("P2", 1), ("P1", 1), ("P2", 2), ("P1", 2), ("P3", 1), ("P2", 3)]
    assert stamped[2][0] == datetime(2020, 6, 1, 12, 1, 0, tzinfo=UTC)
    tl.close()

# -- corrections and retractions ------------------------------------------------------------------------
def _ids(tl, pid):
    return [r.event_id for r in tl.store.stream(pid)]


def test_correction_replaces_content_and_keeps_the_fact_id(tl):
    tl.record(count("P1", "2024-01-01", 5.0))
    eid = _ids(tl, "P1")[0]
    tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2024-02-01", "corrects": eid,
               "replacement": {"type": "blood_count", "occurred_on": "2024-01-02", "anc_e9_per_l": 0.5},
               "recorded_by": "dm1", "note": "typo"})
    [v] = tl.events("P1")
    assert v.event_id == eid and v.event.anc_e9_per_l == 0.5 and v.event.occurred_on == date(2024, 1, 2)
    assert v.corrected


def test_correction_of_a_correction_replaces_the_latest_version(tl):
    tl.record(count("P1", "2024-01-01", 5.0))
    eid = _ids(tl, "P1")[0]
    tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2024-02-01", "corrects": eid,
               "replacement": {"type": "blood_count", "occurred_on": "2024-01-01", "anc_e9_per_l": 0.5}})
    c1 = _ids(tl, "P1")[1]
    tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2024-02-02", "corrects": c1,
               "replacement": {"type": "blood_count", "occurred_on": "2024-01-01", "anc_e9_per_l": 0.7}})
    assert [v.event.anc_e9_per_l for v in tl.events("P1")] == [0.7]


def test_known_at_hides_later_corrections(tl):
    tl.record(count("P1", "2024-01-01", 5.0))
    eid = _ids(tl, "P1")[0]
    before = tl.store.stream("P1")[0].recorded_at
    tl.record({"type": "event_retracted", "patient_id": "P1", "occurred_on": "2024-02-01", "retracts": eid,
               "reason": "wrong patient"})
    assert tl.events("P1") == []
    assert [v.event.anc_e9_per_l for v in tl.events("P1", known_at=before)] == [5.0]
    assert tl.events("P1", known_at=before - timedelta(microseconds=1)) == []


def test_as_of_limits_clinical_date(tl):
    tl.ingest([count("P1", "2024-01-01", 0.1), count("P1", "2024-01-05", 0.2)])
    assert [str(v.event.occurred_on) for v in tl.events("P1", as_of="2024-01-04")] == ["2024-01-01"]


@pytest.mark.parametrize("case", ["missing", "other_patient", "already_retracted", "retraction_target"])
def test_amendment_errors(tl, case):
    tl.ingest([count("P1", "2024-01-01", 5.0), count("P2", "2024-01-01", 1.0)])
    p1, p2 = _ids(tl, "P1")[0], _ids(tl, "P2")[0]
    target = {"missing": str(uuid.uuid4()), "other_patient": p2}.get(case, p1)
    if case in ("already_retracted", "retraction_target"):
        tl.record({"type": "event_retracted", "patient_id": "P1", "occurred_on": "2024-02-01", "retracts": p1,
                   "reason": "duplicate"})
        if case == "retraction_target":
            target = _ids(tl, "P1")[1]
    with pytest.raises(RejectedError) as err:
        tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2024-02-02", "corrects": target,
                   "replacement": {"type": "blood_count", "occurred_on": "2024-01-01", "anc_e9_per_l": 0.5}})
    [problem] = err.value.problems
    assert problem.field == "corrects" and problem.value == target
    expected = {"missing": "no such event", "other_patient": "belongs to another patient",
                "already_retracted": "already retracted", "retraction_target": "is a retraction"}[case]
    assert expected in problem.rule


def test_correction_in_the_same_input_as_its_target(tl):
    eid = str(uuid.uuid4())
    tl.ingest([count("P1", "2024-01-01", 5.0, event_id=eid),
               {"type": "event_retracted", "patient_id": "P1", "occurred_on": "2024-02-01", "retracts": eid,
                "reason": "entered twice"}])
    assert tl.events("P1") == []
    assert len(tl.facts("P1")) == 1 and not tl.facts("P1")[0].visible


def test_retracting_a_correction_reverts_it(tl):
    tl.record(count("P1", "2024-01-01", 5.0))
    eid = _ids(tl, "P1")[0]
    tl.record({"type": "event_corrected", "patient_id": "P1", "occurred_on": "2024-02-01", "corrects": eid,
               "replacement": {"type": "blood_count", "occurred_on": "2024-01-01", "anc_e9_per_l": 0.5}})
    c1 = _ids(tl, "P1")[1]
    tl.record({"type": "event_retracted", "patient_id": "P1", "occurred_on": "2024-02-02", "retracts": c1,
               "reason": "correction was wrong"})
    assert [v.event.anc_e9_per_l for v in tl.events("P1")] == [5.0]


def test_version_conflict_is_retried(tmp_path, monkeypatch):
    """A writer that lost the race for a stream version rolls back and retries; nothing is lost."""
    from timeline.store import recorders

    tl = Timeline.open(str(tmp_path / "d"))
    tl.ingest([count("P1", "2024-01-01", 0.1)])
    real = recorders.AppendTransaction.next_versions
    calls = {"n": 0}

    def stale(self, pids):
        calls["n"] += 1
        got = real(self, pids)
        return {p: 1 for p in got} if calls["n"] == 1 else got  # first attempt: as if version 1 were free

    monkeypatch.setattr(recorders.AppendTransaction, "next_versions", stale)
    r = tl.ingest([count("P1", "2024-01-02", 0.2)])
    assert r.new == 1 and calls["n"] >= 2
    assert [v.event.anc_e9_per_l for v in tl.events("P1")] == [0.1, 0.2]


def test_bulk_arrow_read_equals_the_notification_log(tl):
    """`read_arrow` (ADBC for an SQLite file, the library's cursor otherwise) gives the rows of the library's
    notification log, ranges included, with the state as text; a note with non-ASCII text survives. The
    state holds the stream (patient) and topic (type) the loader takes from it."""
    tl.ingest([count("P1", "2024-01-01", 0.1, note="neutropénie fébrile"), count("P2", "2024-01-01", 2.0),
               count("P1", "2024-01-02", 0.4), count("P3", "2024-01-03", 1.0)])
    rec = tl.store.recorder
    expected = [(r.position, r.state.decode()) for b in rec.read_all() for r in b]
    end = tl.store.max_position()
    assert len(expected) == end == 4
    for b in rec.read_all():
        for r in b:
            state = json.loads(r.state)
            assert (state["patient_id"], state["type"]) == (r.patient_id, r.type)

    def rows(after: int, upto: int, patients=None) -> list[tuple]:
        with rec.read_arrow(after, upto, batch=2, patients=patients) as stream:
            table = pa.RecordBatchReader.from_stream(stream).read_all()
        return list(zip(*(table.column(c).to_pylist() for c in ("position", "state"))))

    assert rows(0, end) == expected
    assert rows(1, 3) == expected[1:3]
    assert rows(end, end + 10) == []
    assert "neutropénie" in expected[0][1]
    # some patients' streams only (a catch-up reads the touched patients' earlier rows this way)
    of = {r.position: r.patient_id for b in rec.read_all() for r in b}
    assert sorted(rows(0, end, ["P1", "P3", "nobody", "O'Brien"])) == [e for e in expected if of[e[0]] in ("P1", "P3")]
    assert sorted(rows(0, 2, ["P1", "P3"])) == [e for e in expected[:2] if of[e[0]] == "P1"]
    assert rows(0, end, []) == []


def test_a_new_sqlite_store_has_large_pages_and_an_older_one_keeps_its_own(tmp_path):
    """New stores are made with `NEW_STORE_PAGE_BYTES` pages (a bulk ingest's commit and checkpoint copy fewer,
    larger pages); a store made with SQLite's default 4,096-byte pages is read and appended to as it is."""
    import sqlite3

    from timeline.store.recorders import NEW_STORE_PAGE_BYTES

    def page_size(folder):
        con = sqlite3.connect(folder / "events.sqlite")
        try:
            return con.execute("PRAGMA page_size").fetchone()[0], con.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            con.close()

    with Timeline.open(tmp_path / "new") as t:
        t.ingest([count("P1", "2024-01-01", 0.1)])
    assert NEW_STORE_PAGE_BYTES == 16_384 and page_size(tmp_path / "new") == (NEW_STORE_PAGE_BYTES, "wal")

    old = tmp_path / "old"
    old.mkdir(mode=0o700)
    sqlite3.connect(old / "events.sqlite").execute("VACUUM")  # an empty file of SQLite's default page size
    with Timeline.open(old) as t:
        t.ingest([count("P1", "2024-01-01", 0.1), count("P1", "2024-01-02", 0.4)])
    with Timeline.open(old) as t:
        assert [e.event.anc_e9_per_l for e in t.events("P1")] == [0.1, 0.4]
    assert page_size(old) == (4096, "wal")
