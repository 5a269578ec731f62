"""The projection runner: keeps a DuckDB file caught up with the event store.

The DuckDB file holds the log as stored (`log`, read from the store as Arrow batches and parsed by
DuckDB), `_fact_versions` (corrections and retractions in force), `events` (a view over the log through
them: the payloads are stored once), every other projection table, and `_tracking` (the last store
position read, the parameters and the file's layout). In each run the visible events are computed once,
into a temporary table every rule reads, for all patients or for the touched ones. A catch-up reads only
the rows after the tracking position into `log`, recomputes the patients they touch (every rule is per
patient, over the patient's whole history: their earlier rows are read as context, from the store's
patient index when they are few, else from `log`), and commits rows and position in one DuckDB
transaction: a crash at any moment leaves the file as it was
before the run or as it is after it, never in between. A rebuild recomputes everything from the store in
one transaction. Changed parameters (or another layout) force a rebuild (the rows depend on them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..store.eventstore import EventStore
from ..store.facts import AMENDMENTS
from . import pipeline
from .visible import VERSIONS_SQL, amendments_of, create_log, fact_versions, insert_log, visible_sql

log = logging.getLogger(__name__)

PROJECTIONS_FILE = "projections.duckdb"
PROJECTIONS_ENV = "TIMELINE_PROJECTIONS"
READ_CHUNK = 2_000_000  # store positions per read: one DuckDB statement each, progress between them
STORE_HISTORY_MAX_ROWS = 30_000  # a catch-up reads the touched patients' earlier rows from the store up to this
# A catch-up whose touched patients have at most this many visible events runs its rules unoptimised. Measured
# here (rules of a catch-up, median of two): 200 patients, 31k events: 110 ms unoptimised vs 120-145 ms;
# 1,000 patients, 157k events: 230-245 vs 205-225 ms; 10,000 patients: 1.9-2.3 s vs 1.1 s.
UNOPTIMISED_MAX_ROWS = 50_000


@dataclass(frozen=True)
class RunReport:
    mode: str  # "rebuild" | "catch-up"
    rows_read: int
    patients: int
    position: int


def projections_path(store: EventStore) -> Path:
    """Where the DuckDB file lives: `$TIMELINE_PROJECTIONS`, else beside the SQLite store, else
    `./timeline-data/projections-<hash>.duckdb` for a PostgreSQL or in-memory store."""
    env = os.environ.get(PROJECTIONS_ENV)
    if env:
        return Path(env)
    if store.data_dir is not None:
        return store.data_dir / PROJECTIONS_FILE
    digest = hashlib.sha1(store.location.encode()).hexdigest()[:10]
    return Path("timeline-data") / f"projections-{digest}.duckdb"


# The file's layout: a file written by another layout is rebuilt, not caught up (2: `events` is a view
# over `log`, which keeps event ids as UUIDs).
LAYOUT = 2


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """What the rows depend on besides the events: the parameters, and the layout of the file."""
    return json.dumps({"_layout": {"version": LAYOUT}} | {k: asdict(v) for k, v in sorted(params.items())},
                      sort_keys=True, default=str)


def _load_log(con: duckdb.DuckDBPyConnection, store: EventStore, after: int,
              on_rows: Callable[[int], None] | None) -> tuple[int, int]:
    """Append the stored rows after `after` to `log`, in chunks (progress after each); returns
    (rows read, last position). The end is fixed first: rows appended meanwhile wait for the next run."""
    end = store.max_position()
    read = 0
    for lo in range(after, end, READ_CHUNK):
        hi = min(lo + READ_CHUNK, end)
        # batches of 64k rows; a small read (a catch-up) in at least 8, which DuckDB parses in parallel
        batch = max(2048, min(65_536, (hi - lo) // 8))
        with store.recorder.read_arrow(lo, hi, batch=batch) as reader:
            insert_log(con, reader)
        read = con.execute(f"SELECT count(*) FROM log WHERE position > {int(after)}").fetchall()[0][0]
        if on_rows:
            on_rows(read)
    return read, max(end, after)


class Projector:
    """One catch-up process per DuckDB file (DuckDB admits one writer)."""

    def __init__(self, store: EventStore, path: str | os.PathLike[str] | None = None,
                 params: Mapping[str, Any] | None = None):
        self.store = store
        self.path = Path(path) if path is not None else projections_path(store)
        if "?" in str(self.path):  # DuckDB reads what follows a '?' in a file name as options
            raise ValueError(f"the projections file {self.path} has a '?' in its path, which DuckDB cannot open; "
                             f"set {PROJECTIONS_ENV} to another path")
        self.params = dict(params) if params is not None else pipeline.parameters_from({})

    def _tracking(self, con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
        con.execute("CREATE TABLE IF NOT EXISTS _tracking (id INTEGER PRIMARY KEY, position BIGINT NOT NULL, "
                    "parameters VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        row = con.execute("SELECT position, parameters FROM _tracking WHERE id = 1").fetchone()
        return (int(row[0]), row[1]) if row else None

    def stored_params(self) -> dict[str, Any] | None:
        """The parameters the file's tables were built with, or None if it has none yet."""
        if not self.path.exists():
            return None
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error:
            return None
        try:
            row = con.execute("SELECT parameters FROM _tracking WHERE id = 1").fetchone()
        except duckdb.Error:
            return None
        finally:
            con.close()
        if not row:
            return None
        flat = {name: value for module, fields in json.loads(row[0]).items() if not module.startswith("_")
                for name, value in fields.items()}
        return pipeline.parameters_from(flat)

    def run(self, rebuild: bool = False, on_rows: Callable[[int], None] | None = None,
            on_table: Callable[[str, int, int], None] | None = None) -> RunReport:
        """Catch up (or rebuild) and commit atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fingerprint = params_fingerprint(self.params)
        con = duckdb.connect(str(self.path), config={"preserve_insertion_order": False})
        try:
            con.execute("BEGIN TRANSACTION")
            tracked = self._tracking(con)
            if tracked is not None and tracked[1] != fingerprint and not rebuild:
                log.warning("parameters (or the file's layout) changed since the last run: rebuilding every table")
                rebuild = True
            full = rebuild or tracked is None
            self._on_table = on_table
            report = self._rebuild(con, on_rows) if full else self._catch_up(con, tracked[0], on_rows)
            con.execute("INSERT OR REPLACE INTO _tracking (id, position, parameters, updated_at) "
                        "VALUES (1, ?, ?, now())", [report.position, fingerprint])
            con.execute("COMMIT")
            return report
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _rebuild(self, con: duckdb.DuckDBPyConnection, on_rows) -> RunReport:
        for name in ("events", "_visible_events", "log", "visible_events"):  # visible_events: earlier layout
            _drop(con, name)
        create_log(con)
        read, position = _load_log(con, self.store, 0, on_rows)
        self._publish_events(con, touched=False)
        con.execute("CREATE OR REPLACE TEMP TABLE _build_events AS SELECT * FROM events")
        pipeline.build(con, params=self.params, on_table=self._on_table, given=BUILD_INPUTS)
        patients = con.execute("SELECT count(DISTINCT patient_id) FROM log").fetchone()[0]
        return RunReport("rebuild", read, patients, position)

    def _catch_up(self, con: duckdb.DuckDBPyConnection, after: int, on_rows) -> RunReport:
        create_log(con)
        read, position = _load_log(con, self.store, after, on_rows)
        if read == 0:
            return RunReport("catch-up", 0, 0, after)
        new_rows = f"main.log WHERE position > {int(after)}"  # this run's rows (a zone-map skip of the rest)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _touched_ids AS SELECT DISTINCT patient_id FROM {new_rows}")
        ids = [r[0] for r in con.execute("SELECT patient_id FROM _touched_ids").fetchall()]
        # the touched patients' whole log (a view: it is read once, by the statement computing their visible
        # events): their earlier rows from the store, or from the log (see _history_from_store)
        if self._history_from_store(con, after):
            create_log(con, "_history", temp=True)
            with self.store.recorder.read_arrow(0, after, batch=2048, patients=ids) as reader:
                insert_log(con, reader, "temp.main._history")
            con.execute(f"CREATE OR REPLACE TEMP VIEW _touched_log AS SELECT * FROM temp.main._history "
                        f"UNION ALL SELECT * FROM {new_rows}")
        else:
            con.execute("CREATE OR REPLACE TEMP VIEW _touched_log AS SELECT * FROM main.log "
                        "WHERE patient_id IN (SELECT patient_id FROM temp.main._touched_ids)")
        # the fact versions depend on the amendments only: without a new one they (and the views) stand
        amended = con.execute(f"SELECT count(*) FROM {new_rows} AND type IN ({_AMENDMENT_TYPES})").fetchone()[0]
        versions = self._publish_events(con, touched=True) if amended else _versions(con)
        events = pipeline.module_sql("events", self.params, {
            "visible_events": f"({visible_sql('temp.main._touched_log', versions, None, None)})"})
        con.execute(f"CREATE OR REPLACE TEMP TABLE _build_events AS {events}")  # the view's rows, for them
        # On few rows DuckDB's optimiser costs more than it saves (as in replay.py); it changes plans, never
        # rows (tests: a catch-up either way equals a rebuild, which is optimised).
        few = con.execute("SELECT count(*) FROM temp.main._build_events").fetchone()[0] <= UNOPTIMISED_MAX_ROWS
        if few:
            con.execute("PRAGMA disable_optimizer")
        try:
            pipeline.build(con, params=self.params, patients=ids, on_table=self._on_table, given=BUILD_INPUTS)
        finally:
            if few:
                with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the error is the build's
                    con.execute("PRAGMA enable_optimizer")
        return RunReport("catch-up", read, len(ids), position)

    def _history_from_store(self, con: duckdb.DuckDBPyConnection, after: int) -> bool:
        """Whether to read the touched patients' earlier rows from the store rather than from `log`.

        The store finds a patient's rows through its stream index, at a cost per row (read and parse,
        about 1 µs); `log` is columnar, and its touched patients' rows, scattered over the whole file,
        cost a near-constant scan of every block (some 40 ms for 1.5M events here). So the store is read
        when the touched patients already known hold few rows, estimated from the file's mean per patient."""
        known, patients = con.execute(
            "SELECT count(*) FILTER (WHERE patient_id IN (SELECT patient_id FROM temp.main._touched_ids)), "
            "count(*) FROM main.patients").fetchone()
        return known * after <= STORE_HISTORY_MAX_ROWS * max(patients, 1)

    def _publish_events(self, con: duckdb.DuckDBPyConnection, touched: bool) -> str | None:
        """`events` as a view over the log: `_fact_versions` (the fold of every amendment, a small table)
        and `_visible_events` (the log seen through it). The payloads are stored once, in `log`.
        touched: only the touched patients' facts are folded again (from `_touched_log`); an amendment
        belongs to its target's patient, so no other patient's facts can have changed. Returns the
        fact-versions relation to read, None if no fact is corrected or retracted."""
        folded = fact_versions(amendments_of(con, "temp.main._touched_log" if touched else "log"), None)
        if touched:
            con.execute("DELETE FROM _fact_versions WHERE patient_id IN (SELECT patient_id FROM _touched_ids)")
            con.execute(f"INSERT INTO _fact_versions {VERSIONS_SQL}", folded)
        else:
            con.execute(f"CREATE OR REPLACE TABLE _fact_versions AS {VERSIONS_SQL}", folded)
        versions = _versions(con)
        con.execute(f"CREATE OR REPLACE VIEW _visible_events AS {visible_sql('log', versions, None, None)}")
        events = pipeline.module_sql("events", self.params, {"visible_events": "_visible_events"})
        con.execute(f"CREATE OR REPLACE VIEW events AS {events}")
        return versions


_AMENDMENT_TYPES = ", ".join(f"'{t}'" for t in AMENDMENTS)


def _versions(con: duckdb.DuckDBPyConnection) -> str | None:
    """The fact-versions relation the visible events read; None while no fact is corrected or retracted
    (the amendment join is then left out)."""
    return "_fact_versions" if con.execute("SELECT count(*) FROM _fact_versions").fetchone()[0] else None


# The rules read the visible events once computed (`_build_events`, a temporary table of this run), not the
# `events` view, which would recompute them for each rule.
BUILD_INPUTS = {
    "events": "temp.main._build_events",
    "visible_events": "(SELECT event_id, patient_id, type, occurred_on, recorded_at, payload "
                      "FROM temp.main._build_events)",
}


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a table or view of the file by name, whichever it is."""
    kind = con.execute("SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $n AND NOT temporary "
                       "UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $n AND NOT temporary "
                       "AND NOT internal", {"n": name}).fetchall()
    for (k,) in kind:
        con.execute(f"DROP {k} main.{pipeline.quote_ident(name)}")
