"""Testing helpers for users of the engine.

- hypothesis strategies of public-format events (`valid_event_json`, `invalid_event_json`) and of
  clinically coherent patient histories (`patient_history`, `cohort_histories`);
- the seeded synthetic cohort generator (`timeline.testing.cohort`, also a command).

hypothesis is imported only when a strategy is asked for, so the generator runs without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "valid_event_json": "timeline.testing.events",
    "invalid_event_json": "timeline.testing.events",
    "EARLIEST_DATE": "timeline.testing.events",
    "LATEST_DATE": "timeline.testing.events",
    "patient_history": "timeline.testing.histories",
    "cohort_histories": "timeline.testing.histories",
    "iter_cohort": "timeline.testing.cohort",
    "write_cohort_jsonl": "timeline.testing.cohort",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'timeline.testing' has no attribute {name!r}")
