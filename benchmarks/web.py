"""Web view benchmark (issue 13): server time of `timeline serve`'s pages on the benchmark store.

    python benchmarks/web.py [--patients 10000] [--seed 1] [--repeat 3] [--sample 15]

The app runs in-process (as `timeline serve` runs it) and each page is requested over HTTP from 127.0.0.1;
the server time is the handler's own time (the `Server-Timing` header), the wall time includes HTTP. Prints
medians over the patients sampled and the repeats:
  - patient page (the projection file, no as-of);
  - patient page with an as-of date (the patient replayed by the same models: `Timeline.as_of(..., patients=[pid])`);
  - cohort page, computed (the cache emptied before each request) and served from the cache;
and, as a reference measured in the same run, the one-patient as-of view alone (`Timeline.as_of(...,
patients=[pid])` and one query of `engraftment`) and the ratio of the as-of page to it.
Targets: patient page <= 150 ms, cohort page <= 1 s, an as-of change on a patient page <= 300 ms.
The store and its projection file are made by benchmarks/projections.py (run it first).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import OUT, arguments  # noqa: E402

TARGETS_MS = {"patient page": 150.0, "patient page, as-of change": 300.0, "cohort page (computed)": 1000.0}


def server_ms(url: str) -> tuple[float, float]:
    """(server time, wall time) of one GET, in ms."""
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        r.read()
        timing = r.headers["Server-Timing"]
    wall = 1000 * (time.perf_counter() - t)
    return float(timing.split("dur=")[1]), wall


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)
    from timeline.app import Timeline
    from timeline.web.app import create_app
    from timeline.web.server import running

    folder = OUT / f"store-{args.patients}-seed{args.seed}"
    if not (folder / "projections.duckdb").exists():
        print(f"{folder}: no store with projections; run benchmarks/projections.py first", file=sys.stderr)
        return 1
    sample = getattr(args, "sample", 15)
    with Timeline.open(folder, create=False) as tl:
        with tl.as_of() as view:
            rows = view.sql("SELECT patient_id, hsct_on FROM patients WHERE hsct_on IS NOT NULL ORDER BY patient_id")
        rng = random.Random(args.seed)
        picked = rng.sample(list(zip(rows["patient_id"], rows["hsct_on"])), min(sample, rows.height))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{rows.height:,} transplanted patients; {len(picked)} sampled; {os.cpu_count()} cores, load average "
              f"now {load} (1, 5, 15 min)")
        results: dict[str, list[float]] = {k: [] for k in ("patient page", "patient page, as-of change",
                                                           "cohort page (computed)", "cohort page (cached)",
                                                           "reference: one-patient as-of view alone")}
        walls: dict[str, list[float]] = {k: [] for k in results}
        app = create_app(tl)
        with running(tl, app=app) as base:
            server_ms(f"{base}/patient/{picked[0][0]}")  # warm-up: imports, the first connections
            server_ms(f"{base}/patient/{picked[0][0]}?as_of={picked[0][1]}")
            for _ in range(args.repeat):
                for pid, hsct in picked:
                    for name, url in (("patient page", f"{base}/patient/{pid}"),
                                      ("patient page, as-of change", f"{base}/patient/{pid}?as_of={hsct}")):
                        s, w = server_ms(url)
                        results[name].append(s)
                        walls[name].append(w)
                    t = time.perf_counter()
                    with tl.as_of(hsct, patients=[pid]) as view:
                        view.sql("SELECT * FROM engraftment WHERE patient_id = ?", [pid])
                    results["reference: one-patient as-of view alone"].append(1000 * (time.perf_counter() - t))
            for i in range(args.repeat):
                app.state.pages.cache.clear()
                s, w = server_ms(f"{base}/?by=donor")
                results["cohort page (computed)"].append(s)
                walls["cohort page (computed)"].append(w)
                s, w = server_ms(f"{base}/?by=donor")
                results["cohort page (cached)"].append(s)
                walls["cohort page (cached)"].append(w)
        print(f"{'measure':<44} {'median server ms':>17} {'median wall ms':>15}  target")
        for name, values in results.items():
            med = statistics.median(values)
            wall = f"{statistics.median(walls[name]):15.1f}" if walls[name] else f"{'':>15}"
            target = TARGETS_MS.get(name)
            verdict = f"<= {target:g} ms: {'met' if med <= target else 'NOT MET'}" if target else ""
            print(f"{name:<44} {med:17.1f} {wall}  {verdict}")
        ref = statistics.median(results["reference: one-patient as-of view alone"])
        asof = statistics.median(results["patient page, as-of change"])
        print(f"as-of patient page / one-patient as-of view alone: {asof / ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
