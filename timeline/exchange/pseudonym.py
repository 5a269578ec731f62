"""Pseudonymised exports (`--pseudonymise KEY_FILE`): patient ids replaced by a keyed hash and every date of a
patient shifted by an offset derived from the same key, so every interval within a patient is kept.

- id: HMAC-SHA-256(key, "id:" + patient id), the first 16 hex digits (stable for a key; without the key it
  cannot be recomputed from a list of real ids);
- offset: HMAC-SHA-256(key, "shift:" + patient id) → a whole number of days, 365–730 either way (never 0);
- event ids (content-derived UUIDs, which anyone holding the data could recompute) are replaced by a keyed
  hash too; the provenance of the event log (source, source_record_id, recorded_by, note) is left out; in
  text (a data query's message) the patient's id and its dates are replaced the same way.

The key file (64 hex digits) is created with mode 0600 when missing and is never written into an export.
Frames are transformed in DuckDB (vectorised); only the per-patient and per-event hashes are computed in Python.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

OFFSET_MIN, OFFSET_SPAN = 365, 366  # |offset| in 365..730 days
ID_DIGITS = 16
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_PROVENANCE = '{"source": null, "source_record_id": null, "recorded_by": null, "note": null}'


@dataclass(frozen=True)
class Pseudonymiser:
    key: bytes

    @classmethod
    def from_key_file(cls, path: Path) -> Pseudonymiser:
        """Read the key, or create the file (mode 0600) with a new random key."""
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        text = path.read_text().strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{path}: a pseudonymisation key file holds 64 hex digits") from None
        if len(key) < 16:
            raise ValueError(f"{path}: the key is too short (at least 32 hex digits)")
        return cls(key)

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).digest()

    def patient(self, patient_id: str) -> str:
        return self._mac("id", patient_id).hex()[:ID_DIGITS]

    def offset(self, patient_id: str) -> int:
        n = int.from_bytes(self._mac("shift", patient_id)[:4], "big")
        days = OFFSET_MIN + n % OFFSET_SPAN
        return days if n & (1 << 31) else -days

    def event_id(self, event_id: str) -> str:
        return self._mac("event", event_id).hex()[:32]

    def event(self, ev: dict[str, Any]) -> dict[str, Any]:
        """One event (public JSON) pseudonymised (the FHIR export)."""
        from datetime import date, timedelta

        pid = ev["patient_id"]
        shift = timedelta(days=self.offset(pid))
        out = {k: v for k, v in ev.items() if k not in ("source", "source_record_id", "recorded_by", "note")}
        out["patient_id"] = self.patient(pid)
        if "event_id" in out:
            out["event_id"] = _uuid(self.event_id(out["event_id"]))
        for k in ("occurred_on", "birth_date"):
            if k in out:
                out[k] = (date.fromisoformat(out[k]) + shift).isoformat()
        return out

    def frame(self, df: pl.DataFrame) -> pl.DataFrame:
        """A table with a `patient_id` column, pseudonymised: ids hashed, DATE and TIMESTAMP columns shifted by
        the row's patient offset, event ids hashed, text and JSON scrubbed of the patient's id and dates."""
        if "patient_id" not in df.columns or df.height == 0:
            return df
        patients = df["patient_id"].unique().drop_nulls().to_list()
        keys = pl.DataFrame({"patient_id": patients, "_pid": [self.patient(p) for p in patients],
                             "_off": [self.offset(p) for p in patients]},
                            schema={"patient_id": pl.Utf8, "_pid": pl.Utf8, "_off": pl.Int32})
        con = duckdb.connect()
        try:
            con.register("_in", df)
            con.register("_keys", keys)
            selects = []
            for name, dtype in df.schema.items():
                q = '"' + name.replace('"', '""') + '"'
                col = f"_in.{q}"
                if name == "patient_id":
                    selects.append(f"_keys._pid AS {q}")
                elif dtype == pl.Date:
                    selects.append(f"CAST({col} + _keys._off AS DATE) AS {q}")
                elif isinstance(dtype, pl.Datetime):
                    selects.append(f"{col} + to_days(_keys._off) AS {q}")
                elif name == "event_id" or name.endswith("_event_id"):
                    selects.append(f"_ev.hashed AS {q}" if name == "event_id" else f"{col} AS {q}")
                elif dtype == pl.Utf8 or dtype == pl.String:
                    selects.append(f"{_scrub(col)} AS {q}")
                else:
                    selects.append(f"{col} AS {q}")
            join_ev = ""
            if "event_id" in df.columns:
                ids = df["event_id"].unique().drop_nulls().to_list()
                con.register("_ev", pl.DataFrame({"event_id": ids, "hashed": [self.event_id(e) for e in ids]},
                                                  schema={"event_id": pl.Utf8, "hashed": pl.Utf8}))
                join_ev = " LEFT JOIN _ev ON _ev.event_id = _in.event_id"
            sql = (f"SELECT {', '.join(selects)} FROM _in LEFT JOIN _keys ON _keys.patient_id = _in.patient_id"
                   f"{join_ev}")
            return con.sql(sql).pl()
        finally:
            con.close()

    def events_payload(self, df: pl.DataFrame) -> pl.DataFrame:
        """The `events` table: its JSON payload without provenance, then scrubbed like text."""
        if "payload" not in df.columns:
            return self.frame(df)
        con = duckdb.connect()
        try:
            con.register("_in", df)
            cols = ", ".join(f'"{c}"' for c in df.columns if c != "payload")
            df = con.sql(f"SELECT {cols}, CAST(json_merge_patch(CAST(payload AS JSON), '{_PROVENANCE}') AS VARCHAR) "
                         "AS payload FROM _in").pl()
        finally:
            con.close()
        return self.frame(df)


def _scrub(col: str) -> str:
    """SQL: the text with the row patient's id replaced and each date in it shifted by the row's offset."""
    replaced = (f"CASE WHEN length(_in.patient_id) >= 3 THEN replace({col}, _in.patient_id, _keys._pid) "
                f"ELSE {col} END")
    parts = f"regexp_split_to_array({replaced}, '{_DATE}')"
    dates = f"regexp_extract_all({replaced}, '{_DATE}')"
    shifted = (f"list_transform({dates}, lambda d: coalesce(strftime(TRY_CAST(d AS DATE) + _keys._off, '%Y-%m-%d'), d))")
    return (f"CASE WHEN {col} IS NULL OR NOT regexp_matches({col}, '{_DATE}') THEN "
            f"CASE WHEN {col} IS NULL THEN NULL ELSE {replaced} END "
            f"ELSE {parts}[1] || array_to_string(list_transform(range(1, len({dates}) + 1), "
            f"lambda i: {shifted}[i] || {parts}[i + 1]), '') END")


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"
