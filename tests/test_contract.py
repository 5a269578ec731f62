"""The repository stands alone and keeps its contract current: generated docs, no outside references, no
import cycles, one public API, one map from error to exit status, figures that change no global state."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _timeline(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", *args], capture_output=True, text=True, timeout=300,
                          **kw)


def test_the_generated_docs_are_current():
    """docs/events.md, tables.md and rules.md are what the code generates (regenerate: python -m timeline.docs)."""
    from timeline.docs import FILES

    for name, make in FILES.items():
        committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert committed == make(), f"docs/{name} is out of date: run `python -m timeline.docs`"


def test_the_docs_name_every_event_field_table_column_and_parameter():
    from timeline.events import EVENT_TYPES
    from timeline.projections import graph
    from timeline.projections.parameters import registry

    events, tables, rules = ((ROOT / "docs" / n).read_text(encoding="utf-8") for n in ("events.md", "tables.md",
                                                                                      "rules.md"))
    for name, cls in EVENT_TYPES.items():
        assert f"### {name}" in events
        for field, info in cls.model_fields.items():
            assert f"`{field}`" in events, (name, field)
            assert field == "type" or info.description, f"{name}.{field} has no description"
    for name, model in graph.models().items():
        assert f"## {name}" in tables
        assert all(f"`{c.name}`" in tables and c.doc for c in model.columns)
    for name, p in registry().items():
        assert f"`{name}`" in rules and p.doc and p.unit is not None and p.source, name


def test_every_example_is_a_valid_event_of_its_type():
    from timeline.events import EVENT_TYPES, parse_event
    from timeline.events.examples import EXAMPLES

    assert set(EXAMPLES) == set(EVENT_TYPES)
    for name, example in EXAMPLES.items():
        assert parse_event(example).type == name


def test_the_json_schema_carries_descriptions_units_and_ranges():
    from timeline.events import json_schema

    schema = json_schema()
    count = schema["$defs"]["BloodCount"]["properties"]["anc_e9_per_l"]
    assert count["description"] and count["unit"] == "×10⁹/L"
    assert any(p.get("maximum") == 100 for p in count["anyOf"])
    bare = [f"{name}.{field}" for name, d in schema["$defs"].items() for field, p in d.get("properties", {}).items()
            if not p.get("description")]
    assert bare == [], f"fields of the JSON Schema without a description: {bare}"


# What a file pointing outside the repository would name: the specification folder beside the clone and its
# files. Spelled in pieces, so that this file does not hold what it looks for.
OUTSIDE = tuple(a + b for a, b in (("../", "shared"), ("/work/", "shared"), ("clinical-", "definitions"),
                                   ("ENDPOINTS", ".md"), ("EVENTS", ".md"), ("DESIGN", ".md")))


def test_nothing_in_the_repository_points_outside_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".png", ".svg") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in OUTSIDE:
            if needle in text:
                bad.append(f"{name}: {needle}")
    assert bad == []


def _imports(path: Path, package: str, modules: set[str]) -> set[str]:
    """The timeline modules a module imports (anywhere in it: module level and inside functions); `from pkg
    import sub` depends on the module `sub`, `from pkg import name` on the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = package.split(".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("timeline")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.startswith("timeline"):
                for a in node.names:
                    found.add(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module)
    return found


def test_no_import_cycles():
    modules: dict[str, Path] = {}
    for path in (ROOT / "timeline").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(path, package, set(modules)) if m in modules and m != name}
    # a package's __init__ is imported with any of its modules; an edge to the package itself is a dependency
    # on its __init__ only
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph[node]):
            visit(dep)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert cycles == []


def test_the_import_check_finds_a_cycle(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from timeline.x import b\n")
    b.write_text("def f():\n    from timeline.x.a import thing\n")
    names = {"timeline.x", "timeline.x.a", "timeline.x.b"}
    assert _imports(a, "timeline.x", names) == {"timeline.x.b"}
    assert _imports(b, "timeline.x", names) == {"timeline.x.a"}


def test_the_public_api():
    import timeline

    for name in ("Timeline", "KaplanMeier", "AalenJohansen", "BloodCount", "StemCellInfusion", "EventCorrected",
                 "RejectedError", "ProjectionView", "follow_up_summary"):
        assert name in timeline.__all__ and getattr(timeline, name) is not None
    with pytest.raises(AttributeError):
        timeline.no_such_name  # noqa: B018


def test_importing_the_package_is_cheap():
    code = "import sys, timeline; print(sorted(m for m in ('duckdb', 'polars', 'eventsourcing', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_figures_change_no_global_state():
    import matplotlib
    import polars as pl

    before_backend, before_font = matplotlib.get_backend(), matplotlib.rcParams["font.size"]
    from timeline.queries import figures

    fig = figures.km_plot({"os": pl.DataFrame({"time": [0.0, 10.0], "at_risk": [2, 2], "events": [0, 1],
                                               "censored": [0, 0], "estimate": [1.0, 0.5], "lower": [1.0, 0.1],
                                               "upper": [1.0, 0.9]})})
    assert fig.axes
    assert matplotlib.get_backend() == before_backend and matplotlib.rcParams["font.size"] == before_font


def test_ingest_help_names_the_formats_and_the_docs():
    r = _timeline("ingest", "--help")
    assert r.returncode == 0
    assert "JSON Lines" in r.stdout and "CSV" in r.stdout and "docs/events.md" in r.stdout


@pytest.mark.parametrize("args, status, words", [
    (["sql", "SELECT 1", "--as-of", "2025-13-01"], 2, "not a date"),
    (["sql", "SELECT 1", "--known-at", "yesterday"], 2, "ISO 8601"),
    (["sql", "SELECT 1", "--param", "nonsense"], 2, "NAME=VALUE"),
    (["no-such-command"], 2, "invalid choice"),
])
def test_usage_errors_exit_2(tmp_path, args, status, words):
    r = _timeline("--store", str(tmp_path), *args)
    assert r.returncode == status and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_bad_input_exits_1(seed_timeline):
    store = str(seed_timeline.store.data_dir)
    for args, words in ((["sql", "SELECT * FROM nowhere"], "nowhere"),
                        (["sql", "DELETE FROM patients"], "read-only"),
                        (["sql", "SELECT 1", "--param", "nope=1"], "unknown parameter"),
                        (["km", "nope"], "unknown endpoint")):
        r = _timeline("--store", store, *args)
        assert r.returncode == 1 and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_a_folder_without_a_store_is_a_clear_error_for_readers(tmp_path):
    for args in (["sql", "SELECT 1"], ["history", "P1"], ["project"], ["km", "os"], ["report"]):
        r = _timeline("--store", str(tmp_path / "mistyped"), *args)
        assert r.returncode == 1 and "holds no event store" in r.stderr, (args, r.stderr)
        assert not (tmp_path / "mistyped").exists()


def test_the_declared_checks_hold_on_a_generated_cohort(tmp_path):
    """Every table of a projection file keeps what its columns declare: not null, accepted values, unique key."""
    import duckdb

    from timeline.app import Timeline
    from timeline.projections import graph
    from timeline.projections.build import check_values
    from timeline.testing.cohort import iter_cohort

    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest(list(iter_cohort(120, seed=5)))
        tl.project()
    con = duckdb.connect(str(tmp_path / "data" / "projections.duckdb"), read_only=True)
    try:
        broken = [p for model in graph.models().values() for p in check_values(con, model)]
        assert con.execute("SELECT count(*) FROM endpoints").fetchall()[0][0] > 0
    finally:
        con.close()
    assert broken == []


def test_a_broken_declared_check_is_named():
    import duckdb

    from timeline.projections import graph
    from timeline.projections.build import check_values

    model = graph.models()["endpoints"]
    con = duckdb.connect()
    cols = ", ".join(f'"{c.name}" {c.type}' for c in model.columns)
    con.execute(f"CREATE TABLE endpoints ({cols})")
    row = {"patient_id": "P1", "endpoint": "os", "origin_on": "2024-01-01", "end_on": "2024-02-01",
           "time_days": 31, "status": 0}
    names = [c.name for c in model.columns]
    values = [row.get(n) for n in names]
    insert = f"INSERT INTO endpoints ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    con.execute(insert, values)
    before = set(check_values(con, model))  # a row with only some columns filled (nulls where not null)
    assert not any("unique" in p or "is not one of" in p for p in before)
    con.execute(insert, values)  # the key (patient_id, endpoint) twice
    con.execute(insert, [("nonsense" if n == "endpoint" else v) for n, v in zip(names, values)])
    said = " ".join(set(check_values(con, model)) - before)
    assert "the key (patient_id, endpoint) is not unique" in said
    assert "endpoint is not one of" in said
