"""Owner-only files (issue 11, Deliver 1, last sentence): the data folder and every file the engine writes
are created 0700 / 0600 whatever the umask: store, WAL, projection file, report, exports, lock files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from timeline.app import Timeline
from timeline.private import owner_only

SEED = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "seed").glob("JH-0*.jsonl"))


def _open_to_others(*roots: Path) -> list[str]:
    """Every path under the roots (roots included) that its group or others may read, write or enter."""
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def _cli(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "timeline", *args], capture_output=True, text=True, timeout=300,
                       preexec_fn=lambda: os.umask(0o022))  # a shared server's usual umask
    assert r.returncode == 0, r.stderr


def test_every_file_the_commands_write_is_the_owners_only(tmp_path):
    store, report, export, query = tmp_path / "data", tmp_path / "report", tmp_path / "parquet", tmp_path / "q.csv"
    _cli("--store", str(store), "ingest", *map(str, SEED))
    _cli("--store", str(store), "project")
    _cli("--store", str(store), "report", "--out", str(report))
    _cli("--store", str(store), "export", "parquet", str(export))
    _cli("--store", str(store), "sql", "SELECT * FROM patients", "--format", "csv", "--out", str(query))
    assert any(p.suffix == ".duckdb" for p in store.iterdir()) and any(report.iterdir()) and any(export.iterdir())
    assert _open_to_others(store, report, export, query) == []


def test_the_demo_writes_its_store_report_and_screenshots_for_the_owner_only(tmp_path):
    store, report = tmp_path / "data", tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "timeline.demo", "--store", str(store), "--out", str(report)],
                       capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert any((report / "screens").glob("*.png"))
    assert _open_to_others(store, report) == []


def test_the_library_makes_a_new_data_folder_and_store_owner_only_and_keeps_the_callers_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with Timeline.open(tmp_path / "data") as tl:
            tl.record({"type": "patient_registered", "patient_id": "P-1", "occurred_on": "2024-01-08",
                       "birth_date": "2013-05-21", "sex": "female"})
            tl.project()
        assert os.umask(0o022) == 0o022  # a notebook's umask is not changed behind its back
    finally:
        os.umask(old)
    assert _open_to_others(tmp_path / "data") == []


def test_owner_only_keeps_a_stricter_umask_and_restores_the_old_one():
    old = os.umask(0o027)
    try:
        with owner_only():
            inside = os.umask(0o077)
            os.umask(inside)
        after = os.umask(0o277)
        with owner_only():
            strict = os.umask(0o277)
            os.umask(strict)
    finally:
        os.umask(old)
    assert (inside, after, strict) == (0o077, 0o027, 0o277)
