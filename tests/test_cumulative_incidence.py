"""AalenJohansen vs scikit-survival's ``cumulative_incidence_competing_risks`` (estimate, Aalen variance,
log-log limits; an independent O(T^2) implementation) on real competing-risks data shipped with
scikit-survival, on hypothesis data full of ties and day-0 events, and the identity
CI(relapse) + CI(NRM) + KM(LFS) = 1.

Real data used:
* ``bmt`` (sksurv.datasets.load_bmt; cmprsk's example, 35 transplant patients, times in months with
  day-0 events): status 1 / 2 as shipped.
* ``cgvhd`` (sksurv.datasets.load_cgvhd; Pintilie 2006, 100 patients, years): cause 1 = chronic GVHD,
  causes 2 and 3 (relapse, death) merged into status 2 — cause 1's Aalen–Johansen estimate and Aalen variance
  depend on the other causes only through their sum, so sksurv run on the original 0–3 coding is the oracle.
* ``actg320`` (the AIDS Clinical Trials Group 320 data set shipped with sksurv, 1,151 patients, days):
  constructed competing risks — cause 1 = AIDS diagnosis, cause 2 = death without prior AIDS (``censor``
  = 1, ``censor_d`` = 1 and ``time == time_d``); compared overall and by treatment arm.

scikit-survival keeps every distinct observed time (time 0 included, censoring-only times included) and
processes all events at one time together, as we do: tables are compared row for row, times must be equal.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
import sksurv.datasets
from hypothesis import given, settings
from hypothesis import strategies as st
from sksurv.datasets import load_bmt, load_cgvhd
from sksurv.io import loadarff
from sksurv.nonparametric import cumulative_incidence_competing_risks

from timeline.queries.cumulative_incidence import AalenJohansen
from timeline.queries.kaplan_meier import KaplanMeier

TOL = 1e-9


def _assert_matches_sksurv(table: pl.DataFrame, status: np.ndarray, time: np.ndarray) -> float:
    """``status`` in sksurv coding (0 censored, 1..k causes, cause 1 of interest)."""
    t, cif, ci = cumulative_incidence_competing_risks(np.asarray(status, dtype=np.int64), np.asarray(time),
                                                      conf_type="log-log")
    assert np.array_equal(table["time"].to_numpy(), t)
    worst = 0.0
    for col, ref in (("estimate", cif[1]), ("lower", ci[1, 0]), ("upper", ci[1, 1])):
        ours = table[col].to_numpy()
        assert not np.isnan(ours).any()
        diff = float(np.max(np.abs(ours - ref)))
        assert diff < TOL, (col, diff)
        worst = max(worst, diff)
    return worst


def _counts_match(table: pl.DataFrame, status: np.ndarray, time: np.ndarray) -> None:
    for row in table.iter_rows(named=True):
        at_t = status[time == row["time"]]
        assert row["at_risk"] == int(np.sum(time >= row["time"]))
        assert row["events"] == int(np.sum(at_t == 1))
        assert row["competing"] == int(np.sum(at_t >= 2))
        assert row["censored"] == int(np.sum(at_t == 0))


def _actg320() -> pl.DataFrame:
    path = os.path.join(os.path.dirname(sksurv.datasets.__file__), "data", "actg320.arff")
    d = loadarff(path)
    censor = d["censor"].astype(int).to_numpy()
    censor_d = d["censor_d"].astype(int).to_numpy()
    time = d["time"].to_numpy().astype(np.int64)
    death_first = (censor == 1) & (censor_d == 1) & (d["time"].to_numpy() == d["time_d"].to_numpy())
    status = np.where(death_first, 2, censor)
    return pl.DataFrame({"tx": d["tx"].astype(str).to_numpy(), "time_days": time, "status": status})


@pytest.mark.parametrize("loader", [load_bmt, load_cgvhd], ids=["bmt", "cgvhd"])
def test_real_competing_risks_data_match_sksurv(loader) -> None:
    _, y = loader()
    status = np.asarray(y["status"]).astype(np.int64)
    time = np.asarray(y["ftime"])
    df = pl.DataFrame({"time_days": time, "status": np.minimum(status, 2)})
    aj = AalenJohansen().fit(df)
    assert aj.table.columns == ["time", "at_risk", "events", "competing", "censored", "estimate", "lower", "upper"]
    _assert_matches_sksurv(aj.table, status, time)
    _counts_match(aj.table, status, time)


def test_bmt_keeps_day_zero_events() -> None:
    _, y = load_bmt()
    df = pl.DataFrame({"time_days": np.asarray(y["ftime"]), "status": np.asarray(y["status"]).astype(np.int64)})
    first = AalenJohansen().fit(df).table.row(0, named=True)
    assert first["time"] == 0.0 and first["at_risk"] == 35
    assert first["events"] >= 1 and first["estimate"] == pytest.approx(first["events"] / 35, abs=1e-15)


def test_actg320_overall_and_by_arm_match_sksurv() -> None:
    df = _actg320()
    assert df["status"].value_counts().sort("status")["count"].to_list() == [1055, 79, 17]
    aj = AalenJohansen().fit(df)
    _assert_matches_sksurv(aj.table, df["status"].to_numpy(), df["time_days"].to_numpy())
    by = AalenJohansen().fit(df, by="tx")
    assert by.table.columns[0] == "tx"
    for arm in ("0", "1"):
        sub = df.filter(pl.col("tx") == arm)
        tab = by.table.filter(pl.col("tx") == arm).drop("tx")
        _assert_matches_sksurv(tab, sub["status"].to_numpy(), sub["time_days"].to_numpy())
        _counts_match(tab, sub["status"].to_numpy(), sub["time_days"].to_numpy())


_ROWS = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), min_size=0, max_size=40)


# sksurv's own variance can round to a tiny negative number (it warns in sqrt and then uses sigma = 0)
@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
@settings(max_examples=100, deadline=None)
@given(_ROWS, st.integers(0, 6), st.integers(0, 6))
def test_ties_and_day_zero_events_match_sksurv(rows, t1: int, t2: int) -> None:
    # sksurv requires every cause to appear at least once: add one cause-1 and one cause-2 subject
    rows = [*rows, (t1, 1), (t2, 2)]
    time = np.array([r[0] for r in rows], dtype=np.int64)
    status = np.array([r[1] for r in rows], dtype=np.int64)
    aj = AalenJohansen().fit(pl.DataFrame({"time_days": time, "status": status}))
    _assert_matches_sksurv(aj.table, status, time)
    assert aj.table["at_risk"][0] == len(rows)


_OUTCOME = st.sampled_from(["relapse", "nrm", "censored"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), _OUTCOME), min_size=1, max_size=50))
def test_relapse_plus_nrm_plus_lfs_is_one(subjects) -> None:
    time = [s[0] for s in subjects]
    outcome = [s[1] for s in subjects]
    code = {"relapse": {"relapse": 1, "nrm": 2, "censored": 0},
            "nrm": {"relapse": 2, "nrm": 1, "censored": 0},
            "lfs": {"relapse": 1, "nrm": 1, "censored": 0}}
    endpoints = pl.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(len(subjects))] * 3,
            "endpoint": ["relapse"] * len(subjects) + ["nrm"] * len(subjects) + ["lfs"] * len(subjects),
            "time_days": time * 3,
            "status": [code[e][o] for e in ("relapse", "nrm", "lfs") for o in outcome],
        }
    )
    rel = AalenJohansen().fit(endpoints, endpoint="relapse").table
    nrm = AalenJohansen().fit(endpoints, endpoint="nrm").table
    lfs = KaplanMeier().fit(endpoints, endpoint="lfs").table
    assert rel["time"].equals(nrm["time"]) and rel["time"].equals(lfs["time"])
    total = rel["estimate"].to_numpy() + nrm["estimate"].to_numpy() + lfs["estimate"].to_numpy()
    assert np.max(np.abs(total - 1.0)) <= 1e-12
    # and at arbitrary times through the step lookups
    grid = np.arange(-1, 12, 0.5)
    aj_r = AalenJohansen().fit(endpoints, endpoint="relapse").at(grid)["estimate"].to_numpy()
    aj_n = AalenJohansen().fit(endpoints, endpoint="nrm").at(grid)["estimate"].to_numpy()
    km = KaplanMeier().fit(endpoints, endpoint="lfs").at(grid)["estimate"].to_numpy()
    assert np.max(np.abs(aj_r + aj_n + km - 1.0)) <= 1e-12


def test_without_competing_events_cif_is_one_minus_km() -> None:
    df = pl.DataFrame({"time_days": [0, 1, 1, 2, 3, 3, 5, 8], "status": [1, 1, 0, 1, 1, 0, 0, 1]})
    aj = AalenJohansen().fit(df).table
    km = KaplanMeier().fit(df).table
    assert np.max(np.abs(aj["estimate"].to_numpy() - (1 - km["estimate"].to_numpy()))) < 1e-15


def test_cumulative_incidence_at_and_by_groups() -> None:
    df = _actg320()
    aj = AalenJohansen().fit(df)
    tab = aj.table
    assert aj.cumulative_incidence_at(0) == 0.0  # before the first observed time (day 1)
    assert aj.cumulative_incidence_at(200.5) == tab.filter(pl.col("time") <= 200)["estimate"][-1]
    assert aj.cumulative_incidence_at(10**6) == tab["estimate"][-1]
    by = AalenJohansen().fit(df, by="tx").cumulative_incidence_at(300)
    assert by.columns == ["tx", "estimate"] and by.height == 2
    at = aj.at([100, 300])
    assert at.columns == ["time", "estimate", "lower", "upper"]


def test_no_cause_one_event_gives_zero_with_zero_limits() -> None:
    aj = AalenJohansen().fit(pl.DataFrame({"time_days": [0, 2, 3], "status": [2, 0, 2]}))
    assert aj.table["estimate"].to_list() == [0.0, 0.0, 0.0]
    assert aj.table["lower"].to_list() == [0.0, 0.0, 0.0] and aj.table["upper"].to_list() == [0.0, 0.0, 0.0]


def test_invalid_status_rejected() -> None:
    with pytest.raises(ValueError, match="status"):
        AalenJohansen().fit(pl.DataFrame({"time_days": [1, 2], "status": [1, 3]}))
