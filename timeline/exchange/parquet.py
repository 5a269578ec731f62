"""`timeline export parquet`: every projection table and the visible event log (`events`), one Parquet file
per table, and `_manifest.json` saying what they hold: the store position they reflect, the parameters, the
as-of date and known-at time, the row count of each file and the engine's version.

Tables are read through the read-only view as Arrow (no copy through Python objects) and written by pyarrow;
column types are kept (dates as dates, timestamps in UTC, the event payload as JSON text).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_manifest.json"


def _arrow(view: Any, name: str, pseudonymiser: Any) -> pa.Table:
    from ..projections.build import quote_ident

    query = f"SELECT * FROM {quote_ident(name)}"
    if name == "events":  # the payload as JSON text: readable by any Parquet reader
        query = ("SELECT event_id, patient_id, type, occurred_on, recorded_at, day, CAST(payload AS VARCHAR) AS payload "
                 "FROM events ORDER BY patient_id, occurred_on, event_id")
    if pseudonymiser is None:
        return view.relation(query).arrow()
    frame = view.sql(query)
    frame = pseudonymiser.events_payload(frame) if name == "events" else pseudonymiser.frame(frame)
    return frame.to_arrow()


def write_parquet(view: Any, out: Path, pseudonymiser: Any = None, as_of: date | None = None,
                  known_at: datetime | None = None, params: Any = None, position: int | None = None) -> list[Path]:
    """Write every table of the view to `out/<table>.parquet` and the manifest; the paths written."""
    from .. import __version__

    out.mkdir(parents=True, exist_ok=True)
    written, counts = [], {}
    from ..projections.graph import models

    declared = set(models())
    for name in [t for t in view.tables() if t in declared]:
        table = _arrow(view, name, pseudonymiser)
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        path = out / f"{name}.parquet"
        pq.write_table(table, path, compression="snappy")
        written.append(path)
        counts[name] = table.num_rows
    state = getattr(view, "state", None)
    in_force = params if params is not None else (state.params if state is not None else None)
    manifest = {
        "engine": "timeline", "engine_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store_position": state.position if state is not None else position,
        "as_of": as_of.isoformat() if as_of else None,
        "known_at": known_at.isoformat() if known_at else None,
        "parameters": dict(in_force.values) if in_force is not None else None,
        "pseudonymised": pseudonymiser is not None,
        "view": view.description,
        "tables": {name: {"file": f"{name}.parquet", "rows": n} for name, n in counts.items()},
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    return written + [path]
