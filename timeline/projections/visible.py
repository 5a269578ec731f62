"""From stored rows to `visible_events`, in bulk (docs/architecture.md).

The log is loaded into DuckDB as it is stored (one row per stored event, amendments included, JSON parsed
by DuckDB, not by Python). `visible_events` for a clinical date D and a knowledge time K is then:
the originals recorded by K, with the amendments recorded by K folded in, occurred on or before D.

Amendments are few, so their fold is the one definition in `timeline.store.facts` (the same `Ledger` that
validates them at ingest and renders `timeline history`), applied to the amendment rows only; its result
(fact id → version in force, or retracted) is joined back in SQL.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import date, datetime

import duckdb
import pyarrow as pa

from ..store.facts import AMENDMENTS, CORRECTED, Ledger, LogRecord
from ..store.recorders import StoredRow, raw_schema

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


# Event ids are UUIDs (EVENTS.md), kept as such in the log: 16 bytes that need no string compression; the
# `events` projection shows them as text.
ENVELOPE_STRUCT = json.dumps({"patient_id": "VARCHAR", "type": "VARCHAR", "event_id": "UUID", "occurred_on": "DATE", "recorded_at": "TIMESTAMPTZ",
                              "corrects": "UUID", "retracts": "UUID"})


# The payload is the event's own fields (plus source/recorded_by/note): the envelope columns are removed
# (an RFC 7396 merge patch with nulls), for originals and replacements alike.
STRIP_ENVELOPE = json.dumps({k: None for k in ("type", "patient_id", "occurred_on", "event_id", "recorded_at")})
STRIP_REPLACEMENT = json.dumps({"type": None, "occurred_on": None})


def raw_table(rows: Iterable[StoredRow]) -> pa.Table:
    pos, state = [], []
    for r in rows:
        pos.append(r.position)
        state.append(r.state.decode())
    return pa.Table.from_arrays([pa.array(pos, pa.int64()), pa.array(state, pa.string())], schema=raw_schema())


def create_log(con: duckdb.DuckDBPyConnection, name: str = "log", temp: bool = False) -> None:
    con.execute(f"CREATE {'TEMP ' if temp else ''}TABLE IF NOT EXISTS {name} ({LOG_COLUMNS})")


def insert_log(con: duckdb.DuckDBPyConnection, raw: pa.Table | pa.RecordBatchReader, name: str = "log") -> None:
    """Append raw stored rows (`raw_schema()` columns: an Arrow table, or a stream DuckDB pulls batch by
    batch); the envelope (patient, type, id, dates, amendment target) is parsed from the state."""
    con.register("_raw_rows", raw)
    try:
        # one parse per stored row for the envelope's typed columns, one for the payload
        con.execute(f"""
            INSERT INTO {name}
            SELECT position, j.patient_id, j.event_id, j.type, j.occurred_on, j.recorded_at,
                   coalesce(j.corrects, j.retracts), json_merge_patch(state, '{STRIP_ENVELOPE}')
            FROM (SELECT position, state, from_json(state, '{ENVELOPE_STRUCT}') AS j FROM _raw_rows)
        """)
    finally:
        with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses it; the error is the insert's
            con.unregister("_raw_rows")


def fact_versions(amendments: list[tuple], known_at: datetime | None) -> dict[str, list]:
    """Fold amendment rows (position, patient_id, event_id, type, target, recorded_at) into
    fact id → (patient, version event id in force or NULL, retracted), as columns for `VERSIONS_SQL`."""
    ledger = Ledger()
    amendment_ids = {a[2] for a in amendments}
    for pos, pid, eid, typ, target, rec_at in sorted(amendments):
        if known_at is not None and rec_at > known_at:
            continue
        if target not in ledger.by_id and target not in amendment_ids:  # an original: stub it
            ledger.add(LogRecord(-1, pid, target, "original", date.min, rec_at, {}))
        key = "corrects" if typ == CORRECTED else "retracts"
        ledger.add(LogRecord(pos, pid, eid, typ, date.min, rec_at, {key: target}))
    pids, fid, version, retracted = [], [], [], []
    for f in ledger.facts.values():
        if f.corrections or f.retraction is not None or f.reverted:
            pids.append(f.original.patient_id)
            fid.append(f.original.event_id)
            version.append(f.corrections[-1].event_id if f.corrections else None)
            retracted.append(f.retraction is not None)
    return {"patient_id": pids, "fact_id": fid, "version_id": version, "retracted": retracted}


# The fact versions as a relation, from the columns `fact_versions` returns passed as list parameters (no
# Python object per row crosses, and no Arrow conversion, which would import pandas)
VERSIONS_SQL = ("SELECT unnest($patient_id::VARCHAR[]) AS patient_id, unnest($fact_id::VARCHAR[]) AS fact_id, "
                "unnest($version_id::VARCHAR[]) AS version_id, unnest($retracted::BOOLEAN[]) AS retracted")


def visible_sql(log: str, versions: str | None, as_of: date | None, known_at: datetime | None,
                patients: str | None = None) -> str:
    """SELECT of `visible_events` from a log relation and a fact-versions relation (None: no fact is
    corrected or retracted, so the originals are read as they are)."""
    k = f"AND o.recorded_at <= CAST('{known_at.isoformat()}' AS TIMESTAMPTZ)" if known_at else ""
    d = f"WHERE occurred_on <= DATE '{as_of.isoformat()}'" if as_of else ""
    pf = f"AND o.patient_id IN (SELECT patient_id FROM {patients})" if patients else ""
    amend = ", ".join(f"'{t}'" for t in AMENDMENTS)
    if versions is None:
        return f"""
    SELECT * FROM (
        SELECT o.event_id, o.patient_id, o.type, o.occurred_on, o.recorded_at, o.payload
        FROM {log} o WHERE o.type NOT IN ({amend}) {k} {pf}
    ) {d}"""
    versions = (f"(SELECT CAST(fact_id AS UUID) AS fact_id, CAST(version_id AS UUID) AS version_id, retracted "
                f"FROM {versions})")
    return f"""
    SELECT * FROM (
        SELECT o.event_id, o.patient_id, o.type, o.occurred_on, o.recorded_at, o.payload
        FROM {log} o ANTI JOIN {versions} v ON v.fact_id = o.event_id
        WHERE o.type NOT IN ({amend}) {k} {pf}
        UNION ALL
        SELECT o.event_id, o.patient_id,
               coalesce(c.payload->'replacement'->>'type', o.type),
               coalesce(CAST(c.payload->'replacement'->>'occurred_on' AS DATE), o.occurred_on),
               coalesce(c.recorded_at, o.recorded_at),
               coalesce(json_merge_patch(c.payload->'replacement', '{STRIP_REPLACEMENT}'), o.payload)
        FROM {log} o
        JOIN {versions} v ON v.fact_id = o.event_id
        LEFT JOIN {log} c ON c.event_id = v.version_id
        WHERE o.type NOT IN ({amend}) AND NOT v.retracted {k} {pf}
    ) {d}"""


def amendments_of(con: duckdb.DuckDBPyConnection, log: str = "log", patients: str | None = None) -> list[tuple]:
    pf = f"AND patient_id IN (SELECT patient_id FROM {patients})" if patients else ""
    amend = ", ".join(f"'{t}'" for t in AMENDMENTS)
    return con.execute(
        f"SELECT position, patient_id, CAST(event_id AS VARCHAR), type, CAST(target AS VARCHAR), recorded_at "
        f"FROM {log} "
        f"WHERE type IN ({amend}) {pf}").fetchall()


def build_visible(con: duckdb.DuckDBPyConnection, *, log: str = "log", target: str = "visible_events",
                  as_of: date | None = None, known_at: datetime | None = None,
                  patients: str | None = None, temp: bool = False) -> None:
    """(Re)create `target` as the visible events of `log` for (as_of, known_at), optionally for the
    patients listed in relation `patients` only."""
    versions = fact_versions(amendments_of(con, log, patients), known_at)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _visible_versions AS {VERSIONS_SQL}", versions)
    kind = "TEMP TABLE" if temp else "TABLE"
    relation = "temp.main._visible_versions" if versions["fact_id"] else None
    con.execute(f"CREATE OR REPLACE {kind} {target} AS {visible_sql(log, relation, as_of, known_at, patients)}")
    con.execute("DROP TABLE temp.main._visible_versions")
