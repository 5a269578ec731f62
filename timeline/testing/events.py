"""Hypothesis strategies for events in the public JSON format, for property-testing rules.

`valid_event_json()` draws events that the vocabulary accepts, already in canonical form
(`to_json_dict(parse_event(j)) == j`). `invalid_event_json()` draws an event in which exactly one
field is wrong, with the dotted name of that field as `problems_from` reports it.

Field strategies are read from the models (types, enums, bounds, patterns), so a field added to a
model is generated without touching this module; only the cross-field rules are written here.
"""

from __future__ import annotations

import types
import typing
from datetime import date, timedelta
from typing import Any, Iterable
from uuid import UUID

from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from timeline.events import EVENT_TYPES, magic_overall_grade
from timeline.events.corrections import REPLACEABLE_EVENTS
from timeline.clock import latest_clinical_date
from timeline.events.envelope import EventBase

__all__ = ["valid_event_json", "invalid_event_json", "LATEST_DATE", "EARLIEST_DATE"]

#: Generated dates lie in [EARLIEST_DATE, LATEST_DATE]: never in the future.
EARLIEST_DATE = date(1990, 1, 1)
LATEST_DATE = min(date(2026, 11, 1), latest_clinical_date())
_BIRTH_EARLIEST = date(1930, 1, 1)
_UNBOUNDED_MAX = 1e6  # upper end for measures the contract leaves open (counts, doses, loads)

_REPLACEABLE = tuple(cls.model_fields["type"].default for cls in REPLACEABLE_EVENTS)
_ENVELOPE = set(EventBase.model_fields)

# Text that survives JSON and UTF-8 (no lone surrogates); short, so examples stay cheap.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30)


# ---------------------------------------------------------------------------------------------
# Reading a field's annotation: base type, constraints, optional.

def _unwrap(annotation: Any) -> tuple[Any, dict[str, Any]]:
    """(base type, constraints) of an annotation, looking through Optional and Annotated."""
    constraints: dict[str, Any] = {}
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *meta = typing.get_args(annotation)
            _collect(meta, constraints)
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation, constraints


def _collect(meta: Iterable[Any], into: dict[str, Any]) -> None:
    for item in meta:
        if isinstance(item, FieldInfo):
            _collect(item.metadata, into)
            continue
        for key in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(item, key, None)
            if value is not None:
                into[key] = value


def _field(info: FieldInfo) -> tuple[Any, dict[str, Any]]:
    base, constraints = _unwrap(info.annotation)
    _collect(info.metadata, constraints)
    return base, constraints


def _value(base: Any, c: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    """Valid JSON values for one field."""
    if typing.get_origin(base) is typing.Literal:
        return st.sampled_from(typing.get_args(base))
    if typing.get_origin(base) is list:
        item_base, item_c = _unwrap(typing.get_args(base)[0])
        return st.lists(_value(item_base, item_c, name), min_size=c.get("min_length", 0) or 1, max_size=3)
    if base is bool:
        return st.booleans()
    if base is int:
        return st.integers(c.get("ge", c["gt"] + 1 if "gt" in c else 0), c.get("le", 20))
    if base is float:
        return st.floats(
            min_value=c.get("ge", c.get("gt", 0.0)), max_value=c.get("le", _UNBOUNDED_MAX),
            exclude_min="gt" in c, allow_nan=False, allow_infinity=False,
        )
    if base is date:
        earliest = _BIRTH_EARLIEST if name == "birth_date" else EARLIEST_DATE
        return st.dates(earliest, LATEST_DATE).map(date.isoformat)
    if base is UUID:
        return st.uuids().map(str)
    if base is str:
        if "pattern" in c:
            return st.from_regex(c["pattern"], fullmatch=True)
        return _TEXT
    raise TypeError(f"no strategy for field {name!r} of type {base!r}")


def _body(cls: type[EventBase], skip: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(required, optional) value strategies of a model's fields; defaults are always present."""
    required, optional = {}, {}
    for name, info in cls.model_fields.items():
        if name in ("type", "patient_id") or name in skip:
            continue
        target = optional if info.default is None else required
        target[name] = _value(*_field(info), name)
    return required, optional


# ---------------------------------------------------------------------------------------------
# The cross-field rules: each returns a strategy of the fields it owns.

def _one_of_fields(options: dict[str, st.SearchStrategy[Any]], min_size: int, max_size: int) -> st.SearchStrategy[dict[str, Any]]:
    names = sorted(options)
    return st.lists(st.sampled_from(names), min_size=min_size, max_size=max_size, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries({name: options[name] for name in chosen})
    )


def _of(type_name: str, field: str) -> st.SearchStrategy[Any]:
    """The generic strategy of one field, read from its model (type, bounds, plausible range)."""
    return _value(*_field(EVENT_TYPES[type_name].model_fields[field]), field)


def _mrd() -> st.SearchStrategy[dict[str, Any]]:
    measured = st.fixed_dictionaries(
        {"result_percent": _of("mrd_test", "result_percent")},
        optional={"below_detection": st.just(False), "sensitivity_percent": _of("mrd_test", "sensitivity_percent")},
    )
    below = st.fixed_dictionaries({"below_detection": st.just(True),
                                   "sensitivity_percent": _of("mrd_test", "sensitivity_percent")})
    return st.one_of(measured, below)


def _blinatumomab_dose() -> st.SearchStrategy[dict[str, Any]]:
    return _one_of_fields({k: _of("blinatumomab_started", k) for k in ("dose_ug_per_m2_day", "dose_ug_per_day")}, 1, 1)


def _blood_count() -> st.SearchStrategy[dict[str, Any]]:
    return _one_of_fields({k: _of("blood_count", k) for k in ("anc_e9_per_l", "platelets_e9_per_l", "wbc_e9_per_l",
                                                               "hb_g_per_dl")}, 1, 4)


def _viral_load() -> st.SearchStrategy[dict[str, Any]]:
    measured = st.fixed_dictionaries({"iu_per_ml": _of("viral_load", "iu_per_ml")},
                                     optional={"below_detection": st.just(False)})
    return st.one_of(measured, st.just({"below_detection": True}))


def _with_grade(stages: dict[str, int]) -> dict[str, Any]:
    grade = magic_overall_grade(*(stages.get(f"{o}_stage", 0) for o in ("skin", "liver", "upper_gi", "lower_gi")))
    return {**stages, "kind": "acute", "grade": grade}


def _gvhd() -> st.SearchStrategy[dict[str, Any]]:
    stage = st.integers(0, 4)
    staged = _one_of_fields(
        {"skin_stage": stage, "liver_stage": stage, "upper_gi_stage": st.integers(0, 1), "lower_gi_stage": stage},
        1, 4,
    ).map(_with_grade).filter(lambda d: d["grade"] > 0)
    return st.one_of(
        st.fixed_dictionaries({"kind": st.just("acute"), "grade": st.integers(1, 4)}),
        staged,
        st.fixed_dictionaries({"kind": st.just("chronic"), "severity": st.sampled_from(["mild", "moderate", "severe"])}),
    )


def _replacement() -> st.SearchStrategy[dict[str, Any]]:
    def strip(event: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in event.items() if k not in ("patient_id", "event_id")}
    return st.fixed_dictionaries({"replacement": valid_event_json(_REPLACEABLE).map(strip)})


# Fields owned by a rule strategy (left out of the generic ones) and the rule strategy.
_RULES: dict[str, tuple[tuple[str, ...], Any]] = {
    "mrd_test": (("result_percent", "below_detection", "sensitivity_percent"), _mrd),
    "blinatumomab_started": (("dose_ug_per_m2_day", "dose_ug_per_day"), _blinatumomab_dose),
    "blinatumomab_dose_changed": (("dose_ug_per_m2_day", "dose_ug_per_day"), _blinatumomab_dose),
    "blood_count": (("anc_e9_per_l", "platelets_e9_per_l", "wbc_e9_per_l", "hb_g_per_dl"), _blood_count),
    "viral_load": (("iu_per_ml", "below_detection"), _viral_load),
    "gvhd_diagnosed": (("kind", "grade", "skin_stage", "liver_stage", "upper_gi_stage", "lower_gi_stage",
                        "severity"), _gvhd),
    "event_corrected": (("replacement",), _replacement),
}

_PATIENT_ID = _value(*_field(EventBase.model_fields["patient_id"]), "patient_id")


def _merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {**parts[0], **parts[1]}


def _event_of(type_name: str, patient_id: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    owned, rule = _RULES.get(type_name, ((), None))
    required, optional = _body(EVENT_TYPES[type_name], skip=owned)
    generic = st.fixed_dictionaries({"type": st.just(type_name), "patient_id": patient_id, **required},
                                    optional=optional)
    return generic if rule is None else st.tuples(generic, rule()).map(_merge)


def valid_event_json(
    types: Iterable[str] | None = None, patient_id: str | st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid events as canonical public JSON dicts, dated EARLIEST_DATE…LATEST_DATE.

    types: the type name(s) to draw from (default: every type). patient_id: a fixed id, a strategy
    of ids, or None for generated ids.
    """
    names = list(EVENT_TYPES) if types is None else [types] if isinstance(types, str) else list(types)
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown or not names:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
    pid = _PATIENT_ID if patient_id is None else (
        st.just(patient_id) if isinstance(patient_id, str) else patient_id)
    return st.sampled_from(names).flatmap(lambda name: _event_of(name, pid))


# ---------------------------------------------------------------------------------------------
# Invalid events: one wrong field.

_NOT_A_NUMBER = st.sampled_from(["abc", "", "1,5", [1], {"value": 1}, "ten"])
_NOT_TEXT = st.sampled_from([123, 4.5, True, [], ["a"], {"a": 1}])
_NOT_A_DATE = st.sampled_from(["2024/01/02", "02.01.2024", "2024-13-01", "2024-02-30", "2024-1-2",
                               "20240102", "2024-01-02T00:00:00", "", 20240102, [2024, 1, 2]])
_NOT_A_BOOL = st.sampled_from(["maybe", "yes", "1", 1, 0, 2.5, [], {}])
_NOT_A_UUID = st.sampled_from(["not-a-uuid", "1234", 12345, "", [], "6f1d3c2a-8b4e-5a7f-9c0d"])
_NOT_A_LIST = st.sampled_from([5, {"a": 1}, True])
_NOT_AN_OBJECT = st.sampled_from(["abc", 5, [1, 2], True])
_BAD_PATIENT_ID = st.sampled_from(["", "has space", "x" * 65, "é1", "a/b", "P#1"])
_UNKNOWN_KEY = st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True)


def _out_of_range(base: Any, c: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    """Values just or far outside a numeric field's bounds (None when it has none)."""
    lower = c.get("ge", c.get("gt"))
    options = []
    step = st.integers(1, 1000) if base is int else st.floats(0.5, 1e6)
    if lower is not None:
        options.append(step.map(lambda d: lower - d))
        if "gt" in c:
            options.append(st.just(type(lower)(c["gt"])))
    if "le" in c:
        options.append(step.map(lambda d: c["le"] + d))
    return st.one_of(options) if options else None


def _wrong_values(base: Any, c: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    """Values of a wrong kind, an unknown enum member, or out of range, for one field."""
    if name == "patient_id":
        return _BAD_PATIENT_ID
    if typing.get_origin(base) is typing.Literal:
        allowed = typing.get_args(base)
        return st.one_of(_TEXT.filter(lambda v: v not in allowed), st.sampled_from([5, [], True]))
    if typing.get_origin(base) is list:
        return _NOT_A_LIST
    if base is bool:
        return _NOT_A_BOOL
    if base in (int, float):
        wrong = _NOT_A_NUMBER if base is float else st.one_of(_NOT_A_NUMBER, st.just(1.5))
        outside = _out_of_range(base, c)
        return wrong if outside is None else st.one_of(wrong, outside)
    if base is date:
        future = st.integers(3, 3000).map(lambda d: (latest_clinical_date() + timedelta(days=d)).isoformat())
        return st.one_of(_NOT_A_DATE, future)
    if base is UUID:
        return _NOT_A_UUID
    if base is str:
        if "pattern" in c:
            return st.one_of(_NOT_TEXT, st.sampled_from(["", "x", "10 / 10", "ten/ten", "1/2/3"]))
        if c.get("max_length"):
            return st.one_of(_NOT_TEXT, st.just(""), st.just("n" * (c["max_length"] + 1)))
        return st.one_of(_NOT_TEXT, st.just(""))
    if typing.get_origin(base) is dict or base is dict:
        return _NOT_AN_OBJECT
    raise TypeError(f"no wrong values for field {name!r} of type {base!r}")


def _item_literal(base: Any) -> tuple[Any, ...] | None:
    """The allowed members of a list-of-enum field's items."""
    if typing.get_origin(base) is list:
        item, _ = _unwrap(typing.get_args(base)[0])
        if typing.get_origin(item) is typing.Literal:
            return typing.get_args(item)
    return None


@st.composite
def _break_one(draw: st.DrawFn, event: dict[str, Any], prefix: str) -> tuple[dict[str, Any], str]:
    cls = EVENT_TYPES[event["type"]]
    fields = {name: _field(info) for name, info in cls.model_fields.items() if name != "type"}
    if prefix:  # a replacement carries no patient_id/event_id: either is itself the wrong field
        fields = {n: f for n, f in fields.items() if n not in ("patient_id", "event_id")}
    mutation = draw(st.sampled_from(["bad_value", "bad_value", "bad_value", "bad_value", "missing",
                                     "list_item", "unknown_field", "bad_type", "envelope_in_replacement"]))
    broken = dict(event)

    if mutation == "unknown_field":
        key = draw(_UNKNOWN_KEY.filter(lambda k: k not in cls.model_fields))
        broken[key] = draw(st.one_of(_TEXT, st.integers(), st.booleans()))
        return broken, prefix + key
    if mutation == "missing":
        required = [n for n, info in cls.model_fields.items() if info.is_required() and n in broken
                    and n in fields]
        if required:
            name = draw(st.sampled_from(required))
            del broken[name]
            return broken, prefix + name
    if mutation == "bad_type":
        broken["type"] = draw(st.sampled_from(["", "bloodcount", "Death", "gvhd"]) | _UNKNOWN_KEY.filter(
            lambda k: k not in EVENT_TYPES))
        return broken, prefix + "type"
    if mutation == "list_item":
        lists = [n for n in fields if n in broken and _item_literal(fields[n][0])]
        if lists:
            name = draw(st.sampled_from(lists))
            allowed = _item_literal(fields[name][0])
            items = list(broken[name])
            index = draw(st.integers(0, len(items) - 1))
            items[index] = draw(_TEXT.filter(lambda v: v not in allowed))
            broken[name] = items
            return broken, f"{prefix}{name}[{index}]"
    if mutation == "envelope_in_replacement" and prefix:
        name = draw(st.sampled_from(["patient_id", "event_id"]))
        broken[name] = draw(_PATIENT_ID) if name == "patient_id" else str(draw(st.uuids()))
        return broken, prefix + name
    # bad_value, or a mutation that does not apply to this event: one field gets a wrong value,
    # three times in four one of the type's own fields (the envelope is the same in every type)
    own = sorted(n for n in fields if n not in _ENVELOPE)
    name = draw(st.sampled_from(own if own and draw(st.integers(0, 3)) else sorted(fields)))
    broken[name] = draw(_wrong_values(*fields[name], name))
    return broken, prefix + name


@st.composite
def _invalid(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    if draw(st.integers(0, 4)) == 4:  # a wrong field inside a correction's replacement
        event = draw(valid_event_json(["event_corrected"]))
        replacement, field = draw(_break_one(event["replacement"], "replacement."))
        return {**event, "replacement": replacement}, field
    return draw(_break_one(draw(valid_event_json()), ""))


def invalid_event_json() -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    """Events with exactly one wrong field, as (json_dict, dotted field name the Problem names).

    Wrong means: out of range, unknown enum member, wrong JSON type, unknown field, missing required
    field, unknown type, a date in the future; inside a correction's replacement too.
    """
    return _invalid()
