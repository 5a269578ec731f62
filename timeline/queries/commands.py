"""`timeline project | sql | params | km | cif | report` — the commands over the projections."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import polars as pl

FORMATS = ("table", "csv", "json")


def _params(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            from ..cli import UsageError

            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _common(p: argparse.ArgumentParser, store_arg, formats: bool = True) -> None:
    store_arg(p)
    p.add_argument("--as-of", metavar="DATE", help="clinical date: only events occurred on or before it")
    p.add_argument("--known-at", metavar="TIMESTAMP", help="as the data stood at this moment (UTC if no zone)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="override a rule parameter (see `timeline params`); repeatable")
    if formats:
        p.add_argument("--format", choices=FORMATS, default="table")


def print_frame(df: pl.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str, indent=1) + "\n")
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200,
                       tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
            print(df)


def _timeline(args: argparse.Namespace):
    from ..app import Timeline

    return Timeline.open(args.store)


def _errors(fn):
    """Turn the engine's user-facing errors into a one-line message and exit status 1."""
    def run(args: argparse.Namespace) -> int:
        from ..projections.pipeline import ParameterError
        from .views import ReadOnlyError

        try:
            return fn(args)
        except (ParameterError, ReadOnlyError, FileNotFoundError, ValueError) as e:
            print(f"timeline {args.command}: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # duckdb errors in user SQL
            if type(e).__module__.startswith(("duckdb", "_duckdb")):
                print(f"timeline {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
                return 1
            raise
    return run


@_errors
def cmd_project(args: argparse.Namespace) -> int:
    from ..progress import Progress

    tl = _timeline(args)
    total = tl.store.max_position()
    with Progress("project", total=total, unit="stored events read") as bar:
        report = tl.project(rebuild=args.rebuild, params=_params(args.param), on_rows=bar.update,
                            on_table=lambda name, i, n: bar.status(f"computing table {i}/{n}: {name}"))
    print(f"{report.mode}: {report.rows_read} stored events read, {report.patients} patients recomputed, "
          f"position {report.position} -> {tl.projector(_params(args.param)).path}")
    return 0


@_errors
def cmd_sql(args: argparse.Namespace) -> int:
    tl = _timeline(args)
    df = tl.sql(args.query, as_of=args.as_of, known_at=args.known_at, params=_params(args.param))
    print_frame(df, args.format)
    return 0


@_errors
def cmd_params(args: argparse.Namespace) -> int:
    from ..projections import pipeline

    rows = pipeline.describe_parameters()
    df = pl.DataFrame([{**r, "default": str(r["default"])} for r in rows])
    print_frame(df.select("name", "default", "module", "doc", "source"), args.format)
    return 0


def _estimate(args: argparse.Namespace, kind: str) -> int:
    from .survival import estimate

    tl = _timeline(args)
    df = estimate(tl, kind, args.endpoint, by=args.by, as_of=args.as_of, known_at=args.known_at,
                  params=_params(args.param))
    print_frame(df, args.format)
    return 0


@_errors
def cmd_km(args: argparse.Namespace) -> int:
    return _estimate(args, "km")


@_errors
def cmd_cif(args: argparse.Namespace) -> int:
    return _estimate(args, "cif")


@_errors
def cmd_report(args: argparse.Namespace) -> int:
    from .report import run_report

    tl = _timeline(args)
    return run_report(tl, as_of=args.as_of, known_at=args.known_at, params=_params(args.param), out=args.out)


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("project", help="catch the DuckDB projection tables up with the store")
    store_arg(p)
    p.add_argument("--rebuild", action="store_true", help="recompute every table from scratch")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="override a rule parameter")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("sql", help="run a read-only SQL query on the projections")
    p.add_argument("query")
    _common(p, store_arg)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("params", help="list the rule parameters with their defaults and sources")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_params)

    for name, func, what in (("km", cmd_km, "Kaplan–Meier estimate"),
                             ("cif", cmd_cif, "cumulative incidence (Aalen–Johansen, competing risks)")):
        p = sub.add_parser(name, help=f"{what} of an endpoint (endpoints.endpoint)")
        p.add_argument("endpoint")
        p.add_argument("--by", metavar="COLUMN", help="a column of `patients` to stratify by")
        _common(p, store_arg)
        p.set_defaults(func=func)

    p = sub.add_parser("report", help="the cohort's tables and figures (Markdown, HTML, PNG, SVG)")
    _common(p, store_arg, formats=False)
    p.add_argument("--out", metavar="DIR", default="report", help="output folder (default ./report)")
    p.set_defaults(func=cmd_report)
