"""Replay a few patients straight from their streams: the as-of of one patient, and the day numbers of
`timeline history`, computed by the same rules and the same visibility as the materialised tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import duckdb

from ..store.eventstore import EventStore
from . import pipeline
from .visible import build_visible, create_log, insert_log, raw_table


def load_patients(con: duckdb.DuckDBPyConnection, store: EventStore, patients: Iterable[str]) -> None:
    """The streams of `patients` into table `log` (the stream version orders a patient's records)."""
    create_log(con)
    rows = []
    for pid in patients:
        rows.extend(replace(r, position=r.version) for r in store.recorder.read_stream(pid))
    insert_log(con, raw_table(rows))


def replay(store: EventStore, patients: Iterable[str], as_of: date | None = None,
           known_at: datetime | None = None, params: Mapping[str, Any] | None = None,
           tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the projection tables of these patients as of (as_of, known_at)."""
    con = duckdb.connect()
    load_patients(con, store, patients)
    build_visible(con, as_of=as_of, known_at=known_at)
    pipeline.build(con, params=params, tables=list(tables) if tables is not None else None)
    return con


def day_numbers(store: EventStore, patient: str, known_at: datetime | None = None) -> dict[str, int | None]:
    """event_id -> post-transplant day, by the `events` projection's rule (one definition of day 0)."""
    con = replay(store, [patient], known_at=known_at, tables=["events"])
    return dict(con.execute("SELECT event_id, day FROM events").fetchall())
