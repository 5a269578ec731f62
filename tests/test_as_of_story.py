"""Issue 4, point 5: the report as of an earlier date, and as the data stood at a data lock.

(a) As of 2025-03-01 fewer patients are transplanted and follow-up is shorter than at the cut-off; the
    expected values are recomputed here from the fixture files' dates (an oracle independent of the engine).
(b) Corrections recorded after a data lock L change the report only when it is computed as known after L.
(c) The `timeline report` command as a subprocess: exit 0, files written, overridden parameter printed.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from statistics import median

import pytest

from timeline.app import Timeline
from timeline.demo import compare
from timeline.demo import seed_files
from timeline.queries.report import build_report, render_markdown
from timeline.clock import us_to_datetime

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed"
COHORT = json.loads((SEED / "cohort.json").read_text(encoding="utf-8"))
CUTOFF = COHORT["data_cutoff"]
EARLY = "2025-03-01"


def _fixture_dates() -> dict[str, list[date]]:
    """Clinical dates of every clinical event per patient, read straight from the fixture files."""
    out: dict[str, list[date]] = {}
    for path in seed_files(SEED):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for r in rows:
            if r["type"] not in ("event_corrected", "event_retracted"):
                out.setdefault(r["patient_id"], []).append(date.fromisoformat(r["occurred_on"]))
    return out


def _oracle(as_of: str) -> dict:
    """Transplanted patients and follow-up (HSCT -> latest clinical date on or before as_of)."""
    cut = date.fromisoformat(as_of)
    dates = _fixture_dates()
    fu = []
    for p in COHORT["per_patient"]:
        hsct = date.fromisoformat(p["hsct_on"])
        if hsct <= cut:
            fu.append((max(d for d in dates[p["patient_id"]] if d <= cut) - hsct).days)
    return {"transplanted": len(fu), "median": median(fu), "range": [min(fu), max(fu)]}


def _seeded(folder: Path) -> Timeline:
    tl = Timeline.open(str(folder))
    for path in seed_files(SEED):
        tl.ingest_file(path)
    tl.project()
    return tl


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("story") / "data"


@pytest.fixture(scope="module")
def timeline(store_dir: Path) -> Timeline:
    """The seed cohort, never modified by this module's tests."""
    tl = _seeded(store_dir)
    yield tl
    tl.close()


# ------------------------------------------------------------------------------------------- (a)

def test_oracle_dates():
    early, late = _oracle(EARLY), _oracle(CUTOFF)
    assert early == {"transplanted": 3, "median": 212, "range": [4, 842]}
    assert late == {"transplanted": 5, "median": 173, "range": [52, 1015]}


def test_report_as_of_an_earlier_date(timeline: Timeline):
    early, late = build_report(timeline, as_of=EARLY), build_report(timeline, as_of=CUTOFF)
    oracle_early, oracle_late = _oracle(EARLY), _oracle(CUTOFF)

    assert early.n_patients == oracle_early["transplanted"] == 3  # JH-01, JH-02, JH-03 (day 0 2025-02-25)
    assert late.n_patients == oracle_late["transplanted"] == 5
    assert early.n_registered == late.n_registered == 5  # JH-04 and JH-05 are registered, not yet transplanted
    assert early.patients["patient_id"].to_list() == ["JH-01", "JH-02", "JH-03"]

    assert early.values["median_follow_up_days"] == oracle_early["median"]
    assert early.values["follow_up_range_days"] == oracle_early["range"]
    assert late.values["median_follow_up_days"] == oracle_late["median"]
    assert late.values["follow_up_range_days"] == oracle_late["range"]
    # every patient's follow-up is shorter (the median of 3 need not be: 212 vs 173 over 5)
    late_fu = dict(zip(late.patients["patient_id"], late.patients["follow_up_days"]))
    for pid, days in zip(early.patients["patient_id"], early.patients["follow_up_days"]):
        assert days < late_fu[pid], pid
    assert early.values["follow_up_range_days"][1] < late.values["follow_up_range_days"][1]

    # JH-03 is on day +4 on 2025-03-01: not engrafted yet, no complication yet
    assert early.values["neutrophil_engrafted"] == 2 and late.values["neutrophil_engrafted"] == 5
    assert early.values["complications"]["engraftment_syndrome"] == 1  # JH-02 only
    assert late.values["complications"]["engraftment_syndrome"] == 4
    md = render_markdown(early)
    assert "As of (clinical date): 2025-03-01" in md
    assert "Patients registered: 5; transplanted by the as-of date: 3" in md


# ------------------------------------------------------------------------------------------- (b)

def test_correction_after_data_lock_changes_the_report_only_when_known(tmp_path: Path):
    tl = _seeded(tmp_path / "data")
    try:
        before = build_report(tl, as_of=CUTOFF)
        assert before.values["mrd_negative_before_hsct"] == 5
        assert before.values["complications"]["engraftment_syndrome"] == 4

        mrd = tl.sql("SELECT event_id FROM events WHERE patient_id = 'JH-04' AND type = 'mrd_test' "
                     "AND occurred_on = DATE '2025-04-10'")
        es = tl.sql("SELECT event_id FROM events WHERE patient_id = 'JH-05' AND type = 'engraftment_syndrome'")
        assert mrd.height == 1 and es.height == 1

        lock = us_to_datetime(tl.store.now_us())  # the data lock
        time.sleep(0.01)
        today = datetime.now(UTC).date().isoformat()
        # JH-04's last MRD before HSCT was misread: 0.04%, not 0.004% (no longer MRD-negative)
        tl.record({"type": "event_corrected", "patient_id": "JH-04", "occurred_on": today,
                   "corrects": mrd["event_id"][0],
                   "replacement": {"type": "mrd_test", "occurred_on": "2025-04-10", "method": "flow",
                                   "specimen": "bone_marrow", "result_percent": 0.04},
                   "note": "flow report re-read after the data lock"})
        # JH-05's engraftment syndrome did not meet the criteria on review
        tl.record({"type": "event_retracted", "patient_id": "JH-05", "occurred_on": today,
                   "retracts": es["event_id"][0], "reason": "criteria not met on review"})
        # reads never write: until the projections are caught up, a read says it is behind
        with tl.as_of(CUTOFF) as view:
            assert view.notes == ["projections are 2 event(s) behind the store; run `timeline project` "
                                  "(or use --fresh)"]
        assert build_report(tl, as_of=CUTOFF, fresh=True).values["mrd_negative_before_hsct"] == 4
        tl.project()

        locked = build_report(tl, as_of=CUTOFF, known_at=lock)
        assert locked.known_at == lock
        assert locked.values["mrd_negative_before_hsct"] == 5
        assert locked.values["complications"]["engraftment_syndrome"] == 4
        assert all(row["agrees"] for row in compare(COHORT["abstract"], locked.values))
        assert f"Known at: {lock.isoformat()}" in render_markdown(locked)

        after = build_report(tl, as_of=CUTOFF)  # known now: the corrections apply
        assert after.values["mrd_negative_before_hsct"] == 4
        assert after.values["complications"]["engraftment_syndrome"] == 3
        assert ("MRD clearance (MRD-negative) before HSCT", "4/5 (80%)") in \
            list(zip(after.outcomes["outcome"], after.outcomes["value"]))
        agrees = {row["item"]: row["agrees"] for row in compare(COHORT["abstract"], after.values)}
        assert agrees["MRD negativity (< 0.01%) before HSCT"] is False
        assert agrees["Engraftment syndrome"] is False
        assert agrees["CMV reactivation"] is True

        later = build_report(tl, as_of=CUTOFF, known_at=us_to_datetime(tl.store.now_us()))
        assert later.values["mrd_negative_before_hsct"] == 4
        assert later.values["complications"]["engraftment_syndrome"] == 3
    finally:
        tl.close()


# ------------------------------------------------------------------------------------------- (c)

def test_report_command(timeline: Timeline, store_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TIMELINE_PROJECTIONS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "timeline", "--store", str(store_dir), "report", "--as-of", CUTOFF,
         "--param", "platelet_threshold_e9_per_l=50", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "report.html", "swimmer.png", "swimmer.svg", "survival.png", "survival.svg",
                 "counts.png", "counts.svg"):
        assert (out / name).stat().st_size > 1_000, name
    printed = proc.stdout
    assert "platelet_threshold_e9_per_l = 50.0   <- override (default 20.0)" in printed
    assert "anc_threshold_e9_per_l = 0.5\n" in printed  # the others: defaults
    assert "As of (clinical date): 2025-08-31" in printed
    assert "| Platelet engraftment day, median (range) | 13 (12–19) |" in printed
    assert "| Neutrophil engraftment day, median (range) | 12 (11–16) |" in printed
    assert f"written to {out}" in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 4 and "platelet_threshold_e9_per_l = 50.0" in html
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "(swimmer.png)" in md and "(survival.png)" in md and "(counts.png)" in md


def test_report_command_refuses_a_bad_parameter(store_dir: Path, timeline: Timeline, tmp_path: Path):
    from timeline.cli import main

    code = main(["--store", str(store_dir), "report", "--as-of", CUTOFF, "--param", "no_such_rule=1",
                 "--out", str(tmp_path / "x")])
    assert code == 1
    assert not (tmp_path / "x").exists()
