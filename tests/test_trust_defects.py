"""The defects of the adversarial run (issue 11), each reproduced as it was found, then held fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timeline.app import Timeline
from timeline.events import EVENT_ADAPTER, canonical_json
from timeline.events.catalogue import content_id_bytes
from timeline.events.problems import RejectedError

COUNT = {"type": "blood_count", "patient_id": "JH-01", "occurred_on": "2024-01-05", "anc_e9_per_l": 0.4,
         "note": "JH-01 private note"}
FOLLOW_UP = {"type": "follow_up", "patient_id": "ADV-1", "occurred_on": "2024-01-10",
             "disease_status": "remission"}


def derived_id(event: dict) -> str:
    return str(uuid.UUID(bytes=content_id_bytes(canonical_json(EVENT_ADAPTER.validate_python(event)))))


def run(store: Path | str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


# -- 1. an event id is unique across the store, whoever chose it ----------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def durable_store(request, tmp_path) -> str:
    return str(tmp_path / "data") if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_an_explicit_id_equal_to_another_patients_derived_id_is_refused(durable_store):
    with Timeline.open(durable_store) as tl:
        assert tl.record(COUNT).new == 1
        with pytest.raises(RejectedError) as e:
            tl.record({**FOLLOW_UP, "event_id": derived_id(COUNT)})
        msg = str(e.value)
        assert "another patient's event" in msg and derived_id(COUNT) in msg
        assert "JH-01" not in msg and "private" not in msg and "0.4" not in msg
        assert tl.patients() == ["JH-01"]


def test_a_derived_id_equal_to_another_patients_explicit_id_is_refused(durable_store):
    with Timeline.open(durable_store) as tl:  # the id of JH-01's count, taken first by ADV-1
        assert tl.record({**FOLLOW_UP, "event_id": derived_id(COUNT)}).new == 1
        with pytest.raises(RejectedError, match="another patient's event"):
            tl.record(COUNT)
        fresh = str(uuid.uuid4())
        with pytest.raises(RejectedError, match="another patient's event in this input"):
            tl.ingest([{**FOLLOW_UP, "patient_id": "ADV-2", "event_id": fresh},
                       {**FOLLOW_UP, "patient_id": "ADV-3", "event_id": fresh}])


def test_an_id_index_written_while_a_large_file_is_appended_still_finds_every_id(durable_store, monkeypatch):
    """The index keys of a long append are written as it goes (bounded memory), not at its end: an explicit
    id equal to a derived id of the same input is refused whether that id's key is already written or pending."""
    import timeline.store.eventstore as eventstore
    import timeline.store.recorders as recorders

    monkeypatch.setattr(recorders, "PREFIX_CHUNK", 3)
    monkeypatch.setattr(eventstore, "BATCH", 2)
    counts = [{**COUNT, "patient_id": f"JH-{i:02d}", "anc_e9_per_l": 0.1 * i} for i in range(1, 9)]
    with Timeline.open(durable_store) as tl:
        for taken in (counts[0], counts[-1]):  # written by a flush before the thief's batch / still pending
            thief = {**FOLLOW_UP, "event_id": derived_id(taken)}
            with pytest.raises(RejectedError, match="another patient's event"):
                tl.ingest([*counts, thief])
        assert tl.patients() == []
        assert tl.ingest(counts).new == 8
        with pytest.raises(RejectedError, match="another patient's event"):
            tl.record({**FOLLOW_UP, "event_id": derived_id(counts[4])})


def test_the_id_index_is_made_with_the_first_explicit_id(tmp_path):
    """Derived ids need no index (a bulk load writes none); the first explicit id indexes the whole log, and
    from then on every append keeps it (`timeline verify` checks it)."""
    import sqlite3

    from timeline.verify import store_findings

    def keys() -> int:
        db = sqlite3.connect(tmp_path / "data" / "events.sqlite")
        try:
            return db.execute("SELECT count(*) FROM timeline_event_ids").fetchone()[0]
        finally:
            db.close()

    counts = [{**COUNT, "patient_id": f"JH-{i:02d}"} for i in range(1, 6)]
    with Timeline.open(tmp_path / "data") as tl:
        assert tl.ingest(counts).new == 5 and keys() == 0
        assert "not kept yet" in next(str(f) for f in store_findings(tl) if f.check == "id index")
        assert tl.record({**FOLLOW_UP, "event_id": str(uuid.uuid4())}).new == 1 and keys() == 6
        assert tl.record({**FOLLOW_UP, "occurred_on": "2024-01-11"}).new == 1 and keys() == 7
        index = next(f for f in store_findings(tl) if f.check == "id index")
        assert index.ok and "0 event id(s) not indexed" in index.detail
        with pytest.raises(RejectedError, match="another patient's event"):
            tl.record({**FOLLOW_UP, "patient_id": "ADV-2", "event_id": derived_id(counts[2])})


def test_a_retraction_never_hides_another_patients_event_with_the_same_id(tmp_path):
    """A store written before ids were unique may hold one id twice: the projections join amendments on
    patient and id, so JH-01's retraction leaves ADV-1's follow-up visible."""
    import duckdb

    from timeline.projections.loader import create_log, insert_log, load_visible, raw_table
    from timeline.store.recorders import StoredRow

    eid = derived_id(COUNT)
    states = [
        {**COUNT, "event_id": eid, "recorded_at": "2024-02-01T00:00:00.000001Z"},
        {**FOLLOW_UP, "event_id": eid, "recorded_at": "2024-02-01T00:00:00.000002Z"},
        {"type": "event_retracted", "patient_id": "JH-01", "occurred_on": "2024-02-02", "retracts": eid,
         "reason": "wrong patient", "event_id": str(uuid.uuid4()), "recorded_at": "2024-02-02T00:00:00Z"},
    ]
    rows = [StoredRow(i + 1, s["patient_id"], 1, s["type"], json.dumps(s).encode()) for i, s in enumerate(states)]
    con = duckdb.connect()
    create_log(con)
    insert_log(con, raw_table(rows))
    load_visible(con)
    assert con.execute("SELECT patient_id, type FROM visible_events").fetchall() == [("ADV-1", "follow_up")]


def test_an_old_store_is_indexed_when_opened(tmp_path):
    """Stores written before every id was indexed: their ids are indexed once, on first open."""
    import sqlite3

    with Timeline.open(tmp_path / "data") as tl:
        tl.record(COUNT)
    db = sqlite3.connect(tmp_path / "data" / "events.sqlite")
    db.execute("DROP TABLE timeline_event_ids")
    db.commit()
    db.close()
    with Timeline.open(tmp_path / "data") as tl:
        with pytest.raises(RejectedError, match="another patient's event"):
            tl.record({**FOLLOW_UP, "event_id": derived_id(COUNT)})
        assert tl.record(COUNT).present == 1


# -- 2. deeply nested JSON: a clear problem of its line, the file's other problems still reported ------------
def _line(**extra) -> str:
    return json.dumps({**FOLLOW_UP, **extra})


@pytest.mark.parametrize("depth", [300, 1000])
def test_deeply_nested_json_is_a_problem_of_its_line(tmp_path, depth):
    deep = _line()[:-1] + ', "note": ' + "[" * depth + "]" * depth + "}"
    f = tmp_path / "deep.jsonl"
    f.write_text("\n".join([_line(), deep, _line(occurred_on="2024-13-10")]) + "\n")
    with Timeline.open("memory") as tl, pytest.raises(RejectedError) as e:
        tl.ingest_file(f)
    [nested, date] = e.value.problems
    assert (nested.line, nested.field) == (2, "(line)")
    assert f"{depth + 1:,} levels deep; an event nests at most 8" in nested.rule
    assert (date.line, date.field) == (3, "occurred_on")


def test_a_deep_line_in_a_large_file_parsed_by_workers_is_reported_not_raised(tmp_path):
    from datetime import date

    from timeline.ingest import read_json_blocks

    f = tmp_path / "big.jsonl"
    f.write_text(_line()[:-1] + ', "note": ' + "[" * 5000 + "]" * 5000 + "}\n" + (_line() + "\n") * 20_000)
    problems = [x for block in read_json_blocks(f, date(2030, 1, 1), parallel=True) for x in block
                if not isinstance(x, tuple)]
    assert [(p.line, p.field) for p in problems] == [(1, "(line)")]


def test_a_deep_json_array_file_and_a_deep_csv_replacement_are_problems(tmp_path):
    arr = tmp_path / "arr.json"
    arr.write_text("[" + _line()[:-1] + ', "note": ' + "[" * 2000 + "]" * 2000 + "}]")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("type,patient_id,occurred_on,corrects,replacement\n"
                        f"event_corrected,P1,2024-01-01,{uuid.uuid4()},\"{'[' * 3000}\"\n")
    with Timeline.open("memory") as tl:
        for f, field in ((arr, "(file)"), (csv_file, "replacement")):
            with pytest.raises(RejectedError) as e:
                tl.ingest_file(f)
            assert [p.field for p in e.value.problems] == [field] and "levels deep" in str(e.value)


# -- 5. duplicate keys and columns are errors naming the key ---------------------------------------------------
def test_a_key_given_twice_is_refused_naming_it(tmp_path):
    f = tmp_path / "dup.jsonl"
    f.write_text(_line()[:-1] + ', "patient_id": "ADV-DUP"}\n' + _line()[:-1] + ', "note" : "x", "note":"y"}\n'
                 + _line(note='quoted "key": inside a note') + "\n")
    with Timeline.open("memory") as tl:
        with pytest.raises(RejectedError) as e:
            tl.ingest_file(f)
        assert [(p.line, p.field) for p in e.value.problems] == [(1, "patient_id"), (2, "note")]
        assert "is given twice" in str(e.value)
        f.write_text(_line(note='quoted "key": inside a note') + "\n")
        assert tl.ingest_file(f).new == 1  # a `":` inside a text is no repeated key


@settings(max_examples=150, deadline=None)
@given(note=st.text(alphabet=st.sampled_from(['a', ':', '"', ' ', '\\', 'é']), max_size=12),
       twice=st.sampled_from([None, "patient_id", "occurred_on", "note", "disease_status"]),
       space=st.sampled_from(["", " ", "\t"]))
def test_a_repeated_key_is_found_whatever_the_colons_in_the_values(note, twice, space):
    """The count of colons that spares the usual line a second parse never hides a key given twice: colons
    and quotes inside a value, and white space before a key's colon, in any mix (an oracle: json.loads)."""
    from datetime import date

    from timeline.ingest import prepare_json_lines

    base = {**FOLLOW_UP, "note": "n" + note}
    text = "{" + ",".join(f"{json.dumps(k)}{space}:{json.dumps(v)}" for k, v in base.items())
    if twice is not None:
        text += f",{json.dumps(twice)}{space}:{json.dumps(base[twice])}"
    found = prepare_json_lines([(1, (text + "}").encode())], date(2030, 1, 1))
    repeated = [p.field for p in found if getattr(p, "rule", "").startswith("is given twice")]
    assert repeated == ([twice] if twice is not None else [])
    if twice is None:
        assert len(found) == 1 and not hasattr(found[0], "rule")  # stored as it is


def test_a_repeated_key_in_a_derived_or_nested_event_is_refused():
    gvhd = ('{"type":"gvhd_diagnosed","patient_id":"P1","occurred_on":"2024-01-01","kind":"acute",'
            '"skin_stage":2,"skin_stage":3}')
    corr = ('{"type":"event_corrected","patient_id":"P1","occurred_on":"2024-01-01","corrects":"%s",'
            '"replacement":{"type":"follow_up","occurred_on":"2024-01-01","disease_status":"remission",'
            '"disease_status":"relapse"}}' % uuid.uuid4())
    from datetime import date

    from timeline.ingest import prepare_json_lines

    found = prepare_json_lines([(1, gvhd.encode()), (2, corr.encode())], date(2030, 1, 1))
    assert [(p.line, p.field) for p in found] == [(1, "skin_stage"), (2, "disease_status")]


def test_a_csv_column_given_twice_is_refused_naming_it(tmp_path):
    f = tmp_path / "dup.csv"
    f.write_text("type,patient_id,occurred_on,disease_status,disease_status\nfollow_up,P1,2024-01-10,remission,"
                 "relapse\n")
    with Timeline.open("memory") as tl, pytest.raises(RejectedError) as e:
        tl.ingest_file(f)
    assert str(e.value.problems[0]) == "line 1: disease_status: is a column twice in the header; give each field once"


# -- 10. messages: invalid UTF-8 named as such, with a line; a folder or a FIFO named as what it is ------------
def test_invalid_utf8_is_named_with_its_line_in_json_and_csv(tmp_path):
    j = tmp_path / "u.jsonl"
    j.write_bytes(_line().encode() + b"\n" + _line()[:-1].encode() + b', "note": "\xff\xfe"}\n')
    c = tmp_path / "u.csv"
    c.write_bytes(b"type,patient_id,occurred_on,disease_status,note\nfollow_up,P1,2024-01-10,remission,ok\n"
                  b"follow_up,P1,2024-01-11,remission,\xff\n")
    with Timeline.open("memory") as tl:
        for f, line, field in ((j, 2, "(line)"), (c, 3, "note")):  # the CSV's line 1 is its header
            with pytest.raises(RejectedError) as e:
                tl.ingest_file(f)
            [p] = e.value.problems
            assert (p.line, p.field) == (line, field) and "is not valid UTF-8" in p.rule


def test_a_folder_and_a_fifo_are_named_as_what_they_are(tmp_path):
    import os

    (tmp_path / "folder.jsonl").mkdir()
    os.mkfifo(tmp_path / "pipe.jsonl")
    r = run(tmp_path / "data", "ingest", "folder.jsonl", "pipe.jsonl", "missing.jsonl", cwd=tmp_path)
    assert r.returncode == 1
    assert "folder.jsonl: is a folder" in r.stderr
    assert "pipe.jsonl: is a FIFO (named pipe), not a regular file" in r.stderr
    assert "missing.jsonl: no such file" in r.stderr


# -- 6. every number has bounds the projections can hold ---------------------------------------------------------
def _numbers(node, path=""):
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            yield path, node
        for k, v in node.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, f"{path}[{i}]")


def test_every_number_of_the_format_is_bounded_within_what_the_projections_hold():
    from timeline.events import json_schema

    found = list(_numbers(json_schema()))
    assert len(found) > 20
    for path, node in found:
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        assert low is not None and high is not None, path
        if node["type"] == "integer":  # INTEGER columns (32 bits)
            assert -(2**31) < low <= high < 2**31, path


def test_a_huge_cycle_is_refused_not_projected_as_null():
    with Timeline.open("memory") as tl, pytest.raises(RejectedError) as e:
        tl.record({"type": "blinatumomab_started", "patient_id": "ADV-3", "occurred_on": "2024-01-10",
                   "cycle": 10**30, "dose_ug_per_m2_day": 15})
    assert str(e.value.problems[0]).startswith("line 1: cycle = 1000000000000000000000000000000: must be ≤")


# -- 8. control characters never reach the terminal; formulas never reach spreadsheets ----------------------------
HOSTILE = "\x1b[2J\x1b]0;pwned\x07 note"
FORMULA = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("hostile") / "data"
    with Timeline.open(store) as tl:
        tl.ingest([{**FOLLOW_UP, "note": HOSTILE}, {**FOLLOW_UP, "occurred_on": "2024-01-11", "note": FORMULA},
                   {**FOLLOW_UP, "occurred_on": "2024-01-12", "note": "@SUM(1+1)"}])
        tl.project()
    return store


def _notes(store: Path, *args: str) -> subprocess.CompletedProcess:
    return run(store, "sql", "SELECT payload->>'note' AS note FROM events ORDER BY occurred_on", *args)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_control_characters_are_escaped_in_every_output_format(hostile_store, fmt):
    out = _notes(hostile_store, "--format", fmt).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert ("\\u001b[2J" if fmt == "json" else "\\x1b[2J") in out


def test_formula_cells_are_neutralised_in_csv_and_xlsx_unless_raw(hostile_store, tmp_path):
    import zipfile

    csv_out = _notes(hostile_store, "--format", "csv").stdout.splitlines()
    assert csv_out[2:] == ["'" + FORMULA, "'@SUM(1+1)"]
    raw = _notes(hostile_store, "--format", "csv", "--raw").stdout
    assert HOSTILE in raw and f"\n{FORMULA}\n" in raw
    r = run(hostile_store, "check", "--format", "xlsx", "--out", str(tmp_path / "q.xlsx"))
    assert r.returncode in (0, 1), r.stderr
    from timeline.output import cells
    import polars as pl

    safe = cells(pl.DataFrame({"note": [FORMULA, "-1", "+x", "plain", "\tx", None]}))["note"].to_list()
    assert safe == ["'" + FORMULA, "'-1", "'+x", "plain", "'\tx", None]
    assert zipfile.is_zipfile(tmp_path / "q.xlsx")


def test_messages_escape_control_characters(hostile_store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**FOLLOW_UP, "disease_status": "\x1b]0;pwned\x07"}) + "\n")
    r = run(hostile_store, "ingest", str(bad))
    assert r.returncode == 1 and "\x1b" not in r.stderr and "\\u001b]0;pwned\\u0007" in r.stderr
    r = run(hostile_store, "sql", "SELECT 1 WHERE '\x1b[2J'")
    assert r.returncode == 1 and "\x1b" not in r.stderr and "\\x1b[2J" in r.stderr


# -- 3. the projection file knows which store and which history it was built from --------------------------------
SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def _seed(store: Path, *names: str) -> None:
    from timeline.demo import seed_files

    with Timeline.open(store) as tl:
        for path in seed_files(SEED):
            if not names or path.name in names:
                tl.ingest_file(path)


def test_projections_rebuild_when_the_store_goes_back_to_an_older_backup(tmp_path):
    import shutil

    store = tmp_path / "data"
    _seed(store, "JH-01.jsonl")
    shutil.copy(store / "events.sqlite", tmp_path / "backup.sqlite")  # 164 events
    with Timeline.open(store) as tl:
        tl.record(FOLLOW_UP)
        tl.project()
        assert tl.sql("SELECT count(*) AS n FROM events")["n"][0] == 165
    shutil.copy(tmp_path / "backup.sqlite", store / "events.sqlite")  # the store goes back
    with Timeline.open(store) as tl:
        tl.record({**FOLLOW_UP, "patient_id": "ADV-9"})  # position 165 again, another event
        with pytest.raises(LookupError, match="no longer holds the history"):
            tl.sql("SELECT 1")
        report = tl.project()
        assert report.mode == "rebuild" and "no longer holds the history" in report.note
        assert tl.sql("SELECT patient_id FROM events WHERE patient_id LIKE 'ADV%'")["patient_id"].to_list() == ["ADV-9"]


def test_projections_of_another_store_are_rebuilt_not_caught_up(tmp_path, monkeypatch):
    shared = tmp_path / "shared.duckdb"
    monkeypatch.setenv("TIMELINE_PROJECTIONS", str(shared))
    for name, patient in (("a", "ADV-1"), ("b", "ADV-2")):
        with Timeline.open(tmp_path / name) as tl:
            tl.record({**FOLLOW_UP, "patient_id": patient})
            report = tl.project()
            assert report.mode == "rebuild"
            assert tl.sql("SELECT patient_id FROM events")["patient_id"].to_list() == [patient]
    assert "another event store" in report.note


# -- 7. a corrupt projection file is replaced by --rebuild, the broken one kept aside ----------------------------
def test_rebuild_replaces_an_unreadable_projection_file_keeping_it_aside(tmp_path):
    store = tmp_path / "data"
    with Timeline.open(store) as tl:
        tl.record(FOLLOW_UP)
        tl.project()
    (store / "projections.duckdb").write_bytes(b"not a database" * 100)
    r = run(store, "sql", "SELECT 1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "cannot be read as a projection file" in r.stderr and "timeline project --rebuild" in r.stderr
    assert run(store, "project").returncode == 1
    r = run(store, "project", "--rebuild")
    assert r.returncode == 0, r.stderr
    [aside] = store.glob("projections.duckdb.broken-*")
    assert f"kept as {aside}" in r.stderr and aside.read_bytes().startswith(b"not a database")
    assert run(store, "sql", "SELECT count(*) FROM events", "--format", "csv").stdout.splitlines()[1] == "1"


# -- 4. storage faults: one line naming the file or server and what to do; damaged stores refused for writing ------
def _damage(db: Path) -> None:
    """Scribble over the cell pointers of one leaf page of the events table, in the middle of the file (found
    through SQLite's dbstat table, whatever the page size)."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        size = con.execute("PRAGMA page_size").fetchone()[0]
        leaves = [p for (p,) in con.execute("SELECT pageno FROM dbstat WHERE name = 'stored_events' AND pagetype = 'leaf' "
                                            "ORDER BY pageno")]
    finally:
        con.close()
    with open(db, "r+b") as f:
        f.seek(size * (leaves[len(leaves) // 2] - 1) + 8)  # past the leaf's 8-byte header
        f.write(bytes(range(256)) * 8)


@pytest.fixture
def seeded(tmp_path) -> Path:
    store = tmp_path / "data"
    _seed(store, "JH-01.jsonl", "JH-02.jsonl")
    return store


def test_a_store_with_damaged_pages_is_refused_for_writing_and_verify_says_what(seeded, tmp_path):
    import sqlite3

    _damage(seeded / "events.sqlite")
    f = tmp_path / "new.jsonl"
    f.write_text(_line() + "\n")
    r = run(seeded, "ingest", str(f))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"the event store {seeded.resolve() / 'events.sqlite'} is damaged (" in r.stderr
    assert "nothing was stored; restore it from a backup" in r.stderr
    assert sqlite3.connect(seeded / "events.sqlite").execute(
        "SELECT count(*) FROM stored_events WHERE originator_id = 'ADV-1'").fetchone() == (0,)
    r = run(seeded, "verify")
    assert r.returncode == 1 and "FAIL store file: SQLite integrity_check:" in r.stdout


def test_the_check_before_writing_does_not_read_a_large_store_whole(seeded, monkeypatch):
    """Found by the 1,000,000-patient run (issue 15): `PRAGMA quick_check` before each ingest read every page of a
    4.9 GB store (100,000 patients), minutes from disk, before a single event was added. A store file larger than
    QUICK_CHECK_MAX_BYTES is not read whole before a write (SQLite refuses a write meeting a damaged page, and
    `timeline verify` checks everything); a smaller one still is."""
    from timeline.store import recorders

    checks: list[str] = []
    monkeypatch.setattr(recorders.SQLiteTimelineRecorder, "integrity_check",
                        lambda self, pragma="integrity_check", most=20: checks.append(pragma))
    with Timeline.open(seeded) as tl:
        assert tl.ingest([FOLLOW_UP]).new == 1
    assert checks == ["quick_check"]  # a small store: checked whole
    monkeypatch.setattr(recorders, "QUICK_CHECK_MAX_BYTES", 4096)  # the same file, counted as large
    with Timeline.open(seeded) as tl:
        assert tl.ingest([{**FOLLOW_UP, "occurred_on": "2024-01-11"}]).new == 1
        assert len(tl.store.recorder.read_stream("ADV-1")) == 2
    assert checks == ["quick_check"]  # not read whole again


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.sqlite").write_bytes(b"this is not a database" * 500)
    for args in (("history", "JH-01"), ("ingest", str(tmp_path / "x.jsonl"))):
        (tmp_path / "x.jsonl").write_text(_line() + "\n")
        r = run(tmp_path / "data", *args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "is damaged (file is not a database): this command changed nothing; restore the store" in r.stderr


def test_verify_passes_on_a_sound_store_and_finds_a_changed_projection_table(seeded):
    import duckdb

    assert run(seeded, "project").returncode == 0
    r = run(seeded, "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   projection tables: every table equals a fresh build from the store" in r.stdout
    con = duckdb.connect(str(seeded / "projections.duckdb"))
    con.execute("UPDATE engraftment SET neutrophil_day = neutrophil_day + 1")
    con.close()
    r = run(seeded, "verify")
    assert r.returncode == 1 and "FAIL projection tables: differ from a fresh build: engraftment (" in r.stdout


def test_verify_reads_a_data_folder_whose_path_has_a_quote(tmp_path):
    store = tmp_path / "o'brien data"
    _seed(store, "JH-01.jsonl")
    assert run(store, "project").returncode == 0
    r = run(store, "verify")
    assert r.returncode == 0 and "ok   projection tables" in r.stdout, r.stdout + r.stderr


def test_an_unreachable_postgresql_is_one_line():
    r = run("postgresql://nobody@127.0.0.1:1/none", "history", "P1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:1, database 'none'" in r.stderr


# -- 9. messages never show another patient's content ---------------------------------------------------------------
def test_no_message_shows_another_patients_content():
    secret = {**COUNT, "note": "JH-01 secret"}
    eid = derived_id(secret)
    with Timeline.open("memory") as tl:
        tl.record(secret)
        attempts = [
            ([{**FOLLOW_UP, "event_id": eid}], 1),  # an id of JH-01's event
            ([{**secret, "event_id": (fresh := str(uuid.uuid4()))}, {**FOLLOW_UP, "event_id": fresh}], 2),  # one input
            ([{"type": "event_retracted", "patient_id": "ADV-1", "occurred_on": "2024-02-01", "retracts": eid,
               "reason": "x"}], 1),  # an amendment of JH-01's event
        ]
        for rows, adv_line in attempts:
            with pytest.raises(RejectedError) as e:
                tl.ingest(rows)
            [about_adv] = [str(p) for p in e.value.problems if p.line == adv_line]
            assert "another patient" in about_adv
            assert not any(word in about_adv for word in ("JH-01", "secret", "0.4", "anc_e9_per_l", "blood_count"))


# -- limits (Deliver 4 and 5): the SQL surface and the size of the input -------------------------------------------
@pytest.mark.parametrize("query", [
    "SELECT * FROM duckdb_settings()", "SELECT current_setting('memory_limit')",
    "WITH a AS (SELECT * FROM pragma_database_list) SELECT * FROM a", "select/**/* from DUCKDB_DATABASES()",
    "SELECT * FROM duckdb_databases", "EXPLAIN SELECT * FROM duckdb_extensions()", "SELECT getenv('HOME')",
    'SELECT * FROM "duckdb_temporary_files"()'])
def test_functions_revealing_settings_or_paths_are_refused(hostile_store, query):
    r = run(hostile_store, "sql", query)
    assert r.returncode == 1 and "is refused: it reveals the engine's settings or files" in r.stderr, r.stderr


def test_a_query_is_stopped_at_its_time_and_memory_limits(hostile_store):
    r = run(hostile_store, "sql", "SELECT count(*) FROM range(100000000000) a, range(10) b", "--timeout", "0.5")
    assert r.returncode == 1 and "ran for more than 0.5 s and was stopped" in r.stderr, r.stderr
    r = run(hostile_store, "sql", "SELECT list(range) FROM range(300000000)", "--memory-limit", "40MB")
    assert r.returncode == 1 and "needed more memory than its limit" in r.stderr, r.stderr
    assert run(hostile_store, "sql", "EXPLAIN SELECT count(*) FROM events").returncode == 0


def test_input_size_limits_are_refused_naming_the_limit(tmp_path):
    from timeline.events.envelope import LINE_MAX_BYTES, LIST_MAX_ITEMS, TEXT_MAX_CHARS

    f = tmp_path / "big.jsonl"
    f.write_text("\n".join([
        _line(note="x" * LINE_MAX_BYTES),
        json.dumps({"type": "chemotherapy_started", "patient_id": "P1", "occurred_on": "2024-01-01",
                    "regimen": "r" * (TEXT_MAX_CHARS + 1), "intent": "induction"}),
        json.dumps({"type": "diagnosis", "patient_id": "P1", "occurred_on": "2024-01-01", "disease": "b_all",
                    "genetics": ["g"] * (LIST_MAX_ITEMS + 1)}),
    ]) + "\n")
    with Timeline.open("memory") as tl, pytest.raises(RejectedError) as e:
        tl.ingest_file(f)
    text = [str(p) for p in e.value.problems]
    assert "at most 65,536 bytes" in text[0] and text[0].startswith("line 1: (line)")
    assert text[1].startswith("line 2: regimen") and "must be at most 500 characters" in text[1]
    assert text[2].startswith("line 3: genetics") and "must hold at most 50 items" in text[2]
    csv_file = tmp_path / "big.csv"
    csv_file.write_text("type,patient_id,occurred_on,disease_status,note\nfollow_up,P1,2024-01-01,remission,"
                        + "y" * (LINE_MAX_BYTES + 10) + "\n")
    with Timeline.open("memory") as tl, pytest.raises(RejectedError, match="at most 65,536 bytes"):
        tl.ingest_file(csv_file)


def test_the_limits_page_states_the_limits_of_the_code():
    from timeline.cli.analysis import SQL_TIMEOUT_SECONDS
    from timeline.events.envelope import LINE_MAX_BYTES, LIST_MAX_ITEMS, NOTE_MAX_CHARS, TEXT_MAX_CHARS
    from timeline.events.rawjson import MAX_NESTING

    page = (SEED.parent.parent / "docs" / "limits.md").read_text()
    for value in (f"{LINE_MAX_BYTES:,} bytes", f"{TEXT_MAX_CHARS} characters", f"{NOTE_MAX_CHARS:,} characters",
                  f"{LIST_MAX_ITEMS} items", f"{MAX_NESTING} levels", f"{SQL_TIMEOUT_SECONDS:g} s"):
        assert value in page, value


# -- Deliver 7: PostgreSQL stores keep their projections where the working directory does not matter --------------
def test_postgresql_projections_live_in_the_users_data_directory_not_the_working_directory(pg_url, tmp_path,
                                                                                            monkeypatch):
    from timeline.projections.runner import projections_path

    with Timeline.open(pg_url) as tl:
        tl.record(FOLLOW_UP)
        monkeypatch.delenv("TIMELINE_PROJECTIONS_DIR")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        default = projections_path(tl.store)
        assert default.parent == tmp_path / "xdg" / "timeline" and default.name.startswith("projections-")
        monkeypatch.setenv("TIMELINE_PROJECTIONS_DIR", str(tmp_path / "named"))
        assert projections_path(tl.store).parent == tmp_path / "named"
    env = {**__import__("os").environ, "TIMELINE_PROJECTIONS_DIR": str(tmp_path / "named")}
    for cwd in (tmp_path, tmp_path / "xdg"):
        cwd.mkdir(exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "timeline", "--store", pg_url, "project"], capture_output=True,
                           text=True, timeout=300, cwd=cwd, env=env)
        assert r.returncode == 0 and str(tmp_path / "named") in r.stdout, r.stderr
    assert not (tmp_path / "timeline-data").exists()
    assert "catch-up: 0 stored events read" in r.stdout  # the second run, elsewhere, found the same file


def test_a_large_file_is_parsed_only_a_few_blocks_ahead_of_the_writer(tmp_path, monkeypatch):
    """Found by the 1,000,000-patient run (issue 15): the parse workers were fed every block of the file at once
    (`Pool.imap` reads its input eagerly), so a writer slower than the parse held the whole file's prepared
    events: 3.1 GB resident for 15.8M events. Now at most `PARSE_AHEAD_BLOCKS` blocks wait for the writer."""
    import threading
    import time
    from datetime import date

    from timeline import ingest

    monkeypatch.setattr(ingest, "CHUNK_BYTES", 2048)  # ~20 lines a block: the file below is ~100 blocks
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({**FOLLOW_UP, "patient_id": f"P{i:05d}"}) + "\n" for i in range(2000)))
    read = []
    blocks = ingest._blocks
    monkeypatch.setattr(ingest, "_blocks", lambda p: (read.append(1) or b for b in blocks(p)))
    it = ingest.read_json_blocks(path, date(2030, 1, 1), parallel=True)
    first = next(it)
    time.sleep(1.0)  # a slow writer: the workers would have parsed the whole file by now
    assert len(read) <= 1 + ingest.PARSE_AHEAD_BLOCKS + 1, f"{len(read)} blocks read for 1 written"
    rest = [row for block in it for row in block]
    ids = [row[0] for row in first + rest]
    assert ids == [f"P{i:05d}" for i in range(2000)] and len(read) > 50  # every line, in order, all the same
    stopped = ingest.read_json_blocks(path, date(2030, 1, 1), parallel=True)
    next(stopped)
    closing = threading.Thread(target=stopped.close)  # a writer that stops early (an error): the pool closes
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive(), "the parse pool hung when its reader stopped early"
