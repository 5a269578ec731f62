"""The projection runner: catch-up = rebuild, tracking committed with the rows, crash safety with real
processes killed mid-run, read-only SQL surface."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from timeline.app import Timeline
from timeline.projections import graph, runner
from timeline.testing.cohort import iter_cohort

TABLES = list(graph.models())


def _tables(path: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for t in TABLES:
            df = con.sql(f"SELECT * EXCLUDE (payload) FROM {t}" if t == "events" else f"SELECT * FROM {t}").pl()
            out[t] = df.sort(df.columns, nulls_last=True)
        return out
    finally:
        con.close()


def _assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for t in TABLES:
        assert a[t].equals(b[t]), f"table {t} differs"


def _write(path: Path, events) -> None:
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A synthetic cohort in two parts: 60 patients, then 40 more plus later facts."""
    d = tmp_path_factory.mktemp("cohort")
    events = list(iter_cohort(100, seed=7))
    first = [e for e in events if int(e["patient_id"][-6:]) <= 60]
    second = [e for e in events if int(e["patient_id"][-6:]) > 60]
    _write(d / "part1.jsonl", first)
    _write(d / "part2.jsonl", second)
    return d


def _cli(*args: str, store: Path, projections: Path) -> subprocess.Popen:
    env = {**os.environ, "TIMELINE_PROJECTIONS": str(projections)}
    return subprocess.Popen([sys.executable, "-m", "timeline", "--store", str(store), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(*args: str, store: Path, projections: Path) -> str:
    p = _cli(*args, store=store, projections=projections)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return out


@pytest.mark.parametrize("known, patients, from_store", [(1, 50, True), (2, 50, False), (1_000, 100_000, True),
                                                         (2_000, 100_000, True), (2_001, 100_000, False)])
def test_a_catch_up_reads_the_history_of_a_small_share_of_the_patients_from_the_store(known, patients, from_store):
    """The store's stream index is read while the touched patients already known are at most a fiftieth of all
    the patients, whatever the store's size (a bound of 30,000 rows chose the scan at 100,000 patients for 1,000
    touched: 2.07-2.29 s against 1.76-1.79 s from the store)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE patients AS SELECT 'P' || i AS patient_id FROM range(?) t(i)", [patients])
    con.execute("CREATE TEMP TABLE _touched_ids AS SELECT 'P' || i AS patient_id FROM range(?) t(i) "
                "UNION ALL SELECT 'new' || i FROM range(500) t(i)", [known])
    assert runner.Projector._history_from_store(None, con, after=patients * 158) is from_store


@pytest.mark.parametrize("history", ["store", "log"])
def test_catch_up_equals_rebuild(tmp_path, cohort, monkeypatch, history):
    """A catch-up reaches the tables of a rebuild, corrections and retractions included, both ways: the
    touched patients' earlier rows read from the store's stream index and the rules planned with the optimiser's
    filter pushdown only (a small catch-up, after a small store's rebuild planned so too), or their rows scanned
    from the log and the rules optimised (a large one)."""
    small = history == "store"
    monkeypatch.setattr(runner, "STORE_HISTORY_MAX_SHARE", 10**9 if small else -1)
    monkeypatch.setattr(runner, "UNOPTIMISED_MAX_ROWS", 10**9 if small else -1)
    decided = []
    choose = runner.Projector._history_from_store
    monkeypatch.setattr(runner.Projector, "_history_from_store",
                        lambda self, con, after: decided.append(choose(self, con, after)) or decided[-1])
    store, proj, ref = tmp_path / "store", tmp_path / "p.duckdb", tmp_path / "ref.duckdb"
    tl = Timeline.open(store, projections=proj)
    tl.ingest_file(cohort / "part1.jsonl")
    first = tl.project()
    assert first.mode == "rebuild" and first.rows_read > 0
    tl.ingest_file(cohort / "part2.jsonl")
    # a correction and a retraction touching patients of the first part
    pid = "SYN-000003"
    [count] = [f for f in tl.facts(pid) if f.original.type == "blood_count"][:1]
    tl.record({"type": "event_retracted", "patient_id": pid, "occurred_on": "2026-01-05",
               "retracts": count.original.event_id, "reason": "sample mislabelled"})
    second = tl.project()
    assert second.mode == "catch-up" and second.rows_read > 0
    assert tl.project().rows_read == 0  # nothing new: nothing read
    # a later catch-up touching another patient keeps the amended facts of the first in force
    tl.ingest([{"type": "follow_up", "patient_id": "SYN-000090", "occurred_on": "2026-01-06",
                "disease_status": "not_assessed"}])
    third = tl.project()
    assert (third.mode, third.patients) == ("catch-up", 1)
    hidden = tl.sql(f"SELECT count(*) AS n FROM events WHERE event_id = '{count.original.event_id}'")["n"][0]
    assert hidden == 0
    # the reference: a rebuild planned by the whole optimiser on every thread (in the small case the file's first
    # build, a small store's, and its catch-ups were planned with the filter pushdown only, on one thread)
    monkeypatch.setattr(runner, "UNOPTIMISED_MAX_ROWS", -1)
    Timeline(tl.store, ref).project(rebuild=True)
    _assert_same(_tables(proj), _tables(ref))
    assert decided == [history == "store"] * 2  # the two catch-ups that read new rows took that way


def test_a_file_of_another_layout_is_rebuilt_not_caught_up(tmp_path, cohort):
    """The file records its layout with its parameters: a file written by an earlier layout (here: its
    tracking row rewritten to say layout 2) is rebuilt by the next run, which leaves `events` a view."""
    store, proj = tmp_path / "store", tmp_path / "p.duckdb"
    tl = Timeline.open(store, projections=proj)
    tl.ingest_file(cohort / "part1.jsonl")
    tl.project()
    con = duckdb.connect(str(proj))
    params = json.loads(con.execute("SELECT parameters FROM _tracking").fetchone()[0])
    assert params["layout"] == runner.LAYOUT
    params["layout"] = 2
    con.execute("UPDATE _tracking SET parameters = ?", [json.dumps(params, sort_keys=True)])
    con.close()
    tl.ingest_file(cohort / "part2.jsonl")
    assert tl.project().mode == "rebuild"
    con = duckdb.connect(str(proj), read_only=True)
    kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
    con.close()
    assert kinds["events"] == "VIEW" and kinds["log"] == "BASE TABLE"


def _consistent(path: Path) -> None:
    """Whatever the moment of the crash: either no committed run at all, or tables and tracking agree."""
    if not path.exists():
        return
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "_tracking" not in names or not con.execute("SELECT count(*) FROM _tracking").fetchone()[0]:
            return  # the first run never committed: nothing was published
        pos = con.execute("SELECT position FROM _tracking").fetchone()[0]
        assert con.execute("SELECT max(position) FROM log").fetchone()[0] == pos
        assert set(TABLES) <= names
    finally:
        con.close()


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5])
def test_killed_rebuild_or_catch_up_recovers(tmp_path, cohort, delay):
    store, proj, ref = tmp_path / "store", tmp_path / "p.duckdb", tmp_path / "ref.duckdb"
    _run("ingest", str(cohort / "part1.jsonl"), store=store, projections=proj)
    _run("project", store=store, projections=proj)
    _run("ingest", str(cohort / "part2.jsonl"), store=store, projections=proj)
    for args in (["project"], ["project", "--rebuild"]):
        p = _cli(*args, store=store, projections=proj)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        _consistent(proj)
    _run("project", store=store, projections=proj)
    _run("project", "--rebuild", store=store, projections=ref)
    _assert_same(_tables(proj), _tables(ref))


def test_sql_surface_is_read_only(tmp_path, cohort):
    store, proj = tmp_path / "store", tmp_path / "p.duckdb"
    _run("ingest", str(cohort / "part1.jsonl"), store=store, projections=proj)
    _run("project", store=store, projections=proj)
    before = _tables(proj)
    for statement in ("DELETE FROM patients", "DROP TABLE events", "CREATE TABLE x AS SELECT 1",
                      "UPDATE patients SET sex = 'x'", "COPY patients TO '/tmp/leak.csv'",
                      "ATTACH '/tmp/other.duckdb' AS o", "SELECT 1; DELETE FROM patients"):
        p = _cli("sql", statement, store=store, projections=proj)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 1, (statement, out, err)
        assert "read-only" in err, err
    p = _cli("sql", "SELECT * FROM read_csv('/etc/passwd')", store=store, projections=proj)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "disabled" in err
    _assert_same(before, _tables(proj))
    out = _run("sql", "SELECT count(*) AS n FROM patients", "--format", "json", store=store, projections=proj)
    assert json.loads(out) == [{"n": 60}]


def test_sql_as_of_and_known_at(tmp_path, cohort):
    tl = Timeline.open(tmp_path / "store", projections=tmp_path / "p.duckdb")
    tl.ingest_file(cohort / "part1.jsonl")
    lock = max(json.loads(r.state)["recorded_at"] for rows in tl.store.records() for r in rows)  # a data lock
    tl.ingest_file(cohort / "part2.jsonl")
    tl.project()
    now = tl.sql("SELECT count(*) AS n FROM patients")["n"][0]
    then = tl.sql("SELECT count(*) AS n FROM patients", known_at=lock)["n"][0]
    assert (now, then) == (100, 60)
    early = tl.sql("SELECT count(*) AS n FROM patients WHERE hsct_on IS NOT NULL", as_of="2015-01-01")["n"][0]
    assert early < tl.sql("SELECT count(*) AS n FROM patients WHERE hsct_on IS NOT NULL")["n"][0]


def test_parameter_override_changes_rows_and_forces_rebuild(tmp_path, cohort):
    tl = Timeline.open(tmp_path / "store", projections=tmp_path / "p.duckdb")
    tl.ingest_file(cohort / "part1.jsonl")
    tl.project()
    d20 = tl.sql("SELECT median(platelet_day) AS d FROM engraftment")["d"][0]
    report = tl.project(params={"platelet_threshold_e9_per_l": "50"})
    assert report.mode == "rebuild"
    d50 = tl.sql("SELECT median(platelet_day) AS d FROM engraftment", params={"platelet_threshold_e9_per_l": 50})["d"][0]
    assert d50 > d20


def test_warm_replay_of_a_few_patients_equals_a_full_build(tmp_path, cohort):
    """The prepared, optimiser-free replay of a few patients (tables filled as a query reads them) gives the
    rows of an optimised build, and a reused warm connection keeps nothing of the previous replay."""
    from datetime import date

    from timeline.projections import replay as rp

    tl = Timeline.open(tmp_path / "store")
    tl.ingest_file(cohort / "part1.jsonl")
    pool = rp.ReplayPool()

    def tables_of(done: rp.Replayed) -> dict[str, pl.DataFrame]:
        out = {}
        for t in TABLES:
            query = f"SELECT * FROM {t}"
            if done.prepare is not None:
                done.prepare(query)
            df = done.con.sql(query).pl()
            out[t] = df.sort(df.columns, nulls_last=True)
        done.release()
        return out

    for pid, as_of in (("SYN-000003", None), ("SYN-000010", date(2022, 6, 1)), ("SYN-000003", date(2030, 1, 1))):
        warm = tables_of(rp.replay(tl.store, [pid], as_of=as_of, pool=pool))
        full = tables_of(rp.replay(tl.store, [pid], as_of=as_of))
        _assert_same(warm, full)
        assert set(warm["events"]["patient_id"].to_list()) == {pid}
    pool.close()


@pytest.mark.postgres
def test_projections_of_a_postgres_store_equal_those_of_sqlite(tmp_path, pg_url):
    """The loader reads a PostgreSQL store (its own bulk path, and its streams for a catch-up's earlier rows)
    into the same tables as an SQLite one: a build of the first patients, then a catch-up of the rest and
    of a follow-up of the first patient."""
    seed = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
    files = sorted(seed.glob("*.jsonl")) + [seed / "JH-03-labs.csv"]
    built = {}
    for name, location in (("pg", pg_url), ("sqlite", str(tmp_path / "s"))):
        tl = Timeline.open(location, projections=tmp_path / f"{name}.duckdb")
        tl.ingest_file(files[0])
        first = tl.project()
        for f in files[1:]:
            tl.ingest_file(f)
        pid = json.loads(files[0].read_text().splitlines()[0])["patient_id"]  # a patient of the first build
        tl.ingest([{"type": "follow_up", "patient_id": pid, "occurred_on": "2025-08-30",
                    "disease_status": "not_assessed"}])
        second = tl.project()
        assert (first.mode, second.mode) == ("rebuild", "catch-up")
        assert first.rows_read + second.rows_read == 608
        built[name] = _tables(tmp_path / f"{name}.duckdb")
        tl.close()
    for t in TABLES:
        a, b = built["pg"][t], built["sqlite"][t]
        keep = [c for c in a.columns if c != "recorded_at"]
        assert a.select(keep).equals(b.select(keep)), t


def test_a_data_folder_with_spaces_hash_and_accents_projects(tmp_path):
    """The loader opens the SQLite store by URI: characters that mean something in a URI are escaped."""
    tl = Timeline.open(tmp_path / "centre A #2 – été" / "store")
    tl.ingest([{"type": "patient_registered", "patient_id": "P1", "occurred_on": "2020-01-01",
                "birth_date": "2010-01-01", "sex": "female", "note": "élève"}])
    assert tl.project().rows_read == 1
    assert tl.sql("SELECT payload->>'note' AS note FROM events")["note"].to_list() == ["élève"]


def test_a_projections_path_duckdb_cannot_open_is_a_clear_error(tmp_path):
    Timeline.open(tmp_path / "what?").close()  # the store exists; its projection file cannot
    result = subprocess.run([sys.executable, "-m", "timeline", "--store", str(tmp_path / "what?"), "project"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "has a '?' in its path" in result.stderr and "TIMELINE_PROJECTIONS" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_events_stage_split_by_type_gives_the_rows_of_one_stage_table(tmp_path, cohort, monkeypatch):
    """A large rebuild stages `events` as one table per event type holding at least a row group and
    `STAGE_SPLIT_MIN_SHARE` of the events, and one for the rest (`build._stage`); the rules read them through
    their type filters. Forced on a small store (row groups of 100 rows), every table equals the one-piece
    stage's, and only the types holding that share have a table of their own."""
    from timeline.projections import build as building

    monkeypatch.setattr(runner, "UNOPTIMISED_MAX_ROWS", -1)  # planned in full, as a large store is
    tl = Timeline.open(tmp_path / "store", projections=tmp_path / "one.duckdb")
    tl.ingest_file(cohort / "part1.jsonl")
    tl.ingest_file(cohort / "part2.jsonl")
    tl.project(rebuild=True)  # 100 patients: no type fills a row group of 122,880 rows
    with duckdb.connect(str(tmp_path / "one.duckdb"), read_only=True) as con:
        counts = dict(con.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())
    total = sum(counts.values())

    staged: dict[str, set[str]] = {}
    stage = building._stage

    def spy(con, model, relations, params):
        stage(con, model, relations, params)
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary AND "
                                   "starts_with(table_name, '_stage_events_')").fetchall():
            staged[name] = {t for (t,) in con.execute(f"SELECT DISTINCT type FROM temp.main.{name}").fetchall()}

    monkeypatch.setattr(building, "ROW_GROUP_ROWS", 100)
    monkeypatch.setattr(building, "_stage", spy)
    Timeline(tl.store, tmp_path / "split.duckdb").project(rebuild=True)

    own = {t for t, n in counts.items() if n >= max(100, building.STAGE_SPLIT_MIN_SHARE * total)}
    assert own and any(n >= 100 and t not in own for t, n in counts.items()), counts  # both bounds are exercised
    assert sorted(map(frozenset, staged.values()), key=sorted) == sorted(
        [frozenset({t}) for t in own] + [frozenset(set(counts) - own)], key=sorted)
    _assert_same(_tables(tmp_path / "one.duckdb"), _tables(tmp_path / "split.duckdb"))
