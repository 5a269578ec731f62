"""KaplanMeier vs lifelines' KaplanMeierFitter (independent implementation) on real data shipped with
lifelines: kidney transplant (Klein & Moeschberger, 863 patients), Waltons (2 groups), Rossi recidivism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_kidney_transplant, load_rossi, load_waltons
from lifelines.utils import median_survival_times

from timeline.queries.kaplan_meier import KaplanMeier

TOL = 1e-9


def _lifelines_reference(durations: np.ndarray, events: np.ndarray, alpha: float = 0.05) -> dict[str, object]:
    kmf = KaplanMeierFitter(alpha=alpha).fit(durations, events)
    med_ci = median_survival_times(kmf.confidence_interval_)
    return {
        "sf": kmf.survival_function_.iloc[:, 0],
        "lower": kmf.confidence_interval_.iloc[:, 0],
        "upper": kmf.confidence_interval_.iloc[:, 1],
        "et": kmf.event_table,
        "median": float(kmf.median_survival_time_),
        "median_lower": float(med_ci.iloc[0, 0]),
        "median_upper": float(med_ci.iloc[0, 1]),
    }


def _assert_matches_lifelines(table: pl.DataFrame, durations, events, alpha: float = 0.05) -> float:
    """Compare one group's table with lifelines at our distinct times; return the max abs difference."""
    ref = _lifelines_reference(np.asarray(durations, dtype=float), np.asarray(events, dtype=int), alpha)
    t = table["time"].cast(pl.Float64).to_numpy()
    # lifelines prepends a time-0 row when nobody has time 0: our table has observed times only
    assert np.array_equal(np.unique(np.asarray(durations, dtype=float)), t)
    et = ref["et"].loc[t]
    assert np.array_equal(et["at_risk"].to_numpy(), table["at_risk"].to_numpy())
    assert np.array_equal(et["observed"].to_numpy(), table["events"].to_numpy())
    assert np.array_equal(et["censored"].to_numpy(), table["censored"].to_numpy())
    worst = 0.0
    for ours, theirs in (("estimate", "sf"), ("lower", "lower"), ("upper", "upper")):
        a = table[ours].to_numpy()
        b = ref[theirs].loc[t].to_numpy()
        assert not np.isnan(a).any()
        diff = float(np.max(np.abs(a - b)))
        assert diff < TOL, (ours, diff)
        worst = max(worst, diff)
    return worst


def _first_at_or_below_half(curve: pd.Series) -> float:
    """The median rule applied to a lifelines curve, counting values within 1e-12 of 0.5 as 0.5."""
    hit = curve.index[curve.to_numpy() <= 0.5 + 1e-12]
    return float(hit[0]) if len(hit) else math.inf


def _assert_median_matches(km: KaplanMeier, durations, events, row: int = 0, strict: bool = False) -> None:
    """Median and limits from lifelines' curves; ``strict``: also lifelines' own median functions
    (they compare the float to 0.5 exactly, which can miss an exact 0.5 in small tied samples)."""
    ref = _lifelines_reference(np.asarray(durations, dtype=float), np.asarray(events, dtype=int))
    m = km.median_ci().row(row, named=True)
    for ours, theirs in (("median", "sf"), ("lower", "lower"), ("upper", "upper")):
        assert m[ours] == _first_at_or_below_half(ref[theirs]), (ours, m[ours])
    if strict:
        for ours, theirs in (("median", "median"), ("lower", "median_lower"), ("upper", "median_upper")):
            assert m[ours] == ref[theirs], (ours, m[ours], ref[theirs])


@pytest.fixture(scope="module")
def kidney() -> pl.DataFrame:
    d = load_kidney_transplant()
    group = np.select(
        [d.black_male == 1, d.white_male == 1, d.black_female == 1], ["black_male", "white_male", "black_female"],
        "white_female",
    )
    return pl.DataFrame(
        {"patient_id": [f"p{i}" for i in range(len(d))], "group": group, "time_days": d.time.to_numpy(),
         "status": d.death.to_numpy()}
    )


def test_kidney_transplant_matches_lifelines(kidney: pl.DataFrame) -> None:
    km = KaplanMeier().fit(kidney)
    _assert_matches_lifelines(km.table, kidney["time_days"], kidney["status"])
    assert list(km.table.columns) == ["time", "at_risk", "events", "censored", "estimate", "lower", "upper"]
    assert km.table["time"].dtype == pl.Int64
    _assert_median_matches(km, kidney["time_days"], kidney["status"], strict=True)
    assert math.isinf(km.median)  # survival stays above 0.5 in this cohort


def test_kidney_transplant_by_group_matches_lifelines(kidney: pl.DataFrame) -> None:
    km = KaplanMeier().fit(kidney, by="group")
    assert km.table.columns[0] == "group"
    groups = km.table["group"].unique(maintain_order=True).to_list()
    assert sorted(groups) == sorted(set(kidney["group"].to_list()))
    for g in groups:
        sub = kidney.filter(pl.col("group") == g)
        _assert_matches_lifelines(km.table.filter(pl.col("group") == g), sub["time_days"], sub["status"])


def test_waltons_by_group_matches_lifelines_including_medians() -> None:
    w = pl.from_pandas(load_waltons())
    km = KaplanMeier().fit(w, duration="T", event="E", by="group")
    med = km.median_ci()
    assert med.columns == ["group", "median", "lower", "upper"]
    for i, g in enumerate(med["group"].to_list()):
        sub = w.filter(pl.col("group") == g)
        _assert_matches_lifelines(km.table.filter(pl.col("group") == g), sub["T"], sub["E"])
        _assert_median_matches(km, sub["T"], sub["E"], row=i, strict=True)
    assert km.median.columns == ["group", "median"]


def test_rossi_matches_lifelines_with_alpha_and_two_group_columns() -> None:
    r = pl.from_pandas(load_rossi())
    km = KaplanMeier(alpha=0.1).fit(r, duration="week", event="arrest", by=["fin", "race"])
    assert km.table.columns[:2] == ["fin", "race"]
    for (fin, race), sub in r.group_by(["fin", "race"]):
        tab = km.table.filter((pl.col("fin") == fin) & (pl.col("race") == race))
        _assert_matches_lifelines(tab, sub["week"], sub["arrest"], alpha=0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1)), min_size=1, max_size=30),
)
def test_ties_time_zero_and_zero_survival_match_lifelines(rows: list[tuple[int, int]]) -> None:
    t = np.array([r[0] for r in rows])
    e = np.array([r[1] for r in rows])
    km = KaplanMeier().fit(pl.DataFrame({"time_days": t, "status": e}))
    _assert_matches_lifelines(km.table, t, e)
    _assert_median_matches(km, t, e)


def test_boundaries_survival_one_and_zero() -> None:
    km = KaplanMeier().fit(pl.DataFrame({"time_days": [0, 1, 2, 3], "status": [0, 1, 0, 1]}))
    tab = km.table
    assert tab.row(0, named=True) == {
        "time": 0, "at_risk": 4, "events": 0, "censored": 1, "estimate": 1.0, "lower": 1.0, "upper": 1.0
    }
    last = tab.row(-1, named=True)
    assert (last["estimate"], last["lower"], last["upper"]) == (0.0, 0.0, 0.0)
    assert tab["estimate"][1] == pytest.approx(2 / 3, abs=1e-15)


def test_status_2_is_censoring_by_default_and_refused_on_request() -> None:
    df = pl.DataFrame({"time_days": [1, 2, 2, 3, 4], "status": [1, 2, 1, 0, 2]})
    tab = KaplanMeier().fit(df).table
    assert tab["censored"].to_list() == [0, 1, 1, 1]
    assert tab["events"].to_list() == [1, 1, 0, 0]
    ref = KaplanMeier().fit(df.with_columns(pl.col("status").replace(2, 0))).table
    assert tab.equals(ref)
    with pytest.raises(ValueError, match="competing"):
        KaplanMeier(competing="error").fit(df)


def test_survival_at_and_at_are_right_continuous_steps(kidney: pl.DataFrame) -> None:
    km = KaplanMeier().fit(kidney)
    tab = km.table
    assert km.survival_at(0) == 1.0  # before the first observed time (day 1)
    assert km.survival_at(2) == tab.filter(pl.col("time") == 2)["estimate"][0]
    assert km.survival_at(2.5) == tab.filter(pl.col("time") == 2)["estimate"][0]
    assert km.survival_at(10**6) == tab["estimate"][-1]
    at = km.at([365, 0, 730])
    assert at["time"].to_list() == [365.0, 0.0, 730.0]
    row = tab.filter(pl.col("time") <= 365).row(-1, named=True)
    expected = {"time": 365.0, "estimate": row["estimate"], "lower": row["lower"], "upper": row["upper"]}
    assert at.row(0, named=True) == expected
    grouped = KaplanMeier().fit(kidney, by="group").survival_at(365)
    assert grouped.columns == ["group", "estimate"] and grouped.height == 4


def test_endpoint_filter_and_refusal_to_pool_endpoints() -> None:
    df = pl.DataFrame(
        {
            "patient_id": ["a", "b", "c", "a", "b", "c"],
            "endpoint": ["os", "os", "os", "lfs", "lfs", "lfs"],
            "time_days": [5, 8, 9, 3, 8, 9],
            "status": [1, 0, 1, 1, 1, 0],
        }
    )
    with pytest.raises(ValueError, match="several endpoints"):
        KaplanMeier().fit(df)
    os_ = KaplanMeier().fit(df, endpoint="os").table
    assert os_["time"].to_list() == [5, 8, 9]
    both = KaplanMeier().fit(df, by="endpoint").table
    assert both.filter(pl.col("endpoint") == "os").drop("endpoint").equals(os_)


@pytest.mark.parametrize(
    "df",
    [
        pl.DataFrame({"time_days": [1, -1], "status": [1, 0]}),
        pl.DataFrame({"time_days": [1, 2], "status": [1, 3]}),
        pl.DataFrame({"time_days": [1, None], "status": [1, 0]}),
        pl.DataFrame({"time_days": [], "status": []}, schema={"time_days": pl.Int64, "status": pl.Int64}),
    ],
)
def test_invalid_input_is_rejected(df: pl.DataFrame) -> None:
    with pytest.raises(ValueError):
        KaplanMeier().fit(df)


def test_variance_is_greenwood() -> None:
    df = pl.DataFrame({"time_days": [1, 2, 2, 3, 5], "status": [1, 1, 0, 1, 0]})
    v = KaplanMeier().fit(df).variance["var_log_estimate"].to_list()
    g1 = 1 / (5 * 4)
    g2 = g1 + 1 / (4 * 3)
    g3 = g2 + 1 / (2 * 1)
    assert v == pytest.approx([g1, g2, g3, g3], abs=1e-15)


def test_pandas_not_needed_for_output() -> None:
    km = KaplanMeier().fit(pl.DataFrame({"time_days": [1, 2], "status": [True, False]}))
    assert isinstance(km.table, pl.DataFrame) and not isinstance(km.table, pd.DataFrame)
    assert km.table["events"].to_list() == [1, 0]


def test_null_group_is_a_group_everywhere() -> None:
    df = pl.DataFrame({"g": ["a", None, "a", None], "time_days": [1, 2, 3, 4], "status": [1, 0, 0, 1]})
    km = KaplanMeier().fit(df, by="g")
    assert km.table["g"].to_list() == ["a", "a", None, None]
    assert km.median_ci().rows() == [("a", 1.0, 1.0, math.inf), (None, 4.0, 4.0, 4.0)]
    assert km.at([3, 9]).rows() == [
        ("a", 3.0, 0.5, km.table["lower"][0], km.table["upper"][0]),
        ("a", 9.0, 0.5, km.table["lower"][0], km.table["upper"][0]),
        (None, 3.0, 1.0, 1.0, 1.0),
        (None, 9.0, 0.0, 0.0, 0.0),
    ]
    with pytest.raises(ValueError, match="clash"):
        KaplanMeier().fit(df.rename({"g": "time"}), by="time")
