"""The report's figures as a paper needs them (issue 13, point 4), checked on the drawn artists: numbers at
risk right under the axis, no legend entry for a band that is not drawn, a percent axis, the swimmer plot's
linear (default) or symlog day axis with ticks covering the data, count labels off the data and zeros shown
as zeros, cumulative-incidence figures, and a survival headline at 1 and 2 years."""

from __future__ import annotations

import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from timeline.queries import figures as F
from timeline.queries.report import Report, build_report, incidence_panels, render_figures


@pytest.fixture(scope="module")
def figs(seed_report: Report):
    out = render_figures(seed_report)
    for fig in out.values():
        FigureCanvasAgg(fig).draw()
    return out


def _texts(ax, gid):
    return [t for t in ax.texts if t.get_gid() == gid]


def _curve_axes(fig):
    return [ax for ax in fig.axes if ax.axison and _texts(ax, "at-risk")]


@pytest.mark.parametrize("stem", ["survival", "incidence"])
def test_numbers_at_risk_sit_right_under_the_axis(figs, stem):
    fig = figs[stem]
    renderer = fig.canvas.get_renderer()
    axes = _curve_axes(fig)
    assert len(axes) == 4
    for ax in axes:
        ticks_bottom = min(t.get_window_extent(renderer).y0 for t in ax.get_xticklabels() if t.get_text())
        rows = sorted({round(t.get_window_extent(renderer).y1, 1) for t in _texts(ax, "at-risk")}, reverse=True)
        assert 0 < ticks_bottom - rows[0] <= 8, (ticks_bottom, rows)  # pixels (100 dpi): just below the labels
        risk_bottom = min(t.get_window_extent(renderer).y0 for t in _texts(ax, "at-risk"))
        assert ax.xaxis.label.get_window_extent(renderer).y1 <= risk_bottom  # the axis label comes after them
        times = [float(t) for t in ax.get_xticks()]
        assert len(_texts(ax, "at-risk")) == len(times) * len(rows)


def test_no_legend_entry_for_a_band_not_drawn(figs):
    titles = {ax.get_title(loc="left"): ax for ax in _curve_axes(figs["survival"])}
    os_labels = [t.get_text() for t in titles["Overall survival (OS)"].get_legend().get_texts()]
    assert "95% CI" not in os_labels and "Kaplan–Meier" in os_labels  # S = 1 throughout: no band
    grfs = titles["GVHD-free, relapse-free survival (GRFS)"]
    assert "95% CI" in [t.get_text() for t in grfs.get_legend().get_texts()] and grfs.collections


def test_percent_axis_option(seed_report: Report):
    fig = render_figures(seed_report, percent=True)["incidence"]
    FigureCanvasAgg(fig).draw()
    ax = _curve_axes(fig)[0]
    labels = {round(v, 2): t.get_text() for v, t in zip(ax.get_yticks(), ax.get_yticklabels())}
    assert labels[1.0] == "100" and labels[0.2] == "20" and ax.get_ylabel().endswith("(%)")


def test_incidence_figure_has_relapse_against_nrm_and_the_complications(figs, seed_report: Report):
    titles = [ax.get_title(loc="left") for ax in _curve_axes(figs["incidence"])]
    assert titles == ["Relapse and non-relapse mortality (NRM)", "Acute GVHD grade II–IV", "Chronic GVHD",
                      "CMV reactivation"]
    first = _curve_axes(figs["incidence"])[0]
    assert [t.get_text() for t in _texts(first, "at-risk-label")] == ["relapse", "NRM"]
    cmv = seed_report.incidence["cmv_reactivation"]
    assert cmv is not None and cmv["estimate"].max() == pytest.approx(0.8)  # 4 of 5 patients, no censoring before
    assert list(incidence_panels(seed_report.incidence)) == titles


def test_swimmer_axis_is_linear_by_default_symlog_on_request_and_ticks_cover_the_data(seed_report: Report):
    lanes = seed_report.swimmer_lanes
    lo, hi = int(lanes["start_day"].min()), int(lanes["end_day"].max())
    for scale in ("linear", "symlog"):
        fig = F.swimmer_plot(lanes, seed_report.swimmer_spans, seed_report.swimmer_markers, scale=scale)
        ax = fig.axes[0]
        assert ax.get_xscale() == scale
        ticks = ax.get_xticks()
        assert ticks[0] <= lo and ticks[-1] >= hi, (scale, ticks, lo, hi)
        x0, x1 = ax.get_xlim()
        assert x0 <= ticks[0] and x1 >= ticks[-1]
    with pytest.raises(ValueError, match="linear"):
        F.swimmer_plot(lanes, scale="log")


@pytest.mark.parametrize(("lo", "hi", "scale"), [(-115, 1015, "linear"), (-3, 12, "linear"), (0, 5000, "linear"),
                                                 (-115, 1015, "symlog"), (-900, 4000, "symlog"), (0, 1, "symlog")])
def test_day_ticks_cover_the_range(lo, hi, scale):
    ticks = F.day_ticks(lo, hi, scale)
    assert ticks[0] <= lo and ticks[-1] >= hi and ticks == sorted(set(ticks)) and 0 in ticks
    assert len(ticks) <= 16


def test_count_labels_never_overprint_data_and_zeros_are_shown(figs, seed_report: Report):
    fig = figs["counts"]
    renderer = fig.canvas.get_renderer()
    labelled = 0
    for ax in fig.axes:
        area = ax.get_window_extent(renderer)
        for t in ax.texts:
            box = t.get_window_extent(renderer)
            assert not box.overlaps(area) or box.y0 >= area.y1 or box.x0 >= area.x1, t.get_text()
            labelled += 1
    assert labelled >= 20  # a threshold label per panel and the engraftment days
    zeros = seed_report.counts.filter(pl.col("anc") == 0)
    assert zeros.height >= 1  # JH-04 has an ANC of 0 in the seed
    drawn = [line for ax in fig.axes for line in ax.lines if line.get_gid() == "zero-count" and len(line.get_xdata())]
    assert sorted(int(x) for line in drawn for x in line.get_xdata()) == sorted(zeros["day"].to_list())
    for line in drawn:
        ax = line.axes
        zero_tick = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())))
        assert zero_tick[line.get_ydata()[0]] == "0"


def test_survival_headline_is_at_one_and_two_years_never_the_last_observed_time(seed_report: Report, seed_timeline):
    rows = seed_report.outcomes.filter(pl.col("outcome").str.contains("survival at"))["outcome"].to_list()
    assert rows == ["Overall survival at 1 year", "Overall survival at 2 years",
                    "Event-free (failure-free) survival at 1 year", "Event-free (failure-free) survival at 2 years"]
    assert not seed_report.outcomes.filter(pl.col("value").str.contains("last observed")).height
    early = build_report(seed_timeline, as_of="2024-06-01")  # the longest follow-up is short of 2 years
    longest = early.survival["os"]["time"].max()
    assert longest < 730
    row = early.outcomes.filter(pl.col("outcome") == "Overall survival at 2 years")["value"].to_list()
    assert row == [f"not estimable: the longest follow-up is day {longest}"]
