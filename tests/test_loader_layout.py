"""The loader cuts a row in the stored layout by position instead of parsing its JSON: the columns must be those
the JSON parse gives, for every event type and whatever text a free-text field holds."""

from __future__ import annotations

import json

import duckdb
from hypothesis import HealthCheck, given, settings, strategies as st

from timeline.app import Timeline
from timeline.events.examples import EXAMPLES
from timeline.projections.loader import create_log, cut_rows, insert_log

AMENDMENTS = ("event_corrected", "event_retracted")
# parsed as JSON whatever their layout: an amendment names its target, an infusion may need upcasting
PARSED = (*AMENDMENTS, "stem_cell_infusion")


def _both(rec, upto: int) -> tuple[list, list, int]:
    """The log of the store loaded with the cut and with every row parsed, and how many rows were cut."""
    con = duckdb.connect()
    out = []
    for name, cut in (("cut", True), ("parsed", False)):
        create_log(con, name)
        with rec.read_arrow(0, upto) as stream:
            insert_log(con, stream, name, cut=cut)
        rows = con.execute(f"SELECT position, patient_id, event_id, type, occurred_on, recorded_at, target, "
                           f"CAST(payload AS VARCHAR) FROM {name} ORDER BY position").fetchall()
        # the payload as a JSON value: the cut keeps the stored text, the parse may spell an escape otherwise
        out.append([(*r[:7], json.loads(r[7])) for r in rows])
    with rec.read_arrow(0, upto) as stream:
        con.register("raw", stream)
        fast = con.execute(f"SELECT count(*) FILTER (WHERE fast) FROM ({cut_rows('raw')})").fetchall()[0][0]
    return out[0], out[1], fast


def test_every_event_type_is_loaded_alike_cut_or_parsed(tmp_path):
    with Timeline.open(tmp_path / "store") as tl:
        tl.ingest([e for t, e in EXAMPLES.items() if t not in AMENDMENTS])
        count = next(r for r in tl.store.stream("P-001") if r.type == "blood_count")
        tl.ingest([{**EXAMPLES["event_corrected"], "corrects": count.event_id},
                   {**EXAMPLES["event_retracted"], "retracts": count.event_id}])
        cut, parsed, fast = _both(tl.store.recorder, tl.store.max_position())
    assert cut == parsed and len(cut) == len(EXAMPLES)
    assert fast == len(EXAMPLES) - len(PARSED)  # every other row was cut, not parsed
    assert {r[3] for r in cut} == set(EXAMPLES)
    # the payload is the event's own fields and its provenance: no envelope
    regist = next(r for r in cut if r[3] == "patient_registered")
    assert regist[7] == {"birth_date": "2013-05-21", "sex": "female"}


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)
_NOTES = st.one_of(_TEXT, st.sampled_from(['","occurred_on":"2020-01-01', '\\"}', ',"event_id":"x"', "é" * 3,
                                          '"recorded_at":"2024-01-01T00:00:00.000000Z"}']))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(note=_NOTES, recorded_by=st.one_of(st.none(), _TEXT), anc=st.floats(0, 100, allow_nan=False))
def test_free_text_and_numbers_are_loaded_alike_cut_or_parsed(tmp_path_factory, note, recorded_by, anc):
    event = {"type": "blood_count", "patient_id": "P-1", "occurred_on": "2024-03-01", "anc_e9_per_l": anc,
             "note": note, **({"recorded_by": recorded_by} if recorded_by else {})}
    with Timeline.open(tmp_path_factory.mktemp("store")) as tl:
        tl.record(event)
        tl.record({"type": "follow_up", "patient_id": "P-1", "occurred_on": "2024-03-02", "disease_status": "remission"})
        cut, parsed, fast = _both(tl.store.recorder, 2)
    assert cut == parsed and fast == 2
