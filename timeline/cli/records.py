"""Commands on the records (the event store): `ingest`, `history`, `schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import BAD_INPUT, DONE, UsageError, moment, name_value
from .trail import apply_lock, lock_arg

INGEST_DESCRIPTION = """\
Validate and store event files, each all-or-nothing: if any line of a file is invalid, nothing from
that file is stored and every problem is listed (line, field, value, rule).

Formats (the event format, with every type, field, unit and range: docs/events.md; the JSON Schema:
`timeline schema`):
  JSON Lines (.jsonl, .ndjson, .json)  one event object per line (or one JSON array of events), e.g.
      {"type": "blood_count", "patient_id": "P-001", "occurred_on": "2025-03-04", "anc_e9_per_l": 0.4}
  CSV (.csv)  a header row of envelope and field names, one event per row, separated by commas,
      semicolons or tabs; an empty cell is absent; list fields separated by |

Every event has `type`, `patient_id` and `occurred_on` (YYYY-MM-DD). An event without `event_id` gets one
derived from its content, so importing a file again adds nothing ("N new, M already present"). An event
with `source_record_id` (its id in the system it came from) that is already stored with other content is
recorded as a correction of it ("K corrected"): re-export from the source system and ingest again.
"""


def _store_is_new(location: str | None) -> Path | None:
    """The data folder `timeline ingest` is about to create a store in, if it holds none yet."""
    from ..settings import SQLITE_FILE, store_location

    loc = store_location(location)
    if loc == "memory" or loc.startswith(("postgresql://", "postgres://")):
        return None
    folder = Path(loc)
    return None if (folder / SQLITE_FILE).is_file() else folder


def _disk_warning(tl: Any, path: Path) -> str | None:
    """The warning of `faults.disk_shortfall` for a file about to be stored in a SQLite store (None: enough disk,
    or not a SQLite store, or not a file)."""
    import shutil

    from ..settings import SQLITE_FILE
    from ..store.faults import disk_shortfall

    folder = tl.store.data_dir
    if folder is None or not (Path(folder) / SQLITE_FILE).is_file() or not path.is_file():
        return None
    return disk_shortfall(path, path.stat().st_size, shutil.disk_usage(folder).free)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..events.problems import TYPES_HINT, UNKNOWN_TYPE, UNKNOWN_TYPE_REQUIRED, RejectedError
    from ..ingest import count_lines
    from ..progress import Progress

    totals = {"new": 0, "present": 0, "corrected": 0}
    failed = 0
    new_store = _store_is_new(args.store)
    with Timeline.open(args.store) as tl:
        if new_store is not None and not args.dry_run:
            print(f"created a new store at {new_store.resolve()}", file=sys.stderr)
        for name in args.files:
            path = Path(name)
            warning = _disk_warning(tl, path)
            if warning:
                print(warning, file=sys.stderr)
            try:
                lines = count_lines(path) if sys.stderr.isatty() and path.is_file() else None
                with Progress(f"ingest {path.name}", total=lines, unit="events") as bar:
                    report = tl.ingest_file(path, on_batch=lambda r, bar=bar: bar.update(r.new + r.present),
                                            dry_run=args.dry_run)
            except RejectedError as e:
                failed += 1
                print_refused(path, e.problems)
                if any(p.rule.startswith((UNKNOWN_TYPE, UNKNOWN_TYPE_REQUIRED)) for p in e.problems):
                    print(f"  ({TYPES_HINT})", file=sys.stderr)
                continue
            except (OSError, ValueError) as e:
                failed += 1
                print(f"{path}: REFUSED: {e}", file=sys.stderr)
                continue
            for key in totals:
                totals[key] += getattr(report, key)
            print(f"{path}: {_counts(report.new, report.present, report.corrected, args.dry_run)}")
    if len(args.files) > 1:
        print(f"total: {_counts(totals['new'], totals['present'], totals['corrected'], args.dry_run)}"
              + (f" ({failed} file(s) refused)" if failed else ""))
    return BAD_INPUT if failed else DONE


def print_refused(path: Path, problems: list[Any]) -> None:
    """A refused file and every problem of it (line, field, value, rule), on stderr."""
    print(f"{path}: REFUSED, nothing stored from this file: {len(problems)} problem(s)", file=sys.stderr)
    for p in problems:
        print(f"  {path.name}:{p}", file=sys.stderr)


def _counts(new: int, present: int, corrected: int, dry_run: bool) -> str:
    text = f"{new} new, {present} already present, {corrected} corrected"
    return f"{text} (dry run: nothing stored)" if dry_run else text


def cmd_history(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..history import render
    from ..projections.replay import day_numbers

    with Timeline.open(args.store, create=False) as tl:
        apply_lock(tl, args)
        facts = tl.facts(args.patient, args.known_at)
        if not facts:
            print(f"no events for patient {args.patient!r}"
                  + (f" as known at {args.known_at:%Y-%m-%dT%H:%M:%SZ}" if args.known_at else ""), file=sys.stderr)
            return BAD_INPUT
        # one replay in this process: built for the `events` table alone, on a new connection (a warm one of
        # `tl.replays` prepares every model first, which pays only over many replays, as in `timeline serve`)
        print(render(args.patient, facts, day_numbers(tl.store, args.patient, args.known_at), args.known_at))
    return DONE


def _amend(args: argparse.Namespace, changes: dict[str, str] | None) -> int:
    from ..app import Timeline

    with Timeline.open(args.store, create=False) as tl:
        fact = tl.find(args.event_id, args.patient)
        short = fact.original.event_id[:8]
        if changes is None:
            tl.retract(fact.original.event_id, args.reason, args.by, fact.original.patient_id)
            print(f"retracted {short} ({fact.type} of {fact.occurred_on}); run `timeline project` to update the tables")
        else:
            tl.correct(fact.original.event_id, changes, args.reason, args.by, fact.original.patient_id)
            print(f"corrected {short} ({', '.join(sorted(changes))}); run `timeline project` to update the tables")
    return DONE


def cmd_correct(args: argparse.Namespace) -> int:
    if not args.changes:
        raise UsageError("give at least one FIELD=VALUE to change")
    return _amend(args, dict(args.changes))


def cmd_retract(args: argparse.Namespace) -> int:
    return _amend(args, None)


def cmd_verify(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..verify import verify

    with Timeline.open(args.store, create=False) as tl:
        return DONE if verify(tl, print) else BAD_INPUT


def cmd_schema(args: argparse.Namespace) -> int:
    from ..events import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("ingest", help="validate and store JSON Lines / CSV event files (all-or-nothing per file)",
                       description=INGEST_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="check every file and say what would be stored; store nothing")
    store_arg(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("history", help="a patient's events in clinical order, with corrections and retractions")
    p.add_argument("patient")
    store_arg(p)
    p.add_argument("--known-at", metavar="TIMESTAMP", type=moment,
                   help="as the data stood at this moment (ISO 8601, UTC if no zone)")
    lock_arg(p)
    p.set_defaults(func=cmd_history)

    for name, func, what in (("correct", cmd_correct, "correct an event: give only the fields that change"),
                             ("retract", cmd_retract, "retract an event entered in error")):
        p = sub.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}. EVENT_ID is the id, or "
                           "its beginning, as `timeline history` shows it. Nothing is edited: an amendment event "
                           "is recorded, with who and why; `timeline history` shows both versions.")
        p.add_argument("event_id", metavar="EVENT_ID")
        if name == "correct":
            p.add_argument("changes", nargs="*", metavar="FIELD=VALUE", type=name_value,
                           help="the new value of a field (empty: remove it; lists separated by |)")
        p.add_argument("--reason", required=True, help="why (kept with the amendment)")
        p.add_argument("--by", required=True, help="who makes it (kept with the amendment)")
        p.add_argument("--patient", help="the patient the event belongs to (a faster search)")
        store_arg(p)
        p.set_defaults(func=func)

    p = sub.add_parser("verify", help="check the store and the projection file in full (exit 1 if anything is wrong)",
                       description="The full check of the event store (the database's integrity check, every "
                       "stored event readable, every event id unique and indexed) and of the projection file (it "
                       "opens, was built from this store and history, and every table equals a fresh build). "
                       "Reads only; exit status 1 when a check fails.")
    store_arg(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("schema", help="print the JSON Schema of the event format (generated from the models)")
    p.set_defaults(func=cmd_schema)
