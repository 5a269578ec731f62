"""Start-up benchmark (issue 15): the wall time of short commands, as a user at a terminal waits for them.

    python benchmarks/startup.py [--runs 10] [--against CHECKOUT]

Makes a small store with projections in a temporary folder (fixtures/seed: `timeline ingest`, then `timeline
project`), then times, each as a new process, `runs` times in turn:
  - `python -c pass` (the interpreter's own start, the floor every command pays);
  - `python -c "import duckdb"` (the floor of a command that reads the projection file);
  - `timeline --store S sql "select 1"`;
  - `timeline --store S history P` (P the first patient of the seed);
  - `timeline --help` and `timeline sql --help`.
Prints the median wall time of each, its difference from `python -c pass`, and, for `sql`, the target:
<= 0.25 s wall (PASS/FAIL). Each command runs once before it is timed, with its bytecode cached in the temporary
folder (as an installed package has it; `$PYTHONDONTWRITEBYTECODE` is ignored, the source tree is not written).
The commands run in that folder, so `timeline` is the installed package, or the checkout `$PYTHONPATH` names:
`PYTHONPATH=CHECKOUT python benchmarks/startup.py` measures CHECKOUT; `--against OTHER` times OTHER's timeline
commands too, in the same runs (a before/after comparison under the same load).
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
    ap.add_argument("--against", metavar="CHECKOUT", help="also time the timeline commands of another checkout "
                    "(e.g. the main branch), in the same runs, interleaved: the same load falls on both")
    return ap.parse_args(argv)


def wall(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds from starting `argv` in `cwd` to its exit (it must succeed)."""
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    timeline = [sys.executable, "-m", "timeline"]
    files = sorted(SEED.glob("*.jsonl"))
    patient = json.loads(files[0].read_text().splitlines()[0])["patient_id"]
    with tempfile.TemporaryDirectory() as tmp:  # the working folder too: `-m timeline` never finds a checkout there
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "bytecode")
        store = str(Path(tmp) / "store")
        for step in (["ingest", *map(str, files)], ["project"]):
            subprocess.run([*timeline, "--store", store, *step], check=True, capture_output=True, env=env, cwd=tmp)
        commands = {
            'timeline sql "select 1"': ["--store", store, "sql", "select 1"],
            f"timeline history {patient}": ["--store", store, "history", patient],
            "timeline --help": ["--help"],
            "timeline sql --help": ["sql", "--help"],
        }
        runs = {"python -c pass": ([sys.executable, "-c", "pass"], env),
                'python -c "import duckdb"': ([sys.executable, "-c", "import duckdb"], env)}
        runs |= {name: ([*timeline, *rest], env) for name, rest in commands.items()}
        if args.against:
            other = env | {"PYTHONPATH": str(Path(args.against).resolve())}
            runs |= {f"{name} [against]": ([*timeline, *rest], other) for name, rest in commands.items()}
        for argv_, env_ in runs.values():  # warm-up: files in the page cache, bytecode compiled
            wall(argv_, env_, tmp)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.runs):  # in turn, so a burst of load on the machine falls on every command alike
            for name, (argv_, env_) in runs.items():
                times[name].append(wall(argv_, env_, tmp))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(files)} seed files, {args.runs} runs each; {os.cpu_count()} cores, load average now {load} "
          "(1, 5, 15 min)" + (f"; [against]: {args.against}" if args.against else ""))
    floor = statistics.median(times["python -c pass"])
    print(f"{'command':<44} {'median wall s':>13} {'minus python':>13}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<44} {med:13.3f} {med - floor:13.3f}")
    sql = statistics.median(times['timeline sql "select 1"'])
    verdict = "PASS" if sql <= TARGET_S else "FAIL"
    print(f'target: timeline sql "select 1" <= {TARGET_S:g} s wall: {sql:.3f} s, {verdict}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
