"""Replay a few patients straight from their streams: the as-of of one patient, and the day numbers of
`timeline history`, by the same models and the same loader as the projection file.

The data of a few patients are a few hundred rows; what costs is DuckDB planning every model's query. So a
replay runs with the optimiser off (on so few rows planning costs more than running; the rows are the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime

import duckdb

from ..store.eventstore import EventStore
from .build import build
from .loader import create_log, insert_log, load_visible, raw_table
from .parameters import Params, resolve

FEW_PATIENTS = 20


def load_patients(con: duckdb.DuckDBPyConnection, store: EventStore, patients: Iterable[str]) -> None:
    """The streams of `patients` into table `log` (the stream version orders a patient's records)."""
    create_log(con)
    rows = []
    for pid in patients:
        rows.extend(replace(r, position=r.version) for r in store.recorder.read_stream(pid))
    insert_log(con, raw_table(rows))


def replay(store: EventStore, patients: Sequence[str], as_of: date | None = None,
           known_at: datetime | None = None, params: Params | None = None,
           tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding the projection tables of these patients as of (as_of,
    known_at), computed by the same models (`tables`: only those and the tables they read)."""
    con = duckdb.connect(config={"threads": 1} if len(patients) <= FEW_PATIENTS else {})
    try:
        if len(patients) <= FEW_PATIENTS:
            con.execute("PRAGMA disable_optimizer")
        load_patients(con, store, patients)
        load_visible(con, as_of=as_of, known_at=known_at)
        build(con, params if params is not None else resolve(), tables=list(tables) if tables is not None else None)
    except BaseException:
        con.close()
        raise
    return con


def day_numbers(store: EventStore, patient: str, known_at: datetime | None = None) -> dict[str, int | None]:
    """event_id -> post-transplant day, by the day-numbering rule (one definition of day 0)."""
    con = replay(store, [patient], known_at=known_at, tables=["events"])
    try:
        return dict(con.execute("SELECT event_id, day FROM events").fetchall())
    finally:
        con.close()
