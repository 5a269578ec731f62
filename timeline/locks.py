"""Data locks: a named moment of knowledge, the store position then, and the rule parameters in force.

A lock is what an analysis is frozen at: `timeline lock NAME` records it in the store's audit table (one
insert, stamped by the store's clock, so every event recorded later comes after it; a name is locked once,
never changed), and `--lock NAME` reads everything as known at that moment, with those parameters. A
report at a lock names the lock instead of the file it was read from, so it is the same, byte for byte,
whenever it is made again.
"""

from __future__ import annotations

import getpass
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import us_to_datetime
from .projections.parameters import Params, resolve

LOCK = "lock"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}").fullmatch


@dataclass(frozen=True)
class Lock:
    name: str
    known_at: datetime
    position: int
    params: Params
    recorded_at: datetime
    recorded_by: str

    def describe(self) -> str:
        return (f"data lock {self.name}: as known at {self.known_at.isoformat()}, store position {self.position:,} "
                f"(locked {self.recorded_at:%Y-%m-%d %H:%M UTC} by {self.recorded_by})")


def who(by: str | None) -> str:
    """Who records an entry: as given, else the user running the command."""
    return by or getpass.getuser()


def make_lock(tl: Any, name: str, at: datetime | None = None, by: str | None = None,
              params: dict[str, Any] | None = None) -> Lock:
    """Record the data lock `name` as known now (or at `at`, a past moment), with `params` (else the
    defaults). A name already locked is refused: a lock is never moved."""
    if not _NAME(name):
        raise ValueError(f"lock name {name!r}: 1–64 of A–Z a–z 0–9 . _ - (starting with a letter or digit)")
    resolved = resolve(params)
    store = tl.store
    with store.recorder.append_transaction() as tx:
        if tx.audit_entries(LOCK, name):
            raise ValueError(f"data lock {name!r} exists already; a lock is never moved: choose another name")
        now = max(store.now_us(), tx.last_us + 1)
        known_us = now if at is None else int(at.timestamp() * 1_000_000)
        if known_us > now:
            raise ValueError(f"--at {at.isoformat()} is in the future of the store's clock")
        position = store.recorder.max_position() if at is None else store.recorder.position_at(known_us)
        detail = json.dumps({"known_at_us": known_us, "position": position,
                             "parameters": json.loads(resolved.fingerprint())}, sort_keys=True)
        stamp = tx.audit(LOCK, name, detail, who(by), now)
    return Lock(name, us_to_datetime(known_us), position, resolved, us_to_datetime(stamp), who(by))


def find_lock(tl: Any, name: str) -> Lock:
    """The data lock `name` (LookupError if there is none)."""
    for at_us, action, subject, detail, by in tl.store.recorder.audit_trail():
        if action == LOCK and subject == name:
            d = json.loads(detail)
            return Lock(name, us_to_datetime(d["known_at_us"]), d["position"], resolve(d["parameters"]),
                        us_to_datetime(at_us), by)
    known = [s for _at, a, s, _d, _b in tl.store.recorder.audit_trail() if a == LOCK]
    raise LookupError(f"no data lock {name!r}" + (f"; the locks: {', '.join(known)}" if known else
                                                 "; `timeline lock NAME` records one"))
