"""`make demo`: the seed cohort end to end, and its paper reproduced.

    python -m timeline.demo [--store ./timeline-data] [--out ./report] [--fixtures fixtures/seed]

1. ingests every event file of the seed cohort (`*.jsonl`, `*.csv`; idempotent: a second run stores
   nothing new and says so),
2. catches the projection file up,
3. writes the outcomes report as of the cohort's data cut-off (`data_cutoff` of `cohort.json`),
4. sets each statement of the paper's abstract (`abstract` of `cohort.json`: the numbers each statement
   rests on) against what the engine computed, and exits 1 if one disagrees,
5. takes screenshots of `timeline serve`'s cohort page and of one patient's page (`<out>/screens/`), in
   the system's Chromium (Debian package `chromium`; the Makefile installs it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from .settings import DEFAULT_DATA_FOLDER

DEFAULT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def seed_files(folder: Path) -> list[Path]:
    """The event files of a fixture folder, in a stable order (JSON Lines first, then CSV)."""
    return sorted(folder.glob("*.jsonl")) + sorted(folder.glob("*.csv"))


def _plain(value: Any) -> Any:
    """A computed value as it is written in JSON (dates as ISO text, tuples as lists)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def lookup(values: Mapping[str, Any], name: str) -> Any:
    """A named number; a dotted name reaches into a group (`complications.cmv_reactivation`); absent: None."""
    got: Any = values
    for part in name.split("."):
        got = got.get(part) if isinstance(got, Mapping) else None
    return _plain(got)


def agrees(computed: Any, expected: Any) -> bool:
    """`expected` is a value, or {"within": [low, high]} for a computed [min, max] range."""
    if isinstance(expected, Mapping) and set(expected) == {"within"}:
        low, high = expected["within"]
        return isinstance(computed, list) and len(computed) == 2 and low <= computed[0] and computed[1] <= high
    return computed == expected


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def compare(abstract: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each statement of the abstract with what the engine computed and whether it agrees."""
    rows = []
    for statement in abstract:
        names = [*statement["expect"], *statement.get("show", [])]
        shown = "; ".join(f"{n} = {_shown(lookup(values, n))}" for n in names)
        ok = all(agrees(lookup(values, n), want) for n, want in statement["expect"].items())
        rows.append({"item": statement["item"], "paper": statement["paper"], "engine": shown, "agrees": ok})
    return rows


#: the pages `make demo` photographs: (file stem, page); JH-03 is the patient of the paper's figure
SCREENS = (("cohort", "/?by=donor"), ("patient-JH-03", "/patient/JH-03"))


def _screens(store: str, out: Path) -> list[Path] | None:
    """Screenshots of the web view's pages; None (and why) when they cannot be taken."""
    from .app import Timeline
    from .web.server import screenshots

    try:
        with Timeline.open(store, create=False) as tl:
            written = screenshots(tl, out, SCREENS)
    except (FileNotFoundError, ImportError) as e:
        print(f"screenshots not taken: {e}", file=sys.stderr)
        return None
    for path in written:
        print(f"{path.resolve()}")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timeline.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=DEFAULT_DATA_FOLDER, help=f"data folder (default {DEFAULT_DATA_FOLDER})")
    parser.add_argument("--out", default="./report", help="report folder (default ./report)")
    parser.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="seed cohort folder")
    parser.add_argument("--no-screens", action="store_true", help="skip the screenshots of the web view")
    args = parser.parse_args(argv)
    from .private import owner_only

    with owner_only():  # the store, the report and the screenshots are the owner's only, as with `timeline`
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .app import Timeline
    from .clock import as_date
    from .events.problems import RejectedError
    from .queries.report import write_report

    started = time.perf_counter()
    folder = Path(args.fixtures)
    cohort = json.loads((folder / "cohort.json").read_text(encoding="utf-8"))
    cutoff = as_date(cohort["data_cutoff"])
    files = seed_files(folder)
    if not files:
        print(f"no event files in {folder}", file=sys.stderr)
        return 1

    with Timeline.open(args.store) as tl:
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
        with tl.as_of(cutoff) as view:
            made = write_report(view, out, as_of=cutoff, now=tl.store.now_us())
        print(f"\nreport written to {out.resolve()}/report.html (and report.md, figures as PNG and SVG)")

    rows = compare(cohort.get("abstract", []), made.values)
    print(f"\n== 4. the paper's abstract ({cohort.get('paper', '')}) vs the engine\n")
    width = max((len(r["item"]) for r in rows), default=10)
    for r in rows:
        print(f"{'yes' if r['agrees'] else 'NO ':3}  {r['item']:<{width}}  paper: {r['paper']}\n"
              f"     {'':<{width}}  engine: {r['engine']}")
    agreed = sum(r["agrees"] for r in rows)
    print(f"\n{agreed} of {len(rows)} abstract statements reproduced.")
    if not args.no_screens:
        print("\n== 5. screenshots of `timeline serve`")
        shots = _screens(args.store, out / "screens")
        if shots is None:
            return 1
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0 if agreed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
