"""Start-up (issue 15): a command imports what it needs when it needs it. `timeline sql` on the projection
file needs DuckDB and sqlite3, not the store's stack, the event models or polars; `timeline history` needs the
store, not the models, pyarrow or pandas; `--help` needs neither DuckDB nor the store. Held here by what a
command leaves in `sys.modules`, never by timings (benchmarks/startup.py measures them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from timeline.output import frame_text, rows_text

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"

#: what no reading command imports (each costs a tenth of a second or more to import)
HEAVY = ("pydantic", "polars", "pyarrow", "pandas", "numpy", "psycopg", "eventsourcing.postgres", "matplotlib",
         "scipy", "starlette", "fhir", "cryptography")
#: and what `timeline sql` on the file does without too
STORE_STACK = ("eventsourcing", "timeline.store.eventstore", "timeline.store.recorders", "timeline.app")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("startup") / "store"
    for args in (["ingest", *map(str, sorted(SEED.glob("*.jsonl")))], ["project"]):
        r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(s), *args], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    return s


def imported(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `timeline ARGV` in a new interpreter (as `python -m timeline` does); what it printed, and the
    top-level and named modules it had imported by the end."""
    code = ("import json, sys\nfrom timeline.cli import main\n"
            "try:\n    status = main(json.loads(sys.argv[1]))\nexcept SystemExit as e:\n    status = e.code\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)\nsys.exit(status)\n")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, timeout=300)
    *messages, modules = r.stderr.rstrip("\n").split("\n")
    r.stderr = "\n".join(messages)
    return r, set(json.loads(modules))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_one_patient_as_of_imports_neither_the_models_nor_polars(store):
    """`sql --as-of` of one patient replays the patient's stream (`queries.patient_filter`) and prints a plain
    result without polars, as it prints the file's."""
    query = "SELECT patient_id, count(*) AS n FROM events WHERE patient_id = 'JH-01' GROUP BY ALL"
    r, modules = imported(["--store", str(store), "sql", query, "--as-of", "2023-01-01", "--format", "csv"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("patient_id,n\nJH-01,")
    assert "timeline.projections.replay" in modules and not loaded(modules, HEAVY)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_on_the_file_imports_duckdb_not_the_store_stack(store, fmt):
    r, modules = imported(["--store", str(store), "sql", "SELECT patient_id, hsct_on, 1 AS n FROM patients "
                           "ORDER BY patient_id LIMIT 2", "--format", fmt])
    assert r.returncode == 0, r.stderr
    assert "JH-01" in r.stdout and "2022-11-08" in r.stdout
    assert "duckdb" in modules and not loaded(modules, HEAVY + STORE_STACK)


def test_sql_with_a_result_rows_cannot_write_falls_back_to_polars(store):
    r, modules = imported(["--store", str(store), "sql", "SELECT 1.5 AS x"])
    assert r.returncode == 0 and "1.5" in r.stdout and "polars" in modules
    assert not loaded(modules, ("pydantic", "psycopg", "eventsourcing"))


def ingest_a_count(store: Path, folder: Path, patient: str, day: str) -> None:
    """One more blood count of `patient` on `day`, ingested into `store` by the command."""
    extra = folder / "extra.jsonl"
    extra.write_text(json.dumps({"type": "blood_count", "patient_id": patient, "occurred_on": day,
                                 "anc_e9_per_l": 2.4}) + "\n")
    r = subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), "ingest", str(extra)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_sql_says_when_the_file_is_behind_without_the_store_stack(store, tmp_path):
    ingest_a_count(store, tmp_path, "JH-01", "2025-08-01")
    r, modules = imported(["--store", str(store), "sql", "SELECT count(*) AS n FROM patients"])
    assert r.returncode == 0 and "projections are 1 event(s) behind the store" in r.stderr
    assert not loaded(modules, HEAVY + STORE_STACK)


@pytest.mark.parametrize("rebuild", [False, True])
def test_project_reads_the_store_without_pyarrow(store, tmp_path, rebuild):
    """A catch-up (the daily `timeline project` after a small ingest) and a rebuild of a plain SQLite store: DuckDB
    scans the ADBC driver's Arrow C stream as it is, so neither pyarrow nor numpy is imported (a tenth of a
    second or more of every run)."""
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    ingest_a_count(copy, tmp_path, "JH-02", "2025-08-02")
    r, modules = imported(["--store", str(copy), "project", *(["--rebuild"] if rebuild else [])])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("rebuild:" if rebuild else "catch-up:"), r.stdout
    assert not loaded(modules, ("pyarrow", "numpy", "pandas", "polars"))


def test_history_imports_the_store_not_the_models(store):
    r, modules = imported(["--store", str(store), "history", "JH-01"])
    assert r.returncode == 0 and "JH-01" in r.stdout, r.stderr
    assert not loaded(modules, HEAVY)


@pytest.mark.parametrize("argv", [["--help"], ["sql", "--help"], ["history", "--help"]])
def test_help_imports_neither_duckdb_nor_the_store(argv):
    r, modules = imported(argv)
    assert r.returncode == 0 and "usage: timeline" in r.stdout
    assert not loaded(modules, HEAVY + STORE_STACK + ("duckdb",))


TEXTS = ["", " a", "a ", "a,b", 'a"b', "a\nb", "a\rb", "=1+2", "-3", "@x", "\tx", "x\x1by", "é", "漢字", "x" * 60,
         "x" * 61, "null", "'q", "a b", "\\x", "a\x85b", " ", "a\tb"]
QUERIES = ["SELECT 1", "SELECT 1 AS x WHERE false", "SELECT true AS a, false AS b, NULL::BOOLEAN AS c",
           "SELECT 18446744073709551615::UBIGINT AS u, (-9223372036854775807 - 1)::BIGINT AS b, 1::TINYINT AS t",
           "SELECT DATE '0001-01-01' AS a, DATE '9999-12-31' AS b, NULL::DATE AS c", 'SELECT 1 AS "a,b"',
           'SELECT 1 AS "é"', "SELECT 1 AS a, 2 AS a", "SELECT 0.1::DOUBLE AS d", "SELECT 1.5 AS dec",
           "SELECT [1, 2] AS l", "SELECT now() AS t",
           *(f"SELECT '{'y' * (w // 2)}' AS a, '{'y' * (w - w // 2)}' AS b, 1 AS c" for w in range(110, 125))]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("raw", [False, True])
def test_rows_text_writes_what_the_polars_writer_writes(store, fmt, raw):
    """Every result `rows_text` writes is byte for byte what `frame_text` writes of the polars frame; the rest
    it declines (None), and the command writes it through polars."""
    con = duckdb.connect(str(store / "projections.duckdb"), read_only=True)
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'main'").fetchall()]
    cases = [(q, None) for q in QUERIES + [f'SELECT * FROM "{t}"' for t in tables]]
    cases += [("SELECT ?::VARCHAR AS s, 1 AS n", [text]) for text in TEXTS]
    written = 0
    for query, params in cases:
        rel = con.sql(query, params=params)
        got = rows_text(rel.columns, [t.id for t in rel.types], rel.fetchall(), fmt, raw)
        if got is not None:
            written += 1
            assert got == frame_text(con.sql(query, params=params).pl(), fmt, raw), (query, params)
    assert written >= len(cases) // 2
