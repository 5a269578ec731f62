"""`timeline check`: the data queries as a data manager reads them, in every format; exit 1 while an error
is open, 0 when only warnings are."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from timeline.app import Timeline

COURSE = [
    {"type": "patient_registered", "patient_id": "Q-1", "occurred_on": "2023-01-02", "birth_date": "2014-02-03",
     "sex": "female"},
    {"type": "diagnosis", "patient_id": "Q-1", "occurred_on": "2023-01-02", "disease": "b_all"},
    {"type": "stem_cell_infusion", "patient_id": "Q-1", "occurred_on": "2023-02-10", "donor": "matched_sibling",
     "graft_source": "bone_marrow"},
    {"type": "follow_up", "patient_id": "Q-1", "occurred_on": "2023-05-10", "disease_status": "remission"},
    # a warning only: registered, never transplanted
    {"type": "patient_registered", "patient_id": "Q-2", "occurred_on": "2023-01-05", "birth_date": "2015-02-03",
     "sex": "male"},
]
DEATH_BEFORE_HSCT = {"type": "death", "patient_id": "Q-1", "occurred_on": "2023-02-05", "cause": "infection"}


def _check(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), "check", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("check") / "data"
    with Timeline.open(path) as tl:
        tl.ingest(COURSE + [DEATH_BEFORE_HSCT])
        tl.project()
    return path


def test_an_open_error_exits_1_and_every_finding_is_shown_whole(store):
    r = _check(store)
    assert r.returncode == 1, r.stderr
    assert "death on 2023-02-05 is before the transplant" in r.stdout  # the message in full, not cut
    assert "→ correct the date of the death or of the infusion" in r.stdout
    assert "registered_not_transplanted" in r.stdout
    assert "error(s)" in r.stderr and "warning(s)" in r.stderr


def test_only_warnings_exit_0(store):
    r = _check(store, "--patient", "Q-2")
    assert r.returncode == 0, r.stderr
    assert "Q-1" not in r.stdout and "registered_not_transplanted" in r.stdout


def test_csv_and_json_hold_every_column(store, tmp_path):
    as_json = json.loads(_check(store, "--format", "json").stdout)
    assert {f["check"] for f in as_json} >= {"death_before_hsct", "registered_not_transplanted"}
    assert set(as_json[0]) == {"patient_id", "event_id", "occurred_on", "check", "severity", "message", "suggestion"}
    csv = _check(store, "--format", "csv").stdout.splitlines()
    assert csv[0] == "patient_id,event_id,occurred_on,check,severity,message,suggestion"
    assert len(csv) == len(as_json) + 1


def test_xlsx_is_a_workbook_with_the_findings(store, tmp_path):
    assert _check(store, "--format", "xlsx").returncode == 2  # a workbook needs a file
    out = tmp_path / "queries.xlsx"
    r = _check(store, "--format", "xlsx", "--out", str(out))
    assert r.returncode == 1 and str(out) in r.stderr
    with zipfile.ZipFile(out) as z:
        text = " ".join(z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/"))
    assert "data queries" in text and "death_before_hsct" in text and "Q-2" in text


def test_as_of_before_the_death_has_no_error(store):
    """The same as-of path as every reader: before the death was dated, there is nothing to query about it."""
    r = _check(store, "--as-of", "2023-02-01", "--patient", "Q-1")
    assert r.returncode == 0 and "death_before_hsct" not in r.stdout


def _timeline(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timeline", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cohort_store(tmp_path_factory) -> Path:
    """The store above and a clean transplanted patient beside Q-1."""
    path = tmp_path_factory.mktemp("check-cohort") / "data"
    clean = [{**e, "patient_id": "Q-3"} for e in COURSE if e["patient_id"] == "Q-1"]
    with Timeline.open(path) as tl:
        tl.ingest(COURSE + [DEATH_BEFORE_HSCT] + clean)
        tl.project()
    return path


@pytest.mark.parametrize("command", [["km", "os"], ["cif", "relapse"]])
def test_estimates_say_who_was_left_out_and_why(cohort_store, command):
    """A death before the infusion fails no cohort output: the patient is left out, and the output says so."""
    r = _timeline(cohort_store, *command)
    assert r.returncode == 0, r.stderr
    assert "1 patient left out of every endpoint: the death is dated before the origin" in r.stderr


def test_with_everyone_left_out_the_estimate_says_so(store):
    """Not 'unknown endpoint' (defect found trying it): the endpoint is known, no patient is left in it."""
    r = _timeline(store, "km", "os")
    assert r.returncode == 1
    assert "unknown endpoint" not in r.stderr
    assert "left out of every endpoint" in r.stderr and "no patient has an origin for endpoint 'os'" in r.stderr


def test_the_report_says_who_was_left_out(store, tmp_path):
    r = _timeline(store, "report", "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr
    assert "1 patient left out of every endpoint" in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
