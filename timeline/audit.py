"""The audit trail: every correction and retraction (who, when, why, what it replaced, the values before and
after), every data lock, forgotten patient and master key change, in time order.

It is computed from what the store holds and nothing else: the amendment events of the log (folded by the
one `Ledger`, in commit order, so "before" is the version in force when the amendment was recorded) and the
store's audit table (data locks, forgotten patients under their pseudonym, key changes: only ever inserted,
see `timeline.erasure`). Nothing in the tool edits either,
so the trail is computer-generated and time-stamped, as 21 CFR Part 11 and GCP ask.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import polars as pl

from .clock import us_to_datetime
from .history import SHORT_ID, details
from .store.eventstore import record_from_row
from .store.facts import CORRECTED, Ledger

COLUMNS = ("at", "action", "patient_id", "event_id", "target", "by", "reason", "before", "after")


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, str]:
    """The fields that differ, as `name=value` before and after (the type and date included when they change)."""
    keys = [k for k in dict.fromkeys([*before, *after]) if k not in ("patient_id", "event_id")
            and before.get(k) != after.get(k)]
    show = lambda d: details({k: d[k] for k in keys if k in d}) or "-"  # noqa: E731
    lead = lambda d: " ".join(f"{k}={d[k]}" for k in ("type", "occurred_on") if k in keys and k in d)  # noqa: E731
    return (f"{lead(before)} {show(before)}".strip(), f"{lead(after)} {show(after)}".strip())


def amendment_rows(tl: Any, patient: str | None = None) -> list[dict[str, Any]]:
    """One row per correction or retraction of the patient (or of everyone)."""
    patients = [patient] if patient else tl.store.recorder.amended_patients()
    rows = []
    for pid in patients:
        ledger = Ledger()
        for rec in sorted((record_from_row(r) for r in tl.store.recorder.read_stream(pid)), key=lambda r: r.position):
            target = rec.target
            if target is None:
                ledger.add(rec)
                continue
            root = ledger.facts.get(ledger.root_of.get(target, target))
            before = root.content if root is not None else {}
            ledger.add(rec)
            if rec.type == CORRECTED:
                was, now = _changed(before, root.content if root is not None else {})
                action = "correction"
            elif target in ledger.root_of:  # a correction retracted: the fact reverts
                was, now = _changed(before, root.content if root is not None else {})
                action = "retraction of a correction"
            else:
                was, now = f"{before.get('type', '')} {before.get('occurred_on', '')} {details(before)}".strip(), \
                    "retracted"
                action = "retraction"
            rows.append({"at": rec.recorded_at, "action": action, "patient_id": pid, "event_id": rec.event_id[:SHORT_ID],
                         "target": str(target)[:SHORT_ID], "by": rec.data.get("recorded_by"),
                         "reason": rec.data.get("reason"), "before": was, "after": now})
    return rows


def table_rows(tl: Any) -> list[dict[str, Any]]:
    """One row per entry of the store's audit table (locks, forgets, key changes)."""
    rows = []
    for at_us, action, subject, detail, by in tl.store.recorder.audit_trail():
        d = json.loads(detail)
        if action == "lock":
            after = (f"known at {us_to_datetime(d['known_at_us']).isoformat()}, store position {d['position']:,}, "
                     f"parameters {json.dumps(d['parameters'], sort_keys=True)}")
            rows.append({"at": us_to_datetime(at_us), "action": "data lock", "patient_id": None, "event_id": None,
                         "target": subject, "by": by, "reason": d.get("reason"), "before": None, "after": after})
        else:
            rows.append({"at": us_to_datetime(at_us), "action": action, "patient_id": d.get("patient_id"),
                         "event_id": None, "target": subject, "by": by, "reason": d.get("reason"),
                         "before": d.get("before"), "after": d.get("after")})
    return rows


def audit_trail(tl: Any, *, until: datetime | None = None, since: datetime | None = None,
                patient: str | None = None) -> pl.DataFrame:
    """The audit trail as one frame (COLUMNS), in time order: entries recorded after `since` and by `until`
    (a lock's knowledge time), of one patient if given (then without locks)."""
    rows = amendment_rows(tl, patient) + [r for r in table_rows(tl) if patient is None or r["patient_id"] == patient]
    rows = [r for r in rows if (until is None or r["at"] <= until) and (since is None or r["at"] > since)]
    rows.sort(key=lambda r: r["at"])
    for r in rows:
        r["at"] = r["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS})
