"""The `timeline` command.

    timeline [--store PATH|URL|memory] COMMAND ...

Commands on records (the event store): `ingest`, `history`, `schema`. Commands on the projections:
`project` (the only one that writes the projection file), `sql`, `params`, `km`, `cif`, `report`, `check`.
Exchange: `import fhir`; `export adtte|parquet|cbioportal|fhir`.
The store is a data folder (default `./timeline-data`, or `$TIMELINE_STORE`), a `postgresql://…` URL, or
`memory`. Exit status: see `timeline.cli.errors` (0 done, 1 bad input or refused statement, 2 usage).
Each command imports what it needs when it runs, so start-up stays short.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..settings import DEFAULT_DATA_FOLDER, STORE_ENV
from . import analysis, errors, exchange, keys, records, serve, trail

log = logging.getLogger("timeline")

STORE_HELP = f"data folder, postgresql:// URL or 'memory' (default ${STORE_ENV} or {DEFAULT_DATA_FOLDER})"


def _store_arg(p: argparse.ArgumentParser) -> None:
    """`--store` after the command too; SUPPRESS keeps a sub-command from erasing the global value."""
    p.add_argument("--store", default=argparse.SUPPRESS, help=STORE_HELP)
    p.add_argument("--key-file", default=argparse.SUPPRESS, help=keys.KEY_FILE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timeline", description="Event-sourced patient timelines for HSCT outcomes research.",
        epilog="Exit status: 0 done, 1 bad input or refused statement, 2 usage.")
    parser.add_argument("--store", default=None, help=STORE_HELP)
    parser.add_argument("--key-file", default=None, help=keys.KEY_FILE_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (never event contents)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    records.register(sub, _store_arg)
    analysis.register(sub, _store_arg)
    serve.register(sub, _store_arg)
    exchange.register(sub, _store_arg)
    trail.register(sub, _store_arg)
    keys.register(sub, _store_arg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..output import safe_terminal
    from ..private import owner_only

    given = list(sys.argv[1:] if argv is None else argv)
    # control characters never reach the terminal unescaped; every file written is its owner's only
    with safe_terminal(raw="--raw" in given), owner_only():
        return _run(given)


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with keys.key_file(args):
            return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: nothing more to say, anywhere
        getattr(sys.stderr, "stream", sys.stderr).close()
        return errors.DONE
    except KeyboardInterrupt:
        print("interrupted; nothing partial was stored", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as e:  # noqa: BLE001 - mapped to an exit status, or re-raised as a defect
        from ..store.faults import explain

        fault = explain(e, getattr(args, "store", None))  # a storage fault: one line, what and what to do
        if fault is not None:
            print(f"timeline {args.command}: {fault}", file=sys.stderr)
            return errors.BAD_INPUT
        status = errors.exit_status(e)
        if status is None:
            raise
        print(f"timeline {args.command}: {e}", file=sys.stderr)
        return status
