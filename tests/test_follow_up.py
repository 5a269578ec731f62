"""Median follow-up: reverse Kaplan–Meier (Schemper & Smith 1996) and the median/range summary."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_kidney_transplant
from lifelines.utils import median_survival_times

from timeline.queries.follow_up import (
    FollowUp,
    MedianFollowUp,
    follow_up_summary,
    follow_up_table,
    reverse_km_median_follow_up,
)

# Hand-made cohort: (days, died)
#   2 died, 3 alive, 5 alive, 5 died, 7 alive, 8 died, 10 alive, 12 alive
# Reverse KM (event = alive at last contact, death = censored; a death tied with a last contact stays at risk):
#   t=2 : n=8, no "event" (the death is censored)       G = 1
#   t=3 : n=7, 1 event                                  G = 6/7          = 0.857
#   t=5 : n=6, 1 event (+1 censored death)              G = 6/7 * 5/6    = 5/7   = 0.714
#   t=7 : n=4, 1 event                                  G = 5/7 * 3/4    = 15/28 = 0.536
#   t=8 : n=3, death censored                           G = 15/28
#   t=10: n=2, 1 event                                  G = 15/28 * 1/2  = 15/56 = 0.268  <= 0.5 -> median 10
#   t=12: n=1, 1 event                                  G = 0
# Greenwood sum at t=3: 1/42 -> log-log lower limit 0.857**exp(1.96*sqrt(1/42)/ln 0.857) = 0.334 <= 0.5
#   -> lower limit of the median = 3.
# Upper limits: t=3 0.979, t=5 0.920, t=7 0.825, t=10 0.670 (Greenwood 1/42+1/30+1/12+1/2), t=12: G=0 -> 0
#   -> upper limit of the median = 12 (lifelines convention; R's survfit gives NA there).
HAND = pl.DataFrame(
    {
        "patient_id": list("abcdefgh"),
        "time_days": [2, 3, 5, 5, 7, 8, 10, 12],
        "status": [1, 0, 0, 1, 0, 1, 0, 0],
    }
)


def test_reverse_km_median_by_hand() -> None:
    m = reverse_km_median_follow_up(HAND)
    assert isinstance(m, MedianFollowUp)
    assert m == (10.0, 3.0, 12.0)
    median, lower, upper = m
    assert (median, lower, upper) == (m.median, m.lower, m.upper)


def test_reverse_km_curve_values_by_hand() -> None:
    from timeline.queries.kaplan_meier import KaplanMeier

    reversed_ = HAND.with_columns(alive=(pl.col("status") == 0).cast(pl.Int64))
    tab = KaplanMeier().fit(reversed_, event="alive").table
    expected = [1.0, 6 / 7, 5 / 7, 15 / 28, 15 / 28, 15 / 56, 0.0]
    assert tab["estimate"].to_list() == pytest.approx(expected, abs=1e-15)
    z = 1.959963984540054
    s, v = 6 / 7, 1 / 42
    assert tab["lower"][1] == pytest.approx(s ** math.exp(-z * math.sqrt(v) / math.log(s)), abs=1e-15)
    assert tab["lower"][1] == pytest.approx(0.3341, abs=1e-4)


def test_summary_median_and_range_by_hand() -> None:
    f = follow_up_summary(HAND)
    assert isinstance(f, FollowUp)
    assert f == FollowUp(
        n=8,
        deaths=3,
        median_reverse_km=10.0,
        lower_reverse_km=3.0,
        upper_reverse_km=12.0,
        median_all=6.0,  # 2 3 5 5 | 7 8 10 12 -> (5 + 7) / 2
        min_all=2.0,
        max_all=12.0,
        median_survivors=7.0,  # 3 5 7 10 12
        min_survivors=3.0,
        max_survivors=12.0,
    )
    assert f.as_dict()["median_all"] == 6.0


def test_reverse_km_matches_lifelines_on_kidney_transplant() -> None:
    d = load_kidney_transplant()
    df = pl.DataFrame({"time_days": d.time.to_numpy(), "status": d.death.to_numpy()})
    kmf = KaplanMeierFitter().fit(d.time, 1 - d.death)
    ci = median_survival_times(kmf.confidence_interval_)
    m = reverse_km_median_follow_up(df)
    assert m == (kmf.median_survival_time_, ci.iloc[0, 0], ci.iloc[0, 1])
    assert m.lower <= m.median <= m.upper


def test_follow_up_table_by_group_and_endpoint_filter() -> None:
    two = pl.concat(
        [
            HAND.with_columns(arm=pl.lit("A"), endpoint=pl.lit("os")),
            HAND.with_columns(arm=pl.lit("B"), endpoint=pl.lit("os"), time_days=pl.col("time_days") * 2),
            HAND.with_columns(arm=pl.lit("A"), endpoint=pl.lit("lfs")),
        ]
    )
    tab = follow_up_table(two, by="arm", endpoint="os")
    assert tab.columns[0] == "arm" and tab["arm"].to_list() == ["A", "B"]
    a, b = tab.row(0, named=True), tab.row(1, named=True)
    assert (a["median_reverse_km"], a["median_all"], a["max_all"]) == (10.0, 6.0, 12.0)
    assert (b["median_reverse_km"], b["median_all"], b["min_all"], b["max_all"]) == (20.0, 12.0, 4.0, 24.0)
    with pytest.raises(ValueError, match="several endpoints"):
        follow_up_summary(two)


def test_all_dead_has_no_survivor_range_and_reverse_km_not_reached() -> None:
    f = follow_up_summary(pl.DataFrame({"time_days": [1, 4, 9], "status": [1, 1, 1]}))
    assert (f.median_all, f.min_all, f.max_all) == (4.0, 1.0, 9.0)
    assert f.median_survivors is None and f.max_survivors is None
    assert math.isinf(f.median_reverse_km)


def test_died_must_be_zero_or_one() -> None:
    with pytest.raises(ValueError, match="status"):
        reverse_km_median_follow_up(pl.DataFrame({"time_days": [1, 2], "status": [2, 0]}))


def test_times_are_floats_for_integer_days() -> None:
    f = follow_up_table(HAND)
    assert f.schema["median_all"] == pl.Float64 and f.schema["n"] == pl.Int64
    assert np.isfinite(f["median_reverse_km"][0])
