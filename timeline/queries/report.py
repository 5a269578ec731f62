"""`timeline report`: the centre's outcomes report for whatever cohort is in the store.

`write_report(view, out, ...)` computes the tables (`tables.build_report`) from one view of the
projections, draws the figures (`figures`), renders Markdown and HTML (`render`), prints the Markdown and
writes `report.md`, `report.html` and every figure as PNG and SVG into `out`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..clock import us_to_datetime
from ..output import escape_controls
from ..projections.parameters import Params, resolve
from .render import FIGURES, render_html, render_markdown
from .tables import FIGURE_INCIDENCE, FIGURE_SURVIVAL, Report, compute
from .views import ProjectionView

#: most patients drawn one by one (swimmer lanes, count panels); a larger cohort shows the first ones by
#: transplant date and says so
SWIMMER_MAX_PATIENTS = 40
COUNTS_MAX_PATIENTS = 12


def _first(df: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    return df.filter(pl.col("patient_id").is_in(ids)) if df.height else df


def incidence_panels(incidence: Mapping[str, pl.DataFrame | None]) -> dict[str, dict[str, pl.DataFrame | None]]:
    """The cumulative-incidence panels: relapse against non-relapse mortality in one, then aGVHD II–IV, cGVHD
    and CMV reactivation (each with death, or relapse, as the competing event by the endpoints rule)."""
    panels: dict[str, dict[str, pl.DataFrame | None]] = {
        "Relapse and non-relapse mortality (NRM)": {"relapse": incidence.get("relapse"),
                                                    "NRM": incidence.get("nrm")}}
    for key in ("agvhd_2_4", "cgvhd", "cmv_reactivation"):
        panels[FIGURE_INCIDENCE[key]] = {FIGURE_INCIDENCE[key]: incidence.get(key)}
    return panels


def render_figures(r: Report, *, percent: bool = False, swimmer_scale: str = "linear") -> dict[str, Any]:
    """The report's figures (matplotlib Figures), by file stem. `percent`: survival and incidence axes in
    percent; `swimmer_scale`: the swimmer plot's day axis, "linear" or "symlog"."""
    from . import figures as F

    ids = r.swimmer_lanes["patient_id"].to_list() if r.swimmer_lanes.height else []
    lanes = ids[:SWIMMER_MAX_PATIENTS]
    title = f"Patient timelines (N = {r.n_patients})" if len(lanes) == len(ids) else \
        f"Patient timelines: the first {len(lanes)} of {r.n_patients} patients by transplant date"
    panels = ids[:COUNTS_MAX_PATIENTS]
    return {
        "swimmer": F.swimmer_plot(_first(r.swimmer_lanes, lanes), _first(r.swimmer_spans, lanes),
                                  _first(r.swimmer_markers, lanes), title=title, scale=swimmer_scale),
        "survival": F.km_plot(r.curves, titles=FIGURE_SURVIVAL, percent=percent),
        "incidence": F.cif_plot(incidence_panels(r.incidence), percent=percent),
        "counts": F.count_trajectories(_first(r.counts, panels), _first(r.engraftment, panels),
                                       anc_threshold=r.thresholds["anc"], platelet_threshold=r.thresholds["platelets"],
                                       transfusions=_first(r.transfusions, panels)),
    }


def params_of(view: ProjectionView, overrides: Mapping[str, Any] | None) -> Params:
    """The parameters the view's tables were made with."""
    if overrides:
        return resolve(overrides)
    return view.state.params if view.state is not None else resolve()


def make_report(view: ProjectionView, *, as_of: date | None = None, known_at: datetime | None = None,
                overrides: Mapping[str, Any] | None = None, now: int) -> Report:
    """The report's tables from `view` (made as of `as_of`, known at `known_at`, with `overrides`); `now`
    is the store clock (µs), the "now" of known_at=None."""
    return compute(view, params_of(view, overrides), as_of=as_of, known_at=known_at,
                   computed_at=us_to_datetime(now))


def build_report(tl: Any, as_of: date | str | None = None, known_at: datetime | str | None = None,
                 params: Mapping[str, Any] | None = None, fresh: bool = False) -> Report:
    """The report of a `Timeline`'s cohort (no I/O): its tables as of `as_of`, as known at `known_at`, with
    `params`, read from the projection file (or built in memory from the store with `fresh`)."""
    from ..clock import as_date, as_utc

    d, k = as_date(as_of), as_utc(known_at)
    with tl.as_of(d, k, params, fresh=fresh) as view:
        return make_report(view, as_of=d, known_at=k, overrides=params, now=tl.store.now_us())


def write_report(view: ProjectionView, out: str | Path, *, as_of: date | None = None,
                 known_at: datetime | None = None, overrides: Mapping[str, Any] | None = None,
                 now: int, quiet: bool = False, percent: bool = False, swimmer_scale: str = "linear") -> Report:
    """Compute the report, print it (Markdown) unless `quiet`, and write report.md, report.html and the
    figures (PNG and SVG) to `out` (`percent`, `swimmer_scale`: see `render_figures`)."""
    from . import figures as F

    report = make_report(view, as_of=as_of, known_at=known_at, overrides=overrides, now=now)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    svgs: dict[str, str] = {}
    for stem, fig in render_figures(report, percent=percent, swimmer_scale=swimmer_scale).items():
        saved = F.save_figure(fig, out_dir, stem)
        written += [saved["png"], saved["svg"]]
        svgs[stem] = saved["svg_markup"]
    markdown = escape_controls(render_markdown(report, {stem: f"{stem}.png" for stem in svgs}))
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    (out_dir / "report.html").write_text(escape_controls(render_html(report, svgs)), encoding="utf-8")
    if not quiet:
        sys.stdout.write(render_markdown(report) + "\n")
        print(f"written to {out_dir}/: report.md, report.html, " + ", ".join(p.name for p in written))
    return report


__all__ = ["FIGURES", "Report", "build_report", "make_report", "render_figures", "render_html", "render_markdown",
           "write_report"]
