"""Building the models: every table in dependency order, for every patient or for some (a catch-up).

`build(con, params, inputs=...)` runs each model's SELECT with its parameters bound by name and its
`ref(...)`s resolved to the relations of this build: `inputs` (the visible events, or a model's rows
already computed) or the tables built before it. Rules are per patient, so a build for `patients`
computes their rows into temporary stage tables and replaces their rows in the tables. After each table
is made its columns are checked against the model's declaration (`check_columns`): a column missing or
of another type fails the build, naming it (a build for some patients inserts by name into those tables). `check_values` tests the declared checks on the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import duckdb

from . import graph
from .model import VISIBLE_EVENTS, Model, ModelError
from .parameters import Params

_STAGE = "_stage_"
ROW_GROUP_ROWS = 122_880  # DuckDB's row group: a table's rows are kept in groups of this many, each with min/max
# A view model's stage is split off per value holding at least a row group and this share of its rows (`_stage`).
# Each split table costs a pass over every row; it saves the rules that do not read its value a scan of its rows.
# Both grow with the cohort, so the bound is a share: by rows alone, 9 event types had their own table at 100,000
# patients (6 of them 1.9-3.6% of the events each) against 3 at 10,000. 100,000 patients, in-process rebuilds,
# 4 each way in the order ABBA: 61.6 s (58.5-62.6) against 65.4 s (63.2-66.1), the stage 4.7 s against 8.0 s and
# the rules 25.5 s against 25.9 s; at 10,000 patients the same 3 types are split either way.
STAGE_SPLIT_MIN_SHARE = 1 / 16
_TYPE_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}  # DuckDB's DESCRIBE spells some types out


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted (names come from the models, never from input)."""
    return '"' + name.replace('"', '""') + '"'


def execute(con: duckdb.DuckDBPyConnection, head: str, model: Model, relations: Mapping[str, str],
            params: Params) -> None:
    """`head` (e.g. `CREATE TABLE t AS`) followed by the model's SELECT, its parameters bound by name."""
    con.execute(f"{head}\n{model.select(relations)}", model.bind(params.values))


def check_columns(con: duckdb.DuckDBPyConnection, model: Model, relation: str) -> None:
    """The relation has the model's declared columns, with their types (extra columns are an error too)."""
    made = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    declared = {c.name: _TYPE_NAMES.get(c.type, c.type) for c in model.columns}
    problems = [f"column {name} is missing (declared {kind})" for name, kind in declared.items() if name not in made]
    problems += [f"column {name} is {made[name]}, declared {kind}" for name, kind in declared.items()
                 if name in made and made[name] != kind]
    problems += [f"column {name} ({kind}) is not declared" for name, kind in made.items() if name not in declared]
    if not problems and list(made) != list(declared):  # a replay makes its empty tables from the declaration
        problems.append(f"the columns are in the order {', '.join(made)}, declared {', '.join(declared)}")
    if problems:
        raise ModelError(f"table {model.name}: " + "; ".join(problems))


def check_values(con: duckdb.DuckDBPyConnection, model: Model, relation: str | None = None) -> list[str]:
    """Every declared check the rows of `relation` (default: the table) break, as sentences (empty: all hold).

    One pass: nulls in not-null columns, values outside accepted values, duplicates of the unique key."""
    rel = relation or quote_ident(model.name)
    exprs, names = [], []
    for c in model.columns:
        col = quote_ident(c.name)
        if c.not_null:
            exprs.append(f"count(*) FILTER (WHERE {col} IS NULL)")
            names.append(f"{c.name} is null")
        if c.values:
            exprs.append(f"count(*) FILTER (WHERE {col} IS NOT NULL AND NOT list_contains(?, {col}))")
            names.append(f"{c.name} is not one of {', '.join(c.values)}")
    args: list[object] = [list(c.values) for c in model.columns if c.values]
    if model.key:
        key = ", ".join(quote_ident(k) for k in model.key)
        exprs.append(f"count(*) - (SELECT count(*) FROM (SELECT DISTINCT {key} FROM {rel}))")
        names.append(f"the key ({', '.join(model.key)}) is not unique")
    if not exprs:
        return []
    counts = con.execute(f"SELECT {', '.join(exprs)} FROM {rel}", args).fetchall()[0]
    return [f"table {model.name}: {n} row(s) where {what}" for n, what in zip(counts, names, strict=True) if n]


def build(con: duckdb.DuckDBPyConnection, params: Params, *, inputs: Mapping[str, str] | None = None,
          temp: bool = False, patients: Sequence[str] | None = None, tables: Sequence[str] | None = None,
          file_views: Mapping[str, str] | None = None, prefix: str = "",
          on_table: Callable[[str, int, int], None] | None = None) -> list[str]:
    """Make the projection tables from the connection's `visible_events` (or `inputs[...]`).

    temp: make them as temporary tables (an in-memory view over a read-only file); else in `main`.
    prefix: name the tables `<prefix><model>` (the later models read them so).
    patients: recompute only those patients: their rows are computed from `inputs` (which then hold those
    patients' rows only) into stage tables, deleted from and inserted into the tables (created if absent).
    tables: only these tables and the tables they read (default: every model).
    file_views: make view models as views of the file, reading these relations for their inputs (a full
    build only); their rows are also computed once, into a temporary table the later models read.
    Wrap the call in a transaction for atomicity. Returns the tables made, in order.
    """
    todo = graph.upstream(tables) if tables is not None else graph.models()
    given = dict(inputs or {})
    relations = {VISIBLE_EVENTS: given.pop(VISIBLE_EVENTS, VISIBLE_EVENTS)} | given
    todo = {name: m for name, m in todo.items() if name not in given}
    if patients is not None:
        return _build_patients(con, params, todo, relations, list(patients), on_table)
    schema = "temp.main" if temp else "main"
    built = []
    for i, (name, model) in enumerate(todo.items(), start=1):
        if on_table:
            on_table(name, i, len(todo))
        if model.view and file_views is not None:
            execute(con, f"CREATE OR REPLACE VIEW main.{quote_ident(name)} AS", model,
                    {**relations, **file_views}, params)
            target = f"temp.main.{_STAGE}{name}"  # its rows, computed once for the later models
            _stage(con, model, relations, params)
        else:
            target = f"{schema}.{quote_ident(prefix + name)}"
            kind = "TEMP TABLE" if temp else "TABLE"
            execute(con, f"CREATE OR REPLACE {kind} {target} AS", model, relations, params)
        check_columns(con, model, target)
        relations[name] = target
        built.append(name)
    return built


def _stage(con: duckdb.DuckDBPyConnection, model: Model, relations: Mapping[str, str], params: Params) -> None:
    """A view model's rows as a temporary relation `_stage_<name>` (a table; split as `model.stage_split` says:
    one table per value of that column with at least a row group of rows and `STAGE_SPLIT_MIN_SHARE` of all
    the rows, one for the rest, and a view of them all). A filter on the column then reads the other values'
    tables by their min and max only: a rule reading a few types of event no longer compares the type of every
    event."""
    stage = f"{_STAGE}{model.name}"
    if not model.stage_split:
        execute(con, f"CREATE OR REPLACE TEMP TABLE {stage} AS", model, relations, params)
        return
    col, select, bound = quote_ident(model.stage_split), model.select(relations), model.bind(params.values)
    counts = con.execute(f"SELECT {col}, count(*) FROM ({select}) GROUP BY ALL", bound).fetchall()
    total = sum(n for _, n in counts)
    big = sorted(v for v, n in counts if v is not None and n >= max(ROW_GROUP_ROWS, STAGE_SPLIT_MIN_SHARE * total))
    values = {f"stage_split_{i}": v for i, v in enumerate(big)}
    parts = []
    for i, name in enumerate(values):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage}_{i} AS SELECT * FROM ({select}) WHERE {col} = ${name}",
                    {**bound, name: values[name]})
        parts.append(f"temp.main.{stage}_{i}")
    rest = " AND ".join(f"{col} IS DISTINCT FROM ${name}" for name in values) or "true"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stage}_rest AS SELECT * FROM ({select}) WHERE {rest}",
                {**bound, **values})
    parts.append(f"temp.main.{stage}_rest")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {stage} AS " + " UNION ALL ".join(f"SELECT * FROM {p}" for p in parts))


def _build_patients(con: duckdb.DuckDBPyConnection, params: Params, todo: Mapping[str, Model],
                    relations: dict[str, str], ids: list[str],
                    on_table: Callable[[str, int, int], None] | None) -> list[str]:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE}ids AS SELECT DISTINCT unnest(?::VARCHAR[]) AS patient_id",
                [ids])
    # the input, for these patients only (a view: read once, by the first models)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_STAGE}{VISIBLE_EVENTS} AS SELECT * FROM {relations[VISIBLE_EVENTS]} "
                f"WHERE patient_id IN (SELECT patient_id FROM temp.main.{_STAGE}ids)")
    relations[VISIBLE_EVENTS] = f"temp.main.{_STAGE}{VISIBLE_EVENTS}"
    staged = []
    try:
        for i, (name, model) in enumerate(todo.items(), start=1):
            if on_table:
                on_table(name, i, len(todo))
            execute(con, f"CREATE OR REPLACE TEMP TABLE {_STAGE}{name} AS", model, relations, params)
            relations[name] = f"temp.main.{_STAGE}{name}"
            staged.append(name)  # its columns were checked by the full build that made the table
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary").fetchall()}
        views = {r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT temporary").fetchall()}
        built = []
        for name in todo:
            if name in views:
                continue  # a view of the file reads the tables it refers to
            target = f"main.{quote_ident(name)}"
            if name in existing:
                con.execute(f"DELETE FROM {target} WHERE patient_id IN (SELECT patient_id FROM {_STAGE}ids)")
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {relations[name]}")
            else:
                con.execute(f"CREATE TABLE {target} AS SELECT * FROM {relations[name]}")
            built.append(name)
        return built
    finally:
        con.execute(f"DROP VIEW IF EXISTS temp.main.{_STAGE}{VISIBLE_EVENTS}")
        for name in ["ids", *staged]:
            con.execute(f"DROP TABLE IF EXISTS temp.main.{_STAGE}{name}")
