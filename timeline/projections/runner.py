"""The projection runner: keeps a DuckDB file caught up with the event store.

The DuckDB file holds the log as stored (`log`), every projection table, and `_tracking` (the last store
position read and the parameters used); `visible_events` is derived from the log in each run, as a
temporary table, for all patients or for the touched ones. A catch-up reads only the rows after the
tracking position, recomputes the patients they touch (every rule is per
patient), and commits rows and position in one DuckDB transaction: a crash at any moment leaves the file
as it was before the run or as it is after it, never in between. A rebuild recomputes everything from
the store in one transaction. Changed parameters force a rebuild (the rows depend on them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..store.eventstore import EventStore
from . import pipeline
from .visible import RAW_SCHEMA, build_visible, create_log, insert_log

log = logging.getLogger(__name__)

PROJECTIONS_FILE = "projections.duckdb"
PROJECTIONS_ENV = "TIMELINE_PROJECTIONS"
READ_BATCH = 250_000


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


def params_fingerprint(params: Mapping[str, Any]) -> str:
    return json.dumps({k: asdict(v) for k, v in sorted(params.items())}, sort_keys=True, default=str)


def _prefetched(batches, depth: int = 2):
    """Iterate `batches` produced by a background thread, so reading the store (sqlite3 releases the GIL
    while it steps) overlaps with DuckDB digesting the previous batch (DuckDB releases it too)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def produce() -> None:
        try:
            for b in batches:
                q.put(b)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            q.put(e)
        finally:
            q.put(done)

    threading.Thread(target=produce, daemon=True, name="timeline-store-reader").start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _raw_batches(store: EventStore, after: int, on_rows: Callable[[int], None] | None):
    """The stored rows after a position, in batches `insert_log` takes: (batch, its row count, its last
    position). SQLite batches come packed as one text; others become Arrow tables (RAW_SCHEMA)."""
    read = 0
    for rows in store.recorder.read_raw(after, READ_BATCH):
        if hasattr(rows, "text"):
            batch, count, last = rows, rows.count, rows.last
        else:
            pos, pid, typ, state = zip(*rows)
            batch = pa.table([pa.array(pos, pa.int64()), pa.array(pid, pa.string()), pa.array(typ, pa.string()),
                              pa.array(state, pa.string())], schema=RAW_SCHEMA)
            count, last = len(rows), pos[-1]
        read += count
        if on_rows:
            on_rows(read)
        yield batch, count, last


class Projector:
    """One catch-up process per DuckDB file (DuckDB admits one writer)."""

    def __init__(self, store: EventStore, path: str | os.PathLike[str] | None = None,
                 params: Mapping[str, Any] | None = None):
        self.store = store
        self.path = Path(path) if path is not None else projections_path(store)
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
        flat = {name: value for fields in json.loads(row[0]).values() for name, value in fields.items()}
        return pipeline.parameters_from(flat)

    def run(self, rebuild: bool = False, on_rows: Callable[[int], None] | None = None,
            on_table: Callable[[str, int, int], None] | None = None) -> RunReport:
        """Catch up (or rebuild) and commit atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fingerprint = params_fingerprint(self.params)
        con = duckdb.connect(str(self.path))
        try:
            con.execute("BEGIN TRANSACTION")
            tracked = self._tracking(con)
            if tracked is not None and tracked[1] != fingerprint and not rebuild:
                log.warning("parameters changed since the last run: rebuilding every table")
                rebuild = True
            full = rebuild or tracked is None
            self._on_table = on_table
            report = self._rebuild(con, on_rows) if full else self._catch_up(con, tracked[0], on_rows)
            con.execute("INSERT OR REPLACE INTO _tracking (id, position, parameters, updated_at) "
                        "VALUES (1, ?, ?, now())", [report.position, fingerprint])
            con.execute("COMMIT")
            return report
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _rebuild(self, con: duckdb.DuckDBPyConnection, on_rows) -> RunReport:
        con.execute("DROP TABLE IF EXISTS log")
        create_log(con)
        position = 0
        read = 0
        for raw, count, last in _prefetched(_raw_batches(self.store, 0, on_rows)):
            insert_log(con, raw)
            position = last
            read += count
        con.execute("DROP TABLE IF EXISTS main.visible_events")
        build_visible(con, temp=True)  # derived from `log` whenever needed: not kept in the file
        pipeline.build(con, params=self.params, on_table=self._on_table)
        patients = con.execute("SELECT count(DISTINCT patient_id) FROM log").fetchone()[0]
        return RunReport("rebuild", read, patients, position)

    def _catch_up(self, con: duckdb.DuckDBPyConnection, after: int, on_rows) -> RunReport:
        create_log(con)
        con.execute("CREATE OR REPLACE TEMP TABLE _touched (patient_id VARCHAR)")
        position, read = after, 0
        for raw, count, last in _prefetched(_raw_batches(self.store, after, on_rows)):
            insert_log(con, raw)
            position = last
            read += count
        con.execute(f"INSERT INTO _touched SELECT DISTINCT patient_id FROM log WHERE position > {int(after)}")
        if read == 0:
            return RunReport("catch-up", 0, 0, after)
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_ids AS SELECT DISTINCT patient_id FROM _touched")
        build_visible(con, patients="_touched_ids", temp=True)  # the touched patients' visible events
        ids = [r[0] for r in con.execute("SELECT patient_id FROM _touched_ids").fetchall()]
        pipeline.build(con, params=self.params, patients=ids, on_table=self._on_table)
        return RunReport("catch-up", read, len(ids), position)
