"""The catalogue of event types: the discriminated union, parsing, canonical JSON, ids, schema."""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

from pydantic import Field, TypeAdapter

from timeline.events import corrections
from timeline.events.basics import EVENT_ID_NAMESPACE, content_id_bytes, id_content  # noqa: F401 - re-exported
from timeline.events.corrections import REPLACEABLE_EVENTS
from timeline.events.envelope import EventBase

_ALL_EVENTS = (*REPLACEABLE_EVENTS, *corrections.EVENTS)

#: Any event, discriminated on `type`: validation tries exactly one model.
Event = Annotated[Union[_ALL_EVENTS], Field(discriminator="type")]  # type: ignore[valid-type]

#: Type name → model class, in catalogue order (docs/events.md).
EVENT_TYPES: dict[str, type[EventBase]] = {cls.model_fields["type"].default: cls for cls in _ALL_EVENTS}

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

def parse_event(obj: dict[str, Any]) -> Event:
    """Validate a dict (from CSV or code): numbers may be text, booleans "true"/"false", dates ISO text."""
    return EVENT_ADAPTER.validate_python(obj)


def parse_event_json(data: bytes | str) -> Event:
    """Validate one JSON event (a JSON Lines line). The fast path: parsing and checks in Rust.

    Strict JSON types: a number must be a JSON number, a boolean a JSON true/false.
    """
    return EVENT_ADAPTER.validate_json(data, strict=True)


def to_json_dict(event: EventBase) -> dict[str, Any]:
    """The canonical public JSON of an event: every field with a value, absent optionals omitted.

    Defaults (transplant_number) and derived values (acute GVHD grade) are included.
    """
    return event.model_dump(mode="json", exclude_none=True)


_NO_ID = {"event_id"}


def canonical_json(event: EventBase) -> bytes:
    """The bytes an event's id is derived from: its JSON without event_id, absent optionals omitted,
    fields in the model's declared order (envelope first; a correction's replacement is itself stored in
    its model's order), compact UTF-8, floats in shortest round-trip form — one pydantic-core call.

    Input key order never matters; the declared field order is part of the format (pinned by a test):
    reordering a model's fields would change the ids of re-imported events.
    """
    if event.event_id is None:  # left out as an absent optional: no exclusion to apply (the usual event, faster)
        return event.__pydantic_serializer__.to_json(event, exclude_none=True)
    return event.__pydantic_serializer__.to_json(event, exclude_none=True, exclude=_NO_ID)


def content_event_id(event: EventBase) -> UUID:
    """The id derived from an event's content: uuid5(EVENT_ID_NAMESPACE, canonical_json(event)).

    The same event imported twice gets the same id, so a re-import adds nothing; a given event_id
    is ignored.
    """
    return UUID(bytes=content_id_bytes(canonical_json(event)))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the public event format, generated from the models (descriptions, units and
    plausible ranges included), with one example of each type."""
    from timeline.events.examples import EXAMPLES

    schema = EVENT_ADAPTER.json_schema()
    for name, cls in EVENT_TYPES.items():
        schema["$defs"][cls.__name__]["examples"] = [EXAMPLES[name]]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "timeline event", **schema}


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(arg) for arg in get_args(annotation))


_LIST_FIELDS = {
    name: frozenset(field for field, info in cls.model_fields.items() if _is_list(info.annotation))
    for name, cls in EVENT_TYPES.items()
}


def list_fields(type_name: str) -> set[str]:
    """Fields of `type_name` that hold a list (a CSV cell splits them on `|`); empty if unknown type."""
    return set(_LIST_FIELDS.get(type_name, ()))
