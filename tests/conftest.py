"""Shared fixtures: stores of every kind, PostgreSQL availability (required in CI)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

PG_ENV = "TIMELINE_TEST_POSTGRES"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/timeline_test"


def postgres_url() -> str:
    return os.environ.get(PG_ENV, PG_DEFAULT)


def _worker() -> str:
    """This test process: a pytest-xdist worker's id (gw0, gw1, ...), else main."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pg_schema(name: str) -> str:
    """A PostgreSQL schema of this test process (`t_<worker>_<name>`): the workers run at once, and each
    drops its own schemas only when it ends."""
    return f"t_{_worker()}_{name}"


def _pg_reachable(url: str) -> str | None:
    """None when the test database answers (created on the server if missing), else why not."""
    import psycopg

    base, _, dbname = url.split("?")[0].rpartition("/")
    try:
        with psycopg.connect(f"{base}/postgres", connect_timeout=3, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}"')
        with psycopg.connect(url.split("?")[0], connect_timeout=3):
            return None
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable" here
        return f"{type(e).__name__}: {e}".strip()


@pytest.fixture(scope="session", autouse=True)
def _projections_of_server_stores(tmp_path_factory):
    """The projection files of PostgreSQL and in-memory stores go to a folder of the test session, not to
    the user's data directory (subprocesses inherit it)."""
    os.environ["TIMELINE_PROJECTIONS_DIR"] = str(tmp_path_factory.mktemp("server-projections"))
    yield


@pytest.fixture(scope="session")
def pg_base_url():
    """The PostgreSQL test database. In CI it must be reachable (a failure, never a skip)."""
    url = postgres_url()
    why = _pg_reachable(url)
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI requires the PostgreSQL tests, but {url} is not reachable: {why}")
        pytest.skip(f"no PostgreSQL server reachable at {url} ({why}); set {PG_ENV} to run these tests")
    yield url
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:  # drop this process's per-test schemas
        mine = pg_schema("").replace("_", "\\_") + "%"
        for (name,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [mine]).fetchall():
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_url(pg_base_url: str) -> str:
    """A fresh schema per test in the PostgreSQL test database."""
    return f"{pg_base_url}?schema={pg_schema(uuid.uuid4().hex[:12])}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_location(request, tmp_path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return str(tmp_path / "data")
    return request.getfixturevalue("pg_url")


# -- the seed cohort (fixtures/seed), ingested and projected once per test session ---------------------
SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
SEED_CUTOFF = json.loads((SEED / "cohort.json").read_text(encoding="utf-8"))["data_cutoff"]


@pytest.fixture(scope="session")
def seed_timeline(tmp_path_factory):
    """A fresh store with every seed file ingested (607 events) and projected; read-only for tests."""
    from timeline.app import Timeline
    from timeline.demo import seed_files

    tl = Timeline.open(str(tmp_path_factory.mktemp("seed") / "data"))
    assert sum(tl.ingest_file(path).new for path in seed_files(SEED)) == 607
    tl.project()
    yield tl
    tl.close()


@pytest.fixture(scope="session")
def seed_report(seed_timeline):
    """The outcomes report of the seed cohort at its data cut-off."""
    from timeline.queries.report import build_report

    return build_report(seed_timeline, as_of=SEED_CUTOFF)
