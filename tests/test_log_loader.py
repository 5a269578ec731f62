"""The projection loader's `log`: each stored state's envelope (parsed by DuckDB) and payload (the state without the
identity and the clock, upcast), for every event type and for states in layouts the store does not write today.

The oracle is Python's: the stored JSON, upcast, without the identity and the clock, in its stored order."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import duckdb
import pytest

from timeline.app import Timeline
from timeline.events.basics import IDENTITY_FIELDS
from timeline.events.examples import EXAMPLES
from timeline.projections import loader
from timeline.store.upcasting import upcast

STRIPPED = {*IDENTITY_FIELDS, "recorded_at"}


def _pairs(text: str) -> list:
    """JSON as nested key-value lists: equal only if the keys come in the same order too."""
    return json.loads(text, object_pairs_hook=list)


def _expected(state: str) -> list:
    return _pairs(json.dumps({k: v for k, v in upcast(json.loads(state)).items() if k not in STRIPPED}))


def _loaded(tl: Timeline) -> tuple[duckdb.DuckDBPyConnection, dict[int, str]]:
    """The store's log as the projections load it, and each position's stored state."""
    rec = tl.store.recorder
    states = {r.position: r.state.decode() for b in rec.read_all() for r in b}
    con = duckdb.connect()
    loader.create_log(con)
    with rec.read_arrow(0, tl.store.max_position()) as reader:
        loader.insert_log(con, reader)
    return con, states


def _check(con: duckdb.DuckDBPyConnection, states: dict[int, str]) -> None:
    rows = con.execute("SELECT position, patient_id, CAST(event_id AS VARCHAR), type, occurred_on, recorded_at, "
                       "CAST(target AS VARCHAR), CAST(payload AS VARCHAR) FROM log ORDER BY position").fetchall()
    assert [r[0] for r in rows] == sorted(states)
    for position, patient, eid, kind, on, at, target, payload in rows:
        data = upcast(json.loads(states[position]))
        assert (patient, eid, kind, on.isoformat()) == (data["patient_id"], data["event_id"], data["type"],
                                                       data["occurred_on"])
        assert at == datetime.fromisoformat(data["recorded_at"].replace("Z", "+00:00")).astimezone(at.tzinfo)
        assert target == (data.get("corrects") or data.get("retracts"))
        assert _pairs(payload) == _expected(states[position]), (kind, payload)


def test_every_event_type_loads_its_payload_whole_and_in_order(tmp_path):
    """One event of every type, a note in non-ASCII text with characters JSON may escape, an explicit id, a source
    record, a correction and a retraction: envelope and payload equal the oracle's."""
    amendments = [dict(e) for e in EXAMPLES.values() if "corrects" in e or "retracts" in e]
    target = {"type": "blood_count", "patient_id": "P-001", "occurred_on": "2025-06-01", "anc_e9_per_l": 0.58,
              "platelets_e9_per_l": 220, "event_id": amendments[0].get("corrects") or amendments[0]["retracts"]}
    events = [dict(e) for e in EXAMPLES.values() if e not in amendments] + [target] + amendments
    events.append({"type": "blood_count", "patient_id": "P-001", "occurred_on": "2025-06-02", "anc_e9_per_l": 1e-05,
                   "platelets_e9_per_l": 1234.5, "note": 'neutropénie fébrile, "× 10⁹/L" \\ 𝛼 \t\u2028 🩸',
                   "source": "lab:ünïcode", "recorded_by": "Dr. Ø"})
    events.append({"type": "blood_count", "patient_id": "P-002", "occurred_on": "2025-06-02", "anc_e9_per_l": 0.4,
                   "event_id": str(uuid.UUID(int=7)), "source_record_id": "lims:42"})
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest(events)
        con, states = _loaded(tl)
        _check(con, states)
        kinds = [json.loads(s)["type"] for s in states.values()]
        assert set(kinds) == set(EXAMPLES) and len(kinds) == len(EXAMPLES) + 3


@pytest.mark.parametrize("state", [
    # an earlier layout: the id first, the clock with an offset
    '{"event_id":"00000000-0000-0000-0000-000000000001","type":"blood_count","patient_id":"P1",'
    '"occurred_on":"2025-01-01","anc_e9_per_l":0.5,"recorded_at":"2025-01-02T00:00:00+00:00"}',
    # the store's layout but a stamp without microseconds: the tail is not where the cut expects it
    '{"type":"blood_count","patient_id":"P1","occurred_on":"2025-01-01","anc_e9_per_l":0.5,'
    '"event_id":"00000000-0000-0000-0000-000000000001","recorded_at":"2025-01-02T00:00:00Z"}',
    # whitespace between members, as another JSON writer may put
    '{"type": "blood_count", "patient_id": "P1", "occurred_on": "2025-01-01", "anc_e9_per_l": 0.5, '
    '"event_id": "00000000-0000-0000-0000-000000000001", "recorded_at": "2025-01-02T00:00:00.000001Z"}',
    # no member between the envelope and the tail: an empty payload
    '{"type":"graft_failure","patient_id":"P1","occurred_on":"2025-01-01",'
    '"event_id":"00000000-0000-0000-0000-000000000001","recorded_at":"2025-01-02T00:00:00.000001Z"}',
    # a payload member named like a tail key, in the middle
    '{"type":"follow_up","patient_id":"P1","occurred_on":"2025-01-01","note":"\\",\\"event_id\\":\\"x",'
    '"vital_status":"alive","event_id":"00000000-0000-0000-0000-000000000001",'
    '"recorded_at":"2025-01-02T00:00:00.000001Z"}',
])
def test_a_state_in_another_layout_loads_the_same_rows(tmp_path, state):
    """States the store did not write as it writes now (an earlier store's, another writer's) load as the oracle
    says."""
    eid = uuid.UUID(json.loads(state)["event_id"]).bytes
    with Timeline.open(tmp_path / "data") as tl:
        with tl.store.recorder.append_transaction() as tx:
            at = int(datetime(2025, 1, 2, tzinfo=timezone.utc).timestamp() * 1_000_000)
            tx.insert([("P1", 1, json.loads(state)["type"], state.encode())], ([], [eid]), at)
        con, states = _loaded(tl)
        _check(con, states)
