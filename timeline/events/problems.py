"""Validation problems in the words of the public format: field, offending value, rule.

Every pydantic error becomes one Problem, located by the dotted field path of docs/events.md (without
the union tag), so an import can report every problem of a file at once as (line, field, value, rule).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ValidationError

from timeline.events.basics import Problem, RejectedError  # noqa: F401 - re-exported
from timeline.events.catalogue import EVENT_TYPES
from timeline.events.envelope import PATTERN_RULES
from timeline.events.transplant import GRAFT_SOURCES



def _measures() -> dict[str, dict[str, Any]]:
    """Field name -> its unit, plausible range and the units it is often given in by mistake (from the
    models' `measure` fields: one name has one meaning in every type)."""
    out: dict[str, dict[str, Any]] = {}
    for cls in EVENT_TYPES.values():
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "plausible_range" in extra:
                out[name] = extra
    return out


MEASURES = _measures()
_KNOWN_TYPES = ", ".join(EVENT_TYPES)
_TYPE_NAMES = tuple(EVENT_TYPES)
#: the rules of a missing or unknown type; a reader lists the types once (`TYPES_HINT`), not on every line
UNKNOWN_TYPE, UNKNOWN_TYPE_REQUIRED = "unknown type", "required: the event type"
TYPES_HINT = f"the event types are: {_KNOWN_TYPES} (docs/events.md)"
_DATE = "must be a real date YYYY-MM-DD"
_RULES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "list_type": "must be a list (in CSV: values separated by |)",
    "dict_type": "must be an object",
    "model_attributes_type": "must be a JSON object (one event)",
    "uuid_type": "must be a UUID",
    "uuid_parsing": "must be a UUID",
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "date_format": _DATE,
    "date_invalid": _DATE,
}
_BOUNDS = {"greater_than_equal": ("ge", "≥"), "greater_than": ("gt", ">"),
           "less_than_equal": ("le", "≤"), "less_than": ("lt", "<")}


def problems_from(exc: ValidationError) -> list[Problem]:
    """Every error of a failed event validation as a Problem, in pydantic's order."""
    return [_problem(error) for error in exc.errors(include_url=False)]


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _number(x: float) -> str:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:,}" if abs(x) >= 10_000 else f"{x:g}" if isinstance(x, float) else str(x)


def _out_of_range(name: str, value: Any, kind: str, ctx: dict[str, Any]) -> str:
    """'expected ×10⁹/L, 0–100; as cells/µL this would be 1.5 ×10⁹/L' for a measure, else the bound."""
    measure = MEASURES.get(name)
    if measure is None or "unit" not in measure:
        key, sign = _BOUNDS[kind]
        bound = ctx[key]
        return f"must be {sign} {_number(bound)}"
    low, high = measure["plausible_range"]
    unit = measure["unit"]
    span = f"above {_number(low)} and at most {_number(high)}" if kind == "greater_than" else \
        f"{_number(low)}–{_number(high)}"
    rule = f"expected {unit}, {span}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for other, factor in measure.get("other_units", {}).items():
            converted = value * factor
            if (low < converted if kind == "greater_than" else low <= converted) and converted <= high and converted:
                rule += f"; as {other} this would be {_number(round(converted, 6))} {unit}"
                break
    return rule


def _close(word: Any, choices: tuple[str, ...] | list[str]) -> str:
    """'; did you mean `x`?' when a choice is close to `word`."""
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""


def _fields_of(loc: tuple[Any, ...], model: str | None) -> list[str]:
    cls = EVENT_TYPES.get(model or "")
    return list(cls.model_fields) if cls is not None else []


def _problem(error: Any) -> Problem:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    value = error["input"]
    model = None
    if len(loc) >= 2 and loc[0] in EVENT_TYPES:  # the discriminated union's tag
        model, loc = loc[0], loc[1:]
    field = _field_path(loc) or "(event)"
    name = next((part for part in reversed(loc) if isinstance(part, str)), "")

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = f"{_field_path(loc)}.type" if loc else "type"
        value = value.get("type") if isinstance(value, dict) else None
        if kind == "union_tag_not_found":
            return Problem(field, value, UNKNOWN_TYPE_REQUIRED)
        return Problem(field, value, UNKNOWN_TYPE + _close(value, _TYPE_NAMES))
    if kind == "missing":
        if name == "graft_source" and isinstance(value, dict) and value.get("source") in GRAFT_SOURCES:
            return Problem(field, None, "required: the graft source is now `graft_source` (`source` says where "
                                        "the record came from); rename the column or key `source` to `graft_source`")
        return Problem(field, None, "required")
    if kind == "extra_forbidden":
        return Problem(field, value, "unknown field" + _close(name, _fields_of(loc, model)))
    if kind == "json_invalid":
        return Problem(field, value, f"invalid JSON: {ctx.get('error', '')}")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"])
        return Problem(field, value, "must be one of: " + ", ".join(choices) + _close(value, choices))
    if kind in _BOUNDS:
        return Problem(field, value, _out_of_range(name, value, kind, ctx))
    if kind == "string_pattern_mismatch":
        return Problem(field, value, PATTERN_RULES.get(ctx["pattern"], f"must match {ctx['pattern']}"))
    if kind == "string_too_long":
        return Problem(field, f"{value[:60]}… ({len(value):,} characters)" if isinstance(value, str) else value,
                       f"must be at most {ctx['max_length']:,} characters (docs/limits.md)")
    if kind == "too_long":
        return Problem(field, f"{len(value):,} items" if isinstance(value, list) else None,
                       f"must hold at most {ctx['max_length']:,} items (docs/limits.md)")
    return Problem(field, value, _RULES.get(kind, error["msg"]))
