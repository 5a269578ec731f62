"""Figures of the outcomes report (matplotlib, deterministic output).

Each function takes polars frames (read from the projections by `timeline.queries.report`) and returns a
matplotlib `Figure`; nothing here reads the store or computes a clinical rule. `save_figure` writes PNG
and SVG byte-for-byte reproducibly (fixed SVG hash salt, no dates in the metadata), and `svg_markup`
returns the SVG text for inline embedding in HTML (ids prefixed so several figures can share one page).

* `swimmer_plot`: one lane per patient from the start of bridging to the last contact (day 0 = the
  infusion): blinatumomab cycles and conditioning as bars, GVHD episodes as thin bars, engraftment and
  complication markers, last follow-up (alive) or death. The day axis is linear (default) or symlog
  (linear around day 0, logarithmic beyond ±`linear_days`); its ticks always cover the data (`day_ticks`).
* `curves_plot` (`km_plot`, `cif_plot`): Kaplan–Meier or cumulative-incidence step functions, several per
  panel, with the 95% band (drawn, and in the legend, only where it has a width), censoring ticks, the
  numbers at risk right under the axis (one row per curve), optionally a percent axis.
* `count_trajectories`: ANC and platelets per patient against the day, log scale, the engraftment
  thresholds dashed, the engraftment day marked, platelet transfusions as ticks, zero counts on a line
  labelled 0; labels sit outside the data area so they never overprint a value.

The style is set for each call (`styled`), never on import.
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
from matplotlib.ticker import NullLocator

__all__ = ["swimmer_plot", "km_plot", "cif_plot", "curves_plot", "day_ticks", "count_trajectories", "save_figure", "svg_markup", "inline_svg", "MARKERS"]

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

#: day ticks of the symlog axis (round clinical days and whole years)
_SYMLOG_TICKS = (-730, -365, -100, -30, 0, 30, 100, 180, 365, 730, 1095, 1826, 3652)


def day_ticks(lo: float, hi: float, scale: str = "linear", linear_days: float = 100.0) -> list[int]:
    """Day ticks whose first is at or before `lo` and whose last is at or after `hi` (the ticks cover the
    data). Linear: a round step (7, 14, 30, 60, 90, 180, 365 or whole years) giving at most 12 ticks, with 0
    among them; symlog: round clinical days (0, ±30, ±100, 1 year, …) from the last at or before `lo` to the
    first at or after `hi`, beyond ±`linear_days` only where they are apart on the log part."""
    if scale == "symlog":
        below = [t for t in _SYMLOG_TICKS if t <= lo]
        above = [t for t in _SYMLOG_TICKS if t >= hi]
        first = below[-1] if below else 365 * math.floor(lo / 365)
        last = above[0] if above else 365 * math.ceil(hi / 365)
        inner = [t for t in _SYMLOG_TICKS if first < t < last and (abs(t) >= min(linear_days, 30) or t == 0)]
        return [int(first), *inner, int(last)]
    span = max(hi - lo, 1.0)
    for step in (7, 14, 30, 60, 90, 180, 365, 730, 1461, 3652):
        a, b = step * math.floor(lo / step), step * math.ceil(hi / step)
        if (b - a) / step <= 11 or step == 3652:
            return list(range(int(a), int(b) + 1, step))
    return [int(lo), int(lo + span)]


@styled
def swimmer_plot(lanes: pl.DataFrame, spans: pl.DataFrame | None = None, markers: pl.DataFrame | None = None,
                 *, title: str | None = None, scale: str = "linear", linear_days: float = 100.0) -> Figure:
    """Swimmer plot, one lane per patient, on a day axis that is linear (default) or, with
    `scale="symlog"`, linear within ±`linear_days` and logarithmic beyond; the ticks cover the data.

    lanes: `patient_id`, `start_day` (first day drawn, e.g. the start of bridging, negative),
    `end_day` (last contact or death), optional `label` (text at the left of the lane).
    spans: `patient_id`, `kind` (a key of `SPANS`), `start_day`, `end_day`.
    markers: `patient_id`, `kind` (a key of `MARKERS`), `day`.
    """
    if scale not in ("linear", "symlog"):
        raise ValueError(f"scale must be 'linear' or 'symlog', got {scale!r}")
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
    days = [d for r in lane_rows for d in (r["start_day"], r["end_day"]) if d is not None]
    days += [d for r in _rows(spans) for d in (r["start_day"], r["end_day"]) if d is not None and r["patient_id"] in ypos]
    days += [r["day"] for r in _rows(markers) if r["day"] is not None and r["patient_id"] in ypos]
    lo, hi = min([*days, 0]), max([*days, 1])
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
    ticks = day_ticks(lo, hi, scale, linear_days)
    if scale == "symlog":
        ax.set_xscale("symlog", linthresh=linear_days, linscale=1.6)
        ax.set_xlabel(f"days from stem-cell infusion (linear within ±{linear_days:g} days, logarithmic beyond)")
    else:
        ax.set_xlabel("days from stem-cell infusion")
    pad = 0.01 * (ticks[-1] - ticks[0])
    ax.set_xlim(ticks[0] - pad, ticks[-1] + pad)
    ax.set_xticks(ticks, [f"{t:+d}" if t else "0" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(list(ypos.values()), [r.get("label") or r["patient_id"] for r in lane_rows])
    ax.set_ylim(-0.8, n - 0.2)
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


#: curve colours, in order (colour-blind safe: Okabe–Ito)
CURVE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: censoring times marked on a curve at most (a large cohort's ticks would hide the curve)
MAX_CENSORING_TICKS = 80
#: gap between the tick labels and the first row of numbers at risk, and between rows (points)
_RISK_GAP, _RISK_ROW = 3.0, 10.0


def _drawn_band(lo: np.ndarray, hi: np.ndarray) -> bool:
    """A confidence band is drawn only where it has a width (a band of zero width gets no legend entry)."""
    return bool(np.any(np.abs(hi - lo) > 1e-12))


def _risk_rows(ax: Any, fig: Figure, rows: Sequence[tuple[str, str, pl.DataFrame]], times: Sequence[float]) -> None:
    """Numbers at risk right under the axis: one row per curve, just below the tick labels (offsets in
    points from the axis, so the rows sit there at any figure size); the axis label goes below them."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    labels = ax.xaxis.get_majorticklabels()
    tick_pad = ax.xaxis.get_tick_padding() + (labels[0].get_fontsize() if labels else 9.0) * 1.3
    base = blended_transform_factory(ax.transData, ax.transAxes)
    for i, (name, colour, table) in enumerate(rows):
        down = (tick_pad + _RISK_GAP + _RISK_ROW * i) / 72.0
        shift = base + ScaledTranslation(0, -down, fig.dpi_scale_trans)
        label_t = ax.transAxes + ScaledTranslation(-18 / 72.0, -down, fig.dpi_scale_trans)
        ax.text(0, 0, name if len(rows) > 1 else "at risk", transform=label_t, ha="right", va="top", fontsize=7.5,
                color=colour, gid="at-risk-label")
        for x in times:
            ax.text(x, 0, str(_at_risk(table, x)), transform=shift, ha="center", va="top", fontsize=7.5,
                    color=colour, gid="at-risk")
    ax.xaxis.labelpad = _RISK_GAP + _RISK_ROW * len(rows) + 2


@styled
def curves_plot(panels: Mapping[str, Mapping[str, pl.DataFrame | None]], *, kind: str = "km",
                at_risk_times: Sequence[float] | None = None, percent: bool = False,
                xlabel: str = "days from stem-cell infusion", ncols: int | None = None) -> Figure:
    """One panel per entry of `panels` (title -> {curve label -> estimator table}): step functions with
    their 95% band (drawn, and in the legend, only where it has a width), censoring ticks, and the numbers
    at risk right under the axis (one row per curve).

    `kind`: "km" (survival, from 1; tables of `KaplanMeier`) or "cif" (cumulative incidence, from 0; tables
    of `AalenJohansen`). `percent`: the y axis in percent (0–100 %) instead of probabilities.
    """
    from matplotlib.ticker import PercentFormatter

    if kind not in ("km", "cif"):
        raise ValueError(f"kind must be 'km' or 'cif', got {kind!r}")
    names = list(panels)
    cols = ncols or min(max(len(names), 1), 2)
    nrows = math.ceil(max(len(names), 1) / cols)
    n_curves = max((len(c) for c in panels.values()), default=1)
    fig = Figure(figsize=(5.4 * cols, (3.6 + 0.16 * n_curves) * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    tables = [df for c in panels.values() for df in c.values() if df is not None and df.height]
    t_max = max((float(df["time"].max()) for df in tables), default=0.0)
    times = list(at_risk_times) if at_risk_times is not None else _nice_times(max(t_max, 1.0))
    start = 1.0 if kind == "km" else 0.0
    for ax in axes[len(names):]:
        ax.set_axis_off()
    for ax, name in zip(axes, names):
        ax.set_title(name, loc="left")
        ax.set_ylim(-0.02, 1.04)
        ax.set_xlim(0, max(times[-1] if times else t_max, t_max, 1.0))
        ax.set_ylabel(("survival" if kind == "km" else "cumulative incidence") + (" (%)" if percent else ""))
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0, symbol=""))
        ax.grid(color="#eeeeee", lw=0.6)
        ax.set_xticks(times, [f"{x:g}" for x in times])
        risk: list[tuple[str, str, pl.DataFrame]] = []
        ticked = False
        for i, (label, df) in enumerate(panels[name].items()):
            colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            if df is None or df.height == 0:
                continue
            t = np.concatenate([[0.0], df["time"].cast(pl.Float64).to_numpy()])
            est = np.concatenate([[start], df["estimate"].to_numpy()])
            lo = np.concatenate([[start], df["lower"].to_numpy()])
            hi = np.concatenate([[start], df["upper"].to_numpy()])
            ts = np.append(t, t[-1])
            if _drawn_band(lo, hi):
                ax.fill_between(ts, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color=colour,
                                alpha=0.15, lw=0, label=f"{label}: 95% CI" if len(panels[name]) > 1 else "95% CI")
            ax.step(ts, np.append(est, est[-1]), where="post", color=colour, lw=1.8, label=label)
            cens = df.filter(pl.col("censored") > 0)
            if 0 < cens.height <= MAX_CENSORING_TICKS:
                ax.plot(cens["time"].to_numpy(), cens["estimate"].to_numpy(), ls="none", marker="|", ms=8,
                        color=colour, mew=1.2)
                ticked = True
            risk.append((label, colour, df))
        if not risk:
            ax.text(0.5, 0.5, "no patient at risk", ha="center", va="center", transform=ax.transAxes)
        else:
            handles, labels = ax.get_legend_handles_labels()
            if ticked:
                handles.append(Line2D([], [], ls="none", marker="|", ms=8, color="#444444", mew=1.2))
                labels.append("censored")
            ax.legend(handles, labels, loc="upper right" if kind == "cif" else "lower left", frameon=False,
                      fontsize=7.5)
            _risk_rows(ax, fig, risk, times)
        ax.set_xlabel(xlabel)
    return fig


def km_plot(curves: Mapping[str, pl.DataFrame | None], *, titles: Mapping[str, str] | None = None,
            at_risk_times: Sequence[float] | None = None, xlabel: str = "days from stem-cell infusion",
            percent: bool = False) -> Figure:
    """One panel per Kaplan–Meier table (`KaplanMeier.table`), titled by `titles`; see `curves_plot`."""
    panels = {(titles or {}).get(k, k): {"Kaplan–Meier": df} for k, df in curves.items()}
    return curves_plot(panels, kind="km", at_risk_times=at_risk_times, percent=percent, xlabel=xlabel)


def cif_plot(panels: Mapping[str, Mapping[str, pl.DataFrame | None]], *, percent: bool = False,
             at_risk_times: Sequence[float] | None = None) -> Figure:
    """Cumulative incidence panels (`AalenJohansen.table` per curve, e.g. relapse and NRM in one panel)."""
    return curves_plot(panels, kind="cif", at_risk_times=at_risk_times, percent=percent)


# ----------------------------------------------------------------------------------- blood counts

@styled
def count_trajectories(counts: pl.DataFrame, engraftment: pl.DataFrame | None = None, *,
                       anc_threshold: float = 0.5, platelet_threshold: float = 20.0,
                       transfusions: pl.DataFrame | None = None, day_range: tuple[int, int] = (-7, 60),
                       floor: float | None = None) -> Figure:
    """Per patient (one row each), ANC and platelets against the day on a log scale.

    counts: `patient_id`, `day`, `anc`, `platelets` (×10⁹/L; the lowest value of the day).
    engraftment: `patient_id`, `neutrophil_day`, `platelet_day` (vertical marker lines).
    transfusions: `patient_id`, `day` (platelet transfusions, ticks at the bottom of the platelet panel).

    A log axis has no 0: a count of zero is drawn as an open marker on a bottom line labelled "0" (at
    `floor`, by default a decade below the lowest positive count), so it reads as zero, not as a small value.
    No label sits on the data: the threshold values are written in the right margin and the engraftment days
    above the panel.
    """
    patients = counts["patient_id"].unique(maintain_order=True).to_list() if counts.height else []
    n = len(patients)
    height = 1.1 + 1.9 * max(n, 1)
    fig = Figure(figsize=(10, height))  # fixed margins: constrained layout is slow with many log axes
    fig.subplots_adjust(left=0.1, right=0.93, top=1 - 0.4 / height, bottom=0.75 / height, hspace=0.42,
                        wspace=0.22)
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
    for j, (col, label, thr, eng_col, colour) in enumerate(panels):
        shown = counts.filter(pl.col("day").is_between(lo_day, hi_day))[col].drop_nulls()
        positive = shown.filter(shown > 0)
        low = float(positive.min()) if positive.len() else thr
        zero_at = floor if floor is not None else 10 ** (math.floor(math.log10(min(low, thr))) - 1)
        top = max(float(shown.max()) if shown.len() else thr, thr) * 1.6
        for i, pid in enumerate(patients):
            ax = axes[i][j]
            sub = counts.filter((pl.col("patient_id") == pid) & pl.col("day").is_between(lo_day, hi_day)
                                & pl.col(col).is_not_null()).sort("day")
            y = sub[col].cast(pl.Float64).to_numpy()
            x = sub["day"].to_numpy()
            ax.plot(x, np.maximum(y, zero_at), lw=1.0, color=colour, zorder=2)
            ax.plot(x[y > 0], y[y > 0], ls="none", marker="o", ms=2.5, color=colour, zorder=3)
            ax.plot(x[y <= 0], np.full(int((y <= 0).sum()), zero_at), ls="none", marker="o", ms=3.5,
                    markerfacecolor="white", markeredgecolor=colour, zorder=3, gid="zero-count")
            ax.set_yscale("log")
            ax.set_ylim(zero_at / 1.6, top)
            decades = [10.0 ** k for k in range(math.ceil(math.log10(zero_at)) + 1, math.floor(math.log10(top)) + 1)]
            ax.set_yticks([zero_at, *decades], ["0", *(f"{d:g}" for d in decades)])
            ax.yaxis.set_minor_locator(NullLocator())
            ax.axhline(zero_at, color="#bbbbbb", lw=0.6, zorder=1)
            ax.axhline(thr, color="#555555", ls="--", lw=0.9, zorder=1)
            ax.text(1.01, thr, f"{thr:g}", transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=7,
                    color="#555555", clip_on=False, gid="threshold-label")
            ax.axvline(0, color="#222222", ls=":", lw=0.8)
            day = (eng.get(pid) or {}).get(eng_col)
            if day is not None:
                ax.axvline(day, color=colour, lw=1.2, alpha=0.8)
                if lo_day <= day <= hi_day:
                    ax.text(day, 1.02, f"day +{day}", transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                            fontsize=7, color=colour, clip_on=False, gid="engraftment-label")
            if col == "platelets":
                for d in trans.get(pid, []):
                    if lo_day <= d <= hi_day:
                        ax.plot([d], [0.0], marker="|", ms=8, color="#c0392b", transform=ax.get_xaxis_transform(),
                                clip_on=False)
            ax.set_xlim(lo_day, hi_day)
            ax.grid(color="#f0f0f0", lw=0.6)
            if i == 0:
                ax.set_title(label, loc="left", pad=12)
            if j == 0:
                ax.set_ylabel(pid, rotation=0, ha="right", va="center", fontsize=9)
            if i == n - 1:
                ax.set_xlabel("day from stem-cell infusion")
    handles = [Line2D([], [], color="#555555", ls="--", label="engraftment threshold"),
               Line2D([], [], color="#2a9d2a", label="neutrophil engraftment day"),
               Line2D([], [], color="#8e44ad", label="platelet engraftment day"),
               Line2D([], [], color="#c0392b", marker="|", ls="none", ms=8, label="platelet transfusion"),
               Line2D([], [], color="#777777", marker="o", ls="none", ms=4, markerfacecolor="white",
                      label="count of 0")]
    fig.legend(handles=handles, loc="lower center", ncols=5, frameon=False, fontsize=8)
    return fig
