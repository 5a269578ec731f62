"""The projection runner: the only writer of the projection file, which it keeps caught up with the store.

The file holds the log as stored (`log`, read from the store as Arrow batches and parsed by DuckDB),
`_fact_versions` (corrections and retractions in force), the view models as views over the log (`events`:
the payloads are stored once), every other projection table, and `_tracking` (the last store position
read and the parameters the rows depend on). In each run the visible events are computed once, for all
patients or for the touched ones, and every model reads them.

A catch-up reads only the rows after the tracking position into `log`, recomputes the patients they touch
(every rule is per patient, over the patient's whole history: their earlier rows are read as context, from
the store's patient index when they are few, else from `log`), and commits rows and position in one DuckDB
transaction. A rebuild computes everything from the store into a new file, which then replaces the old one
in one rename. Changed parameters (or another layout) force a rebuild.

Readers never wait for a rebuild: a reader that opened the old file goes on reading it, whole, and the
next one opens the new file. A catch-up is written in place when no reader holds the file (readers that
arrive meanwhile wait for its commit, `views.open_materialised`); while readers hold it, the catch-up is
made on a copy that replaces the file when done. Either way a crash at any moment leaves the file as it
was before the run or as it is after it, never in between; writers queue on a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from ..private import FILE_MODE, private_file, private_folder
from ..settings import PROJECTIONS_ENV
from ..store.eventstore import EventStore
from ..store.facts import AMENDMENTS
from . import build as building
from .loader import amendments, create_log, fact_versions, fold, insert_log, visible_select, write_versions
from .parameters import Params, resolve
from . import partitions
from .partitions import Plan
from .state import (
    LAYOUT,
    DamagedProjectionsError,
    FileState,
    damaged,
    history_mismatch,
    is_lock_conflict,
    projections_file,
    read_state,
)

log = logging.getLogger(__name__)

READ_CHUNK = 2_000_000  # store positions per read: one DuckDB statement each, progress between them
# A catch-up reads the touched patients' earlier rows from the store (through its stream index: about 3.4 µs a row,
# parse included) while the touched patients already known are at most this share of all the patients; past it, it
# scans the log (about 60 ns a stored row, whatever is touched). Both grow with the store, so the choice is a share:
# at 100,000 patients, 1% more events touching 1,000 known patients caught up in 1.76-1.79 s from the store against
# 2.07-2.29 s by the scan (the break-even is near 1/58; the earlier bound of 30,000 rows was right at 10,000 only).
STORE_HISTORY_MAX_SHARE = 1 / 50
# A catch-up whose touched patients have at most this many visible events plans its rules with one pass of
# DuckDB's optimiser only, the filter pushdown (`_FEW_ROWS_OPTIMISERS`): on few rows the other passes cost more
# than they save, and without any pass the rules' joins read every row of their inputs before filtering them
# (benchmarks/projections.py measures the catch-ups). So does the rebuild of a store of at most this many rows
# (a small centre's, the demo's, the tests'): the seed cohort (607 events), in-process, alternated, 11 rounds:
# 410 ms (353-464) against 483 ms (426-518) planned in full on two threads.
UNOPTIMISED_MAX_ROWS = 50_000
_FEW_ROWS_OPTIMISERS = ("filter_pushdown",)
# ... and runs them on this many threads: on so few rows a second thread's scheduling costs more than its share of
# the work. 10,000 patients, in-process, alternated with two threads, 7 rounds each way round: after one more event
# 220 and 223 ms against 265 and 281 ms; after 1% more events (15,750) no difference (405 and 425 against 445 and 418).
FEW_ROWS_THREADS = 1

_AMENDMENT_TYPES = tuple(AMENDMENTS)


@dataclass(frozen=True)
class RunReport:
    mode: str  # "rebuild" | "catch-up"
    rows_read: int
    patients: int
    position: int
    note: str | None = None  # why a catch-up became a rebuild, or which broken file was set aside


def projections_path(store: EventStore) -> Path:
    """Where the projection file of `store` lives (`state.projections_file`)."""
    return projections_file(store.location, store.data_dir)


def fingerprint(params: Params) -> str:
    """What the rows depend on besides the events: the parameters, and the layout of the file."""
    return f'{{"layout": {LAYOUT}, "parameters": {params.fingerprint()}}}'


def _load_log(con: duckdb.DuckDBPyConnection, store: EventStore, after: int,
              on_rows: Callable[[int], None] | None) -> tuple[int, int]:
    """Append the stored rows after `after` to `log`, in chunks (progress after each); returns (rows read,
    last position). The end is fixed first: rows appended meanwhile wait for the next run."""
    end = store.max_position()
    read = 0
    for lo in range(after, end, READ_CHUNK):
        hi = min(lo + READ_CHUNK, end)
        # batches of 64k rows; a small read (a catch-up) in at least 8, which DuckDB parses in parallel
        batch = max(2048, min(65_536, (hi - lo) // 8))
        with store.recorder.read_arrow(lo, hi, batch=batch) as reader:
            insert_log(con, reader)
        read = con.execute("SELECT count(*) FROM log WHERE position > ?", [after]).fetchall()[0][0]
        if on_rows:
            on_rows(read)
    return read, max(end, after)


class Projector:
    """The writer of one projection file (DuckDB admits one writer; writers queue on a lock file)."""

    def __init__(self, store: EventStore, path: str | os.PathLike[str] | None = None,
                 params: Params | None = None, plan: Plan | None = None):
        self.store = store
        self.plan = plan if plan is not None else Plan()  # a rebuild by partitions, its memory limit (issue 15)
        self.path = Path(path) if path is not None else projections_path(store)
        if "?" in str(self.path):  # DuckDB reads what follows a '?' in a file name as options
            raise ValueError(f"the projections file {self.path} has a '?' in its path, which DuckDB cannot open; "
                             f"set {PROJECTIONS_ENV} to another path")
        self.params = params if params is not None else resolve()
        self._on_table: Callable[[str, int, int], None] | None = None

    # -- the writer's lock and files -------------------------------------------------------------------
    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        private_folder(self.path.parent)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(os.open(lock_path, os.O_WRONLY | os.O_CREAT, FILE_MODE), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another `timeline project` writing {self.path} …", file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _scratch(self) -> Path:
        return self.path.with_name(f"{self.path.name}.building-{os.getpid()}")

    def _clear_scratch(self) -> None:
        """Files left by a writer that was killed before its rename (only writers make them)."""
        for stale in self.path.parent.glob(f"{self.path.name}.building-*"):
            stale.unlink(missing_ok=True)

    def _set_aside(self) -> Path:
        """Move an unreadable projection file (and its write-ahead log) aside, named with the time."""
        aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(self.path, aside)
        if Path(f"{self.path}.wal").exists():
            os.replace(f"{self.path}.wal", f"{aside}.wal")
        return aside

    def _publish(self, scratch: Path) -> None:
        """The finished file replaces the published one in one rename (readers of the old go on reading it)."""
        Path(f"{self.path}.wal").unlink(missing_ok=True)  # a crashed writer's log of the file being replaced
        os.replace(scratch, self.path)

    # -- running ---------------------------------------------------------------------------------------
    def run(self, rebuild: bool = False, on_rows: Callable[[int], None] | None = None,
            on_table: Callable[[str, int, int], None] | None = None) -> RunReport:
        """Catch up (or rebuild), atomically. An encrypted store's projections are never written to a file
        (`timeline.app.IN_MEMORY`): refused."""
        if self.store.encrypted:
            raise PermissionError(f"{self.path}: not written, since the event store is encrypted (its projections are "
                                  "built in memory by each command)")
        self._on_table = on_table
        with self._writer_lock():
            self._clear_scratch()
            note = None
            con = None  # the file opened for writing, once: its state is read through it (else read-only)
            try:
                con = self._connect_in_place() if self.path.exists() else None
                state = read_state(con) if con is not None else self._state()
            except duckdb.Error as e:
                if con is not None:
                    con.close()
                    con = None
                if not rebuild:
                    raise DamagedProjectionsError(damaged(self.path, e)) from None
                note = f"the unreadable projection file was kept as {self._set_aside()}"
                state = None
            if state is not None and state.params != self.params and not rebuild:
                log.warning("parameters (or the file's layout) changed since the last run: rebuilding every table")
            if state is not None and not rebuild:
                note = history_mismatch(self.store.recorder, state)
                if note is not None:
                    note += "; rebuilt from the store as it is"
            if rebuild or state is None or state.params != self.params or note is not None:
                if con is not None:
                    con.close()
                report = self._in_scratch(lambda c: self._rebuild(c, on_rows), copy=False)
                return replace(report, note=note)
            if con is None:  # readers hold the file: catch up a copy, then swap it in
                return self._in_scratch(lambda c: self._catch_up(c, state.position, on_rows), copy=True)
            return self._transaction(con, lambda c: self._catch_up(c, state.position, on_rows))

    def _state(self) -> FileState | None:
        if not self.path.exists():
            return None
        for attempt in range(600):  # a reader cannot hold the file against us for long: its read is short
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                break
            except duckdb.Error as e:
                if not is_lock_conflict(e):
                    raise
                time.sleep(0.05)
        else:
            raise TimeoutError(f"{self.path} stayed locked by another process")
        try:
            return read_state(con)
        finally:
            con.close()

    def _connect_in_place(self) -> duckdb.DuckDBPyConnection | None:
        try:
            return duckdb.connect(str(self.path), config=self._config())
        except duckdb.Error as e:
            if is_lock_conflict(e):
                return None
            raise

    def _config(self) -> dict[str, object]:
        return {"preserve_insertion_order": False, "memory_limit": self.plan.limit}

    def _in_scratch(self, work: Callable[[duckdb.DuckDBPyConnection], RunReport], copy: bool) -> RunReport:
        scratch = self._scratch()
        try:
            if copy:
                shutil.copyfile(self.path, scratch)
                if Path(f"{self.path}.wal").exists():  # committed work of a crashed writer, not yet checkpointed
                    shutil.copyfile(f"{self.path}.wal", f"{scratch}.wal")
            con = duckdb.connect(str(scratch), config=self._config())
            private_file(scratch)  # published under the file's name: owner only, whatever the umask
            report = self._transaction(con, work)
            self._publish(scratch)
            return report
        finally:
            scratch.unlink(missing_ok=True)
            Path(f"{scratch}.wal").unlink(missing_ok=True)

    def _transaction(self, con: duckdb.DuckDBPyConnection,
                     work: Callable[[duckdb.DuckDBPyConnection], RunReport]) -> RunReport:
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE TABLE IF NOT EXISTS _tracking (id INTEGER PRIMARY KEY, position BIGINT NOT NULL, "
                        "parameters VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                        "store_id VARCHAR, event_at VARCHAR)")
            report = work(con)
            event_at = self.store.recorder.event_id_at(report.position) if report.position else None
            con.execute("INSERT OR REPLACE INTO _tracking (id, position, parameters, updated_at, store_id, event_at) "
                        "VALUES (1, ?, ?, now(), ?, ?)",
                        [report.position, fingerprint(self.params), self.store.recorder.store_id(), event_at])
            con.execute("COMMIT")
            return report
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _rebuild(self, con: duckdb.DuckDBPyConnection, on_rows) -> RunReport:
        create_log(con)
        read, position = _load_log(con, self.store, 0, on_rows)
        self._fold_facts(con, touched=False)
        # by partitions of patients, or on a cluster (chosen by the events read: counting the visible ones
        # would cost a pass of their own)
        if self.plan.split(read):
            self._build_split(con, read)
        else:
            with _planned_for(con, few=read <= UNOPTIMISED_MAX_ROWS):  # a small store: as a small catch-up
                building.build(con, self.params, inputs={"visible_events": "main._visible_events"},
                               file_views={"visible_events": "main._visible_events"}, on_table=self._on_table)
        patients = con.execute("SELECT count(DISTINCT patient_id) FROM log").fetchall()[0][0]
        return RunReport("rebuild", read, patients, position)

    def _build_split(self, con: duckdb.DuckDBPyConnection, events: int) -> None:
        """Every table by partitions of patients: in this process, or as the tasks of a Dask cluster."""
        visible = "main._visible_events"
        if self.plan.engine == "dask":
            from . import cluster

            cluster.build(con, self.params, visible, self.plan, events, self._on_table)
        else:
            partitions.build(con, self.params, visible, self.plan.count(events), self._on_table)

    def _catch_up(self, con: duckdb.DuckDBPyConnection, after: int, on_rows) -> RunReport:
        create_log(con)
        read, position = _load_log(con, self.store, after, on_rows)
        if read == 0:
            return RunReport("catch-up", 0, 0, after)
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_ids AS "
                    "SELECT DISTINCT patient_id FROM main.log WHERE position > ?", [after])
        ids = [r[0] for r in con.execute("SELECT patient_id FROM _touched_ids").fetchall()]
        # the touched patients' whole log (a view, read once, by the statement computing their visible events):
        # their earlier rows from the store, or from the log (see _history_from_store)
        if self._history_from_store(con, after):
            create_log(con, "_history", temp=True)
            with self.store.recorder.read_arrow(0, after, batch=2048, patients=ids) as reader:
                insert_log(con, reader, "temp.main._history")
            con.execute("CREATE OR REPLACE TEMP TABLE _new_rows AS SELECT * FROM main.log WHERE position > ?", [after])
            con.execute("CREATE OR REPLACE TEMP VIEW _touched_log AS SELECT * FROM temp.main._history "
                        "UNION ALL SELECT * FROM temp.main._new_rows")
        else:
            con.execute("CREATE OR REPLACE TEMP VIEW _touched_log AS SELECT * FROM main.log "
                        "WHERE patient_id IN (SELECT patient_id FROM temp.main._touched_ids)")
        # the fact versions depend on the amendments only: without a new one they (and the views) stand
        amended = con.execute("SELECT count(*) FROM main.log WHERE position > ? AND list_contains(?, type)",
                              [after, list(_AMENDMENT_TYPES)]).fetchall()[0][0]
        versions = self._fold_facts(con, touched=True) if amended else fact_versions(con)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _touched_visible AS "
                    f"{visible_select('temp.main._touched_log', versions)}")
        # On few rows most of DuckDB's optimiser, and a second thread, cost more than they save (UNOPTIMISED_MAX_ROWS,
        # FEW_ROWS_THREADS); they change plans, never rows (tests: a catch-up either way equals a rebuild).
        few = con.execute("SELECT count(*) FROM temp.main._touched_visible").fetchall()[0][0] <= UNOPTIMISED_MAX_ROWS
        with _planned_for(con, few):
            building.build(con, self.params, inputs={"visible_events": "temp.main._touched_visible"},
                           patients=ids, on_table=self._on_table)
        return RunReport("catch-up", read, len(ids), position)

    def _history_from_store(self, con: duckdb.DuckDBPyConnection, after: int) -> bool:
        """Whether to read the touched patients' earlier rows from the store rather than from `log`.

        The store finds a patient's rows through its stream index, at a cost per row; `log` is columnar, and its
        touched patients' rows, scattered over the whole file, cost a scan of every row. Patients have rows
        alike, so the store is read when the touched patients already known are a small share of all the
        patients (`STORE_HISTORY_MAX_SHARE`)."""
        known, patients = con.execute(
            "SELECT count(*) FILTER (WHERE patient_id IN (SELECT patient_id FROM temp.main._touched_ids)), "
            "count(*) FROM main.patients").fetchall()[0]
        return known <= STORE_HISTORY_MAX_SHARE * max(patients, 1)

    def _fold_facts(self, con: duckdb.DuckDBPyConnection, touched: bool) -> str | None:
        """`_fact_versions` (the fold of every amendment, a small table) and `_visible_events` (the log seen
        through it, a view: the payloads are stored once, in `log`). touched: only the touched patients'
        facts are folded again (from `_touched_log`); an amendment belongs to its target's patient, so no
        other patient's facts can have changed. Returns the fact-versions relation to read, None if no fact
        is corrected or retracted."""
        folded = fold(amendments(con, "temp.main._touched_log" if touched else "main.log"), None)
        if touched:
            con.execute("DELETE FROM _fact_versions WHERE patient_id IN (SELECT patient_id FROM _touched_ids)")
        write_versions(con, "main._fact_versions", folded, append=touched)
        versions = fact_versions(con)
        con.execute(f"CREATE OR REPLACE VIEW main._visible_events AS {visible_select('main.log', versions)}")
        return versions


@contextlib.contextmanager
def _planned_for(con: duckdb.DuckDBPyConnection, few: bool) -> Iterator[None]:
    """The rules run on few rows (a small catch-up or a small store): DuckDB plans them with the filter pushdown
    only and runs them on `FEW_ROWS_THREADS` (`UNOPTIMISED_MAX_ROWS`); else as configured. Plans change, never
    rows (tests: a catch-up either way equals a rebuild, and a small store's tables equal a replay's)."""
    if not few:
        yield
        return
    passes = [r[0] for r in con.execute("SELECT name FROM duckdb_optimizers()").fetchall()]
    con.execute("SET disabled_optimizers = ?", [",".join(p for p in passes if p not in _FEW_ROWS_OPTIMISERS)])
    con.execute(f"SET threads = {FEW_ROWS_THREADS}")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the error is the build's
            con.execute("RESET disabled_optimizers")
            con.execute("RESET threads")
