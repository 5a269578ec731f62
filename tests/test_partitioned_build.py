"""A rebuild by partitions of patients (issue 15) makes the very tables of a one-piece rebuild, row for row."""

from __future__ import annotations

import duckdb
import pytest

from projection_compare import file_differences as differences
from timeline.app import Timeline
from timeline.projections import partitions
from timeline.projections.partitions import Plan
from timeline.testing.cohort import iter_cohort

PATIENTS = 300


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A store of a few hundred generated patients, one fact retracted, one corrected, one patient's consent
    withdrawn, and its one-piece rebuild."""
    d = tmp_path_factory.mktemp("partitioned")
    tl = Timeline.open(d / "store", projections=d / "whole.duckdb")
    tl.ingest(iter_cohort(PATIENTS, seed=15))
    [count] = [f for f in tl.facts("SYN-000003") if f.original.type == "blood_count"][:1]
    tl.record({"type": "event_retracted", "patient_id": "SYN-000003", "occurred_on": "2026-01-05",
               "retracts": count.original.event_id, "reason": "sample mislabelled"})
    [first] = [f for f in tl.facts("SYN-000007") if f.original.type == "blood_count"][:1]
    tl.correct(str(first.original.event_id), {"occurred_on": "2026-01-04"}, reason="date misread", by="test")
    tl.record({"type": "consent_withdrawn", "patient_id": "SYN-000011", "occurred_on": "2026-02-01",
               "scope": "research"})
    assert tl.project(rebuild=True, plan=Plan(partitions=None)).mode == "rebuild"
    return d, tl


@pytest.mark.parametrize("k", [1, 3, 7])
def test_a_rebuild_by_partitions_equals_a_one_piece_rebuild(cohort, k):
    d, tl = cohort
    parts = d / f"parts-{k}.duckdb"
    made = []
    report = Timeline(tl.store, parts).project(rebuild=True, plan=Plan(partitions=k, memory_limit="1GB"),
                                               on_table=lambda name, i, n: made.append(name))
    assert report.mode == "rebuild"
    assert made == [f"partition {p} of {k}" for p in range(1, k + 1)]
    assert differences(str(d / "whole.duckdb"), str(parts)) == {}
    con = duckdb.connect(str(parts), read_only=True)
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != ""
    kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
    con.close()
    assert kinds["events"] == "VIEW" and kinds["patients"] == "BASE TABLE"


def test_the_partition_hash_is_stable_and_the_same_in_python_and_sql():
    con = duckdb.connect()
    ids = [f"SYN-{i:06d}" for i in range(200)] + ["ü-patient", ""]
    rows = con.execute(f"SELECT patient_id, {partitions.partition_sql().replace('$partitions', '7')} "
                       "FROM unnest(?) t(patient_id)", [ids]).fetchall()
    assert dict(rows) == {p: partitions.partition_of(p, 7) for p in ids}
    assert partitions.partition_of("SYN-000001", 7) == 5  # md5 of the id: fixed forever
    assert {partitions.partition_of(p, 3) for p in ids} == {0, 1, 2}


def test_the_memory_limit_is_applied_and_honoured(tmp_path, cohort):
    """A limit too small for the build stops it with DuckDB's out-of-memory error, the file left as it was."""
    d, tl = cohort
    path = tmp_path / "small.duckdb"
    with pytest.raises(duckdb.OutOfMemoryException):
        Timeline(tl.store, path).project(rebuild=True, plan=Plan(partitions=3, memory_limit="16MiB"))
    assert not path.exists()


@pytest.mark.parametrize("bad", ["0", "-2", "three", "99999"])
def test_a_bad_number_of_partitions_is_one_line(bad):
    with pytest.raises(ValueError, match=r"^--partitions takes a whole number from 1 to 4096, got") as e:
        partitions.partitions_arg(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^--memory-limit takes at least 16MiB, got '3kib'"):
        Plan(memory_limit="3kib")


def test_the_number_of_partitions_follows_the_events_and_the_memory_limit():
    # 100,000 generated patients (15.8M events) are built in one piece under the default eighth of 24 GiB
    assert Plan(memory_limit="3013MiB").count(15_803_619) == 1
    assert Plan(memory_limit="1GiB").count(13_000_000) == 3
    assert Plan(memory_limit="3GiB").count(13_000_000) == 1
    assert not Plan(memory_limit="3GiB").split(13_000_000)
    assert Plan(partitions=1).split(13_000_000)  # asked for: by the partitions' path, even in one


def test_a_rebuild_on_a_local_dask_cluster_equals_a_one_piece_rebuild(cohort, tmp_path):
    """Two worker processes, each partition one task reading its Parquet file: the same tables; the work folder
    is removed after."""
    pytest.importorskip("dask.distributed")
    d, tl = cohort
    path = tmp_path / "dask.duckdb"
    done = []
    report = Timeline(tl.store, path).project(rebuild=True, plan=Plan(partitions=3, engine="dask", memory_limit="1GB"),
                                              on_table=lambda name, i, n: done.append(i))
    assert report.mode == "rebuild" and done == [1, 2, 3]
    assert differences(str(d / "whole.duckdb"), str(path)) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dask.duckdb", "dask.duckdb.lock"]


def test_an_unreachable_scheduler_is_one_line_naming_it(cohort, tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    from timeline.projections import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    d, tl = cohort
    with pytest.raises(ConnectionError, match=r"^cannot reach the Dask scheduler at tcp://127.0.0.1:9 ") as e:
        Timeline(tl.store, tmp_path / "p.duckdb").project(
            rebuild=True, plan=Plan(partitions=2, engine="dask", scheduler="tcp://127.0.0.1:9"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "p.duckdb").exists()


def test_the_command_line_says_a_wrong_value_in_one_line(tmp_path):
    import subprocess
    import sys

    for args, said in ((["--partitions", "0"], "--partitions takes a whole number from 1 to 4096, got '0'"),
                       (["--memory-limit", "lots"], "--memory-limit takes a size such as 4GB or 512MB, got 'lots'")):
        r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(tmp_path / "none"), "project", *args],
                           capture_output=True, text=True, timeout=60)
        assert (r.returncode, r.stderr) == (2, f"timeline project: {said}\n")


def test_the_default_memory_limit_is_an_eighth_of_the_machine():
    """A rebuild (and a query) may use an eighth of the machine's memory unless told: at 100,000 patients a
    quarter let DuckDB fill 6 GB for no gain in time (timeline.settings.MEMORY_SHARE)."""
    import os

    from timeline.projections.partitions import Plan, size_bytes

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert total / 8 - 2**20 <= size_bytes(Plan().limit) <= total / 8
    assert Plan(memory_limit="3GB").limit == "3GB"


def test_each_partition_is_committed_in_the_scratch_file(cohort, monkeypatch):
    """Found by the 1,000,000-patient run (issue 15): the whole rebuild was one transaction, so the storage of each
    partition's temporary tables, though dropped, was only freed at the end: 17 GB of DuckDB temporary files by
    partition 13 of 27, and the disk nearly full. The rebuild writes a scratch file published only when whole, so
    each partition is committed there (a crash still leaves the published file as it was)."""
    d, tl = cohort
    seen = []
    build_partition = partitions.build_partition

    def spy(con, params, visible):
        seen.append(con.execute("SELECT txid_current()").fetchall()[0][0])
        return build_partition(con, params, visible)

    monkeypatch.setattr(partitions, "build_partition", spy)
    parts = d / "parts-committed.duckdb"
    Timeline(tl.store, parts).project(rebuild=True, plan=Plan(partitions=3, memory_limit="1GB"))
    assert len(seen) == 3 and len(set(seen)) == 3, seen  # a transaction per partition
    assert differences(str(d / "whole.duckdb"), str(parts)) == {}
