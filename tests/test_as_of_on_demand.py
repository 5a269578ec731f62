"""A view recomputed as of a past date makes only the tables a query reads (and the tables they read), and
its answers do not depend on the order in which tables were asked for."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from timeline.app import Timeline
from timeline.projections import graph
from timeline.testing.cohort import iter_cohort

AS_OF = "2021-06-30"


@pytest.fixture(scope="module")
def tl(tmp_path_factory):
    with Timeline.open(tmp_path_factory.mktemp("on-demand") / "data") as t:
        t.ingest(list(iter_cohort(60, seed=11)))
        t.project()
        yield t


def _recomputed(view) -> set[str]:
    """The tables the view has made, each a temporary view shadowing the file's (read on its connection: the SQL
    surface refuses the catalogue functions)."""
    made = view._con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    return {name for (name,) in made} & set(graph.models())


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


def test_a_query_makes_only_the_tables_it_reads(tl):
    with tl.as_of(AS_OF) as view:
        view.sql("SELECT count(*) FROM patients")
        assert _recomputed(view) == set(graph.upstream(["patients"]))
        assert "data_queries" not in _recomputed(view)
        view.sql("SELECT count(*) FROM endpoints")
        assert _recomputed(view) == set(graph.upstream(["patients", "endpoints"]))


def test_answers_do_not_depend_on_the_order_tables_are_asked_for(tl):
    with tl.as_of(AS_OF) as everything_first:
        everything_first.sql("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in graph.models()))
        assert _recomputed(everything_first) == set(graph.models())
        expected = {t: _sorted(everything_first.table(t)) for t in ("endpoints", "data_queries", "patients")}
    for order in (("endpoints", "data_queries", "patients"), ("patients", "data_queries", "endpoints")):
        with tl.as_of(AS_OF) as view:
            for t in order:
                assert_frame_equal(_sorted(view.table(t)), expected[t])


def test_the_past_is_not_the_present(tl):
    """Tables made on demand are the as-of ones, never the file's current rows."""
    with tl.as_of(AS_OF) as past, tl.as_of() as now:
        n_past = past.sql("SELECT count(*) AS n FROM endpoints WHERE status = 1")["n"][0]
        n_now = now.sql("SELECT count(*) AS n FROM endpoints WHERE status = 1")["n"][0]
        assert n_past < n_now


def test_every_table_asked_alone_is_the_as_of_one(tl):
    """Asked alone, each table (the file's views such as `events` too, which DuckDB names by what they read) is
    the recomputed one: the same rows as when every table was made first. Defect found: `events` as of a past
    date answered with the file's current events."""
    with tl.as_of(AS_OF) as everything_first:
        everything_first.sql("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in graph.models()))
        expected = {t: everything_first.sql(f"SELECT count(*) AS n FROM {t}")["n"][0] for t in graph.models()}
    for t in graph.models():
        with tl.as_of(AS_OF) as view:
            assert view.sql(f"SELECT count(*) AS n FROM {t}")["n"][0] == expected[t], t
    with tl.as_of(AS_OF) as view:
        assert view.sql("SELECT max(occurred_on) AS last FROM events")["last"][0].isoformat() <= AS_OF


def _all_tables(view) -> dict[str, pl.DataFrame]:
    return {t: _sorted(view.table(t)) for t in graph.models()}


def test_only_the_patients_whose_events_differ_then_are_recomputed(tl):
    """A past view recomputes the patients with an event after the date; everyone else's rows are the file's,
    and every table equals a build of every patient from the store at that date."""
    with_later = {v.event.patient_id for v in tl.events() if v.event.occurred_on.isoformat() > AS_OF}
    assert 0 < len(with_later) < len(tl.patients())
    with tl.as_of(AS_OF) as past, tl.as_of(AS_OF, fresh=True) as everyone:
        past.sql("SELECT count(*) FROM endpoints")
        recomputed = {p for (p,) in past._con.execute("SELECT patient_id FROM _past_changed").fetchall()}
        assert recomputed == with_later
        mine, theirs = _all_tables(past), _all_tables(everyone)
    for t in graph.models():
        assert_frame_equal(mine[t], theirs[t], check_row_order=False)


def test_a_correction_moving_an_event_past_the_date_is_seen(tmp_path):
    """A patient whose last event was moved after the date by a correction has no event after it in the log as
    stored first: the past view must still recompute that patient (the corrected date decides)."""
    with Timeline.open(tmp_path / "data") as t:
        t.ingest(list(iter_cohort(8, seed=5)))
        last = max(t.events(), key=lambda v: v.event.occurred_on)
        patient, day = last.event.patient_id, last.event.occurred_on
        assert not [v for v in t.events(patient) if v.event.occurred_on > day]
        later = min(day + timedelta(days=30), date.today())
        assert later > day
        t.correct(str(last.event.event_id), {"occurred_on": later.isoformat()}, reason="date misread", by="test")
        t.project()
        with t.as_of(day) as past, t.as_of(day, fresh=True) as everyone:
            mine, theirs = _all_tables(past), _all_tables(everyone)
            events_then = past.sql(f"SELECT count(*) AS n FROM events WHERE patient_id = '{patient}'")["n"][0]
        assert events_then == len(t.events(patient, as_of=day))
        for table in graph.models():
            assert_frame_equal(mine[table], theirs[table], check_row_order=False)


def test_a_correction_moving_an_event_before_the_date_leaves_the_patient_to_the_file(tmp_path):
    """A patient whose only event after the date was moved before it by a correction sees then what they see
    now: the past view takes their rows from the file (the log still holds the first version, after the date),
    and every table equals a build of every patient from the store at that date."""
    with Timeline.open(tmp_path / "data") as t:
        t.ingest(list(iter_cohort(8, seed=5)))
        last = max(t.events(), key=lambda v: v.event.occurred_on)
        patient = last.event.patient_id
        day = max(v.event.occurred_on for v in t.events(patient) if v.event.occurred_on < last.event.occurred_on)
        t.correct(str(last.event.event_id), {"occurred_on": day.isoformat()}, reason="date misread", by="test")
        t.project()
        with t.as_of(day) as past, t.as_of(day, fresh=True) as everyone:
            mine, theirs = _all_tables(past), _all_tables(everyone)
            recomputed = {p for (p,) in past._con.execute("SELECT patient_id FROM _past_changed").fetchall()}
        assert patient not in recomputed
        assert recomputed == {v.event.patient_id for v in t.events() if v.event.occurred_on > day}
        for table in graph.models():
            assert_frame_equal(mine[table], theirs[table], check_row_order=False)


def test_the_memory_limit_binds_from_the_first_row_read(tl, monkeypatch):
    """Defect found at 1,000,000 patients: the past view loaded the log's visible events before its memory limit
    was set (a 13.7 GB peak under a 2.9 GiB limit). The limit is set before any row is read."""
    from timeline.projections import loader

    seen = []
    real = loader.visible_through  # what reads the log's rows, folded here or not (`loader.load_visible`)

    def spy(con, versions, **kw):
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return real(con, versions, **kw)

    monkeypatch.setattr(loader, "visible_through", spy)
    with tl.as_of(AS_OF, memory_limit="123MB") as view:
        view.sql("SELECT count(*) FROM patients")
    assert seen and all(s.replace(" ", "").upper() in ("117.3MIB", "123.0MB") for s in seen), seen
