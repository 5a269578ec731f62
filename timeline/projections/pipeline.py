"""The projection pipeline: module registry, named parameters, and table building.

Each projection module (docs/architecture.md) exposes TABLE, DEPENDS_ON, a frozen dataclass
`Parameters` and `query(p) -> str`, one SELECT over `visible_events` and earlier tables. This module
- imports them lazily in dependency order (`modules()`),
- keeps one flat, globally unique namespace of parameters (`all_parameters()`), so a user can override
  any rule's number by name (`--param name=value`, parsed by `parameters_from()`),
- builds the tables into a schema (`build()`), for all patients or for a subset (incremental catch-up).

Shared rules: a Parameters class may inherit the fields of a rule module that is not a table (mrd.py's
MRD-negativity rule is used by bridging and disease_status). Such a field is registered once, under
the module that defines it, and an override applies to every table that uses it, so the tables never
disagree on one rule. A name defined by two different classes is an error.

It also holds the helpers that render validated parameter values into SQL (`num`, `check_*`).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any


PACKAGE = "timeline.projections"
MODULE_NAMES = (
    "events",
    "chimerism",
    "patients",
    "bridging",
    "disease_status",
    "engraftment",
    "complications",
    "endpoints",
)

# Stage-table prefix used by incremental builds (temporary tables of the connection).
_STAGE = "_timeline_stage_"


class ParameterError(ValueError):
    """An unknown parameter name or a value that does not fit the parameter."""


# ---------------------------------------------------------------------------------------------------
# SQL literal helpers (parameters are validated in __post_init__; only numbers/known words reach SQL)


def num(x: float) -> str:
    """A finite number as a DuckDB DOUBLE literal."""
    return f"CAST({float(x)!r} AS DOUBLE)"


def check_number(name: str, value: object, low: float | None = None, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")


def check_int(name: str, value: object, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise ValueError(f"{name} must be an integer{f' >= {low}' if low is not None else ''}, got {value!r}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------
# Registry


def modules() -> dict[str, ModuleType]:
    """The projection modules by name, in dependency order."""
    return _dependency_order({name: importlib.import_module(f"{PACKAGE}.{name}") for name in MODULE_NAMES})


def _dependency_order(found: dict[str, ModuleType]) -> dict[str, ModuleType]:
    by_table = {m.TABLE: name for name, m in found.items()}
    ordered: dict[str, ModuleType] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise RuntimeError(f"projection dependency cycle through {name}")
        visiting.add(name)
        for dep in found[name].DEPENDS_ON:
            if dep not in by_table:
                raise RuntimeError(f"projection {name} needs table {dep}, whose module is not available")
            visit(by_table[dep])
        visiting.discard(name)
        ordered[name] = found[name]

    for name in found:  # MODULE_NAMES order, dependencies pulled forward
        visit(name)
    return ordered


def _defining_class(cls: type, name: str) -> type:
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return klass
    return cls


def all_parameters() -> dict[str, tuple[ModuleType, dataclasses.Field]]:
    """Flat registry: parameter name -> (module that defines it, dataclass field).

    Raises RuntimeError when two different classes define the same name (names are global).
    """
    registry: dict[str, tuple[ModuleType, dataclasses.Field]] = {}
    owners: dict[str, type] = {}
    for module in modules().values():
        for f in dataclasses.fields(module.Parameters):
            owner = _defining_class(module.Parameters, f.name)
            if f.name in owners:
                if owners[f.name] is not owner:
                    raise RuntimeError(
                        f"parameter name {f.name!r} is defined twice: in {owners[f.name].__module__} "
                        f"and {owner.__module__}; parameter names must be globally unique"
                    )
                continue
            owners[f.name] = owner
            registry[f.name] = (importlib.import_module(owner.__module__), f)
    return registry


def describe_parameters() -> list[dict[str, Any]]:
    """Name, default, doc and source of every parameter (for the CLI and the report)."""
    return [
        {
            "name": name,
            "module": module.__name__.rsplit(".", 1)[-1],
            "default": f.default if f.default is not dataclasses.MISSING else f.default_factory(),  # type: ignore[misc]
            "doc": f.metadata.get("doc", ""),
            "source": f.metadata.get("source", ""),
        }
        for name, (module, f) in sorted(all_parameters().items())
    ]


def _parse(name: str, kind: Any, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ParameterError(f"parameter {name}: {raw!r} is not a valid {kind.__name__}") from None
    return text


def resolve_name(name: str, registry: Mapping[str, Any]) -> str | None:
    """A parameter's full name from `name`: the name itself, or the one name it begins, up to a `_`
    (`platelet_threshold` for `platelet_threshold_e9_per_l`: the unit may be left out); None if none
    does; ParameterError, listing them, if several do."""
    if name in registry:
        return name
    matches = sorted(full for full in registry if full.startswith(f"{name}_"))
    if len(matches) > 1:
        raise ParameterError(f"parameter {name!r} is ambiguous: it begins {', '.join(matches)}; give the full name")
    return matches[0] if matches else None


def parameters_from(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameters instance per module name, defaults with `overrides` (name -> string or value) applied.

    A name may leave out its unit (`platelet_threshold=50`) when it begins exactly one parameter's
    name (`resolve_name`); an unknown or ambiguous name raises ParameterError listing the valid names.
    Values are parsed to the field's type and validated by the Parameters class.
    """
    registry = all_parameters()
    given = dict(overrides or {})
    full = {name: resolve_name(name, registry) for name in given}
    unknown = sorted(name for name, resolved in full.items() if resolved is None)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s): {', '.join(unknown)}. Valid names: {', '.join(sorted(registry))}"
        )
    twice = sorted(name for name, n in Counter(full.values()).items() if n > 1)
    if twice:
        raise ParameterError(f"parameter(s) given twice, under two names: {', '.join(twice)}")
    overrides = {full[name]: value for name, value in given.items()}
    parsed: dict[str, Any] = {}
    for name, raw in overrides.items():
        parsed[name] = _parse(name, typing.get_type_hints(_params_class_with(name))[name], raw)
    result: dict[str, Any] = {}
    for mod_name, module in modules().items():
        own = {f.name for f in dataclasses.fields(module.Parameters)}
        try:
            result[mod_name] = module.Parameters(**{k: v for k, v in parsed.items() if k in own})
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"invalid parameter value: {exc}") from exc
    return result


def _params_class_with(name: str) -> type:
    for module in modules().values():
        if name in {f.name for f in dataclasses.fields(module.Parameters)}:
            return module.Parameters
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------------
# Building


def module_sql(module: ModuleType | str, params: Mapping[str, Any] | None = None,
               sources: Mapping[str, str] | None = None) -> str:
    """The module's SELECT, with `sources` mapping input names (`visible_events`, dependency tables)
    to the relations to read instead (as CTEs that shadow the bare names)."""
    if isinstance(module, str):
        module = modules()[module]
    name = module.__name__.rsplit(".", 1)[-1]
    p = (params or {}).get(name) or module.Parameters()
    # NOT MATERIALIZED: a renamed input is read in place (a table scan with filters and projections pushed
    # down), never copied whole into a CTE buffer
    ctes = [f"{quote_ident(alias)} AS NOT MATERIALIZED (SELECT * FROM {rel})"
            for alias, rel in (sources or {}).items() if rel != alias]
    body = module.query(p)
    if not ctes:
        return body
    return f"WITH {', '.join(ctes)}\nSELECT * FROM (\n{body}\n)"


def build_rows(con, module: ModuleType | str, params: Mapping[str, Any] | None = None,
               sources: Mapping[str, str] | None = None):
    """The module's rows as a DuckDB relation (lazy), reading `sources` as in module_sql."""
    return con.sql(module_sql(module, params, sources))


def _with_dependencies(mods: dict[str, ModuleType], tables: Sequence[str]) -> dict[str, ModuleType]:
    by_table = {m.TABLE: name for name, m in mods.items()}
    unknown = sorted(set(tables) - set(by_table))
    if unknown:
        raise ValueError(f"unknown projection table(s): {', '.join(unknown)}; known: {', '.join(by_table)}")
    wanted: set[str] = set()
    stack = list(tables)
    while stack:
        table = stack.pop()
        if table not in wanted:
            wanted.add(table)
            stack.extend(mods[by_table[table]].DEPENDS_ON)
    return {name: m for name, m in mods.items() if m.TABLE in wanted}


def build(con, schema: str = "main", params: Mapping[str, Any] | None = None,
          patients: Sequence[str] | None = None, tables: Sequence[str] | None = None,
          on_table: Callable[[str, int, int], None] | None = None,
          given: Mapping[str, str] | None = None) -> list[str]:
    """Create the projection tables in `schema` from the connection's `visible_events`.

    patients=None: `CREATE OR REPLACE TABLE schema.T AS <query>` for each table in dependency order.
    patients given: recompute only those patients (rules are per patient): their rows are computed from
    their visible events into temporary stage tables, then deleted from and inserted into schema.T
    (created if absent). Wrap the call in a transaction for atomicity.
    tables: build only these tables and the tables they depend on (default: all).
    given: relations to read instead of `visible_events` or of a table, which is then not built (the
    runner keeps `events` as a view over the log and hands its rows, computed once, to every rule); with
    `patients`, they hold those patients' rows only.
    `params`: module name -> Parameters (from parameters_from); missing modules use defaults.
    `on_table(name, i, n)` is called as each table starts (progress). Returns the tables built, in order.
    """
    mods = modules()
    if tables is not None:
        mods = _with_dependencies(mods, tables)
    given = dict(given or {})
    visible = given.pop("visible_events", "visible_events")
    todo = {name: m for name, m in mods.items() if m.TABLE not in given}
    sch = quote_ident(schema)
    built: list[str] = []
    if patients is None:
        for i, module in enumerate(todo.values(), start=1):
            if on_table:
                on_table(module.TABLE, i, len(todo))
            sources = {"visible_events": visible}
            sources |= {dep: given.get(dep, f"{sch}.{quote_ident(dep)}") for dep in module.DEPENDS_ON}
            con.execute(f"CREATE OR REPLACE TABLE {sch}.{quote_ident(module.TABLE)} AS\n"
                        f"{module_sql(module, params, sources)}")
            built.append(module.TABLE)
        return built

    ids = [str(x) for x in patients]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE}ids AS SELECT DISTINCT unnest(?::VARCHAR[]) AS patient_id",
                [ids])
    if visible == "visible_events":
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE}visible_events AS SELECT * FROM visible_events "
                    f"WHERE patient_id IN (SELECT patient_id FROM {_STAGE}ids)")
        visible = f"temp.main.{_STAGE}visible_events"
    stage = {m.TABLE: given.get(m.TABLE, f"temp.main.{_STAGE}{m.TABLE}") for m in mods.values()}
    try:
        for i, module in enumerate(todo.values(), start=1):
            if on_table:
                on_table(module.TABLE, i, len(todo))
            sources = {"visible_events": visible} | {dep: stage[dep] for dep in module.DEPENDS_ON}
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE}{module.TABLE} AS\n"
                        f"{module_sql(module, params, sources)}")
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND NOT temporary", [schema]).fetchall()}
        for module in todo.values():
            target = f"{sch}.{quote_ident(module.TABLE)}"
            if module.TABLE in existing:
                con.execute(f"DELETE FROM {target} WHERE patient_id IN (SELECT patient_id FROM {_STAGE}ids)")
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {stage[module.TABLE]}")
            else:
                con.execute(f"CREATE TABLE {target} AS SELECT * FROM {stage[module.TABLE]}")
            built.append(module.TABLE)
    finally:
        for name in ["ids", "visible_events", *(m.TABLE for m in todo.values())]:
            con.execute(f"DROP TABLE IF EXISTS temp.main.{_STAGE}{name}")
    return built
