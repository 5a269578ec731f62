"""Kaplan–Meier survival estimator with Greenwood variance and log-log confidence limits.

Method
------
* Estimate: product-limit estimator (Kaplan & Meier, JASA 1958;53:457–481),
  ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` over the distinct observed times ``t_j``, where ``n_j`` is
  the number at risk just before ``t_j`` (subjects with time >= t_j: censorings tied with events stay
  in the risk set) and ``d_j`` the number of events at ``t_j``. All events at one time are processed
  together (no jitter); time 0 is an ordinary time (events at day 0 count).
* Variance: Greenwood's formula for ``log S``, ``V(t) = sum_{t_j <= t} d_j / (n_j (n_j - d_j))``,
  with the term set to 0 when ``d_j = n_j`` (as lifelines and scikit-survival do).
* Limits: Kalbfleisch & Prentice log(-log) transform (“exponential Greenwood”),
  ``S(t) ** exp(±z sqrt(V) / log S(t))``, exactly lifelines' ``KaplanMeierFitter.confidence_interval_``.
  Where the transform is undefined the limits are the estimate itself: ``S = 1`` gives ``(1, 1)``
  (lifelines fills its NaN with 1) and ``S = 0`` gives ``(0, 0)``.
* Median: the smallest observed time with ``S(t) <= 0.5`` (lifelines' convention; R's survfit takes the
  midpoint when S sits exactly on 0.5 over an interval). Values within 1e-12 of 0.5 count as 0.5, so an
  exact 0.5 is not missed through rounding (lifelines' exp-of-log-sum can land on 0.5000000000000001).
  Its limits are the same rule applied to the lower and upper pointwise limits (inversion of the pointwise
  band, as ``lifelines.utils.median_survival_times(kmf.confidence_interval_)``). Not reached: ``inf``.
  Because the limits are (0, 0) where S = 0, an upper limit can be the last time (R's survfit gives NA).

Input: one row per subject (e.g. the ``endpoints`` projection filtered to one endpoint), a duration column
(numeric, >= 0) and a status column. By default the event is ``status == 1`` and every other status is
censoring — including status 2 (a competing event). That is the cause-specific survival; ``1 - KM`` is *not*
a cumulative incidence under competing risks (use :class:`~timeline.queries.cumulative_incidence.AalenJohansen`).
Pass ``competing="error"`` to refuse data that contain status 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np
import polars as pl

__all__ = ["KaplanMeier"]

_DUMMY_GROUP = "__timeline_group__"
_RESERVED = frozenset(
    {"time", "at_risk", "events", "competing", "censored", "estimate", "lower", "upper", "removed", "median",
     "__gid__", _DUMMY_GROUP}
)


def _as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def _z(alpha: float) -> float:
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _prepare(
    df: pl.DataFrame,
    duration: str,
    status: str,
    by: list[str],
    endpoint: str | None,
    allowed: tuple[int, ...],
) -> pl.DataFrame:
    """Select, validate and (optionally) filter the input rows. Returns columns *by, duration, status."""
    if not isinstance(df, pl.DataFrame):
        raise TypeError(f"expected a polars DataFrame, got {type(df).__name__}")
    if endpoint is not None:
        if "endpoint" not in df.columns:
            raise ValueError("endpoint= given but the frame has no 'endpoint' column")
        df = df.filter(pl.col("endpoint") == endpoint)
    elif "endpoint" in df.columns and "endpoint" not in by and df["endpoint"].n_unique() > 1:
        raise ValueError(
            "the frame holds several endpoints; pass endpoint=... or by='endpoint' (refusing to pool them)"
        )
    clash = set(by) & (_RESERVED | {duration, status})
    if clash:
        raise ValueError(f"grouping columns clash with duration/status or output column names: {sorted(clash)}")
    missing = [c for c in (*by, duration, status) if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns: {missing}")
    if df.height == 0:
        raise ValueError("no rows to estimate from")
    out = df.select(*by, duration, pl.col(status).cast(pl.Int64))
    if out[duration].null_count() or out[status].null_count():
        raise ValueError(f"null values in {duration!r} or {status!r}")
    if not out.schema[duration].is_numeric():
        raise TypeError(f"duration column {duration!r} must be numeric, got {out.schema[duration]}")
    t = out[duration].cast(pl.Float64)
    if (t < 0).any() or t.is_nan().any() or t.is_infinite().any():
        raise ValueError(f"durations must be finite and >= 0 ({duration!r})")
    bad = out.filter(~pl.col(status).is_in(list(allowed)))
    if bad.height:
        raise ValueError(f"status values must be in {allowed}, found {sorted(set(bad[status].to_list()))}")
    return out


def _risk_table(data: pl.DataFrame, duration: str, status: str, by: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """Counts per (group, distinct time): at_risk, events (status 1), competing (status 2), censored.

    ``at_risk`` at t = number of subjects of the group with time >= t (reverse cumulative sum).
    Returns the table (sorted by group, time) and the window keys to use in ``.over``.
    """
    keys = by if by else [_DUMMY_GROUP]
    if not by:
        data = data.with_columns(pl.lit(0, dtype=pl.Int8).alias(_DUMMY_GROUP))
    tab = (
        data.group_by([*keys, duration])
        .agg(
            removed=pl.len().cast(pl.Int64),
            events=(pl.col(status) == 1).sum().cast(pl.Int64),
            competing=(pl.col(status) == 2).sum().cast(pl.Int64),
        )
        .sort([*keys, duration], nulls_last=True)
        .with_columns(at_risk=pl.col("removed").cum_sum(reverse=True).over(keys))
        .with_columns(censored=pl.col("removed") - pl.col("events") - pl.col("competing"))
        .rename({duration: "time"})
    )
    return tab, keys


def _loglog_limits(estimate: np.ndarray, var_log: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """log(-log) limits ``S ** exp(∓ z sqrt(var_log) / log S)``; (1, 1) where S == 1, (0, 0) where S == 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.log(estimate)
        a = z * np.sqrt(var_log) / v
        lower = np.exp(v * np.exp(-a))
        upper = np.exp(v * np.exp(a))
    one = estimate >= 1.0
    zero = estimate <= 0.0
    lower[one], upper[one] = 1.0, 1.0
    lower[zero], upper[zero] = 0.0, 0.0
    return lower, upper


_QUANTILE_TOL = 1e-12


def _first_time_at_or_below(table: pl.DataFrame, keys: list[str], column: str, level: float) -> pl.DataFrame:
    """Per group: the smallest time where ``column <= level`` (within 1e-12); inf when never (not reached)."""
    return table.group_by(keys, maintain_order=True).agg(
        pl.col("time")
        .filter(pl.col(column) <= level + _QUANTILE_TOL)
        .min()
        .cast(pl.Float64)
        .fill_null(float("inf"))
        .alias(column)
    )


def _step_lookup(
    table: pl.DataFrame,
    keys: list[str],
    times: Sequence[float] | float,
    columns: list[str],
    before_first: dict[str, float],
) -> pl.DataFrame:
    """Right-continuous step-function values at arbitrary times, per group (vectorised as-of join)."""
    ts = np.atleast_1d(np.asarray(times, dtype=float))
    if np.isnan(ts).any():
        raise ValueError("times must not be NaN")
    # the table is sorted by group: one run per group; join on the run id (null group keys would not match)
    table = table.with_columns(pl.struct(keys).rle_id().alias("__gid__"))
    groups = table.select(*keys, "__gid__").unique(maintain_order=True)
    query = groups.join(pl.DataFrame({"time": ts}), how="cross").with_row_index("__row__")
    right = table.select("__gid__", pl.col("time").cast(pl.Float64), *columns)
    out = (
        query.sort("time")
        .join_asof(right, on="time", by="__gid__", strategy="backward", check_sortedness=False)
        .sort("__row__")
        .drop("__row__", "__gid__")
        .with_columns([pl.col(c).fill_null(v) for c, v in before_first.items()])
    )
    return out


class KaplanMeier:
    """Kaplan–Meier estimator (Kaplan & Meier 1958) with Greenwood variance and log-log 95% limits.

    >>> km = KaplanMeier().fit(endpoints, endpoint="os", by="cohort")   # doctest: +SKIP
    >>> km.table      # cohort, time, at_risk, events, censored, estimate, lower, upper
    >>> km.median     # float (no by) or DataFrame [by..., median]
    >>> km.survival_at(365)

    Parameters: ``alpha`` (limits are 100(1-alpha)%); ``competing``: ``"censor"`` (default) treats
    every status other than 1 — including competing events (2) — as censoring; ``"error"`` raises if
    status 2 is present.
    """

    def __init__(self, alpha: float = 0.05, competing: Literal["censor", "error"] = "censor") -> None:
        if competing not in ("censor", "error"):
            raise ValueError("competing must be 'censor' or 'error'")
        self.alpha = alpha
        self.competing = competing
        self._z = _z(alpha)
        self._table: pl.DataFrame | None = None
        self._by: list[str] = []
        self._keys: list[str] = []

    def fit(
        self,
        df: pl.DataFrame,
        duration: str = "time_days",
        event: str = "status",
        by: str | Sequence[str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> "KaplanMeier":
        """Fit on one row per subject. ``event``: 1 = event, 0 = censored, 2 = competing (censored by default).

        ``endpoint``: keep only rows with that value of the ``endpoint`` column (the ``endpoints`` projection).
        Boolean event columns are accepted (True = event).
        """
        by_l = _as_list(by)
        if self.competing == "error" and event in df.columns and (df[event].cast(pl.Int64) == 2).any():
            raise ValueError("status 2 (competing event) present; KM with competing='error' refuses it")
        data = _prepare(df, duration, event, by_l, endpoint, allowed=(0, 1, 2))
        tab, keys = _risk_table(data, duration, event, by_l)
        tab = tab.with_columns(censored=pl.col("removed") - pl.col("events")).with_columns(
            estimate=(1.0 - pl.col("events") / pl.col("at_risk")).cum_prod().over(keys),
            _var=pl.when(pl.col("at_risk") > pl.col("events"))
            .then(pl.col("events") / (pl.col("at_risk") * (pl.col("at_risk") - pl.col("events"))).cast(pl.Float64))
            .otherwise(0.0)
            .cum_sum()
            .over(keys),
        )
        lower, upper = _loglog_limits(tab["estimate"].to_numpy(), tab["_var"].to_numpy(), self._z)
        tab = tab.with_columns(lower=pl.Series(lower), upper=pl.Series(upper))
        self._full = tab
        self._keys = keys
        self._by = by_l
        self._table = tab.select(*by_l, "time", "at_risk", "events", "censored", "estimate", "lower", "upper")
        return self

    # ------------------------------------------------------------------ results
    def _check(self) -> pl.DataFrame:
        if self._table is None:
            raise RuntimeError("call fit() first")
        return self._table

    @property
    def table(self) -> pl.DataFrame:
        """One row per distinct observed time (per group, group columns first):
        ``time, at_risk, events, censored, estimate, lower, upper``."""
        return self._check()

    @property
    def variance(self) -> pl.DataFrame:
        """Greenwood variance of log S(t) at each row of ``table`` (column ``var_log_estimate``)."""
        self._check()
        return self._full.select(*self._by, "time", pl.col("_var").alias("var_log_estimate"))

    def median_ci(self) -> pl.DataFrame:
        """Median with its 100(1-alpha)% limits, one row per group: ``[by..., median, lower, upper]``
        (inf = not reached)."""
        self._check()
        parts = [_first_time_at_or_below(self._full, self._keys, c, 0.5) for c in ("estimate", "lower", "upper")]
        out = parts[0]
        for p in parts[1:]:
            out = out.join(p, on=self._keys, how="left", nulls_equal=True, maintain_order="left")
        out = out.rename({"estimate": "median"})
        return out.select(*self._by, "median", "lower", "upper")

    @property
    def median(self) -> float | pl.DataFrame:
        """Median survival time: a float without ``by``, else a frame ``[by..., median]`` (inf = not reached)."""
        m = self.median_ci()
        if not self._by:
            return float(m["median"][0])
        return m.select(*self._by, "median")

    def at(self, times: float | Sequence[float]) -> pl.DataFrame:
        """Estimate and limits at given times (step function, right-continuous; 1 before the first time,
        the last value after the last observed time): ``[by..., time, estimate, lower, upper]``."""
        self._check()
        out = _step_lookup(
            self._full, self._keys, times, ["estimate", "lower", "upper"], {"estimate": 1.0, "lower": 1.0, "upper": 1.0}
        )
        return out.select(*self._by, "time", "estimate", "lower", "upper")

    def survival_at(self, t: float) -> float | pl.DataFrame:
        """S(t): a float without ``by``, else a frame ``[by..., estimate]``."""
        out = self.at(t)
        if not self._by:
            return float(out["estimate"][0])
        return out.select(*self._by, "estimate")
