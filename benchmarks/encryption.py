"""Encryption benchmark (issue 11): what encryption at rest costs, on the same cohort, in the same run.

    python benchmarks/encryption.py [--patients 10000] [--repeat 3]

Prints medians over the repeats, the plain and the encrypted run alternating:
  - ingest (`Timeline.ingest_file` end to end, in a fresh process) into a plain and into an encrypted store:
    events/s, and how much slower encrypted (target: at most 30%);
  - the full build: of the plain store into its projection file (`timeline project --rebuild`), and of the
    encrypted store, whose projections are built in memory (they are never written to disk); how much
    slower encrypted (target: at most 20%); beside it, the plain store's build in memory (the same work
    without the file) and the encrypted store's read alone (its rows opened by the cipher, into Arrow);
  - the cipher alone: the library cipher's AES-GCM call once per stored event (inputs prepared beforehand,
    untimed), the least that sealing each event adds to a build that reads the whole store.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import INGEST_CHILD  # noqa: E402
from peer import OUT, arguments, cohort_file  # noqa: E402

KEY_ENV = "TIMELINE_CIPHER_KEY"


def ingest_once(path: Path, store: Path, key: str | None) -> dict:
    shutil.rmtree(store, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, "TIMELINE_KEY_FILE")}
    if key is not None:
        env[KEY_ENV] = key
    out = subprocess.run([sys.executable, "-c", INGEST_CHILD, str(store), str(path)], check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from timeline.app import Timeline
    from timeline.projections.runner import Projector
    from timeline.store.encryption import new_key

    args = arguments(__doc__, argv)
    path = cohort_file(args.patients, args.seed)
    work = OUT / "encryption-bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    key = new_key()
    plain_store, sealed_store = work / "plain", work / "sealed"

    plain, sealed = [], []
    for i in range(args.repeat):  # alternating, so both see the same machine
        plain.append(ingest_once(path, plain_store, None))
        sealed.append(ingest_once(path, sealed_store, key))
        print(f"  run {i + 1}/{args.repeat}: ingest plain {plain[-1]['new'] / plain[-1]['seconds']:,.0f}/s, "
              f"encrypted {sealed[-1]['new'] / sealed[-1]['seconds']:,.0f}/s", flush=True)
    events = plain[0]["new"]
    r_plain = statistics.median(r["new"] / r["seconds"] for r in plain)
    r_sealed = statistics.median(r["new"] / r["seconds"] for r in sealed)

    tl = Timeline.open(plain_store)
    os.environ[KEY_ENV] = key
    try:
        tls = Timeline.open(sealed_store)
    finally:
        del os.environ[KEY_ENV]
    duck = work / "projections.duckdb"

    def full_build() -> None:
        for suffix in ("", ".wal"):
            Path(f"{duck}{suffix}").unlink(missing_ok=True)
        Projector(tl.store, duck).run(rebuild=True)

    def read_sealed() -> None:
        with tls.store.recorder.read_arrow(0, tls.store.max_position()) as reader:
            reader.read_all()

    def cipher_alone() -> float:
        """Only the library cipher's AEAD call, once per stored event: rows read, split into nonce and
        ciphertext-with-tag and paired with their patient's AEAD object beforehand, untimed."""
        import sqlite3

        from timeline.store.encryption import NONCE, TAG

        ciphers = tls.store.recorder.ring.ciphers
        with sqlite3.connect(sealed_store / "events.sqlite") as con:
            calls = [(ciphers[sid]._aead.decrypt, st[:NONCE], st[NONCE + TAG:] + st[NONCE:NONCE + TAG])
                     for sid, st in con.execute("SELECT originator_id, state FROM stored_events")]
        t = time.perf_counter()
        for decrypt, nonce, data in calls:
            decrypt(nonce, data, None)
        return time.perf_counter() - t

    tls.store.recorder.load_keys()
    builds: dict[str, list[float]] = {"plain, into its file": [], "plain, in memory": [], "encrypted, in memory": [],
                                      "encrypted store read into Arrow": [], "cipher alone": []}
    for _ in range(args.repeat):
        builds["plain, into its file"].append(median_time(full_build, 1))
        builds["plain, in memory"].append(median_time(lambda: tl._fresh(None, None, None).close(), 1))
        builds["encrypted, in memory"].append(median_time(lambda: tls._fresh(None, None, None).close(), 1))
        builds["encrypted store read into Arrow"].append(median_time(read_sealed, 1))
        builds["cipher alone"].append(cipher_alone())
    b = {k: statistics.median(v) for k, v in builds.items()}
    tl.close()
    tls.close()

    ok = lambda cond: "PASS" if cond else "FAIL"  # noqa: E731
    slower_ingest = r_plain / r_sealed - 1
    slower_build = b["encrypted, in memory"] / b["plain, into its file"] - 1
    print()
    print(f"encryption benchmark: {events:,} events, {args.patients:,} patients, median of {args.repeat} runs, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"  ingest, plain store                    {r_plain:>10,.0f} events/s")
    print(f"  ingest, encrypted store                {r_sealed:>10,.0f} events/s   {slower_ingest:+.1%} time"
          f"   target <= +30%   {ok(slower_ingest <= 0.30)}")
    print(f"  full build, plain (into its file)      {b['plain, into its file']:8.2f} s")
    print(f"  full build, encrypted (in memory)      {b['encrypted, in memory']:8.2f} s   {slower_build:+.1%} time"
          f"   target <= +20%   {ok(slower_build <= 0.20)}")
    print(f"    the plain store built in memory       {b['plain, in memory']:8.2f} s   (the same work, no file)")
    print(f"    the encrypted store read into Arrow   {b['encrypted store read into Arrow']:8.2f} s")
    print(f"    the cipher alone, one AEAD call per event {b['cipher alone']:5.2f} s   "
          f"({b['cipher alone'] / events * 1e6:.2f} µs per event) = "
          f"{b['cipher alone'] / b['plain, into its file']:.1%} of the plain full build")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
