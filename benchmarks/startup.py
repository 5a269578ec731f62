"""Start-up benchmark (issue 15): the wall time of short commands, as a user at a terminal waits for them.

    python benchmarks/startup.py [--runs 10]

Makes a small store with projections in a temporary folder (fixtures/seed: `timeline ingest`, then `timeline
project`), then times, each as a new process, `runs` times in turn:
  - `python -c pass` (the interpreter's own start, the floor every command pays);
  - `python -c "import duckdb"` (the floor of a command that reads the projection file);
  - `timeline --store S sql "select 1"`;
  - `timeline --store S history P` (P the first patient of the seed);
  - `timeline --help` and `timeline sql --help`.
Prints the median wall time of each, its difference from `python -c pass`, and, for `sql`, the target:
<= 0.25 s wall (PASS/FAIL).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
TARGET_S = 0.25


def arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="runs of each command (default 10)")
    return ap.parse_args(argv)


def wall(argv: list[str]) -> float:
    """Seconds from starting `argv` to its exit (it must succeed)."""
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    timeline = [sys.executable, "-m", "timeline"]
    files = sorted(SEED.glob("*.jsonl"))
    patient = json.loads(files[0].read_text().splitlines()[0])["patient_id"]
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        for step in (["ingest", *map(str, files)], ["project"]):
            subprocess.run([*timeline, "--store", store, *step], check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import duckdb"': [sys.executable, "-c", "import duckdb"],
            'timeline sql "select 1"': [*timeline, "--store", store, "sql", "select 1"],
            f"timeline history {patient}": [*timeline, "--store", store, "history", patient],
            "timeline --help": [*timeline, "--help"],
            "timeline sql --help": [*timeline, "sql", "--help"],
        }
        for argv_ in commands.values():  # warm-up: files in the page cache, bytecode compiled
            wall(argv_)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # in turn, so a burst of load on the machine falls on every command alike
            for name, argv_ in commands.items():
                times[name].append(wall(argv_))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(files)} seed files, {args.runs} runs each; {os.cpu_count()} cores, load average now {load} "
          "(1, 5, 15 min)")
    floor = statistics.median(times["python -c pass"])
    print(f"{'command':<34} {'median wall s':>13} {'minus python':>13}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<34} {med:13.3f} {med - floor:13.3f}")
    sql = statistics.median(times['timeline sql "select 1"'])
    verdict = "PASS" if sql <= TARGET_S else "FAIL"
    print(f'target: timeline sql "select 1" <= {TARGET_S:g} s wall: {sql:.3f} s, {verdict}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
