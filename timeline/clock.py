"""The engine's two clocks, in one place: the clinical date (`occurred_on`, valid time) and the knowledge
time (`recorded_at`, assigned by the store, UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

#: The first time zone to enter each new day (UTC+14, Line Islands). A clinical date is "in the future"
#: only when it has begun nowhere yet, so a centre far east of UTC can record today's sample in its
#: morning, whatever the server's zone.
EARLIEST_TIMEZONE = timezone(timedelta(hours=14))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_clinical_date(now: datetime | None = None) -> date:
    """The latest `occurred_on` that is not in the future of the moment `now` (default: the system clock):
    that moment's date at UTC+14. The store passes its own clock's moment."""
    moment = now if now is not None else datetime.now(UTC)
    return moment.astimezone(EARLIEST_TIMEZONE).date()


def us_to_datetime(us: int) -> datetime:
    """A store timestamp (µs since the epoch) as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def as_utc(moment: datetime | str | None) -> datetime | None:
    """A knowledge time: an aware datetime or ISO 8601 text (UTC when no zone is given), in UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise ValueError(f"known-at {moment!r} is not an ISO 8601 timestamp "
                             "(e.g. 2025-09-01T12:00:00Z; UTC when no zone is given)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def as_date(d: date | str | None) -> date | None:
    """A clinical date: a date or `YYYY-MM-DD` text."""
    if d is None or isinstance(d, date):
        return d
    try:
        return date.fromisoformat(d)
    except ValueError:
        raise ValueError(f"as-of {d!r} is not a date YYYY-MM-DD") from None
