"""Replay a few patients straight from their streams: the as-of of one patient, and the day numbers of
`timeline history`, by the same models and the same loader as the projection file.

The data of a few patients are a few hundred rows; what costs is DuckDB planning every model's query. So a
`ReplayPool` (owned by a `Timeline`, closed with it) keeps warm in-memory connections, one set per parameter
set, in which every model's query is prepared once and then only executed per replay. There the
optimiser is off (on so few rows planning costs more than running; the rows are the same), and the
parameters of the prepared statements are bound once, as typed literals (`parameters.sql_literal`). A
replay of many patients builds on a fresh connection.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

import duckdb

from . import graph
from .build import build, quote_ident
from .loader import (VERSIONS_SQL, amendments, create_log, fold, insert_rows, load_visible, visible_parameters,
                     visible_select)
from .model import VISIBLE_EVENTS
from .parameters import Params, resolve, sql_literal

if TYPE_CHECKING:  # imported by the caller: `timeline sql` reads a plain SQLite store's streams without it
    from ..store.eventstore import EventStore
    from ..store.rows import StoredRow

    StreamReader = Callable[[str], list[StoredRow]]

FEW_PATIENTS = 20
POOL_SIZE = 4  # warm connections kept per parameter set
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


def load_patients(con: duckdb.DuckDBPyConnection, read_stream: StreamReader, patients: Iterable[str]) -> None:
    """The streams of `patients` (`read_stream(patient)`: the store's, or `SQLiteProbe.read_stream`) into table
    `log` (the stream version orders a patient's records)."""
    create_log(con)
    insert_rows(con, (replace(r, position=r.version) for pid in patients for r in read_stream(pid)))


class _Warm:
    """An in-memory connection with every model's table, empty, and each model's query prepared for one
    parameter set when a replay first needs it (a one-shot command prepares only what its query reads)."""

    def __init__(self, params: Params):
        con = duckdb.connect(config={"threads": 1})
        con.execute("PRAGMA disable_optimizer")
        create_log(con)
        con.execute(f"CREATE TABLE _fv AS {VERSIONS_SQL}", fold([], None))
        con.execute(f"CREATE TABLE {VISIBLE_EVENTS} AS SELECT * FROM ({visible_select('log', '_fv')}) LIMIT 0")
        for name, model in graph.models().items():  # the declared columns, in order (as every build checks)
            columns = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in model.columns)
            con.execute(f"CREATE TABLE {quote_ident(name)} ({columns})")
        self.tables = list(graph.models())
        self.relations = {VISIBLE_EVENTS: VISIBLE_EVENTS} | {t: quote_ident(t) for t in self.tables}
        self.params = params
        self.prepared: set[str] = set()
        self.done: set[str] = set()
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self.con = con

    def run(self, store: EventStore, patients: list[str], as_of: date | None, known_at: datetime | None) -> None:
        c = self.con
        for t in ("log", VISIBLE_EVENTS, *self.tables):
            c.execute(f"DELETE FROM {quote_ident(t)}")
        load_patients(c, store.recorder.read_stream, patients)
        versions = fold(amendments(c), known_at)
        c.execute("DELETE FROM _fv")
        c.execute(f"INSERT INTO _fv {VERSIONS_SQL}", versions)
        c.execute(f"INSERT INTO {VISIBLE_EVENTS} "
                  f"{visible_select('log', '_fv', as_of=as_of is not None, known_at=known_at is not None)}",
                  visible_parameters(as_of, known_at))
        self.done: set[str] = set()

    def ensure(self, query: str) -> None:
        """Fill the tables `query` reads, and the tables they read, that this replay has not filled yet: a
        replay computes only what it is asked (all of it for `SELECT * FROM data_queries`)."""
        try:
            named = self.con.get_table_names(query) & set(self.tables)
        except duckdb.Error:  # a query DuckDB cannot name the tables of unbound (one with ? parameters): all
            named = set(self.tables)
        for t, model in graph.upstream(named).items():
            if t in self.done:
                continue
            if t not in self.prepared:
                select = _PARAM.sub(lambda m: sql_literal(self.params[m.group(1)]), model.select(self.relations))
                self.con.execute(f"PREPARE timeline_{t} AS INSERT INTO {quote_ident(t)} {select}")
                self.prepared.add(t)
            self.con.execute(f"EXECUTE timeline_{t}").fetchall()  # an EXECUTE leaves its result open until read
            self.done.add(t)


class ReplayPool:
    """Warm connections for replays of a few patients, per parameter set; `close()` closes them all."""

    def __init__(self, size: int = POOL_SIZE):
        self.size = size
        self._free: dict[str, list[_Warm]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def lease(self, params: Params) -> tuple[_Warm, Callable[[], None]]:
        key = params.fingerprint()
        with self._lock:
            free = self._free.setdefault(key, [])
            warm = free.pop() if free else None
        warm = warm or _Warm(params)

        def release() -> None:
            with self._lock:
                if not self._closed and len(self._free[key]) < self.size:
                    self._free[key].append(warm)
                    return
            warm.con.close()

        return warm, release

    def close(self) -> None:
        with self._lock:
            self._closed = True
            warm = [w for ws in self._free.values() for w in ws]
            self._free.clear()
        for w in warm:
            w.con.close()


@dataclass(frozen=True)
class Replayed:
    """A replay's connection, how to release it (close it, or return it to its pool), and, on a warm
    connection, how to fill the tables a query reads before it runs (None: every table is filled)."""

    con: duckdb.DuckDBPyConnection
    release: Callable[[], None]
    prepare: Callable[[str], None] | None = None


def replay(store: EventStore, patients: Sequence[str], as_of: date | None = None,
           known_at: datetime | None = None, params: Params | None = None, tables: Iterable[str] | None = None,
           pool: ReplayPool | None = None) -> Replayed:
    """The projection tables of these patients as of (as_of, known_at), computed by the same models. A replay
    of a few patients with a pool runs on a warm connection and fills a table when a query reads it;
    otherwise `tables` limits the build to those tables and the tables they read."""
    patients = list(patients)
    params = params if params is not None else resolve()
    if pool is not None and len(patients) <= FEW_PATIENTS:
        warm, release = pool.lease(params)
        try:
            warm.run(store, patients, as_of, known_at)
        except BaseException:
            warm.con.close()
            raise
        return Replayed(warm.con, release, warm.ensure)
    con = duckdb.connect(config={"threads": 1} if len(patients) <= FEW_PATIENTS else {})
    try:
        replay_into(con, store.recorder.read_stream, patients, as_of, known_at, params, tables)
    except BaseException:
        con.close()
        raise
    return Replayed(con, con.close)


def replay_into(con: duckdb.DuckDBPyConnection, read_stream: StreamReader, patients: Sequence[str],
                as_of: date | None = None, known_at: datetime | None = None, params: Params | None = None,
                tables: Iterable[str] | None = None) -> None:
    """The projection tables of these patients as of (as_of, known_at) built in `con` (a fresh connection) from
    their streams read by `read_stream`: `tables` and the tables they read (default: every table). Nothing is
    kept warm: for a one-shot command, where each model is planned once anyway."""
    if len(patients) <= FEW_PATIENTS:
        con.execute("PRAGMA disable_optimizer")  # on so few rows planning costs more than running
    load_patients(con, read_stream, patients)
    load_visible(con, as_of=as_of, known_at=known_at)
    build(con, params if params is not None else resolve(), tables=list(tables) if tables is not None else None)


def day_numbers(store: EventStore, patient: str, known_at: datetime | None = None,
                pool: ReplayPool | None = None) -> dict[str, int | None]:
    """event_id -> post-transplant day, by the day-numbering rule (one definition of day 0)."""
    done = replay(store, [patient], known_at=known_at, tables=["events"], pool=pool)
    query = "SELECT event_id, day FROM events"
    try:
        if done.prepare is not None:
            done.prepare(query)
        return dict(done.con.execute(query).fetchall())
    finally:
        done.release()
