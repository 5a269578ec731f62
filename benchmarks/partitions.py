"""Rebuild by partitions of patients (issue 15): time and peak memory of a one-piece rebuild and of rebuilds in
K partitions (and on a local Dask cluster), each in a fresh process, on the same generated cohort.

    python benchmarks/partitions.py [--patients 2000] [--partitions 4,8] [--memory-limit 4GB] [--dask]

Each line: the build, its wall time, the peak resident memory of the building process (`ru_maxrss`; with
--dask the workers' memory is not included), and whether the tables equal the one-piece build's (EXCEPT ALL
both ways, every model).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # projection_compare: the tables of two files compared

_CHILD = """
import resource, sys, time
from timeline.app import Timeline
from timeline.projections import partitions
from timeline.projections.partitions import Plan
store, out, k, limit, engine = sys.argv[1:6]
if k == "0":
    partitions.EVENTS_PER_GIB = 10**15  # one piece, whatever the limit
plan = Plan(partitions=int(k) or None, memory_limit=limit, engine=engine)
t = time.monotonic()
Timeline.open(store, projections=out).project(rebuild=True, plan=plan)
print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(store: Path, out: Path, k: int, limit: str, engine: str = "duckdb") -> tuple[float, float]:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(store), str(out), str(k), limit, engine],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"build k={k} failed: {r.stderr.strip().splitlines()[-1]}")
    seconds, kib = r.stdout.splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--partitions", default="4,8")
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--dask", action="store_true", help="also a rebuild on a local Dask cluster of 2 workers")
    args = ap.parse_args()

    from projection_compare import file_differences
    from timeline.app import Timeline
    from timeline.testing.cohort import iter_cohort

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with Timeline.open(d / "store", projections=d / "unused.duckdb") as tl:
            tl.ingest(iter_cohort(args.patients, seed=15))
            events = tl.store.max_position()
        print(f"{args.patients:,} patients, {events:,} stored events; --memory-limit {args.memory_limit}")
        seconds, mib = run(d / "store", d / "whole.duckdb", 0, args.memory_limit)
        print(f"one piece:          {seconds:6.1f} s, peak RSS {mib:6.0f} MiB")
        builds = [(int(k), "duckdb") for k in args.partitions.split(",")] + ([(2, "dask")] if args.dask else [])
        for k, engine in builds:
            out = d / f"k{k}-{engine}.duckdb"
            seconds, mib = run(d / "store", out, k, args.memory_limit, engine)
            same = "same tables" if not file_differences(str(d / "whole.duckdb"), str(out)) else "TABLES DIFFER"
            label = f"{k} partitions" + (" (dask)" if engine == "dask" else "")
            print(f"{label:<19} {seconds:6.1f} s, peak RSS {mib:6.0f} MiB, {same}")


if __name__ == "__main__":
    main()
