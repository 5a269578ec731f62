"""Replay visible facts into DuckDB: the `visible_events` relation of docs/architecture.md, built from
folded facts (one patient's history, or any in-memory list), so the same projection rules run on them."""

from __future__ import annotations

import json
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from ..store.facts import Fact
from . import pipeline

ENVELOPE = ("type", "patient_id", "occurred_on", "event_id")
VISIBLE_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("patient_id", pa.string()),
    ("type", pa.string()),
    ("occurred_on", pa.date32()),
    ("recorded_at", pa.timestamp("us", tz="UTC")),
    ("payload", pa.string()),
])


def visible_table(facts: Iterable[Fact]) -> pa.Table:
    """Arrow table with the columns of `visible_events` (payload as JSON text)."""
    cols: dict[str, list] = {name: [] for name in VISIBLE_SCHEMA.names}
    for f in facts:
        if not f.visible:
            continue
        content = f.content
        cols["event_id"].append(f.original.event_id)
        cols["patient_id"].append(f.original.patient_id)
        cols["type"].append(content["type"])
        cols["occurred_on"].append(f.occurred_on)
        cols["recorded_at"].append(f.latest.recorded_at)
        cols["payload"].append(json.dumps({k: v for k, v in content.items() if k not in ENVELOPE},
                                          separators=(",", ":")))
    return pa.table(cols, schema=VISIBLE_SCHEMA)


def load_visible(con: duckdb.DuckDBPyConnection, facts: Iterable[Fact], name: str = "visible_events") -> None:
    table = visible_table(facts)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT event_id, patient_id, type, occurred_on, "
                f"recorded_at, payload::JSON AS payload FROM table")


def project_facts(facts: Iterable[Fact], params=None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding every projection table of these facts."""
    con = duckdb.connect()
    load_visible(con, facts)
    pipeline.build(con, params=params)
    return con


def day_numbers(facts: Iterable[Fact], params=None) -> dict[str, int | None]:
    """event_id -> post-transplant day, by the `events` projection's rule (one definition of day 0)."""
    con = duckdb.connect()
    load_visible(con, facts)
    rows = pipeline.build_rows(con, "events", params).select("event_id, day").fetchall()
    return dict(rows)
