"""A patient's history as a data manager reads it: visible events in clinical order, day numbers once
there is an infusion, and every correction and retraction with when, by whom and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .events.envelope import ENVELOPE_FIELDS as ENVELOPE
from .store.facts import Fact


@dataclass(frozen=True)
class Line:
    occurred_on: date
    day: int | None
    type: str
    details: str
    marks: list[str]
    visible: bool


def details(content: dict[str, Any]) -> str:
    parts = []
    for k, v in content.items():
        # `stem_cell_infusion.source` is the graft (docs/events.md), not the envelope's provenance
        if k in ENVELOPE and not (k == "source" and content.get("type") == "stem_cell_infusion"):
            continue
        if isinstance(v, list):
            v = "|".join(map(str, v))
        elif isinstance(v, dict):
            v = json.dumps(v, separators=(",", ":"))
        parts.append(f"{k}={v}")
    return " ".join(parts)


def _who(data: dict[str, Any]) -> str:
    return f" by {data['recorded_by']}" if data.get("recorded_by") else ""


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def lines(facts: list[Fact], day_of: dict[str, int | None]) -> list[Line]:
    """One line per fact (retracted facts included, marked), in clinical order."""
    out = []
    for f in sorted(facts, key=lambda f: (f.occurred_on, f.original.position, f.original.recorded_at)):
        marks = []
        for c in f.corrections:
            was = f.original.data if c is f.corrections[0] else None
            note = f"corrected {_when(c.recorded_at)}{_who(c.data)}"
            if c.data.get("note"):
                note += f": {c.data['note']}"
            if was is not None:
                note += f" (was {was['occurred_on']} {was['type']} {details(was)})"
            marks.append(note)
        for c, r in f.reverted:
            marks.append(f"correction of {_when(c.recorded_at)} withdrawn {_when(r.recorded_at)}{_who(r.data)}: {r.data.get('reason', '')}")
        if f.retraction is not None:
            r = f.retraction
            marks.append(f"RETRACTED {_when(r.recorded_at)}{_who(r.data)}: {r.data.get('reason', '')}")
        content = f.content
        out.append(Line(f.occurred_on, day_of.get(f.original.event_id), content["type"], details(content),
                        marks, f.visible))
    return out


def render(patient: str, facts: list[Fact], day_of: dict[str, int | None], known_at: datetime | None) -> str:
    ls = lines(facts, day_of)
    visible = sum(1 for x in ls if x.visible)
    corrected = sum(1 for f in facts if f.corrections)
    retracted = sum(1 for f in facts if not f.visible)
    when = f"as known at {_when(known_at)}" if known_at else "as known now"
    head = [f"Patient {patient}: {visible} visible events ({corrected} corrected, {retracted} retracted), {when}",
            f"{'date':<10}  {'day':>5}  {'event':<26}  details"]
    body = []
    for x in ls:
        day = "" if x.day is None else f"{x.day:+d}" if x.day else "0"
        kind = x.type if x.visible else f"({x.type})"
        body.append(f"{x.occurred_on.isoformat():<10}  {day:>5}  {kind:<26}  {x.details}")
        body.extend(f"{'':<10}  {'':>5}  {'':<26}  ^ {m}" for m in x.marks)
    return "\n".join(head + body)
