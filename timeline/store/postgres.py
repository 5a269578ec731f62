"""The PostgreSQL recorder: the library's PostgreSQL application recorder with the timeline's atomic,
idempotent append (`recorders.py`). A module of its own, imported only for a `postgresql://` store: the
library's PostgreSQL module and psycopg cost every other command a tenth of a second to import."""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from .recorders import POSTGRES, SCHEMA_LOCK_KEY, Cursor, TimelineRecorderMixin


class PostgresTimelineRecorder(TimelineRecorderMixin, PostgresApplicationRecorder):
    """The library's PostgreSQL application recorder with the timeline's atomic idempotent append."""

    dialect = POSTGRES

    def create_table(self) -> None:
        super().create_table()
        self.create_timeline_tables()

    def _plain_cursor(self, c: Any) -> Cursor:
        from psycopg.rows import tuple_row

        return c.connection.cursor(row_factory=tuple_row)


def postgres_recorder(
    dbname: str, host: str, port: int, user: str, password: str, schema: str = ""
) -> PostgresTimelineRecorder:
    import psycopg
    from psycopg import sql

    # Several processes may open a new store at once: the library's DDL (CREATE OR REPLACE FUNCTION…)
    # is not safe to run concurrently, so creation is serialised by a session advisory lock.
    lock = psycopg.connect(dbname=dbname, host=host, port=port, user=user, password=password, autocommit=True)
    lock.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK_KEY])
    if schema:
        lock.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    datastore = PostgresDatastore(
        dbname=dbname,
        host=host,
        port=port,
        user=user,
        password=password,
        schema=schema,
        pool_size=2,
        max_overflow=2,
        originator_id_type="text",
    )
    try:
        recorder = PostgresTimelineRecorder(datastore)
        recorder.create_table()
    finally:
        lock.close()  # ends the session, releasing the advisory lock
    return recorder
