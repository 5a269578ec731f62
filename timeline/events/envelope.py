"""The envelope every event carries, and the field types the domain modules share.

Validation is done by pydantic-core (Rust) wherever a constraint can say it; Python runs only for
the few rules that span fields (model validators in the domain modules) and for the clock check
on dates. The shared types here keep names, units and error wording in one place.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError, core_schema

from ..clock import latest_clinical_date
from .basics import ENVELOPE_FIELDS, IDENTITY_FIELDS, PROVENANCE_FIELDS  # noqa: F401 - re-exported

# ---------------------------------------------------------------------------------------------
# Dates: `YYYY-MM-DD` only, a real calendar day, not in the future.

# Dates almost always lie well in the past: compare with a bound known to be safe (time only moves
# forward: the date when this module was loaded) and read the clock only for dates beyond it.
_SAFE_UNTIL = latest_clinical_date()


def _not_in_future(value: date) -> date:
    if value <= _SAFE_UNTIL or value <= latest_clinical_date():
        return value
    raise PydanticCustomError("date_in_future", "must not be in the future")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_DATE_RULE = "must be a date YYYY-MM-DD"


def _python_date(value: Any) -> date:
    """Python input (CSV cells, hand-made dicts): exactly `YYYY-MM-DD` text, or a date (not a datetime)."""
    if isinstance(value, str):
        if _ISO_DATE(value) is None:
            raise PydanticCustomError("date_format", _DATE_RULE)
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("date_invalid", "must be a real calendar date YYYY-MM-DD") from None
    elif type(value) is not date:
        raise PydanticCustomError("date_format", _DATE_RULE)
    return _not_in_future(value)


def _iso_date_schema(_source: Any, _handler: Any) -> core_schema.CoreSchema:
    # From JSON: pydantic-core's strict date accepts only the string `YYYY-MM-DD`.
    return core_schema.json_or_python_schema(
        json_schema=core_schema.no_info_after_validator_function(
            _not_in_future, core_schema.date_schema(strict=True)
        ),
        python_schema=core_schema.no_info_plain_validator_function(_python_date),
        serialization=core_schema.to_string_ser_schema(when_used="json"),
    )


#: A clinical or birth date: ISO `YYYY-MM-DD`, a real day, not in the future (see EARLIEST_TIMEZONE).
IsoDate = Annotated[date, GetPydanticSchema(_iso_date_schema)]


# ---------------------------------------------------------------------------------------------
# Booleans: JSON true/false; from CSV also the text "true"/"false" (any case). Never 1/0/"yes".


def _bool_from_text(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return value


def _flag_schema(_source: Any, _handler: Any) -> core_schema.CoreSchema:
    strict_bool = core_schema.bool_schema(strict=True)
    return core_schema.json_or_python_schema(
        json_schema=strict_bool,
        python_schema=core_schema.no_info_before_validator_function(_bool_from_text, strict_bool),
    )


Flag = Annotated[bool, GetPydanticSchema(_flag_schema)]

# ---------------------------------------------------------------------------------------------
# Strings and numbers. Units are part of the field names (`_e9_per_l`, `_percent`, …).

#: Pseudonymous patient id. Length and alphabet in one pattern so one rule explains a failure.
PATIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
#: HLA match as matched/typed alleles, e.g. `10/10`, `8/8`, `5/10`.
HLA_MATCH_PATTERN = r"^[0-9]{1,2}/[0-9]{1,2}$"

#: Sentences explaining a pattern mismatch (used by `problems_from`).
PATTERN_RULES = {
    PATIENT_ID_PATTERN: "must be 1–64 characters from A–Z a–z 0–9 - _ .",
    HLA_MATCH_PATTERN: "must be matched/typed alleles like 10/10",
}

# Size limits of the input (docs/limits.md): what an honest record never reaches, and a hostile one cannot pass.
#: characters in one text value (a regimen, a source, a reason, one item of a list)
TEXT_MAX_CHARS = 500
#: characters in a free-text note
NOTE_MAX_CHARS = 2000
#: items in one list field (genetic findings, agents)
LIST_MAX_ITEMS = 50
#: bytes in one line of a JSON Lines file or one row of a CSV file (one event)
LINE_MAX_BYTES = 65_536

PatientId = Annotated[str, StringConstraints(pattern=PATIENT_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX_CHARS)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS)]

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
Count = Annotated[int, Field(ge=1)]


def measure(unit: str, low: float, high: float, doc: str, *, above: bool = False,
            other_units: dict[str, float] | None = None, default: Any = None) -> Any:
    """A numeric field: what it measures, its unit, and its plausible range [low, high] (low excluded
    when `above`). A value outside the range is refused, naming the unit; `other_units` maps a unit the
    value is often given in by mistake to the factor that converts it into `unit` (cells/µL -> ×10⁹/L:
    0.001), so the refusal can say what the value would be. The model is the one place these are kept:
    the JSON Schema and docs/events.md show them."""
    extra: dict[str, Any] = {"unit": unit, "plausible_range": [low, high]}
    if other_units:
        extra["other_units"] = dict(other_units)
    bound = {"gt": low} if above else {"ge": low}
    return Field(default, description=doc, le=high, json_schema_extra=extra, **bound)


def whole(low: int, high: int, doc: str, default: Any = ...) -> Any:
    """A whole-number field (a cycle, a line, a grade) with its range."""
    return Field(default, description=doc, ge=low, le=high, json_schema_extra={"plausible_range": [low, high]})


def _type_is_required(schema: dict[str, Any]) -> None:
    # `type` has a default so models can be built directly (BloodCount(...)); in the public format
    # it is the discriminator and always required.
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")
    kind = schema.get("properties", {}).get("type")
    if kind is not None and "const" in kind:
        kind.setdefault("description", f"the event type: always \"{kind['const']}\" for this event")


class EventBase(BaseModel):
    """The envelope: who, when (clinical date), identity and provenance of one occurrence."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra=_type_is_required,
    )

    #: the rules that span fields, in words (docs/events.md); the validators enforce them
    RULES: ClassVar[tuple[str, ...]] = ()

    type: str = Field(description="the event type (one of the type names)")
    patient_id: PatientId = Field(description="pseudonymous patient id: 1–64 of A–Z a–z 0–9 - _ .")
    occurred_on: IsoDate = Field(description="the clinical date, YYYY-MM-DD: when it happened (for a sample, "
                                             "when it was taken); not in the future")
    event_id: UUID | None = Field(None, description="the event's id (a UUID); if absent, derived from its content, "
                                                    "so importing the same event again adds nothing")
    source: Text | None = Field(None, description="where the record came from (lab, form, import:file.csv, …)")
    source_record_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="the record's id in the system it came from (a form, a lab system, an export row, a FHIR "
                          "resource): unique across the systems a store imports from (prefix it with the system, "
                          "e.g. lims:123). Ingesting it again with other content records a correction")
    recorded_by: Text | None = Field(None, description="who entered it")
    note: Note | None = Field(None, description=f"free text, at most {NOTE_MAX_CHARS:,} characters")


if tuple(EventBase.model_fields) != ENVELOPE_FIELDS:  # named in `basics` (for readers without pydantic): in this order
    raise RuntimeError(f"the envelope's fields {tuple(EventBase.model_fields)} differ from basics.ENVELOPE_FIELDS")


def check_rules(event: BaseModel, broken: list[tuple[str, Any, str]]) -> None:
    """Raise one ValidationError carrying every broken cross-field rule as (field, value, rule).

    Each error is located at its field, so `problems_from` names the field the user must fix.
    """
    if broken:
        raise ValidationError.from_exception_data(
            type(event).__name__,
            [
                {"type": PydanticCustomError("event_rule", rule), "loc": (field,), "input": value}
                for field, value, rule in broken
            ],
        )
