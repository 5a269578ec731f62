"""Upcasting: stored events of an earlier format read as events of today's format.

Stored events are never rewritten (the log is immutable); a reader upcasts them as it reads, as the
eventsourcing library's upcasters do. One change so far:

1. `stem_cell_infusion`: the graft source was first named `source` (the envelope's provenance field); it
   is `graft_source` now. A stored infusion (or a correction's replacement that is one) without
   `graft_source` has its `source` read as `graft_source`.

`upcast` serves the Python readers (history, the ledger, `Timeline.events`); `upcast_sql` is the same step
for the projection loader, which reads the stored JSON in DuckDB. A test holds the two to the same result.
"""

from __future__ import annotations

from typing import Any


def _infusion(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("type") == "stem_cell_infusion" and "graft_source" not in data and "source" in data:
        return {("graft_source" if k == "source" else k): v for k, v in data.items()}
    return data


def upcast(data: dict[str, Any]) -> dict[str, Any]:
    """A stored event's JSON as today's format."""
    data = _infusion(data)
    if data.get("type") == "event_corrected" and isinstance(data.get("replacement"), dict):
        data = {**data, "replacement": _infusion(data["replacement"])}
    return data


def upcast_sql(state: str, kind: str) -> str:
    """SQL: the JSON text `state` (of an event of type `kind`) as today's format, as text (the rows that need
    no upcasting are passed through untouched, never parsed here)."""
    patch = "json_object('source', NULL, 'graft_source', {j}->'source')"  # RFC 7396: a null removes the key
    replacement = f"{state}->'replacement'"
    return f"""CASE
        WHEN {kind} = 'stem_cell_infusion' AND ({state}->'graft_source') IS NULL AND ({state}->'source') IS NOT NULL
            THEN CAST(json_merge_patch({state}, {patch.format(j=state)}) AS VARCHAR)
        WHEN {kind} = 'event_corrected' AND ({replacement}->>'type') = 'stem_cell_infusion'
             AND ({replacement}->'graft_source') IS NULL AND ({replacement}->'source') IS NOT NULL
            THEN CAST(json_merge_patch({state}, json_object('replacement', {patch.format(j=replacement)})) AS VARCHAR)
        ELSE {state} END"""
