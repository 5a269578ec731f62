"""Test helpers for projection rules: hand-made public-format events -> the log -> `visible_events` -> tables,
through the same loader and the same build as the projection file.

    con = project([{"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2024-01-10",
                    "donor": "haploidentical", "graft_source": "peripheral_blood"}],
                  full_donor_chimerism_above_percent="80")
    con.sql("SELECT * FROM chimerism").fetchall()

Events are given as in the public format (type, patient_id, occurred_on, fields...), not validated (a rule
may be tested on any payload). `event_id` is a UUID derived from the given text (a uuid4 when absent),
`recorded_at` a fixed timestamp (override per event with a `recorded_at` key); the rest is stored as the
store stores an event, and the loader parses it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

from timeline.projections import graph
from timeline.projections.build import build, check_values
from timeline.projections.loader import create_log, insert_log, load_visible
from timeline.projections.parameters import resolve
from timeline.store.recorders import raw_schema

RECORDED_AT = "2025-01-01T00:00:00+00:00"


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _event_id(given) -> str:
    if given is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(given)))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"test:{given}"))


def stored_rows(events: Iterable[dict]) -> pa.Table:
    """The events as the store keeps them: (position, state JSON with event_id and recorded_at)."""
    states = []
    for e in events:
        state = {k: v for k, v in e.items() if k not in ("event_id", "recorded_at")}
        state["event_id"] = _event_id(e.get("event_id"))
        state["recorded_at"] = str(e.get("recorded_at") or RECORDED_AT)
        states.append(json.dumps(state, default=_json_default))
    return pa.Table.from_arrays([pa.array(range(1, len(states) + 1), pa.int64()), pa.array(states, pa.string())],
                                schema=raw_schema())


def load_visible_events(con: duckdb.DuckDBPyConnection, events: Iterable[dict], **when) -> None:
    """(Re)create `log` and `visible_events` in `con` from public-format event dicts (`as_of`, `known_at`)."""
    con.execute("DROP TABLE IF EXISTS log")
    create_log(con)
    insert_log(con, stored_rows(events))
    load_visible(con, **when)


def project(events: Iterable[dict], con: duckdb.DuckDBPyConnection | None = None,
            patients: Sequence[str] | None = None, tables: Sequence[str] | None = None,
            **overrides) -> duckdb.DuckDBPyConnection:
    """Load `events` and build the projection tables (`tables` and the tables they read; default all).
    Other keyword arguments are parameter overrides by name. `patients`: incremental build of those
    patients only. Every table made is checked against its declared checks (not null, accepted values,
    unique key). Returns the connection (fresh in-memory by default)."""
    con = con or duckdb.connect()
    load_visible_events(con, events)
    made = build(con, resolve(overrides), patients=patients, tables=tables)
    broken = [problem for name in made for problem in check_values(con, graph.models()[name])]
    assert not broken, f"the declared checks of the tables do not hold: {broken}"
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str, *args) -> list[dict]:
    """Query result as a list of dicts (column name -> value)."""
    rel = con.execute(sql, list(args) if args else None)
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]
