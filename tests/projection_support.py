"""Test helpers for projection rules: hand-made public-format events -> `visible_events` -> tables.

    con = project([{"type": "stem_cell_infusion", "patient_id": "P1", "occurred_on": "2024-01-10",
                    "donor": "haploidentical", "source": "peripheral_blood"}],
                  full_donor_chimerism_above_percent="80")
    con.sql("SELECT * FROM chimerism").fetchall()

Events are given as in EVENTS.md (type, patient_id, occurred_on, fields...). `event_id` is a uuid4 text
when absent, `recorded_at` a fixed timestamp (override per event with a `recorded_at` key), and the
remaining fields become the JSON `payload`, as the store's runner does.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence

import duckdb

from timeline.projections import pipeline

RECORDED_AT = "2025-01-01 00:00:00+00"
_ENVELOPE = ("type", "patient_id", "occurred_on", "event_id", "recorded_at")


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def load_visible_events(con: duckdb.DuckDBPyConnection, events: Iterable[dict]) -> None:
    """(Re)create table `visible_events` in `con` from public-format event dicts."""
    rows = []
    for e in events:
        payload = {k: v for k, v in e.items() if k not in _ENVELOPE}
        rows.append((
            str(e.get("event_id") or uuid.uuid4()),
            e["patient_id"],
            e["type"],
            str(e["occurred_on"]),
            str(e.get("recorded_at") or RECORDED_AT),
            json.dumps(payload, default=_json_default),
        ))
    con.execute("""
        CREATE OR REPLACE TABLE visible_events (
            event_id VARCHAR, patient_id VARCHAR, type VARCHAR, occurred_on DATE,
            recorded_at TIMESTAMPTZ, payload JSON)""")
    if rows:
        con.executemany("INSERT INTO visible_events VALUES (?, ?, ?, CAST(? AS DATE), CAST(? AS TIMESTAMPTZ), CAST(? AS JSON))",
                        rows)


def project(events: Iterable[dict], con: duckdb.DuckDBPyConnection | None = None,
            patients: Sequence[str] | None = None, tables: Sequence[str] | None = None,
            **overrides) -> duckdb.DuckDBPyConnection:
    """Load `events` and build the projection tables (`tables` and their dependencies; default all).
    Other keyword arguments are parameter overrides by name (strings or typed values). `patients`:
    incremental build of those patients only. Returns the connection (fresh in-memory by default)."""
    con = con or duckdb.connect()
    load_visible_events(con, events)
    pipeline.build(con, params=pipeline.parameters_from(overrides), patients=patients, tables=tables)
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str, *args) -> list[dict]:
    """Query result as a list of dicts (column name -> value)."""
    rel = con.execute(sql, list(args) if args else None)
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]
