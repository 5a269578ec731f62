"""A rebuild on a Dask cluster (`timeline project --engine dask`): each partition of patients is one task.

Dask (distributed) because it is Python-native (a task is a Python function; a worker needs only the
`timeline` package), each task can run DuckDB itself, a `LocalCluster` runs the same tasks on one machine
(tests), and `Client("tcp://scheduler:8786")` on a real cluster. Dask schedules the tasks, retries those whose
worker died and reports each one done; nothing of that is written here.

The visible events are exported as Parquet, one file per partition (`partitions.partition_sql`), into a work
folder every worker can read and write; each task (`run_partition`) reads its file into an in-memory DuckDB,
builds the partition with `partitions.build_partition` (the rules and code path of a build in one process) and
writes one Parquet file per table. The projection file's tables are then read from those files, and
`partitions.finish` makes the views and checks the columns, as after a build in one process.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from . import partitions
from .build import quote_ident
from .parameters import Params

LOCAL_WORKERS = 2
CONNECT_TIMEOUT = "10s"
RETRIES = 2  # a task whose worker died is run again this many times (Dask's `retries`)


def run_partition(visible: str, out: str, partition: int, params: str, memory_limit: str) -> int:
    """One task: the rules on the visible events of Parquet file `visible`, each table written to
    `<out>/<table>/part-<partition>.parquet`. `params`: the parameters' fingerprint (`Params.fingerprint`).
    Returns the number of visible events read."""
    con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False})
    try:
        con.execute("CREATE TEMP TABLE _task_visible AS SELECT * FROM read_parquet($file)", {"file": visible})
        made = partitions.build_partition(con, Params.from_fingerprint(params), "temp.main._task_visible")
        for name in partitions.stored_models():
            folder = Path(out) / name
            folder.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY temp.main.{quote_ident(name)} TO $file (FORMAT parquet)",
                        {"file": str(folder / f"part-{partition:05d}.parquet")})
        partitions.drop_partition(con, made)
        return con.execute("SELECT count(*) FROM temp.main._task_visible").fetchall()[0][0]
    finally:
        con.close()


def build(con: duckdb.DuckDBPyConnection, params: Params, visible: str, plan: partitions.Plan, events: int,
          on_table: Callable[[str, int, int], None] | None = None) -> list[str]:
    """The tables of the file's connection `con` from the visible events of relation `visible` (of a store of
    `events` events), one task per partition on the cluster `plan.scheduler` (else a local cluster of
    `LOCAL_WORKERS` processes, started and closed). Unless `plan.partitions` says, there are as many
    partitions as workers, or more if memory asks."""
    from dask.distributed import as_completed

    folder = _work_folder(con, plan)
    try:
        with _client(plan) as client:
            k = plan.count(events)
            if plan.partitions is None:
                k = max(k, len(client.scheduler_info().get("workers", {})))
            files = export(con, visible, folder / "visible", k)
            out = folder / "tables"
            futures = client.map(run_partition, [str(f) for f in files], [str(out)] * k, list(range(k)),
                                 [params.fingerprint()] * k, [plan.limit] * k, retries=RETRIES, pure=False)
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()  # a task's error, after its retries, is raised here
                if on_table:
                    on_table(f"partition {done} of {k} done by the cluster", done, k)
        for name in partitions.stored_models():
            con.execute(f"CREATE OR REPLACE TABLE {partitions.file_table(con, name)} AS "
                        "SELECT * FROM read_parquet($files)", {"files": str(out / name / "*.parquet")})
        return partitions.finish(con, params, visible)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export(con: duckdb.DuckDBPyConnection, visible: str, folder: Path, k: int) -> list[Path]:
    """The visible events as one Parquet file per partition (`part-<p>.parquet`), an empty partition included."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"part-{p:05d}.parquet" for p in range(k)]
    for p, file in enumerate(files):
        con.execute(f"COPY ({partitions.select_partition(visible)}) TO $file (FORMAT parquet)",
                    {"partition": p, "partitions": k, "file": str(file)})
    return files


def _work_folder(con: duckdb.DuckDBPyConnection, plan: partitions.Plan) -> Path:
    """A new folder for this build's Parquet files: in `plan.work_dir`, else beside the file being written."""
    if plan.work_dir is not None:
        base = plan.work_dir
    else:
        path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
        base = Path(path[0][0]).parent
    folder = base / f"timeline-build-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True, mode=0o700)
    return folder


@contextlib.contextmanager
def _client(plan: partitions.Plan) -> Iterator[object]:
    """A client of the scheduler at `plan.scheduler` (unreachable: one line naming it), else of a local cluster."""
    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines would bury the progress line
    if plan.scheduler is None:
        with LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(plan.scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConnectionError(f"cannot reach the Dask scheduler at {plan.scheduler} ({cause})") from None
    with client:
        yield client
