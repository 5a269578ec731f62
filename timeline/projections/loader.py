"""From stored rows to `visible_events`: the one loader every path uses (build, catch-up, replay of a few
patients, as-of views, tests).

The log is loaded into DuckDB as it is stored (`log`: one row per stored event, amendments included,
envelope parsed by DuckDB, not by Python). The visible events for a clinical date D and a knowledge time K
are then the originals recorded by K, with the amendments recorded by K folded in, occurred on or before D.

Amendments are few, so their fold is the one definition in `timeline.store.facts` (the `Ledger` that
validates them at ingest and renders `timeline history`), applied to the amendment rows only; its result
(fact id -> version in force, or retracted) is joined back in SQL. D and K are bound as parameters.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from ..events.basics import IDENTITY_FIELDS
from ..store.facts import AMENDMENTS, CORRECTED, Ledger, LogRecord
from ..store.upcasting import upcast_sql
from .model import VISIBLE_EVENTS

if TYPE_CHECKING:  # the store's stack is imported where it is used: a replay read with sqlite3 needs none of it
    import pyarrow as pa

    from ..store.rows import StoredRow

LOG_COLUMNS = """
    position BIGINT NOT NULL,
    patient_id VARCHAR NOT NULL,
    event_id UUID NOT NULL,
    type VARCHAR NOT NULL,
    occurred_on DATE NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    target UUID,
    payload JSON NOT NULL
"""

#: The columns of `visible_events`, the input every model reads (docs/architecture.md).
VISIBLE_COLUMNS = ("event_id", "patient_id", "type", "occurred_on", "recorded_at", "payload")

# Event ids are UUIDs, kept as such in the log: 16 bytes that need no string compression.
_ENVELOPE_STRUCT = json.dumps({"patient_id": "VARCHAR", "type": "VARCHAR", "event_id": "UUID",
                               "occurred_on": "DATE", "recorded_at": "TIMESTAMPTZ",
                               "corrects": "UUID", "retracts": "UUID"})

# The payload is the event's own fields plus its provenance (source, recorded_by, note): the identity and
# the clock are removed (an RFC 7396 merge patch with nulls), for originals and replacements alike.
_STRIP_ENVELOPE = json.dumps({k: None for k in (*IDENTITY_FIELDS, "recorded_at")})
_STRIP_REPLACEMENT = json.dumps({"type": None, "occurred_on": None})
_AMENDMENTS = "(" + ", ".join(f"'{t}'" for t in AMENDMENTS) + ")"
WITHDRAWN = "consent_withdrawn"


# -- the log ----------------------------------------------------------------------------------------

def raw_table(rows: Iterable[StoredRow]) -> pa.Table:
    """Stored rows as the Arrow table `insert_log` reads (`raw_schema()`)."""
    import pyarrow as pa

    from ..store.recorders import raw_schema

    pos, state = [], []
    for r in rows:
        pos.append(r.position)
        state.append(r.state.decode())
    return pa.Table.from_arrays([pa.array(pos, pa.int64()), pa.array(state, pa.string())], schema=raw_schema())


def create_log(con: duckdb.DuckDBPyConnection, name: str = "log", temp: bool = False) -> None:
    con.execute(f"CREATE {'TEMP ' if temp else ''}TABLE IF NOT EXISTS {name} ({LOG_COLUMNS})")


def insert_log(con: duckdb.DuckDBPyConnection, raw: Any, name: str = "log") -> None:
    """Append raw stored rows (an Arrow table, or an Arrow C stream DuckDB pulls batch by batch); the envelope
    (patient, type, id, dates, amendment target) is parsed from the self-describing state, and a state of an
    earlier format is upcast (`timeline.store.upcasting`)."""
    con.register("_raw_rows", raw)
    try:
        _insert(con, name, "_raw_rows")
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the error is the insert's
            con.unregister("_raw_rows")


def insert_rows(con: duckdb.DuckDBPyConnection, rows: Iterable[StoredRow], name: str = "log") -> None:
    """Append a few stored rows (a replay's streams) as `insert_log` does, bound as two lists: no Arrow (to
    build an Arrow array from Python values, pyarrow imports pandas, which takes longer than the replay)."""
    position, state = [], []
    for r in rows:
        position.append(r.position)
        state.append(r.state.decode())
    _insert(con, name, "(SELECT unnest($position::BIGINT[]) AS position, unnest($state::VARCHAR[]) AS state)",
            {"position": position, "state": state})


def _insert(con: duckdb.DuckDBPyConnection, name: str, source: str, values: dict[str, Any] | None = None) -> None:
    con.execute(f"""
        INSERT INTO {name}
        SELECT position, j.patient_id, j.event_id, j.type, j.occurred_on, j.recorded_at,
               coalesce(j.corrects, j.retracts), json_merge_patch({upcast_sql("state", "j.type")}, $strip)
        FROM (SELECT position, CAST(state AS VARCHAR) AS state, from_json(state, $envelope) AS j
              FROM {source})   -- an empty read may come typed otherwise: state is text
    """, {"strip": _STRIP_ENVELOPE, "envelope": _ENVELOPE_STRUCT, **(values or {})})


# -- fact versions: the fold of the amendments ---------------------------------------------------------

def amendments(con: duckdb.DuckDBPyConnection, log: str = "log", patients: str | None = None) -> list[tuple]:
    """(position, patient, event id, type, target, recorded_at) of every amendment of `log` (of the patients
    in relation `patients`, if given)."""
    pf = f"AND patient_id IN (SELECT patient_id FROM {patients})" if patients else ""
    return con.execute(
        "SELECT position, patient_id, CAST(event_id AS VARCHAR), type, CAST(target AS VARCHAR), recorded_at "
        f"FROM {log} WHERE type IN {_AMENDMENTS} {pf}").fetchall()


def fold(rows: list[tuple], known_at: datetime | None) -> dict[str, list]:
    """Amendment rows folded into fact id -> (patient, version event id in force or NULL, retracted), as
    columns for `VERSIONS_SQL`; only amendments recorded by `known_at` count."""
    ledger = Ledger()
    amendment_ids = {a[2] for a in rows}
    for pos, pid, eid, typ, target, rec_at in sorted(rows):
        if known_at is not None and rec_at > known_at:
            continue
        if target not in ledger.by_id and target not in amendment_ids:  # an original: stub it
            ledger.add(LogRecord(-1, pid, target, "original", date.min, rec_at, {}))
        key = "corrects" if typ == CORRECTED else "retracts"
        ledger.add(LogRecord(pos, pid, eid, typ, date.min, rec_at, {key: target}))
    out: dict[str, list] = {"patient_id": [], "fact_id": [], "version_id": [], "retracted": []}
    for f in ledger.facts.values():
        if f.corrections or f.retraction is not None or f.reverted:
            out["patient_id"].append(f.original.patient_id)
            out["fact_id"].append(f.original.event_id)
            out["version_id"].append(f.corrections[-1].event_id if f.corrections else None)
            out["retracted"].append(f.retraction is not None)
    return out


# The fact versions as a relation, from the columns `fold` returns passed as list parameters (no Python
# object per row crosses, and no Arrow conversion).
VERSIONS_SQL = ("SELECT unnest($patient_id::VARCHAR[]) AS patient_id, unnest($fact_id::VARCHAR[]) AS fact_id, "
                "unnest($version_id::VARCHAR[]) AS version_id, unnest($retracted::BOOLEAN[]) AS retracted")


def write_versions(con: duckdb.DuckDBPyConnection, table: str, versions: dict[str, list],
                   append: bool = False, temp: bool = False) -> None:
    """Fact versions into `table` (created, or replaced, unless `append`; a temporary table if `temp`)."""
    head = f"INSERT INTO {table}" if append else f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {table} AS"
    con.execute(f"{head} {VERSIONS_SQL}", versions)


def fact_versions(con: duckdb.DuckDBPyConnection, table: str = "main._fact_versions") -> str | None:
    """A projection file's fact-versions relation, for the visible events to read; None while no fact is
    corrected or retracted (the amendment join is then left out)."""
    return table if con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] else None


# -- visible events ------------------------------------------------------------------------------------

def visible_select(log: str, versions: str | None, *, as_of: bool = False, known_at: bool = False,
                   patients: str | None = None) -> str:
    """The SELECT of the visible events of `log` through the fact-versions relation `versions` (None: no
    fact is corrected or retracted, the originals are read as they are). With `as_of` / `known_at` it
    takes the parameters `$as_of` (DATE) / `$known_at` (TIMESTAMPTZ); `patients`: a relation of ids.

    Consent: a patient with a `consent_withdrawn` recorded by the knowledge time (and not retracted) has no
    visible event at all, whatever the clinical date: the withdrawal holds from when it is known."""
    k = "AND o.recorded_at <= $known_at" if known_at else ""
    d = "WHERE occurred_on <= $as_of" if as_of else ""
    pf = f"AND o.patient_id IN (SELECT patient_id FROM {patients})" if patients else ""
    retracted = (f"AND w.event_id NOT IN (SELECT CAST(fact_id AS UUID) FROM {versions} WHERE retracted)"
                 if versions is not None else "")
    kw = "AND w.recorded_at <= $known_at" if known_at else ""
    consented = (f"AND o.patient_id NOT IN (SELECT w.patient_id FROM {log} w WHERE w.type = '{WITHDRAWN}' "
                 f"{kw} {retracted})")
    originals = f"FROM {log} o"
    if versions is None:
        return f"""
    SELECT * FROM (
        SELECT o.event_id, o.patient_id, o.type, o.occurred_on, o.recorded_at, o.payload
        {originals} WHERE o.type NOT IN {_AMENDMENTS} {k} {pf} {consented}
    ) {d}"""
    # joined on patient and id: an amendment acts on its own patient's fact only, whatever the ids
    v = (f"(SELECT patient_id, CAST(fact_id AS UUID) AS fact_id, CAST(version_id AS UUID) AS version_id, retracted "
         f"FROM {versions})")
    return f"""
    SELECT * FROM (
        SELECT o.event_id, o.patient_id, o.type, o.occurred_on, o.recorded_at, o.payload
        {originals} ANTI JOIN {v} v ON v.fact_id = o.event_id AND v.patient_id = o.patient_id
        WHERE o.type NOT IN {_AMENDMENTS} {k} {pf} {consented}
        UNION ALL
        SELECT o.event_id, o.patient_id,
               coalesce(c.payload->'replacement'->>'type', o.type),
               coalesce(CAST(c.payload->'replacement'->>'occurred_on' AS DATE), o.occurred_on),
               coalesce(c.recorded_at, o.recorded_at),
               coalesce(json_merge_patch(c.payload->'replacement', '{_STRIP_REPLACEMENT}'), o.payload)
        {originals}
        JOIN {v} v ON v.fact_id = o.event_id AND v.patient_id = o.patient_id
        LEFT JOIN {log} c ON c.event_id = v.version_id AND c.patient_id = o.patient_id
        WHERE o.type NOT IN {_AMENDMENTS} AND NOT v.retracted {k} {pf} {consented}
    ) {d}"""


def changed_select(log: str, *, as_of: bool = False, known_at: bool = False) -> str:
    """The SELECT of the patients (`patient_id`) whose visible events as of `$as_of` / known at `$known_at`
    may differ from those of the whole `log`: those with an event occurred after the date (or corrected to a
    date after it), or with a row recorded after the knowledge time.

    Every other patient sees, for (D, K), exactly the events they see now: the same rows recorded by K, so the
    same fold of their amendments and the same consent, and no event of theirs occurs after D, whatever its
    version. Rules are per patient, so that patient's projected rows are the ones of the whole log; a past
    view recomputes the others only (a superset is harmless: a patient recomputed in vain gets the same rows).
    """
    tests = []
    if as_of:
        tests += [f"(type NOT IN {_AMENDMENTS} AND occurred_on > $as_of)",
                  f"(type = '{CORRECTED}' AND CAST(payload->'replacement'->>'occurred_on' AS DATE) > $as_of)"]
    if known_at:
        tests.append("recorded_at > $known_at")
    return f"SELECT DISTINCT patient_id FROM {log} WHERE {' OR '.join(tests) or 'false'}"


def visible_parameters(as_of: date | None, known_at: datetime | None) -> dict[str, Any]:
    return {k: v for k, v in (("as_of", as_of), ("known_at", known_at)) if v is not None}


def load_visible(con: duckdb.DuckDBPyConnection, *, log: str = "log", into: str = VISIBLE_EVENTS,
                 as_of: date | None = None, known_at: datetime | None = None,
                 patients: str | None = None) -> None:
    """(Re)create the temporary table `into` as the visible events of `log` for (as_of, known_at), for the
    patients listed in relation `patients` only, if given: the amendments of `log` folded here."""
    versions = fold(amendments(con, log, patients), known_at)
    relation = None
    if versions["fact_id"]:
        write_versions(con, "_visible_versions", versions, temp=True)
        relation = "temp.main._visible_versions"
    visible_through(con, relation, log=log, into=into, as_of=as_of, known_at=known_at, patients=patients)
    con.execute("DROP TABLE IF EXISTS temp.main._visible_versions")


def visible_through(con: duckdb.DuckDBPyConnection, versions: str | None, *, log: str = "log",
                    into: str = VISIBLE_EVENTS, as_of: date | None = None, known_at: datetime | None = None,
                    patients: str | None = None) -> None:
    """`load_visible` through the fact versions already folded for known_at (`versions`, a relation; None: no
    fact is corrected or retracted), e.g. a projection file's when there is no knowledge time."""
    sql = visible_select(log, versions, as_of=as_of is not None, known_at=known_at is not None, patients=patients)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS {sql}", visible_parameters(as_of, known_at))
