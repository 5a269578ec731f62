"""A projection model: one SELECT that makes one table, its declared columns, and its inputs by name.

As in dbt, the SELECT names its inputs with `ref('name')`: another model, or `visible_events` (the
loader's relation, `timeline.projections.loader`). The build order and the inputs a catch-up stages are
derived from those references, never listed by hand. Rule parameters are DuckDB named parameters
(`$platelet_threshold_e9_per_l`), bound by value when the SELECT runs; no value, path, date or identifier
is pasted into SQL text. Each model declares its columns once (name, type, description, checks); the
build checks the columns and types it made against them, `check_values` checks the values, and
`docs/tables.md` is generated from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType

#: The relation the loader makes from the log: every model's input of events (`loader.VISIBLE_COLUMNS`).
VISIBLE_EVENTS = "visible_events"

_REF = re.compile(r"\bref\('([a-z_][a-z0-9_]*)'\)")
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


class ModelError(RuntimeError):
    """A model that is wrongly declared, or a built table that does not match its declaration."""


@dataclass(frozen=True)
class Column:
    """A declared column: name, DuckDB type, what it holds, and the checks its values must pass."""

    name: str
    type: str
    doc: str
    not_null: bool = False
    values: tuple[str, ...] = ()  # accepted values (text columns), empty = any

    def checks(self) -> list[str]:
        out = ["not null"] if self.not_null else []
        if self.values:
            out.append("one of " + ", ".join(f"`{v}`" for v in self.values))
        return out


#: the column every table is keyed by first (rules are per patient)
PATIENT_ID = Column("patient_id", "VARCHAR", "pseudonymous patient id", not_null=True)
#: the post-transplant day of a row's date (day 0 = the index transplant's first infusion), declared once
DAY = Column("day", "INTEGER", "post-transplant day (NULL without a transplant)")
#: the id of the event a row comes from, declared once
EVENT_ID = Column("event_id", "VARCHAR", "the id of the event the row comes from", not_null=True)


@dataclass(frozen=True)
class Model:
    """One projection table: `sql` is one SELECT over `ref(...)` inputs with `$parameter`s."""

    name: str
    grain: str  # what one row is: "patient", "patient × endpoint", …
    sql: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique key (empty: none declared)
    view: bool = False  # kept as a view in the projection file (its rows are not stored twice)
    # A view model's rows, staged once by a full build for the later models, are split on this column: a value
    # with at least a row group of rows gets a stage table of its own (the rules filter on the column, and a
    # filter on another value skips such a table whole). Empty: one stage table.
    stage_split: str = ""
    module: ModuleType | None = field(default=None, compare=False, repr=False)

    @property
    def refs(self) -> tuple[str, ...]:
        """The inputs named in the SELECT, in order of first mention."""
        return tuple(dict.fromkeys(_REF.findall(self.sql)))

    @property
    def parameters(self) -> tuple[str, ...]:
        """The rule parameters the SELECT uses, in order of first mention."""
        return tuple(dict.fromkeys(_PARAM.findall(self.sql)))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def select(self, relations: Mapping[str, str]) -> str:
        """The SELECT with each `ref('x')` replaced by `relations[x]` (a relation name the build chose)."""
        def resolve(m: re.Match[str]) -> str:
            try:
                return relations[m.group(1)]
            except KeyError:
                raise ModelError(f"model {self.name}: no relation given for ref('{m.group(1)}')") from None
        return _REF.sub(resolve, self.sql)

    def bind(self, values: Mapping[str, object]) -> dict[str, object]:
        """The named parameters of the SELECT, with their values (DuckDB binds them by name)."""
        missing = [p for p in self.parameters if p not in values]
        if missing:
            raise ModelError(f"model {self.name} uses unknown parameter(s): {', '.join(missing)}")
        return {p: values[p] for p in self.parameters}

