"""Patient data readable by its owner only: the data folder and every file the engine writes are created
0700 / 0600, whatever the umask.

Why: a shared analysis server's default umask (022) leaves new files readable by every account on it; a
registry's data-protection officer asks for owner-only files before patient data goes in. The CLI runs each
command inside `owner_only()` (store, WAL, projection file, report, exports, locks); the library makes the
data folder it creates 0700 and the store file 0600 without touching a notebook's own umask."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

OWNER_ONLY_UMASK = 0o077  # group and others get no permission bit
FOLDER_MODE = 0o700
FILE_MODE = 0o600


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Inside: files and folders this process creates are its owner's only (the umask, restored after; a
    stricter umask the user set is kept)."""
    old = os.umask(OWNER_ONLY_UMASK)
    os.umask(old | OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def private_folder(path: Path) -> Path:
    """Create a data folder (with its parents) readable by its owner only; a folder that exists is left as it
    is: its permissions are the user's choice."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> None:
    """A file the engine just created: owner read and write only."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)
