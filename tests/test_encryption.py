"""Encryption at rest (issue 11, deliver 1 and 2): sealed events, pseudonymised patients, one-line key errors,
projections that never touch the disk, erasure by destroying a patient's key, key rotation."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.cli import main
from timeline.store.encryption import KeyProblem, new_key
from timeline.testing.cohort import iter_cohort

KEY_ENV = "TIMELINE_CIPHER_KEY"
NOTE = "sealed-note-Zq81"  # a note text no patient id or key can contain by chance


def cohort(n: int = 12, seed: int = 7) -> list[dict]:
    events = [dict(e) for e in iter_cohort(n, seed=seed)]
    for e in events[::50]:
        e["note"] = NOTE
    return events


@pytest.fixture
def key(monkeypatch) -> str:
    k = new_key()
    monkeypatch.setenv(KEY_ENV, k)
    return k


def open_sealed(location: str) -> Timeline:
    tl = Timeline.open(location)
    assert tl.store.encrypted
    return tl


# -- sealed at rest ----------------------------------------------------------------------------------------
def test_an_encrypted_sqlite_file_holds_no_patient_id_no_payload_and_types_only(tmp_path, key):
    events = cohort()
    with open_sealed(str(tmp_path / "data")) as tl:
        assert tl.ingest(events).new == len(events)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir())
    for pid in {e["patient_id"] for e in events}:
        assert pid.encode() not in raw
    assert NOTE.encode() not in raw
    assert b'"occurred_on"' not in raw and b"blood_count" in raw  # the type is the one thing readable
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as con:
        topics = {t for (t,) in con.execute("SELECT DISTINCT topic FROM stored_events")}
        streams = [s for (s,) in con.execute("SELECT DISTINCT originator_id FROM stored_events")]
        keys = con.execute("SELECT count(*), count(wrapped), count(identity) FROM timeline_keys").fetchone()
    assert topics == {e["type"] for e in events}
    assert all(s.startswith("p") and len(s) == 33 for s in streams) and len(streams) == 12
    assert keys == (12, 12, 12)


def test_an_encrypted_postgres_store_holds_no_patient_id_in_any_table(pg_url, key):
    import psycopg

    events = cohort(6, seed=3)
    for i, e in enumerate(events[:3]):
        e["source_record_id"] = f"LAB-{e['patient_id']}-{i}"
    with open_sealed(pg_url) as tl:
        assert tl.ingest(events).new == len(events)
        assert tl.patients() == sorted({e["patient_id"] for e in events})
        schema = pg_url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_url.split("?")[0]) as con:
        dump = []
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                    [schema]).fetchall():
            for row in con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall():
                dump.append(" ".join(bytes(v).hex() + bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview))
                                     else str(v) for v in row))
    text = "\n".join(dump)
    for pid in {e["patient_id"] for e in events}:
        assert pid not in text
    assert "LAB-" not in text and NOTE not in text


def test_results_are_the_same_with_and_without_encryption(tmp_path, monkeypatch):
    events = cohort(15, seed=11)
    with Timeline.open(str(tmp_path / "plain")) as tl:
        tl.ingest(events)
        tl.project()
        with tl.as_of() as view:
            plain = {t: view.table(t).sort(view.table(t).columns) for t in view.tables()}
    monkeypatch.setenv(KEY_ENV, new_key())
    with open_sealed(str(tmp_path / "sealed")) as tl:
        tl.ingest(events)
        with tl.as_of() as view:
            assert "encrypted" in view.description
            sealed = {t: view.table(t).sort(view.table(t).columns) for t in view.tables()}
        one = tl.as_of(patients=["SYN-000003"])
        assert one.sql("SELECT count(*) AS n FROM events")["n"][0] > 0
        one.close()
    assert set(plain) <= set(sealed)  # (an in-memory build also shows its input, visible_events)
    for table, frame in plain.items():  # the same, but for the clock of each ingest
        clock = [c for c in frame.columns if "recorded" in c]
        assert frame.drop(clock).equals(sealed[table].drop(clock)), table


def test_an_encrypted_store_never_writes_a_projection_file(tmp_path, key, capsys):
    data = tmp_path / "data"
    with open_sealed(str(data)) as tl:
        tl.ingest(cohort(5))
        report = tl.project()
        assert report.mode == "in memory" and report.patients == 5
        with pytest.raises(PermissionError, match="not written"):
            tl.projector().run()
    assert main(["--store", str(data), "project"]) == 0
    assert "never written to disk" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["events.sqlite"]


# -- keys: missing, wrong, misplaced --------------------------------------------------------------------------
def test_no_key_a_wrong_key_and_a_key_for_a_plain_store_are_one_line_each(tmp_path, monkeypatch, capsys):
    data, plain = tmp_path / "data", tmp_path / "plain"
    with Timeline.open(str(plain)) as tl:
        tl.ingest(cohort(2))
    monkeypatch.setenv(KEY_ENV, new_key())
    with open_sealed(str(data)) as tl:
        tl.ingest(cohort(2))
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(KeyProblem, match="is encrypted: give its key"):
        Timeline.open(str(data))
    monkeypatch.setenv(KEY_ENV, new_key())
    with pytest.raises(KeyProblem, match="another key"):
        Timeline.open(str(data))
    with pytest.raises(KeyProblem, match="not encrypted"):
        Timeline.open(str(plain))
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(KeyProblem, match="base64 of 32 bytes"):
        Timeline.open(str(data))
    monkeypatch.delenv(KEY_ENV)
    assert main(["--store", str(data), "history", "SYN-000001"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is encrypted" in err and "SYN-000001" not in err


def test_a_key_file_inside_the_data_folder_is_refused_and_key_new_never_overwrites(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    inside = tmp_path / "data" / "key"
    assert main(["key", "new", "--file", str(inside)]) == 0
    assert inside.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(inside.read_text().strip())) == 32
    assert main(["key", "new", "--file", str(inside)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert main(["--store", str(tmp_path / "data"), "--key-file", str(inside), "ingest", "-"]) == 1
    assert "inside the data folder" in capsys.readouterr().err
    outside = tmp_path / "key"
    inside.rename(outside)
    monkeypatch.setenv("TIMELINE_KEY_FILE", str(outside))
    with open_sealed(str(tmp_path / "data")) as tl:
        assert tl.ingest(cohort(1)).new > 0


def test_a_changed_byte_of_a_sealed_event_is_damage_not_data(tmp_path, key):
    with open_sealed(str(tmp_path / "data")) as tl:
        tl.ingest(cohort(2))
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as con:
        state = con.execute("SELECT state FROM stored_events WHERE rowid = 5").fetchone()[0]
        con.execute("UPDATE stored_events SET state = ? WHERE rowid = 5", [state[:40] + bytes([state[40] ^ 1]) + state[41:]])
    with Timeline.open(str(tmp_path / "data")) as tl, pytest.raises(KeyProblem, match="fails its authentication"):
        tl.sql("SELECT count(*) FROM events")


# -- the store works the same sealed ---------------------------------------------------------------------------
def test_idempotency_corrections_and_cross_patient_ids_work_sealed(tmp_path, key):
    from timeline.events.problems import RejectedError

    events = cohort(3)
    counts = [e for e in events if e["type"] == "blood_count"][:2]
    with open_sealed(str(tmp_path / "data")) as tl:
        tl.ingest(events)
        assert tl.ingest(events).present == len(events)  # the same input again: nothing new
        rec = dict(counts[0], source_record_id="LAB-1")
        tl.ingest([rec])
        again = tl.ingest([dict(rec, anc_e9_per_l=rec["anc_e9_per_l"] + 1.0)])
        assert again.corrected == 1
        stored = tl.store.stream(counts[1]["patient_id"])
        other_id = next(r.event_id for r in stored if r.type == "blood_count")
        intruder = {"type": "follow_up", "patient_id": "SYN-000099" if counts[1]["patient_id"] != "SYN-000099"
                    else "SYN-000098", "occurred_on": "2024-01-10", "disease_status": "remission",
                    "event_id": other_id}
        with pytest.raises(RejectedError, match="another patient"):
            tl.ingest([intruder])


def test_a_lock_at_a_past_moment_finds_the_same_position_sealed(tmp_path, key):
    from timeline.locks import make_lock

    with open_sealed(str(tmp_path / "data")) as tl:
        tl.ingest(cohort(2, seed=1))
        first = tl.store.max_position()
        tl.ingest(cohort(3, seed=2)[-40:])
        stamps = [r.recorded_at for r in tl.store.stream("SYN-000002")]  # the last patient of the first input
        lock = make_lock(tl, "first", at=max(stamps))
        assert lock.position == first
        assert tl.store.recorder.position_at(0) == 0


# -- forget: crypto-shredding ----------------------------------------------------------------------------------
def test_forget_makes_a_patient_unreadable_everywhere_and_is_audited(tmp_path, key, capsys):
    data = tmp_path / "data"
    events = cohort(4)
    with open_sealed(str(data)) as tl:
        tl.ingest(events)
        sid = tl.store.recorder.ring.stream_id("SYN-000002")
    with sqlite3.connect(data / "events.sqlite") as con:
        wrapped = con.execute("SELECT wrapped FROM timeline_keys WHERE stream_id = ?", [sid]).fetchone()[0]
        stored = con.execute("SELECT count(*) FROM stored_events WHERE originator_id = ?", [sid]).fetchone()[0]
    assert main(["--store", str(data), "forget", "SYN-000002"]) == 2  # --confirm is required
    assert main(["--store", str(data), "forget", "SYN-000002", "--confirm", "--by", "dpo", "--reason", "art. 17"]) == 0
    assert wrapped not in b"".join(p.read_bytes() for p in data.iterdir())
    with sqlite3.connect(data / "events.sqlite") as con:  # the events stay in the log, sealed for ever
        assert con.execute("SELECT count(*) FROM stored_events WHERE originator_id = ?", [sid]).fetchone()[0] == stored
    with Timeline.open(str(data)) as tl:
        assert "SYN-000002" not in tl.patients()
        assert tl.store.stream("SYN-000002") == []
        assert tl.sql("SELECT count(*) AS n FROM patients WHERE patient_id = 'SYN-000002'")["n"][0] == 0
        assert tl.sql("SELECT count(DISTINCT patient_id) AS n FROM events")["n"][0] == 3
        with pytest.raises(KeyProblem, match="was forgotten"):
            tl.ingest([e for e in events if e["patient_id"] == "SYN-000002"][:1])
        with pytest.raises(LookupError):
            from timeline.erasure import forget

            forget(tl, "SYN-000002")
    capsys.readouterr()
    assert main(["--store", str(data), "audit", "--format", "json"]) == 0
    trail = json.loads(capsys.readouterr().out)
    entry = next(r for r in trail if r["action"] == "forget")
    assert entry["target"] == sid and entry["by"] == "dpo" and entry["reason"] == "art. 17"
    assert f"{stored:,} stored event(s)" in entry["after"]
    assert "SYN-000002" not in json.dumps(trail)
    assert main(["--store", str(data), "verify"]) == 0


def test_forget_on_postgres(pg_url, key):
    from timeline.erasure import forget

    with open_sealed(pg_url) as tl:
        tl.ingest(cohort(3, seed=4))
        done = forget(tl, "SYN-000001", by="dpo")
        assert done.events > 0
        assert tl.patients() == ["SYN-000002", "SYN-000003"]
        assert tl.sql("SELECT count(*) AS n FROM patients")["n"][0] == 2


def test_forget_needs_an_encrypted_store(tmp_path):
    from timeline.erasure import forget

    with Timeline.open(str(tmp_path / "data")) as tl:
        tl.ingest(cohort(1))
        with pytest.raises(ValueError, match="consent_withdrawn"):
            forget(tl, "SYN-000001")


def test_key_rotate_rewraps_every_key_and_the_old_key_no_longer_opens(tmp_path, monkeypatch, capsys):
    data, old, new = tmp_path / "data", tmp_path / "old.key", tmp_path / "new.key"
    assert main(["key", "new", "--file", str(old)]) == 0
    assert main(["--store", str(data), "--key-file", str(old), "ingest", "-"]) in (0, 1)  # empty input
    monkeypatch.setenv("TIMELINE_KEY_FILE", str(old))
    with open_sealed(str(data)) as tl:
        tl.ingest(cohort(3))
        before = tl.sql("SELECT * FROM patients ORDER BY patient_id")
    assert main(["--store", str(data), "key", "rotate", str(new), "--by", "security"]) == 0
    assert new.stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyProblem, match="another key"):
        Timeline.open(str(data))
    monkeypatch.setenv("TIMELINE_KEY_FILE", str(new))
    with open_sealed(str(data)) as tl:
        assert tl.sql("SELECT * FROM patients ORDER BY patient_id").equals(before)
    capsys.readouterr()
    assert main(["--store", str(data), "audit", "--format", "json"]) == 0
    change = [r for r in json.loads(capsys.readouterr().out) if r["action"] == "key change"]
    assert len(change) == 1 and change[0]["by"] == "security" and "3 data key(s)" in change[0]["after"]


def test_the_patient_cipher_keeps_the_library_ciphers_layout():
    """`PatientCipher` is no subclass of the library's `AESCipher` (so a plain store never imports
    `cryptography`), but seals in its layout: each opens what the other sealed."""
    from eventsourcing.cryptography import AESCipher
    from eventsourcing.utils import Environment

    from timeline.store.encryption import PatientCipher

    key = new_key()
    ours, library = PatientCipher(base64.b64decode(key)), AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    assert library.decrypt(ours.encrypt(b"event")) == b"event" and ours.decrypt(library.encrypt(b"event")) == b"event"
