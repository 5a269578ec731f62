"""A patient's history as a data manager reads it: visible events in clinical order, day numbers once
there is an infusion, and every correction and retraction with when, by whom and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .events.basics import ENVELOPE_FIELDS as ENVELOPE
from .store.facts import Fact


SHORT_ID = 8  # characters of an event id shown; `timeline correct` and `retract` take any unique prefix


@dataclass(frozen=True)
class Line:
    event_id: str
    occurred_on: date
    day: int | None
    type: str
    details: str
    marks: list[str]
    visible: bool


def details(content: dict[str, Any]) -> str:
    parts = []
    for k, v in content.items():
        if k in ENVELOPE:
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
            why = c.data.get("reason") or c.data.get("note")
            if why:
                note += f": {why}"
            if was is not None:
                note += f" (was {was['occurred_on']} {was['type']} {details(was)})"
            marks.append(note)
        for c, r in f.reverted:
            marks.append(f"correction of {_when(c.recorded_at)} withdrawn {_when(r.recorded_at)}{_who(r.data)}: "
                         f"{r.data.get('reason', '')}")
        if f.retraction is not None:
            r = f.retraction
            marks.append(f"RETRACTED {_when(r.recorded_at)}{_who(r.data)}: {r.data.get('reason', '')}")
        content = f.content
        out.append(Line(f.original.event_id, f.occurred_on, day_of.get(f.original.event_id), content["type"],
                        details(content), marks, f.visible))
    return out


def render(patient: str, facts: list[Fact], day_of: dict[str, int | None], known_at: datetime | None) -> str:
    ls = lines(facts, day_of)
    visible = sum(1 for x in ls if x.visible)
    corrected = sum(1 for f in facts if f.corrections)
    retracted = sum(1 for f in facts if not f.visible)
    when = f"as known at {_when(known_at)}" if known_at else "as known now"
    head = [f"Patient {patient}: {visible} visible events ({corrected} corrected, {retracted} retracted), {when}",
            f"{'id':<{SHORT_ID}}  {'date':<10}  {'day':>5}  {'event':<26}  details"]
    body = []
    for x in ls:
        day = "" if x.day is None else f"{x.day:+d}" if x.day else "0"
        kind = x.type if x.visible else f"({x.type})"
        body.append(f"{x.event_id[:SHORT_ID]}  {x.occurred_on.isoformat():<10}  {day:>5}  {kind:<26}  {x.details}")
        body.extend(f"{'':<{SHORT_ID}}  {'':<10}  {'':>5}  {'':<26}  ^ {m}" for m in x.marks)
    return "\n".join(head + body)
