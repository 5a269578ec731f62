"""The audit trail's commands: `timeline lock`, `timeline audit`, and the `--lock NAME` option of every reading
command (wherever `--known-at` works)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import DONE, UsageError, moment, name_value


def lock_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lock", metavar="NAME", help="as the data stood at the data lock NAME, with its parameters "
                   "(see `timeline lock`)")


def apply_lock(tl: Any, args: argparse.Namespace):
    """Read at the data lock `--lock` names: its knowledge time (and, unless --param is given, its parameters)
    replace the command's. Returns the lock, or None."""
    if not getattr(args, "lock", None):
        return None
    if args.known_at is not None:
        raise UsageError("--lock and --known-at both say when the data stood: give one")
    from ..locks import find_lock

    lock = find_lock(tl, args.lock)
    args.known_at = lock.known_at
    if hasattr(args, "param") and not args.param:
        args.param = sorted(lock.params.values.items())
    return lock


def at_lock(view: Any, lock: Any) -> None:
    """A view read at a lock: it must hold every event the lock knew; it names the lock, not the file it was
    read from, and no note about events recorded since (they are not part of it)."""
    if view.state is not None and view.state.position < lock.position:
        view.close()
        raise LookupError(f"the projection file holds the store up to position {view.state.position:,}, the lock "
                          f"{lock.name} up to {lock.position:,}: run `timeline project` (or use --fresh)")
    view.description = lock.describe()
    view.notes[:] = [n for n in view.notes if not n.startswith("projections are")]


def cmd_lock(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..locks import make_lock

    with Timeline.open(args.store, create=False) as tl:
        lock = make_lock(tl, args.name, args.at, args.by, dict(args.param or []))
    print(f"locked {lock.describe()}")
    return DONE


def cmd_audit(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..audit import audit_trail
    from ..locks import find_lock
    from ..output import write_frame

    with Timeline.open(args.store, create=False) as tl:
        until = find_lock(tl, args.lock).known_at if args.lock else None
        trail = audit_trail(tl, until=until, since=args.since, patient=args.patient)
    write_frame(trail, args.format, raw=args.raw)
    print(f"{trail.height} entr{'y' if trail.height == 1 else 'ies'} in the audit trail", file=sys.stderr)
    return DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("lock", help="record a named data lock: a moment of knowledge, the store position then, the "
                       "parameters", description="Record a data lock: reads with --lock NAME see the data as known "
                       "at that moment, with these parameters, and a report at the lock is the same whenever it is "
                       "made. A name is locked once; the lock is kept in the audit trail (`timeline audit`).")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--at", metavar="TIMESTAMP", type=moment, help="lock the data as known at this past moment "
                   "(default: now)")
    p.add_argument("--by", help="who locks (default: the user running the command)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", type=name_value,
                   help="a rule parameter of the lock (default: the defaults); repeatable")
    store_arg(p)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("audit", help="the audit trail: every correction, retraction, data lock, forgotten patient and "
                       "key change", description="List the audit trail, in time order: every correction and retraction "
                       "(who, when, why, what it replaced, the values before and after), every data lock, and in an "
                       "encrypted store every forgotten patient (under a pseudonym) and master key change. "
                       "Computed from the store; nothing in the tool edits it.")
    p.add_argument("--lock", metavar="NAME", help="the trail as it stood at the data lock NAME")
    p.add_argument("--since", metavar="TIMESTAMP", type=moment, help="only entries recorded after this moment")
    p.add_argument("--patient", help="only this patient's entries")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--raw", action="store_true", help="cells exactly as stored (no escaping), for machine use")
    store_arg(p)
    p.set_defaults(func=cmd_audit)
