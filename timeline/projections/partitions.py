"""Building the projection tables by partitions of patients, so that a rebuild's memory stays bounded.

A partition is a range of a stable hash of the patient id: patient p is in partition
`int(md5(p)[:8], 16) % K` -- the first 32 bits of the MD5 of the id's UTF-8 bytes, read as an unsigned
integer, modulo K (`partition_of`; in SQL `partition_sql`). MD5 is a fixed standard, so a patient falls in
the same partition in any process, machine, DuckDB or Python version (DuckDB's `hash()` makes no such promise).

Every model is per patient: each row belongs to one patient and is computed from that patient's events only
(the rules join and window on `patient_id`, or on `event_id`, which the store keeps unique; a data-quality
check speaks of its own patient). A catch-up already rests on this when it recomputes the touched patients
alone. So each partition's rules run alone on that partition's visible events (`build_partition`), and the
tables are the union of the partitions' rows; the cohort-wide results (km, cif, report, the estimators) read
the finished tables. View models (`events`) stay views of the file, made once the tables are complete.

`build` does it in one process (`timeline project --partitions K`); `timeline.projections.cluster` runs the same
`build_partition` as Dask tasks over Parquet files (`--engine dask`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from . import build as building
from . import graph
from ..settings import memory_limit_default
from .model import VISIBLE_EVENTS
from .parameters import Params

MAX_PARTITIONS = 4096
MIN_MEMORY = 16 * 2**20
ENGINES = ("duckdb", "dask")
# A rebuild is split (when --partitions is not given) so that each partition holds at most this many visible
# events per GiB of --memory-limit. Measured (benchmarks/partitions.py, README): DuckDB spills what does not fit;
# a one-piece rebuild of 10,000 generated patients (1.58M events) completes within a 150 MB limit, not 100 MB
# (8 partitions do), and one of 100,000 (15.8M events) within 2 GiB (40 s, 2.4 GB peak). Each partition costs a
# pass over the log and every rule's fixed cost: at 100,000 patients under the default 3 GiB, 3 partitions took
# 59 s against 41 s in one piece (3.3 GB peak). So this splits only stores beyond what was seen to fit (a margin
# of a third on the 2 GiB run).
EVENTS_PER_GIB = 6_000_000
_VISIBLE = "_partition_visible"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def partition_of(patient_id: str, partitions: int) -> int:
    """The partition of a patient among `partitions` (the same number as `partition_sql`)."""
    return int(hashlib.md5(patient_id.encode()).hexdigest()[:8], 16) % partitions


def partition_sql(column: str = "patient_id") -> str:
    """The partition of `column` in SQL, for the named parameter `$partitions`."""
    return f"CAST(('0x' || md5({column})[1:8]) AS UBIGINT) % $partitions"


def partitions_arg(text: str) -> int:
    """A number of partitions, as `--partitions` takes it (one line when it is not one)."""
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_PARTITIONS:
        raise ValueError(f"--partitions takes a whole number from 1 to {MAX_PARTITIONS}, got {text!r}")
    return k


def size_bytes(text: str) -> int:
    """A memory size such as `4GB`, `512MiB` in bytes (one line when it is not one)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"--memory-limit takes a size such as 4GB or 512MB, got {text!r}")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < MIN_MEMORY:  # below it DuckDB cannot even open the file, which would read as a damaged file
        raise ValueError(f"--memory-limit takes at least {MIN_MEMORY // 2**20}MiB, got {text!r}")
    return size




@dataclass(frozen=True)
class Plan:
    """How a rebuild computes the tables: in how many partitions (None: chosen from the number of events and
    the memory limit), with which DuckDB memory limit, and on which engine (`duckdb`: this process; `dask`: the
    tasks of a Dask cluster, at `scheduler` or a local one, exchanging Parquet files in `work_dir`)."""

    partitions: int | None = None
    memory_limit: str | None = None
    engine: str = "duckdb"
    scheduler: str | None = None
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.partitions is not None:
            partitions_arg(str(self.partitions))
        if self.memory_limit is not None:
            size_bytes(self.memory_limit)
        if self.engine not in ENGINES:
            raise ValueError(f"--engine takes one of {', '.join(ENGINES)}, got {self.engine!r}")

    @property
    def limit(self) -> str:
        return self.memory_limit or memory_limit_default()

    def count(self, events: int) -> int:
        """The number of partitions for a store of `events` events: as given, else one per `EVENTS_PER_GIB`
        events per GiB of the memory limit (1 for a store that fits at once)."""
        if self.partitions is not None:
            return self.partitions
        per_partition = max(int(EVENTS_PER_GIB * size_bytes(self.limit) / 2**30), 1)
        return min(max(math.ceil(events / per_partition), 1), MAX_PARTITIONS)

    def split(self, events: int) -> bool:
        """Whether a rebuild of a store of `events` events goes by partitions (or to a cluster) rather than in
        one piece."""
        return self.engine != "duckdb" or self.partitions is not None or self.count(events) > 1


def build_partition(con: duckdb.DuckDBPyConnection, params: Params, visible: str) -> list[str]:
    """Every model, on the visible events of one partition (relation `visible`), as a temporary table
    `temp.main.<name>` (view models too: their rows feed the later models). Returns the tables made."""
    return building.build(con, params, inputs={VISIBLE_EVENTS: visible}, temp=True)


def drop_partition(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Drop a partition's temporary tables once its rows are kept (the next partition's take their names)."""
    for name in tables:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{building.quote_ident(name)}")


def select_partition(visible: str) -> str:
    """The visible events of one partition (`$partition` of `$partitions`)."""
    return f"SELECT * FROM {visible} WHERE {partition_sql()} = $partition"


def build(con: duckdb.DuckDBPyConnection, params: Params, visible: str, partitions: int,
          on_table: Callable[[str, int, int], None] | None = None) -> list[str]:
    """The tables in `main`, built partition by partition in this process: each partition's visible events are
    copied out of `visible`, its rules run (`build_partition`), its rows appended and committed (`con` is in a
    transaction on the scratch file of a rebuild); then the view models."""
    stored = {name: file_table(con, name) for name in stored_models()}
    for p in range(partitions):
        if on_table:
            on_table(f"partition {p + 1} of {partitions}", p + 1, partitions)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_VISIBLE} AS {select_partition(visible)}",
                    {"partition": p, "partitions": partitions})
        made = build_partition(con, params, f"temp.main.{_VISIBLE}")
        for name, target in stored.items():
            head = f"INSERT INTO {target}" if p else f"CREATE OR REPLACE TABLE {target} AS"
            con.execute(f"{head} SELECT * FROM temp.main.{building.quote_ident(name)}")
        drop_partition(con, [*made, _VISIBLE])
        # A rebuild writes a scratch file, published whole or not at all (`runner.Projector`): committing each
        # partition there frees its dropped temporary tables' storage, which one transaction would keep to the end
        # (17 GB of temporary files by partition 13 of 27 at 1,000,000 patients).
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")
    return finish(con, params, visible)


def stored_models() -> list[str]:
    """The models whose rows are stored in the file (not views), in build order."""
    return [name for name, m in graph.models().items() if not m.view]


def file_table(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The table `name` of the file, named with its catalog: while a partition's temporary table of the same
    name exists, `main.<name>` would mean that one (DuckDB searches the temporary schema first)."""
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    return f"{building.quote_ident(catalog)}.main.{building.quote_ident(name)}"


def finish(con: duckdb.DuckDBPyConnection, params: Params, visible: str) -> list[str]:
    """Once every partition's rows are in the tables: the view models as views of the file (reading `visible`
    and the tables, named without the file's catalog, which is named after the file and changes with it), and every table's columns checked against its model. Returns the tables, in order."""
    relations = {VISIBLE_EVENTS: visible}
    for name, model in graph.models().items():
        target = f"main.{building.quote_ident(name)}"  # no partition's temporary table is left by then
        if model.view:
            building.execute(con, f"CREATE OR REPLACE VIEW {target} AS", model, relations, params)
        building.check_columns(con, model, target)
        relations[name] = target
    return list(graph.models())
