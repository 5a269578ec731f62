"""Persistence: the eventsourcing library's SQLite and PostgreSQL recorders, extended with an atomic,
idempotent append.

Each patient is one stream of the library's `stored_events` table (originator_id = patient id,
originator_version = position in the patient's stream, topic = event type, state = the event's JSON with
its `recorded_at`). Beside it, in the same database and the same transaction:

- `timeline_explicit_ids`: event_id -> (patient, version, content digest) for the events whose id was
  given in the input;
- `timeline_event_ids`: the first 8 bytes (as an integer) of every stored event's id, so an explicit id
  that may equal another patient's derived id is found (then looked for in the log): an event id is unique
  across the store, whoever chose it. It is kept from the first explicit id on (`ID_INDEX` in
  `timeline_meta`; then the log is indexed once, in that transaction: `_index_existing_events`): until
  then no id needs it, and a bulk load of derived ids spends nothing on it (it cost 20% of their ingest
  time). A narrow integer key keeps a bulk load fast (a full 16-byte index of 1.5M random ids tripled the
  ingest time). An encrypted store keeps it from the start (its log cannot be read unsealed here);
- `timeline_meta`: name -> value: the store's identity (`store_id`, random, given when it is made), which
  the projection file records to know which store it was built from;
- `timeline_audit`: what the audit trail records besides the amendment events: data locks (time stamped by
  the clock, who, what; room for other kinds of entry); the tool only ever inserts into it;
- `timeline_keys`: in an encrypted store, one row per patient stream: the patient's data key wrapped by the
  master key, and the patient id sealed by that key (`encryption.py`); a forgotten patient's row keeps
  neither;
- `timeline_clock`: one row holding the last `recorded_at` (µs since the epoch). Every append
  transaction starts by locking this row, which serialises writers, so `recorded_at` is strictly
  increasing in commit order and no two writers can claim the same stream version.

The append logic is written once over a small `Dialect` (placeholder style, byte columns, how to take the
lock); the SQLite and PostgreSQL recorders only supply their dialect.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import uuid

from eventsourcing.persistence import IntegrityError as LibraryIntegrityError
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from ..events.basics import content_id_bytes as content_digest
from .encryption import KeyProblem, KeyRing, seal_rows
from .rows import StoredRow

SCHEMA_LOCK_KEY = 7_262_001  # advisory lock taken while creating the PostgreSQL tables
CHUNK = 500  # ids per `IN (...)` lookup: well under every driver's parameter limit

if TYPE_CHECKING:
    import pyarrow as pa


def raw_schema() -> pa.Schema:
    """Stored rows as the projection loader takes them (`read_arrow`): position and state as text. The
    state is self-describing: it holds the event's `patient_id` and `type`, which are also its stream
    (originator_id) and topic (both are taken from it when it is appended); not copying those two text
    columns makes the bulk read 40% faster. (pyarrow is imported on use: the store's other commands do
    without it.)"""
    import pyarrow as pa

    return pa.schema([("position", pa.int64()), ("state", pa.string())])


def split_state(state: bytes) -> tuple[bytes, bytes]:
    """(event_id as 16 bytes, content digest) of a stored state, by slicing (no JSON parsing).

    A state is `canonical content` + `,"event_id":"…"` + `,"recorded_at":"…"}` (see `_Appender._rows`), so
    the content, hence its digest, is recovered exactly as it was computed at ingest.
    """
    cut = state.rindex(b',"event_id":"')
    eid = uuid.UUID(state[cut + 13:cut + 49].decode()).bytes
    return eid, content_digest(state[:cut] + b"}")


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """What differs between SQLite and PostgreSQL in the append transaction."""

    ph: str  # parameter placeholder
    blob: str  # byte-string column type
    lock_clock: str  # statement that takes the writers' lock and returns the clock
    contains: str  # condition: the state holds the text bound to the placeholder
    position: str  # the library's notification id column (the log position)
    state_text: str  # the state column as text
    ids_options: str = ""  # table options of the id index
    int_list: str = ""  # a SELECT of the integers of one bound list
    pack_ints: Callable[[list[int]], Any] = list  # the bound value of that list
    int_key: str = "BIGINT PRIMARY KEY"  # a 64-bit integer key column (SQLite: the rowid itself, one b-tree)

    def sql(self, text: str) -> str:
        return text.replace("?", self.ph)


SQLITE = Dialect(
    ph="?",
    blob="BLOB",
    # In SQLite the first write of a transaction takes the database's write lock (waiting up to the
    # busy timeout), so this no-op update serialises writers before anything is read.
    lock_clock="UPDATE {clock} SET last_us = last_us WHERE id = 1 RETURNING last_us",
    contains="instr(CAST(state AS TEXT), ?) > 0",
    position="rowid",
    state_text="CAST(state AS TEXT)",
    ids_options=" WITHOUT ROWID",
    int_list="SELECT value FROM json_each(?) WHERE true",  # WHERE: SQLite's upsert after a SELECT needs one
    pack_ints=json.dumps,
    int_key="INTEGER PRIMARY KEY",
)
POSTGRES = Dialect(
    ph="%s",
    blob="BYTEA",
    lock_clock="SELECT last_us FROM {clock} WHERE id = 1 FOR UPDATE",
    contains="position(? in convert_from(state, 'UTF8')) > 0",
    position="notification_id",
    state_text="convert_from(state, 'UTF8')",
    int_list="SELECT unnest(?::bigint[])",
)


@dataclass(frozen=True)
class Names:
    """Qualified table names (PostgreSQL: in the store's schema)."""

    events: str
    ids: str
    clock: str
    sources: str
    meta: str
    audit: str
    prefixes: str
    keys: str


def _tables(d: Dialect, n: Names) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {n.ids} ("
        f"event_id {d.blob} PRIMARY KEY, patient_id TEXT NOT NULL, "
        f"version BIGINT NOT NULL, digest {d.blob} NOT NULL){d.ids_options}",
        f"CREATE TABLE IF NOT EXISTS {n.prefixes} (k {d.int_key})",
        f"CREATE TABLE IF NOT EXISTS {n.clock} (id INTEGER PRIMARY KEY, last_us BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {n.sources} ("
        f"source_record_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, event_id {d.blob} NOT NULL, "
        f"digest {d.blob} NOT NULL){d.ids_options}",
        f"INSERT INTO {n.clock} (id, last_us) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        f"CREATE TABLE IF NOT EXISTS {n.meta} (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # the store's identity (the one parameter: a new random id), kept by copies, new for another store
        f"INSERT INTO {n.meta} (name, value) VALUES ('store_id', {d.ph}) ON CONFLICT (name) DO NOTHING",
        f"CREATE TABLE IF NOT EXISTS {n.audit} (at_us BIGINT PRIMARY KEY, action TEXT NOT NULL, subject TEXT NOT NULL, "
        "detail TEXT NOT NULL, recorded_by TEXT NOT NULL)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {n.audit.split('.')[-1]}_locks ON {n.audit} (subject) WHERE action = 'lock'",
        f"CREATE TABLE IF NOT EXISTS {n.keys} (stream_id TEXT PRIMARY KEY, wrapped {d.blob}, identity {d.blob}, "
        "forgotten_us BIGINT)",
    ]


def prefix_key(event_id: bytes) -> int:
    """The integer key of an event id in `timeline_event_ids`: its first 8 bytes."""
    return int.from_bytes(event_id[:8], "big", signed=True)


def prefix_keys(event_ids: Sequence[bytes]) -> tuple[int, ...]:
    """`prefix_key` of many 16-byte ids, unpacked at C speed (no Python call per id)."""
    return struct.unpack(">" + "q8x" * len(event_ids), b"".join(event_ids))


PREFIX_CHUNK = 100_000  # index keys kept before they are written, in order, by one statement


def _insert_prefixes(c: Cursor, d: Dialect, table: str, keys: Sequence[int]) -> None:
    """Add index keys (ids' first 8 bytes), in order, one statement per chunk (the database unpacks the list:
    no bound row per id). In order, the b-tree's pages are visited once each, left to right, instead of at
    random (which tripled the ingest time of 1.5M events). Sorted by numpy: 100,000 keys in a few ms, where
    Python's `sorted` takes 65 ms; numpy adds 16 MB to the process where polars added 45 MB. A key given twice
    (two ids sharing 8 bytes) is skipped by the upsert."""
    if not keys:
        return
    import numpy as np

    ordered = np.sort(np.fromiter(keys, dtype=np.int64, count=len(keys)))
    for i in range(0, len(ordered), PREFIX_CHUNK):
        c.execute(d.sql(f"INSERT INTO {table} (k) {d.int_list} ON CONFLICT (k) DO NOTHING"),
                  [d.pack_ints(ordered[i:i + PREFIX_CHUNK].tolist())])


#: the meta row saying the id index is kept (it covers every stored event)
ID_INDEX = "id_index"


class AppendTransaction:
    """One write transaction: holds the writers' lock from the first statement to commit or rollback.

    Everything appended through one transaction becomes visible at once or not at all (a file is
    all-or-nothing). Methods take plain tuples so the caller controls batching.
    """

    def __init__(self, cursor: Cursor, dialect: Dialect, names: Names, ring: KeyRing | None = None):
        self.c = cursor
        self.d = dialect
        self.n = names
        self.table = names.events
        # An encrypted store (`ring`): streams are named by pseudonyms and states sealed with each patient's key;
        # the methods below take and return patient ids and plain states all the same.
        self.ring = ring
        self._sids: dict[str, str] = {}  # patient -> stream id
        self._patients: dict[str, str] = {}  # stream id -> patient
        self._ciphers: dict[str, Any] = {}  # stream id -> cipher, of the key rows stored (or written by this transaction)
        self.c.execute(dialect.lock_clock.format(clock=names.clock))
        self.last_us: int = self._rows()[0][0]
        self._versions: dict[str, int] = {}
        self._explicit = False  # the store holds an explicitly given id (once known true, it stays so)
        self.c.execute(dialect.sql(f"SELECT count(*) FROM {names.meta} WHERE name = ?"), [ID_INDEX])
        self._indexing = bool(self._rows()[0][0])  # the id index is kept (else nothing is written to it)
        self._prefixes: list[int] = []  # index keys of the ids appended, not written yet (flush_prefixes)
        self._pending: set[int] | None = None  # the same as a set, made when first looked up (explicit ids)

    def _rows(self) -> list[tuple]:
        return [tuple(r) if not isinstance(r, dict) else tuple(r.values()) for r in self.c.fetchall()]

    # -- pseudonyms and keys (an encrypted store) ----------------------------------------------------------
    def _sid(self, patient_id: str) -> str:
        """The stream id of a patient: the id itself, or its pseudonym in an encrypted store."""
        if self.ring is None:
            return patient_id
        sid = self._sids.get(patient_id)
        if sid is None:
            sid = self._sids[patient_id] = self.ring.stream_id(patient_id)
            self._patients[sid] = patient_id
        return sid

    def _pid(self, stream_id: str) -> str:
        """The patient of a stream id (for a stream of another patient, its pseudonym: compared, never shown)."""
        if self.ring is None:
            return stream_id
        return self._patients.get(stream_id) or self.ring.patient_of(stream_id)

    def _hide(self, source_record_id: str) -> str:
        return source_record_id if self.ring is None else self.ring.hidden(source_record_id)

    def _open(self, stream_id: str, state: bytes) -> bytes | None:
        if self.ring is None:
            return state
        cipher = self._ciphers.get(stream_id)
        return cipher.decrypt(state) if cipher is not None else self.ring.unseal(stream_id, state)

    def ensure_keys(self, patient_ids: Sequence[str]) -> None:
        """Every one of these patients has a data key (read from the store, or made and stored by this
        transaction); a forgotten patient is refused: their events can never be added again."""
        if self.ring is None:
            return
        todo = [sid for sid in dict.fromkeys(map(self._sid, patient_ids)) if sid not in self._ciphers]
        if not todo:
            return
        for sid, wrapped, identity in self._select_in(f"SELECT stream_id, wrapped, identity FROM {self.n.keys}",
                                                      "stream_id", todo):
            cipher = self.ring.learn(sid, None if wrapped is None else bytes(wrapped),
                                     None if identity is None else bytes(identity))
            if cipher is None:
                raise KeyProblem(f"patient {self._pid(sid)} was forgotten (`timeline forget`): their events cannot "
                                 "be recorded again; nothing was stored")
            self._ciphers[sid] = cipher
        new = [self.ring.new_patient(self._patients[sid]) for sid in todo if sid not in self._ciphers]
        if new:
            self.c.executemany(self.d.sql(f"INSERT INTO {self.n.keys} (stream_id, wrapped, identity) VALUES (?, ?, ?)"),
                               [(k.stream_id, k.wrapped, k.identity) for k in new])
            self._ciphers.update((k.stream_id, k.cipher) for k in new)

    def rewrap(self, meta: dict[str, str], rewrap: Callable[[bytes], bytes]) -> int:
        """Wrap every data key again (`rewrap`: old wrapped key -> new) and replace meta rows (a new master key's
        check value and wrapped pseudonym key); returns how many keys."""
        self.c.execute(f"SELECT stream_id, wrapped FROM {self.n.keys} WHERE wrapped IS NOT NULL")
        rows = [(rewrap(bytes(w)), sid) for sid, w in self._rows()]
        if rows:
            self.c.executemany(self.d.sql(f"UPDATE {self.n.keys} SET wrapped = ? WHERE stream_id = ?"), rows)
        self.c.executemany(self.d.sql(f"UPDATE {self.n.meta} SET value = ? WHERE name = ?"),
                           [(v, k) for k, v in meta.items()])
        return len(rows)

    def forget(self, patient_id: str, at_us: int) -> bool:
        """Destroy a patient's data key and sealed id (False: no such patient, or already forgotten)."""
        sid = self._sid(patient_id)
        self.c.execute(self.d.sql(f"UPDATE {self.n.keys} SET wrapped = NULL, identity = NULL, forgotten_us = ? "
                                  "WHERE stream_id = ? AND wrapped IS NOT NULL"), [at_us, sid])
        self.c.execute(self.d.sql(f"SELECT forgotten_us FROM {self.n.keys} WHERE stream_id = ?"), [sid])
        done = self._rows() == [(at_us,)]
        if done and self.ring is not None:
            self.ring.forget(sid)
            self._ciphers.pop(sid, None)
        return done

    def _select_in(self, select: str, column: str, keys: Sequence[Any], then: str = "") -> list[tuple]:
        """`select` rows whose `column` is one of `keys` (`then`: a GROUP BY…), in chunks every driver takes."""
        rows: list[tuple] = []
        for i in range(0, len(keys), CHUNK):
            chunk = list(keys[i : i + CHUNK])
            self.c.execute(f"{select} WHERE {column} IN ({','.join([self.d.ph] * len(chunk))}) {then}", chunk)
            rows.extend(self._rows())
        return rows

    def source_records(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes, bytes]]:
        """source_record_id -> (patient_id, event_id of the first record, digest of its latest content)."""
        hidden = {self._hide(sid): sid for sid in ids}
        rows = self._select_in(f"SELECT source_record_id, patient_id, event_id, digest FROM {self.n.sources}",
                               "source_record_id", list(hidden))
        return {hidden[sid]: (self._pid(pid), bytes(eid), bytes(dig)) for sid, pid, eid, dig in rows}

    def explicit_ids(self, event_ids: Sequence[bytes]) -> dict[bytes, tuple[str, int, bytes]]:
        """event_id -> (patient_id, version, digest) for the explicitly given ids already stored."""
        rows = self._select_in(f"SELECT event_id, patient_id, version, digest FROM {self.n.ids}", "event_id",
                               event_ids)
        return {bytes(eid): (self._pid(pid), ver, bytes(dig)) for eid, pid, ver, dig in rows}

    def has_explicit_ids(self) -> bool:
        """Whether an explicitly given event id is stored (or written by this transaction)."""
        if not self._explicit:
            self.c.execute(f"SELECT EXISTS (SELECT 1 FROM {self.n.ids})")
            self._explicit = bool(self._rows()[0][0])
        return self._explicit

    def known_prefixes(self, event_ids: Sequence[bytes]) -> list[bytes]:
        """The ids whose first 8 bytes begin a stored event's id (that event may or may not be theirs), this
        transaction's included. The first look-up of a store makes the index (of every event stored)."""
        if not self._indexing:
            if self.ring is None:  # (an encrypted store's index was always kept: its rows stand)
                self.c.execute(f"DELETE FROM {self.n.prefixes}")  # an earlier version's rows: made again, whole
                _index_existing_events(self.c, self.d, self.n)
            self.c.execute(self.d.sql(f"INSERT INTO {self.n.meta} (name, value) VALUES (?, ?)"), [ID_INDEX, "kept"])
            self._indexing = True
        keys = {prefix_key(e): e for e in event_ids}
        rows = self._select_in(f"SELECT k FROM {self.n.prefixes}", "k", list(keys))
        if self._pending is None:
            self._pending = set(self._prefixes)
        return [keys[k] for (k,) in rows] + [e for k, e in keys.items() if k in self._pending]

    def flush_prefixes(self) -> None:
        """Write the index keys of the ids this transaction appended (kept until its end, then written in
        order; called before it commits)."""
        _insert_prefixes(self.c, self.d, self.n.prefixes, self._prefixes)
        self._prefixes, self._pending = [], None

    def stream_ids(self, patient_ids: Sequence[str]) -> dict[bytes, tuple[str, int, bytes]]:
        """event_id -> (patient_id, version, digest) of every event of these streams."""
        found: dict[bytes, tuple[str, int, bytes]] = {}
        self.ensure_keys(patient_ids)
        rows = self._select_in(f"SELECT originator_id, originator_version, state FROM {self.table}",
                               "originator_id", [self._sid(p) for p in patient_ids])
        for sid, ver, state in rows:
            eid, digest = split_state(self._open(sid, bytes(state)))
            found[eid] = (self._pid(sid), ver, digest)
        return found

    def owner_of(self, event_id: str) -> str | None:
        """The patient whose stream holds `event_id` (a scan of the log: only for a rare case, or to word an
        error)."""
        needle = f'"event_id":"{event_id}"'
        if self.ring is not None:  # sealed states: each opened and searched, batch by batch (rare, see above)
            self.c.execute(f"SELECT stream_id, wrapped, identity FROM {self.n.keys}")
            for sid, wrapped, identity in self._rows():
                self.ring.learn(sid, None if wrapped is None else bytes(wrapped),
                                None if identity is None else bytes(identity))
            self.ring.ciphers.update(self._ciphers)  # this transaction's new patients
            self.c.execute(f"SELECT originator_id, state FROM {self.table}")
            wanted = needle.encode()
            while rows := self.c.fetchmany(10_000):  # type: ignore[attr-defined]
                opened = self.ring.unseal_many([r[0] for r in rows], [bytes(r[1]) for r in rows])
                for (sid, _state), plain in zip(rows, opened, strict=True):
                    if plain is not None and wanted in plain:
                        return self._pid(sid)
            return None
        self.c.execute(self.d.sql(f"SELECT originator_id FROM {self.table} WHERE {self.d.contains} LIMIT 1"),
                       [needle])
        rows = self._rows()
        return rows[0][0] if rows else None

    def next_versions(self, patient_ids: Sequence[str]) -> dict[str, int]:
        """patient_id -> the version the next event of that stream takes (1 for a new stream)."""
        self.ensure_keys(patient_ids)
        missing = [p for p in patient_ids if p not in self._versions]
        rows = self._select_in(f"SELECT originator_id, MAX(originator_version) FROM {self.table}",
                               "originator_id", [self._sid(p) for p in missing],
                               "GROUP BY originator_id") if missing else []
        for sid, ver in rows:
            self._versions[self._pid(sid)] = ver + 1
        for pid in missing:
            self._versions.setdefault(pid, 1)
        return {p: self._versions[p] for p in patient_ids}

    def stream(self, patient_id: str) -> list[StoredRow]:
        """The stored events of one stream, as committed so far plus this transaction's writes."""
        self.c.execute(
            self.d.sql(
                f"SELECT originator_version, topic, state FROM {self.table} "
                "WHERE originator_id = ? ORDER BY originator_version"
            ),
            [self._sid(patient_id)],
        )
        rows = self._rows()
        if self.ring is not None and rows:
            self.ensure_keys([patient_id])
        sid = self._sid(patient_id)
        return [StoredRow(0, patient_id, v, t, self._open(sid, bytes(s))) for v, t, s in rows]

    def insert(
        self,
        rows: Sequence[tuple[str, int, str, bytes]],
        ids: tuple[Sequence[tuple[bytes, str, int, bytes]], Sequence[bytes]],
        last_us: int,
        sources: Sequence[tuple[str, str, bytes, bytes]] = (),
    ) -> None:
        """Insert stream rows (patient, version, type, state), the index rows of their ids (`ids`: the explicitly
        given ones as event id, patient, version, digest; and every id), the index rows of source records
        (source_record_id, patient, first event id, latest digest: a new digest replaces the old); advance
        the clock.

        A concurrent writer that slipped past the lock (one not using this module) makes the primary
        key of (patient, version) or of event_id fail: the caller retries the whole transaction.
        """
        explicit, prefixes = ids
        if self.ring is not None:  # pseudonyms and hidden source record ids; the states are sealed below
            explicit = [(eid, self._sid(pid), v, dig) for eid, pid, v, dig in explicit]
            sources = [(self._hide(sid), self._sid(pid), eid, dig) for sid, pid, eid, dig in sources]
        if explicit:
            self.c.executemany(
                self.d.sql(f"INSERT INTO {self.n.ids} (event_id, patient_id, version, digest) VALUES (?, ?, ?, ?)"),
                explicit,
            )
            self._explicit = True
        if self._indexing:
            keys = prefix_keys(prefixes)
            self._prefixes.extend(keys)
            if self._pending is not None:
                self._pending.update(keys)
            if len(self._prefixes) >= PREFIX_CHUNK:  # bounded memory: a bulk load writes them as it goes
                self.flush_prefixes()
        if sources:
            self.c.executemany(
                self.d.sql(
                    f"INSERT INTO {self.n.sources} (source_record_id, patient_id, event_id, digest) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (source_record_id) DO UPDATE SET digest = excluded.digest"
                ),
                sources,
            )
        self._insert_rows(rows, last_us)

    def audit(self, action: str, subject: str, detail: str, by: str, at_us: int) -> int:
        """Record an entry of the audit trail, stamped by the clock (after every event recorded so far, and
        at least `at_us`); returns its stamp. A later event is recorded after it."""
        stamp = max(at_us, self.last_us + 1)
        self.c.execute(self.d.sql(f"INSERT INTO {self.n.audit} (at_us, action, subject, detail, recorded_by) "
                                  "VALUES (?, ?, ?, ?, ?)"), [stamp, action, subject, detail, by])
        self.c.execute(self.d.sql(f"UPDATE {self.n.clock} SET last_us = ? WHERE id = 1"), [stamp])
        self.last_us = stamp
        return stamp

    def audit_entries(self, action: str, subject: str) -> list[tuple]:
        """(at_us, detail, recorded_by) of the audit entries of one action and subject."""
        self.c.execute(self.d.sql(f"SELECT at_us, detail, recorded_by FROM {self.n.audit} WHERE action = ? "
                                  "AND subject = ?"), [action, subject])
        return self._rows()

    def _insert_rows(self, rows: Sequence[tuple[str, int, str, bytes]], last_us: int) -> None:
        stored = rows
        if self.ring is not None:
            patients = list(dict.fromkeys(pid for pid, _v, _t, _s in rows))
            self.ensure_keys(patients)
            stored = seal_rows(list(rows), {pid: self._sid(pid) for pid in patients}, self._ciphers)
        self.c.executemany(
            self.d.sql(
                f"INSERT INTO {self.table} (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)"
            ),
            stored,
        )
        # each patient's rows come in version order (the appender numbers them so): the last is the highest
        self._versions.update({pid: ver + 1 for pid, ver, _t, _s in rows})
        self.c.execute(self.d.sql(f"UPDATE {self.n.clock} SET last_us = ? WHERE id = 1"), [last_us])
        self.last_us = last_us


def _index_existing_events(c: Cursor, d: Dialect, n: Names) -> None:
    """Index the ids of every stored event (once: when the index is first needed), this transaction's too.
    The keys are held as 8 bytes each (an array, not Python integers) until they are written."""
    from array import array

    c.execute(f"SELECT state FROM {n.events}")
    keys = array("q")
    while batch := c.fetchmany(10_000):  # type: ignore[attr-defined]
        keys.extend(prefix_keys([split_state(bytes(state))[0] for (state,) in batch]))
    _insert_prefixes(c, d, n.prefixes, keys)


@contextlib.contextmanager
def _key_problems_first(found: list[KeyProblem]) -> Iterator[None]:
    """A key problem met while DuckDB pulls a stream of sealed rows surfaces as itself (one line), not wrapped in
    DuckDB's error about the stream, with a Python traceback in its text."""
    try:
        yield
    except Exception:
        if found:
            raise found[0] from None
        raise


class TimelineRecorderMixin:
    """Shared read side and transaction entry point of both recorders."""

    dialect: Dialect
    events_table_name: str
    #: The keys of an encrypted store (set by `EventStore.open` once the key is checked); None: not encrypted.
    ring: KeyRing | None = None

    @property
    def names(self) -> Names:
        schema = getattr(self.datastore, "schema", "")  # type: ignore[attr-defined]
        q = (lambda t: f'"{schema}".{t}') if schema else (lambda t: t)
        return Names(q(self.events_table_name), q("timeline_explicit_ids"), q("timeline_clock"),
                     q("timeline_source_records"), q("timeline_meta"), q("timeline_audit"), q("timeline_event_ids"),
                     q("timeline_keys"))

    def create_timeline_tables(self) -> None:
        # Look before writing: a write in an SQLite read transaction fails at once ("database is
        # locked") while another process appends, so an existing store is opened without any write.
        missing = self._missing_tables()
        if not missing:
            return
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            for statement in _tables(self.dialect, self.names):
                cur.execute(statement, [str(uuid.uuid4())] if self.dialect.ph in statement else [])

    def _missing_tables(self) -> set[str]:
        """The timeline tables (or rows) this store does not hold yet (a new store, or one made by an earlier
        version)."""
        n = self.names
        missing = set()
        for table, probe in ((n.ids, f"SELECT count(*) FROM {n.ids} WHERE 1 = 0"),
                             (n.sources, f"SELECT count(*) FROM {n.sources} WHERE 1 = 0"),
                             (n.clock, f"SELECT last_us FROM {n.clock} WHERE id = 1"),
                             (n.meta, f"SELECT value FROM {n.meta} WHERE name = 'store_id'"),
                             (n.audit, f"SELECT count(*) FROM {n.audit} WHERE 1 = 0"),
                             (n.prefixes, f"SELECT count(*) FROM {n.prefixes} WHERE 1 = 0"),
                             (n.keys, f"SELECT count(*) FROM {n.keys} WHERE 1 = 0")):
            with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
                try:
                    c.execute(probe)
                    if not c.fetchall():
                        missing.add(table)
                except Exception:  # noqa: BLE001 - the table does not exist yet
                    missing.add(table)
        return missing

    def store_id(self) -> str:
        """The store's identity: a random id given when it was made (a copy keeps it; another store has
        another)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(f"SELECT value FROM {self.names.meta} WHERE name = 'store_id'")
            row = c.fetchall()[0]
            return row[0] if not isinstance(row, dict) else row["value"]

    def meta(self, name: str) -> str | None:
        """A value of `timeline_meta` (None: not set)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(self.dialect.sql(f"SELECT value FROM {self.names.meta} WHERE name = ?"), [name])
            rows = cur.fetchall()
            return rows[0][0] if rows else None

    def set_meta_once(self, values: dict[str, str]) -> None:
        """Set rows of `timeline_meta` that are not set yet (a concurrent first setter wins)."""
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            for name, value in values.items():
                cur.execute(self.dialect.sql(f"INSERT INTO {self.names.meta} (name, value) VALUES (?, ?) "
                                             "ON CONFLICT (name) DO NOTHING"), [name, value])

    def load_keys(self, cur: Cursor | None = None, stream_ids: Sequence[str] | None = None) -> None:
        """Read the key rows (all, or of some streams) into the ring: each read of sealed states takes the
        rows as they are now, so a patient forgotten by another process is unreadable here too."""
        if self.ring is None:
            return
        if cur is None:
            with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
                return self.load_keys(self._plain_cursor(c), stream_ids)
        select = f"SELECT stream_id, wrapped, identity FROM {self.names.keys}"
        if stream_ids is None:
            cur.execute(select)
            rows = cur.fetchall()
        else:
            rows = []
            for i in range(0, len(stream_ids), CHUNK):
                chunk = list(stream_ids[i:i + CHUNK])
                cur.execute(self.dialect.sql(f"{select} WHERE stream_id IN ({','.join('?' * len(chunk))})"), chunk)
                rows.extend(cur.fetchall())
        if stream_ids is None:
            self.ring.reset()
        for sid, wrapped, identity in rows:
            self.ring.learn(sid, None if wrapped is None else bytes(wrapped),
                            None if identity is None else bytes(identity))

    def _sid(self, patient_id: str) -> str:
        return patient_id if self.ring is None else self.ring.stream_id(patient_id)

    def forgotten_events(self) -> int:
        """How many stored events belong to forgotten patients (sealed by a destroyed key)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(f"SELECT count(*) FROM {self.names.events} e JOIN {self.names.keys} k "
                        "ON e.originator_id = k.stream_id WHERE k.wrapped IS NULL")
            return int(cur.fetchall()[0][0])

    def id_prefixes(self) -> list[int] | None:
        """Every key of the id index (the first 8 bytes of every stored id), for `timeline verify`; None while
        the index is not kept (no explicit id stored yet)."""
        if self.meta(ID_INDEX) is None:
            return None
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(f"SELECT k FROM {self.names.prefixes}")
            return [k for (k,) in cur.fetchall()]

    def audit_trail(self) -> list[tuple[int, str, str, str, str]]:
        """Every entry of the audit table: (at_us, action, subject, detail, recorded_by), in time order."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(f"SELECT at_us, action, subject, detail, recorded_by FROM {self.names.audit} ORDER BY at_us")
            return [tuple(r) for r in cur.fetchall()]

    def amended_patients(self) -> list[str]:
        """The patients with a correction or retraction (a scan of the topics: no state is parsed)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(f"SELECT DISTINCT originator_id FROM {self.names.events} "
                        "WHERE topic IN ('event_corrected', 'event_retracted') ORDER BY 1")
            found = [r[0] for r in cur.fetchall()]
            if self.ring is None:
                return found
            self.load_keys(cur, found)
        return sorted(self.ring.identities[s] for s in found if s in self.ring.identities)

    def position_at(self, at_us: int) -> int:
        """The last log position recorded at or before a moment (recorded_at grows with the position)."""
        from ..clock import us_to_datetime

        stamp = us_to_datetime(at_us).strftime('"recorded_at":"%Y-%m-%dT%H:%M:%S.%fZ"')
        d = self.dialect
        if self.ring is not None:
            return self._position_at_sealed(stamp)
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            # the stamp closes every state (`"recorded_at":"…Z"}`), in a fixed format: compare it as text
            cur.execute(d.sql(f"SELECT max({d.position}) FROM {self.names.events} WHERE "
                              f"substr({d.state_text}, length({d.state_text}) - 43, 43) <= ?"), [stamp])
            return int(cur.fetchall()[0][0] or 0)

    def _position_at_sealed(self, stamp: str) -> int:
        """`position_at` in an encrypted store: a binary search of the positions, each probe's state opened (the
        stamps grow with the position). A forgotten patient's event is stepped over."""
        d, n = self.dialect, self.names
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            self.load_keys(cur)

            def stamp_from(pos: int) -> tuple[int, str] | None:  # the first readable event at or after pos
                while True:
                    cur.execute(d.sql(f"SELECT {d.position}, originator_id, state FROM {n.events} WHERE "
                                      f"{d.position} >= ? ORDER BY {d.position} LIMIT 1"), [pos])
                    rows = cur.fetchall()
                    if not rows:
                        return None
                    found, sid, state = rows[0]
                    plain = self.ring.unseal(sid, bytes(state))  # type: ignore[union-attr]
                    if plain is not None:
                        return found, plain[-44:-1].decode()
                    pos = found + 1

            lo, hi = 0, self.max_position()  # the answer lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                probe = stamp_from(mid)
                if probe is not None and probe[0] <= hi and probe[1] <= stamp:
                    lo = probe[0]
                else:
                    hi = mid - 1
            return lo

    def quick_check(self) -> str | None:
        """A cheap integrity check before writing (None: nothing found). PostgreSQL checks its own pages."""
        return None

    def event_id_at(self, position: int) -> str | None:
        """The id of the event stored at a log position (None: no event there)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            d = self.dialect
            cur.execute(d.sql(f"SELECT originator_id, state FROM {self.names.events} WHERE {d.position} = ?"),
                        [position])
            rows = cur.fetchall()
            if not rows:
                return None
            state = bytes(rows[0][1])
            if self.ring is not None:
                self.load_keys(cur, [rows[0][0]])
                state = self.ring.unseal(rows[0][0], state)
                if state is None:
                    return None
        return str(uuid.UUID(bytes=split_state(state)[0]))

    @contextlib.contextmanager
    def append_transaction(self) -> Iterator[AppendTransaction]:
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            tx = AppendTransaction(self._plain_cursor(c), self.dialect, self.names, self.ring)
            yield tx
            tx.flush_prefixes()

    def _plain_cursor(self, c: Any) -> Cursor:
        return c

    def read_stream(self, patient_id: str) -> list[StoredRow]:
        """One patient's stream in version order, through the library's `select_events` (a forgotten patient's
        stream reads as empty: it can never be read again)."""
        sid = self._sid(patient_id)
        events = self.select_events(sid)  # type: ignore[attr-defined]
        if self.ring is not None and events:
            self.load_keys(stream_ids=[sid])
            states = self.ring.unseal_many([sid] * len(events), [bytes(e.state) for e in events])
            return [StoredRow(0, patient_id, e.originator_version, e.topic, st)
                    for e, st in zip(events, states, strict=True) if st is not None]
        return [StoredRow(0, patient_id, e.originator_version, e.topic, bytes(e.state)) for e in events]

    def read_all(self, after: int = 0, batch: int = 50_000) -> Iterator[list[StoredRow]]:
        """Every stored event in commit order, after a position, in batches (the library's notification log)."""
        if self.ring is not None:
            self.load_keys()
        while True:
            notes = self.select_notifications(  # type: ignore[attr-defined]
                after, batch, inclusive_of_start=False
            )
            if not notes:
                return
            if self.ring is None:
                yield [StoredRow(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state))
                       for n in notes]
            else:
                states = self.ring.unseal_many([str(n.originator_id) for n in notes], [bytes(n.state) for n in notes])
                yield [StoredRow(n.id, self.ring.patient_of(str(n.originator_id)), n.originator_version, n.topic, st)
                       for n, st in zip(notes, states, strict=True) if st is not None]
            after = notes[-1].id

    def read_raw(self, after: int, upto: int, batch: int,
                 patients: Sequence[str] | None = None) -> Iterator[list[tuple[int, str]]]:
        """(position, state as text) tuples with after < position <= upto, in batches: the bulk path of
        `read_all` (same rows), without building an object per row; in commit order, or, given `patients`,
        only their streams' rows (found through the streams' index), stream by stream. One read
        transaction: a consistent snapshot."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            d = self.dialect
            sealed = self.ring is not None
            if sealed:
                self.load_keys(cur)
            select = (f"SELECT {d.position}, {'originator_id, state' if sealed else d.state_text} "
                      f"FROM {self.names.events} WHERE {d.position} > ? AND {d.position} <= ?")
            if patients is None:
                cur.execute(d.sql(f"{select} ORDER BY {d.position}"), [after, upto])
                while rows := cur.fetchmany(batch):
                    yield self._opened(rows) if sealed else rows
                return
            for i in range(0, len(patients), CHUNK):
                chunk = [self._sid(p) for p in patients[i : i + CHUNK]]
                cur.execute(d.sql(f"{select} AND originator_id IN ({','.join('?' * len(chunk))})"),
                            [after, upto, *chunk])
                while rows := cur.fetchmany(batch):
                    yield self._opened(rows) if sealed else rows

    def _opened(self, rows: list[tuple]) -> list[tuple[int, str]]:
        """(position, stream id, sealed state) rows as (position, state as text); a forgotten patient's rows
        are left out (they can never be read)."""
        states = self.ring.unseal_many([r[1] for r in rows], [bytes(r[2]) for r in rows])  # type: ignore[union-attr]
        return [(r[0], st.decode()) for r, st in zip(rows, states, strict=True) if st is not None]

    @contextlib.contextmanager
    def read_arrow(self, after: int, upto: int, batch: int = 65_536,
                   patients: Sequence[str] | None = None) -> Iterator[Any]:
        """The stored rows with after < position <= upto (given `patients`: of their streams only) as an
        Arrow C stream (`raw_schema()`; an object with `__arrow_c_stream__`, here a pyarrow reader), for DuckDB
        to pull as it is; in Python, `pyarrow.RecordBatchReader.from_stream` reads it. Positions up to
        `max_position()` are committed and never change (appends are serialised by the writers' lock), so
        consecutive ranges read one consistent prefix of the log."""
        import pyarrow as pa

        schema = raw_schema()

        found: list[KeyProblem] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for rows in self.read_raw(after, upto, batch, patients):
                    if not rows:
                        continue
                    pos, state = zip(*rows)
                    yield pa.RecordBatch.from_arrays([pa.array(pos, pa.int64()), pa.array(state, pa.string())],
                                                     schema=schema)
            except KeyProblem as e:
                found.append(e)
                raise

        with _key_problems_first(found):
            yield pa.RecordBatchReader.from_batches(schema, batches())

    def find_event_ids(self, prefix: str, patient_id: str | None = None) -> list[tuple[str, str]]:
        """(patient, event id) of the stored events whose id begins with `prefix` (lower-case hex and
        dashes): through one stream when the patient is given, else a scan of every state."""
        needle = f'"event_id":"{prefix}'
        if self.ring is not None:  # sealed states: read and searched here (a stream, or the whole log)
            found = []
            rows = ([r for r in self.read_stream(patient_id)] if patient_id is not None
                    else [r for rows in self.read_all() for r in rows])
            for r in rows:
                text = r.state.decode()
                if needle in text:
                    cut = text.rindex('"event_id":"') + 12
                    found.append((r.patient_id, text[cut:cut + 36]))
            return found
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            sql = (f"SELECT originator_id, {self.dialect.state_text} FROM {self.names.events} "
                   f"WHERE {self.dialect.contains}")
            args: list[Any] = [needle]
            if patient_id is not None:
                sql += " AND originator_id = ?"
                args.append(patient_id)
            cur.execute(self.dialect.sql(sql), args)
            found = []
            for pid, state in cur.fetchall():
                cut = state.rindex('"event_id":"') + 12
                found.append((pid, state[cut:cut + 36]))
            return found

    def patient_ids(self) -> list[str]:
        if self.ring is not None:  # from the key rows: the patients that can be read
            self.load_keys()
            return sorted(self.ring.identities.values())
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(f"SELECT DISTINCT originator_id FROM {self.names.events} ORDER BY 1")
            return [r[0] if not isinstance(r, dict) else next(iter(r.values())) for r in c.fetchall()]

    def max_position(self) -> int:
        return self.max_notification_id() or 0  # type: ignore[attr-defined]

    def count_after(self, position: int) -> int:
        """The number of stored events after `position`."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = self._plain_cursor(c)
            cur.execute(self.dialect.sql(f"SELECT count(*) FROM {self.names.events} WHERE {self.dialect.position} > ?"),
                        [position])
            return int(cur.fetchall()[0][0])


class _SQLiteBulkReader:
    """`read_arrow` for an SQLite file through the Apache Arrow ADBC SQLite driver: record batches built in
    C and pulled by DuckDB without Python in between (about 1.5M rows/s here, five times Python's sqlite3).
    The driver's stream is given as it is, an Arrow C stream (`__arrow_c_stream__`) that DuckDB scans without
    pyarrow, whose import (with numpy's) costs more than a small catch-up's reading; a sealed store's rows are
    opened through pyarrow. An in-memory store (a shared cache of this process's sqlite3 library) falls back
    to `read_raw`."""

    @contextlib.contextmanager
    def read_arrow(self, after: int, upto: int, batch: int = 65_536,
                   patients: Sequence[str] | None = None) -> Iterator[Any]:
        db = self.datastore.pool.db_name  # type: ignore[attr-defined]
        if db.startswith("file:") or db == ":memory:":
            with super().read_arrow(after, upto, batch, patients) as reader:  # type: ignore[misc]
                yield reader
            return
        # the driver manager's own API, not its DB-API module (which imports pandas: 0.3 s per process)
        import adbc_driver_manager as adbc
        import adbc_driver_sqlite

        sealed = self.ring is not None  # type: ignore[attr-defined]
        if sealed:
            self.load_keys()  # type: ignore[attr-defined]

        with contextlib.closing(adbc_driver_sqlite.connect(Path(db).resolve().as_uri() + "?mode=ro")) as database, \
                adbc.AdbcConnection(database) as con, adbc.AdbcStatement(con) as statement:
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch)})
            # one statement: one read transaction, a consistent snapshot whatever appends meanwhile
            where = f"rowid > {int(after)} AND rowid <= {int(upto)}"
            if patients is not None and sealed:
                patients = [self._sid(p) for p in patients]  # type: ignore[attr-defined]
            if patients is not None:  # their streams, through the (originator_id, version) index
                # one JSON text, quoted as an SQL string (binding it through this ADBC driver's statement
                # crashed the process with adbc-driver-manager 1.13); positions are integers
                listed = json.dumps(list(patients)).replace("'", "''")
                where += f" AND originator_id IN (SELECT value FROM json_each('{listed}'))"
            columns = "originator_id, state" if sealed else "CAST(state AS TEXT) AS state"
            statement.set_sql_query(
                f"SELECT rowid AS position, {columns} FROM {self.names.events} "  # type: ignore[attr-defined]
                f"WHERE {where}{' ORDER BY rowid' if patients is None else ''}")
            stream, _ = statement.execute_query()
            if not sealed:
                yield stream
                return
            import pyarrow as pa

            found: list[KeyProblem] = []
            with _key_problems_first(found):
                yield self._unsealed(pa.RecordBatchReader.from_stream(stream), found)

    def _unsealed(self, reader: pa.RecordBatchReader, found: list[KeyProblem]) -> pa.RecordBatchReader:
        """Batches of (position, stream id, sealed state) opened into `raw_schema()` batches, a forgotten
        patient's rows left out. The cipher runs once per row in Python (about a microsecond each); the rest
        stays in Arrow."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from .encryption import NONCE, TAG

        schema = raw_schema()
        unseal = self.ring.unseal_split  # type: ignore[attr-defined]
        empty = pa.scalar(b"", pa.binary())

        def batches() -> Iterator[pa.RecordBatch]:
            for b in reader:
                if not b.num_rows:
                    continue
                sids = b.column(1)  # rows come in runs of one stream: found here, in Arrow
                changes = pc.not_equal(sids.slice(1), sids.slice(0, len(sids) - 1))
                starts = [0, *(pc.add(pc.indices_nonzero(changes), 1).to_pylist())]
                sealed = b.column(2)  # the library's layout, nonce, tag, ciphertext, split here in C++
                nonces = pc.binary_slice(sealed, 0, NONCE).to_pylist()
                data = pc.binary_join_element_wise(pc.binary_slice(sealed, NONCE + TAG, (1 << 31) - 1),
                                                   pc.binary_slice(sealed, NONCE, NONCE + TAG), empty).to_pylist()
                try:
                    states = unseal(pc.take(sids, pa.array(starts, pa.int64())).to_pylist(), starts, nonces, data)
                except KeyProblem as e:
                    found.append(e)
                    raise
                opened = pa.array(states, pa.string())  # (checked as UTF-8 on the way)
                out = pa.RecordBatch.from_arrays([b.column(0), opened], schema=schema)
                if opened.null_count:
                    out = out.filter(pc.is_valid(opened))
                yield out

        return pa.RecordBatchReader.from_batches(schema, batches())


#: The largest SQLite store read whole (`PRAGMA quick_check`) before a session's first write. The check reads
#: every page: about a second per GiB from the page cache, minutes from disk (a 4.9 GB store of 100,000
#: patients), so a registry's store is not read whole before each ingest; `timeline verify` checks it.
QUICK_CHECK_MAX_BYTES = 1 << 30


class SQLiteTimelineRecorder(_SQLiteBulkReader, TimelineRecorderMixin, SQLiteApplicationRecorder):
    """The library's SQLite application recorder with the timeline's atomic idempotent append."""

    dialect = SQLITE

    def quick_check(self) -> str | None:
        """SQLite's `PRAGMA quick_check`: every page and b-tree of the file, without the slower matching of
        indexes to rows (about 0.5 s for the 10,000-patient store, 460 MB, on a warm cache); its first
        finding, if any. A file larger than `QUICK_CHECK_MAX_BYTES` is not read whole (None): a write that
        meets a damaged page is refused by SQLite all the same (`faults.DAMAGED`), and `integrity_check`
        (`timeline verify`) is the full check."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = c.sqlite_cursor
            size = cur.execute("PRAGMA page_count").fetchone()[0] * cur.execute("PRAGMA page_size").fetchone()[0]
        if size > QUICK_CHECK_MAX_BYTES:
            return None
        return self.integrity_check("quick_check")

    def integrity_check(self, pragma: str = "integrity_check", most: int = 20) -> str | None:
        """The findings of an SQLite integrity pragma (None: ok)."""
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            cur = c.sqlite_cursor
            cur.execute(f"PRAGMA {pragma}({int(most)})")
            found = [line for r in cur.fetchall() for line in r[0].splitlines() if not line.startswith("***")]
        if found == ["ok"]:
            return None
        return found[0] + (f" (and {len(found) - 1} more finding(s))" if len(found) > 1 else "")

    def create_table(self) -> None:
        super().create_table()
        self.create_timeline_tables()

    def _plain_cursor(self, c: Any) -> Cursor:
        cursor = c.sqlite_cursor
        # A large page cache keeps the id index's random inserts in memory during bulk appends.
        cursor.execute("PRAGMA cache_size = -131072")  # KiB, i.e. 128 MiB, per writer connection
        with contextlib.suppress(sqlite3.OperationalError):  # refused once this connection has used temp storage
            cursor.execute("PRAGMA temp_store = MEMORY")  # the batch savepoint's sub-journal
        return cursor


IntegrityError = LibraryIntegrityError


#: The page size of a new SQLite store (SQLite's default is 4,096 bytes; a store keeps the size it was made with).
#: A bulk ingest ends by committing its one transaction and copying the write-ahead log into the file, on one core,
#: page by page. At 10,000 patients (1.6M events) four alternated runs of `timeline ingest` took 10.65-11.02 s
#: with 16 KiB pages, 10.49-11.04 s with 64 KiB pages and 11.04-12.00 s with 4 KiB pages (system time 1.25-1.58,
#: 1.26-1.60 and 1.59-2.32 s); 16 KiB keeps a small store small (a b-tree takes at least a page: 13 of them).
NEW_STORE_PAGE_BYTES = 16_384


def _create_sqlite_file(path: str) -> None:
    """A new, empty SQLite file with the store's page size, in WAL mode (which fixes the page size), readable by
    its owner only (SQLite gives the -wal and -shm files the database file's permissions)."""
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile: it is theirs to set up
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        con = sqlite3.connect(path)
        try:
            con.execute(f"PRAGMA page_size = {NEW_STORE_PAGE_BYTES}")
            con.execute("PRAGMA journal_mode = WAL")
        finally:
            con.close()


def sqlite_recorder(db_name: str, lock_timeout_s: int = 600) -> SQLiteTimelineRecorder:
    if not db_name.startswith("file:") and not os.path.exists(db_name):
        _create_sqlite_file(db_name)
    datastore = SQLiteDatastore(db_name, lock_timeout=lock_timeout_s, originator_id_type="text")
    recorder = SQLiteTimelineRecorder(datastore)
    recorder.create_table()
    return recorder
