"""Hypothesis properties of the projections (issue 3, point 5), over generated coherent histories.

1. Arrival order does not matter: the same events in another order, in several ingest calls -> same tables.
2. As-of: the view at clinical date D equals a store that received only the events occurred by D; the
   view known at K equals a store holding only what was recorded by K (later retractions included).
3. Incremental catch-up (project after each batch, with retractions and corrections) equals a rebuild.
4. Retracting facts and recording them again under new ids restores every table (and while retracted,
   the tables are those of a store that never had them).
5. An established engraftment day never moves when later blood counts arrive.
6. Endpoint invariants for every patient (docs/rules.md "Time-to-event endpoints").

Stores are in memory; each example gets its own DuckDB file in a temporary directory.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from projection_compare import assert_same_snapshots, snapshot
from timeline.app import Timeline
from timeline.events import to_json_dict
from timeline.projections.rules.endpoints import ENDPOINTS
from timeline.testing.histories import cohort_histories, patient_history

# about 0.5-1.5 s an example (2-4 projections of a small cohort): 15 examples a property keeps the
# file near a minute on a loaded 2-core machine
PROPERTY = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

COHORT = cohort_histories(min_patients=1, max_patients=4)
KNOWLEDGE = ("recorded_at",)  # knowledge-time columns: legitimately differ between two stores
# the two as-of implementations: every table rebuilt from the materialised log, or `patients=` replayed
# straight from their streams (timeline.projections.replay)
VIEWS = ("materialised log", "replay")
REQUIRED_ENDPOINTS = ("os", "efs", "grfs", "relapse", "nrm", "neutrophil_engraftment",  # docs/events.md
                      "platelet_engraftment", "agvhd_2_4", "agvhd_3_4", "cgvhd", "cmv_reactivation")


# ---------------------------------------------------------------------------------------------------
# helpers


def today() -> date:
    return datetime.now(UTC).date()


@contextmanager
def fresh_timeline() -> Iterator[Timeline]:
    """An in-memory store with its own projections file."""
    with tempfile.TemporaryDirectory(prefix="tl-prop-") as d:
        tl = Timeline.open("memory", projections=Path(d) / "p.duckdb")
        try:
            yield tl
        finally:
            tl.close()


def materialised(tl: Timeline, ignore: Sequence[str] = ()) -> dict:
    """Snapshot of the materialised tables (caught up first)."""
    with tl.as_of() as view:
        return snapshot(view, ignore)


def store_with(events: list[dict[str, Any]], ignore: Sequence[str] = KNOWLEDGE) -> dict:
    """Snapshot of a fresh store that received exactly `events`, projected."""
    with fresh_timeline() as tl:
        if events:
            tl.ingest(events)
        tl.project()
        return materialised(tl, ignore)


def chunks(draw, items: list, max_parts: int, label: str) -> list[list]:
    """`items` cut into 1..max_parts consecutive non-empty chunks at drawn points."""
    if len(items) < 2:
        return [items]
    cuts = draw(st.lists(st.integers(1, len(items) - 1), max_size=max_parts - 1, unique=True), label=label)
    bounds = [0, *sorted(cuts), len(items)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def retraction(patient_id: str, event_id: str) -> dict[str, Any]:
    return {"type": "event_retracted", "patient_id": patient_id, "occurred_on": today().isoformat(),
            "retracts": event_id, "reason": "entered in error (property test)"}


def correction(event: dict[str, Any], shift_days: int) -> dict[str, Any]:
    """A correction of stored `event` (public JSON with its event_id) moving it by `shift_days`."""
    moved = min(date.fromisoformat(event["occurred_on"]) + timedelta(days=shift_days), today())
    replacement = {k: v for k, v in event.items() if k not in ("patient_id", "event_id")}
    replacement["occurred_on"] = moved.isoformat()
    return {"type": "event_corrected", "patient_id": event["patient_id"], "occurred_on": today().isoformat(),
            "corrects": event["event_id"], "replacement": replacement}


def stored_events(tl: Timeline) -> list[dict[str, Any]]:
    """The visible events of the store as public JSON (with their event ids), in a stable order."""
    return [to_json_dict(v.event) for v in tl.events()]


def dates_of(events: list[dict[str, Any]]) -> list[date]:
    return sorted({date.fromisoformat(e["occurred_on"]) for e in events})


# ---------------------------------------------------------------------------------------------------
# 1. arrival order


@PROPERTY
@given(events=COHORT, data=st.data())
def test_projections_do_not_depend_on_arrival_order(events, data):
    shuffled = data.draw(st.permutations(events), label="arrival order")
    batches = chunks(data.draw, shuffled, 5, "cut points")
    note(f"{len(events)} events, batches of {[len(b) for b in batches]}")

    in_order = store_with(events)
    with fresh_timeline() as tl:
        for batch in batches:
            tl.ingest(batch)
        tl.project()
        shuffled_tables = materialised(tl, KNOWLEDGE)
    assert_same_snapshots(in_order, shuffled_tables, labels=("in order", "shuffled"))


# ---------------------------------------------------------------------------------------------------
# 2. as-of (clinical date) and known-at (knowledge time)


@PROPERTY
@given(events=COHORT, data=st.data())
def test_as_of_date_equals_a_store_of_the_events_occurred_by_then(events, data):
    days = dates_of(events)
    as_of = data.draw(st.one_of(
        st.sampled_from(days),                                            # an event's day
        st.sampled_from(days).map(lambda d: max(d - timedelta(days=1), days[0])),  # the day before one
        st.dates(days[0], days[-1]),                                      # anywhere in between
    ), label="as_of")
    occurred = [e for e in events if date.fromisoformat(e["occurred_on"]) <= as_of]

    via = data.draw(st.sampled_from(VIEWS), label="view")
    note(f"as of {as_of}: {len(occurred)} of {len(events)} events; {via} view")

    expected = store_with(occurred)
    with fresh_timeline() as tl:
        tl.ingest(events)
        tl.project()
        with tl.as_of(date=as_of, patients=tl.patients() if via == "replay" else None) as view:
            assert_same_snapshots(expected, snapshot(view, KNOWLEDGE),
                                  labels=("store of events by D", f"as_of(date=D) ({via})"))


@PROPERTY
@given(events=COHORT, data=st.data())
def test_known_at_equals_a_store_of_what_was_recorded_by_then(events, data):
    first = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)), label="in batch 1")
    assume(any(first))
    batch1 = [e for e, f in zip(events, first) if f]
    batch2 = [e for e, f in zip(events, first) if not f]

    expected = store_with(batch1)
    with fresh_timeline() as tl:
        tl.ingest(batch1)
        known = stored_events(tl)
        known_at = max(v.recorded_at for v in tl.events())
        # batch 2: the other events, and retractions of facts of batch 1 (not yet known at K)
        retracted = data.draw(st.lists(st.sampled_from(known), max_size=3, unique_by=lambda e: e["event_id"]),
                              label="retracted after K")
        tl.ingest(batch2 + [retraction(e["patient_id"], e["event_id"]) for e in retracted])
        note(f"K = {known_at}: {len(batch1)} events known, then {len(batch2)} more and "
             f"{len(retracted)} retractions")
        assert all(v.recorded_at > known_at for v in tl.events() if v.event_id not in
                   {e["event_id"] for e in known})
        tl.project()
        via = data.draw(st.sampled_from(VIEWS), label="view")
        with tl.as_of(known_at=known_at, patients=tl.patients() if via == "replay" else None) as view:
            assert_same_snapshots(expected, snapshot(view, KNOWLEDGE),
                                  labels=("store of batch 1", f"as_of(known_at=K) ({via})"))


@PROPERTY
@given(events=COHORT, data=st.data())
def test_a_past_view_of_the_file_equals_a_build_of_every_patient_at_that_time(events, data):
    """The file's past view recomputes only the patients whose visible events differ then (`changed_select`);
    with corrections moving events across the date and amendments recorded after the knowledge time, it still
    equals every patient built from the store at (D, K)."""
    batches = chunks(data.draw, data.draw(st.permutations(events), label="arrival order"), 3, "cut points")
    with fresh_timeline() as tl:
        times: list[datetime | None] = [None]
        for i, batch in enumerate(batches):
            amendments: list[dict[str, Any]] = []
            if i > 0:
                times.append(max(v.recorded_at for v in tl.events()))
                known = stored_events(tl)
                for e in data.draw(st.lists(st.sampled_from(known), max_size=3, unique_by=lambda e: e["event_id"]),
                                   label=f"amended in batch {i + 1}"):
                    shift = data.draw(st.one_of(st.none(), st.integers(-40, 40)), label="retract (None) or shift")
                    amendments.append(retraction(e["patient_id"], e["event_id"]) if shift is None
                                      else correction(e, shift))
            tl.ingest(batch + amendments)
        tl.project()
        days = dates_of(events)
        as_of = data.draw(st.one_of(st.none(), st.sampled_from(days), st.dates(days[0], days[-1])), label="as_of")
        known_at = data.draw(st.sampled_from(times), label="known_at")
        assume(as_of is not None or known_at is not None)
        with tl.as_of(as_of, known_at) as past, tl.as_of(as_of, known_at, fresh=True) as everyone:
            assert_same_snapshots(snapshot(everyone), snapshot(past),
                                  labels=("every patient built from the store", "past view of the file"))


# ---------------------------------------------------------------------------------------------------
# 3. incremental catch-up = rebuild


@PROPERTY
@given(events=COHORT, data=st.data())
def test_incremental_catch_up_equals_rebuild(events, data):
    order = data.draw(st.permutations(events), label="arrival order")
    batches = chunks(data.draw, order, 5, "cut points")
    with fresh_timeline() as tl:
        for i, batch in enumerate(batches):
            amendments: list[dict[str, Any]] = []
            if i > 0:  # amend facts of earlier batches: retract some, move some by a few days
                known = stored_events(tl)
                picked = data.draw(st.lists(st.sampled_from(known), max_size=3, unique_by=lambda e: e["event_id"]),
                                   label=f"amended in batch {i + 1}")
                for e in picked:
                    shift = data.draw(st.one_of(st.none(), st.integers(-3, 3)), label="retract (None) or shift")
                    amendments.append(retraction(e["patient_id"], e["event_id"]) if shift is None
                                      else correction(e, shift))
            note(f"batch {i + 1}: {len(batch)} events, amendments {[a['type'] for a in amendments]}")
            tl.ingest(batch + amendments)
            tl.project()
        caught_up = materialised(tl)
        tl.project(rebuild=True)
        rebuilt = materialised(tl)
    assert_same_snapshots(caught_up, rebuilt, labels=("catch-up", "rebuild"))


# ---------------------------------------------------------------------------------------------------
# 4. retract, then record the same facts again


@PROPERTY
@given(events=COHORT, data=st.data())
def test_retracting_and_re_recording_facts_restores_every_table(events, data):
    ignore = ("event_id", *KNOWLEDGE)
    with fresh_timeline() as tl:
        tl.ingest(events)
        tl.project()
        original = materialised(tl, ignore)
        stored = stored_events(tl)
        gone = data.draw(st.lists(st.sampled_from(stored), min_size=1, max_size=len(stored),
                                  unique_by=lambda e: e["event_id"]), label="retracted")
        note(f"retracting {len(gone)} of {len(stored)}: {sorted({e['type'] for e in gone})}")
        tl.ingest([retraction(e["patient_id"], e["event_id"]) for e in gone])
        tl.project()
        if data.draw(st.booleans(), label="also compare with a store that never had them"):
            gone_ids = {e["event_id"] for e in gone}
            assert_same_snapshots(store_with([e for e in stored if e["event_id"] not in gone_ids], ignore),
                                  materialised(tl, ignore), labels=("store without them", "after the retractions"))

        new_ids = data.draw(st.lists(st.uuids(version=4), min_size=len(gone), max_size=len(gone), unique=True),
                            label="new event ids")
        tl.ingest([{**e, "event_id": str(u)} for e, u in zip(gone, new_ids)])
        tl.project()
        restored = materialised(tl, ignore)
    assert_same_snapshots(original, restored, labels=("original", "retracted and re-recorded"))


# ---------------------------------------------------------------------------------------------------
# 5. engraftment days do not move


_ANC = st.one_of(st.sampled_from((0.0, 0.49, 0.5, 0.51)), st.floats(0, 30, allow_nan=False, allow_infinity=False))
_PLT = st.one_of(st.sampled_from((0.0, 19.0, 20.0, 49.0, 50.0)),
                 st.floats(0, 600, allow_nan=False, allow_infinity=False))
ENGRAFTMENT_DAYS = ("neutrophil_on", "platelet_on", "platelet_50_on")


def engraftment_candidate(history: list[dict[str, Any]]) -> bool:
    """Cheap pre-filter (before any projection), so that most examples test an established day:
    transplanted, 3 days in a row of ANC >= 0.5 after a low after day 0 (lowest value of the day), and
    room for later counts before a death. (The engine decides; this only steers generation.)"""
    infusions = [e["occurred_on"] for e in history if e["type"] == "stem_cell_infusion"]
    if not infusions:
        return False
    counts = [e for e in history if e["type"] == "blood_count" and e["occurred_on"] > min(infusions)]
    deaths = [e["occurred_on"] for e in history if e["type"] == "death"]
    if not counts or (deaths and deaths[0] <= max(e["occurred_on"] for e in counts)):
        return False

    def recovers(field: str, threshold: float) -> bool:  # 3 days in a row at/above after a low
        daily: dict[str, float] = {}
        for e in counts:
            if field in e:
                daily[e["occurred_on"]] = min(e[field], daily.get(e["occurred_on"], e[field]))
        run, fallen = 0, False
        for _, v in sorted(daily.items()):
            fallen = fallen or v < threshold
            run = run + 1 if fallen and v >= threshold else 0
            if run >= 3:
                return True
        return False

    return recovers("anc_e9_per_l", 0.5)  # platelets mostly recover too (transfusion windows aside)


def engraftment_row(tl: Timeline, pid: str) -> dict[str, Any]:
    with tl.as_of() as view:
        rows = view.sql("SELECT * FROM engraftment WHERE patient_id = ?", [pid]).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


@PROPERTY
@given(history=patient_history(patient_id="HYP-0001").filter(engraftment_candidate), data=st.data())
def test_established_engraftment_day_never_moves_when_later_counts_arrive(history, data):
    """Rounds of later counts: each round is dated after every day established so far and after the
    last count (and not after a death); the days established before it stay where they are. A round
    may itself establish a day (often the platelet one, which generated histories rarely reach),
    which the next round must then leave alone."""
    pid = "HYP-0001"
    deaths = [date.fromisoformat(e["occurred_on"]) for e in history if e["type"] == "death"]
    last_count = max(date.fromisoformat(e["occurred_on"]) for e in history if e["type"] == "blood_count")
    established: dict[str, date] = {}
    with fresh_timeline() as tl:
        tl.ingest(history)
        tl.project()
        for round_ in range(data.draw(st.integers(1, 2), label="rounds")):
            row = engraftment_row(tl, pid)
            assert {c: row[c] for c in established} == established, f"before round {round_ + 1}"
            established |= {c: row[c] for c in ENGRAFTMENT_DAYS if row[c] is not None}
            after = max([last_count, *established.values()])
            last = min([*deaths, after + timedelta(days=120), today()])
            if last <= after:
                break
            values = data.draw(st.lists(
                st.tuples(st.dates(after + timedelta(days=1), last), st.one_of(st.none(), _ANC),
                          st.one_of(st.none(), _PLT)).filter(lambda t: t[1] is not None or t[2] is not None),
                min_size=1, max_size=10), label=f"round {round_ + 1}: later counts (date, anc, platelets)")
            later = [{"type": "blood_count", "patient_id": pid, "occurred_on": d.isoformat(),
                      **({"anc_e9_per_l": a} if a is not None else {}),
                      **({"platelets_e9_per_l": p} if p is not None else {})} for d, a, p in values]
            note(f"round {round_ + 1}: established {established}; counts after {after}: {later}")
            tl.ingest(later)
            tl.project()
            last_count = max([last_count, *(d for d, _, _ in values)])
        row = engraftment_row(tl, pid)
    event(f"days checked: {', '.join(sorted(established)) or 'none'}")
    assert {c: row[c] for c in established} == established


# ---------------------------------------------------------------------------------------------------
# 6. endpoint invariants


def check_endpoints(view) -> None:
    patients = {r["patient_id"]: r for r in view.sql("SELECT * FROM patients").to_dicts()}
    rows: dict[str, dict[str, dict]] = {}
    for r in view.sql("SELECT * FROM endpoints").to_dicts():
        assert r["endpoint"] not in rows.setdefault(r["patient_id"], {}), f"duplicate endpoint row {r}"
        rows[r["patient_id"]][r["endpoint"]] = r
    for pid, pt in patients.items():
        ep = rows.get(pid, {})
        if pt["hsct_on"] is None:  # origin = day 0 (default): no origin, no rows
            assert not ep, f"{pid} has no day 0 but endpoint rows {ep}"
            continue
        assert set(ENDPOINTS) <= set(ep) and set(REQUIRED_ENDPOINTS) <= set(ep), \
            f"{pid}: endpoints {sorted(ep)}"
        follow_up = (pt["last_contact_on"] - pt["hsct_on"]).days
        for name, r in ep.items():
            where = f"{pid} {name}: {r} (follow-up {follow_up} days, patient {pt})"
            assert r["origin_on"] == pt["hsct_on"], where
            assert r["status"] in (0, 1, 2), where
            assert r["time_days"] == (r["end_on"] - r["origin_on"]).days, where
            assert 0 <= r["time_days"] <= follow_up, where
        os_, lfs, rel, nrm = ep["os"], ep["lfs"], ep["relapse"], ep["nrm"]
        assert os_["time_days"] >= lfs["time_days"] >= 0, f"{pid}: os {os_} lfs {lfs}"
        assert not (rel["status"] == 1 and nrm["status"] == 1), f"{pid}: relapse {rel} nrm {nrm}"
        assert (lfs["status"] == 1) == (rel["status"] == 1 or nrm["status"] == 1), \
            f"{pid}: lfs {lfs} relapse {rel} nrm {nrm}"
        if lfs["status"] == 1:
            first = rel if rel["status"] == 1 else nrm
            assert lfs["time_days"] == first["time_days"], f"{pid}: lfs {lfs} first event {first}"


@PROPERTY
@given(events=COHORT, data=st.data())
def test_endpoint_invariants_for_every_patient(events, data):
    days = dates_of(events)
    as_of = data.draw(st.dates(days[0], days[-1]), label="as_of")
    with fresh_timeline() as tl:
        tl.ingest(events)
        tl.project()
        with tl.as_of() as view:
            check_endpoints(view)
        with tl.as_of(date=as_of) as view:
            check_endpoints(view)


# ---------------------------------------------------------------------------------------------------
# the payload contract the comparisons above rely on (docs/architecture.md, visible-events relation)


def test_event_payload_holds_only_the_type_fields():
    """`payload` = the type-specific fields (+ source/recorded_by/note), never the envelope or
    recorded_at, whether or not the fact was corrected; a correction to the same content changes nothing."""
    events = [
        {"type": "patient_registered", "patient_id": "P1", "occurred_on": "2024-01-02",
         "birth_date": "2010-05-01", "sex": "female"},
        {"type": "blood_count", "patient_id": "P1", "occurred_on": "2024-01-10", "anc_e9_per_l": 0.4},
    ]
    with fresh_timeline() as tl:
        tl.ingest(events)
        count = next(e for e in stored_events(tl) if e["type"] == "blood_count")
        tl.project()
        with tl.as_of() as view:
            before = {r["type"]: json.loads(r["payload"]) for r in view.sql(
                "SELECT type, CAST(payload AS VARCHAR) AS payload FROM events").to_dicts()}
        tl.record(correction(count, 0))
        tl.project()
        with tl.as_of() as view:
            after = {r["type"]: json.loads(r["payload"]) for r in view.sql(
                "SELECT type, CAST(payload AS VARCHAR) AS payload FROM events").to_dicts()}
    assert before["patient_registered"] == {"birth_date": "2010-05-01", "sex": "female"}
    assert before["blood_count"] == {"anc_e9_per_l": 0.4}
    assert after["blood_count"] == before["blood_count"]
