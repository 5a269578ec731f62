"""Log-rank and Gray's tests (timeline.queries.comparisons) against independent implementations.

* log-rank: lifelines' `logrank_test` (two groups) and `multivariate_logrank_test` (k groups) on lifelines'
  data sets, and R's `survival::survdiff` (also with `strata()`), values stored in tests/reference/;
* Gray's test: R's `cmprsk::cuminc` on the public bmt and cgvhd data sets of scikit-survival, values computed
  once by tests/reference/gray_and_survdiff.R and stored in tests/reference/comparisons.json (R is not needed
  here). Agreement to 1e-6 (absolute on p, relative on the statistic).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines.datasets import load_rossi, load_waltons
from lifelines.statistics import logrank_test, multivariate_logrank_test

from timeline.queries.comparisons import GrayTest, LogRankTest, format_p

REFERENCE = Path(__file__).resolve().parent / "reference"
VALUES = json.loads((REFERENCE / "comparisons.json").read_text(encoding="utf-8"))
TOL = 1e-6


def _data(name: str) -> pl.DataFrame:
    df = pl.read_csv(REFERENCE / f"{'bmt' if name == 'bmt' else 'cgvhd'}.csv")
    if name == "cg":
        df = df.with_columns(status2=pl.col("status").clip(0, 2),
                             dxtx=pl.col("dx") + "-" + pl.col("tx"))
    return df.with_columns(pl.col(c).cast(pl.String) for c in ("dis", "dx", "tx", "extent") if c in df.columns)


def test_reference_data_are_scikit_survivals():
    from sksurv.datasets import load_bmt, load_cgvhd

    for name, load in (("bmt", load_bmt), ("cg", load_cgvhd)):
        X, y = load()
        df = _data(name)
        assert df.height == len(y)
        assert np.allclose(df["ftime"].to_numpy(), y["ftime"]) and (df["status"].to_numpy() == y["status"]).all()


@pytest.mark.parametrize("ref", VALUES["gray"], ids=lambda r: r["name"])
def test_gray_matches_cmprsk_cuminc(ref):
    df = _data(ref["data"])
    status = ref["status"]
    if ref["cause"] == 2:  # the other cause of interest: swap the codes
        df = df.with_columns(pl.col(status).replace_strict({0: 0, 1: 2, 2: 1}, return_dtype=pl.Int64))
    got = GrayTest(rho=ref["rho"]).fit(df, "ftime", status, by=ref["group"], strata=ref["strata"])
    assert got.df == ref["df"]
    assert got.statistic == pytest.approx(ref["statistic"], rel=TOL, abs=TOL)
    assert got.p_value == pytest.approx(ref["p_value"], abs=TOL)
    assert got.test == ("stratified Gray" if ref["strata"] else "Gray")


@pytest.mark.parametrize("ref", VALUES["logrank"], ids=lambda r: r["name"])
def test_logrank_matches_survdiff(ref):
    got = LogRankTest().fit(_data(ref["data"]), "ftime", ref["status"], by=ref["group"], strata=ref["strata"])
    assert got.df == ref["df"]
    assert got.statistic == pytest.approx(ref["statistic"], rel=TOL, abs=TOL)
    assert got.p_value == pytest.approx(ref["p_value"], abs=TOL)


def test_logrank_matches_lifelines_two_and_k_groups():
    w = pl.from_pandas(load_waltons())
    got = LogRankTest().fit(w, "T", "E", by="group")
    a, b = w.filter(pl.col("group") == "control"), w.filter(pl.col("group") != "control")
    ref = logrank_test(a["T"].to_numpy(), b["T"].to_numpy(), a["E"].to_numpy(), b["E"].to_numpy())
    assert got.statistic == pytest.approx(ref.test_statistic, rel=TOL)
    assert got.p_value == pytest.approx(ref.p_value, abs=TOL) and got.df == 1
    assert got.groups["observed"].sum() == w["E"].sum()
    r = pl.from_pandas(load_rossi()).with_columns(g=pl.col("prio").clip(0, 3))
    got = LogRankTest().fit(r, "week", "arrest", by="g")
    ref = multivariate_logrank_test(r["week"].to_numpy(), r["g"].to_numpy(), r["arrest"].to_numpy())
    assert got.statistic == pytest.approx(ref.test_statistic, rel=TOL)
    assert got.p_value == pytest.approx(ref.p_value, abs=TOL) and got.df == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 1), st.sampled_from("ab")), min_size=4, max_size=40))
def test_logrank_matches_lifelines_with_ties(rows):
    df = pl.DataFrame(rows, schema=["t", "e", "g"], orient="row")
    if df["g"].n_unique() < 2 or df["e"].sum() == 0:
        return
    got = LogRankTest().fit(df, "t", "e", by="g")
    a, b = df.filter(pl.col("g") == "a"), df.filter(pl.col("g") == "b")
    ref = logrank_test(a["t"].to_numpy(), b["t"].to_numpy(), a["e"].to_numpy(), b["e"].to_numpy())
    if math.isnan(ref.test_statistic):
        return
    assert got.statistic == pytest.approx(ref.test_statistic, rel=TOL, abs=TOL)


def test_competing_events_are_censoring_for_the_logrank_and_a_stratum_adds_up():
    df = pl.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "s": [1, 2, 1, 0, 1, 2, 1, 0],
                       "g": ["a", "b"] * 4, "x": ["u"] * 4 + ["v"] * 4})
    censored = LogRankTest().fit(df.with_columns(pl.col("s").replace(2, 0)), "t", "s", by="g")
    assert LogRankTest().fit(df, "t", "s", by="g").statistic == pytest.approx(censored.statistic, abs=1e-15)
    one = LogRankTest().fit(df.with_columns(x=pl.lit("u")), "t", "s", by="g", strata="x")
    plain = LogRankTest().fit(df, "t", "s", by="g")
    assert one.statistic == pytest.approx(plain.statistic, abs=1e-12) and one.test == "stratified log-rank"


def test_one_group_is_refused_and_p_values_are_printed_as_papers_do():
    with pytest.raises(ValueError, match="at least two groups"):
        LogRankTest().fit(pl.DataFrame({"t": [1, 2], "s": [1, 1], "g": ["a", "a"]}), "t", "s", by="g")
    assert [format_p(p) for p in (0.0004, 0.0432, 0.31)] == ["< 0.001", "0.043", "0.31"]
