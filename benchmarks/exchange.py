"""Exchange benchmark (issue 12) on the synthetic cohort (default 10,000 patients, ~1.5M events).

    python benchmarks/exchange.py [--patients 10000] [--repeat 3] [--fhir-patients N] [--import-repeat 1]

Prints, as medians over the repeats:
  - ADTTE export of the projection file as XPT v5, Dataset-JSON and Parquet: seconds (target ≤ 2 s),
    each end to end in a fresh process (opening the store, the query, the file);
  - Parquet export of every table and the visible event log: seconds (target ≤ 3 s);
  - FHIR import: events/s of `timeline import fhir` on the cohort's events written as FHIR NDJSON (by
    `timeline.exchange.fhir_out`), beside `timeline ingest`'s events/s on the same events as JSON Lines,
    measured in the same run, and their ratio (target ≥ 30 %). `--fhir-patients` takes the first N patients'
    events for both (default: all); `--import-repeat` runs each import that many times (default 1).

The store (and its projection file, built once) is kept under benchmarks/out/.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import OUT, arguments, cohort_file  # noqa: E402

EXPORT_CHILD = r"""
import json, sys, time
from pathlib import Path
from timeline.app import Timeline
store, kind, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
t = time.perf_counter()
writer = None
with Timeline.open(store, create=False) as tl, tl.as_of() as view:
    if kind.startswith("adtte-"):
        from timeline.exchange import adtte
        written = adtte.write_adtte(view, out, study_id="BENCH", fmt=kind.removeprefix("adtte-"))
    else:
        from timeline.exchange.parquet import write_parquet
        written = write_parquet(view, out, position=tl.store.max_position())
    dt = time.perf_counter() - t
    if kind.startswith("adtte-"):  # then, untimed above: the library's writer alone on the same records
        fmt, df = kind.removeprefix("adtte-"), adtte.adtte_frame(view, "BENCH")
        write = {"xpt": lambda: adtte.write_xpt(df, out),
                 "dataset-json": lambda: adtte.write_dataset_json(df, out, "BENCH"),
                 "parquet": lambda: adtte.write_frame(df, "parquet", out)}[fmt]
        w = time.perf_counter()
        write()
        writer = time.perf_counter() - w
print(json.dumps({"seconds": dt, "writer": writer, "files": len(written)}))
"""

IMPORT_CHILD = r"""
import json, sys, time
from pathlib import Path
from timeline.app import Timeline
store, kind, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
tl = Timeline.open(store)
t = time.perf_counter()
if kind == "ingest":
    r = tl.ingest_file(path)
    unmapped = 0
else:
    from timeline.exchange.fhir_in import import_file
    r, job = import_file(tl, path)
    unmapped = len(job.unmapped)
dt = time.perf_counter() - t
print(json.dumps({"new": r.new, "seconds": dt, "unmapped": unmapped}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_store(cohort: Path, patients: int, seed: int) -> Path:
    """The cohort ingested and projected once (kept under benchmarks/out)."""
    from timeline.app import Timeline

    store = OUT / f"store-{patients}-seed{seed}"
    with Timeline.open(str(store)) as tl:
        if tl.store.max_position() == 0:
            tl.ingest_file(cohort)
        t = time.perf_counter()
        report = tl.project()
        print(f"projection file: {report.mode} ({time.perf_counter() - t:.1f} s)")
    return store


def subset(cohort: Path, patients: int | None, workdir: Path) -> Path:
    if patients is None:
        return cohort
    out = workdir / f"cohort-first-{patients}.jsonl"
    keep: set[str] = set()
    with open(cohort, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            pid = json.loads(line)["patient_id"]
            if pid not in keep and len(keep) >= patients:
                continue
            keep.add(pid)
            dst.write(line)
    return out


def fhir_file(events: Path) -> Path:
    """The same events as FHIR bulk-data NDJSON (converted once, kept beside the cohort)."""
    from timeline.events import parse_event
    from timeline.events.catalogue import content_event_id, to_json_dict
    from timeline.exchange.fhir_out import to_resource

    out = events.with_suffix(".fhir.ndjson")
    if out.exists() and out.stat().st_mtime > events.stat().st_mtime:
        return out
    tmp = out.with_suffix(".tmp")
    with open(events, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            ev = parse_event(json.loads(line))
            data = dict(to_json_dict(ev), event_id=str(ev.event_id or content_event_id(ev)))
            res = to_resource(data)
            if res is not None:
                dst.write(json.dumps(res, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--fhir-patients", type=int, default=None)
    extra.add_argument("--import-repeat", type=int, default=1)
    known, rest = extra.parse_known_args(argv)
    args = arguments(__doc__, rest)
    cohort = cohort_file(args.patients, args.seed)
    store = bench_store(cohort, args.patients, args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    try:
        adtte = {fmt: [child(EXPORT_CHILD, str(store), f"adtte-{fmt}", str(work / f"adtte.{fmt}"))
                       for _ in range(args.repeat)] for fmt in ("xpt", "dataset-json", "parquet")}
        parquet = [child(EXPORT_CHILD, str(store), "parquet", str(work / "pq"))["seconds"] for _ in range(args.repeat)]
        rows = sum(json.loads((work / "pq" / "_manifest.json").read_text())["tables"][t]["rows"]
                   for t in json.loads((work / "pq" / "_manifest.json").read_text())["tables"])
        events = subset(cohort, known.fhir_patients, OUT)
        t = time.perf_counter()
        fhir = fhir_file(events)
        print(f"FHIR NDJSON of the events: {fhir.name} ({fhir.stat().st_size / 1e6:.0f} MB, "
              f"made in {time.perf_counter() - t:.1f} s)")
        ingest, imported = [], []
        for _ in range(known.import_repeat):
            for kind, path, into in (("ingest", events, ingest), ("fhir", fhir, imported)):
                target = work / f"store-{kind}"
                shutil.rmtree(target, ignore_errors=True)
                into.append(child(IMPORT_CHILD, str(target), kind, str(path)))
                shutil.rmtree(target, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_events = ingest[0]["new"]
    assert all(r["new"] == n_events for r in ingest + imported), "FHIR import and ingest stored different counts"
    assert all(r["unmapped"] == 0 for r in imported)
    ingest_rate = statistics.median(r["new"] / r["seconds"] for r in ingest)
    fhir_rate = statistics.median(r["new"] / r["seconds"] for r in imported)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cohort: {args.patients:,} patients; {os.cpu_count()} cores, load average now {load} (1, 5, 15 min)")
    for fmt, runs in adtte.items():
        secs = [r["seconds"] for r in runs]
        print(f"ADTTE export ({fmt}):{' ' * (17 - len(fmt))}{statistics.median(secs):6.2f} s  (target <= 2 s; runs: "
              + ", ".join(f"{x:.2f}" for x in secs) + ")")
        print(f"    the library's writer alone on the same {args.patients:,} patients' records: "
              f"{statistics.median(r['writer'] for r in runs):.2f} s")
    print(f"Parquet export ({rows:,} rows):  {statistics.median(parquet):6.2f} s  (target <= 3 s; runs: "
          + ", ".join(f"{x:.2f}" for x in parquet) + ")")
    print(f"ingest (JSON Lines), {n_events:,} events: {ingest_rate:10,.0f} events/s")
    print(f"import fhir (NDJSON), same events:   {fhir_rate:10,.0f} events/s  = {fhir_rate / ingest_rate:.0%} of ingest "
          "(target >= 30%)")
    per_s, sample, per_resource = library_floor(fhir, n_events)
    print(f"    fhir.resources validation alone (model_validate of {sample:,} of these resources, one core, nothing "
          f"else done): {per_s:,.0f} resources/s = {per_s * per_resource:,.0f} events/s = "
          f"{per_s * per_resource / ingest_rate:.0%} of ingest")


def library_floor(fhir: Path, n_events: int, sample: int = 20_000) -> tuple[float, int, float]:
    """The FHIR library's own validation rate on the first `sample` resources of the file (R4B models, as the
    import uses), and the events per resource of the file: what any import validating every resource with it
    can reach at best on one core."""
    from fhir.resources.R4B import get_fhir_model_class

    with open(fhir, encoding="utf-8") as f:
        resources = sum(1 for _ in f)
    with open(fhir, encoding="utf-8") as f:
        objects = [json.loads(line) for _, line in zip(range(sample), f)]
    t = time.perf_counter()
    for obj in objects:
        get_fhir_model_class(obj["resourceType"]).model_validate(obj)
    return len(objects) / (time.perf_counter() - t), len(objects), n_events / resources


if __name__ == "__main__":
    main()
