"""Storage faults in one line: what happened to which file or server, and what to do.

The drivers say what went wrong in their own words, several exceptions deep (`sqlite3.DatabaseError:
database disk image is malformed`, wrapped by the eventsourcing library; `database or disk is full`;
psycopg's lost connection). `explain` turns the known ones into one sentence naming the store (its file,
or its server and database) and the next step; every write is one transaction, so the sentence can say
that nothing was half-written. Anything else stays a defect, with its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from ..settings import SQLITE_FILE, store_location

DAMAGED = ("database disk image is malformed", "file is not a database", "file is encrypted",
           "malformed database schema")
FULL = ("database or disk is full", "no space left on device", "disk full", "could not extend file")
READ_ONLY = ("attempt to write a readonly database", "unable to open database file", "readonly database")
LOST = ("server closed the connection", "connection refused", "terminating connection", "could not connect",
        "connection is closed", "connection timeout", "consuming input failed", "connection failed",
        "the connection is lost", "ssl syscall error")


#: Free disk an ingest of one file may need on a SQLite store, per byte of the file. A file is one transaction
#: (a bad file stores nothing), so its rows go to SQLite's write-ahead log until the commit, which copies them
#: into the store. Measured on generated cohorts: the store grew by 2.16 and 2.19 bytes per byte of JSON Lines
#: (10,000 and 100,000 patients); a 22.5 GB file had written a 49 GB log, before its commit, when the disk ran out
#: (the log can hold a page more than once).
DISK_PER_FILE_BYTE = 4.5


def disk_shortfall(path: Path, size: int, free: int) -> str | None:
    """A warning when a file of `size` bytes may need more free disk than `free` to be stored (None: enough)."""
    need = int(size * DISK_PER_FILE_BYTE)
    if free >= need:
        return None
    return (f"{path}: warning: this file ({_size(size)}) is stored in one transaction, which may need about "
            f"{_size(need)} of free disk (its rows in SQLite's write-ahead log, then in the store); {_size(free)} "
            "are free. If the disk runs out, nothing of the file is stored: split it into smaller files.")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e3:,.1f} kB"


class StoreDamagedError(Exception):
    """The event store's file fails its integrity check: nothing is written to it."""


def describe(location: str | None) -> str:
    """The store as a person names it: its file, or its server and database."""
    loc = store_location(location)
    if loc.startswith(("postgresql://", "postgres://")):
        u = urlparse(loc)
        return f"PostgreSQL at {u.hostname or 'localhost'}:{u.port or 5432}, database {(u.path or '/')[1:] or 'postgres'!r}"
    if loc == "memory":
        return "the in-memory store"
    return f"the event store {(Path(loc) / SQLITE_FILE).resolve()}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)  # type: ignore[assignment]


def _cause(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def explain(exc: BaseException, location: str | None) -> str | None:
    """One line for a storage fault (None: not one this module knows)."""
    where = describe(location)
    for e in _chain(exc):
        text = str(e).lower()
        if isinstance(e, StoreDamagedError):
            return str(e)
        if any(s in text for s in FULL) or (isinstance(e, OSError) and e.errno == errno.ENOSPC):
            return (f"no space left on the disk ({_cause(e)}), writing to {where} or the projections: nothing of this "
                    "command was stored (its transaction was rolled back); free some space and run it again")
        if any(s in text for s in DAMAGED):
            return (f"{where} is damaged ({_cause(e)}): this command changed nothing; restore the store from a backup "
                    "(`timeline verify` says what is damaged)")
        if any(s in text for s in READ_ONLY):
            return f"cannot write {where} ({_cause(e)}): check that its folder and file are writable by you"
        if type(e).__module__.startswith(("psycopg", "eventsourcing")) and any(s in text for s in LOST):
            return (f"lost the connection to {where} ({_cause(e)}): nothing half-written (the transaction was rolled "
                    "back); run the command again when the server answers")
    return None
