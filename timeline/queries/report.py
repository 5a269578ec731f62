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
from ..projections.parameters import Params, resolve
from .render import FIGURES, render_html, render_markdown
from .tables import SURVIVAL_ENDPOINTS, Report, compute
from .views import ProjectionView

#: most patients drawn one by one (swimmer lanes, count panels); a larger cohort shows the first ones by
#: transplant date and says so
SWIMMER_MAX_PATIENTS = 40
COUNTS_MAX_PATIENTS = 12


def _first(df: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    return df.filter(pl.col("patient_id").is_in(ids)) if df.height else df


def render_figures(r: Report) -> dict[str, Any]:
    """The report's figures (matplotlib Figures), by file stem."""
    from . import figures as F

    ids = r.swimmer_lanes["patient_id"].to_list() if r.swimmer_lanes.height else []
    lanes = ids[:SWIMMER_MAX_PATIENTS]
    title = f"Patient timelines (N = {r.n_patients})" if len(lanes) == len(ids) else \
        f"Patient timelines: the first {len(lanes)} of {r.n_patients} patients by transplant date"
    panels = ids[:COUNTS_MAX_PATIENTS]
    km_titles = {k: f"{SURVIVAL_ENDPOINTS[k]} ({k.upper()})" for k in SURVIVAL_ENDPOINTS}
    return {
        "swimmer": F.swimmer_plot(_first(r.swimmer_lanes, lanes), _first(r.swimmer_spans, lanes),
                                  _first(r.swimmer_markers, lanes), title=title),
        "survival": F.km_plot(r.survival, titles=km_titles),
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
                 now: int, quiet: bool = False) -> Report:
    """Compute the report, print it (Markdown) unless `quiet`, and write report.md, report.html and the
    figures (PNG and SVG) to `out`."""
    from . import figures as F

    report = make_report(view, as_of=as_of, known_at=known_at, overrides=overrides, now=now)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    svgs: dict[str, str] = {}
    for stem, fig in render_figures(report).items():
        saved = F.save_figure(fig, out_dir, stem)
        written += [saved["png"], saved["svg"]]
        svgs[stem] = saved["svg_markup"]
    (out_dir / "report.md").write_text(render_markdown(report, {stem: f"{stem}.png" for stem in svgs}),
                                       encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, svgs), encoding="utf-8")
    if not quiet:
        sys.stdout.write(render_markdown(report) + "\n")
        print(f"written to {out_dir}/: report.md, report.html, " + ", ".join(p.name for p in written))
    return report


__all__ = ["FIGURES", "Report", "build_report", "make_report", "render_figures", "render_html", "render_markdown",
           "write_report"]
