"""Settings shared by every command: where the data lives, and the environment variables that move it."""

from __future__ import annotations

import os
from pathlib import Path

#: The data folder used when no store is named (`--store`, `$TIMELINE_STORE`).
DEFAULT_DATA_FOLDER = "./timeline-data"
#: Names the store (a data folder, a postgresql:// URL, or `memory`) for every command.
STORE_ENV = "TIMELINE_STORE"
#: Moves the projection file (default: `projections.duckdb` in the data folder).
PROJECTIONS_ENV = "TIMELINE_PROJECTIONS"
PROJECTIONS_FILE = "projections.duckdb"
SQLITE_FILE = "events.sqlite"
#: The master key of an encrypted store (base64 of 32 bytes, made by `timeline key new`).
CIPHER_KEY_ENV = "TIMELINE_CIPHER_KEY"
#: A file holding that key (outside the data folder); `--key-file` sets it for one command.
KEY_FILE_ENV = "TIMELINE_KEY_FILE"


def store_location(given: str | os.PathLike[str] | None = None) -> str:
    """The store named by `given`, else `$TIMELINE_STORE`, else the default data folder."""
    return str(given) if given is not None else os.environ.get(STORE_ENV) or DEFAULT_DATA_FOLDER


def default_data_folder() -> Path:
    return Path(DEFAULT_DATA_FOLDER)


#: The folder holding the projection files of stores that are no folder (PostgreSQL, memory).
PROJECTIONS_DIR_ENV = "TIMELINE_PROJECTIONS_DIR"


def server_projections_folder() -> Path:
    """Where the projection files of a PostgreSQL (or in-memory) store live when no file is named: the folder
    `$TIMELINE_PROJECTIONS_DIR`, else `timeline/` in the user's data directory (`$XDG_DATA_HOME`, else
    `~/.local/share`), never the working directory (so every command finds the same file wherever it runs)."""
    given = os.environ.get(PROJECTIONS_DIR_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "timeline"


#: The share of the machine's memory a query or a rebuild may use unless told (`--memory-limit`). An eighth: a
#: 100,000-patient rebuild took 60.6 s and 3.2 GB under it against 64.3 s and 6.2 GB under a quarter (24 GB
#: machine, 2 cores): DuckDB fills the memory it is given, and the smaller limit cost no time (it splits the
#: rebuild into more partitions of patients, `projections.partitions`).
MEMORY_SHARE = 8
MEMORY_DEFAULT_TEXT = "an eighth of the machine's memory"


def memory_limit_default() -> str:
    """The memory a query or a rebuild may use unless told: `MEMORY_SHARE` of the machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "2GB"
    return f"{max(total // MEMORY_SHARE // 2**20, 256)}MiB"  # DuckDB reads MB as 10^6 bytes
