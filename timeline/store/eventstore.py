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
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlparse

from ..events.catalogue import content_id_bytes as content_digest
from ..events.envelope import EARLIEST_TIMEZONE
from .facts import AMENDMENTS, Ledger, LogRecord, fold
from .recorders import (
    AppendTransaction,
    IntegrityError,
    StoredRow,
    TimelineRecorderMixin,
    postgres_recorder,
    sqlite_recorder,
)

log = logging.getLogger(__name__)

DEFAULT_STORE = "./timeline-data"
STORE_ENV = "TIMELINE_STORE"
SQLITE_FILE = "events.sqlite"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# No place on Earth is more than 14 hours ahead of UTC: a clinical date later than the UTC+14 date of the
# recording moment has not happened anywhere yet (the vocabulary checks dates against the same bound).
FURTHEST_TIMEZONE = EARLIEST_TIMEZONE.utcoffset(None)
BATCH = 10_000
MAX_RETRIES = 5


def latest_clinical_date(now: datetime) -> date:
    """The latest `occurred_on` that is not in the future of a recording made at `now` (UTC)."""
    return (now.astimezone(UTC) + FURTHEST_TIMEZONE).date()


def utc_now_us() -> int:
    return time.time_ns() // 1000


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def format_us(us: int) -> str:
    return us_to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

    @property
    def event_uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.event_id)


@dataclass(frozen=True)
class Problem:
    """One reason an input is refused: where (line), what (field, value) and which rule."""

    line: int | None
    field: str
    value: Any
    rule: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        value = json.dumps(self.value, default=str)
        if len(value) > 120:
            value = value[:117] + "..."
        return f"{where}{self.field} = {value}: {self.rule}"


class RejectedError(Exception):
    """The input was refused as a whole; nothing from it was stored."""

    def __init__(self, problems: list[Problem], what: str = "input"):
        self.problems = problems
        self.what = what
        super().__init__(
            f"{what}: {len(problems)} problem(s), nothing stored\n" + "\n".join(f"  {p}" for p in problems[:50])
            + (f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else "")
        )


@dataclass
class AppendReport:
    new: int = 0
    present: int = 0
    problems: list[Problem] = field(default_factory=list)


def record_from_row(row: StoredRow) -> LogRecord:
    data = json.loads(row.state)
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


def split_state(state: bytes) -> tuple[bytes, bytes]:
    """(event_id as 16 bytes, content digest) of a stored state, by slicing (no JSON parsing).

    A state is `canonical content` + `,"event_id":"…"` + `,"recorded_at":"…"}` (see `_Appender._rows`), so
    the content, hence its digest, is recovered exactly as it was computed at ingest.
    """
    cut = state.rindex(b',"event_id":"')
    eid = uuid.UUID(state[cut + 13:cut + 49].decode()).bytes
    return eid, content_digest(state[:cut] + b"}")


class _Appender:
    """State of one append transaction: idempotency checks, per-patient ledgers for amendments, counts.

    Idempotency by event_id is checked against the patient's own stream (a derived id hashes the content,
    patient included, so it cannot collide across patients) and, for ids given explicitly in the input,
    against the store-wide index of explicit ids. A new patient's events need no lookup at all, which keeps
    a bulk load close to the cost of the bare inserts. Nothing is kept across batches but the ledgers of
    amended patients, so memory stays flat whatever the input size.
    """

    def __init__(self, tx: AppendTransaction, now_us: Callable[[], int]):
        self.tx = tx
        self.now_us = now_us
        self.seen: dict[bytes, Prepared] = {}  # this batch's ids
        self.ledgers: dict[str, Ledger] = {}
        self.report = AppendReport()

    def _ledger(self, patient_id: str) -> Ledger:
        led = self.ledgers.get(patient_id)
        if led is None:
            led = Ledger(record_from_row(r) for r in self.tx.stream(patient_id))
            self.ledgers[patient_id] = led
        return led

    def append(self, batch: list[Prepared]) -> None:
        """Check and insert one batch. After a problem, batches are still inserted (the transaction will
        be rolled back) so that later lines are checked against everything before them."""
        rep = self.report
        self.seen = {}
        pids = list(dict.fromkeys(p[0] for p in batch))
        versions = self.tx.next_versions(pids)
        stored = self.tx.stream_ids([pid for pid in pids if versions[pid] > 1])  # eid -> (pid, version, digest)
        explicit = [p[1] for p in batch if p[1] != p[2]]
        if explicit:
            stored.update(self.tx.explicit_ids(explicit))
        fresh: list = []
        for p in batch:
            eid = p[1]
            prior = self.seen.get(eid)
            if prior is None and eid not in stored:
                self.seen[eid] = p
                fresh.append(p)
                continue
            p = p if isinstance(p, Prepared) else Prepared._make(p)
            if prior is not None:
                if prior[2] == p.digest:
                    rep.present += 1
                else:
                    rep.problems.append(Problem(
                        p.line, "event_id", str(p.event_uuid),
                        f"already used in this input (line {prior[7]}) for other content: "
                        f"{prior[5].decode()} vs {p.body.decode()}",
                    ))
                continue
            owner, version, digest = stored[eid]
            if digest == p.digest and owner == p.patient_id:
                rep.present += 1
                continue
            existing = self.tx.stream(owner)[version - 1].state.decode()
            rep.problems.append(Problem(
                p.line, "event_id", str(p.event_uuid),
                f"already recorded (patient {owner}) with other content: stored {existing} "
                f"vs new {p.body.decode()}",
            ))
        if any(p[6] is not None for p in fresh):
            self._check_amendments(fresh)
        if not fresh:
            return
        rows, explicit_rows, last_us = self._rows(fresh)
        self.tx.insert(rows, explicit_rows, last_us)
        rep.new += len(fresh)

    def _rows(self, fresh: list) -> tuple[list[tuple], list[tuple], int]:
        """Stream rows (versions assigned, `recorded_at` stamped: strictly increasing) and the index rows
        of explicitly given ids."""
        versions = self.tx.next_versions(list(dict.fromkeys(p[0] for p in fresh)))
        base = max(self.now_us(), self.tx.last_us + 1)
        rows, explicit = [], []
        second, prefix = -1, b""
        us = base
        for pid, eid, digest, kind, _on, body, _target, _line in fresh:
            if us // 1_000_000 != second:
                second = us // 1_000_000
                prefix = us_to_datetime(second * 1_000_000).strftime(',"recorded_at":"%Y-%m-%dT%H:%M:%S').encode()
            v = versions[pid]
            versions[pid] = v + 1
            rows.append((pid, v, kind, b"%b%b.%06dZ\"}" % (body[:-1], prefix, us % 1_000_000)))
            if eid != digest:
                explicit.append((eid, pid, v, digest))
            us += 1
        return rows, explicit, base + len(fresh) - 1

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
                owner = in_batch[0] if in_batch is not None else None
                if owner is None and target_id not in ledger.by_id:
                    owner = self.tx.owner_of(target_id)  # rare: only to name the other patient
                if owner is not None and owner != p.patient_id:
                    self.report.problems.append(Problem(
                        p.line, field_name, target_id,
                        f"event belongs to another patient ({owner}), not to {p.patient_id}",
                    ))
                    continue
                why = ledger.problem(rec)
                if why is not None:
                    self.report.problems.append(Problem(p.line, field_name, target_id, why))
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

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None) -> EventStore:
        """Open (creating if needed) the store named by one setting.

        `None` → `$TIMELINE_STORE` or `./timeline-data`; a folder path → an SQLite event store inside it;
        `postgresql://user:pw@host:port/db[?schema=name]` → the library's PostgreSQL module (tables in
        that schema, created if needed); `memory` → in-memory SQLite.
        """
        loc = str(location) if location is not None else os.environ.get(STORE_ENV) or DEFAULT_STORE
        if loc == "memory":
            name = f"file:timeline-{uuid.uuid4().hex}?mode=memory&cache=shared"
            return cls(sqlite_recorder(name), loc, None)
        if loc.startswith(("postgresql://", "postgres://")):
            u = urlparse(loc)
            schema = parse_qs(u.query).get("schema", [""])[0]
            rec = postgres_recorder(
                dbname=(u.path or "/").lstrip("/") or "postgres",
                host=u.hostname or "localhost",
                port=u.port or 5432,
                user=unquote(u.username or os.environ.get("USER", "postgres")),
                password=unquote(u.password or ""),
                schema=schema,
            )
            return cls(rec, loc, None)
        folder = Path(loc)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"store location {loc!r} is a file; give a data folder (or postgresql://…, memory)")
        folder.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_recorder(str(folder / SQLITE_FILE)), loc, folder)

    def close(self) -> None:
        self.recorder.datastore.close()  # type: ignore[attr-defined]

    # -- writing -------------------------------------------------------------------------------------
    def append(self, source: Callable[[], Iterable[Prepared | Problem | list]], what: str = "input",
               on_batch: Callable[[AppendReport], None] | None = None) -> AppendReport:
        """Append everything `source()` yields in one transaction, or nothing.

        `source` yields prepared events (or plain tuples in their field order), problems, or whole lists of
        them (a block of a bulk reader, appended as one batch); it is a callable so the whole input can be
        replayed if the transaction must be retried
        after a version conflict. Problems yielded by the source (validation) and found here (conflicting
        ids, inadmissible amendments) are all collected; if there is any, the transaction is rolled back
        and `RejectedError` lists them all.
        """
        for attempt in range(1, MAX_RETRIES + 1):
            try:
                return self._append_once(source, what, on_batch)
            except (IntegrityError, sqlite3.IntegrityError, _pg_unique_violation()) as e:
                if attempt == MAX_RETRIES:
                    raise
                log.info("version conflict on append (attempt %d), retrying: %s", attempt, type(e).__name__)
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _append_once(self, source: Callable[[], Iterable[Prepared | Problem]], what: str,
                     on_batch: Callable[[AppendReport], None] | None) -> AppendReport:
        with self.recorder.append_transaction() as tx:
            app = _Appender(tx, self.now_us)
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

    def ledger(self, patient_id: str | None = None, known_at: datetime | None = None) -> Ledger:
        """The folded facts of one patient (or of everyone), as known at `known_at`."""
        if patient_id is not None:
            return fold(self.stream(patient_id), known_at)
        recs: list[LogRecord] = []
        for rows in self.records():
            recs.extend(record_from_row(r) for r in rows)
        return fold(recs, known_at)


def _pg_unique_violation() -> type[BaseException]:
    try:
        from psycopg.errors import UniqueViolation
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return IntegrityError
    return UniqueViolation


def is_amendment(type_name: str) -> bool:
    return type_name in AMENDMENTS
