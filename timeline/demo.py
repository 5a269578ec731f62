"""`make demo`: the seed cohort end to end.

    python -m timeline.demo [--store ./timeline-data] [--out ./report] [--fixtures fixtures/seed]

1. ingests every event file of the seed cohort (`*.jsonl`, `*.csv`; idempotent: a second run stores
   nothing new and says so),
2. catches the DuckDB projections up,
3. prints the outcomes report as of the cohort's data cut-off (`data_cutoff` of `cohort.json`) and
   writes it, with its figures, to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def seed_files(folder: Path) -> list[Path]:
    """The event files of a fixture folder, in a stable order (JSON Lines first, then CSV)."""
    return sorted(folder.glob("*.jsonl")) + sorted(folder.glob("*.csv"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timeline.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./timeline-data", help="data folder (default ./timeline-data)")
    parser.add_argument("--out", default="./report", help="report folder (default ./report)")
    parser.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="seed cohort folder")
    args = parser.parse_args(argv)

    from .app import Timeline
    from .queries.report import run_report
    from .store.eventstore import RejectedError

    started = time.perf_counter()
    folder = Path(args.fixtures)
    cohort = json.loads((folder / "cohort.json").read_text(encoding="utf-8"))
    cutoff = cohort["data_cutoff"]
    files = seed_files(folder)
    if not files:
        print(f"no event files in {folder}", file=sys.stderr)
        return 1

    tl = Timeline.open(args.store)
    try:
        print(f"== 1. ingest: {len(files)} files of {cohort.get('name', folder.name)} into {args.store}")
        total_new = total_present = 0
        for path in files:
            try:
                report = tl.ingest_file(path)
            except RejectedError as e:
                print(f"{path}: REFUSED, nothing stored from this file: {len(e.problems)} problem(s)", file=sys.stderr)
                for p in e.problems:
                    print(f"  {path.name}:{p}", file=sys.stderr)
                return 1
            total_new += report.new
            total_present += report.present
            print(f"{path.name}: {report.new} new, {report.present} already present")
        print(f"total: {total_new} new, {total_present} already present")

        print("\n== 2. project")
        run = tl.project()
        print(f"{run.mode}: {run.rows_read} stored events read, {run.patients} patients recomputed, "
              f"position {run.position}")

        out = Path(args.out)
        print(f"\n== 3. report as of the data cut-off {cutoff}\n")
        code = run_report(tl, as_of=cutoff, known_at=None, params=None, out=out)
        print(f"\nreport written to {out.resolve()}/report.html (and report.md, figures as PNG and SVG)")
        print(f"demo finished in {time.perf_counter() - started:.1f} s")
        return code
    finally:
        tl.close()


if __name__ == "__main__":
    sys.exit(main())
