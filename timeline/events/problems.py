"""Validation problems in the words of the public format: field, offending value, rule.

Every pydantic error becomes one Problem, located by the dotted field path of docs/events.md (without
the union tag), so an import can report every problem of a file at once as (line, field, value, rule).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from timeline.events.catalogue import EVENT_TYPES
from timeline.events.envelope import PATTERN_RULES

# Field names carry their unit (docs/events.md); the suffix tells a bound's unit.
_UNITS = (
    ("_e9_per_l", "×10⁹/L"),
    ("_g_per_dl", "g/dL"),
    ("_percent", "%"),
    ("_gy", "Gy"),
    ("_e6_per_kg", "×10⁶/kg"),
    ("_ug_per_m2_day", "µg/m²/day"),
    ("_ug_per_day", "µg/day"),
    ("iu_per_ml", "IU/mL"),
    ("_mg_per_kg_day", "mg/kg/day"),
)

_KNOWN_TYPES = ", ".join(EVENT_TYPES)
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


@dataclass(frozen=True)
class Problem:
    """One reason an input is refused: which field, what value, which rule, and where (the line or row of
    the input, when it came from a file)."""

    field: str
    value: object
    rule: str
    line: int | None = None

    def at(self, line: int | None) -> Problem:
        """The same problem, located at `line`."""
        return Problem(self.field, self.value, self.rule, line)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        value = json.dumps(self.value, default=str, ensure_ascii=False)
        if len(value) > 120:
            value = value[:117] + "..."
        return f"{where}{self.field} = {value}: {self.rule}"


class RejectedError(Exception):
    """The input was refused as a whole; nothing from it was stored."""

    def __init__(self, problems: list[Problem], what: str = "input"):
        self.problems = problems
        self.what = what
        super().__init__(
            f"{what}: {len(problems)} problem(s), nothing stored\n" + "\n".join(f"  {p}" for p in problems[:50])
            + (f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else "")
        )


def problems_from(exc: ValidationError) -> list[Problem]:
    """Every error of a failed event validation as a Problem, in pydantic's order."""
    return [_problem(error) for error in exc.errors(include_url=False)]


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _unit(loc: tuple[Any, ...]) -> str:
    name = next((part for part in reversed(loc) if isinstance(part, str)), "")
    return next((f" ({unit})" for suffix, unit in _UNITS if name.endswith(suffix)), "")


def _problem(error: Any) -> Problem:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    value = error["input"]
    if len(loc) >= 2 and loc[0] in EVENT_TYPES:  # the discriminated union's tag
        loc = loc[1:]
    field = _field_path(loc)

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = f"{field}.type" if field else "type"
        value = value.get("type") if isinstance(value, dict) else None
        prefix = "required: " if kind == "union_tag_not_found" else ""
        return Problem(field, value, f"{prefix}must be one of: {_KNOWN_TYPES}")
    if kind == "missing":
        return Problem(field, None, "required")
    if kind == "json_invalid":
        return Problem(field, value, f"invalid JSON: {ctx.get('error', '')}")
    if kind == "literal_error":
        return Problem(field, value, "must be one of: " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"])))
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return Problem(field, value, f"must be {sign} {bound}{_unit(loc)}")
    if kind == "string_pattern_mismatch":
        return Problem(field, value, PATTERN_RULES.get(ctx["pattern"], f"must match {ctx['pattern']}"))
    if kind == "string_too_long":
        return Problem(field, value, f"must be at most {ctx['max_length']} characters")
    return Problem(field, value, _RULES.get(kind, error["msg"]))
