"""Projection benchmark (issue 3): full build, 1% catch-up, cohort and one-patient as-of, against two
references measured in the same run.

    python benchmarks/projections.py [--patients 10000] [--repeat 3] [--peer-patients 500]

Prints medians over the repeats:
  - full build of every table from an empty DuckDB file (reading the whole store);
  - catch-up after 1% more events (new patients and new facts of existing patients), and after one event
    (its fixed part);
  - cohort-wide as-of at a past date and a past knowledge time (a query of `patients`: the tables it reads
    are recomputed; then a query of every table);
  - as-of of one patient (a query of `events`; the tables a query reads are computed, then every table);
  - like for like: the full build and both catch-ups of the tables the earlier projection file had (and the
    tables they read now), alone: the outputs the earlier code made, to compare with its figures;
  - peak memory of this process;
  - floor: DuckDB reading the same events once from the JSON Lines file (read_json + GROUP BY patient_id),
    and parts of the full build measured alone: the store read into Arrow, the log table loaded, and the
    rules computing every table from a loaded log;
  - peer: replaying patients one by one through the eventsourcing repository with a Python loop computing
    the neutrophil engraftment day, on a sample, extrapolated to the cohort; timed in rounds with a full build,
    and its ratio to the build taken within each round (the machine's speed drifts within minutes);
and the targets: full build <= 3x floor and >= 10x faster than the peer; catch-up <= 10% of the full
build; cohort as-of <= 2 s; one patient <= 50 ms; peak memory <= 2 GB.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import OUT, arguments, cohort_file  # noqa: E402
from statements import DuckFile  # noqa: E402


def timed(fn, repeat: int, setup=None) -> tuple[float, object]:
    """Median seconds of `fn()` over `repeat` runs, and its last result; `setup()` runs before each, untimed."""
    times, result = [], None
    for _ in range(repeat):
        if setup is not None:
            setup()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def store_for(path: Path, patients: int, seed: int):
    """A SQLite store holding the cohort (built once, reused while the event count matches)."""
    from timeline.app import Timeline

    folder = OUT / f"store-{patients}-seed{seed}"
    expected = sum(1 for _ in open(path, "rb"))
    if folder.exists():
        tl = Timeline.open(folder)
        if tl.store.max_position() == expected:
            return tl
        tl.close()
        shutil.rmtree(folder)
    tl = Timeline.open(folder)
    t = time.perf_counter()
    tl.ingest_file(path)
    print(f"ingested {expected:,} events into {folder} in {time.perf_counter() - t:.1f} s")
    tl.close()  # as after `timeline ingest`: the store closed (its write-ahead log checkpointed)
    os.sync()  # written back before anything is timed
    return Timeline.open(folder)


def extra_events(patients: int, seed: int, target: int) -> list[dict]:
    """~1% more events, as a routine import brings them: about 80% for new patients (numbered after the
    cohort), the rest new facts (counts, follow-up) of 1% of the existing patients."""
    from timeline.testing.cohort import generate_patient, patient_rng

    out: list[dict] = []
    i = patients
    while len(out) < target * 0.8:
        out.extend(generate_patient(patient_rng(seed, i), i))
        i += 1
    existing = max(1, patients // 100)
    k = 0
    while len(out) < target:
        pid = f"SYN-{(k % existing) * (patients // existing) + 1:06d}"
        out.append({"type": "follow_up", "patient_id": pid, "occurred_on": "2026-11-01",
                    "disease_status": "not_assessed", "note": f"routine contact {k}"})
        k += 1
    return out


def floor(path: Path, repeat: int) -> float:
    def run():
        con = duckdb.connect()
        n = con.execute(f"SELECT count(*) FROM (SELECT patient_id, count(*) FROM read_json('{path}', "
                        "format='newline_delimited') GROUP BY patient_id)").fetchone()[0]
        con.close()
        return n
    return timed(run, repeat)[0]


def store_read(tl, work: Path, repeat: int) -> tuple[float, float]:
    """Two parts of the full build, measured alone: reading the whole store into Arrow (no parsing), and
    loading it into the `log` table of an empty DuckDB file (read, JSON parsed, written, committed)."""
    from timeline.projections.loader import create_log
    from timeline.projections.runner import _load_log

    end = tl.store.max_position()

    def read():
        import pyarrow as pa

        with tl.store.recorder.read_arrow(0, end) as stream:
            return sum(b.num_rows for b in pa.RecordBatchReader.from_stream(stream))

    db = work / "load-only.duckdb"

    def load():
        con = duckdb.connect(str(db), config={"preserve_insertion_order": False})
        con.execute("BEGIN TRANSACTION")
        create_log(con)
        n = _load_log(con, tl.store, 0, None)[0]
        con.execute("COMMIT")
        con.close()
        return n

    t_read = timed(read, repeat)[0]
    t_load = timed(load, repeat, setup=DuckFile(db, db).empty)[0]
    DuckFile(db, db).empty()
    return t_read, t_load


#: the tables the projection file had before the rules became a graph of models (to compare the same outputs)
EARLIER_TABLES = ("events", "chimerism", "patients", "bridging", "disease_status", "engraftment", "complications",
                  "endpoints")


@contextlib.contextmanager
def earlier_tables_only():
    """The model graph cut to the tables of the earlier file and the tables they read now: the outputs the
    earlier code made (its rules computed those inputs inside its 8 statements), for like-for-like figures of
    the full build and the catch-up. Measurement only: `graph.models` is restored on exit."""
    from timeline.projections import graph

    subset = graph.upstream(EARLIER_TABLES)
    every = graph.models
    graph.models = lambda: subset
    try:
        yield list(subset)
    finally:
        graph.models = every


def like_for_like(stores: dict[str, object], work: Path, repeat: int) -> tuple[list[str], dict[str, float]]:
    """Full build, 1% catch-up and one-event catch-up of the earlier file's tables alone (`earlier_tables_only`),
    in a file of their own, as the full figures are measured: medians of `repeat` runs."""
    from timeline.projections.runner import Projector

    file = DuckFile(work / "like-for-like.duckdb", work / "like-for-like-built.duckdb")
    with earlier_tables_only() as tables:
        out = {"full build": timed(lambda: Projector(stores["full"], file.path).run(rebuild=True), repeat,
                                   setup=file.empty)[0]}
        file.keep()
        for what in ("1%", "one event"):
            out[what] = timed(lambda: Projector(stores[what], file.path).run(), repeat, setup=file.restore)[0]
    file.remove()
    return tables, out


def rules_alone(built: Path, work: Path, repeat: int,
                tables: tuple[str, ...] | None = None) -> tuple[float, dict[str, float]]:
    """The rest of the full build, measured alone: on a copy of a built file (its `log` loaded), every table
    built again by the models from the visible events, committed (as `Projector._rebuild` does after
    loading the log)."""
    from timeline.projections.build import build
    from timeline.projections.parameters import resolve

    db = work / "rules-only.duckdb"

    def copy():
        Path(str(db) + ".wal").unlink(missing_ok=True)
        shutil.copy(built, db)
        os.sync()

    per_table: dict[str, list[float]] = {}
    params = resolve()

    def rules():
        con = duckdb.connect(str(db), config={"preserve_insertion_order": False})
        con.execute("BEGIN TRANSACTION")
        marks = []
        build(con, params, inputs={"visible_events": "main._visible_events"},
              file_views={"visible_events": "main._visible_events"}, tables=tables,
              on_table=lambda name, i, n: marks.append((name, time.perf_counter())))
        marks.append(("commit and close", time.perf_counter()))
        con.execute("COMMIT")
        con.close()
        marks.append(("", time.perf_counter()))
        for (name, t0), (_, t1) in zip(marks, marks[1:], strict=False):
            per_table.setdefault(name, []).append(t1 - t0)

    t = timed(rules, repeat, setup=copy)[0]
    db.unlink(missing_ok=True)
    return t, {name: statistics.median(ts) for name, ts in per_table.items()}


def checksums(path: Path) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent checksum of every projection table of a file (md5 of the sorted md5s of
    its rows, columns by name): equal checksums, equal tables."""
    from timeline.projections import graph

    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name in graph.models():
            cols = sorted(r[0] for r in con.execute(f'DESCRIBE "{name}"').fetchall())
            row = ", ".join(f'"{c}"' for c in cols)
            out[name] = con.execute(f"SELECT count(*), md5(string_agg(h, '' ORDER BY h)) FROM "
                                    f'(SELECT md5(CAST(row({row}) AS VARCHAR)) AS h FROM "{name}")').fetchone()
        return out
    finally:
        con.close()


def peer(path: Path, sample: int, workdir: Path) -> tuple[Callable[[], None], int, Callable[[], None]]:
    """One pass of the peer over the sample (replay through the eventsourcing repository + a Python engraftment
    loop), the number of patients it replays, and how to close its store."""
    from peer import PatientTimeline, application, sample_lines

    app = application(workdir / "peer-replay.sqlite")
    by_patient = {pid: [json.loads(x) for x in lines] for pid, lines in sample_lines(path, sample).items()}
    ids = []
    for pid, evs in by_patient.items():
        agg = PatientTimeline(pid)
        for e in evs:
            agg.record(e)
        app.save(agg)
        ids.append(agg.id)

    def neutrophil_day(events: list[dict]) -> int | None:
        day0 = min((date.fromisoformat(e["occurred_on"]) for e in events if e["type"] == "stem_cell_infusion"),
                   default=None)
        if day0 is None:
            return None
        per_day: dict[date, float] = {}
        for e in events:
            if e["type"] == "blood_count" and "anc_e9_per_l" in e:
                d = date.fromisoformat(e["occurred_on"])
                if d > day0:
                    per_day[d] = min(per_day.get(d, 1e9), e["anc_e9_per_l"])
        nadir, run = False, []
        for d in sorted(per_day):
            v = per_day[d]
            if v < 0.5:
                nadir, run = True, []
            elif nadir:
                run.append(d)
                if len(run) == 3:
                    return (run[0] - day0).days
        return None

    def replay():
        for agg_id in ids:
            neutrophil_day(app.repository.get(agg_id).events)

    return replay, len(ids), app.close


def main(argv: list[str] | None = None) -> int:
    from timeline.app import Timeline
    from timeline.projections.runner import Projector
    from timeline.queries.views import open_file

    args = arguments(__doc__, argv)

    path = cohort_file(args.patients, args.seed)
    work = OUT / "projections-bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tl = store_for(path, args.patients, args.seed)
    n_events = tl.store.max_position()
    file = DuckFile(work / "projections.duckdb", work / "before-catch-up.duckdb")  # restored before each catch-up
    duck = file.path

    def full_build():
        return Projector(tl.store, duck).run(rebuild=True)

    t_full, rep = timed(full_build, args.repeat, setup=file.empty)
    print(f"  full build: {rep.rows_read:,} events, {rep.patients:,} patients", flush=True)
    file.keep()
    lock = datetime.now(UTC)

    # catch-up after 1% more events (the store keeps them; the DuckDB file is restored between repeats)
    extra_store = OUT / f"store-{args.patients}-seed{args.seed}-plus1pct"
    shutil.rmtree(extra_store, ignore_errors=True)
    shutil.copytree(tl.store.data_dir, extra_store, ignore=shutil.ignore_patterns("*.duckdb*"))
    tl2 = Timeline.open(extra_store)
    extra = extra_events(args.patients, args.seed, n_events // 100)
    tl2.ingest(extra, what="1% more")
    tl2.close()  # as after `timeline ingest`: the store closed (its write-ahead log checkpointed)
    tl2 = Timeline.open(extra_store)
    os.sync()  # the copy's writeback (half a gigabyte) is done before anything is timed

    restore = file.restore  # the file as the full build left it (not part of the catch-up's time)

    parts: dict[str, list[float]] = {}

    def catch_up():  # marks the start of each table's rules, to split the catch-up's time
        marks = [("read the new rows, the touched patients' history, their visible events", time.perf_counter())]
        report = Projector(tl2.store, duck).run(on_table=lambda name, i, n: marks.append((name, time.perf_counter())))
        name, _ = marks[-1]
        marks[-1] = (f"{name}, then every table's rows replaced in the file and the commit", marks[-1][1])
        marks.append(("", time.perf_counter()))
        for (name, start), (_, end) in zip(marks, marks[1:]):
            parts.setdefault(name, []).append(end - start)
        return report

    t_catch, crep = timed(catch_up, args.repeat, setup=restore)
    print(f"  catch-up: {crep.rows_read:,} new events, {crep.patients:,} patients recomputed", flush=True)

    # the fixed part of a catch-up: one new event (one patient recomputed)
    one_store = OUT / f"store-{args.patients}-seed{args.seed}-plus1event"
    shutil.rmtree(one_store, ignore_errors=True)
    shutil.copytree(tl.store.data_dir, one_store, ignore=shutil.ignore_patterns("*.duckdb*"))
    tl3 = Timeline.open(one_store)
    tl3.ingest([{"type": "follow_up", "patient_id": "SYN-000042", "occurred_on": "2026-11-01",
                 "disease_status": "not_assessed"}], what="one event")
    tl3.close()
    tl3 = Timeline.open(one_store)
    os.sync()
    t_catch1, _ = timed(lambda: Projector(tl3.store, duck).run(), args.repeat, setup=restore)
    like_tables, t_like = like_for_like({"full": tl.store, "1%": tl2.store, "one event": tl3.store}, work, args.repeat)
    tl3.close()
    shutil.rmtree(one_store, ignore_errors=True)

    as_of_date = date(2020, 1, 1)

    from timeline.projections import graph

    every = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in graph.models())

    def cohort_as_of(query: str):
        def run():
            view = open_file(duck, as_of_date, lock)
            n = view.sql(query).row(0)[0]
            view.close()
            return n
        return run

    t_asof, n_asof = timed(cohort_as_of("SELECT count(*) AS n FROM patients"), args.repeat)
    t_asof_all, _ = timed(cohort_as_of(every), args.repeat)

    pid = "SYN-000042"

    def one_patient():
        view = tl2.as_of(date(2024, 1, 1), patients=[pid])
        n = view.sql("SELECT count(*) AS n FROM events")["n"][0]
        view.close()
        return n

    one_patient()  # warm imports
    t_one, _ = timed(one_patient, max(args.repeat, 15))
    def one_patient_every_table():
        view = tl2.as_of(date(2024, 1, 1), patients=[pid])
        n = view.sql(every)
        view.close()
        return n

    t_one_all, _ = timed(one_patient_every_table, max(args.repeat, 15))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t_floor = floor(path, args.repeat)
    t_read, t_load = store_read(tl, work, args.repeat)
    t_rules, t_tables = rules_alone(work / "before-catch-up.duckdb", work, args.repeat)
    t_earlier, t_earlier_tables = rules_alone(work / "before-catch-up.duckdb", work, args.repeat, EARLIER_TABLES)
    # the peer in rounds with the full build, its ratio taken within each round (the machine's speed drifts by a
    # quarter within minutes: a build timed at the start and a peer timed at the end can be a quarter apart)
    replay, n_peer, close_peer = peer(path, args.peer_patients, work)
    peer_each, peer_builds, peer_ratios = [], [], []
    for _ in range(args.repeat):
        t_build = timed(full_build, 1, setup=file.empty)[0]
        each = timed(replay, 1)[0] / n_peer
        peer_each.append(each)
        peer_builds.append(t_build)
        peer_ratios.append(each * args.patients / t_build)
    close_peer()
    per_patient, t_peer_build, peer_ratio = (statistics.median(x) for x in (peer_each, peer_builds, peer_ratios))
    t_peer = per_patient * args.patients

    ok = lambda b: "PASS" if b else "FAIL"  # noqa: E731
    print()
    print(f"projection benchmark: {n_events:,} events, {args.patients:,} patients, median of {args.repeat} runs, "
          f"{os.cpu_count()} cores")
    print(f"  full build (every table, whole store)  {t_full:8.2f} s   {n_events / t_full:>10,.0f} events/s")
    print(f"  floor: DuckDB read_json + GROUP BY     {t_floor:8.2f} s   full build / floor = {t_full / t_floor:.2f}x"
          f"   target <= 3x    {ok(t_full <= 3 * t_floor)}")
    print("    parts of the full build, each measured alone:")
    for what, t in (("reading the whole store into Arrow", t_read),
                    ("loading the log table (read, parse, write)", t_load),
                    ("the rules: every table from the loaded log", t_rules)):
        print(f"      {what:<44} {t:5.2f} s   = {t / t_floor:.2f}x floor")
    print("        of which: " + ", ".join(f"{name} {t:.2f} s ({t / t_floor:.1f}x)" for name, t in t_tables.items()))
    print(f"      the rules of the {len(EARLIER_TABLES)} tables of the earlier file alone ({', '.join(EARLIER_TABLES)}; "
          f"with the {len(t_earlier_tables) - len(EARLIER_TABLES) - 1} tables they read now)   {t_earlier:.2f} s")
    print(f"  peer: repository replay + Python loop  {t_peer:8.2f} s   (extrapolated from {args.peer_patients} "
          f"patients, {per_patient * 1e3:.2f} ms each)   peer / full build = {peer_ratio:.1f}x   "
          f"target >= 10x   {ok(peer_ratio >= 10)}")
    print(f"    in {args.repeat} round(s) of a full build ({t_peer_build:.2f} s, median) then a pass of the peer: "
          "the median of the rounds' ratios")
    print(f"  catch-up after 1% more events          {t_catch:8.2f} s   = {t_catch / t_full:.1%} of the full build"
          f"   target <= 10%   {ok(t_catch <= 0.1 * t_full)}")
    print(f"    of which fixed: a catch-up after one event takes {t_catch1:.2f} s ({t_catch1 / t_full:.1%} of the full "
          f"build): connection, planning of every rule, commit")
    print("    of which (1%): " + ", ".join(f"{name} {statistics.median(ts) * 1e3:.0f} ms" for name, ts in parts.items()))
    print(f"  like for like: the {len(EARLIER_TABLES)} tables of the earlier file with the "
          f"{len(like_tables) - len(EARLIER_TABLES)} tables they read now ({len(like_tables)} of {len(graph.models())}: "
          f"the outputs the earlier code made), built and caught up alone:")
    print(f"    full build {t_like['full build']:.2f} s; catch-up after 1% more events {t_like['1%']:.2f} s "
          f"({t_like['1%'] / t_like['full build']:.1%} of it); after one event {t_like['one event']:.2f} s")
    print(f"  cohort as-of ({as_of_date}, known at {lock:%H:%M:%S}Z)   {t_asof:8.2f} s   ({n_asof:,} patients then)"
          f"   target <= 2 s   {ok(t_asof <= 2)}")
    print(f"    a query of patients makes the {len(graph.upstream(['patients']))} tables it reads; "
          f"a query of every table ({len(graph.models())}) takes {t_asof_all:.2f} s")
    print(f"  one patient as-of (a query of events)  {t_one * 1e3:8.1f} ms   target <= 50 ms  {ok(t_one <= 0.05)}")
    print(f"    the same, a query reading every table ({len(graph.models())}) {t_one_all * 1e3:8.1f} ms")
    t_dq = t_tables.get("data_queries", 0.0)
    print(f"  data queries (table data_queries, in the rules alone)  {t_dq:5.2f} s = {t_dq / t_full:.1%} of the full "
          f"build   target <= 15%   {ok(t_dq <= 0.15 * t_full)}")
    print(f"  peak memory of this process            {peak_mb:8.0f} MB   target <= 2,048  {ok(peak_mb <= 2048)}")
    print("  checksum of every table of the full build (rows, md5 of its rows):")
    for name, (rows, digest) in checksums(work / "before-catch-up.duckdb").items():
        print(f"    {name:<24} {rows:>10,}  {digest}")
    tl.close()
    tl2.close()
    shutil.rmtree(extra_store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
