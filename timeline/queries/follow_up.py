"""Follow-up summaries: reverse Kaplan–Meier median follow-up and the median/range clinical papers report.

* Reverse Kaplan–Meier (Schemper & Smith, Control Clin Trials 1996;17:343–346): on the overall-survival
  data, patients alive at last contact become the "events" and deaths become censored; the median of that
  Kaplan–Meier curve, with its 95% limits, is the median (potential) follow-up. Same as R's
  ``survfit(Surv(time, status == 0) ~ 1)``: it reuses :class:`KaplanMeier` (deaths tied with last
  contacts stay in the risk set; median = first time the curve is <= 0.5; limits from the log-log band;
  inf = not reached).
* Observed follow-up: median, minimum and maximum of the follow-up times of all patients (deaths included,
  so biased low) and of the survivors only (the "median follow-up of survivors" many clinical papers give).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import polars as pl

from timeline.queries.kaplan_meier import KaplanMeier, _as_list, _prepare

__all__ = ["MedianFollowUp", "FollowUp", "reverse_km_median_follow_up", "follow_up_summary", "follow_up_table"]

_ALIVE = "__alive__"


class MedianFollowUp(NamedTuple):
    """Reverse-KM median follow-up and its limits (inf = not reached)."""

    median: float
    lower: float
    upper: float


@dataclass(frozen=True)
class FollowUp:
    """Follow-up as clinical papers report it (times in the unit of the duration column)."""

    n: int
    deaths: int
    median_reverse_km: float
    lower_reverse_km: float
    upper_reverse_km: float
    median_all: float
    min_all: float
    max_all: float
    median_survivors: float | None
    min_survivors: float | None
    max_survivors: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _reversed(df: pl.DataFrame, duration: str, died: str, by: list[str], endpoint: str | None) -> pl.DataFrame:
    data = _prepare(df, duration, died, by, endpoint, allowed=(0, 1))
    return data.with_columns((pl.col(died) == 0).cast(pl.Int64).alias(_ALIVE))


def reverse_km_median_follow_up(
    df: pl.DataFrame,
    duration: str = "time_days",
    died: str = "status",
    *,
    alpha: float = 0.05,
    endpoint: str | None = None,
) -> MedianFollowUp:
    """Median follow-up by reverse Kaplan–Meier (Schemper & Smith 1996) with its 100(1-alpha)% limits.

    ``died``: 1 = died, 0 = alive at last contact (the ``os`` endpoint's status); ``endpoint`` filters
    the ``endpoint`` column (e.g. ``"os"``).
    """
    data = _reversed(df, duration, died, [], endpoint)
    m = KaplanMeier(alpha=alpha).fit(data, duration, _ALIVE).median_ci()
    return MedianFollowUp(float(m["median"][0]), float(m["lower"][0]), float(m["upper"][0]))


def follow_up_table(
    df: pl.DataFrame,
    duration: str = "time_days",
    died: str = "status",
    by: str | Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    endpoint: str | None = None,
) -> pl.DataFrame:
    """One row per group with the :class:`FollowUp` fields as columns (group columns first)."""
    by_l = _as_list(by)
    data = _reversed(df, duration, died, by_l, endpoint)
    km = KaplanMeier(alpha=alpha).fit(data, duration, _ALIVE, by=by_l or None).median_ci()
    km = km.rename({"median": "median_reverse_km", "lower": "lower_reverse_km", "upper": "upper_reverse_km"})
    t = pl.col(duration).cast(pl.Float64)
    alive = pl.col(died) == 0
    aggs = [
        pl.len().cast(pl.Int64).alias("n"),
        (pl.col(died) == 1).sum().cast(pl.Int64).alias("deaths"),
        t.median().alias("median_all"),
        t.min().alias("min_all"),
        t.max().alias("max_all"),
        t.filter(alive).median().alias("median_survivors"),
        t.filter(alive).min().alias("min_survivors"),
        t.filter(alive).max().alias("max_survivors"),
    ]
    if by_l:
        obs = data.group_by(by_l, maintain_order=True).agg(aggs)
        out = obs.join(km, on=by_l, how="left", nulls_equal=True).sort(by_l, nulls_last=True)
    else:
        out = data.select(aggs).hstack(km)
    return out.select(*by_l, *(f for f in FollowUp.__dataclass_fields__))


def follow_up_summary(
    df: pl.DataFrame,
    duration: str = "time_days",
    died: str = "status",
    *,
    alpha: float = 0.05,
    endpoint: str | None = None,
) -> FollowUp:
    """Reverse-KM median follow-up (with limits) plus median and range (min–max) of the follow-up times of
    all patients and of survivors. ``died``: 1 = died, 0 = alive at last contact."""
    row = follow_up_table(df, duration, died, alpha=alpha, endpoint=endpoint).row(0, named=True)
    return FollowUp(**row)
