"""The store's recorders pass the eventsourcing library's own recorder test cases, on SQLite and PostgreSQL.

`timeline.store.recorders` subclasses the library's application recorders (adding the timeline's tables
and its atomic append); these are the library's tests of what a recorder must do (insert and select
events, notifications in order and without gaps, concurrent writers without conflicts, stacks of events
never interleaved), run against the timeline's recorders as the store creates them.

The library's `AggregateRecorderTestCase` is not run: it tests the aggregate recorder's contract (an insert
returns no notification ids), which an application recorder, by the library's own design, does not have
(the library runs it only against its aggregate recorders)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase

from timeline.store.recorders import sqlite_recorder

from conftest import _pg_reachable, pg_schema, postgres_url


class _SQLiteFile:
    """A fresh store file per test (the recorder as `EventStore.open` makes it)."""

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="timeline-recorder-"))
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_originator_id(self) -> str:  # streams are named by text (patient ids)
        return str(uuid.uuid4())

    def create_recorder(self):
        return sqlite_recorder(str(self.folder / f"events-{uuid.uuid4().hex[:8]}.sqlite"))


class _Postgres:
    """A fresh schema per test in the PostgreSQL test database."""

    def setUp(self) -> None:
        why = _pg_reachable(postgres_url())
        if why is not None:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"CI requires the PostgreSQL tests, but {postgres_url()} is not reachable: {why}")
            pytest.skip(f"no PostgreSQL server reachable at {postgres_url()} ({why})")
        self.schemas: list[str] = []
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        import psycopg

        with psycopg.connect(postgres_url().split("?")[0], autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def new_originator_id(self) -> str:
        return str(uuid.uuid4())

    def create_recorder(self):
        from timeline.store.eventstore import _postgres

        schema = pg_schema(f"lib_{uuid.uuid4().hex[:10]}")
        self.schemas.append(schema)
        return _postgres(f"{postgres_url().split('?')[0]}?schema={schema}")


class TestSQLiteApplicationRecorder(_SQLiteFile, ApplicationRecorderTestCase):
    """The library's application recorder test cases, against the SQLite recorder."""


class TestSQLiteNonInterleaving(_SQLiteFile, NonInterleavingNotificationIDsBaseCase):
    """The library's non-interleaving notification ids case, against the SQLite recorder."""


class TestPostgresApplicationRecorder(_Postgres, ApplicationRecorderTestCase):
    """The library's application recorder test cases, against the PostgreSQL recorder."""


class TestPostgresNonInterleaving(_Postgres, NonInterleavingNotificationIDsBaseCase):
    """The library's non-interleaving notification ids case, against the PostgreSQL recorder."""
