"""`Timeline`: the Python entry point — open a store, ingest and record events, read them as of any time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .events import Event, parse_event
from .ingest import file_reader, prepare_objects
from .store.eventstore import AppendReport, EventStore, latest_clinical_date, us_to_datetime
from .store.facts import Fact, LogRecord


@dataclass(frozen=True)
class VisibleEvent:
    """An event as visible in a read: the fact's current content and when that content was recorded."""

    event: Event
    recorded_at: datetime  # when the visible version was recorded
    first_recorded_at: datetime  # when the fact was first recorded
    corrected: bool

    @property
    def event_id(self) -> str:
        return str(self.event.event_id)


def _as_utc(moment: datetime | str | None) -> datetime | None:
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


def _as_date(d: date | str | None) -> date | None:
    if d is None or isinstance(d, date):
        return d
    try:
        return date.fromisoformat(d)
    except ValueError:
        raise ValueError(f"as-of {d!r} is not a date YYYY-MM-DD") from None


class Timeline:
    """The engine over one event store.

    >>> tl = Timeline.open("memory")
    >>> tl.record({"type": "patient_registered", "patient_id": "P1", "occurred_on": "2020-01-01",
    ...            "birth_date": "2012-05-01", "sex": "female"}).new
    1
    """

    def __init__(self, store: EventStore, projections: str | os.PathLike[str] | None = None):
        self.store = store
        self.projections_path = Path(projections) if projections is not None else None

    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None,
             projections: str | os.PathLike[str] | None = None) -> Timeline:
        """Open a store: a data folder (default `./timeline-data` or `$TIMELINE_STORE`), a
        `postgresql://…` URL, or `memory`. `projections`: the DuckDB file (default: `projections.duckdb`
        in the data folder, or `$TIMELINE_PROJECTIONS`)."""
        return cls(EventStore.open(location), projections)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _latest(self) -> date:
        return latest_clinical_date(us_to_datetime(self.store.now_us()))

    # -- writing -------------------------------------------------------------------------------------
    def ingest(self, rows: Iterable[dict[str, Any] | Event], what: str = "rows") -> AppendReport:
        """Validate and append public-format dicts (or event models), all or nothing.

        Raises `RejectedError` listing every problem (row number, field, value, rule) if any row is
        invalid; then nothing is stored.
        """
        items = list(rows)
        latest = self._latest()
        return self.store.append(lambda: prepare_objects(enumerate(items, start=1), latest), what)

    def ingest_file(self, path: str | os.PathLike[str],
                    on_batch: Callable[[AppendReport], None] | None = None) -> AppendReport:
        """Ingest one JSON Lines or CSV file, all or nothing (see `ingest`)."""
        p = Path(path)
        return self.store.append(file_reader(p, self._latest()), str(p), on_batch)

    def record(self, event: dict[str, Any] | Event) -> AppendReport:
        """Validate and append one event."""
        return self.ingest([event], what="event")

    # -- reading -------------------------------------------------------------------------------------
    def facts(self, patient: str | None = None, known_at: datetime | str | None = None) -> list[Fact]:
        """Every fact (original event and its amendments), as known at `known_at`, retracted ones included."""
        return list(self.store.ledger(patient, _as_utc(known_at)).facts.values())

    def events(self, patient: str | None = None, as_of: date | str | None = None,
               known_at: datetime | str | None = None) -> list[VisibleEvent]:
        """The visible events, in clinical order.

        Visible: occurred on or before `as_of` (clinical date; None = no limit), recorded at or before
        `known_at` (UTC; None = now), with the corrections and retractions recorded by then applied.
        """
        as_of_d = _as_date(as_of)
        out = []
        for fact in self.facts(patient, known_at):
            if not fact.visible or (as_of_d is not None and fact.occurred_on > as_of_d):
                continue
            out.append(VisibleEvent(parse_event(fact.content), fact.latest.recorded_at,
                                    fact.original.recorded_at, bool(fact.corrections)))
        out.sort(key=lambda v: (v.event.patient_id, v.event.occurred_on, v.first_recorded_at))
        return out

    def patients(self) -> list[str]:
        return self.store.patient_ids()

    # -- projections ---------------------------------------------------------------------------------
    def projector(self, params: Mapping[str, Any] | None = None):
        from .projections import pipeline
        from .projections.runner import Projector

        return Projector(self.store, self.projections_path, params=pipeline.parameters_from(params or {}))

    def project(self, rebuild: bool = False, params: Mapping[str, Any] | None = None,
                on_rows: Callable[[int], None] | None = None,
                on_table: Callable[[str, int, int], None] | None = None):
        """Catch the DuckDB tables up with the store (or rebuild them); atomic. `on_rows(n)` and
        `on_table(name, i, n)` report progress."""
        return self.projector(params).run(rebuild=rebuild, on_rows=on_rows, on_table=on_table)

    def as_of(self, date: date | str | None = None, known_at: datetime | str | None = None,
              params: Mapping[str, Any] | None = None, patients: Iterable[str] | None = None,
              catch_up: bool = True):
        """A read-only view in which every projection table holds the projection of the events visible
        as of clinical `date` and as known at `known_at` (same rules as the materialised tables).

        With `patients`, only those patients are replayed, straight from their streams (fast).
        With neither date, known_at nor params, the materialised tables themselves (caught up first).
        """
        from .projections import pipeline
        from .projections.replay import replay
        from .queries.views import open_as_of, open_materialised, view_of

        d, k = _as_date(date), _as_utc(known_at)
        resolved = pipeline.parameters_from(params or {})
        if patients is not None:
            con = replay(self.store, list(patients), d, k, resolved)
            return view_of(con, f"patients {', '.join(patients)} as of {d or 'today'}")
        # the materialised file keeps the parameters it was built with (`timeline project --param …`);
        # other parameters are applied to an in-memory recomputation, never by rebuilding the shared file
        projector = self.projector()
        projector.params = projector.stored_params() or projector.params
        if catch_up:
            projector.run()
        if d is None and k is None and (not params or resolved == projector.params):
            return open_materialised(projector.path)
        return open_as_of(projector.path, d, k, resolved)

    def sql(self, query: str, as_of: date | str | None = None, known_at: datetime | str | None = None,
            params: Mapping[str, Any] | None = None):
        """Run a read-only query on the projections (as of / known at, if given): a polars DataFrame."""
        with self.as_of(as_of, known_at, params) as view:
            return view.sql(query)


__all__ = ["Timeline", "VisibleEvent", "LogRecord"]
