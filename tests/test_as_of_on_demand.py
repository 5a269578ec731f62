"""A view recomputed as of a past date makes only the tables a query reads (and the tables they read), and
its answers do not depend on the order in which tables were asked for."""

from __future__ import annotations

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
    """The tables the view has made (read on its connection: the SQL surface refuses the catalogue functions)."""
    made = view._con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
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
