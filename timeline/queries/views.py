"""Read-only views of the projections: the materialised DuckDB file, or an as-of replay.

Both are `ProjectionView`s: the same table names (`events`, `patients`, `bridging`, …), queried with SQL,
results as polars DataFrames. The SQL surface refuses every statement that is not a query, and file access
from SQL is switched off, so nothing can be written through it and the engine's DuckDB file stays intact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..projections import pipeline
from ..projections.visible import build_visible

READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class ReadOnlyError(PermissionError):
    """A statement that would write was refused."""


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    statements = con.extract_statements(query)
    if not statements:
        raise ReadOnlyError("empty query")
    for st in statements:
        kind = st.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyError(f"the SQL surface is read-only: a {kind} statement is refused "
                                f"(only SELECT / WITH … SELECT / EXPLAIN queries run)")


def _lock_down(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class ProjectionView:
    """Tables of the projections, read-only. `sql()` returns polars; `relation()` a DuckDB relation."""

    def __init__(self, con: duckdb.DuckDBPyConnection, description: str,
                 on_close: Callable[[], None] | None = None):
        self._con = con
        self.description = description
        self._on_close = on_close

    def relation(self, query: str) -> duckdb.DuckDBPyRelation:
        check_read_only(self._con, query)
        return self._con.sql(query)

    def sql(self, query: str, params: Iterable[Any] | None = None) -> pl.DataFrame:
        """Run one read-only query; the result as a polars DataFrame."""
        check_read_only(self._con, query)
        return self._con.sql(query, params=list(params) if params is not None else None).pl()

    def table(self, name: str) -> pl.DataFrame:
        if name not in self.tables():
            raise KeyError(f"no table {name!r}; tables: {', '.join(self.tables())}")
        return self._con.sql(f'SELECT * FROM "{name}"').pl()

    def tables(self) -> list[str]:
        """The projection tables (in the materialised file `events` is a view over the log)."""
        return [r[0] for r in self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = 'main' AND NOT starts_with(table_name, '_') ORDER BY 1").fetchall()]

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        else:
            self._con.close()

    def __enter__(self) -> ProjectionView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_materialised(path: Path) -> ProjectionView:
    """The caught-up tables of the DuckDB file, opened read-only (no write can reach the file)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no projections yet; run `timeline project` first")
    con = duckdb.connect(str(path), read_only=True)
    _lock_down(con)
    return ProjectionView(con, f"projections in {path}")


def open_as_of(path: Path, as_of: date | None, known_at: datetime | None,
               params: Mapping[str, Any] | None = None) -> ProjectionView:
    """Every table recomputed, by the same rules, from the events visible at (as_of, known_at).

    The stored log is read from the materialised file (read-only); the view lives in memory.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: no projections yet; run `timeline project` first")
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
    build_visible(con, log="src.log", as_of=as_of, known_at=known_at)
    con.execute("DETACH src")
    pipeline.build(con, params=params)
    _lock_down(con)
    what = ", ".join(x for x in (f"as of {as_of}" if as_of else "", f"known at {known_at}" if known_at else "") if x)
    return ProjectionView(con, f"projections {what}")


def view_of(replayed, description: str) -> ProjectionView:
    """Wrap a replay (`timeline.projections.replay.Replay`) as a read-only view; closing the view
    releases the replay."""
    if not replayed.locked:
        _lock_down(replayed.con)
    return ProjectionView(replayed.con, description, on_close=replayed.close)
