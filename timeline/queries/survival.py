"""Survival estimates of an endpoint, read from one view of the projections.

One place joins `endpoints` to the patient columns used for stratification; the estimators themselves
are `KaplanMeier` and `AalenJohansen` (one small object each), the tests comparing groups `LogRankTest` and
`GrayTest` (`comparisons`). `summarise` gathers what `timeline km | cif` print: the median with its
Brookmeyer–Crowley limits, the estimates at chosen times, and the test when a grouping column is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from ..projections.build import quote_ident
from .comparisons import Comparison, compare
from .cumulative_incidence import AalenJohansen
from .kaplan_meier import KaplanMeier
from .views import ProjectionView


def endpoint_frame(view: ProjectionView, endpoint: str, by: str | None = None,
                   strata: str | None = None) -> pl.DataFrame:
    """One row per patient of `endpoint` (time_days, status), with the `patients` columns `by` and `strata`
    if given."""
    from ..projections.rules.endpoints import ENDPOINTS

    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; endpoints: {', '.join(ENDPOINTS)}")
    cols = ""
    patient_cols = view.sql("SELECT * FROM patients LIMIT 0").columns
    for option, name in (("--by", by), ("--strata", strata)):
        if name is None:
            continue
        if name not in patient_cols or name == "patient_id":
            raise ValueError(f"{option} {name!r} is not a column of patients; columns: {', '.join(patient_cols[1:])}")
        cols += f", p.{quote_ident(name)}"
    return view.sql(
        f"SELECT e.patient_id, e.time_days, e.status{cols} FROM endpoints e "
        f"JOIN patients p USING (patient_id) WHERE e.endpoint = ? ORDER BY e.patient_id", [endpoint])


def left_out(view: ProjectionView) -> list[str]:
    """Why patients are missing from the endpoints, one sentence per reason (the data queries that leave a
    patient out of the endpoints), e.g. '1 patient left out: the death is dated before the origin'."""
    from ..projections.rules.endpoints import LEFT_OUT

    if "data_queries" not in view.tables():
        return []
    n = view.sql('SELECT count(DISTINCT patient_id) AS n FROM data_queries WHERE "check" = ?', [LEFT_OUT])["n"][0]
    if not n:
        return []
    return [f"{n} patient{'s' if n != 1 else ''} left out of every endpoint: the death is dated before the origin "
            f"(data query {LEFT_OUT}; `timeline check` lists them)"]


def fitted(df: pl.DataFrame, kind: str, by: str | None = None) -> KaplanMeier | AalenJohansen:
    """The estimator of `kind` ('km' or 'cif') fitted on an endpoint frame."""
    if kind == "km":
        return KaplanMeier().fit(df, duration="time_days", event="status", by=by)
    if kind == "cif":
        return AalenJohansen().fit(df, duration="time_days", status="status", by=by)
    raise ValueError(f"unknown estimator {kind!r} (km or cif)")


def _frame_of(view: ProjectionView, endpoint: str, by: str | None, strata: str | None = None) -> pl.DataFrame:
    df = endpoint_frame(view, endpoint, by, strata)
    if df.is_empty():
        raise ValueError(f"no patient has an origin for endpoint {endpoint!r} in this view")
    return df


def estimate_from(view: ProjectionView, kind: str, endpoint: str, by: str | None = None) -> pl.DataFrame:
    return fitted(_frame_of(view, endpoint, by), kind, by).table


@dataclass(frozen=True)
class Summary:
    """What `timeline km | cif` print besides the table."""

    kind: str
    table: pl.DataFrame  # the estimator's table
    at: pl.DataFrame | None  # [by..., time, estimate, lower, upper] at the chosen times
    median: pl.DataFrame | None  # km: [by..., n, events, median, lower, upper] (inf: not reached)
    test: Comparison | None  # with a grouping column: log-rank (km) or Gray (cif)


def medians(km: KaplanMeier, df: pl.DataFrame, by: str | None) -> pl.DataFrame:
    """Median survival with its Brookmeyer–Crowley 95% limits (the log-log band inverted), n and events."""
    keys = [by] if by else []
    counts = (df.group_by(keys).agg(n=pl.len(), events=(pl.col("status") == 1).sum()) if keys
              else df.select(n=pl.len(), events=(pl.col("status") == 1).sum()))
    med = km.median_ci()
    if not keys:
        return counts.hstack(med)
    return counts.join(med, on=keys, nulls_equal=True).sort(keys, nulls_last=True).select(
        *keys, "n", "events", "median", "lower", "upper")


def summarise(view: ProjectionView, kind: str, endpoint: str, by: str | None = None, strata: str | None = None,
              at: Sequence[float] | None = None) -> Summary:
    """The estimate of `endpoint` with its median (km), values at the times `at`, and the test across `by`
    (stratified by `strata`)."""
    if strata is not None and by is None:
        raise ValueError("--strata needs --by: the stratified test compares the groups of --by within each stratum")
    df = _frame_of(view, endpoint, by, strata)
    est = fitted(df, kind, by)
    return Summary(kind, est.table, est.at(list(at)) if at else None,
                   medians(est, df, by) if kind == "km" else None,
                   compare(kind, df, by, strata) if by is not None else None)
