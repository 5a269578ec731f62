"""Erasure of a patient from an encrypted store, by destroying their data key ("crypto-shredding").

The log is append-only: an event is never deleted or rewritten. A patient who withdraws consent leaves every
projection from the moment the withdrawal is known (`consent_withdrawn`, see `projections/loader.py`); where
their data must also be erased (GDPR art. 17), `forget` destroys the only key that opens their events and the
sealed copy of their id (`store/encryption.py`): the events stay in the log, as ciphertext nobody can read, and
every projection built afterwards is built without them. The audit trail keeps that it happened, when, by whom
and why, under the patient's pseudonym (never the id).

What it cannot reach: a backup or copy of the store made before, which still holds the wrapped key (it is
erased as those copies expire, or by changing the master key: `timeline key rotate`); on PostgreSQL, the
freed blocks of the rewritten keys table until the file system reuses them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import us_to_datetime
from .locks import who

FORGET = "forget"
KEY_CHANGE = "key change"


@dataclass(frozen=True)
class Forgotten:
    pseudonym: str  # the stream id the audit trail names
    events: int  # stored events that can no longer be read
    at: datetime
    by: str


def forget(tl: Any, patient_id: str, by: str | None = None, reason: str | None = None) -> Forgotten:
    """Destroy the data key of `patient_id` in an encrypted store, and record it in the audit trail."""
    store = tl.store
    if not store.encrypted:
        raise ValueError("`forget` destroys a patient's data key, which only an encrypted store has (see `timeline "
                         "key new`); in this store, record a consent_withdrawn event to take the patient out of "
                         "every result")
    recorder = store.recorder
    with recorder.append_transaction() as tx:
        sid = recorder.ring.stream_id(patient_id)
        tx.c.execute(tx.d.sql(f"SELECT count(*) FROM {recorder.names.events} WHERE originator_id = ?"), [sid])
        events = int(tx._rows()[0][0])
        now = max(store.now_us(), tx.last_us + 1)
        if store.data_dir is not None:  # the key's old bytes zeroed in the file's pages, not left as free space
            tx.c.execute("PRAGMA secure_delete = ON")
        if not events or not tx.forget(patient_id, now):
            raise LookupError(f"no patient {patient_id} that can be read in this store (never recorded, or forgotten "
                              "already)")
        detail = {"reason": reason, "after": f"data key destroyed: {events:,} stored event(s) can never be read again"}
        stamp = tx.audit(FORGET, sid, json.dumps(detail, sort_keys=True), who(by), now)
    _purge(store)
    return Forgotten(sid, events, us_to_datetime(stamp), who(by))


def _purge(store: Any) -> None:
    """Leave no old copy of the destroyed key in the database's own files: SQLite's write-ahead log is
    checkpointed and truncated; PostgreSQL's keys table is rewritten (VACUUM FULL)."""
    if store.data_dir is not None:
        from .settings import SQLITE_FILE

        con = sqlite3.connect(store.data_dir / SQLITE_FILE)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    elif store.location.startswith(("postgresql://", "postgres://")):
        with store.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                conn.execute(f"VACUUM FULL {store.recorder.names.keys}")
            finally:
                conn.autocommit = False


def rotate(tl: Any, new_key: str, by: str | None = None) -> int:
    """Wrap an encrypted store's data keys (and its pseudonym key and key check) with a new master key, in one
    transaction, and record the change in the audit trail; returns how many data keys. The events are not
    touched: they stay sealed by the patients' own keys."""
    import base64

    from .store.encryption import CHECK, PatientCipher, _decode

    store = tl.store
    if not store.encrypted:
        raise ValueError("this store is not encrypted: it has no master key to change")
    old = store.recorder.ring.master
    new = PatientCipher(_decode(new_key, "the new key"))
    sealed = lambda data: base64.b64encode(new.encrypt(data)).decode()  # noqa: E731
    with store.recorder.append_transaction() as tx:
        if store.data_dir is not None:
            tx.c.execute("PRAGMA secure_delete = ON")
        done = tx.rewrap({"key_check": sealed(CHECK), "pseudonym_key": sealed(store.recorder.ring.pseudonym_key)},
                         lambda wrapped: new.encrypt(old.decrypt(wrapped)))
        now = max(store.now_us(), tx.last_us + 1)
        tx.audit(KEY_CHANGE, "master key", json.dumps({"after": f"{done:,} data key(s) wrapped by a new master key"}),
                 who(by), now)
    _purge(store)
    return done
