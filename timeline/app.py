"""`Timeline`: the Python entry point: open a store, ingest and record events, read them as of any time,
query the projections.

Reads never write: `sql`, `as_of` and the estimators read the projection file (read-only) or build in
memory; only `project` writes the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import as_date, as_utc, latest_clinical_date, us_to_datetime
from .projections.state import StaleProjectionsError, check_against
from .store.eventstore import AppendReport, EventStore
from .store.facts import Fact

if TYPE_CHECKING:  # the event models (pydantic) and the ingest path are imported where used: reads need neither
    import polars as pl

    from .events import Event

    from .projections.parameters import Params
    from .projections.partitions import Plan
    from .projections.replay import ReplayPool
    from .projections.runner import Projector, RunReport
    from .queries.views import ProjectionView


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


#: Why an encrypted store has no projection file. DuckDB encrypts a database file (AES-GCM) only with its
#: OpenSSL-backed httpfs extension loaded, which DuckDB downloads from its own extension repository (with
#: DuckDB's built-in crypto module it refuses, or writes files it calls "NOT securely encrypted"); a file of
#: derived patient data written in the clear would undo the store's encryption. So each process builds the
#: tables in memory, from the sealed store, and they never touch the disk (not even a spill file).
IN_MEMORY = ("the store is encrypted: its projections are built in memory by each command and never written to disk "
             "(no projection file)")


class Timeline:
    """The engine over one event store.

    >>> tl = Timeline.open("memory")
    >>> tl.record({"type": "patient_registered", "patient_id": "P1", "occurred_on": "2020-01-01",
    ...            "birth_date": "2012-05-01", "sex": "female"}).new
    1
    >>> tl.close()
    """

    def __init__(self, store: EventStore, projections: str | os.PathLike[str] | None = None):
        self.store = store
        self.projections_path = Path(projections) if projections is not None else None
        self._replays: ReplayPool | None = None  # warm connections for one-patient replays, made on first use

    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None,
             projections: str | os.PathLike[str] | None = None, create: bool = True) -> Timeline:
        """Open a store: a data folder (default `./timeline-data` or `$TIMELINE_STORE`), a `postgresql://…`
        URL, or `memory`. `projections`: the projection file (default: `projections.duckdb` in the data
        folder, or `$TIMELINE_PROJECTIONS`). `create=False` refuses a folder that holds no store."""
        return cls(EventStore.open(location, create=create), projections)

    def close(self) -> None:
        if self._replays is not None:
            self._replays.close()
        self.store.close()

    @property
    def replays(self) -> ReplayPool:
        """The warm connections of this Timeline's replays of a few patients (closed with it)."""
        if self._replays is None:
            from .projections.replay import ReplayPool

            self._replays = ReplayPool()
        return self._replays

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _latest(self) -> date:
        return latest_clinical_date(us_to_datetime(self.store.now_us()))

    # -- writing -------------------------------------------------------------------------------------
    def ingest(self, rows: Iterable[dict[str, Any] | Event], what: str = "rows", dry_run: bool = False) -> AppendReport:
        """Validate and append public-format dicts (or event models), all or nothing.

        Raises `RejectedError` listing every problem (row number, field, value, rule) if any row is
        invalid; then nothing is stored. A row naming a `source_record_id` already stored with other
        content is recorded as a correction of it (`report.corrected`). `dry_run`: check and count only.
        """
        from .ingest import prepare_objects, source_corrector

        items = list(rows)
        latest = self._latest()
        return self.store.append(lambda: prepare_objects(enumerate(items, start=1), latest), what,
                                 corrector=source_corrector(latest), dry_run=dry_run)

    def ingest_file(self, path: str | os.PathLike[str], on_batch: Callable[[AppendReport], None] | None = None,
                    dry_run: bool = False) -> AppendReport:
        """Ingest one JSON Lines (or JSON array) or CSV file, all or nothing (see `ingest`)."""
        from .ingest import file_reader, source_corrector

        p = Path(path)
        latest = self._latest()
        return self.store.append(file_reader(p, latest), str(p), on_batch, corrector=source_corrector(latest),
                                 dry_run=dry_run)

    def record(self, event: dict[str, Any] | Event) -> AppendReport:
        """Validate and append one event."""
        return self.ingest([event], what="event")

    def find(self, event_id: str, patient: str | None = None) -> Fact:
        """The fact whose event id begins with `event_id` (at least 4 characters; the short id `timeline
        history` shows), among the patient's events if given. LookupError if none or several match."""
        prefix = event_id.strip().lower()
        if len(prefix) < 4 or any(ch not in "0123456789abcdef-" for ch in prefix):
            raise LookupError(f"event id {event_id!r}: give at least 4 characters of the id (0-9, a-f), as "
                              "`timeline history` shows it")
        found = self.store.recorder.find_event_ids(prefix, patient)
        facts = {}
        for pid, eid in found:
            ledger = self.store.ledger(pid)
            fact = ledger.facts.get(eid)
            if fact is not None:
                facts[eid] = fact
        if not facts:
            where = f" of patient {patient}" if patient else ""
            raise LookupError(f"no event{where} has an id beginning {prefix!r} (amendments are not corrected: "
                              "name the event they amend)")
        if len(facts) > 1:
            raise LookupError(f"{len(facts)} events have an id beginning {prefix!r}: "
                              f"{', '.join(sorted(e[:13] for e in facts))}; give more characters")
        return next(iter(facts.values()))

    def correct(self, event_id: str, changes: Mapping[str, Any], reason: str, by: str,
                patient: str | None = None) -> AppendReport:
        """Correct an event: only the changed fields are given (a value of None or "" removes a field); the
        rest is kept. Recorded as an `event_corrected` by `by`, with `reason`."""
        from .ingest import replacement_with

        fact = self.find(event_id, patient)
        replacement = replacement_with(fact.content, changes)
        return self.record({"type": "event_corrected", "patient_id": fact.original.patient_id,
                            "occurred_on": self._latest().isoformat(), "corrects": fact.original.event_id,
                            "replacement": replacement, "reason": reason, "recorded_by": by})

    def retract(self, event_id: str, reason: str, by: str, patient: str | None = None) -> AppendReport:
        """Retract an event entered in error, by `by`, with `reason`."""
        fact = self.find(event_id, patient)
        return self.record({"type": "event_retracted", "patient_id": fact.original.patient_id,
                            "occurred_on": self._latest().isoformat(), "retracts": fact.original.event_id,
                            "reason": reason, "recorded_by": by})

    # -- reading the store -----------------------------------------------------------------------------
    def facts(self, patient: str | None = None, known_at: datetime | str | None = None) -> list[Fact]:
        """Every fact (original event and its amendments), as known at `known_at`, retracted ones included."""
        return list(self.store.ledger(patient, as_utc(known_at)).facts.values())

    def events(self, patient: str | None = None, as_of: date | str | None = None,
               known_at: datetime | str | None = None) -> list[VisibleEvent]:
        """The visible events, in clinical order.

        Visible: occurred on or before `as_of` (clinical date; None = no limit), recorded at or before
        `known_at` (UTC; None = now), with the corrections and retractions recorded by then applied.
        """
        from .events import parse_event

        as_of_d = as_date(as_of)
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

    # -- projections -----------------------------------------------------------------------------------
    def projector(self, params: Mapping[str, Any] | None = None, plan: Plan | None = None) -> Projector:
        from .projections.parameters import resolve
        from .projections.runner import Projector

        return Projector(self.store, self.projections_path, params=resolve(params), plan=plan)

    def project(self, rebuild: bool = False, params: Mapping[str, Any] | None = None,
                on_rows: Callable[[int], None] | None = None,
                on_table: Callable[[str, int, int], None] | None = None, plan: Plan | None = None) -> RunReport:
        """Catch the projection file up with the store (or rebuild it): the only writer of the file.
        `on_rows(n)` and `on_table(name, i, n)` report progress; `plan`: how a rebuild goes (by partitions of
        patients, on a Dask cluster, its memory limit; `timeline.projections.partitions.Plan`).

        An encrypted store's projections are never written to disk (see `IN_MEMORY`): the tables are built in
        memory, checked, and let go; the report says so."""
        if self.store.encrypted:
            from .projections.parameters import resolve
            from .projections.runner import RunReport

            con = self._fresh(None, None, resolve(params), on_table=on_table)
            try:
                read, patients = con.execute("SELECT count(*), count(DISTINCT patient_id) FROM log").fetchall()[0]
            finally:
                con.close()
            if on_rows is not None:
                on_rows(read)
            return RunReport("in memory", read, patients, self.store.max_position(), note=IN_MEMORY)
        return self.projector(params, plan).run(rebuild=rebuild, on_rows=on_rows, on_table=on_table)

    def as_of(self, date: date | str | None = None, known_at: datetime | str | None = None,
              params: Mapping[str, Any] | None = None, patients: Sequence[str] | None = None,
              fresh: bool = False, on_wait: Callable[[], None] | None = None,
              memory_limit: str | None = None) -> ProjectionView:
        """A read-only view in which every projection table holds the projection of the events visible as
        of clinical `date` and as known at `known_at` (None: no limit, now), by the same rules as the file.

        By default the projection file is read (never written): as it is, or recomputed from its log for
        a past date, a past knowledge time or other parameters. If it is behind the store the view's
        `notes` say so. `fresh=True` builds every table in memory from the store instead; `patients`
        replays only those patients, straight from their streams (fast). `memory_limit` (e.g. "2GB"): the
        most memory a query of the view may use (default: an eighth of the machine's).
        """
        from .projections.parameters import resolve
        from .queries.views import view_of

        d, k = as_date(date), as_utc(known_at)
        resolved = resolve(params) if params is not None else None
        if patients is not None:
            from .projections.replay import replay

            done = replay(self.store, list(patients), d, k, resolved, pool=self.replays)
            return view_of(done.con, f"patients {', '.join(patients)} replayed from the store", on_close=done.release,
                           prepare=done.prepare, memory_limit=memory_limit)
        if fresh or self.store.encrypted:
            what = "an encrypted store's projections, built in memory" if self.store.encrypted and not fresh \
                else "projections built in memory from the store"
            return view_of(self._fresh(d, k, resolved), what, memory_limit=memory_limit)
        from .queries.views import open_file

        view = open_file(self.projector().path, d, k, resolved, on_wait=on_wait, memory_limit=memory_limit)
        try:
            view.notes.extend(check_against(self.store.recorder, view.state))
        except StaleProjectionsError:
            view.close()
            raise
        return view

    def _fresh(self, as_of: date | None, known_at: datetime | None, params: Params | None,
               on_table: Callable[[str, int, int], None] | None = None):
        import duckdb

        from .projections.build import build
        from .projections.loader import create_log, insert_log, load_visible
        from .projections.parameters import resolve

        # an encrypted store's tables never spill to a temporary file: past the memory limit, a query fails
        con = duckdb.connect(config={"temp_directory": ""} if self.store.encrypted else {})
        try:
            create_log(con)
            with self.store.recorder.read_arrow(0, self.store.max_position()) as reader:
                insert_log(con, reader)
            load_visible(con, as_of=as_of, known_at=known_at)
            build(con, params if params is not None else resolve(), on_table=on_table)
        except BaseException:
            con.close()
            raise
        return con

    def sql(self, query: str, as_of: date | str | None = None, known_at: datetime | str | None = None,
            params: Mapping[str, Any] | None = None, fresh: bool = False) -> pl.DataFrame:
        """Run a read-only query on the projections (as of / known at, if given): a polars DataFrame."""
        with self.as_of(as_of, known_at, params, fresh=fresh) as view:
            return view.sql(query)


__all__ = ["StaleProjectionsError", "Timeline", "VisibleEvent"]
