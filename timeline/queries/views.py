"""Read-only views of the projections: the projection file, as it is or recomputed as of a date, and an
in-memory build from the store.

Every view is a `ProjectionView`: the same table names (`events`, `patients`, `bridging`, …) queried with
SQL, results as polars DataFrames. The file is only ever opened read-only, so any number of readers work
at once and none can write it: the SQL surface refuses every statement that is not a query, and file access
from SQL is switched off. A recomputed view builds the rows of the patients whose events differ then as
temporary tables of the read-only connection, by the same models and the same loader as the file, and each
table is a temporary view (shadowing the file's) of those rows and the file's rows of everyone else.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..projections.state import DamagedProjectionsError, FileState, damaged, is_lock_conflict, read_state
from ..settings import memory_limit_default

if TYPE_CHECKING:  # imported where used: a query of the file as it is needs neither polars nor the models
    import polars as pl

    from ..projections.parameters import Params

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
#: how long a reader waits for a writer's catch-up to commit before giving up
LOCK_WAIT_SECONDS = 120.0


class ReadOnlyError(PermissionError):
    """A statement that would write was refused."""


class NoProjectionsError(FileNotFoundError):
    """There is no projection file yet."""


#: functions and tables that reveal the engine's settings, files and paths rather than projection data
_REVEALING_PREFIXES = ("duckdb_", "pragma_")
_REVEALING_NAMES = frozenset({"current_setting", "getenv", "which_secret", "pg_settings", "current_database",
                              "current_catalog", "database_list", "show_databases", "pg_database"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALYZE\s+)?", re.IGNORECASE)


class QueryLimitError(ValueError):
    """A query ran past its time limit or its memory limit, and was stopped."""


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    statements = con.extract_statements(query)
    if not statements:
        raise ReadOnlyError("empty query")
    for st in statements:
        kind = st.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyError(f"the SQL surface is read-only: a {kind} statement is refused "
                                f"(only SELECT / WITH … SELECT / EXPLAIN queries run)")
        _check_names(con, _EXPLAIN.sub("", st.query, count=1) if kind == "EXPLAIN" else st.query)


def _names(node: Any) -> Iterator[str]:
    """Every function and table name a parsed statement (DuckDB's JSON of its syntax tree) refers to."""
    if isinstance(node, dict):
        if isinstance(node.get("function_name"), str):
            yield node["function_name"].lower()
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            yield node["table_name"].lower()
        for value in node.values():
            yield from _names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _names(value)


def _check_names(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse a statement that calls a function (or reads a system view) revealing settings or paths: the
    statement's syntax tree is searched, so comments, quoting and CTEs hide nothing."""
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    if tree.get("error"):
        raise ReadOnlyError(f"the query cannot be checked, so it is refused: {tree.get('error_message', '')}")
    for name in _names(tree["statements"]):
        if name.startswith(_REVEALING_PREFIXES) or name in _REVEALING_NAMES:
            raise ReadOnlyError(f"{name} is refused: it reveals the engine's settings or files, not projection data")


def lock_down(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """No file access from SQL, a memory limit, and no setting can be changed back (a connection locked
    already stays so)."""
    if con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]:
        return
    con.execute("SET enable_external_access = false")
    con.execute("SET memory_limit = ?", [memory_limit or memory_limit_default()])
    con.execute("SET lock_configuration = true")


class ProjectionView:
    """Tables of the projections, read-only. `sql()` returns polars; `relation()` a DuckDB relation; `result()`
    what a function makes of the query's relation (rows, by default).

    `description` says what the view holds (which file, as of when); `notes` what a reader should know
    (e.g. that the file is behind the store)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, description: str, notes: Sequence[str] = (),
                 state: FileState | None = None, on_close: Callable[[], None] | None = None,
                 prepare: Callable[[str], None] | None = None):
        self._con = con
        self._prepare = prepare  # fills the tables a query reads first (a replay computes them on demand)
        self.description = description
        self.notes = list(notes)
        self.state = state
        self._on_close = on_close or con.close

    def _ready(self, query: str) -> None:
        check_read_only(self._con, query)
        if self._prepare is not None:
            self._prepare(query)

    def relation(self, query: str) -> duckdb.DuckDBPyRelation:
        self._ready(query)
        return self._con.sql(query)

    def sql(self, query: str, params: Iterable[Any] | Mapping[str, Any] | None = None,
            timeout: float | None = None) -> pl.DataFrame:
        """Run one read-only query; the result as a polars DataFrame. `params`: values of its `?`s, or of its
        `$name`s by name. `timeout` (seconds): stopped after it (the tables it makes on demand included)."""
        return self.result(query, params, timeout, lambda rel: rel.pl())

    def result(self, query: str, params: Iterable[Any] | Mapping[str, Any] | None = None, timeout: float | None = None,
               take: Callable[[duckdb.DuckDBPyRelation], Any] = duckdb.DuckDBPyRelation.fetchall) -> Any:
        """Run one read-only query as `sql` does; its result is what `take` makes of the query's relation
        (within the time limit): by default, the rows as tuples."""
        timer = threading.Timer(timeout, self._con.interrupt) if timeout else None
        if timer is not None:
            timer.start()
        try:
            self._ready(query)
            bound = params if params is None or isinstance(params, Mapping) else list(params)
            return take(self._con.sql(query, params=bound))
        except duckdb.InterruptException:
            raise QueryLimitError(f"the query ran for more than {timeout:g} s and was stopped (--timeout SECONDS "
                                  "sets the limit; 0: none)") from None
        except duckdb.OutOfMemoryException as e:
            limit = self._con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            raise QueryLimitError(f"the query needed more memory than its limit ({limit}) and was stopped "
                                  f"(--memory-limit sets it): {str(e).splitlines()[0]}") from None
        finally:
            if timer is not None:
                timer.cancel()

    def table(self, name: str) -> pl.DataFrame:
        if name not in self.tables():
            raise KeyError(f"no table {name!r}; tables: {', '.join(self.tables())}")
        from ..projections.build import quote_ident

        return self.sql(f"SELECT * FROM {quote_ident(name)}")

    def tables(self) -> list[str]:
        """The projection tables (temporary ones shadow the file's of the same name)."""
        return [r[0] for r in self._con.execute(
            "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND NOT starts_with(table_name, '_') AND table_name <> 'log' ORDER BY 1").fetchall()]

    def close(self) -> None:
        self._on_close()

    def __enter__(self) -> ProjectionView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_read_only(path: Path, wait: float = LOCK_WAIT_SECONDS,
                      on_wait: Callable[[], None] | None = None) -> duckdb.DuckDBPyConnection:
    """The projection file opened read-only; while a writer's catch-up holds it, wait for its commit."""
    if not path.exists():
        raise NoProjectionsError(f"{path}: no projections yet; run `timeline project` (or use --fresh)")
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error as e:
            if not is_lock_conflict(e):
                raise DamagedProjectionsError(damaged(path, e)) from None
            if time.monotonic() > deadline:
                raise
            if not told and on_wait is not None:
                on_wait()
                told = True
            time.sleep(0.05)


def open_file(path: Path, as_of: date | None = None, known_at: datetime | None = None,
              params: Params | None = None, on_wait: Callable[[], None] | None = None,
              memory_limit: str | None = None) -> ProjectionView:
    """The tables of the projection file: as they are, or, for a past date, a past knowledge time or other
    parameters than the file's, recomputed by the same models from the file's log (each query makes the
    tables it reads, see `_Recompute`). The file is read, never written: recomputed tables are temporary
    tables of the read-only connection, within the memory limit from the first row read."""
    con = connect_read_only(path, on_wait=on_wait)
    try:
        try:
            state = read_state(con)
        except duckdb.Error as e:
            raise DamagedProjectionsError(damaged(path, e)) from None
        if state is None:
            raise NoProjectionsError(f"{path} holds no projections of this version; run `timeline project`")
        lock_down(con, memory_limit)
        other = params is not None and params != state.params
        what = [f"as of {as_of}" if as_of else "", f"known at {known_at}" if known_at else "",
                "with other parameters" if other else ""]
        prepare = None
        if any(what):
            prepare = _Recompute(con, params if other else state.params, as_of, known_at, everyone=other).ensure
    except BaseException:
        con.close()
        raise
    recomputed = ", ".join(w for w in what if w)
    return ProjectionView(con, f"projections in {path}" + (f", recomputed {recomputed}" if recomputed else ""),
                          state=state, prepare=prepare)


def _models_named(con: duckdb.DuckDBPyConnection, query: str) -> set[str]:
    """The projection tables a query may read. DuckDB names the tables a query reads, but through the file's
    views (`events` reads `log`), so every model named as a word of the query counts too: a table too many is
    made in vain, one too few would be read from the file, as it is now."""
    from ..projections import graph

    models = set(graph.models())
    try:
        named = con.get_table_names(query) & models
    except duckdb.Error:  # a query DuckDB cannot name the tables of: all of them
        return models
    words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query)}
    return named | (models & words)


class _Recompute:
    """The tables of a recomputed view, made on demand: before each query, the tables it reads and the tables
    they read (a query of `patients` does not pay for `data_queries`; one DuckDB cannot name gets every table).

    Only the patients whose visible events differ at (as_of, known_at) are recomputed (rules are per patient, so
    everyone else's rows are the file's), into temporary tables `_past_<table>`; each table is then a temporary
    view that shadows the file's: the file's rows of the unchanged patients and the recomputed rows of the others.
    With other parameters than the file's, every patient is recomputed."""

    PREFIX = "_past_"

    def __init__(self, con: duckdb.DuckDBPyConnection, params: Params, as_of: date | None,
                 known_at: datetime | None, everyone: bool):
        self._con = con
        self._params = params
        self._as_of, self._known_at = as_of, known_at
        self._everyone = everyone
        self._made: dict[str, str] = {}
        self._loaded = False

    def _load(self) -> None:
        """The changed patients (`_past_changed`) and their visible events (`_past_visible`), once.

        The facts in force (the fold of the amendments) depend on the knowledge time only: without one they are
        the file's (`_fact_versions`), and a patient's visible events at a past date are those visible now that
        occurred by then. So the patients that change are exactly those with a visible event after the date, as
        the file's `patients.last_event_on` says, and no scan of the log finds them. With a knowledge time, the
        amendments are folded again, and the log says which patients may change (`loader.changed_select`)."""
        from ..projections.loader import (changed_select, fact_versions, load_visible, visible_parameters,
                                          visible_through)
        from ..projections.partitions import file_table

        con, p = self._con, self.PREFIX
        changed = None
        dated_only = self._known_at is None
        if not self._everyone:
            sql = (f"SELECT patient_id FROM {file_table(con, 'patients')} WHERE last_event_on > $as_of" if dated_only
                   else changed_select("main.log", as_of=self._as_of is not None, known_at=True))
            con.execute(f"CREATE TEMP TABLE {p}changed AS {sql}", visible_parameters(self._as_of, self._known_at))
            changed = f"temp.main.{p}changed"
        if dated_only:  # the file's facts in force, read as they are
            visible_through(con, fact_versions(con, file_table(con, "_fact_versions")), log="main.log",
                            into=f"{p}visible", as_of=self._as_of, patients=changed)
        else:
            load_visible(con, log="main.log", into=f"{p}visible", as_of=self._as_of, known_at=self._known_at,
                         patients=changed)
        self._loaded = True

    def ensure(self, query: str) -> None:
        from ..projections import graph
        from ..projections.build import build, quote_ident
        from ..projections.model import VISIBLE_EVENTS
        from ..projections.partitions import file_table

        named = _models_named(self._con, query)
        wanted = [t for t in graph.upstream(named) if t not in self._made]
        if not wanted:
            return
        if not self._loaded:
            self._load()
        p = self.PREFIX
        made = build(self._con, self._params, temp=True, tables=wanted, prefix=p,
                     inputs={VISIBLE_EVENTS: f"temp.main.{p}visible", **self._made})
        for t in made:
            rows = f"SELECT * FROM temp.main.{quote_ident(p + t)}"
            if not self._everyone:  # the file's rows of the patients that have not changed
                rows = (f"SELECT * FROM {file_table(self._con, t)} WHERE patient_id NOT IN "
                        f"(SELECT patient_id FROM temp.main.{p}changed) UNION ALL {rows}")
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(t)} AS {rows}")
            self._made[t] = f"temp.main.{quote_ident(p + t)}"


def view_of(con: duckdb.DuckDBPyConnection, description: str, on_close: Callable[[], None] | None = None,
            prepare: Callable[[str], None] | None = None, memory_limit: str | None = None) -> ProjectionView:
    """An in-memory connection holding built tables (a replay, a fresh build), as a read-only view; closing
    the view calls `on_close` (default: closes the connection); `prepare` fills a replay's tables on demand."""
    lock_down(con, memory_limit)
    return ProjectionView(con, description, on_close=on_close, prepare=prepare)
