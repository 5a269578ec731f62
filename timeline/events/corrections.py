"""Corrections and retractions: how a wrong entry is fixed without changing the log.

A correction carries the corrected event in `replacement` (any type but these two, any date, any
field). It is validated as a full event of its type with the correction's patient_id and kept as
plain canonical JSON, so the stored correction reads like any other event's JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import Field, PrivateAttr, TypeAdapter, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from timeline.events import complications, consent, laboratory, outcome, patient, therapy, transplant
from timeline.events.envelope import EventBase, Text

#: Every type a replacement may take: all but the two correction types.
REPLACEABLE_EVENTS = (*patient.EVENTS, *therapy.EVENTS, *transplant.EVENTS, *laboratory.EVENTS,
                      *complications.EVENTS, *outcome.EVENTS, *consent.EVENTS)
ReplaceableEvent = Annotated[Union[REPLACEABLE_EVENTS], Field(discriminator="type")]  # type: ignore[valid-type]
_REPLACEABLE_ADAPTER: TypeAdapter[Any] = TypeAdapter(ReplaceableEvent)
_REPLACEABLE_NAMES = tuple(cls.model_fields["type"].default for cls in REPLACEABLE_EVENTS)

# The envelope fields a replacement does not carry, and why.
_NOT_IN_REPLACEMENT = {
    "patient_id": "not allowed in a replacement: it takes the correction's patient_id",
    "event_id": "not allowed in a replacement: the corrected fact keeps the id of the event it corrects",
}


def _validate_replacement(value: dict[str, Any], patient_id: str, strict: bool | None) -> Any:
    """The replacement as a validated event, or one ValidationError located at its fields."""
    broken: list[dict[str, Any]] = [
        {"type": PydanticCustomError("event_rule", rule), "loc": (key,), "input": value[key]}
        for key, rule in _NOT_IN_REPLACEMENT.items() if key in value
    ]
    kind = value.get("type")
    if kind not in _REPLACEABLE_NAMES:
        rule = ("a replacement cannot be a correction or retraction"
                if kind in ("event_corrected", "event_retracted")
                else "must be one of: " + ", ".join(_REPLACEABLE_NAMES))
        broken.append({"type": PydanticCustomError("event_type", rule), "loc": ("type",), "input": kind})
    else:
        data = {k: v for k, v in value.items() if k not in _NOT_IN_REPLACEMENT}
        data["patient_id"] = patient_id
        try:
            event = _REPLACEABLE_ADAPTER.validate_python(data, strict=strict)
        except ValidationError as exc:
            # Drop the union tag so the location reads `replacement.<field>`; keep type and ctx.
            broken.extend(
                {"type": PydanticCustomError(e["type"], e["msg"], e.get("ctx")), "loc": e["loc"][1:],
                 "input": e["input"]}
                for e in exc.errors(include_url=False)
            )
        else:
            if not broken:
                return event
    raise ValidationError.from_exception_data("replacement", broken)


class EventCorrected(EventBase):
    """A correction: from now on the event `corrects` reads as `replacement`.

    `occurred_on` is the day of the correction; the replacement's own `occurred_on` places the fact.
    """

    RULES = (
        "corrects names an earlier event of the same patient that is not retracted (a correction of a "
        "correction replaces the latest version)",
        "replacement is a whole event of any type but these two: type, occurred_on and its fields, without "
        "patient_id or event_id; it is validated as that type",
        "occurred_on is the day of the correction: a correction takes effect by knowledge time (recorded_at); "
        "the replacement's occurred_on places the fact",
    )

    type: Literal["event_corrected"] = "event_corrected"
    corrects: UUID = Field(description="the event_id of the event this corrects (the latest version is replaced)")
    reason: Text | None = Field(None, description="why it is corrected")
    replacement: dict[str, Any] = Field(
        description="the corrected event: type, occurred_on and its fields, without patient_id or event_id"
    )
    _replacement_event: Any = PrivateAttr(None)

    @field_validator("replacement")
    @classmethod
    def _canonical_replacement(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # With an invalid patient_id (reported on its own) still check the replacement's fields.
        patient_id = info.data.get("patient_id", "unknown")
        # Strict like the JSON fast path when the correction came as JSON; otherwise each field
        # type's own strictness (strict=False here would loosen the strict booleans and dates).
        event = _validate_replacement(value, patient_id, strict=True if info.mode == "json" else None)
        canonical = event.model_dump(mode="json", exclude_none=True)
        del canonical["patient_id"]
        return canonical

    def replacement_event(self) -> ReplaceableEvent:
        """The replacement as a validated event of its type, with this correction's patient_id."""
        if self._replacement_event is None:
            self._replacement_event = _REPLACEABLE_ADAPTER.validate_python(
                {**self.replacement, "patient_id": self.patient_id}
            )
        return self._replacement_event


class EventRetracted(EventBase):
    """A retraction: the event `retracts` was entered in error and no longer counts."""

    RULES = ("retracts names an earlier event of the same patient that is not already retracted",)

    type: Literal["event_retracted"] = "event_retracted"
    retracts: UUID = Field(description="the event_id of the event entered in error")
    reason: Text = Field(description="why it is retracted")


EVENTS = (EventCorrected, EventRetracted)
