"""Survival estimates of an endpoint, read from one view of the projections.

One place joins `endpoints` to the patient columns used for stratification; the estimators themselves
are `KaplanMeier` and `AalenJohansen` (one small object each)."""

from __future__ import annotations

import polars as pl

from ..projections.build import quote_ident
from .cumulative_incidence import AalenJohansen
from .kaplan_meier import KaplanMeier
from .views import ProjectionView


def endpoint_frame(view: ProjectionView, endpoint: str, by: str | None = None) -> pl.DataFrame:
    """One row per patient of `endpoint` (time_days, status), with the `patients` column `by` if given."""
    from ..projections.rules.endpoints import ENDPOINTS

    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; endpoints: {', '.join(ENDPOINTS)}")
    cols = ""
    if by is not None:
        patient_cols = view.sql("SELECT * FROM patients LIMIT 0").columns
        if by not in patient_cols or by == "patient_id":
            raise ValueError(f"--by {by!r} is not a column of patients; columns: {', '.join(patient_cols[1:])}")
        cols = f", p.{quote_ident(by)}"
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


def estimate_from(view: ProjectionView, kind: str, endpoint: str, by: str | None = None) -> pl.DataFrame:
    df = endpoint_frame(view, endpoint, by)
    if df.is_empty():
        raise ValueError(f"no patient has an origin for endpoint {endpoint!r} in this view")
    if kind == "km":
        return KaplanMeier().fit(df, duration="time_days", event="status", by=by).table
    if kind == "cif":
        return AalenJohansen().fit(df, duration="time_days", status="status", by=by).table
    raise ValueError(f"unknown estimator {kind!r} (km or cif)")
