"""Comparing curves between groups: the log-rank test (Kaplan–Meier) and Gray's test (cumulative incidence).

Both are small objects in the manner of lifelines: `LogRankTest().fit(df, by="donor")`, `GrayTest().fit(...)`;
the result is a `Comparison` (statistic, degrees of freedom, p-value, per-group counts). Both take an optional
`strata` column: the statistic's score and variance are summed over the strata before the quadratic form.

Log-rank (Mantel 1966; Peto & Peto 1972), status 1 = event, every other status censored (as `KaplanMeier`):
at each distinct time of a stratum with ``n_k`` at risk and ``d_k`` events in group k (N, D in all),
``O_k - E_k = sum (d_k - D n_k / N)`` and
``V_kl = sum D (N - D) / (N - 1) · n_k / N · (δ_kl - n_l / N)``; the statistic is
``(O - E)' V⁻ (O - E)`` over the first G - 1 groups, chi-square with G - 1 df. Equal to lifelines'
``logrank_test`` / ``multivariate_logrank_test`` and R's ``survdiff`` (also with ``strata()``).

Gray's test (Gray, Ann Stat 1988;16:1141–1154) of equal cumulative incidence of cause 1 (status 1; status 2 =
competing, 0 = censored) across groups, with the weight ``(1 - F(t-))^rho`` (rho = 0 by default, as R's
`cmprsk::cuminc`). With ``S_k`` the all-cause Kaplan–Meier and ``F_k`` the cumulative incidence of group k
(left limits ``S_k(t-)``, ``F_k(t-)``), ``h_k = n_k / S_k(t-)``, ``R = sum h_k`` and ``F`` the pooled
cumulative incidence ``F(t) = F(t-) + D1 / R``, the score of group k is
``sum w (d1_k - D1 h_k (1 - F_k(t-)) / sum_l h_l (1 - F_l(t-)))`` and its variance is Gray's estimator
(section 3 of the paper: a cause-1 term, a competing-cause term, and the terms of the pooled estimate's
integral ``c``). Computed here for all distinct times at once (arrays times × groups × groups), not per time
in a loop; checked against values computed with `cmprsk::cuminc` (tests/reference/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.stats import chi2

from .kaplan_meier import _prepare

__all__ = ["Comparison", "GrayTest", "LogRankTest"]

_GROUP, _STRATUM = "__group__", "__stratum__"


@dataclass(frozen=True)
class Comparison:
    """The result of a test comparing groups."""

    test: str  # "log-rank", "stratified log-rank", "Gray", "stratified Gray"
    by: str
    strata: str | None
    statistic: float
    df: int
    p_value: float
    groups: pl.DataFrame = field(repr=False)  # by, n, events (and observed/expected for the log-rank)

    def summary(self) -> pl.DataFrame:
        """One row: test, by, strata, statistic, df, p_value."""
        return pl.DataFrame([{"test": self.test, "by": self.by, "strata": self.strata, "statistic": self.statistic,
                              "df": self.df, "p_value": self.p_value}],
                            schema={"test": pl.String, "by": pl.String, "strata": pl.String,
                                    "statistic": pl.Float64, "df": pl.Int64, "p_value": pl.Float64})

    def sentence(self) -> str:
        """'log-rank test by donor: chi² = 3.21, 1 df, p = 0.073'."""
        strata = f", stratified by {self.strata}" if self.strata else ""
        return (f"{self.test.removeprefix('stratified ')} test by {self.by}{strata}: chi² = {self.statistic:.3f}, {self.df} df, "
                f"p = {format_p(self.p_value)}")


def format_p(p: float) -> str:
    """A p-value as papers print it: 0.043, 0.31, < 0.001."""
    if np.isnan(p):
        return "not computable"
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


@dataclass(frozen=True)
class _Counts:
    """One stratum's counts at its distinct times (rows) per group (columns)."""

    at_risk: np.ndarray
    cause1: np.ndarray
    cause2: np.ndarray


def _counting(df: pl.DataFrame, duration: str, status: str, by: str, strata: str | None
              ) -> tuple[list[_Counts], pl.DataFrame]:
    """Per stratum, the at-risk and event counts on the grid distinct times × groups; and the groups
    (`by`, n, events) in their order (sorted, null last)."""
    keys = [by] + ([strata] if strata else [])
    data = _prepare(df, duration, status, keys, None, allowed=(0, 1, 2))
    groups = data.group_by(by).agg(n=pl.len(), events=(pl.col(status) == 1).sum()).sort(by, nulls_last=True)
    if groups.height < 2:
        raise ValueError(f"comparing needs at least two groups of {by!r}; found {groups.height}")
    data = data.join(groups.select(by).with_row_index(_GROUP), on=by, nulls_equal=True)
    if strata:
        levels = data.select(strata).unique().sort(strata, nulls_last=True).with_row_index(_STRATUM)
        data = data.join(levels, on=strata, nulls_equal=True)
    else:
        data = data.with_columns(pl.lit(0, dtype=pl.UInt32).alias(_STRATUM))
    n_groups = groups.height
    out = []
    for (_,), part in data.sort(_STRATUM).group_by([_STRATUM], maintain_order=True):
        t = part[duration].cast(pl.Float64).to_numpy()
        g = part[_GROUP].cast(pl.Int64).to_numpy()
        s = part[status].to_numpy()
        times, row = np.unique(t, return_inverse=True)
        grid = np.zeros((3, times.size, n_groups))
        np.add.at(grid, (np.clip(s, 0, 2), row, g), 1.0)  # removed by status, per time and group
        removed = grid.sum(axis=0)
        at_risk = np.cumsum(removed[::-1], axis=0)[::-1]  # time >= t
        out.append(_Counts(at_risk, grid[1], grid[2]))
    return out, groups


def _quadratic(score: np.ndarray, var: np.ndarray) -> tuple[float, int]:
    """score' V⁻ score on the first G - 1 groups (a generalised inverse when V is singular), and the df
    (G - 1; no information at all, V = 0, gives 0 as lifelines does)."""
    s, v = score[:-1], var[:-1, :-1]
    return float(s @ np.linalg.pinv(v) @ s), len(s)


def _result(test: str, by: str, strata: str | None, score: np.ndarray, var: np.ndarray,
            groups: pl.DataFrame) -> Comparison:
    stat, df = _quadratic(score, var)
    p = float(chi2.sf(stat, df))
    return Comparison(f"stratified {test}" if strata else test, by, strata, stat, df, p, groups)


class LogRankTest:
    """Log-rank test of equal survival across the groups of `by` (optionally stratified).

    >>> LogRankTest().fit(frame, by="donor").p_value            # doctest: +SKIP
    """

    def fit(self, df: pl.DataFrame, duration: str = "time_days", event: str = "status", by: str = "group",
            strata: str | None = None) -> Comparison:
        counts, groups = _counting(df, duration, event, by, strata)
        g = groups.height
        score, var = np.zeros(g), np.zeros((g, g))
        observed, expected = np.zeros(g), np.zeros(g)
        for c in counts:
            n, d = c.at_risk, c.cause1
            big_n, big_d = n.sum(axis=1), d.sum(axis=1)
            keep = (big_d > 0) & (big_n > 0)
            n, d, big_n, big_d = n[keep], d[keep], big_n[keep], big_d[keep]
            e = n * (big_d / big_n)[:, None]
            observed += d.sum(axis=0)
            expected += e.sum(axis=0)
            share = n / big_n[:, None]
            factor = np.where(big_n > 1, big_d * (big_n - big_d) / np.maximum(big_n - 1, 1), 0.0)
            var += np.einsum("t,tk,tkl->kl", factor, share, np.eye(g)[None, :, :] - share[:, None, :])
        score = observed - expected
        groups = groups.with_columns(observed=pl.Series(observed), expected=pl.Series(expected))
        return _result("log-rank", by, strata, score, var, groups)


class GrayTest:
    """Gray's test of equal cumulative incidence of cause 1 across the groups of `by` (optionally stratified);
    `rho` is the power of the weight ``(1 - F(t-))^rho`` (0: cmprsk's default)."""

    def __init__(self, rho: float = 0.0) -> None:
        self.rho = rho

    def fit(self, df: pl.DataFrame, duration: str = "time_days", status: str = "status", by: str = "group",
            strata: str | None = None) -> Comparison:
        counts, groups = _counting(df, duration, status, by, strata)
        g = groups.height
        score, var = np.zeros(g), np.zeros((g, g))
        for c in counts:
            s, v = self._stratum(c)
            score += s
            var += v
        return _result("Gray", by, strata, score, var, groups)

    def _stratum(self, c: _Counts) -> tuple[np.ndarray, np.ndarray]:
        keep = (c.cause1 + c.cause2).sum(axis=1) > 0  # times with an event of either cause
        n, d1, d2 = c.at_risk[keep], c.cause1[keep], c.cause2[keep]
        g = n.shape[1]
        live = n > 0
        safe_n = np.where(live, n, 1.0)
        # group-wise all-cause KM and cumulative incidence of cause 1: left limits (t-) and values at t
        surv = np.cumprod(np.where(live, 1.0 - (d1 + d2) / safe_n, 1.0), axis=0)
        surv_before = np.vstack([np.ones((1, g)), surv[:-1]])
        cif = np.cumsum(surv_before * d1 / safe_n, axis=0)
        cif_before = np.vstack([np.zeros((1, g)), cif[:-1]])
        h = np.where(live, n / np.where(surv_before > 0, surv_before, 1.0), 0.0)
        big_r = h.sum(axis=1)
        big_q = (h * (1.0 - cif_before)).sum(axis=1)
        big_d1 = d1.sum(axis=1)
        pooled = np.cumsum(big_d1 / big_r)
        pooled_before = np.concatenate([[0.0], pooled[:-1]])
        w = (1.0 - pooled_before) ** self.rho
        score = (w[:, None] * (d1 - big_d1[:, None] * h * (1.0 - cif_before) / big_q[:, None])).sum(axis=0)
        # a[t] = w (diag(h) - h h' / R); c = running integral of a dF / (1 - F(t-)) (through t)
        a = w[:, None, None] * (np.einsum("tk,kl->tkl", h, np.eye(g)) - h[:, :, None] * h[:, None, :] / big_r[:, None, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(pooled_before < 1.0, big_d1 / (big_r * (1.0 - pooled_before)), 0.0)
        c = np.cumsum(a * step[:, None, None], axis=0)
        # cause-1 term: times with a cause-1 event, groups at risk
        pos = surv > 0
        t4 = np.where(pos, 1.0 - (1.0 - pooled)[:, None] / np.where(pos, surv, 1.0), 1.0)
        denom = big_r[:, None] * surv_before - 1.0
        t5 = np.where((big_d1 > 1)[:, None], 1.0 - (big_d1[:, None] - 1.0) / np.where(denom != 0, denom, 1.0), 1.0)
        t3 = np.where(live & (big_d1 > 0)[:, None], t5 * surv_before * big_d1[:, None] / (big_r[:, None] * safe_n), 0.0)
        b = a - t4[:, None, :] * c  # [t, i, k]
        var = np.einsum("tik,tjk,tk->ij", b, b, t3)
        v2 = np.einsum("tik,tk->ik", b, t4 * t3)
        v3 = (t4 * t4 * t3).sum(axis=0)
        # competing-cause term: groups with a competing event and survivors
        u4 = np.where(pos, (1.0 - pooled)[:, None] / np.where(pos, surv, 1.0), 0.0)
        u5 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / np.where(n > 1, n - 1.0, 1.0), 1.0)
        u3 = np.where(pos & (d2 > 0), u5 * surv_before ** 2 * d2 / safe_n ** 2, 0.0)
        var += np.einsum("tik,tjk,tk->ij", c, c, u4 * u4 * u3)
        v2 -= np.einsum("tik,tk->ik", c, u4 * u4 * u3)
        v3 += (u4 * u4 * u3).sum(axis=0)
        last = c[-1] if len(c) else np.zeros((g, g))
        var += np.einsum("ik,jk,k->ij", last, last, v3) + last @ v2.T + v2 @ last.T
        return score, var


def compare(kind: str, df: pl.DataFrame, by: str, strata: str | None = None, duration: str = "time_days",
            status: str = "status") -> Comparison:
    """The test that goes with an estimator: the log-rank test for `km`, Gray's test for `cif`."""
    test = LogRankTest() if kind == "km" else GrayTest()
    return test.fit(df, duration, status, by=by, strata=strata)
