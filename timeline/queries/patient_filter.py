"""The patients a query is restricted to, read from its syntax tree: `timeline sql --as-of` then replays
those patients from their streams instead of recomputing the whole cohort (issue 15: one patient as-of
must not read the whole store).

Every rule is per patient, so the rows of a patient's own projection depend on that patient's events
only; a query that can only ever see the rows of some patients gives the same answer from a replay of
those patients. That is decided conservatively, on DuckDB's own parse (`json_serialize_sql`): one SELECT
over one table, no subquery or CTE anywhere (they could read other rows), and a WHERE clause one of whose
top-level AND-ed conditions is `patient_id = 'text'` or `patient_id IN ('text', …)`. Anything else is None:
the query is answered from the cohort, as before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

MAX_PATIENTS = 20  # more than this: the cohort path (a replay costs per patient)


def patients_of(query: str, con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, ...] | None:
    """The patient ids `query` is restricted to (sorted, distinct), or None if it may read any patient's rows.
    `con`: a DuckDB connection to parse with (default: a new in-memory one)."""
    found = restriction(query, con)
    return found[1] if found is not None else None


def restriction(query: str, con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, tuple[str, ...]] | None:
    """The one table `query` reads and the patient ids it is restricted to, or None (see the module)."""
    import duckdb

    try:
        if con is None:
            with duckdb.connect() as own:
                tree = _tree(own, query)
        else:
            tree = _tree(con, query)
    except duckdb.Error:
        return None
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return None
    node = statements[0].get("node") or {}
    table = node.get("from_table") or {}
    if node.get("type") != "SELECT_NODE" or table.get("type") != "BASE_TABLE" or node.get("cte_map", {}).get("map"):
        return None
    if '"SUBQUERY"' in json.dumps(node):  # a subquery anywhere (select list, WHERE, HAVING) may read other rows
        return None
    names = {table.get("table_name"), table.get("alias")} - {"", None}
    for condition in _conjuncts(node.get("where_clause")):
        found = _patient_ids(condition, names)
        if found is not None and 0 < len(found) <= MAX_PATIENTS:
            return str(table.get("table_name") or ""), found
    return None


def _tree(con: duckdb.DuckDBPyConnection, query: str) -> dict[str, Any]:
    return json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()[0])


def _conjuncts(clause: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The conditions AND-ed at the top of a WHERE clause."""
    if not clause:
        return []
    if clause.get("type") == "CONJUNCTION_AND":
        return [c for child in clause.get("children", []) for c in _conjuncts(child)]
    return [clause]


def _patient_ids(condition: dict[str, Any], tables: set[str]) -> tuple[str, ...] | None:
    """`patient_id = 'x'` (either side) or `patient_id IN ('x', …)`: the ids; else None."""
    kind = condition.get("type")
    if kind == "COMPARE_EQUAL":
        sides = [condition.get("left") or {}, condition.get("right") or {}]
    elif kind == "COMPARE_IN":
        sides = list(condition.get("children") or [])
        if not sides or not _is_patient_column(sides[0], tables):
            return None
        sides = sides[1:]
        texts = [_text(s) for s in sides]
        return None if any(t is None for t in texts) else tuple(sorted(set(texts)))  # type: ignore[arg-type]
    else:
        return None
    for column, value in (sides, sides[::-1]):
        if _is_patient_column(column, tables) and _text(value) is not None:
            return (_text(value),)  # type: ignore[return-value]
    return None


def _is_patient_column(expr: dict[str, Any], tables: set[str]) -> bool:
    names = expr.get("column_names") or []
    if expr.get("class") != "COLUMN_REF" or not names or names[-1].lower() != "patient_id":
        return False
    return len(names) == 1 or (len(names) == 2 and names[0] in tables)


def _text(expr: dict[str, Any]) -> str | None:
    literal = expr.get("literal") or {}
    if expr.get("class") != "CONSTANT" or literal.get("kind") != "STRING":
        return None
    return literal.get("text")
