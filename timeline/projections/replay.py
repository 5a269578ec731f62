"""Replay a few patients straight from their streams: the as-of of one patient, and the day numbers of
`timeline history`, computed by the same rules and the same visibility as the materialised tables.

For a handful of patients the cost is not the data (a few hundred rows) but DuckDB preparing eight large
rule queries. So replays of a few patients run on warm in-memory DuckDB connections, kept in a small
pool per parameter set, in which every rule query is prepared once (`PREPARE … INSERT INTO table <rule
SELECT>`) and only executed per replay; the optimiser is off there, since on so few rows planning costs
more than running (the rows are the same). A larger replay builds its tables on a fresh connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import duckdb

from ..store.eventstore import EventStore
from . import pipeline
from .visible import (VERSIONS_SQL, amendments_of, build_visible, create_log, fact_versions, insert_log, raw_table,
                      visible_sql)

FEW_PATIENTS = 20
POOL_SIZE = 4  # warm connections kept per parameter set


def load_patients(con: duckdb.DuckDBPyConnection, store: EventStore, patients: Iterable[str]) -> None:
    """The streams of `patients` into table `log` (the stream version orders a patient's records)."""
    create_log(con)
    rows = []
    for pid in patients:
        rows.extend(replace(r, position=r.version) for r in store.recorder.read_stream(pid))
    insert_log(con, raw_table(rows))


class Replay:
    """The projection tables of some patients on a DuckDB connection; `close()` releases it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, release=None):
        self.con = con
        self._release = release
        self.locked = release is not None  # warm connections are locked down when created

    def close(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None
        else:
            self.con.close()


class _Warm:
    """A warm connection with every rule query prepared for one parameter set; locked down."""

    def __init__(self, params: Mapping[str, Any]):
        con = duckdb.connect(config={"threads": 1})
        con.execute("PRAGMA disable_optimizer")
        create_log(con)
        con.execute(f"CREATE TABLE _fv AS {VERSIONS_SQL}", fact_versions([], None))
        con.execute(f"CREATE TABLE visible_events AS {visible_sql('log', '_fv', None, None)} LIMIT 0")
        pipeline.build(con, params=params)  # empty tables: their columns and types
        self.tables = [m.TABLE for m in pipeline.modules().values()]
        for m in pipeline.modules().values():
            con.execute(f"PREPARE timeline_{m.TABLE} AS INSERT INTO {m.TABLE} {pipeline.module_sql(m, params)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self.con = con

    def run(self, store: EventStore, patients: list[str], as_of: date | None, known_at: datetime | None) -> None:
        c = self.con
        for t in ("log", "visible_events", *self.tables):
            c.execute(f"DELETE FROM {t}")
        load_patients(c, store, patients)
        c.execute("DELETE FROM _fv")
        c.execute(f"INSERT INTO _fv {VERSIONS_SQL}", fact_versions(amendments_of(c), known_at))
        c.execute(f"INSERT INTO visible_events {visible_sql('log', '_fv', as_of, known_at)}")
        for t in self.tables:
            c.execute(f"EXECUTE timeline_{t}")


_pool: dict[str, list[_Warm]] = {}
_pool_lock = threading.Lock()


def _lease(params: Mapping[str, Any]) -> tuple[_Warm, Any]:
    from .runner import params_fingerprint

    key = params_fingerprint(params)
    with _pool_lock:
        free = _pool.setdefault(key, [])
        warm = free.pop() if free else None
    if warm is None:
        warm = _Warm(params)

    def release() -> None:
        with _pool_lock:
            if len(_pool[key]) < POOL_SIZE:
                _pool[key].append(warm)
                return
        warm.con.close()

    return warm, release


def replay(store: EventStore, patients: Iterable[str], as_of: date | None = None,
           known_at: datetime | None = None, params: Mapping[str, Any] | None = None,
           tables: Iterable[str] | None = None) -> Replay:
    """The projection tables of these patients as of (as_of, known_at), by the same rules.

    `tables` limits a large replay to those tables and their dependencies; a replay of a few patients
    always fills every table (its prepared queries make that cheaper than choosing)."""
    patients = list(patients)
    resolved = params if params is not None else pipeline.parameters_from({})
    if len(patients) <= FEW_PATIENTS:
        warm, release = _lease(resolved)
        try:
            warm.run(store, patients, as_of, known_at)
        except BaseException:
            warm.con.close()
            raise
        return Replay(warm.con, release)
    con = duckdb.connect()
    load_patients(con, store, patients)
    build_visible(con, as_of=as_of, known_at=known_at)
    pipeline.build(con, params=resolved, tables=list(tables) if tables is not None else None)
    return Replay(con)


def day_numbers(store: EventStore, patient: str, known_at: datetime | None = None) -> dict[str, int | None]:
    """event_id -> post-transplant day, by the `events` projection's rule (one definition of day 0)."""
    r = replay(store, [patient], known_at=known_at)
    try:
        return dict(r.con.execute("SELECT event_id, day FROM events").fetchall())
    finally:
        r.close()
