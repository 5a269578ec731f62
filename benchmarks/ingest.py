"""Ingest benchmark (issue 2): the whole ingest of a ~1.5M-event synthetic cohort into the SQLite store,
against two references measured in the same run.

    python benchmarks/ingest.py [--patients 10000] [--repeat 3] [--peer-patients 500]

Prints, as medians over the repeats:
  - ingest: events/s for `timeline ingest` end to end (read, parse, validate, append, commit), and its
    peak memory (the process and its parse worker);
  - floor: a bare `sqlite3` executemany of the same raw lines into a table keyed by (patient_id, sequence);
  - peer: the naive eventsourcing approach (one aggregate per patient, saved through an Application,
    SQLite persistence) on a sample of patients;
  - the ratios ingest/floor and ingest/peer, with the targets (>= 100,000 events/s, >= 25% of the floor,
    >= 2.5x the peer, peak memory < 1 GB).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer import OUT, arguments, cohort_file  # noqa: E402


INGEST_CHILD = r"""
import json, resource, sys, time
from timeline.app import Timeline
store, path = sys.argv[1], sys.argv[2]
tl = Timeline.open(store)
t = time.perf_counter()
r = tl.ingest_file(path)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"new": r.new, "present": r.present, "seconds": dt, "peak_kib": peak}))
"""


def run_ingest(path: Path, workdir: Path) -> dict:
    store = workdir / "store"
    shutil.rmtree(store, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", INGEST_CHILD, str(store), str(path)],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(store, ignore_errors=True)
    return result


def run_floor(path: Path, workdir: Path) -> dict:
    """Bare sqlite3: the same raw lines, keyed by (patient_id, sequence), one transaction, WAL, durable."""
    db = workdir / "floor.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    t = time.perf_counter()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE raw (patient_id TEXT NOT NULL, sequence INTEGER NOT NULL, line TEXT NOT NULL, "
                "PRIMARY KEY (patient_id, sequence))")
    seq: dict[str, int] = {}
    key = '"patient_id":"'

    def rows():
        with open(path, encoding="utf-8") as f:
            for line in f:
                i = line.index(key) + len(key)
                pid = line[i:line.index('"', i)]
                n = seq.get(pid, 0) + 1
                seq[pid] = n
                yield pid, n, line

    con.execute("BEGIN")
    cur = con.executemany("INSERT INTO raw VALUES (?, ?, ?)", rows())
    con.execute("COMMIT")
    dt = time.perf_counter() - t
    n = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    del cur
    return {"new": n, "seconds": dt}


def run_peer(path: Path, workdir: Path, patients: int) -> dict:
    """The naive peer (benchmarks/peer.py): parse each line, one aggregate event per clinical event,
    one `Application.save` per patient."""
    from peer import PatientTimeline, application, sample_lines

    by_patient = sample_lines(path, patients)
    app = application(workdir / "peer.sqlite")
    n = 0
    t = time.perf_counter()
    for pid, lines in by_patient.items():
        agg = PatientTimeline(pid)
        for line in lines:
            agg.record(json.loads(line))
            n += 1
        app.save(agg)
    dt = time.perf_counter() - t
    app.close()
    return {"new": n, "seconds": dt}


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, argv)

    path = cohort_file(args.patients, args.seed)
    size_mb = path.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        work = Path(tmp)
        ingest, floor, peer = [], [], []
        for i in range(args.repeat):
            ingest.append(run_ingest(path, work))
            floor.append(run_floor(path, work))
            peer.append(run_peer(path, work, args.peer_patients))
            print(f"  run {i + 1}/{args.repeat}: ingest {ingest[-1]['new'] / ingest[-1]['seconds']:,.0f}/s, "
                  f"floor {floor[-1]['new'] / floor[-1]['seconds']:,.0f}/s, "
                  f"peer {peer[-1]['new'] / peer[-1]['seconds']:,.0f}/s", flush=True)

    def rate(rs: list[dict]) -> float:
        return statistics.median(r["new"] / r["seconds"] for r in rs)

    events = ingest[0]["new"]
    r_ingest, r_floor, r_peer = rate(ingest), rate(floor), rate(peer)
    peak_mb = max(r["peak_kib"] for r in ingest) / 1024
    vs_floor, vs_peer = r_ingest / r_floor, r_ingest / r_peer
    ok = lambda b: "PASS" if b else "FAIL"  # noqa: E731
    print()
    print(f"ingest benchmark: {events:,} events, {args.patients:,} patients, {size_mb:,.0f} MB JSON Lines, "
          f"median of {args.repeat} runs, {os.cpu_count()} cores")
    print(f"  ingest (parse+validate+append+commit)   {r_ingest:>12,.0f} events/s   "
          f"({statistics.median(r['seconds'] for r in ingest):.2f} s)   target >= 100,000  {ok(r_ingest >= 100_000)}")
    print(f"  floor: bare sqlite3 executemany         {r_floor:>12,.0f} events/s   "
          f"({statistics.median(r['seconds'] for r in floor):.2f} s)")
    print(f"  peer: aggregate per patient ({args.peer_patients} pts) {r_peer:>12,.0f} events/s   "
          f"({peer[0]['new']:,} events)")
    print(f"  ingest / floor                          {vs_floor:>12.1%}          target >= 25%     {ok(vs_floor >= 0.25)}")
    print(f"  ingest / peer                           {vs_peer:>12.2f}x          target >= 2.5x    {ok(vs_peer >= 2.5)}")
    print(f"  peak memory of the ingest               {peak_mb:>12,.0f} MB          target < 1,024    {ok(peak_mb < 1024)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
