"""The `timeline` command.

    timeline [--store PATH|URL|memory] ingest FILE...
    timeline history PATIENT [--known-at TIMESTAMP]
    timeline schema

The store is a data folder (default `./timeline-data`, or `$TIMELINE_STORE`), a `postgresql://…` URL, or
`memory`. Exit status: 0 success, 1 refused input or failed work, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .store.eventstore import DEFAULT_STORE, STORE_ENV, RejectedError

log = logging.getLogger("timeline")


class UsageError(Exception):
    """A command given wrongly (exit status 2)."""


STORE_HELP = f"data folder, postgresql:// URL or 'memory' (default ${STORE_ENV} or {DEFAULT_STORE})"


def _store_arg(p: argparse.ArgumentParser) -> None:
    """`--store` after the command too; SUPPRESS keeps a sub-command from erasing the global value."""
    p.add_argument("--store", default=argparse.SUPPRESS, help=STORE_HELP)


def cmd_ingest(args: argparse.Namespace) -> int:
    from .app import Timeline
    from .ingest import count_lines
    from .progress import Progress

    tl = Timeline.open(args.store)
    total_new = total_present = 0
    failed = 0
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
    return 1 if failed else 0


def cmd_history(args: argparse.Namespace) -> int:
    from .app import Timeline, _as_utc
    from .history import render
    from .projections.replay import day_numbers

    tl = Timeline.open(args.store)
    known_at = _as_utc(args.known_at) if args.known_at else None
    facts = tl.facts(args.patient, known_at)
    if not facts:
        print(f"no events for patient {args.patient!r}"
              + (f" as known at {args.known_at}" if args.known_at else ""), file=sys.stderr)
        return 1
    print(render(args.patient, facts, day_numbers(tl.store, args.patient, known_at), known_at))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .events import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timeline", description="Event-sourced patient timelines for HSCT outcomes research.")
    parser.add_argument("--store", default=None, help=STORE_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (never event contents)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="validate and store JSON Lines / CSV event files (all-or-nothing per file)")
    p.add_argument("files", nargs="+", metavar="FILE")
    _store_arg(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("history", help="a patient's events in clinical order, with corrections and retractions")
    p.add_argument("patient")
    _store_arg(p)
    p.add_argument("--known-at", metavar="TIMESTAMP", help="as the data stood at this moment (ISO 8601, UTC if no zone)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("schema", help="print the JSON Schema of the event format (generated from the models)")
    p.set_defaults(func=cmd_schema)

    for extra in _extensions():
        extra(sub, _store_arg)
    return parser


def _extensions():
    """Commands of the later layers (projections, queries), registered when present."""
    out = []
    try:
        from .queries.commands import register
    except ImportError:
        return out
    out.append(register)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # sub-command --store wins over the global one
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"timeline: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a malformed date, timestamp or setting given on the command line
        print(f"timeline {getattr(args, 'command', '')}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; nothing partial was stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
