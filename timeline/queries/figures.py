"""Figures of the outcomes report (matplotlib, deterministic output).

Each function takes polars frames (read from the projections by `timeline.queries.report`) and returns a
matplotlib `Figure`; nothing here reads the store or computes a clinical rule. `save_figure` writes PNG
and SVG byte-for-byte reproducibly (fixed SVG hash salt, no dates in the metadata), and `svg_markup`
returns the SVG text for inline embedding in HTML (ids prefixed so several figures can share one page).

* `swimmer_plot`: one lane per patient from the start of bridging to the last contact (day 0 = the
  infusion): blinatumomab cycles and conditioning as bars, GVHD episodes as thin bars, engraftment and
  complication markers, last follow-up (alive) or death. The day axis is linear around day 0 and
  logarithmic beyond ±`linear_days`, so engraftment days and years of follow-up are both readable.
* `km_plot`: Kaplan–Meier curves (step functions) with the 95% band, censoring ticks and a
  numbers-at-risk table under each axis.
* `count_trajectories`: ANC and platelets per patient against the day, log scale, the engraftment
  thresholds dashed, the engraftment day marked, platelet transfusions as ticks.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

__all__ = ["swimmer_plot", "km_plot", "count_trajectories", "save_figure", "svg_markup", "inline_svg", "MARKERS"]

_RC = {
    "svg.hashsalt": "timeline-report",
    "svg.fonttype": "none",  # text stays text in the SVG (smaller, searchable, no glyph ids)
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}

F = TypeVar("F", bound=Callable[..., Any])


def styled(draw: F) -> F:
    """Draw with the report's style, for this call only: nothing global changes (a notebook's backend and
    rcParams stay as they were). Figures are made with `Figure()`, never through pyplot."""
    @functools.wraps(draw)
    def run(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)
    return run  # type: ignore[return-value]

#: kind -> (marker, colour, label, lane offset): how a swimmer-plot marker looks.
MARKERS: dict[str, tuple[str, str, str, float]] = {
    "infusion": ("D", "#222222", "stem-cell infusion (day 0)", 0.0),
    "neutrophil_engraftment": ("^", "#2a9d2a", "neutrophil engraftment", 0.26),
    "platelet_engraftment": ("v", "#8e44ad", "platelet engraftment", 0.26),
    "full_donor_chimerism": ("p", "#1f77b4", "first full donor chimerism", 0.26),
    "engraftment_syndrome": ("o", "#f39c12", "engraftment syndrome", -0.26),
    "cmv_reactivation": ("s", "#d62728", "CMV reactivation", -0.26),
    "ebv_reactivation": ("D", "#8c564b", "EBV reactivation", -0.26),
    "viral_reactivation": ("d", "#bc5090", "other viral reactivation", -0.26),
    "infection": ("X", "#17becf", "infection", -0.26),
    "agvhd": ("P", "#e377c2", "acute GVHD (onset)", -0.26),
    "sr_agvhd": ("*", "#9b1d20", "steroid-refractory aGVHD", -0.26),
    "cgvhd": ("h", "#7f7f7f", "chronic GVHD (onset)", -0.26),
    "toxicity": ("1", "#555555", "toxicity", -0.26),
    "graft_failure": ("x", "#000000", "graft failure", -0.26),
    "relapse": ("X", "#000000", "relapse", 0.0),
    "last_contact": (">", "#444444", "last follow-up, alive", 0.0),
    "death": ("X", "#c0392b", "death", 0.0),
}
_OTHER = ("o", "#999999", "other", -0.26)

#: span kind -> (colour, height, label)
SPANS: dict[str, tuple[str, float, str]] = {
    "blinatumomab": ("#3b6fb6", 0.42, "blinatumomab cycle"),
    "conditioning": ("#b0b0b0", 0.42, "conditioning"),
    "agvhd": ("#f4b6d8", 0.14, "acute GVHD (diagnosis to resolution)"),
    "cgvhd": ("#c9c9c9", 0.14, "chronic GVHD (diagnosis to resolution)"),
}


# ------------------------------------------------------------------------------------------------ io

def _svg_text(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "timeline report"})
    return buf.getvalue()


def save_figure(fig: Figure, out_dir: str | Path, name: str, dpi: int = 120) -> dict[str, Path | str]:
    """Write `name.png` and `name.svg` into `out_dir` (deterministic: no dates, fixed ids).

    Returns `{"png": path, "svg": path, "svg_markup": inline <svg> element}` (the SVG is drawn once).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with matplotlib.rc_context(_RC):
        fig.savefig(png, format="png", dpi=dpi, metadata={"Software": None})
    text = _svg_text(fig)
    svg.write_text(text, encoding="utf-8")
    return {"png": png, "svg": svg, "svg_markup": inline_svg(text, name)}


def inline_svg(text: str, prefix: str) -> str:
    """An SVG document as an `<svg>` element for inline HTML: no XML prolog, every id prefixed."""
    text = text[text.index("<svg"):]
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)
    return text


def svg_markup(fig: Figure, prefix: str) -> str:
    """The figure as an `<svg>` element for inline HTML (see `inline_svg`)."""
    return inline_svg(_svg_text(fig), prefix)


def _rows(df: pl.DataFrame | None) -> list[dict]:
    return [] if df is None else df.to_dicts()


# ------------------------------------------------------------------------------------------ swimmer

def _symlog_ticks(lo: float, hi: float, linear: float) -> list[int]:
    candidates = [-365, -180, -100, -60, -30, 0, 30, 60, 100, 180, 365, 730, 1826, 3652]
    ticks = [t for t in candidates if lo <= t <= hi]
    if linear < 60:
        ticks = [t for t in ticks if abs(t) >= linear or t == 0]
    return ticks


@styled
def swimmer_plot(lanes: pl.DataFrame, spans: pl.DataFrame | None = None, markers: pl.DataFrame | None = None,
                 *, title: str | None = None, linear_days: float = 100.0) -> Figure:
    """Swimmer plot, one lane per patient.

    lanes: `patient_id`, `start_day` (first day drawn, e.g. the start of bridging, negative),
    `end_day` (last contact or death), optional `label` (text at the left of the lane).
    spans: `patient_id`, `kind` (a key of `SPANS`), `start_day`, `end_day`.
    markers: `patient_id`, `kind` (a key of `MARKERS`), `day`.
    """
    lane_rows = _rows(lanes)
    n = len(lane_rows)
    fig = Figure(figsize=(11, 1.2 + 0.55 * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    if title:
        ax.set_title(title, loc="left")
    if n == 0:
        ax.text(0.5, 0.5, "no transplanted patient in this view", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    ypos = {r["patient_id"]: n - 1 - i for i, r in enumerate(lane_rows)}
    lo = min(min((r["start_day"] for r in lane_rows if r["start_day"] is not None), default=0), 0)
    hi = max(max((r["end_day"] for r in lane_rows if r["end_day"] is not None), default=0), 1)
    for r in lane_rows:
        y = ypos[r["patient_id"]]
        s = r["start_day"] if r["start_day"] is not None else 0
        e = r["end_day"] if r["end_day"] is not None else 0
        ax.plot([s, e], [y, y], color="#9a9a9a", lw=1.2, solid_capstyle="butt", zorder=1)
    used_spans: list[str] = []
    for r in _rows(spans):
        if r["patient_id"] not in ypos or r["start_day"] is None or r["end_day"] is None:
            continue
        colour, height, _ = SPANS.get(r["kind"], ("#cccccc", 0.2, r["kind"]))
        y = ypos[r["patient_id"]]
        width = max(r["end_day"] - r["start_day"], 0.5)
        ax.barh(y, width, left=r["start_day"], height=height, color=colour, edgecolor="none", zorder=2)
        if r["kind"] not in used_spans:
            used_spans.append(r["kind"])
    used_markers: list[str] = ["infusion"]
    for y in ypos.values():
        m, c, _, off = MARKERS["infusion"]
        ax.plot([0], [y + off], marker=m, color=c, ms=5, ls="none", zorder=4)
    for r in _rows(markers):
        if r["patient_id"] not in ypos or r["day"] is None:
            continue
        kind = r["kind"]
        if kind not in MARKERS and kind.endswith("_reactivation"):
            kind = "viral_reactivation"
        m, c, _, off = MARKERS.get(kind, _OTHER)
        size = 9 if m in ("*", "X", ">") else 6
        ax.plot([r["day"]], [ypos[r["patient_id"]] + off], marker=m, color=c, ms=size, ls="none",
                markeredgecolor="white" if m not in ("x", "1") else c, markeredgewidth=0.5, zorder=5)
        if kind not in used_markers:
            used_markers.append(kind)
    ax.axvline(0, color="#222222", lw=0.8, ls=":", zorder=0)
    ax.set_xscale("symlog", linthresh=linear_days, linscale=1.6)
    span = hi - lo
    ax.set_xlim(lo - 0.12 * max(abs(lo), 10), hi + 0.1 * max(span, 10))
    ticks = _symlog_ticks(lo, hi, linear_days)
    ax.set_xticks(ticks, [f"{t:+d}" if t else "0" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(list(ypos.values()), [r.get("label") or r["patient_id"] for r in lane_rows])
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xlabel(f"days from stem-cell infusion (linear within ±{linear_days:g} days, logarithmic beyond)")
    ax.grid(axis="x", color="#eeeeee", lw=0.6, zorder=0)
    handles = [Patch(color=SPANS[k][0], label=SPANS[k][2]) for k in used_spans if k in SPANS]
    for k in used_markers:
        m, c, label, _ = MARKERS.get(k, _OTHER)
        handles.append(Line2D([], [], marker=m, color=c, ls="none", ms=7, label=label))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------- survival

def _nice_times(t_max: float, max_intervals: int = 6) -> list[float]:
    """Tick times from 0 to at least `t_max`, at most `max_intervals` steps: whole years (1, 2, 3, 4, 5 or
    10) beyond two years, else the smallest of 7/14/30/60/90/180/365 days."""
    steps = ((365.0, 730.0, 1095.0, 1461.0, 1826.0, 3652.0) if t_max >= 730
             else (7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0))
    for step in steps:
        k = math.ceil(t_max / step - 1e-9)
        if k <= max_intervals or step == steps[-1]:
            return [step * i for i in range(max(k, 1) + 1)]
    return [0.0, t_max]


def _at_risk(table: pl.DataFrame, t: float) -> int:
    later = table.filter(pl.col("time") >= t)
    return int(later["at_risk"][0]) if later.height else 0


@styled
def km_plot(curves: Mapping[str, pl.DataFrame | None], *, titles: Mapping[str, str] | None = None,
            at_risk_times: Sequence[float] | None = None, xlabel: str = "days from stem-cell infusion") -> Figure:
    """One panel per curve: the Kaplan–Meier step function with its 95% band, censoring ticks and
    a numbers-at-risk row under the axis.

    Each frame is a `KaplanMeier.table`: `time, at_risk, events, censored, estimate, lower, upper`
    (one row per distinct observed time). `None` or an empty frame draws an empty panel.
    """
    names = list(curves)
    fig = Figure(figsize=(5.2 * max(len(names), 1), 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    t_max = max((float(df["time"].max()) for df in curves.values() if df is not None and df.height), default=0.0)
    times = list(at_risk_times) if at_risk_times is not None else _nice_times(max(t_max, 1.0))
    for ax, name in zip(axes, names):
        df = curves[name]
        ax.set_title((titles or {}).get(name, name), loc="left")
        ax.set_ylim(-0.02, 1.04)
        ax.set_xlim(0, max(times[-1] if times else t_max, t_max, 1.0))
        ax.set_ylabel("probability")
        ax.grid(color="#eeeeee", lw=0.6)
        if df is None or df.height == 0:
            ax.text(0.5, 0.5, "no patient at risk", ha="center", va="center", transform=ax.transAxes)
            continue
        t = np.concatenate([[0.0], df["time"].cast(pl.Float64).to_numpy()])
        s = np.concatenate([[1.0], df["estimate"].to_numpy()])
        lo = np.concatenate([[1.0], df["lower"].to_numpy()])
        hi = np.concatenate([[1.0], df["upper"].to_numpy()])
        t_end = float(t[-1])
        ts = np.append(t, t_end)
        ax.fill_between(ts, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="#3b6fb6",
                        alpha=0.18, lw=0, label="95% CI (log-log)")
        ax.step(ts, np.append(s, s[-1]), where="post", color="#3b6fb6", lw=1.8, label="Kaplan–Meier")
        cens = df.filter(pl.col("censored") > 0)
        if cens.height:
            ax.plot(cens["time"].to_numpy(), cens["estimate"].to_numpy(), ls="none", marker="|", ms=9,
                    color="#3b6fb6", mew=1.4, label="censored")
        ax.set_xticks(times, [f"{x:g}" for x in times])
        ax.legend(loc="lower left", frameon=False, fontsize=8)
        # numbers at risk: a row of text under the axis, aligned with the ticks
        ax.text(-0.03, -0.27, "at risk", transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#444444")
        x0, x1 = ax.get_xlim()
        for x in times:
            ax.text((x - x0) / (x1 - x0), -0.27, str(_at_risk(df, x)), transform=ax.transAxes, ha="center",
                    va="top", fontsize=8)
        ax.set_xlabel(xlabel, labelpad=22)
    return fig


# ----------------------------------------------------------------------------------- blood counts

@styled
def count_trajectories(counts: pl.DataFrame, engraftment: pl.DataFrame | None = None, *,
                       anc_threshold: float = 0.5, platelet_threshold: float = 20.0,
                       transfusions: pl.DataFrame | None = None, day_range: tuple[int, int] = (-7, 60),
                       floor: float = 0.01) -> Figure:
    """Per patient (one row each), ANC and platelets against the day on a log scale.

    counts: `patient_id`, `day`, `anc`, `platelets` (×10⁹/L; the lowest value of the day).
    engraftment: `patient_id`, `neutrophil_day`, `platelet_day` (vertical marker lines).
    transfusions: `patient_id`, `day` (platelet transfusions, ticks at the bottom of the platelet panel).
    Zero values are drawn at `floor` (a log axis has no 0).
    """
    patients = counts["patient_id"].unique(maintain_order=True).to_list() if counts.height else []
    n = len(patients)
    height = 1.1 + 1.75 * max(n, 1)
    fig = Figure(figsize=(10, height))  # fixed margins: constrained layout is slow with many log axes
    fig.subplots_adjust(left=0.1, right=0.95, top=1 - 0.35 / height, bottom=0.75 / height, hspace=0.25,
                        wspace=0.18)
    if n == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no blood counts after transplant in this view", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(n, 2, squeeze=False, sharex=True)
    eng = {r["patient_id"]: r for r in _rows(engraftment)}
    trans: dict[str, list[int]] = {}
    for r in _rows(transfusions):
        trans.setdefault(r["patient_id"], []).append(r["day"])
    lo_day, hi_day = day_range
    panels = (("anc", "ANC ×10⁹/L", anc_threshold, "neutrophil_day", "#2a9d2a"),
              ("platelets", "platelets ×10⁹/L", platelet_threshold, "platelet_day", "#8e44ad"))
    for i, pid in enumerate(patients):
        rows = counts.filter((pl.col("patient_id") == pid) & pl.col("day").is_between(lo_day, hi_day)).sort("day")
        for j, (col, label, thr, eng_col, colour) in enumerate(panels):
            ax = axes[i][j]
            sub = rows.filter(pl.col(col).is_not_null())
            y = np.maximum(sub[col].cast(pl.Float64).to_numpy(), floor)
            ax.plot(sub["day"].to_numpy(), y, marker="o", ms=2.5, lw=1.0, color=colour)
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.axhline(thr, color="#555555", ls="--", lw=0.9)
            ax.text(hi_day, thr, f" {thr:g}", va="center", ha="left", fontsize=7, color="#555555")
            ax.axvline(0, color="#222222", ls=":", lw=0.8)
            day = (eng.get(pid) or {}).get(eng_col)
            if day is not None:
                ax.axvline(day, color=colour, lw=1.2, alpha=0.8)
                ax.annotate(f"day +{day}", (day, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                            textcoords="offset points", fontsize=7, color=colour)
            if col == "platelets":
                for d in trans.get(pid, []):
                    if lo_day <= d <= hi_day:
                        ax.plot([d], [0.0], marker="|", ms=8, color="#c0392b", transform=ax.get_xaxis_transform(),
                                clip_on=False)
            ax.set_xlim(lo_day, hi_day)
            ax.grid(color="#f0f0f0", lw=0.6)
            if i == 0:
                ax.set_title(label, loc="left")
            if j == 0:
                ax.set_ylabel(pid, rotation=0, ha="right", va="center", fontsize=9)
            if i == n - 1:
                ax.set_xlabel("day from stem-cell infusion")
    handles = [Line2D([], [], color="#555555", ls="--", label="engraftment threshold"),
               Line2D([], [], color="#2a9d2a", label="neutrophil engraftment day"),
               Line2D([], [], color="#8e44ad", label="platelet engraftment day"),
               Line2D([], [], color="#c0392b", marker="|", ls="none", ms=8, label="platelet transfusion")]
    fig.legend(handles=handles, loc="lower center", ncols=4, frameon=False, fontsize=8)
    return fig

