"""Testing helpers for users of the engine: hypothesis strategies of public-format events."""

from timeline.testing.events import EARLIEST_DATE, LATEST_DATE, invalid_event_json, valid_event_json

__all__ = ["valid_event_json", "invalid_event_json", "EARLIEST_DATE", "LATEST_DATE"]
