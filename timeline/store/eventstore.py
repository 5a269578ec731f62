"""The event store: append validated events to per-patient streams, read them back, fold corrections.

Application layer over the recorders (`recorders.py`): it stamps `recorded_at`, enforces idempotency by
`event_id`, checks amendments against the patient's facts, and makes an append all-or-nothing. Version
conflicts (another writer took the stream version first) roll the transaction back and it is retried,
since clinical order is `occurred_on`, not arrival.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlparse

from ..clock import us_to_datetime
from ..events.basics import Problem, RejectedError
from ..private import private_file, private_folder
from ..settings import SQLITE_FILE, store_location
from .facts import AMENDMENTS, Ledger, LogRecord, fold
from .upcasting import upcast
from .recorders import (
    ID_INDEX,
    AppendTransaction,
    IntegrityError,
    StoredRow,
    TimelineRecorderMixin,
    sqlite_recorder,
)

log = logging.getLogger(__name__)

BATCH = 10_000
MAX_RETRIES = 5


def utc_now_us() -> int:
    return time.time_ns() // 1000


def parse_recorded_at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Prepared(NamedTuple):
    """A validated event ready to append: its stream, identity, content digest and canonical JSON.

    A plain tuple underneath: parsed in a worker process, it crosses to the writer cheaply.
    """

    patient_id: str
    event_id: bytes  # 16 bytes
    digest: bytes  # 16 bytes: content hash (the derived event_id when none is given)
    type: str
    occurred_on: str  # ISO date
    body: bytes  # canonical public JSON, with event_id, without recorded_at
    target: bytes | None = None  # the event an amendment corrects or retracts
    line: int | None = None  # where it came from, for error messages
    source_record_id: str | None = None  # the record's id in the system it came from

    @property
    def event_uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.event_id)


# Named getters of Prepared's fields: a batch of plain tuples is read by name, at C speed
_PATIENT, _EVENT_ID, _DIGEST, _TARGET, _SOURCE_RECORD = (
    itemgetter(Prepared._fields.index(name))
    for name in ("patient_id", "event_id", "digest", "target", "source_record_id"))


class NoStoreError(FileNotFoundError):
    """A data folder named for reading holds no event store."""


@dataclass
class AppendReport:
    new: int = 0
    present: int = 0
    corrected: int = 0  # source records ingested again with other content: a correction recorded for each
    problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False  # nothing was stored: the counts say what would have been


#: Makes the correction of a stored event by a re-ingested source record: (the new record, the event id of
#: the record's first version) -> the prepared `event_corrected`, or a Problem.
Corrector = Callable[["Prepared", bytes], "Prepared | Problem"]


class _DryRun(Exception):
    """Ends a dry-run append: its transaction is rolled back."""


def record_from_row(row: StoredRow) -> LogRecord:
    data = upcast(json.loads(row.state))
    recorded_at = parse_recorded_at(data.pop("recorded_at"))
    return LogRecord(
        position=row.position,
        patient_id=row.patient_id,
        event_id=data["event_id"],
        type=row.type,
        occurred_on=date.fromisoformat(data["occurred_on"]),
        recorded_at=recorded_at,
        data=data,
    )


def differing(stored: bytes, new: bytes) -> str:
    """Which fields two versions of one patient's event differ in, by name only (never their values)."""
    a, b = json.loads(stored), json.loads(new)
    names = sorted(k for k in set(a) | set(b) if k not in ("event_id", "recorded_at") and a.get(k) != b.get(k))
    return "fields that differ: " + ", ".join(names) if names else "same fields"


class _Appender:
    """State of one append transaction: idempotency checks, per-patient ledgers for amendments, counts.

    Idempotency by event_id is checked across the store, whoever chose the id (`_stored`: an explicit id
    may equal a derived id of another patient's event); a conflict names ids and fields, never another
    patient's content. Nothing is kept across batches but the ledgers of amended patients, so
    memory stays flat whatever the input size.
    """

    def __init__(self, tx: AppendTransaction, now_us: Callable[[], int], corrector: Corrector | None = None):
        self.tx = tx
        self.now_us = now_us
        self.corrector = corrector
        self.seen: dict[bytes, Prepared] = {}  # this batch's ids
        self.ledgers: dict[str, Ledger] = {}
        self.sources: dict[str, tuple[str, bytes, bytes]] = {}  # source records met in this append
        self.report = AppendReport()

    def _ledger(self, patient_id: str) -> Ledger:
        led = self.ledgers.get(patient_id)
        if led is None:
            led = Ledger(record_from_row(r) for r in self.tx.stream(patient_id))
            self.ledgers[patient_id] = led
        return led

    def append(self, batch: list[Prepared]) -> None:
        """Check and insert one batch. After a problem, batches are still inserted (the transaction will
        be rolled back) so that later lines are checked against everything before them.

        Prepared events may come as plain tuples in Prepared's field order (from a parse worker: they cross
        the process boundary faster); they are unpacked by name, never indexed."""
        rep = self.report
        self.seen = {}
        pids = list(dict.fromkeys(map(_PATIENT, batch)))
        versions = self.tx.next_versions(pids)
        stored = self._stored(batch, pids, versions)  # eid -> (pid, version, digest), whoever's
        wanted = [sid for sid in map(_SOURCE_RECORD, batch) if sid is not None and sid not in self.sources]
        if wanted:
            self.sources.update(self.tx.source_records(list(dict.fromkeys(wanted))))
        fresh: list = []
        source_rows: dict[str, tuple[str, str, bytes, bytes]] = {}
        corrected_before = rep.corrected
        for p in batch:
            pid, eid, digest, _kind, _on, body, _target, line, sid = p
            if sid is not None and not self._source_record(p, fresh, source_rows):
                continue  # a source record already stored: present, corrected, or a problem
            prior = self.seen.get(eid)
            if prior is None and eid not in stored:
                self.seen[eid] = p
                fresh.append(p)
                continue
            shown = str(uuid.UUID(bytes=eid))
            if prior is not None:
                prior_pid, _eid, prior_digest, _k, _o, prior_body, _t, prior_line, _sid = prior
                if prior_digest == digest and prior_pid == pid:
                    rep.present += 1
                elif prior_pid != pid:
                    rep.problems.append(Problem("event_id", shown, f"already the id of another patient's event in "
                                                f"this input (line {prior_line}); an event id is unique in the store",
                                                line))
                else:
                    rep.problems.append(Problem("event_id", shown, f"already used in this input (line {prior_line}) "
                                                f"for other content ({differing(prior_body, body)})", line))
                continue
            owner, version, stored_digest = stored[eid]
            if owner != pid:
                rep.problems.append(Problem("event_id", shown, "already the id of another patient's event; an event "
                                            "id is unique in the store", line))
                continue
            if stored_digest == digest:
                rep.present += 1
                continue
            existing = self.tx.stream(owner)[version - 1].state
            rep.problems.append(Problem("event_id", shown, f"already recorded for this patient with other content "
                                        f"({differing(existing, body)})", line))
        if any(map(_TARGET, fresh)):  # an amendment's target: 16 bytes (true), else None
            self._check_amendments(fresh)
        if not fresh:
            return
        rows, id_rows, last_us = self._rows(fresh)
        self.tx.insert(rows, id_rows, last_us, list(source_rows.values()))
        rep.new += len(fresh) - (rep.corrected - corrected_before)  # a correction made here is not a new record

    def _stored(self, batch: list[Prepared], pids: list[str], versions: dict[str, int]) -> dict:
        """The ids of a batch already stored, whoever's: event_id -> (patient, version, digest).

        A derived id hashes the content, patient included: only that patient's own events (their stream) or
        an explicitly given id (the index of explicit ids) can equal it. An explicit id may equal anything,
        also another patient's derived id: every stored id's first 8 bytes are in `timeline_event_ids`, and an
        explicit id found there but neither in its patient's stream nor among the explicit ids is looked for
        in the log (rare: a reused id, or two ids sharing 8 bytes). A bulk load of new patients with derived
        ids looks nothing up, so it costs little more than the bare inserts."""
        stored = self.tx.stream_ids([pid for pid in pids if versions[pid] > 1])
        explicit = [eid for eid, digest in zip(map(_EVENT_ID, batch), map(_DIGEST, batch), strict=True)
                    if eid != digest]
        if explicit or self.tx.has_explicit_ids():
            stored.update(self.tx.explicit_ids(list(map(_EVENT_ID, batch)) if self.tx.has_explicit_ids()
                                               else explicit))
        unknown = [eid for eid in explicit if eid not in stored]
        for eid in self.tx.known_prefixes(unknown) if unknown else ():
            owner = self.tx.owner_of(str(uuid.UUID(bytes=eid)))
            if owner is not None:
                stored[eid] = (owner, 0, b"")
        return stored

    def _source_record(self, p: Prepared, fresh: list, source_rows: dict) -> bool:
        """A new event that names its source record: True to append it as it is (the record is new);
        False when it is handled here: already present (same content), a correction of the stored record
        (other content), or a problem."""
        pid, eid, digest, _kind, _on, _body, _target, line, sid = p
        known = self.sources.get(sid)
        if known is None:
            self.sources[sid] = (pid, eid, digest)
            source_rows[sid] = (sid, pid, eid, digest)
            return True
        owner, first_eid, latest = known
        if owner != pid:
            self.report.problems.append(Problem("source_record_id", sid, "already the source record of an event "
                                                "of another patient", line))
        elif latest == digest:
            self.report.present += 1
        elif self.corrector is None:
            self.report.problems.append(Problem("source_record_id", sid, "already stored with other content", line))
        else:
            correction = self.corrector(p, first_eid)
            if isinstance(correction, Problem):
                self.report.problems.append(correction)
                return False
            self.sources[sid] = (pid, first_eid, digest)
            source_rows[sid] = (sid, pid, first_eid, digest)
            self.seen[correction.event_id] = correction
            fresh.append(correction)
            self.report.corrected += 1
        return False

    def _rows(self, fresh: list) -> tuple[list[tuple], tuple[list[tuple], list[bytes]], int]:
        """Stream rows (versions assigned, `recorded_at` stamped: strictly increasing) and the index rows: of
        the explicitly given ids, and every id (`timeline_event_ids` keeps its first 8 bytes)."""
        versions = self.tx.next_versions(list(dict.fromkeys(map(_PATIENT, fresh))))
        base = max(self.now_us(), self.tx.last_us + 1)
        rows, explicit = [], []
        second, prefix = -1, b""
        us = base
        for pid, eid, digest, kind, _on, body, _target, _line, _sid in fresh:
            if us // 1_000_000 != second:
                second = us // 1_000_000
                prefix = us_to_datetime(second * 1_000_000).strftime(',"recorded_at":"%Y-%m-%dT%H:%M:%S').encode()
            v = versions[pid]
            versions[pid] = v + 1
            rows.append((pid, v, kind, b"%b%b.%06dZ\"}" % (body[:-1], prefix, us % 1_000_000)))
            if eid != digest:
                explicit.append((eid, pid, v, digest))
            us += 1
        return rows, (explicit, list(map(_EVENT_ID, fresh))), base + len(fresh) - 1

    def _check_amendments(self, fresh: list) -> None:
        fresh[:] = [p if isinstance(p, Prepared) else Prepared._make(p) for p in fresh]
        amended = {p.patient_id for p in fresh if p.target is not None}
        now = us_to_datetime(self.now_us())
        for p in fresh:
            if p.patient_id not in amended:
                continue
            data = json.loads(p.body)
            rec = LogRecord(0, p.patient_id, data["event_id"], p.type, date.fromisoformat(p.occurred_on), now, data)
            ledger = self._ledger(p.patient_id)
            if p.target is not None:
                field_name = "corrects" if p.type == "event_corrected" else "retracts"
                target_id = str(uuid.UUID(bytes=p.target))
                in_batch = self.seen.get(p.target)
                owner = Prepared._make(in_batch).patient_id if in_batch is not None else None
                if owner is None and target_id not in ledger.by_id:
                    owner = self.tx.owner_of(target_id)  # rare: only to name the other patient
                if owner is not None and owner != p.patient_id:
                    self.report.problems.append(Problem(
                        field_name, target_id, f"the event belongs to another patient, not to {p.patient_id}", p.line))
                    continue
                why = ledger.problem(rec)
                if why is not None:
                    self.report.problems.append(Problem(field_name, target_id, why, p.line))
                    continue
            ledger.add(rec)


class EventStore:
    """Per-patient event streams in an eventsourcing recorder (SQLite file, PostgreSQL, or memory)."""

    def __init__(self, recorder: TimelineRecorderMixin, location: str, data_dir: Path | None,
                 now_us: Callable[[], int] = utc_now_us):
        self.recorder = recorder
        self.location = location
        self.data_dir = data_dir
        self.now_us = now_us
        self._checked = False  # the integrity check before the first write of this session passed

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None, create: bool = True) -> EventStore:
        """Open the store named by one setting, creating it if needed (unless `create` is false: then a
        data folder that holds no store is a `NoStoreError`).

        `None` → `$TIMELINE_STORE` or `./timeline-data`; a folder path → an SQLite event store inside it;
        `postgresql://user:pw@host:port/db[?schema=name]` → the library's PostgreSQL module (tables in
        that schema, created if needed); `memory` → in-memory SQLite.
        """
        loc = store_location(location)
        if loc == "memory":
            name = f"file:timeline-{uuid.uuid4().hex}?mode=memory&cache=shared"
            return cls(sqlite_recorder(name), loc, None).protected()
        if loc.startswith(("postgresql://", "postgres://")):
            return cls(_postgres(loc), loc, None).protected()
        folder = Path(loc)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"store location {loc!r} is a file; give a data folder (or postgresql://…, memory)")
        if not create and not (folder / SQLITE_FILE).is_file():
            raise NoStoreError(f"{folder} holds no event store (no {SQLITE_FILE}); check --store, or ingest into "
                               "it first: `timeline ingest` creates a new store")
        new = not (folder / SQLITE_FILE).exists()
        private_folder(folder)
        store = cls(sqlite_recorder(str(folder / SQLITE_FILE)), loc, folder)
        if new:  # SQLite gives its -wal and -shm files the database file's permissions
            private_file(folder / SQLITE_FILE)
        return store.protected()

    def protected(self) -> EventStore:
        """Take the master key, if the store is encrypted (or new, and a key is given: then it is made
        encrypted); a missing or wrong key, or a key given for a store that holds plain events, is one line
        (`KeyProblem`) and nothing is read. See `encryption.py`."""
        from .encryption import KeyProblem, KeyRing, master_key
        from .faults import describe

        try:
            key = master_key(self.data_dir)
            check = self.recorder.meta("key_check")
            where = describe(self.location)
            if check is None and key is not None:
                if self.max_position() > 0:
                    raise KeyProblem(f"{where} holds events that are not encrypted, but a key was given "
                                     "($TIMELINE_CIPHER_KEY or a key file): a store is encrypted from its first event; "
                                     "ingest into a new data folder to encrypt (nothing was read or written)")
                key_check, pseudonym_key = KeyRing.create(key)
                # an empty store: its id index is kept from the start (sealed, its log could not be indexed later)
                self.recorder.set_meta_once({"key_check": key_check, "pseudonym_key": pseudonym_key, ID_INDEX: "kept"})
                check = self.recorder.meta("key_check")
            if check is not None:
                if key is None:
                    raise KeyProblem(f"{where} is encrypted: give its key ($TIMELINE_CIPHER_KEY, or a key file with "
                                     "--key-file or $TIMELINE_KEY_FILE); nothing was read")
                self.recorder.ring = KeyRing.open(key, check, self.recorder.meta("pseudonym_key") or "", where)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def encrypted(self) -> bool:
        return self.recorder.ring is not None

    def close(self) -> None:
        self.recorder.datastore.close()  # type: ignore[attr-defined]

    def check_before_writing(self) -> None:
        """The store's cheap integrity check, once per session before its first write: a store with damaged
        pages is refused before anything is added to it (`timeline verify` runs the full check)."""
        if self._checked:
            return
        found = self.recorder.quick_check()
        if found is not None:
            from .faults import StoreDamagedError, describe

            raise StoreDamagedError(f"{describe(self.location)} is damaged ({found[:300]}): nothing was stored; "
                                    "restore it from a backup (`timeline verify` says what is damaged)")
        self._checked = True

    # -- writing -------------------------------------------------------------------------------------
    def append(self, source: Callable[[], Iterable[Prepared | Problem | list]], what: str = "input",
               on_batch: Callable[[AppendReport], None] | None = None, *, corrector: Corrector | None = None,
               dry_run: bool = False) -> AppendReport:
        """Append everything `source()` yields in one transaction, or nothing.

        `corrector` makes the correction of a stored source record ingested again with other content
        (without it, that is a problem). `dry_run`: everything is checked and counted as for a real append,
        then the transaction is rolled back; the report says what would have been stored.

        `source` yields prepared events (or plain tuples in their field order), problems, or whole lists of
        them (a block of a bulk reader, appended as one batch); it is a callable so the whole input can be
        replayed if the transaction must be retried
        after a version conflict. Problems yielded by the source (validation) and found here (conflicting
        ids, inadmissible amendments) are all collected; if there is any, the transaction is rolled back
        and `RejectedError` lists them all.
        """
        self.check_before_writing()
        for attempt in range(1, MAX_RETRIES + 1):
            try:
                return self._append_once(source, what, on_batch, corrector, dry_run)
            except (IntegrityError, sqlite3.IntegrityError, _pg_unique_violation()) as e:
                if attempt == MAX_RETRIES:
                    raise
                log.info("version conflict on append (attempt %d), retrying: %s", attempt, type(e).__name__)
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _append_once(self, source: Callable[[], Iterable[Prepared | Problem]], what: str,
                     on_batch: Callable[[AppendReport], None] | None, corrector: Corrector | None,
                     dry_run: bool) -> AppendReport:
        try:
            return self._append_transaction(source, what, on_batch, corrector, dry_run)
        except _DryRun as done:
            return done.args[0]

    def _append_transaction(self, source: Callable[[], Iterable[Prepared | Problem]], what: str,
                            on_batch: Callable[[AppendReport], None] | None, corrector: Corrector | None,
                            dry_run: bool) -> AppendReport:
        with self.recorder.append_transaction() as tx:
            app = _Appender(tx, self.now_us, corrector)
            batch: list[Prepared] = []
            for item in source():
                if type(item) is list:  # a whole block from a bulk reader: append it as it is
                    if batch:
                        app.append(batch)
                        batch = []
                    block = [x for x in item if type(x) is not Problem]
                    if len(block) < len(item):
                        app.report.problems.extend(x for x in item if type(x) is Problem)
                    if block:
                        app.append(block)
                    if on_batch:
                        on_batch(app.report)
                    continue
                if isinstance(item, Problem):
                    app.report.problems.append(item)
                    continue
                batch.append(item)
                if len(batch) >= BATCH:
                    app.append(batch)
                    batch = []
                    if on_batch:
                        on_batch(app.report)
            if batch:
                app.append(batch)
                if on_batch:
                    on_batch(app.report)
            if app.report.problems:
                raise RejectedError(sorted(app.report.problems, key=lambda p: (p.line or 0)), what)
            if dry_run:
                app.report.dry_run = True
                raise _DryRun(app.report)  # leaves the transaction: it is rolled back
            return app.report

    # -- reading -------------------------------------------------------------------------------------
    def stream(self, patient_id: str) -> list[LogRecord]:
        """Every record of one patient's stream (amendments included), in commit order."""
        rows = self.recorder.read_stream(patient_id)
        return [record_from_row(r) for r in rows]

    def records(self, after: int = 0, batch: int = 50_000) -> Iterator[list[StoredRow]]:
        """All stored rows after a position, in commit order, in batches (raw, for bulk loaders)."""
        yield from self.recorder.read_all(after, batch)

    def patient_ids(self) -> list[str]:
        return self.recorder.patient_ids()

    def max_position(self) -> int:
        return self.recorder.max_position()

    def count_after(self, position: int) -> int:
        """How many stored events come after `position` (what a reader of older projections has not seen)."""
        return self.recorder.count_after(position)

    def ledger(self, patient_id: str | None = None, known_at: datetime | None = None) -> Ledger:
        """The folded facts of one patient (or of everyone), as known at `known_at`."""
        if patient_id is not None:
            return fold(self.stream(patient_id), known_at)
        recs: list[LogRecord] = []
        for rows in self.records():
            recs.extend(record_from_row(r) for r in rows)
        return fold(recs, known_at)


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}").fullmatch


def _postgres(url: str) -> TimelineRecorderMixin:
    """The PostgreSQL recorder named by a URL; a server that cannot be reached is one line naming host,
    port, database and cause."""
    import psycopg

    from .postgres import postgres_recorder

    u = urlparse(url)
    schema = parse_qs(u.query).get("schema", [""])[0]
    if schema and not _SCHEMA_NAME(schema):
        raise ValueError(f"schema {schema!r} in the store URL: a schema name is a letter or _ then letters, digits "
                         "or _ (at most 63)")
    where = dict(dbname=(u.path or "/").lstrip("/") or "postgres", host=u.hostname or "localhost", port=u.port or 5432)
    try:
        return postgres_recorder(**where, user=unquote(u.username or os.environ.get("USER", "postgres")),
                                 password=unquote(u.password or ""), schema=schema)
    except psycopg.OperationalError as e:
        cause = (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()
        raise StoreConnectionError(f"cannot connect to PostgreSQL at {where['host']}:{where['port']}, database "
                                   f"{where['dbname']!r}: {cause} (check that the server runs, and the store URL: "
                                   "--store or $TIMELINE_STORE)") from None


class StoreConnectionError(ConnectionError):
    """The store's server cannot be reached (or refuses the connection)."""


def _pg_unique_violation() -> type[BaseException]:
    """psycopg's unique violation when psycopg is loaded (a PostgreSQL store is open), else the library's
    IntegrityError: an SQLite store never imports psycopg."""
    errors = sys.modules.get("psycopg.errors")
    return errors.UniqueViolation if errors is not None else IntegrityError


def is_amendment(type_name: str) -> bool:
    return type_name in AMENDMENTS
