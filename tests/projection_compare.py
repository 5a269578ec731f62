"""Compare the projection tables of two views (test helper for the projection properties).

    with tl_a.as_of() as a, tl_b.as_of(date="2024-03-01") as b:
        assert_same_projections(a, b, ignore=("recorded_at",))

    before = snapshot(view)            # keep the tables after the view is closed
    ...
    assert_same_snapshots(before, after, labels=("catch-up", "rebuild"))

A snapshot holds every projection table (`graph.models()`, not the runner's `log` /
`visible_events`) as a polars frame sorted by all its columns, without the ignored columns (e.g.
`recorded_at`, where knowledge time legitimately differs, or `event_id` when facts were re-recorded
under new ids). JSON columns (DuckDB type JSON, e.g. `events.payload`) are parsed and re-serialised
canonically (keys sorted, integral floats as integers), so they compare by content, not by text; an
ignored name is dropped from their top-level keys too (the stored payload of an event carries its own
`recorded_at` and `event_id`; see test_event_payload_holds_only_the_type_fields).
A mismatch raises AssertionError naming the table and listing the rows found on one side only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import polars as pl

from timeline.projections import graph

MAX_ROWS_SHOWN = 8


def projection_tables() -> list[str]:
    """The tables the projection modules produce, in dependency order."""
    return list(graph.models())


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_json(text: str | None, drop_keys: Iterable[str] = ()) -> str | None:
    """JSON text parsed and re-serialised: key order and 1 vs 1.0 do not matter; `drop_keys` are
    removed from a top-level object."""
    if text is None:
        return None
    value = json.loads(text)
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in set(drop_keys)}
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))


def _json_columns(view, table: str) -> list[str]:
    return view.sql(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = ? AND data_type = 'JSON' AND table_schema = 'main' ORDER BY ordinal_position",
        [table])["column_name"].to_list()


def table_frame(view, table: str, ignore: Iterable[str] = ()) -> pl.DataFrame:
    """One projection table of `view` as a canonical frame (ignored columns dropped, JSON canonical,
    rows sorted by every column)."""
    ignore = tuple(ignore)
    df = view.table(table)
    df = df.drop([c for c in ignore if c in df.columns])
    for col in _json_columns(view, table):
        if col in df.columns:
            df = df.with_columns(pl.col(col).map_elements(lambda t: canonical_json(t, ignore),
                                                          return_dtype=pl.String))
    if df.width and df.height:
        df = df.sort(df.columns, nulls_last=True)
    return df


def snapshot(view, ignore: Iterable[str] = (), tables: Sequence[str] | None = None) -> dict[str, pl.DataFrame]:
    """Every projection table of `view` (or `tables`), canonical (see `table_frame`)."""
    ignore = tuple(ignore)
    names = list(tables) if tables is not None else projection_tables()
    present = set(view.tables())
    missing = [t for t in names if t not in present]
    assert not missing, f"view {view.description!r} lacks projection table(s) {missing}"
    return {t: table_frame(view, t, ignore) for t in names}


def _rows(df: pl.DataFrame) -> Counter:
    return Counter(df.iter_rows())


def _table_diff(name: str, a: pl.DataFrame, b: pl.DataFrame, labels: tuple[str, str]) -> str | None:
    if a.columns != b.columns:
        return (f"table {name}: columns differ\n  {labels[0]}: {a.columns}\n  {labels[1]}: {b.columns}")
    if a.schema != b.schema:
        return f"table {name}: column types differ\n  {labels[0]}: {a.schema}\n  {labels[1]}: {b.schema}"
    if a.equals(b, null_equal=True):
        return None
    ra, rb = _rows(a), _rows(b)
    only_a = list((ra - rb).elements())
    only_b = list((rb - ra).elements())
    lines = [f"table {name}: {a.height} rows in {labels[0]}, {b.height} in {labels[1]}; "
             f"{len(only_a)} only in {labels[0]}, {len(only_b)} only in {labels[1]}",
             f"  columns: {a.columns}"]
    for label, rows in ((labels[0], only_a), (labels[1], only_b)):
        for row in rows[:MAX_ROWS_SHOWN]:
            lines.append(f"  only in {label}: {row}")
        if len(rows) > MAX_ROWS_SHOWN:
            lines.append(f"  ... and {len(rows) - MAX_ROWS_SHOWN} more only in {label}")
    if not only_a and not only_b:
        lines.append("  (same rows as multisets, yet frames differ: float/NaN representation?)")
    return "\n".join(lines)


def assert_same_snapshots(a: Mapping[str, pl.DataFrame], b: Mapping[str, pl.DataFrame],
                          labels: tuple[str, str] = ("A", "B")) -> None:
    """Every table equal; otherwise one AssertionError describing each table that differs."""
    problems = []
    if set(a) != set(b):
        problems.append(f"different tables: {sorted(a)} vs {sorted(b)}")
    for name in [t for t in a if t in b]:
        diff = _table_diff(name, a[name], b[name], labels)
        if diff:
            problems.append(diff)
    if problems:
        raise AssertionError("projections differ:\n" + "\n".join(problems))


def assert_same_projections(a, b, ignore: Iterable[str] = (), labels: tuple[str, str] = ("A", "B"),
                            tables: Sequence[str] | None = None) -> None:
    """Every projection table of views `a` and `b` equal (ignoring the columns in `ignore`)."""
    ignore = tuple(ignore)
    assert_same_snapshots(snapshot(a, ignore, tables), snapshot(b, ignore, tables), labels)


def file_differences(a: str, b: str) -> dict[str, tuple[int, int]]:
    """Per table, the rows of projection file `a` not in file `b` and of `b` not in `a` (EXCEPT ALL both ways):
    only the tables that differ. Every model is compared, the view `events` included."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for t in graph.models():
        counts = con.execute(f"SELECT (SELECT count(*) FROM (FROM a.{t} EXCEPT ALL FROM b.{t})), "
                             f"(SELECT count(*) FROM (FROM b.{t} EXCEPT ALL FROM a.{t})), "
                             f"(SELECT count(*) FROM a.{t})").fetchall()[0]
        assert counts[2] > 0 or t == "data_queries", f"table {t} is empty: the comparison would prove nothing"
        if counts[:2] != (0, 0):
            out[t] = counts[:2]
    con.close()
    return out
