"""`timeline verify`: the full check of a store and its projection file, for after a crash, a restore or a
copy, and before a data lock.

The store: the database's own full integrity check (SQLite's `integrity_check`; PostgreSQL checks its pages
itself), then the log read whole: every stored state is an event (JSON with its id, patient and type, in
the stream it belongs to), every event id is unique in the store and indexed to its own event. The
projection file: it opens, it was built from this store and the history it holds, and every table equals
the same table built afresh in memory from the store (when the file is caught up). Each check prints one
line (`ok` or what is wrong); reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import itertools
from dataclasses import dataclass

import duckdb

from .projections import graph
from .projections.build import quote_ident
from .store.recorders import ID_INDEX


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


def _store_log(tl) -> duckdb.DuckDBPyConnection:
    """The whole log, as stored (position, stream, version, state) and as the index has it, in DuckDB."""
    con = duckdb.connect()
    recorder = tl.store.recorder
    with recorder.read_arrow(0, tl.store.max_position()) as reader:
        con.register("_raw", reader)
        con.execute("CREATE TABLE raw AS SELECT position, CAST(state AS VARCHAR) AS state FROM _raw")
        con.unregister("_raw")
    import pyarrow as pa

    kept = recorder.id_prefixes()
    con.register("_ids", pa.table({"k": pa.array(kept or [], pa.int64())}))
    # as unsigned 64-bit integers: the key is the id's first 8 bytes read as a signed integer
    con.execute("CREATE TABLE ids AS SELECT CAST(CASE WHEN k < 0 THEN k::HUGEINT + 18446744073709551616 ELSE k END "
                "AS UBIGINT) AS k FROM _ids")
    return con


def store_findings(tl) -> Iterator[Finding]:
    """The checks of the event store."""
    check = getattr(tl.store.recorder, "integrity_check", None)
    if check is not None:
        found = check()
        yield Finding("store file", found is None, "SQLite integrity_check: " + (found or "ok"))
    con = _store_log(tl)
    try:
        n, bad = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT json_valid(state) OR state->>'event_id' IS NULL "
            "OR try_cast(state->>'event_id' AS UUID) IS NULL OR state->>'patient_id' IS NULL "
            "OR state->>'type' IS NULL) FROM raw").fetchone()
        yield Finding("stored events", bad == 0, f"{n:,} read, {bad:,} not a readable event")
        con.execute("CREATE TABLE events AS SELECT position, CAST(state->>'event_id' AS UUID) AS event_id, "
                    "state->>'patient_id' AS patient_id FROM raw WHERE json_valid(state) "
                    "AND try_cast(state->>'event_id' AS UUID) IS NOT NULL")
        shared = con.execute("SELECT count(*) FROM (SELECT event_id FROM events GROUP BY ALL "
                             "HAVING count(*) > 1)").fetchone()[0]
        yield Finding("event ids", shared == 0, "every id unique" if not shared else
                      f"{shared:,} id(s) shared by two or more events (stored before ids were unique)")
        # an id's index key: its first 8 bytes (recorders.prefix_key)
        con.execute("CREATE TABLE keys AS SELECT DISTINCT ('0x' || substr(replace(CAST(event_id AS VARCHAR), "
                    "'-', ''), 1, 16))::UBIGINT AS k FROM events")
        if tl.store.recorder.meta(ID_INDEX) is None:
            yield Finding("id index", True, "not kept yet: no event id was given explicitly (the index is made "
                                            "with the first)")
            return
        missing = con.execute("SELECT count(*) FROM keys ANTI JOIN ids USING (k)").fetchone()[0]
        extra = con.execute("SELECT count(*) FROM ids ANTI JOIN keys USING (k)").fetchone()[0]
        sealed = tl.store.recorder.forgotten_events() if tl.store.encrypted else 0  # their ids can't be read
        yield Finding("id index", missing == 0 and extra <= sealed,
                      f"{missing:,} event id(s) not indexed, {extra:,} index key(s) without a readable event"
                      + (f" (of {sealed:,} events of forgotten patients, unreadable for ever)" if sealed else ""))
    finally:
        con.close()


def _same_tables(built: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """The projection tables whose rows differ between `built` (in memory) and the file at `path`."""
    built.execute("ATTACH ? AS f (READ_ONLY)", [path])  # the path bound, never pasted into the statement
    differ = []
    for name in graph.models():
        t = quote_ident(name)
        cols = ", ".join(quote_ident(c) for c, in built.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'memory' "
            "AND table_name = ? ORDER BY ordinal_position", [name]).fetchall())
        a, b = f"SELECT {cols} FROM memory.main.{t}", f"SELECT {cols} FROM f.main.{t}"
        n = built.execute(f"SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) + "
                          f"(SELECT count(*) FROM ({b} EXCEPT ALL {a}))").fetchone()[0]
        if n:
            differ.append(f"{name} ({n:,} row(s))")
    built.execute("DETACH f")
    return differ


def projection_findings(tl) -> Iterator[Finding]:
    """The checks of the projection file."""
    from .projections.state import history_mismatch

    if tl.store.encrypted:
        from .app import IN_MEMORY

        yield Finding("projections", True, IN_MEMORY)
        return
    path = tl.projector().path
    if not path.exists():
        yield Finding("projections", True, f"no projection file yet ({path}); `timeline project` makes it")
        return
    try:
        view = tl.as_of()
    except Exception as e:  # noqa: BLE001 - any failure to open it is the finding
        yield Finding("projection file", False, str(e).splitlines()[0])
        return
    state = view.state
    view.close()
    mismatch = history_mismatch(tl.store.recorder, state)
    yield Finding("projection file", mismatch is None, mismatch or f"{path} opens; built from this store, "
                  f"position {state.position:,}")
    if mismatch is not None:
        return
    behind = tl.store.count_after(state.position)
    if behind:
        yield Finding("projection tables", True, f"not compared: the file is {behind:,} event(s) behind the store "
                      "(run `timeline project`, then verify)")
        return
    built = tl._fresh(None, None, state.params)
    try:
        differ = _same_tables(built, str(path))
    finally:
        built.close()
    yield Finding("projection tables", not differ, "every table equals a fresh build from the store" if not differ
                  else "differ from a fresh build: " + ", ".join(differ) + " (`timeline project --rebuild`)")


def verify(tl, say: Callable[[str], None]) -> bool:
    """Run every check, saying each finding; True when all are ok."""
    ok = True
    for finding in itertools.chain(store_findings(tl), projection_findings(tl)):
        say(str(finding))
        ok = ok and finding.ok
    return ok
