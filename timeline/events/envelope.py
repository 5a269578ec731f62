"""The envelope every event carries, and the field types the domain modules share.

Validation is done by pydantic-core (Rust) wherever a constraint can say it; Python runs only for
the few rules that span fields (model validators in the domain modules) and for the clock check
on dates. The shared types here keep names, units and error wording in one place.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any
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

# ---------------------------------------------------------------------------------------------
# Dates: `YYYY-MM-DD` only, a real calendar day, not in the future.

#: The first time zone to enter each new day (UTC+14, Line Islands). A clinical date is "in the
#: future" only when it has begun nowhere yet, so a centre far east of UTC can record today's
#: sample in its morning, whatever the server's zone.
EARLIEST_TIMEZONE = timezone(timedelta(hours=14))

_DATE_RULE = "must be a date YYYY-MM-DD"


def latest_clinical_date() -> date:
    """The latest `occurred_on` accepted right now: today's date at UTC+14."""
    return datetime.now(EARLIEST_TIMEZONE).date()


# Dates almost always lie well in the past: compare with a bound known to be safe (time only moves
# forward) and read the clock only for dates beyond it. One comparison per date on the hot path.
_safe_until = latest_clinical_date()


def _not_in_future(value: date) -> date:
    global _safe_until
    if value <= _safe_until:
        return value
    _safe_until = latest_clinical_date()
    if value > _safe_until:
        raise PydanticCustomError("date_in_future", "must not be in the future")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch


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

PatientId = Annotated[str, StringConstraints(pattern=PATIENT_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=2000)]

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
Count = Annotated[int, Field(ge=1)]


def _type_is_required(schema: dict[str, Any]) -> None:
    # `type` has a default so models can be built directly (BloodCount(...)); in the public format
    # it is the discriminator and always required.
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


class EventBase(BaseModel):
    """The envelope: who, when (clinical date), identity and provenance of one occurrence."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra=_type_is_required,
    )

    type: str
    patient_id: PatientId
    occurred_on: IsoDate
    event_id: UUID | None = None
    source: Text | None = None
    recorded_by: Text | None = None
    note: Note | None = None


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
