"""`timeline sql --as-of` with a `patient_id` filter replays those patients instead of recomputing the cohort
(issue 15), and answers exactly what the cohort path answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from timeline.queries.patient_filter import patients_of


@pytest.mark.parametrize("query, expected", [
    ("select * from endpoints where patient_id = 'S1'", ("S1",)),
    ("SELECT count(*) FROM endpoints e WHERE e.patient_id = 'S1' AND endpoint = 'os'", ("S1",)),
    ("select * from patients where 'S2' = patient_id order by 1 limit 3", ("S2",)),
    ("select * from events where patient_id in ('S2', 'S1', 'S2') and type = 'death'", ("S1", "S2")),
    ("select *, count(*) over () from mrd_tests where day > 0 and (patient_id = 'S3')", ("S3",)),
])
def test_a_query_restricted_to_patients_names_them(query, expected):
    assert patients_of(query) == expected


@pytest.mark.parametrize("query", [
    "select * from endpoints",
    "select * from endpoints where patient_id = 'S1' or endpoint = 'os'",  # OR: other patients' rows too
    "select * from endpoints where patient_id <> 'S1'",
    "select * from endpoints where patient_id like 'S1%'",
    "select (select count(*) from patients), * from endpoints where patient_id = 'S1'",  # a subquery
    "select * from endpoints where patient_id = 'S1' and day > (select avg(day) from endpoints)",
    "select * from endpoints e join patients p using (patient_id) where e.patient_id = 'S1'",  # a join
    "with x as (select * from endpoints) select * from x where patient_id = 'S1'",  # a CTE
    "select * from endpoints where other.patient_id = 'S1'",  # another relation's column
    "select * from endpoints where patient_id = 1",
    "select * from endpoints where patient_id = 'S1'; select * from patients",
    "this is not sql",
])
def test_a_query_that_may_see_any_patient_is_not_restricted(query):
    assert patients_of(query) is None


# -- end to end ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from timeline.testing.cohort import write_cohort_jsonl

    folder = tmp_path_factory.mktemp("pf")
    events = folder / "cohort.jsonl"
    write_cohort_jsonl(events, 40, seed=7)
    s = folder / "store"
    assert run("ingest", str(events), store=s).returncode == 0
    assert run("project", store=s).returncode == 0
    return s


def run(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


def midway(tl) -> str:
    """A date halfway through the cohort's events: some patients' courses are then partly known."""
    with tl.as_of() as view:
        first, last = view.sql("select min(occurred_on), max(occurred_on) from events").row(0)
    return (first + (last - first) / 2).isoformat()


def rows(r: subprocess.CompletedProcess) -> list[dict]:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_replay_answers_as_the_cohort_does(store):
    """Every table, for some patients, at two dates: the replay (the path the CLI takes) equals the cohort."""
    from timeline.app import Timeline
    from timeline.projections import graph

    with Timeline.open(store, create=False) as tl:
        chosen = tl.patients()[::13]
        ids = ", ".join(repr(p) for p in chosen)
        for as_of in (midway(tl), "2030-01-01"):
            with tl.as_of(as_of, patients=chosen) as replayed, tl.as_of(as_of) as cohort:
                for table in graph.models():
                    query = f"select * from {table} where patient_id in ({ids}) order by all"
                    assert replayed.sql(query).equals(cohort.sql(query)), (table, as_of)
        with tl.as_of("2030-01-01", patients=chosen) as replayed:
            assert replayed.sql(f"select * from endpoints where patient_id in ({ids})").height > 0


def test_the_command_answers_as_the_cohort_does(store):
    from timeline.app import Timeline

    with Timeline.open(store, create=False) as tl, tl.as_of() as view:
        as_of = midway(tl)
        patient = view.sql(f"select min(patient_id) from disease_status where from_on < '{as_of}'").item()
    query = f"select * from disease_status where patient_id = '{patient}' order by all"
    replayed = rows(run("sql", query, "--as-of", as_of, "--format", "json", store=store))
    cohort = rows(run("sql", query, "--as-of", as_of, "--fresh", "--format", "json", store=store))
    assert replayed == cohort and replayed


def test_one_patient_as_of_never_recomputes_the_cohort(store, monkeypatch, capsys):
    """The projection file is not opened and the store not read whole: only the patient's stream."""
    import timeline.queries.views as views
    from timeline.app import Timeline
    from timeline.cli import main
    from timeline.store.recorders import TimelineRecorderMixin

    with Timeline.open(store, create=False) as tl:
        patient = tl.patients()[5]

    def refuse(*args, **kwargs):
        raise AssertionError("the cohort path was taken")

    monkeypatch.setattr(views, "open_file", refuse)
    monkeypatch.setattr(TimelineRecorderMixin, "read_arrow", refuse)
    query = f"select count(*) as n from events where patient_id = '{patient}'"
    assert main(["--store", str(store), "sql", query, "--as-of", "2030-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] > 0
    with pytest.raises(AssertionError, match="cohort path"):  # the spies do see the cohort path
        main(["--store", str(store), "sql", "select count(*) from events", "--as-of", "2030-01-01"])


def test_one_patient_as_of_of_a_plain_store_needs_no_store_stack(store):
    """The command reads the patient's stream with sqlite3 (`SQLiteProbe.read_stream`) and parses the query on the
    connection that replays it: neither the eventsourcing library nor the event models are imported."""
    from timeline.app import Timeline

    with Timeline.open(store, create=False) as tl:
        patient = tl.patients()[3]
    script = ("import json, sys\nfrom timeline.cli import main\n"
              f"code = main(['--store', {str(store)!r}, 'sql', \"select * from endpoints where patient_id = "
              f"'{patient}'\", '--as-of', '2030-01-01', '--format', 'json'])\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('eventsourcing', 'pydantic', 'polars'))\n"
              "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    said = json.loads(r.stderr.strip().splitlines()[-1])
    assert said == {"code": 0, "heavy": []}
    assert [row["patient_id"] for row in json.loads(r.stdout)] and \
        {row["patient_id"] for row in json.loads(r.stdout)} == {patient}


def test_the_probe_reads_a_stream_as_the_store_does(store):
    from timeline.app import Timeline
    from timeline.store.probe import SQLiteProbe

    with Timeline.open(store, create=False) as tl, SQLiteProbe.open(str(store)) as probe:
        for patient in tl.patients()[:5]:
            assert probe.read_stream(patient) == tl.store.recorder.read_stream(patient)
        assert probe.read_stream("no such patient") == []


@pytest.mark.parametrize("when", ["--known-at", "--as-of"])
def test_the_command_answers_as_the_cohort_does_at_a_knowledge_time(store, when):
    from timeline.app import Timeline

    with Timeline.open(store, create=False) as tl:
        day = midway(tl)
        patient = next(p for p in tl.patients() if 0 < len(tl.events(p, as_of=day)) < len(tl.events(p)))
        stamps = sorted(v.recorded_at for v in tl.events(patient))
        value = stamps[len(stamps) // 2].isoformat() if when == "--known-at" else day
    query = f"select * from events where patient_id = '{patient}' order by all"
    replayed = rows(run("sql", query, when, value, "--format", "json", store=store))
    cohort = rows(run("sql", query, when, value, "--fresh", "--format", "json", store=store))
    assert replayed == cohort and replayed
