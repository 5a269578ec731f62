"""Commands on the records (the event store): `ingest`, `history`, `schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import BAD_INPUT, DONE, moment

INGEST_DESCRIPTION = """\
Validate and store event files, each all-or-nothing: if any line of a file is invalid, nothing from
that file is stored and every problem is listed (line, field, value, rule).

Formats (the event format, with every type, field, unit and range: docs/events.md; the JSON Schema:
`timeline schema`):
  JSON Lines (.jsonl, .ndjson, .json)  one event object per line, e.g.
      {"type": "blood_count", "patient_id": "P-001", "occurred_on": "2025-03-04", "anc_e9_per_l": 0.4}
  CSV (.csv)  a header row of envelope and field names, one event per row; an empty cell is absent;
      list fields separated by |

Every event has `type`, `patient_id` and `occurred_on` (YYYY-MM-DD). An event without `event_id` gets one
derived from its content, so importing a file again adds nothing ("N new, M already present").
"""


def cmd_ingest(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..events.problems import RejectedError
    from ..ingest import count_lines
    from ..progress import Progress

    total_new = total_present = 0
    failed = 0
    with Timeline.open(args.store) as tl:
        for name in args.files:
            path = Path(name)
            try:
                lines = count_lines(path) if sys.stderr.isatty() and path.is_file() else None
                with Progress(f"ingest {path.name}", total=lines, unit="events") as bar:
                    report = tl.ingest_file(path, on_batch=lambda r, bar=bar: bar.update(r.new + r.present))
            except RejectedError as e:
                failed += 1
                print(f"{path}: REFUSED, nothing stored from this file: {len(e.problems)} problem(s)", file=sys.stderr)
                for p in e.problems:
                    print(f"  {path.name}:{p}", file=sys.stderr)
                continue
            except (OSError, ValueError) as e:
                failed += 1
                print(f"{path}: REFUSED: {e}", file=sys.stderr)
                continue
            total_new += report.new
            total_present += report.present
            print(f"{path}: {report.new} new, {report.present} already present")
    if len(args.files) > 1:
        print(f"total: {total_new} new, {total_present} already present"
              + (f" ({failed} file(s) refused)" if failed else ""))
    return BAD_INPUT if failed else DONE


def cmd_history(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..history import render
    from ..projections.replay import day_numbers

    with Timeline.open(args.store, create=False) as tl:
        facts = tl.facts(args.patient, args.known_at)
        if not facts:
            print(f"no events for patient {args.patient!r}"
                  + (f" as known at {args.known_at:%Y-%m-%dT%H:%M:%SZ}" if args.known_at else ""), file=sys.stderr)
            return BAD_INPUT
        print(render(args.patient, facts, day_numbers(tl.store, args.patient, args.known_at), args.known_at))
    return DONE


def cmd_schema(args: argparse.Namespace) -> int:
    from ..events import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("ingest", help="validate and store JSON Lines / CSV event files (all-or-nothing per file)",
                       description=INGEST_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    store_arg(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("history", help="a patient's events in clinical order, with corrections and retractions")
    p.add_argument("patient")
    store_arg(p)
    p.add_argument("--known-at", metavar="TIMESTAMP", type=moment,
                   help="as the data stood at this moment (ISO 8601, UTC if no zone)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("schema", help="print the JSON Schema of the event format (generated from the models)")
    p.set_defaults(func=cmd_schema)
