"""Properties of the vocabulary over generated events (timeline.testing strategies)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from timeline.events import (
    EVENT_TYPES,
    content_event_id,
    parse_event,
    parse_event_json,
    problems_from,
    to_json_dict,
)
from timeline.testing import LATEST_DATE, invalid_event_json, valid_event_json

PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(valid_event_json())
def test_json_model_json_is_the_identity(j):
    assert to_json_dict(parse_event(j)) == j
    assert to_json_dict(parse_event_json(json.dumps(j))) == j


@PROPERTY
@given(valid_event_json())
def test_generated_dates_are_never_in_the_future(j):
    dates = [j["occurred_on"], j.get("birth_date"), j.get("replacement", {}).get("occurred_on")]
    assert all(date.fromisoformat(d) <= LATEST_DATE for d in dates if d)


@PROPERTY
@given(valid_event_json(), st.uuids())
def test_content_event_id_ignores_event_id(j, event_id):
    without = {k: v for k, v in j.items() if k != "event_id"}
    assert content_event_id(parse_event(without)) == content_event_id(parse_event({**j, "event_id": str(event_id)}))


@PROPERTY
@given(invalid_event_json())
def test_every_invalid_value_is_rejected_naming_its_field(case):
    j, field = case
    for parse, data in ((parse_event, j), (parse_event_json, json.dumps(j))):
        with pytest.raises(ValidationError) as error:
            parse(data)
        assert [p.field for p in problems_from(error.value)] == [field]


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_valid_event_json_honours_types_and_patient_id(data):
    types = data.draw(st.lists(st.sampled_from(list(EVENT_TYPES)), min_size=1, max_size=3, unique=True))
    j = data.draw(valid_event_json(types=types, patient_id="P-7"))
    assert j["type"] in types and j["patient_id"] == "P-7"


def test_valid_event_json_rejects_unknown_types():
    with pytest.raises(ValueError, match="unknown event types"):
        valid_event_json(types=["blood_counts"])
