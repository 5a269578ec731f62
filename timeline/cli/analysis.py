"""Commands on the projections: `project` (the only writer of the projection file), and the readers
`sql`, `params`, `km`, `cif`, `report`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import MEMORY_DEFAULT_TEXT
from .errors import DONE, clinical_date, moment, name_value
from .trail import apply_lock, at_lock, lock_arg

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("table", "csv", "json")
FILE_FORMATS = ("xlsx", "parquet")  # written to --out FILE only
#: how long a `timeline sql` query may run by default (docs/limits.md)
SQL_TIMEOUT_SECONDS = 60.0


def _params(args: argparse.Namespace) -> dict[str, str] | None:
    given = dict(args.param or [])
    return given or None


def _reader(p: argparse.ArgumentParser, store_arg, formats: bool = True) -> None:
    store_arg(p)
    p.add_argument("--as-of", metavar="DATE", type=clinical_date,
                   help="clinical date: only events occurred on or before it")
    p.add_argument("--known-at", metavar="TIMESTAMP", type=moment,
                   help="as the data stood at this moment (ISO 8601, UTC if no zone)")
    lock_arg(p)
    p.add_argument("--param", action="append", metavar="NAME=VALUE", type=name_value,
                   help="override a rule parameter (see `timeline params`); repeatable")
    p.add_argument("--fresh", action="store_true",
                   help="build every table in memory from the store instead of reading the projection file")
    if formats:
        p.add_argument("--format", choices=FORMATS + FILE_FORMATS, default="table",
                       help="table, csv or json on the screen (or into --out FILE); xlsx and parquet need --out")
        p.add_argument("--out", metavar="FILE", help="write the result to FILE (dates stay dates in xlsx and parquet)")
        _raw_arg(p)


RAW_HELP = ("write cells exactly as stored, for machine use: no escaping of control characters, no `'` before "
            "a cell starting with = + - @ (by default both are made safe for terminals and spreadsheets)")


def _raw_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw", action="store_true", help=RAW_HELP)


def print_frame(df: pl.DataFrame, fmt: str, raw: bool = False) -> None:
    from ..output import write_frame

    write_frame(df, fmt, raw=raw)


def emit(df: pl.DataFrame, args: argparse.Namespace, sheet: str = "result") -> None:
    """The result on the screen, or into --out FILE (through the one writer, `timeline.output`): the format
    asked for, or with the default one the format the file's extension names."""
    from ..output import write_frame
    from .errors import UsageError

    out = getattr(args, "out", None)
    if args.format in FILE_FORMATS and not out:
        raise UsageError(f"--format {args.format} writes a file: give --out FILE.{args.format}")
    write_frame(df, args.format, out, raw=getattr(args, "raw", False), sheet=sheet)


def _waiting() -> None:
    print("waiting for `timeline project` to commit its catch-up …", file=sys.stderr)


def open_view(tl: Any, args: argparse.Namespace, query: str | None = None):
    """The view a reading command answers from; its notes (e.g. the file is behind the store) go to stderr.
    At a data lock (`--lock`), everything is read as known then, with the lock's parameters. A `query` that
    can only see some patients' rows (`patient_filter`), asked of another date, time or parameters than the
    file's, is answered from a replay of those patients' streams instead of a recomputed cohort."""
    lock = apply_lock(tl, args)
    patients = None
    if query is not None and not args.fresh and (args.as_of or args.known_at or _params(args)):
        from ..queries.patient_filter import patients_of

        patients = patients_of(query)
    view = tl.as_of(args.as_of, args.known_at, _params(args), fresh=args.fresh, on_wait=_waiting,
                    memory_limit=getattr(args, "memory_limit", None), patients=patients)
    if lock is not None:
        at_lock(view, lock)
    _say_notes(view, args)
    return view


def _say_notes(view: Any, args: argparse.Namespace) -> None:
    for note in view.notes:
        print(f"timeline {args.command}: note: {note}", file=sys.stderr)


def cmd_project(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..progress import Progress

    plan = _plan(args)
    with Timeline.open(args.store, create=False) as tl:
        where = "memory only" if tl.store.encrypted else tl.projector().path
        with Progress("project", total=tl.store.max_position(), unit="stored events read") as bar, \
                _memory_limited(plan):
            report = tl.project(rebuild=args.rebuild, params=_params(args), on_rows=bar.update, plan=plan,
                                on_table=lambda name, i, n: bar.status(f"computing {i}/{n}: {name}"))
        if report.note:
            print(f"timeline project: note: {report.note}", file=sys.stderr)
        print(f"{report.mode}: {report.rows_read} stored events read, {report.patients} patients recomputed, "
              f"position {report.position} -> {where}")
    return DONE


def _plan(args: argparse.Namespace):
    """How a rebuild goes (`timeline.projections.partitions.Plan`), from the options of `project`; a wrong
    value is a usage error of one line."""
    from ..projections.partitions import Plan, partitions_arg
    from .errors import UsageError

    try:
        k = partitions_arg(args.partitions) if args.partitions is not None else None
        return Plan(partitions=k, memory_limit=args.memory_limit, engine=args.engine, scheduler=args.scheduler,
                    work_dir=args.work_dir)
    except ValueError as e:
        raise UsageError(str(e)) from None


@contextlib.contextmanager
def _memory_limited(plan) -> Iterator[None]:
    """DuckDB's out-of-memory error (several lines of advice) as one line saying what to change."""
    import duckdb

    from ..queries.views import QueryLimitError

    try:
        yield
    except duckdb.OutOfMemoryException as e:
        raise QueryLimitError(f"the build needed more memory than its limit ({plan.limit}) and was stopped, the "
                              f"projection file left as it was ({str(e).splitlines()[0]}); give --memory-limit more, "
                              "or --partitions K to build K groups of patients one after another") from None


def cmd_sql(args: argparse.Namespace) -> int:
    if _sql_on_file(args) or _sql_of_patients(args):
        return DONE
    from ..app import Timeline

    with Timeline.open(args.store, create=False) as tl, open_view(tl, args, query=args.query) as view:
        if args.out or args.format not in FORMATS:
            emit(view.sql(args.query, timeout=args.timeout or None), args)
        else:
            _write_result(view, args)
    return DONE


def _text(args: argparse.Namespace) -> Callable[[Any], str]:
    """A query's result (a DuckDB relation) as the screen shows it: without polars when `output.rows_text` can
    write it exactly as `frame_text` would."""
    from ..output import frame_text, rows_text

    def text(rel: Any) -> str:
        got = rows_text(rel.columns, [t.id for t in rel.types], rel.fetchall(), args.format, args.raw)
        return got if got is not None else frame_text(rel.pl(), args.format, args.raw)
    return text


def _write_result(view: Any, args: argparse.Namespace) -> None:
    sys.stdout.write(view.result(args.query, timeout=args.timeout or None, take=_text(args)))


def _plain_probe(args: argparse.Namespace, dated: bool) -> Any:
    """The probe (`store.probe.SQLiteProbe`) of a plain SQLite store, for `timeline sql` to the screen without
    --param, --fresh, --lock or --out, with (`dated`) or without --as-of/--known-at; else None: the full path
    answers."""
    if (bool(args.as_of or args.known_at) != dated or args.param or args.fresh or args.lock or args.out
            or args.format not in FORMATS):
        return None
    from ..store.probe import SQLiteProbe

    return SQLiteProbe.open(args.store)


def _sql_on_file(args: argparse.Namespace) -> bool:
    """`timeline sql` on the projection file as it is, of a plain SQLite store (`store.probe`), to the screen:
    answered with DuckDB and Python's sqlite3 alone (polars only for a result `output.rows_text` cannot write),
    as the full path answers it, notes and errors included. False: not such a case; the full path answers."""
    probe = _plain_probe(args, dated=False)
    if probe is None:
        return False
    import sqlite3

    from ..projections.state import check_against, projections_file
    from ..queries.views import open_file

    with probe:
        path = projections_file(str(probe.data_dir), probe.data_dir)
        if "?" in str(path):  # refused by the full path, in its words
            return False
        with open_file(path, on_wait=_waiting, memory_limit=args.memory_limit) as view:
            try:
                view.notes.extend(check_against(probe, view.state))
            except sqlite3.Error:  # a store the probe cannot read: the full path says why
                return False
            _say_notes(view, args)
            _write_result(view, args)
    return True


def _sql_of_patients(args: argparse.Namespace) -> bool:
    """`timeline sql --as-of/--known-at` of a query that can only see some patients' rows (`patient_filter`), of
    a plain SQLite store, to the screen: those patients replayed from their streams read with sqlite3
    (`SQLiteProbe.read_stream`), on the one DuckDB connection that parsed the query, building only the table the
    query reads and the tables it reads; as the full path answers it (`open_view`), without the store's stack.
    False: not such a case; the full path answers."""
    probe = _plain_probe(args, dated=True)
    if probe is None:
        return False
    import duckdb

    from ..clock import as_date, as_utc
    from ..projections import graph
    from ..projections.replay import replay_into
    from ..queries.patient_filter import restriction
    from ..queries.views import view_of

    with probe:
        con = duckdb.connect(config={"threads": 1})
        try:
            found = restriction(args.query, con)
            if found is None or found[0] not in graph.models():
                con.close()
                return False
            table, patients = found
            replay_into(con, probe.read_stream, patients, as_date(args.as_of), as_utc(args.known_at),
                        tables=[table])
        except BaseException:
            con.close()
            raise
    with view_of(con, f"patients {', '.join(patients)} replayed from the store",
                 memory_limit=args.memory_limit) as view:
        _write_result(view, args)
    return True


def cmd_params(args: argparse.Namespace) -> int:
    import polars as pl

    from ..projections.parameters import registry

    rows = [{"name": p.name, "default": str(p.default), "unit": p.unit, "module": p.module.__name__.rsplit(".", 1)[-1],
             "doc": p.doc, "source": p.source} for p in registry().values()]
    print_frame(pl.DataFrame(rows), args.format, args.raw)
    return DONE


def _estimate(args: argparse.Namespace, kind: str) -> int:
    """The table (or the estimates at --at), then the median (km) and the test across --by: after the table
    in the table format, on stderr with csv and json (stdout stays one frame)."""
    from ..app import Timeline
    from ..queries.survival import left_out, summarise

    with Timeline.open(args.store, create=False) as tl, open_view(tl, args) as view:
        for note in left_out(view):
            print(f"timeline {args.command}: note: {note}", file=sys.stderr)
        got = summarise(view, kind, args.endpoint, by=args.by, strata=args.strata, at=args.at)
    emit(got.at if got.at is not None else got.table, args, sheet=f"{kind} {args.endpoint}")
    out = sys.stdout if args.format == "table" and not args.out else sys.stderr
    if got.median is not None:
        print("\nMedian (95% CI, Brookmeyer–Crowley; inf = not reached), days:", file=out)
        if out is sys.stdout:
            print_frame(got.median, "table", args.raw)
        else:
            out.write(got.median.write_csv())
    if got.test is not None:
        print(("\n" if out is sys.stdout else "") + got.test.sentence(), file=out)
    return DONE


def times(text: str) -> list[float]:
    """argparse type: days, comma-separated (`365,730`)."""
    try:
        got = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes days separated by commas (365,730), got {text!r}") from None
    if not got or any(t < 0 for t in got):
        raise argparse.ArgumentTypeError(f"takes days >= 0 separated by commas (365,730), got {text!r}")
    return got


def cmd_km(args: argparse.Namespace) -> int:
    return _estimate(args, "km")


def cmd_cif(args: argparse.Namespace) -> int:
    return _estimate(args, "cif")


def cmd_report(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..queries.report import write_report

    with Timeline.open(args.store, create=False) as tl, open_view(tl, args) as view:
        write_report(view, args.out, as_of=args.as_of, known_at=args.known_at, overrides=_params(args),
                     now=tl.store.now_us(), percent=args.percent, swimmer_scale=args.swimmer_scale)
    return DONE


CHECK_FORMATS = ("table", "csv", "json", "xlsx", "parquet")


def print_findings(found: pl.DataFrame) -> None:
    """Data queries for a reader: one block per finding, its message and suggestion in full (a table would cut
    them), the event by the short id `timeline history`, `correct` and `retract` use."""
    for r in found.iter_rows(named=True):
        event = f"  event {r['event_id'][:8]}" if r["event_id"] else ""
        print(f"{r['severity']:<8} {r['patient_id']}  {r['occurred_on'] or ''}  {r['check']}{event}")
        print(f"         {r['message']}")
        print(f"         → {r['suggestion']}")


def cmd_check(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from .errors import BAD_INPUT

    query = ('SELECT patient_id, event_id, occurred_on, "check", severity, message, suggestion FROM data_queries'
             + (" WHERE patient_id = ?" if args.patient else "")
             + " ORDER BY severity, patient_id, occurred_on NULLS FIRST, \"check\"")
    with Timeline.open(args.store, create=False) as tl, open_view(tl, args) as view:
        found = view.sql(query, [args.patient] if args.patient else None)
    errors = found.filter(found["severity"] == "error").height
    if args.format == "table" and not args.out:
        print_findings(found)
    else:
        emit(found, args, sheet="data queries")
    print(f"{found.height} data quer{'y' if found.height == 1 else 'ies'}: {errors} error(s), "
          f"{found.height - errors} warning(s)" + (f" -> {args.out}" if args.out else ""), file=sys.stderr)
    return BAD_INPUT if errors else DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("project", help="catch the projection file up with the store (the only command that writes it)")
    store_arg(p)
    p.add_argument("--rebuild", action="store_true", help="recompute every table from scratch")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", type=name_value,
                   help="override a rule parameter (the file is rebuilt with it)")
    p.add_argument("--partitions", metavar="K", help="rebuild in K partitions of patients (by a hash of the patient id, "
                   "docs/architecture.md), one after another, in bounded memory; default: chosen from the number of "
                   "events and the memory limit (one piece when the store fits)")
    p.add_argument("--memory-limit", metavar="SIZE", help="the most memory DuckDB may use, e.g. 4GB (default: "
                   f"{MEMORY_DEFAULT_TEXT})")
    p.add_argument("--engine", choices=("duckdb", "dask"), default="duckdb",
                   help="duckdb: rebuild in this process; dask: each partition a task of a Dask cluster (a local one "
                   "of 2 workers unless --scheduler is given)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: the scheduler of an existing cluster, "
                   "e.g. tcp://scheduler:8786")
    p.add_argument("--work-dir", metavar="DIR", type=Path, help="with --engine dask: the folder of the Parquet files "
                   "exchanged with the workers, readable and writable by every worker (default: beside the "
                   "projection file)")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("sql", help="run a read-only SQL query on the projections")
    p.add_argument("query")
    _reader(p, store_arg)
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=SQL_TIMEOUT_SECONDS,
                   help=f"stop the query after this long (default {SQL_TIMEOUT_SECONDS:g}; 0: no limit)")
    p.add_argument("--memory-limit", metavar="SIZE", help="the most memory the query may use, e.g. 2GB (default: "
                   f"{MEMORY_DEFAULT_TEXT})")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("params", help="list the rule parameters with their defaults, units and sources")
    p.add_argument("--format", choices=FORMATS, default="table")
    _raw_arg(p)
    p.set_defaults(func=cmd_params)

    for name, func, what in (("km", cmd_km, "Kaplan–Meier estimate"),
                             ("cif", cmd_cif, "cumulative incidence (Aalen–Johansen, competing risks)")):
        p = sub.add_parser(name, help=f"{what} of an endpoint (endpoints.endpoint)")
        p.add_argument("endpoint")
        p.add_argument("--by", metavar="COLUMN", help="a column of `patients` to compare the groups of (curves per "
                       "group, and the " + ("log-rank" if name == "km" else "Gray") + " test)")
        p.add_argument("--strata", metavar="COLUMN", help="with --by: the test stratified by this column of `patients`")
        p.add_argument("--at", metavar="DAYS", type=times, help="print the estimates at these days (e.g. 365,730) "
                       "instead of the whole table")
        _reader(p, store_arg)
        p.set_defaults(func=func)

    p = sub.add_parser("check", help="the data queries: implausible or inconsistent items to resolve (exit 1 if an "
                       "error is open)", description="List the data queries (docs/rules.md lists the checks): "
                       "what a data manager resolves before a data lock. Exit status 1 while a query of severity "
                       "error is open.")
    _reader(p, store_arg, formats=False)
    p.add_argument("--patient", help="only this patient's queries")
    p.add_argument("--format", choices=CHECK_FORMATS, default="table")
    p.add_argument("--out", metavar="FILE", help="write to FILE (needed for xlsx and parquet)")
    _raw_arg(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="the cohort's tables and figures (Markdown, HTML, PNG, SVG)")
    _reader(p, store_arg, formats=False)
    p.add_argument("--out", metavar="DIR", default="report", help="output folder (default ./report)")
    p.add_argument("--percent", action="store_true", help="survival and incidence axes in percent")
    p.add_argument("--swimmer-scale", choices=("linear", "symlog"), default="linear",
                   help="the swimmer plot's day axis (default linear; symlog: linear within ±100 days, log beyond)")
    p.set_defaults(func=cmd_report)
