"""Rule parameters: one flat namespace of named, documented numbers with registry defaults.

Each rule module declares a frozen dataclass `Parameters` whose fields are made with `parameter(...)`
(default, description, unit, sources, validation in `__post_init__`). A class may inherit the fields of a
shared rule that is not a table (`mrd.Parameters`): such a field is registered once, under the module
that defines it, so an override changes every table that uses it. A name defined by two classes is an
error. `resolve(overrides)` gives the values in force (`Params`), parsed and validated; the models bind
them by name (`$name` in their SELECT).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import typing
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any


class ParameterError(ValueError):
    """An unknown parameter name, or a value that does not fit the parameter."""


def parameter(default: Any, doc: str, unit: str = "", source: str = "") -> Any:
    """A Parameters field: its default, what it decides, its unit, and its source (`references.cite`)."""
    return field(default=default, metadata={"doc": doc, "unit": unit, "source": source})


# -- validation helpers for the Parameters classes' __post_init__ --------------------------------------

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


# -- the registry ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParameterInfo:
    name: str
    module: ModuleType  # the module whose Parameters class defines it
    kind: type
    default: Any
    doc: str
    unit: str
    source: str


def _classes(modules: Iterable[ModuleType]) -> list[type]:
    return [m.Parameters for m in modules if hasattr(m, "Parameters")]


def _owner(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in k.__dict__.get("__annotations__", {}))


@cache
def registry() -> dict[str, ParameterInfo]:
    """Every parameter by name, from the rule modules (names are global: a clash is an error)."""
    from .graph import rule_modules

    found: dict[str, ParameterInfo] = {}
    owners: dict[str, type] = {}
    for cls in _classes(rule_modules()):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            owner = _owner(cls, f.name)
            if f.name in owners:
                if owners[f.name] is not owner:
                    raise RuntimeError(f"parameter name {f.name!r} is defined twice: in {owners[f.name].__module__} "
                                       f"and {owner.__module__}; parameter names must be globally unique")
                continue
            owners[f.name] = owner
            found[f.name] = ParameterInfo(f.name, importlib.import_module(owner.__module__), hints[f.name],
                                          f.default, f.metadata.get("doc", ""), f.metadata.get("unit", ""),
                                          f.metadata.get("source", ""))
    return dict(sorted(found.items()))


def sql_literal(value: Any) -> str:
    """A validated parameter value as a typed DuckDB literal. The one place a value enters SQL text: the warm
    replays prepare each model's statement once per parameter set (`replay._Warm`), and a prepared statement
    reading its parameters from connection variables is re-bound at every execution (measured: twice the
    time of a replay). Every other build binds `$name` parameters by value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"CAST({value:d} AS INTEGER)"
    if isinstance(value, float) and math.isfinite(value):
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ParameterError(f"no SQL literal for the parameter value {value!r}")


@dataclass(frozen=True)
class Params:
    """The parameter values in force (defaults with overrides applied), flat by name."""

    values: Mapping[str, Any]
    overridden: frozenset[str] = field(default=frozenset(), compare=False)  # those that differ from the default

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def fingerprint(self) -> str:
        """What the projection rows depend on besides the events."""
        return json.dumps(dict(self.values), sort_keys=True, default=str)

    @classmethod
    def from_fingerprint(cls, text: str) -> Params:
        return resolve(json.loads(text))


def _parse(name: str, kind: type, raw: Any) -> Any:
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
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


def resolve_name(name: str, names: Iterable[str]) -> str | None:
    """A parameter's full name from `name`: the name itself, or the one name it begins up to a `_`
    (`platelet_threshold` for `platelet_threshold_e9_per_l`: the unit may be left out); None if none does;
    ParameterError, listing them, if several do."""
    names = list(names)
    if name in names:
        return name
    matches = sorted(full for full in names if full.startswith(f"{name}_"))
    if len(matches) > 1:
        raise ParameterError(f"parameter {name!r} is ambiguous: it begins {', '.join(matches)}; give the full name")
    return matches[0] if matches else None


def resolve(overrides: Mapping[str, Any] | None = None) -> Params:
    """The values in force: defaults, with `overrides` (name -> text or value) parsed and validated.

    A name may leave out its unit when it begins exactly one parameter's name; an unknown, ambiguous or
    twice-given name raises ParameterError naming the valid ones.
    """
    reg = registry()
    given = dict(overrides or {})
    full = {name: resolve_name(name, reg) for name in given}
    unknown = sorted(name for name, resolved in full.items() if resolved is None)
    if unknown:
        raise ParameterError(f"unknown parameter(s): {', '.join(unknown)}. Valid names: {', '.join(reg)}")
    twice = sorted(name for name, n in Counter(full.values()).items() if n > 1)
    if twice:
        raise ParameterError(f"parameter(s) given twice, under two names: {', '.join(twice)}")
    parsed = {full[name]: _parse(full[name], reg[full[name]].kind, raw) for name, raw in given.items()}
    values = {name: info.default for name, info in reg.items()} | parsed
    from .graph import rule_modules

    for cls in _classes(rule_modules()):  # each class validates its own fields (and their relations)
        own = {f.name for f in dataclasses.fields(cls)}
        try:
            cls(**{k: v for k, v in values.items() if k in own})
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"invalid parameter value: {exc}") from exc
    return Params(values, frozenset(n for n, v in parsed.items() if v != reg[n].default))
