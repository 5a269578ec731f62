"""Cumulative incidence under competing risks: the Aalen–Johansen estimator.

Method
------
Status: 1 = event of interest (cause 1), 2 = competing event, 0 = censored. At each distinct observed time
``t_j`` (ties processed together, no jitter; time 0 is an ordinary time, so day-0 events count):
``n_j`` at risk (time >= t_j), ``d1_j`` cause-1 events, ``d_j`` events of either cause.

* Estimate (Aalen & Johansen, Scand J Stat 1978;5:141–150; Kalbfleisch & Prentice 2002):
  ``F1(t) = sum_{t_j <= t} S(t_{j-1}) d1_j / n_j`` with ``S`` the all-cause Kaplan–Meier survival.
  Not ``1 - KM`` (which treats competing events as censoring and overestimates).
* Variance: Aalen's (1978a, Ann Stat 6:534–545) delta-method estimator as written in Pintilie,
  *Competing Risks: A Practical Perspective* (2006), eq. 4.5 — the ``var_type="Aalen"`` estimator of
  scikit-survival's ``cumulative_incidence_competing_risks``::

      V(t) = sum_{t_j<=t} [F1(t) - F1(t_j)]^2 d_j / ((n_j - 1)(n_j - d_j))
           + sum_{t_j<=t} S(t_{j-1})^2 d1_j (n_j - d1_j) / (n_j^2 (n_j - 1))
           - 2 sum_{t_j<=t} [F1(t) - F1(t_j)] S(t_{j-1}) d1_j (n_j - d1_j) / (n_j (n_j - d_j)(n_j - 1))

  each term 0 where its denominator is 0 (``n_j = 1`` or ``d_j = n_j``). The squares are expanded into
  cumulative sums over the sorted distinct times (O(T), no T x T matrix).
* Limits: log(-log) transform of F1 itself (scikit-survival ``conf_type="log-log"``):
  ``sigma = sqrt(V) / F1`` (0 when ``V <= eps``), ``F1 ** exp(∓ z sigma / log F1)``.
  Boundaries as in scikit-survival: ``F1 <= eps`` gives limits (0, 0); ``F1 = 1`` gives (1, 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from timeline.queries.kaplan_meier import _as_list, _prepare, _risk_table, _step_lookup, _z

__all__ = ["AalenJohansen"]

_EPS = float(np.finfo(np.float64).eps)


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den.cast(pl.Float64)).otherwise(0.0)


def _cif_loglog_limits(cif: np.ndarray, var: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """scikit-survival's ``_cum_inc_cr_ci_estimator`` + ``_ci_logmlog`` for one cause."""
    sigma = np.zeros_like(var)
    np.divide(np.sqrt(np.where(var > _EPS, var, 0.0)), cif, where=var > _EPS, out=sigma)
    mask = cif > _EPS
    log_p = np.zeros_like(cif)
    np.log(cif, where=mask, out=log_p)
    theta = np.zeros_like(cif)
    np.true_divide(sigma, log_p, where=log_p < -_EPS, out=theta)
    lower = np.exp(np.exp(-z * theta) * log_p)
    upper = np.exp(np.exp(z * theta) * log_p)
    lower[~mask], upper[~mask] = 0.0, 0.0
    return lower, upper


class AalenJohansen:
    """Aalen–Johansen cumulative incidence of cause 1 (status 1) with competing cause (status 2).

    >>> aj = AalenJohansen().fit(endpoints, endpoint="relapse")     # doctest: +SKIP
    >>> aj.table   # [by...], time, at_risk, events, competing, censored, estimate, lower, upper
    >>> aj.cumulative_incidence_at(365)
    """

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha
        self._z = _z(alpha)
        self._table: pl.DataFrame | None = None
        self._by: list[str] = []
        self._keys: list[str] = []

    def fit(
        self,
        df: pl.DataFrame,
        duration: str = "time_days",
        status: str = "status",
        by: str | Sequence[str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> "AalenJohansen":
        """Fit on one row per subject; ``status`` in {0, 1, 2}. ``endpoint`` filters the ``endpoint`` column."""
        by_l = _as_list(by)
        data = _prepare(df, duration, status, by_l, endpoint, allowed=(0, 1, 2))
        tab, keys = _risk_table(data, duration, status, by_l)
        n = pl.col("at_risk")
        d1 = pl.col("events")
        d = pl.col("events") + pl.col("competing")
        tab = (
            tab.with_columns(_surv=(1.0 - d / n).cum_prod().over(keys))
            .with_columns(_surv_prev=pl.col("_surv").shift(1, fill_value=1.0).over(keys))
            .with_columns(estimate=(pl.col("_surv_prev") * d1 / n).cum_sum().over(keys))
            .with_columns(
                _a=_safe_div(d, (n - 1) * (n - d)),
                _b=_safe_div((n - d1) * d1, (n - 1) * n * n) * pl.col("_surv_prev") ** 2,
                _c=_safe_div(d1 * (n - d1), n * (n - d) * (n - 1)) * pl.col("_surv_prev"),
            )
        )
        f = pl.col("estimate")
        cs = {
            "_A": pl.col("_a"),
            "_AF": pl.col("_a") * f,
            "_AF2": pl.col("_a") * f * f,
            "_B": pl.col("_b"),
            "_C": pl.col("_c"),
            "_CF": pl.col("_c") * f,
        }
        tab = tab.with_columns([e.cum_sum().over(keys).alias(k) for k, e in cs.items()]).with_columns(
            _var=f * f * pl.col("_A")
            - 2.0 * f * pl.col("_AF")
            + pl.col("_AF2")
            + pl.col("_B")
            - 2.0 * (f * pl.col("_C") - pl.col("_CF"))
        )
        lower, upper = _cif_loglog_limits(tab["estimate"].to_numpy(), tab["_var"].to_numpy(), self._z)
        tab = tab.with_columns(lower=pl.Series(lower), upper=pl.Series(upper))
        self._full = tab
        self._keys = keys
        self._by = by_l
        self._table = tab.select(
            *by_l, "time", "at_risk", "events", "competing", "censored", "estimate", "lower", "upper"
        )
        return self

    def _check(self) -> pl.DataFrame:
        if self._table is None:
            raise RuntimeError("call fit() first")
        return self._table

    @property
    def table(self) -> pl.DataFrame:
        """One row per distinct observed time (per group, group columns first): ``time, at_risk, events``
        (cause 1), ``competing`` (cause 2), ``censored, estimate`` (cumulative incidence of cause 1),
        ``lower, upper``."""
        return self._check()

    @property
    def variance(self) -> pl.DataFrame:
        """Aalen variance of the cumulative incidence at each row of ``table`` (column ``var_estimate``)."""
        self._check()
        return self._full.select(*self._by, "time", pl.col("_var").alias("var_estimate"))

    def at(self, times: float | Sequence[float]) -> pl.DataFrame:
        """Cumulative incidence and limits at given times (right-continuous step function; 0 before the first
        observed time, the last value after the last one): ``[by..., time, estimate, lower, upper]``."""
        self._check()
        out = _step_lookup(
            self._full, self._keys, times, ["estimate", "lower", "upper"], {"estimate": 0.0, "lower": 0.0, "upper": 0.0}
        )
        return out.select(*self._by, "time", "estimate", "lower", "upper")

    def cumulative_incidence_at(self, t: float) -> float | pl.DataFrame:
        """F1(t): a float without ``by``, else a frame ``[by..., estimate]``."""
        out = self.at(t)
        if not self._by:
            return float(out["estimate"][0])
        return out.select(*self._by, "estimate")
