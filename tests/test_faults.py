"""The fault suite: `kill -9` at any moment of an ingest (SQLite and PostgreSQL) or of a projection build, a
full disk, damaged files, one patient's id taken by another, and fuzzed input. Whatever happens, the store
holds a file whole or not at all, the projection file is as it was before a run or as after it, and every
refusal is the tool's own error in one line.

Kill points adapt to the machine: an uninterrupted run is timed first, then runs are killed at fractions
of that time (early, mid-way, near and at the end, where the commit is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pg_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timeline.app import Timeline
from timeline.events.problems import RejectedError
from timeline.testing.cohort import write_cohort_jsonl

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
KILL_AT = (0.35, 0.7, 0.9, 1.0)  # fractions of an uninterrupted run


def _cli(store: str | Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "timeline", "--store", str(store), *args]


def _timed(cmd: list[str]) -> float:
    t = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return time.monotonic() - t


def _killed(cmd: list[str], after: float) -> int | None:
    """Run `cmd`, kill -9 it `after` seconds in (unless it ended first); its exit status, None if killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("cohort") / "cohort.jsonl"
    return path, write_cohort_jsonl(path, 150, seed=3)


def _store_is_whole(store: str, expected: int) -> int:
    """The number of events stored: 0 or all of the file; the store's own checks pass."""
    from timeline.verify import store_findings

    with Timeline.open(store) as tl:
        n = tl.store.count_after(0)
        findings = list(store_findings(tl))
    assert n in (0, expected), n
    assert all(f.ok for f in findings), [str(f) for f in findings]
    return n


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_during_ingest_stores_the_file_whole_or_not_at_all(kind, cohort, tmp_path, request):
    path, n = cohort
    store = str(tmp_path / "timed") if kind == "sqlite" else request.getfixturevalue("pg_url")
    full = _timed(_cli(store, "ingest", str(path)))
    outcomes = []
    for i, fraction in enumerate(KILL_AT):
        target = str(tmp_path / f"s{i}") if kind == "sqlite" else request.getfixturevalue("pg_base_url") + \
            f"?schema={pg_schema(f'kill{os.getpid()}_{i}')}"
        status = _killed(_cli(target, "ingest", str(path)), full * fraction)
        outcomes.append((status, _store_is_whole(target, n)))
        if status == 0:
            assert outcomes[-1][1] == n
    assert any(status is None for status, _ in outcomes), "no run was interrupted: the kill points came too late"
    # and the store takes the file again after a kill: nothing stuck, nothing doubled
    target = str(tmp_path / "s0") if kind == "sqlite" else request.getfixturevalue("pg_base_url") + \
        f"?schema={pg_schema(f'kill{os.getpid()}_0')}"
    subprocess.run(_cli(target, "ingest", str(path)), check=True, capture_output=True, timeout=300)
    assert _store_is_whole(target, n) == n


def test_kill_9_during_project_leaves_the_file_before_or_after(cohort, tmp_path):
    path, n = cohort
    store = tmp_path / "data"
    lines = path.read_text().splitlines(keepends=True)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("".join(lines[: n // 2]))
    rest.write_text("".join(lines[n // 2:]))
    subprocess.run(_cli(store, "ingest", str(first)), check=True, capture_output=True, timeout=300)
    full = _timed(_cli(store, "project", "--rebuild"))
    subprocess.run(_cli(store, "ingest", str(rest)), check=True, capture_output=True, timeout=300)
    interrupted = 0
    for args in (("project",), ("project", "--rebuild")):  # a catch-up, then a rebuild, killed at several points
        for fraction in (0.4, 0.85):
            before = sorted(os.listdir(store))
            status = _killed(_cli(store, *args), full * fraction)
            interrupted += status is None
            readers = subprocess.run(_cli(store, "sql", "SELECT count(*) FROM events", "--format", "csv"),
                                     capture_output=True, text=True, timeout=300)
            assert readers.returncode == 0, readers.stderr  # the file opens: as it was, or as after the run
            assert int(readers.stdout.splitlines()[1]) in (n // 2, n), (before, readers.stdout)
    assert interrupted
    subprocess.run(_cli(store, "project"), check=True, capture_output=True, timeout=300)
    verified = subprocess.run(_cli(store, "verify"), capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout
    assert not list(store.glob("*.building-*"))  # a killed writer's scratch file is cleared by the next


def test_a_full_disk_is_one_line_and_stores_nothing(tmp_path):
    """A small tmpfs fills up during an ingest, then during a projection build (needs root to mount)."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if os.geteuid() != 0:
        if in_ci:
            pytest.fail("CI runs as root: the full-disk case needs to mount a small tmpfs")
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        if in_ci:
            pytest.fail(f"CI must run the full-disk case, but a tmpfs cannot be mounted: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        store = disk / "data"
        with Timeline.open(store) as tl:
            tl.ingest_file(SEED / "JH-01.jsonl")
        big = tmp_path / "big.jsonl"
        write_cohort_jsonl(big, 60, seed=5)
        r = subprocess.run(_cli(store, "ingest", str(big)), capture_output=True, text=True, timeout=300)
        # the warning that the file may not fit (disk_shortfall), then the error in one line
        warning, error = r.stderr.splitlines()
        assert "big.jsonl: warning: this file" in warning and "split it into smaller files" in warning
        assert r.returncode == 1
        assert "no space left on the disk" in error and "nothing of this command was stored" in error
        assert "events.sqlite" in error
        with Timeline.open(store) as tl:
            assert tl.store.count_after(0) == 164  # as before the failed ingest
            filler = disk / "filler"
            with open(filler, "wb") as fill:  # leave no room for the projection file
                while True:
                    try:
                        fill.write(b"\0" * 65536)
                        fill.flush()
                    except OSError:  # the disk is full
                        break
            r = subprocess.run(_cli(store, "project"), capture_output=True, text=True, timeout=300)
            assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
            assert "no space left on the disk" in r.stderr
            assert not list(store.glob("projections.duckdb*building*"))
            filler.unlink()
            assert tl.project().position == 164
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# -- fuzz: mutated valid lines end in the tool's own error or are stored, never anything else ----------------------
VALID = [line for f in sorted(SEED.glob("*.jsonl")) for line in f.read_text().splitlines()[:40]]
FRAGMENTS = ['"', "{", "}", "[", "]", ",", ":", "\\", "\\u0000", "\x1b", "null", "true", "1e999", "-0",
             "9" * 40, '"patient_id":"X"', '"type":"death"', '"event_id":"00000000-0000-0000-0000-000000000000"',
             "[" * 50, "\ud800", "é", "\u202e", '"note":' + '"x"' * 3]


@st.composite
def mutated_lines(draw) -> str:
    line = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(line)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate_key", "deepen"]))
        if kind == "insert":
            line = line[:i] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=5)) + line[i:]
        elif kind == "delete":
            line = line[:i] + line[i + draw(st.integers(1, 6)):]
        elif kind == "replace":
            line = line[:i] + draw(st.characters()) + line[i + 1:]
        elif kind == "duplicate_key":
            line = line[:-1] + ', "patient_id": "DUP"}' if line.endswith("}") else line
        else:
            depth = draw(st.integers(5, 3000))
            line = line[:-1] + ', "note": ' + "[" * depth + "]" * depth + "}" if line.endswith("}") else line
    return line


@pytest.fixture(scope="module")
def fuzz_store():
    tl = Timeline.open("memory")
    yield tl
    tl.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(lines=st.lists(mutated_lines(), min_size=1, max_size=4))
def test_fuzzed_lines_are_stored_or_refused_by_the_tools_own_error(fuzz_store, tmp_path, lines):
    f = tmp_path / "fuzz.jsonl"
    f.write_bytes("\n".join(lines).encode("utf-8", errors="surrogatepass") + b"\n")
    try:
        fuzz_store.ingest_file(f)
    except RejectedError as e:
        assert e.problems and all(p.field for p in e.problems), e.problems
        assert all(isinstance(p.line, int) and p.line >= 1 for p in e.problems)


def test_a_file_that_may_not_fit_is_announced_before_it_is_stored(tmp_path, monkeypatch, capsys):
    """A file is one transaction: its rows need the disk twice (SQLite's write-ahead log, then the store). Found
    when a 22.5 GB file filled the disk after half an hour; now the ingest says so before it starts, and still
    tries (the need is an estimate)."""
    import shutil

    from timeline.cli import main
    from timeline.store.faults import DISK_PER_FILE_BYTE, disk_shortfall

    f = SEED / "JH-01.jsonl"
    size = f.stat().st_size
    assert disk_shortfall(f, size, int(size * DISK_PER_FILE_BYTE)) is None
    said = disk_shortfall(f, 10**9, 2 * 10**9)
    assert said == (f"{f}: warning: this file (1.0 GB) is stored in one transaction, which may need about 4.5 GB of "
                    "free disk (its rows in SQLite's write-ahead log, then in the store); 2.0 GB are free. If the "
                    "disk runs out, nothing of the file is stored: split it into smaller files.")

    store = tmp_path / "s"
    with Timeline.open(store):
        pass  # a SQLite store exists
    free = {"bytes": 10**12}
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=free["bytes"]))
    assert main(["--store", str(store), "ingest", str(f)]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and out.strip().endswith("164 new, 0 already present, 0 corrected")
    free["bytes"] = size  # less than the file may need
    assert main(["--store", str(store), "ingest", str(f)]) == 0  # announced, then stored as usual
    out, err = capsys.readouterr()
    assert err.startswith(f"{f}: warning: this file ({size / 1e3:,.1f} kB) is stored in one transaction, which may "
                          f"need about {int(size * DISK_PER_FILE_BYTE) / 1e3:,.1f} kB of free disk")
    assert out.strip().endswith("0 new, 164 already present, 0 corrected")
