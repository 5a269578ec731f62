"""The cohort page's content: the patient list (search and filters), the swimmer plot, and the Kaplan–Meier
and cumulative-incidence curves of the listed patients with their numbers at risk, stratified by a chosen
column of `patients`, with the log-rank or Gray p-value.

Everything is read from one view of the projections (`Timeline.as_of`) and estimated by the engine's
estimators (`KaplanMeier`, `AalenJohansen`, `LogRankTest`, `GrayTest`); the swimmer rows are the report's
(`queries.tables.figure_frames`). Filters are bound as SQL parameters, the stratifying column is checked
against the columns of `patients`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..projections.build import quote_ident
from ..queries.comparisons import Comparison, compare, format_p
from ..queries.figures import _nice_times
from ..queries.survival import fitted
from ..queries.tables import FIGURE_INCIDENCE, FIGURE_SURVIVAL, figure_frames
from ..queries.views import ProjectionView

#: filters of the list: the `patients` column of each drop-down
FILTERS = ("donor", "disease", "vital_status")
#: columns offered to stratify the curves by (those present in `patients`)
STRATIFY = ("donor", "disease", "sex", "graft_source", "conditioning_intensity", "serotherapy", "risk_group",
            "hla_match", "gvhd_prophylaxis")
LIST_MAX = 200  # patients listed on the page (the count says how many match)
SWIMMER_MAX = 40  # lanes of the swimmer plot (the first listed patients)

_LIST_SQL = """
WITH q AS (SELECT patient_id, count(*) AS open_queries, count(*) FILTER (WHERE severity = 'error') AS errors
           FROM data_queries GROUP BY patient_id)
SELECT p.patient_id, p.hsct_on, p.disease, p.donor, p.graft_source, p.vital_status, p.last_contact_on,
       g.neutrophil_day, g.platelet_day, coalesce(q.open_queries, 0) AS open_queries, coalesce(q.errors, 0) AS errors
FROM patients p LEFT JOIN engraftment g USING (patient_id) LEFT JOIN q USING (patient_id)
WHERE (CAST($q AS VARCHAR) IS NULL OR p.patient_id ILIKE '%' || $q || '%')
  AND (CAST($donor AS VARCHAR) IS NULL OR p.donor = $donor)
  AND (CAST($disease AS VARCHAR) IS NULL OR p.disease = $disease)
  AND (CAST($vital_status AS VARCHAR) IS NULL OR p.vital_status = $vital_status)
  AND (CAST($queries AS VARCHAR) IS NULL OR ($queries = 'open') = (coalesce(q.open_queries, 0) > 0))
ORDER BY p.hsct_on NULLS LAST, p.patient_id
"""


@dataclass
class Curve:
    """One endpoint's curves on the page."""

    endpoint: str
    title: str
    kind: str  # km or cif
    rows: pl.DataFrame  # group, time, estimate, lower, upper (the steps)
    at_risk: list[dict[str, Any]]  # [{"group": g, "counts": [n at each time]}]
    times: list[float]
    test: Comparison | None
    note: str = ""

    @property
    def p_text(self) -> str:
        if self.test is None:
            return ""
        name = "log-rank" if self.kind == "km" else "Gray's test"
        strat = f" ({self.test.test})" if self.test.strata else ""
        return f"{name}{strat}: p = {format_p(self.test.p_value)}"


@dataclass
class CohortPage:
    patients: pl.DataFrame  # the listed patients (at most LIST_MAX)
    matched: int  # patients matching the filters
    registered: int
    choices: dict[str, list[str]]
    by: str | None
    curves: list[Curve] = field(default_factory=list)
    swimmer: dict[str, pl.DataFrame] = field(default_factory=dict)


def _steps(table: pl.DataFrame, by: str | None, kind: str) -> pl.DataFrame:
    """The rows where a curve steps, and its end, from day 0 (survival 1, incidence 0): enough to draw it
    exactly, far fewer than one row per observed time."""
    t = table.with_columns((pl.col(by).cast(pl.String).fill_null("not recorded") if by else
                            pl.lit("all patients")).alias("group"))
    last = pl.col("time") == pl.col("time").max().over("group")
    kept = t.filter((pl.col("events") > 0) | last).select(
        "group", pl.col("time").cast(pl.Float64), *(pl.col(c).round(5) for c in ("estimate", "lower", "upper")))
    start = 1.0 if kind == "km" else 0.0
    origin = kept.select("group").unique(maintain_order=True).with_columns(
        time=pl.lit(0.0), estimate=pl.lit(start), lower=pl.lit(start), upper=pl.lit(start))
    return pl.concat([origin, kept]).sort("group", "time", maintain_order=True)


def _at_risk(table: pl.DataFrame, by: str | None, times: list[float]) -> list[dict[str, Any]]:
    groups = table.with_columns((pl.col(by).cast(pl.String).fill_null("not recorded") if by else
                                 pl.lit("all patients")).alias("group"))
    out = []
    for (g,), part in groups.group_by(["group"], maintain_order=True):
        tt = part["time"].to_numpy()
        n = part["at_risk"].to_numpy()
        counts = []
        for x in times:
            idx = (tt >= x).argmax() if (tt >= x).any() else None
            counts.append(int(n[idx]) if idx is not None else 0)
        out.append({"group": g, "counts": counts})
    return out


def cohort_page(view: ProjectionView, *, q: str | None = None, filters: dict[str, str | None] | None = None,
                queries: str | None = None, by: str | None = None) -> CohortPage:
    """The page's content for the patients matching the search `q`, `filters` (column -> value) and
    `queries` ('open': with an open data query, 'none': without), the curves stratified by `by`."""
    columns = view.sql("SELECT * FROM patients LIMIT 0").columns
    if by is not None and (by not in columns or by not in STRATIFY):
        raise ValueError(f"cannot stratify by {by!r}; choose one of {', '.join(c for c in STRATIFY if c in columns)}")
    choices = {c: [v for v in view.sql(f"SELECT DISTINCT {quote_ident(c)} AS v FROM patients ORDER BY 1")["v"].to_list()
                   if v is not None] for c in FILTERS}
    bound = {"q": q or None, "queries": queries if queries in ("open", "none") else None}
    bound |= {c: (filters or {}).get(c) or None for c in FILTERS}
    listed = view.sql(_LIST_SQL, bound)
    registered = int(view.sql("SELECT count(*) AS n FROM patients")["n"][0])
    page = CohortPage(listed.head(LIST_MAX), listed.height, registered, choices, by)
    ids = listed["patient_id"].to_list()
    page.curves = _curves(view, ids, by)
    swimmer_ids = listed.filter(pl.col("hsct_on").is_not_null())["patient_id"].head(SWIMMER_MAX).to_list()
    page.swimmer = figure_frames(view, swimmer_ids, counts=False)
    return page


def _curves(view: ProjectionView, ids: list[str], by: str | None) -> list[Curve]:
    cols = f", p.{quote_ident(by)}" if by else ""
    frame = view.sql(f"SELECT e.patient_id, e.endpoint, e.time_days, e.status{cols} FROM endpoints e "
                     f"JOIN patients p USING (patient_id) WHERE list_contains($ids, e.patient_id) "
                     f"AND list_contains($endpoints, e.endpoint)",
                     {"ids": ids, "endpoints": [*FIGURE_SURVIVAL, *FIGURE_INCIDENCE]})
    t_max = float(frame["time_days"].max()) if frame.height else 1.0
    times = _nice_times(max(t_max, 1.0))
    out = []
    for kind, names in (("km", FIGURE_SURVIVAL), ("cif", FIGURE_INCIDENCE)):
        for endpoint, title in names.items():
            df = frame.filter(pl.col("endpoint") == endpoint)
            if df.is_empty():
                out.append(Curve(endpoint, title, kind, pl.DataFrame(), [], times, None, "no patient at risk"))
                continue
            table = fitted(df, kind, by).table
            events = int((df["status"] == 1).sum())
            test = compare(kind, df, by) if by and df[by].n_unique() > 1 and events else None
            note = "no event yet: nothing to test" if by and not events else ""
            out.append(Curve(endpoint, title, kind, _steps(table, by, kind), _at_risk(table, by, times), times, test,
                             note))
    return out
