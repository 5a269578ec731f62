"""Facts: folding corrections and retractions into what is visible (docs/events.md, "Corrections").

An original event states a fact. An `event_corrected` replaces the fact's content (type, date, fields);
a correction of a correction replaces the latest version. An `event_retracted` of an original withdraws
the fact; a retraction of a correction withdraws that correction only (the fact reverts to its previous
version). Corrections and retractions act by knowledge time: they are folded in commit order, and a read
"as known at K" folds only what was recorded by K.

This fold is the one definition of visibility: `EventStore.events`, `timeline history` and the loader of
the projections all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

CORRECTED = "event_corrected"
RETRACTED = "event_retracted"
AMENDMENTS = (CORRECTED, RETRACTED)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored event as read from the log (any type, corrections included)."""

    position: int
    patient_id: str
    event_id: str
    type: str
    occurred_on: date
    recorded_at: datetime
    data: dict[str, Any]  # the event's public JSON (as accepted), without recorded_at

    @property
    def target(self) -> str | None:
        if self.type == CORRECTED:
            return str(self.data["corrects"])
        if self.type == RETRACTED:
            return str(self.data["retracts"])
        return None


@dataclass
class Fact:
    """An original event and what happened to it since."""

    original: LogRecord
    corrections: list[LogRecord] = field(default_factory=list)  # in force, oldest first
    reverted: list[tuple[LogRecord, LogRecord]] = field(default_factory=list)  # (correction, its retraction)
    retraction: LogRecord | None = None

    @property
    def visible(self) -> bool:
        return self.retraction is None

    @property
    def latest(self) -> LogRecord:
        """The record whose content is in force: the latest correction in force, else the original."""
        return self.corrections[-1] if self.corrections else self.original

    @property
    def content(self) -> dict[str, Any]:
        """The fact's current public JSON: the original's envelope with the latest replacement applied."""
        if not self.corrections:
            return self.original.data
        replacement = self.corrections[-1].data["replacement"]
        return {
            **replacement,
            "patient_id": self.original.patient_id,
            "event_id": self.original.event_id,
        }

    @property
    def type(self) -> str:
        return self.content["type"]

    @property
    def occurred_on(self) -> date:
        if not self.corrections:
            return self.original.occurred_on
        return date.fromisoformat(self.content["occurred_on"])


class Ledger:
    """Folds log records, in commit order, into facts, and says whether an amendment is admissible."""

    def __init__(self, records: Iterable[LogRecord] = ()):
        self.facts: dict[str, Fact] = {}
        self.by_id: dict[str, LogRecord] = {}
        self.root_of: dict[str, str] = {}  # correction id -> root fact id
        self.reverted_by: dict[str, LogRecord] = {}  # correction id -> retraction
        for r in records:
            self.add(r)

    def problem(self, r: LogRecord) -> str | None:
        """Why amendment `r` cannot be applied, or None. Originals are always admissible."""
        target = r.target
        if target is None:
            return None
        verb = "correct" if r.type == CORRECTED else "retract"
        t = self.by_id.get(target)
        if t is None:
            return f"cannot {verb} event {target}: no such event of patient {r.patient_id}"
        if t.type == RETRACTED:
            return f"cannot {verb} event {target}: it is a retraction; record the fact again instead"
        if target in self.reverted_by:
            by = self.reverted_by[target]
            return f"cannot {verb} event {target}: it was already retracted by {by.event_id} ({by.recorded_at:%Y-%m-%d})"
        root = self.root_of.get(target, target)
        fact = self.facts.get(root)
        if fact is not None and fact.retraction is not None:
            by = fact.retraction
            return f"cannot {verb} event {target}: it was already retracted by {by.event_id} ({by.recorded_at:%Y-%m-%d})"
        return None

    def add(self, r: LogRecord) -> None:
        """Fold one record in (amendments are assumed admissible: check `problem` first)."""
        self.by_id[r.event_id] = r
        target = r.target
        if target is None:
            self.facts[r.event_id] = Fact(r)
        elif r.type == CORRECTED:
            root = self.root_of.get(target, target)
            self.root_of[r.event_id] = root
            self.facts[root].corrections.append(r)
        elif target in self.root_of:  # retraction of a correction: revert it
            fact = self.facts[self.root_of[target]]
            undone = next(c for c in fact.corrections if c.event_id == target)
            fact.corrections.remove(undone)
            fact.reverted.append((undone, r))
            self.reverted_by[target] = r
        else:
            self.facts[target].retraction = r

    def visible_facts(self) -> list[Fact]:
        return [f for f in self.facts.values() if f.visible]


def fold(records: Iterable[LogRecord], known_at: datetime | None = None) -> Ledger:
    """Fold the records recorded at or before `known_at` (all when None), in commit order."""
    ordered = sorted(records, key=lambda r: r.position)
    if known_at is not None:
        ordered = [r for r in ordered if r.recorded_at <= known_at]
    return Ledger(ordered)
