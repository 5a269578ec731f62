"""`timeline km | cif | sql | params | project` end to end on the seed cohort (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("q") / "store"
    files = sorted(str(p) for p in SEED.glob("*.jsonl")) + [str(SEED / "JH-03-labs.csv")]
    assert run("ingest", *files, store=s).returncode == 0
    r = run("project", store=s)
    assert r.returncode == 0 and r.stdout.startswith("rebuild: 607 stored events read, 5 patients"), r.stdout
    return s


def run(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


def test_km_json_columns_and_values(store):
    r = run("km", "os", "--format", "json", store=store)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["time"] for x in rows] == [52, 120, 173, 400, 1015]
    assert {"time", "at_risk", "events", "censored", "estimate", "lower", "upper"} <= set(rows[0])
    assert [x["at_risk"] for x in rows] == [5, 4, 3, 2, 1] and all(x["estimate"] == 1.0 for x in rows)


def test_cif_by_donor_csv(store):
    r = run("cif", "cmv_reactivation", "--by", "donor", "--format", "csv", store=store)
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.strip().splitlines()
    assert header.split(",")[:3] == ["donor", "time", "at_risk"] and "competing" in header
    haplo = [ln.split(",") for ln in lines if ln.startswith("haploidentical")]
    assert float(haplo[-1][header.split(",").index("estimate")]) == pytest.approx(0.75)


def test_km_as_of_sees_fewer_patients(store):
    r = run("km", "os", "--as-of", "2025-03-01", "--format", "json", store=store)
    assert r.returncode == 0, r.stderr
    assert sum(x["censored"] + x["events"] for x in json.loads(r.stdout)) == 3


def test_unknown_endpoint_and_column_are_clear_errors(store):
    r = run("km", "nope", store=store)
    assert r.returncode == 1 and "unknown endpoint 'nope'" in r.stderr and "os" in r.stderr
    r = run("cif", "relapse", "--by", "shoe_size", store=store)
    assert r.returncode == 1 and "not a column of patients" in r.stderr


def test_param_override_is_recomputed_without_touching_the_file(store):
    q = "SELECT median(platelet_day) AS d FROM engraftment"
    r = run("sql", q, "--param", "platelet_threshold_e9_per_l=50", "--format", "json", store=store)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"d": 13.0}]
    assert json.loads(run("sql", q, "--format", "json", store=store).stdout) == [{"d": 9.0}]
    r = run("sql", q, "--param", "nope=1", store=store)
    assert r.returncode == 1 and "unknown parameter(s): nope" in r.stderr
    # the name without its unit, as one writes it (issue 3's example)
    r = run("sql", q, "--param", "platelet_threshold=50", "--format", "json", store=store)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"d": 13.0}]


def test_params_lists_every_rule_parameter(store):
    r = run("params", "--format", "json", store=store)
    names = {x["name"] for x in json.loads(r.stdout)}
    assert {"anc_threshold_e9_per_l", "platelet_transfusion_free_days", "mrd_negative_below_percent",
            "full_donor_chimerism_above_percent", "endpoint_origin"} <= names
    assert all(x["source"] for x in json.loads(r.stdout))


def test_km_median_at_times_and_logrank(store):
    r = run("km", "os", "--by", "donor", "--at", "365,730", store=store)
    assert r.returncode == 0, r.stderr
    assert "Median (95% CI, Brookmeyer–Crowley" in r.stdout and "log-rank test by donor: chi² = " in r.stdout
    r = run("km", "os", "--at", "365,730", "--format", "json", store=store)
    rows = json.loads(r.stdout)
    assert [x["time"] for x in rows] == [365.0, 730.0] and {"estimate", "lower", "upper"} <= set(rows[0])
    assert r.stderr.splitlines()[-2:] == ["n,events,median,lower,upper", "5,0,inf,inf,inf"]


def test_cif_by_gives_grays_test_and_strata_need_by(store):
    from timeline.app import Timeline
    from timeline.queries.comparisons import GrayTest
    from timeline.queries.survival import endpoint_frame

    r = run("cif", "cmv_reactivation", "--by", "donor", store=store)
    assert r.returncode == 0, r.stderr
    with Timeline.open(str(store), create=False) as tl, tl.as_of() as view:
        expected = GrayTest().fit(endpoint_frame(view, "cmv_reactivation", "donor"), by="donor")
    assert expected.statistic > 0 and expected.sentence() in r.stdout
    r = run("cif", "relapse", "--strata", "sex", store=store)
    assert r.returncode == 1 and "--strata needs --by" in r.stderr
    r = run("km", "os", "--at", "a year", store=store)
    assert r.returncode == 2 and "365,730" in r.stderr
