"""What a projection file says of itself, and whether it still matches the store it is read with: the light
part of the runner, which a reading command needs without the store's stack (no eventsourcing, no pydantic)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from ..settings import PROJECTIONS_ENV, PROJECTIONS_FILE, server_projections_folder

if TYPE_CHECKING:
    from .parameters import Params

# The file's layout: a file written by another layout is rebuilt, not caught up (3: models with declared
# columns, `transplants`, `events` a view over `log`, parameters bound by name; 4: `_tracking` records the
# store's identity and the id of the event at its position).
LAYOUT = 4


@dataclass(frozen=True)
class FileState:
    """What a projection file says of itself: the last store position read, the parameters in force, and
    which store and history it was built from (the store's id, the id of the event at that position)."""

    position: int
    parameters: Mapping[str, Any]  # as the file records them; `params` resolves them when first asked
    store_id: str | None = None
    event_at: str | None = None

    @cached_property
    def params(self) -> Params:
        """The parameters in force (resolved on first use: a query of the file as it is needs no rule module)."""
        from .parameters import resolve

        return resolve(self.parameters)


class DamagedProjectionsError(OSError):
    """The projection file cannot be read (not a DuckDB file, damaged): it is derived, so it is rebuilt."""


class StaleProjectionsError(LookupError):
    """The projection file was built from another store, or from a history the store no longer holds."""


class StorePositions(Protocol):
    """What a reader of the projection file asks the store: a store's recorder, or `store.probe.SQLiteProbe`."""

    def store_id(self) -> str: ...
    def event_id_at(self, position: int) -> str | None: ...
    def max_position(self) -> int: ...
    def count_after(self, position: int) -> int: ...


def projections_file(location: str, data_dir: Path | None) -> Path:
    """Where the projection file of a store lives: `$TIMELINE_PROJECTIONS`, else beside the SQLite store (in
    its data folder), else, for a PostgreSQL or in-memory store, `projections-<hash of the store URL without
    its password>.duckdb` in `settings.server_projections_folder()` (the user's data directory; never the
    working directory)."""
    env = os.environ.get(PROJECTIONS_ENV)
    if env:
        return Path(env)
    if data_dir is not None:
        return data_dir / PROJECTIONS_FILE
    import hashlib
    from urllib.parse import urlparse

    u = urlparse(location)
    named = u._replace(netloc=f"{u.username or ''}@{u.hostname or ''}:{u.port or ''}").geturl() if u.password \
        else location
    digest = hashlib.sha1(named.encode()).hexdigest()[:10]
    return server_projections_folder() / f"projections-{digest}.duckdb"


def read_state(con: duckdb.DuckDBPyConnection) -> FileState | None:
    """The file's tracking row, or None if it has none (or was written by another layout)."""
    try:
        row = next(iter(con.execute("SELECT position, parameters FROM _tracking WHERE id = 1").fetchall()), None)
    except duckdb.CatalogException:
        return None
    if not row:
        return None
    data = json.loads(row[1])
    if not isinstance(data, dict) or data.get("layout") != LAYOUT:
        return None
    store_id, event_at = con.execute("SELECT store_id, event_at FROM _tracking WHERE id = 1").fetchone()
    return FileState(int(row[0]), data["parameters"], store_id, event_at)


def damaged(path: Path, exc: BaseException) -> str:
    """One line: the projection file cannot be read, and what to do."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (f"{path} cannot be read as a projection file ({cause}); it is derived from the event store: "
            "`timeline project --rebuild` replaces it, keeping the unreadable one aside")


def is_lock_conflict(exc: BaseException) -> bool:
    """DuckDB's error when another process holds the file (a writer, or readers against a writer)."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def history_mismatch(store: StorePositions, state: FileState) -> str | None:
    """Why a projection file no longer matches the store it is read with (another store, or a store that
    went back: truncated, or restored from an older backup), or None when it does."""
    if state.store_id != store.store_id():
        return "the projection file was built from another event store"
    if state.position and store.event_id_at(state.position) != state.event_at:
        held = store.max_position()
        return (f"the event store no longer holds the history the projection file was built from (it read up to "
                f"position {state.position:,}; the store now "
                + (f"ends at position {held:,}" if held < state.position else "holds another event there")
                + ": restored from an older backup, or replaced)")
    return None


def check_against(store: StorePositions, state: FileState | None) -> list[str]:
    """A file read with a store: `StaleProjectionsError` if it no longer matches it; else the notes a reader
    should see (the file is behind the store)."""
    if state is None:
        return []
    mismatch = history_mismatch(store, state)
    if mismatch is not None:
        raise StaleProjectionsError(f"{mismatch}: its tables would show events the store does not hold; run "
                                    "`timeline project` to rebuild it (or use --fresh)")
    behind = store.count_after(state.position)
    return [f"projections are {behind:,} event(s) behind the store; run `timeline project` (or use --fresh)"] \
        if behind else []
