"""Where a projection run spends its time, statement by statement, here and in another checkout (issue 14).

    python benchmarks/statements.py [--patients 10000] [--repeat 3] [--against CHECKOUT]

Times every SQL statement the projection runner sends to DuckDB (and the close of its connection) in three
runs, as `benchmarks/projections.py` makes them: the full build of the 10,000-patient benchmark store; a
catch-up after 1% more events; a catch-up after one event (its fixed part). Each statement is put under the
table it makes or changes (its stage table, its DELETE and INSERT, or its view), the rest under "log,
visible events, tracking" and "commit and close". Prints, per run, the median of each table's time over the
repeats and the run's total.

With `--against CHECKOUT` the same is measured in the other checkout (its own code, store, cohort generator and
1% events: each checkout's `benchmarks/projections.py` makes them), the two interleaved run by run, so that the
same load falls on both; the tables are printed side by side: those both files have, those only one has. This is
how a before/after comparison of unequal table sets is read table by table (a machine that slows down or speeds
up between two benchmark runs moves every figure of one of them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = ("full build", "catch-up after 1% more events", "catch-up after one event")
OTHER = "log, visible events, tracking"
CLOSE = "commit and close"
# the table a statement makes or changes: CREATE [OR REPLACE] [TEMP] TABLE|VIEW x, DROP, DELETE FROM x, INSERT INTO x
_TARGET = re.compile(r'^(?:CREATE (?:OR REPLACE )?(?:TEMP )?(?:TABLE|VIEW)(?: IF NOT EXISTS)?|DROP (?:TABLE|VIEW)'
                     r'(?: IF EXISTS)?|DELETE FROM|INSERT INTO)\s+((?:"?[a-z_]+"?\.)*"?[a-z_0-9]+"?)', re.IGNORECASE)
_STAGE = re.compile(r"^_(?:timeline_stage|stage|build)_|_\d+$|_rest$")  # stage tables of either layout


class DuckFile:
    """A benchmark's DuckDB file, and a copy kept to start each timed run from (write-ahead log set aside)."""

    def __init__(self, path: Path, kept: Path):
        self.path, self.kept = path, kept

    def empty(self) -> None:
        for suffix in ("", ".wal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def keep(self) -> None:
        shutil.copy(self.path, self.kept)

    def restore(self) -> None:
        Path(str(self.path) + ".wal").unlink(missing_ok=True)
        shutil.copy(self.kept, self.path)
        os.sync()  # its writeback is not the timed run's

    def remove(self) -> None:
        self.empty()
        self.kept.unlink(missing_ok=True)


def table_of(sql: str, tables: set[str]) -> str:
    """The projection table a statement works on, else OTHER (the log, the visible events, the tracking row)."""
    if sql in ("COMMIT", "close"):
        return CLOSE
    m = _TARGET.match(sql)
    if m is None:
        return OTHER
    name = _STAGE.sub("", m.group(1).split(".")[-1].strip('"'))
    name = _STAGE.sub("", name)  # `_stage_events_0`: the prefix, then the split's suffix
    return name if name in tables else OTHER


def measure(patients: int, seed: int, repeat: int) -> dict[str, dict[str, float]]:
    """In this process (the checkout on sys.path): per run, the median seconds of each table's statements."""
    sys.path.insert(0, str(Path.cwd() / "benchmarks"))
    import duckdb
    import projections as bench  # this checkout's benchmark: its store, its 1% events
    from peer import OUT, cohort_file

    import timeline.projections.runner as runner
    from timeline.app import Timeline

    tl = bench.store_for(cohort_file(patients, seed), patients, seed)
    work = OUT / "statements-bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stores = {}
    for name, events in (("1%", lambda: bench.extra_events(patients, seed, tl.store.max_position() // 100)),
                         ("one", lambda: [{"type": "follow_up", "patient_id": "SYN-000042", "occurred_on": "2026-11-01",
                                           "disease_status": "not_assessed"}])):
        shutil.copytree(tl.store.data_dir, work / name, ignore=shutil.ignore_patterns("*.duckdb*"))
        more = Timeline.open(work / name)
        more.ingest(events(), what=name)
        more.close()
        stores[name] = Timeline.open(work / name).store
    os.sync()

    spent: list[tuple[float, str]] = []

    class Timed:  # the runner's connection, each statement timed
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            t = time.perf_counter()
            try:
                return self._con.execute(sql, *args)
            finally:
                spent.append((time.perf_counter() - t, " ".join(sql.split())))

        def close(self):
            t = time.perf_counter()
            self._con.close()
            spent.append((time.perf_counter() - t, "close"))

        def __getattr__(self, name):
            return getattr(self._con, name)

    connect = duckdb.connect
    runner.duckdb = type("TimedDuckDB", (), {"connect": staticmethod(lambda *a, **k: Timed(connect(*a, **k))),
                                             "Error": duckdb.Error})
    file = DuckFile(work / "projections.duckdb", work / "built.duckdb")
    path = file.path

    out: dict[str, dict[str, float]] = {}
    for run, store, setup, rebuild in ((RUNS[0], tl.store, file.empty, True),
                                       (RUNS[1], stores["1%"], file.restore, False),
                                       (RUNS[2], stores["one"], file.restore, False)):
        per: dict[str, list[float]] = {}
        for _ in range(repeat):
            setup()
            os.sync()
            spent.clear()
            t = time.perf_counter()
            runner.Projector(store, path).run(rebuild=rebuild)
            total = time.perf_counter() - t
            tables = {r[0] for r in connect(str(path), read_only=True).execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT internal UNION SELECT view_name FROM duckdb_views() "
                "WHERE NOT internal").fetchall()} - {"log", "_tracking", "_fact_versions", "_visible_events"}
            sums: dict[str, float] = {}
            for seconds, sql in spent:
                key = table_of(sql, tables)
                sums[key] = sums.get(key, 0.0) + seconds
            sums["(total)"] = total
            for key, seconds in sums.items():
                per.setdefault(key, []).append(seconds)
        out[run] = {key: statistics.median(ts) for key, ts in per.items()}
        if rebuild:
            file.keep()
    shutil.rmtree(work, ignore_errors=True)
    return out


def run_in(checkout: Path, args) -> dict[str, dict[str, float]]:
    """`measure` in a process of its own, importing `checkout`'s timeline package."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, str(HERE / "statements.py"), "--measure", "--patients", str(args.patients),
                           "--seed", str(args.seed), "--repeat", str(args.repeat)],
                          cwd=checkout, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from peer import arguments

    args = arguments(__doc__, argv, lambda ap: (
        ap.add_argument("--against", metavar="CHECKOUT", help="also measure another checkout, interleaved"),
        ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)))
    if args.measure:
        print(json.dumps(measure(args.patients, args.seed, args.repeat)))
        return 0
    here = HERE.parent
    other = Path(args.against).resolve() if args.against else None
    results: dict[str, list[dict]] = {"here": [], "other": []}
    for _ in range(args.repeat):  # whole measurements interleaved: here, other, here, other, …
        results["here"].append(run_in(here, args))
        if other is not None:
            results["other"].append(run_in(other, args))

    def medians(runs: list[dict]) -> dict[str, dict[str, float]]:
        return {run: {key: statistics.median(r[run].get(key, 0.0) for r in runs) for key in runs[0][run]}
                for run in RUNS}

    here_m = medians(results["here"])
    other_m = medians(results["other"]) if other is not None else None
    print(f"statements benchmark: {args.patients:,} patients, medians of {args.repeat} measurements of {args.repeat} "
          f"runs each{', interleaved with ' + str(other) if other else ''}, {os.cpu_count()} cores")
    for run in RUNS:
        mine = here_m[run]
        theirs = other_m[run] if other_m else {}
        print(f"\n  {run}: {mine['(total)']:.3f} s here" + (f", {theirs['(total)']:.3f} s there "
                                                            f"({mine['(total)'] / theirs['(total)'] - 1:+.0%})"
                                                            if theirs else ""))
        keys = [k for k in mine if k != "(total)"]
        both = [k for k in keys if k in theirs] if theirs else keys
        only_here = [k for k in keys if theirs and k not in theirs]
        only_there = [k for k in theirs if k not in mine and k != "(total)"]
        rows = sorted(both, key=lambda k: -mine[k])
        width = max((len(k) for k in keys + only_there), default=10)
        header = f"    {'table':<{width}}  {'here (ms)':>10}" + (f"  {'there (ms)':>10}" if theirs else "")
        print(header)
        for k in rows:
            print(f"    {k:<{width}}  {mine[k] * 1e3:10.1f}" + (f"  {theirs[k] * 1e3:10.1f}" if theirs else ""))
        if theirs:
            shared = (sum(mine[k] for k in both), sum(theirs[k] for k in both))
            print(f"    {'(in both)':<{width}}  {shared[0] * 1e3:10.1f}  {shared[1] * 1e3:10.1f}")
            for k in sorted(only_here, key=lambda k: -mine[k]):
                print(f"    {k + ' (here only)':<{width}}  {mine[k] * 1e3:10.1f}")
            for k in sorted(only_there, key=lambda k: -theirs[k]):
                print(f"    {k + ' (there only)':<{width}}  {'':>10}  {theirs[k] * 1e3:10.1f}")
            print(f"    {'(here only, all)':<{width}}  {sum(mine[k] for k in only_here) * 1e3:10.1f}  "
                  f"{sum(theirs[k] for k in only_there) * 1e3:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
