"""Scale benchmark (issue 15, points 1 and 4): every figure of a cohort of N patients through the `timeline`
command (and the Python API where the issue names it), each beside its target, PASS or FAIL.

    python benchmarks/scale.py [--patients 10000] [--repeat 3] [--seed 1] [--workdir DIR]
                               [--store postgresql://USER@HOST:PORT/DB]
    python benchmarks/scale.py --registry [--patients 1000000] [--part-patients 100000] [--workdir DIR]

Every command runs with its bytecode cached, as an installed package has it (`cached_bytecode`).

Figures (medians over `--repeat` runs; the short commands, which cost about a second each, are run
max(repeat, 5) times, the Python one-patient read max(repeat, 15) times):
  - ingest: events/s of `timeline ingest FILE` into an empty SQLite store, wall clock of the command; and its
    CPU per event (user + system of the command and its parse workers, from `os.wait4`), with the most events/s
    the machine's cores could give at that cost whatever the overlap (cores / CPU per event);
  - the ingest's essential work: the CPU per event (process time) of what any ingest that validates every event
    with the event model and stores it here must do, on the first 200,000 lines of the file: each line validated
    by the pydantic model (`validate_json`, strict, as the ingest does), then inserted as a stored row (the store's
    table, page size and cache, WAL, one transaction, batches of 10,000). Its bound (cores / that CPU) is the most
    events/s any such ingest reaches on this machine; the ingest's CPU over it is the share that is the ingest's
    own, which compares across machines where events/s do not;
  - floor: DuckDB reading every field of the same JSON Lines file into a table of a fresh DuckDB file
    (`CREATE TABLE t AS SELECT * FROM read_json(FILE, format='newline_delimited', union_by_name=true)`,
    connect to close, timed inside its process);
  - full build, in-process (`Timeline.project(rebuild=True)`, timed inside its process) and through the
    command `timeline project --rebuild` (wall clock, start-up included); each / floor. The floor and the
    two builds run in rounds (floor, in-process, command), and each ratio is taken within its round, then
    the median: the machine's speed drifts by a quarter within minutes, which a floor measured minutes
    before the builds would put into the ratio;
  - catch-up: `timeline project` after 1% more events (as `benchmarks/projections.py` makes them: ~80% for
    new patients, the rest new contacts of 1% of the existing ones; appended by `timeline ingest`, untimed),
    as % of `timeline project --rebuild` of the same store run just after it (rounds again, the median of
    the shares); the projection file is restored to its built state before each catch-up; beside it, its
    fixed parts: `timeline project` with nothing new, and `timeline project` after one more event of one
    patient (every rule runs, on one patient: the cost of any catch-up before its rows);
  - start-up: `timeline --store S sql "select 1"`; "beyond start-up" = the median, over the runs of a
    command, of its time minus that of a start-up run made just before it (pairs: the machine's load
    changes less within a pair than across the run);
  - cohort as-of: `timeline sql "select count(*) from endpoints" --as-of DATE` (DATE: the middle of the
    cohort's span of clinical dates);
  - one patient as-of: `timeline sql "select * from endpoints where patient_id = 'P'" --as-of DATE`, and
    the same query on `Timeline.as_of(DATE, patients=[P])` (the per-patient replay) in a warm process,
    timed per call (the first call, with its imports, is printed apart);
  - `timeline history P`;
  - with `--store postgresql://…` (a fresh schema per run in that database, created if missing, dropped at
    the end): ingest with 1 writer and with 4 concurrent writers (the cohort file split by patient into 4
    files, 4 `timeline ingest` processes started together, wall clock to the last one's end; the store's
    tables made before, untimed), and the full build reading from PostgreSQL, beside the same figures on
    SQLite (4 writers into one SQLite store included).

Beside the load average, the machine's speed at the start and at the end (`machine_speed`): an empty Python loop
of 10,000,000 iterations, and 256 MB of fresh memory allocated and written once. The absolute targets hold on one
machine; a figure from another, or from this one at another speed, compares through them.

Peak memory of a step = the larger of two measures of the step's process tree:
  - the kernel's: `os.wait4` on each process of the step (what `/usr/bin/time -f %M` reports), i.e. the
    largest resident set any one process of the tree reached (the process itself or a descendant it
    waited for: the kernel folds those in). `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` deltas are not
    used: that value is the maximum over every child this script ever waited for, so it only moves when a
    step exceeds all the earlier ones;
  - a sampled sum: every 50 ms, the resident sets of the step's processes and all their descendants
    (/proc), added up; the largest sum (what processes alive together held; a peak shorter than 50 ms
    can be missed).

Every temporary file (stores, DuckDB files, split cohort) is in a folder under `--workdir` (default
benchmarks/out), removed at the end; the cohort file is generated once by `timeline.testing.cohort` into
benchmarks/out, which is slow for large N: ~240,000 events/s on one core (measured at 500 patients), so about
65 s for 100,000 patients and 11 min for 1,000,000.
No step holds the events in this process: the file is counted, split and extended line by line.

`--registry` (issue 15, point 2: the 1,000,000-patient run) prints that point's figures, each step run once:
ingest, the full build through the command with its peak memory (target <= 8 GB) and its partitions, the
sizes of the store and of the projection file, cohort as-of, one patient as-of, `timeline history`, start-up.
The cohort is the same as the file's (patients 0 .. N-1 of `timeline.testing.cohort`), generated as files of
`--part-patients` consecutive patients, each written just before its `timeline ingest` and deleted after it:
one file is one transaction, so its rows need the disk twice (SQLite's write-ahead log, then the store), and a
22.5 GB file of 1,000,000 patients filled a disk with 78 GB free (README). The parts go in one after another
into one store; the ingest rate is their events over the sum of their wall clocks (generation not included).
At 1,000,000 patients it needs about 60 GB free and an hour.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import OUT, arguments, cohort_file  # noqa: E402

TIMELINE = [sys.executable, "-m", "timeline"]
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 2**20

FLOOR_CHILD = r"""
import json, sys, time
import duckdb
path, db = sys.argv[1], sys.argv[2]
t = time.perf_counter()
con = duckdb.connect(db)
con.execute("CREATE TABLE t AS SELECT * FROM read_json('" + path.replace("'", "''") + "', "
            "format='newline_delimited', union_by_name=true)")
con.close()
dt = time.perf_counter() - t
con = duckdb.connect(db, read_only=True)
n, lo, hi = con.execute("SELECT count(*), min(occurred_on), max(occurred_on) FROM t").fetchone()
cols = len(con.execute("DESCRIBE t").fetchall())
print(json.dumps({"seconds": dt, "rows": n, "columns": cols, "first": str(lo), "last": str(hi)}))
"""

ESSENTIALS_CHILD = r"""
import json, os, sqlite3, sys, time
from timeline.events import EVENT_ADAPTER
from timeline.store.recorders import NEW_STORE_PAGE_BYTES
path, db, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = []
with open(path, "rb") as f:
    for raw in f:
        if len(lines) == most:
            break
        lines.append(raw.rstrip(b"\n"))
validate = EVENT_ADAPTER.validator.validate_json
t = time.process_time()
events = [validate(raw, strict=True) for raw in lines]
t_validate = time.process_time() - t
versions = {}
rows = []
for e, raw in zip(events, lines):
    v = versions[e.patient_id] = versions.get(e.patient_id, 0) + 1
    rows.append((e.patient_id, v, e.type, raw))
del events
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
        os.remove(db + suffix)
t = time.process_time()
con = sqlite3.connect(db, isolation_level=None)
con.execute(f"PRAGMA page_size = {NEW_STORE_PAGE_BYTES}")
con.execute("PRAGMA journal_mode = WAL")
con.execute("PRAGMA cache_size = -131072")
con.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))")
con.execute("BEGIN")
for i in range(0, len(rows), 10_000):
    con.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows[i:i + 10_000])
con.execute("COMMIT")
con.close()
t_insert = time.process_time() - t
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(db + suffix):
        os.remove(db + suffix)
print(json.dumps({"lines": len(lines), "validate": t_validate / len(lines), "insert": t_insert / len(lines)}))
"""

#: lines of the cohort file the essential-work reference reads (the events of ~1,300 patients)
ESSENTIALS_LINES = 200_000

BUILD_CHILD = r"""
import json, sys, time
from timeline.app import Timeline
tl = Timeline.open(sys.argv[1], create=False)
t = time.perf_counter()
r = tl.project(rebuild=True)
dt = time.perf_counter() - t
tl.close()
print(json.dumps({"seconds": dt, "events": r.rows_read, "patients": r.patients}))
"""

ONE_PATIENT_CHILD = r"""
import json, statistics, sys, time
from timeline.app import Timeline
store, day, pid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
query = f"select * from endpoints where patient_id = '{pid}'"
tl = Timeline.open(store, create=False)
def one():
    t = time.perf_counter()
    with tl.as_of(day, patients=[pid]) as view:
        rows = view.sql(query).height
    return time.perf_counter() - t, rows
first, rows = one()
times = [one()[0] for _ in range(n)]
tl.close()
print(json.dumps({"first": first, "seconds": statistics.median(times), "rows": rows}))
"""


# -- running a step: wall clock, output, peak memory of its process tree ---------------------------------
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler(threading.Thread):
    """The largest sum of resident sets of `roots` and their descendants, sampled every `every` seconds."""

    def __init__(self, roots: list[int], every: float = 0.05):
        super().__init__(daemon=True)
        self.roots, self.every, self.peak = roots, every, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            stack, total = list(self.roots), 0
            while stack:
                pid = stack.pop()
                total += _rss(pid)
                stack.extend(_children(pid))
            self.peak = max(self.peak, total)
            if self._stop_event.wait(self.every):
                return

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


@dataclass
class Run:
    seconds: float  # wall clock, from the first start to the last end
    peak_mb: float  # the larger of wait4's max RSS and the sampled sum (module docstring)
    out: list[str]  # stdout of each process
    cpu: float = 0.0  # user + system seconds of the processes and the descendants they waited for (wait4)

    def child(self) -> dict:
        """The JSON line a child script printed last."""
        return json.loads(self.out[0].strip().splitlines()[-1])


def measure(*cmds: list[str]) -> Run:
    """Run the commands together; wait for all (exit status checked)."""
    files, procs = [], []
    os.sync()  # earlier writes are written back before anything is timed
    t = time.perf_counter()
    for cmd in cmds:
        o, e = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        procs.append(subprocess.Popen(cmd, stdout=o, stderr=e))
        files.append((o, e))
    sampler = TreeSampler([p.pid for p in procs])
    sampler.start()
    maxrss, cpu = 0, 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        maxrss = max(maxrss, usage.ru_maxrss * 1024)  # KiB on Linux
        cpu += usage.ru_utime + usage.ru_stime
    seconds = time.perf_counter() - t
    sampled = sampler.stop()
    outs = []
    for cmd, p, (o, e) in zip(cmds, procs, files, strict=True):
        o.seek(0)
        e.seek(0)
        out, err = o.read().decode(), e.read().decode()
        o.close()
        e.close()
        if p.returncode:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n"
                               f"{err[-3000:]}")
        outs.append(out)
    return Run(seconds, max(maxrss, sampled) / MB, outs, cpu)


def runs(n: int, step: Callable[[], Run], setup: Callable[[], None] | None = None,
         seconds: Callable[[Run], float] = lambda r: r.seconds) -> tuple[float, float, Run]:
    """Median seconds and largest peak (MB) of `n` runs of `step`, and its last run; `setup()` untimed."""
    times, peak, last = [], 0.0, None
    for _ in range(n):
        if setup is not None:
            setup()
        last = step()
        times.append(seconds(last))
        peak = max(peak, last.peak_mb)
    return statistics.median(times), peak, last


def cached_bytecode() -> None:
    """Every command from here on runs with its modules' bytecode cached, as an installed package has it (pip
    compiles it at install; the checkout's `__pycache__` folders are ignored by git): with `$PYTHONDONTWRITEBYTECODE`
    set, as some shells set it, each command compiled the modules it imports from source, every run (cProfile of
    `timeline history`: 105 compiles, 0.13 s). The package is compiled first, untimed."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(python("import compileall, os, timeline; "
                          "compileall.compile_dir(os.path.dirname(timeline.__file__), quiet=1)"), check=True)


def timeline(store: str | Path, *args: str) -> list[str]:
    return [*TIMELINE, "--store", str(store), *map(str, args)]


def python(child: str, *args: str | Path) -> list[str]:
    return [sys.executable, "-c", child, *map(str, args)]


def in_child(r: Run) -> float:
    return r.child()["seconds"]


# -- the files: counted, split, extended line by line ------------------------------------------------------
def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def split_by_patient(path: Path, parts: int, folder: Path) -> list[Path]:
    """The cohort's patients dealt round-robin into `parts` files (a patient's lines are consecutive)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{i + 1}-of-{parts}.jsonl" for i in range(parts)]
    outs = [open(p, "w", encoding="utf-8", buffering=1 << 20) for p in paths]
    key, last, k = '"patient_id":"', None, -1
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                i = line.index(key) + len(key)
                pid = line[i:line.index('"', i)]
                if pid != last:
                    last, k = pid, k + 1
                outs[k % parts].write(line)
    finally:
        for o in outs:
            o.close()
    return paths


def more_events(patients: int, seed: int, events: int, out: Path) -> tuple[int, int]:
    """1% more events (at least 1), written to `out`, as `benchmarks/projections.py` makes them (a routine
    import: about 80% for new patients, the rest new contacts of 1% of the existing ones), so both
    benchmarks' catch-ups are the same work. Returns (events, patients touched)."""
    from projections import extra_events

    rows = extra_events(patients, seed, max(1, events // 100))
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return len(rows), len({row["patient_id"] for row in rows})


def one_event_catch_up(store: str | Path, pid: str, on: date, work: Path, n: int) -> float:
    """Median seconds of `timeline project` after one more event of one known patient (`n` runs, each after its
    own event, appended by `timeline ingest`, untimed): what a catch-up costs before its rows (start-up, and
    every rule run once on one patient, the file opened, committed and closed)."""
    one, times = work / "one-more-event.jsonl", []
    for k in range(n):
        one.write_text(json.dumps({"type": "follow_up", "patient_id": pid, "occurred_on": on.isoformat(),
                                   "disease_status": "not_assessed", "note": f"one more contact {k}"}) + "\n")
        if new_count(measure(timeline(store, "ingest", one)).out[0]) != 1:
            raise RuntimeError(f"one more event of {pid}: not stored")
        times.append(measure(timeline(store, "project")).seconds)
    return statistics.median(times)


def reads(store: str | Path, day: str, short: int, add: Callable[..., None], targets: bool = True) -> str:
    """Start-up, and the reads beyond it (cohort as-of, one patient as-of, history), `short` runs each; each run
    of a read paired with a run of the start-up just before it (the machine's load changes between them less
    than over the whole benchmark). `targets`: beside the targets of issue 15's point 1 (else values only).
    Returns the patient read (`busy_patient`)."""
    startup = lambda: measure(timeline(store, "sql", "select 1")).seconds  # noqa: E731
    pid = busy_patient(store, day)
    steps = [
        (f"cohort as-of {day} (count(*) from endpoints)",
         ["sql", "select count(*) from endpoints", "--as-of", day, "--timeout", "0"], 5.0),  # the work, not the guard
        (f"one patient as-of, command ({pid})",
         ["sql", f"select * from endpoints where patient_id = '{pid}'", "--as-of", day], 0.1),
        (f"timeline history {pid}", ["history", pid], 0.1),
    ]
    starts, rows = [startup() for _ in range(short)], []
    for name, cmd, target in steps:
        differences, peak = [], 0.0
        for _ in range(short):
            starts.append(startup())
            r = measure(timeline(store, *cmd))
            differences.append(r.seconds - starts[-1])
            peak = max(peak, r.peak_mb)
        beyond = statistics.median(differences)
        value = f"{beyond * 1e3:,.0f} ms" if target < 1 else f"{beyond:.2f} s"
        rows.append((f"{name}, beyond start-up", value,
                     ("" if not targets else f"<= {target * 1e3:.0f} ms" if target < 1 else f"<= {target:.0f} s"),
                     beyond <= target if targets else None))
        print(f"  {name}: {beyond:.3f} s beyond start-up (median of paired differences), peak {peak:,.0f} MB",
              flush=True)
    t_start = statistics.median(starts)
    print(f"  start-up {t_start:.3f} s (median of {len(starts)}; from {min(starts):.3f} to {max(starts):.3f} s)",
          flush=True)
    add(f"start-up (timeline sql \"select 1\", {len(starts)} runs)", f"{t_start:.3f} s", "<= 0.25 s" if targets else "",
        t_start <= 0.25 if targets else None)
    # what the machine gives any command before it does anything: an interpreter that imports DuckDB (which every
    # command reading the projection file needs), measured here, since the start-up target is absolute
    bare = statistics.median(measure([sys.executable, "-c", "import duckdb"]).seconds for _ in range(short))
    add("  for reference: python -c \"import duckdb\" on this machine", f"{bare:.3f} s")
    for row in rows:
        add(*row)
    return pid


def busy_patient(store: str, day: str) -> str:
    """The patient with the most events by `day` (the one-patient reads are of a course then under way, not of
    a patient not yet registered), from the built projection file, read-only."""
    import duckdb

    with duckdb.connect(str(Path(store) / "projections.duckdb"), read_only=True) as con:
        return con.execute("SELECT patient_id FROM events WHERE occurred_on <= ? GROUP BY ALL "
                           "ORDER BY count(*) DESC, patient_id LIMIT 1", [day]).fetchone()[0]


def new_count(out: str) -> int:
    """The N of `timeline ingest`'s "FILE: N new, M already present, K corrected" lines, added up."""
    return sum(int(line.split(": ", 1)[1].split(" new")[0].replace(",", ""))
               for line in out.splitlines() if " new, " in line)


# -- PostgreSQL: a fresh schema per run --------------------------------------------------------------------
class Postgres:
    def __init__(self, url: str):
        import psycopg

        self.psycopg, self.url, self.schemas = psycopg, url.split("?")[0], []
        base, _, dbname = self.url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", connect_timeout=5, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}"')

    def fresh(self) -> str:
        """A new empty store (its tables made) in a new schema; its URL."""
        from timeline.app import Timeline

        schema = f"scale_{uuid.uuid4().hex[:12]}"
        self.schemas.append(schema)
        url = f"{self.url}?schema={schema}"
        Timeline.open(url).close()
        return url

    def drop(self, url: str | None = None) -> None:
        """Drop the schema of `url` (None: every schema this run made)."""
        names = [url.rpartition("schema=")[2]] if url else list(self.schemas)
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
                self.schemas.remove(name)


def fresh_folder(folder: Path, create: bool = False) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    if create:
        from timeline.app import Timeline

        Timeline.open(folder).close()
    return folder


# -- the figures -----------------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    value: str
    target: str = ""
    ok: bool | None = None


def ingest_figures(store_of: Callable[[], str | Path], files: list[Path], events: int, repeat: int,
                   done: Callable[[str | Path], None]) -> tuple[float, float, str | Path, float]:
    """Median events/s and peak MB of `timeline ingest` of `files` (one process per file, together) into a
    fresh store each run; the last run's store is kept (returned, third), the others passed to `done`; fourth,
    the median CPU seconds (user + system of the ingest processes and their parse workers) per event."""
    stores: list[str | Path] = []
    cpu: list[float] = []

    def step() -> Run:
        stores.append(store_of())
        r = measure(*(timeline(stores[-1], "ingest", f) for f in files))
        stored = sum(new_count(o) for o in r.out)
        if stored != events:
            raise RuntimeError(f"ingest stored {stored:,} events, the file holds {events:,}")
        cpu.append(r.cpu / events)
        return r

    t, peak, _ = runs(repeat, step)
    for s in stores[:-1]:
        done(s)
    return events / t, peak, stores[-1], statistics.median(cpu)


def essentials(path: Path, work: Path, repeat: int) -> dict[str, Any]:
    """The CPU per event (medians of `repeat` runs) of what any ingest that validates every event with the event
    model and stores it in SQLite must do, on the first `ESSENTIALS_LINES` lines of the file (module docstring)."""
    got = [measure(python(ESSENTIALS_CHILD, path, work / "essentials.sqlite", ESSENTIALS_LINES)).child()
           for _ in range(repeat)]
    validate = statistics.median(g["validate"] for g in got)
    insert = statistics.median(g["insert"] for g in got)
    return {"lines": got[0]["lines"], "validate": validate, "insert": insert, "cpu": validate + insert}


def build_figures(store: str | Path, repeat: int, floor: Callable[[], Run]) -> dict[str, Any]:
    """`repeat` rounds of (the floor, the build in-process, the build through the command), each build's ratio
    taken against the floor of its own round: the machine's speed drifts by a quarter within minutes, so a floor
    measured minutes before the builds can put that drift into the ratio. Medians of the times and of the
    ratios; the largest peaks; the floor's last run (its JSON line: rows, columns, dates)."""
    got: dict[str, list[float]] = {"floor": [], "in": [], "cmd": [], "in_ratio": [], "cmd_ratio": []}
    peaks = {"floor": 0.0, "in": 0.0, "cmd": 0.0}
    for _ in range(repeat):
        f = floor()
        i = measure(python(BUILD_CHILD, store))
        c = measure(timeline(store, "project", "--rebuild"))
        t_floor, t_in = in_child(f), in_child(i)
        got["floor"].append(t_floor)
        got["in"].append(t_in)
        got["cmd"].append(c.seconds)
        got["in_ratio"].append(t_in / t_floor)
        got["cmd_ratio"].append(c.seconds / t_floor)
        for key, run in (("floor", f), ("in", i), ("cmd", c)):
            peaks[key] = max(peaks[key], run.peak_mb)
    medians = {key: statistics.median(values) for key, values in got.items()}
    return {**medians, **{f"{key}_peak": mb for key, mb in peaks.items()}, "events": i.child()["events"],
            "floor_run": f}


def main(argv: list[str] | None = None) -> int:
    def more(ap) -> None:
        ap.add_argument("--workdir", type=Path, default=OUT, help="where the temporary folder goes")
        ap.add_argument("--store", default="sqlite",
                        help="sqlite (default), or a postgresql:// URL to add the PostgreSQL figures")
        ap.add_argument("--registry", action="store_true",
                        help="the figures of the 1,000,000-patient run only (issue 15, point 2), each step once, "
                             "the cohort ingested in parts (module docstring)")
        ap.add_argument("--part-patients", type=int, default=100_000,
                        help="with --registry: patients per ingested file (default 100,000)")

    args = arguments(__doc__, argv, more)
    pg_url = args.store if args.store.startswith(("postgresql://", "postgres://")) else None
    if pg_url is None and args.store != "sqlite":
        raise SystemExit(f"--store {args.store!r}: give sqlite or a postgresql:// URL")
    short, api_n, R = max(args.repeat, 5), max(args.repeat, 15), args.repeat
    if args.registry:
        if pg_url is not None:
            raise SystemExit("--registry runs on SQLite: leave out --store")
        if args.part_patients < 1:
            raise SystemExit(f"--part-patients takes a whole number >= 1, got {args.part_patients}")
        return registry(args)

    path = cohort_file(args.patients, args.seed)
    events, size_mb = count_lines(path), path.stat().st_size / 1e6
    print(f"scale benchmark: {args.patients:,} patients, {events:,} events, {size_mb:,.0f} MB JSON Lines, "
          f"{os.cpu_count()} cores, {R} run(s)", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    load, speed = os.getloadavg(), machine_speed()
    for name in ("TIMELINE_STORE", "TIMELINE_PROJECTIONS"):
        os.environ.pop(name, None)
    figures: list[Figure] = []
    compare: list[tuple[str, str, str]] = []
    pg = Postgres(pg_url) if pg_url else None
    try:
        with tempfile.TemporaryDirectory(prefix=f"scale-{args.patients}-", dir=args.workdir) as tmp:
            work = Path(tmp)
            # the projection files of PostgreSQL stores go here, not to the user's data directory
            os.environ["TIMELINE_PROJECTIONS_DIR"] = str(work / "server-projections")
            cached_bytecode()
            _figures(args, path, events, work, pg, figures, compare, short, api_n)
    finally:
        if pg is not None and pg.schemas:
            pg.drop()

    print()
    print(f"scale benchmark: N = {args.patients:,} patients, {events:,} events, {size_mb:,.0f} MB JSON Lines, "
          f"{os.cpu_count()} cores, median of {R} run(s) ({short} for the short commands, {api_n} for "
          "Timeline.as_of)")
    summary(load, speed, figures)
    if compare:
        print()
        table([("figure", "SQLite", "PostgreSQL"), *compare])
    return 0


LOOP = 10_000_000
FRESH_MB = 256


@dataclass(frozen=True)
class Speed:
    """How fast this machine is now (medians of 3): `loop`, seconds of an empty Python loop of `LOOP` iterations
    (the processor); `fresh`, seconds to allocate `FRESH_MB` MB and write it once (the kernel mapping new pages:
    every DuckDB step and import fills fresh memory, and on a virtual machine a new page can cost far more than
    the loop's speed suggests: 3.2 us a 4 KiB page on the one of 2026-12-01). The absolute targets (events/s,
    seconds) hold on one machine; runs on different machines, or on one whose speed drifts, compare through these."""

    loop: float
    fresh: float

    def __str__(self) -> str:
        return (f"an empty Python loop of {LOOP:,} iterations {self.loop:.2f} s, {FRESH_MB} MB of fresh memory "
                f"allocated and written {self.fresh:.2f} s")


def machine_speed() -> Speed:
    def loop() -> float:
        t = time.perf_counter()
        for _ in range(LOOP):
            pass
        return time.perf_counter() - t

    def fresh() -> float:
        t = time.perf_counter()
        block = bytearray(FRESH_MB * MB)  # zero-filled: every page touched once
        dt = time.perf_counter() - t
        del block
        return dt

    return Speed(statistics.median(loop() for _ in range(3)), statistics.median(fresh() for _ in range(3)))


def summary(load: tuple[float, float, float], speed: Speed, figures: list[Figure]) -> None:
    """The load average and the machine's speed at the start and now, then every figure beside its target,
    PASS or FAIL."""
    ok = {True: "PASS", False: "FAIL", None: ""}
    end = os.getloadavg()[0]
    print(f"load average (1 min) at the start {load[0]:.1f}, at the end {end:.1f}"
          + (": other work on the machine slows every figure" if max(load[0], end) > 1 else ""))
    print(f"machine speed at the start: {speed}")
    print(f"machine speed at the end:   {machine_speed()}")
    table([("figure", "value", "target", "result"), *((f.name, f.value, f.target, ok[f.ok]) for f in figures)])


def table(rows: list[tuple[str, ...]]) -> None:
    """Rows as columns separated by |: the first column left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        print("  " + " | ".join(cells).rstrip())


def registry(args) -> int:
    """`--registry`: the figures of issue 15, point 2, each step once (module docstring)."""
    from timeline.projections.partitions import Plan
    from timeline.testing.cohort import write_cohort_jsonl

    load, speed = os.getloadavg(), machine_speed()
    for name in ("TIMELINE_STORE", "TIMELINE_PROJECTIONS"):
        os.environ.pop(name, None)
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    add = lambda *a: figures.append(Figure(*a))  # noqa: E731
    parts = -(-args.patients // args.part_patients)
    print(f"scale benchmark, registry run: {args.patients:,} patients ingested as {parts} file(s) of up to "
          f"{args.part_patients:,}, {os.cpu_count()} cores, each step once", flush=True)
    events, ingest_s, ingest_peak, size = 0, 0.0, 0.0, 0
    work = Path(tempfile.mkdtemp(prefix=f"registry-{args.patients}-", dir=args.workdir))
    store = work / "store"
    cached_bytecode()
    try:
        for k in range(parts):  # one part on disk at a time: written, ingested, deleted
            lo, hi = k * args.part_patients, min(args.patients, (k + 1) * args.part_patients)
            part = work / f"patients-{lo}-to-{hi - 1}.jsonl"
            n = write_cohort_jsonl(part, hi - lo, seed=args.seed, first=lo)  # the parts make up the same cohort
            size += part.stat().st_size
            r = measure(timeline(store, "ingest", part))
            part.unlink()
            if new_count(r.out[0]) != n:
                raise RuntimeError(f"{part.name}: {new_count(r.out[0]):,} events stored of {n:,}")
            events, ingest_s, ingest_peak = events + n, ingest_s + r.seconds, max(ingest_peak, r.peak_mb)
            print(f"  ingest {k + 1}/{parts} (patients {lo:,} to {hi - 1:,}): {n:,} events in {r.seconds:.1f} s = "
                  f"{n / r.seconds:,.0f} events/s, peak {r.peak_mb:,.0f} MB; "
                  f"{shutil.disk_usage(work).free / 1e9:,.0f} GB free", flush=True)
        add(f"ingest ({parts} files one after another, SQLite)", f"{events / ingest_s:,.0f} events/s")
        add("  peak memory of the ingest", f"{ingest_peak:,.0f} MB")

        plan = Plan()  # what `timeline project --rebuild` chooses on this machine
        r = measure(timeline(store, "project", "--rebuild"))
        print(f"  full build: {r.seconds:.1f} s, peak {r.peak_mb:,.0f} MB ({r.out[0].strip()})", flush=True)
        add(f"full build, command (project --rebuild: {plan.count(events)} partition(s), memory limit {plan.limit})",
            f"{r.seconds:.1f} s")
        add("  peak memory of the build", f"{r.peak_mb:,.0f} MB", "<= 8,192 MB", r.peak_mb <= 8192)
        for what, name in (("store", "events.sqlite"), ("projection file", "projections.duckdb")):
            used = sum(p.stat().st_blocks * 512 for p in store.glob(name + "*") if p.is_file())
            add(f"size of the {what} ({name}, with its write-ahead log)",
                f"{used / 1e9:,.1f} GB" if used >= 1e9 else f"{used / 1e6:,.0f} MB")

        import duckdb

        with duckdb.connect(str(store / "projections.duckdb"), read_only=True) as con:
            first, last = con.execute("SELECT min(first_event_on), max(last_event_on) FROM patients").fetchone()
        day = (first + (last - first) / 2).isoformat()
        print(f"  clinical dates {first} to {last}", flush=True)
        reads(store, day, 3, add, targets=False)
    except BaseException:  # an hour of ingest is not thrown away: the figures so far, and the store, are kept
        print(f"\nstopped; the figures so far (the store is kept in {work}: delete it when done):")
        summary(load, speed, figures)
        raise
    shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"scale benchmark, registry run: N = {args.patients:,} patients, {events:,} events, {size / 1e6:,.0f} MB "
          f"JSON Lines in {parts} file(s), {os.cpu_count()} cores, each step once (3 runs of the reads)")
    summary(load, speed, figures)
    return 0


def _figures(args, path: Path, events: int, work: Path, pg: Postgres | None, figures: list[Figure],
             compare: list[tuple[str, str, str]], short: int, api_n: int) -> None:
    R = args.repeat
    add = lambda *a: figures.append(Figure(*a))  # noqa: E731
    rm = lambda s: shutil.rmtree(s, ignore_errors=True)  # noqa: E731
    mem = lambda mb: f"{mb:,.0f} MB"  # noqa: E731

    # ingest (1 writer) into an empty SQLite store; the last store is the one every later step reads
    rate, peak, store, cpu = ingest_figures(lambda: fresh_folder(work / f"sqlite-{uuid.uuid4().hex[:6]}"),
                                            [path], events, R, rm)
    cores = os.cpu_count() or 1
    print(f"  ingest: {rate:,.0f} events/s, peak {peak:,.0f} MB, {cpu * 1e6:.1f} us of CPU per event", flush=True)
    add("ingest (timeline ingest, SQLite)", f"{rate:,.0f} events/s", ">= 150,000", rate >= 150_000)
    add("  peak memory of the ingest", mem(peak))
    # what the work costs, whatever the overlap: the CPU of every process of the ingest, per event; the cores
    # cannot run more events per second than cores / that (150,000/s on 2 cores needs at most 13.3 us)
    add("  CPU of the ingest (user + system, every process), per event",
        f"{cpu * 1e6:.1f} us: at most {cores / cpu:,.0f}/s on {cores} cores")
    # the same cores' bound for the work any validating ingest into this store does, measured now: each line
    # validated by the event model (pydantic) and inserted as a stored row; the rest of the ingest's CPU is
    # its own (canonical JSON, ids, idempotency, the index of ids, the parse workers' hand-over)
    ess = essentials(path, work, R)
    add(f"  its essential work, per event (the first {ess['lines']:,} lines: validated by the event model, "
        "inserted as stored rows)", f"{ess['cpu'] * 1e6:.1f} us ({ess['validate'] * 1e6:.1f} validate + "
                                    f"{ess['insert'] * 1e6:.1f} insert): at most {cores / ess['cpu']:,.0f}/s on "
                                    f"{cores} cores")
    add("  the ingest's CPU per event over its essential work", f"{cpu / ess['cpu']:.2f}x")
    sqlite_ingest = (rate, peak)
    at_ingest = len(figures)  # the ingest over the floor goes here, once the floor is measured

    # the floor: DuckDB reading every field of the file into a table
    db = work / "floor.duckdb"

    def no_floor_file() -> None:
        for suffix in ("", ".wal"):
            Path(str(db) + suffix).unlink(missing_ok=True)

    def floor_run() -> Run:
        no_floor_file()
        try:
            return measure(python(FLOOR_CHILD, path, db))
        finally:
            no_floor_file()

    # full build, in-process and through the command, in rounds with the floor (`build_figures`)
    b = build_figures(store, R, floor_run)
    floor = b["floor_run"].child()
    if floor["rows"] != events:
        raise RuntimeError(f"the floor read {floor['rows']:,} rows, the file holds {events:,}")
    if b["events"] != events:
        raise RuntimeError(f"the build read {b['events']:,} events, the store holds {events:,}")
    first, last_day = date.fromisoformat(floor["first"][:10]), date.fromisoformat(floor["last"][:10])
    day = (first + (last_day - first) / 2).isoformat()
    print(f"  floor: {b['floor']:.2f} s ({floor['columns']} columns), clinical dates {first} to {last_day}", flush=True)
    print(f"  full build: in-process {b['in']:.2f} s, command {b['cmd']:.2f} s; each over the floor of its round: "
          f"{b['in_ratio']:.2f}x, {b['cmd_ratio']:.2f}x", flush=True)
    # the same events through the whole ingest, over DuckDB's read of them: the machine's speed divides out (the
    # events/s target is absolute; at 10,000 patients: 127,833/s on one machine, 39,440/s on one whose floor took
    # 2.5x longer)
    figures.insert(at_ingest, Figure("  its time over the floor (below: DuckDB reading the same file)",
                                     f"{events / rate:.2f} s = {events / rate / b['floor']:.1f}x floor"))
    add("floor: DuckDB read_json, every field", f"{b['floor']:.2f} s")
    add("  peak memory of the floor", mem(b["floor_peak"]))
    for what, key in (("in-process (Timeline.project)", "in"), ("command (project --rebuild)", "cmd")):
        ratio = b[f"{key}_ratio"]
        add(f"full build, {what}", f"{b[key]:.2f} s = {ratio:.2f}x floor", "<= 2x floor", ratio <= 2)
        add(f"  peak memory, {what.split(' (')[0]}", mem(b[f"{key}_peak"]), "<= 4,096 MB", b[f"{key}_peak"] <= 4096)

    pid = reads(store, day, short, add)
    api = measure(python(ONE_PATIENT_CHILD, store, day, pid, api_n)).child()
    add(f"one patient as-of, Timeline.as_of(patients=[{pid}])", f"{api['seconds'] * 1e3:,.0f} ms", "<= 100 ms",
        api["seconds"] <= 0.1)
    add("  its first call in a fresh process (imports)", f"{api['first'] * 1e3:,.0f} ms")
    print(f"  Timeline.as_of one patient: {api['seconds'] * 1e3:.1f} ms ({api['rows']} rows), first call "
          f"{api['first'] * 1e3:.0f} ms", flush=True)

    # catch-up after 1% more events, on the same store (its last step: the reads above saw the cohort alone)
    extra = work / "one-percent-more.jsonl"
    n_extra, touched = more_events(args.patients, args.seed, events, extra)
    added = new_count(measure(timeline(store, "ingest", extra)).out[0])
    if added != n_extra:
        raise RuntimeError(f"the 1% more: {added:,} stored of {n_extra:,}")
    built, duck = work / "built.duckdb", Path(store) / "projections.duckdb"
    shutil.copy(duck, built)

    def restore() -> None:
        Path(str(duck) + ".wal").unlink(missing_ok=True)
        shutil.copy(built, duck)

    # in rounds: the catch-up, then `project --rebuild` of the same store, its share taken within the round
    catches, rebuilds, shares, peak_catch = [], [], [], 0.0
    for _ in range(R):
        restore()
        last = measure(timeline(store, "project"))
        rebuilt = measure(timeline(store, "project", "--rebuild"))
        catches.append(last.seconds)
        rebuilds.append(rebuilt.seconds)
        shares.append(last.seconds / rebuilt.seconds)
        peak_catch = max(peak_catch, last.peak_mb)
    t_catch, t_rebuild, share = (statistics.median(x) for x in (catches, rebuilds, shares))
    limit = 0.05 if args.patients >= 100_000 else 0.10
    at = "N >= 100,000" if args.patients >= 100_000 else "N = 10,000"
    print(f"  catch-up: {t_catch:.2f} s ({last.out[0].strip()}); rebuild of the same store {t_rebuild:.2f} s",
          flush=True)
    add(f"catch-up after 1% more events ({n_extra:,}, {touched:,} patients)",
        f"{t_catch:.2f} s = {share:.1%} of build", f"<= {limit:.0%} ({at})", share <= limit)
    add("  peak memory of the catch-up", mem(peak_catch))
    add("  the rebuild of the same store, paired with each catch-up", f"{t_rebuild:.2f} s")
    t_none, _, _ = runs(short, lambda: measure(timeline(store, "project")))  # the file is now up to date
    add("  its fixed part: timeline project with nothing new", f"{t_none:.2f} s = {t_none / t_rebuild:.1%} of build")
    t_one = one_event_catch_up(store, pid, last_day, work, short)
    add("  a catch-up after one more event (every rule, 1 patient)", f"{t_one:.2f} s = {t_one / t_rebuild:.1%} of build")

    if pg is None:
        return
    # PostgreSQL beside SQLite: 1 writer, 4 concurrent writers, the full build
    parts = split_by_patient(path, 4, work / "parts")
    rate_pg, peak_pg, pg_store, _ = ingest_figures(pg.fresh, [path], events, R, pg.drop)
    print(f"  PostgreSQL ingest, 1 writer: {rate_pg:,.0f} events/s", flush=True)
    rate_pg4, peak_pg4, s4, _ = ingest_figures(pg.fresh, parts, events, R, pg.drop)
    pg.drop(s4)
    print(f"  PostgreSQL ingest, 4 writers: {rate_pg4:,.0f} events/s", flush=True)
    rate_sq4, peak_sq4, s4, _ = ingest_figures(
        lambda: fresh_folder(work / f"sqlite4-{uuid.uuid4().hex[:6]}", create=True), parts, events, R, rm)
    rm(s4)
    print(f"  SQLite ingest, 4 writers: {rate_sq4:,.0f} events/s", flush=True)
    bp = build_figures(pg_store, R, floor_run)
    if bp["events"] != events:
        raise RuntimeError(f"the build read {bp['events']:,} events, the store holds {events:,}")
    print(f"  PostgreSQL full build: in-process {bp['in']:.2f} s, command {bp['cmd']:.2f} s", flush=True)
    add("ingest (timeline ingest, PostgreSQL, 1 writer)", f"{rate_pg:,.0f} events/s", ">= 150,000",
        rate_pg >= 150_000)
    add("ingest (PostgreSQL, 4 concurrent writers)", f"{rate_pg4:,.0f} events/s", ">= 150,000", rate_pg4 >= 150_000)
    for what, key in (("in-process", "in"), ("command", "cmd")):
        ratio = bp[f"{key}_ratio"]
        add(f"full build from PostgreSQL, {what}", f"{bp[key]:.2f} s = {ratio:.2f}x floor", "<= 2x floor",
            ratio <= 2)
        add(f"  peak memory, {what}", mem(bp[f"{key}_peak"]), "<= 4,096 MB", bp[f"{key}_peak"] <= 4096)
    rate_mem = lambda r, p: f"{r:,.0f}/s, {p:,.0f} MB"  # noqa: E731
    build_mem = lambda s, p: f"{s:.2f} s, {p:,.0f} MB"  # noqa: E731
    compare += [
        ("ingest, 1 writer (events/s, peak)", rate_mem(*sqlite_ingest), rate_mem(rate_pg, peak_pg)),
        ("ingest, 4 concurrent writers", rate_mem(rate_sq4, peak_sq4), rate_mem(rate_pg4, peak_pg4)),
        ("full build, in-process (s, peak)", build_mem(b["in"], b["in_peak"]), build_mem(bp["in"], bp["in_peak"])),
        ("full build, project --rebuild", build_mem(b["cmd"], b["cmd_peak"]), build_mem(bp["cmd"], bp["cmd_peak"])),
    ]


if __name__ == "__main__":
    sys.exit(main())
