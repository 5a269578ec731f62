"""Unit tests of the outcomes report builder and its figures, on the seed cohort's view."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from timeline.app import Timeline
from timeline.demo import compare
from timeline.projections.parameters import ParameterError
from timeline.queries import figures as F
from timeline.queries.report import Report, build_report, render_figures, render_html, render_markdown

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
COHORT = json.loads((SEED / "cohort.json").read_text(encoding="utf-8"))
CUTOFF = COHORT["data_cutoff"]


@pytest.fixture(scope="module")
def timeline(seed_timeline) -> Timeline:
    return seed_timeline  # conftest: ingested and projected once per session


@pytest.fixture(scope="module")
def report(seed_report) -> Report:
    return seed_report


def _lookup(df: pl.DataFrame, key: str, name: str) -> str:
    hits = df.filter(pl.col(key) == name)["value"].to_list()
    assert len(hits) == 1, f"{name!r}: {hits}"
    return hits[0]


def test_view_and_header(report: Report):
    assert str(report.as_of) == CUTOFF
    assert report.known_at is None
    assert report.n_registered == report.n_patients == 5
    assert "2025-08-31" in report.view


@pytest.mark.parametrize(("name", "value"), [
    ("Patients transplanted", "5"),
    ("Age at HSCT, years, median (range)", "10.7 (4.5–16.4)"),
    ("Sex", "male 3 (60%), female 2 (40%)"),
    ("Diagnosis", "B-ALL 5 (100%)"),
    ("Relapses before HSCT", "1 relapse 5 (100%)"),
    ("Relapse site", "bone marrow 4 (80%), combined 1 (20%)"),
    ("Front-line chemotherapy", "ALL IC-BFM 2009 5 (100%)"),
    ("Blinatumomab cycles", "2 cycles 3 (60%), 1 cycle 2 (40%)"),
    ("Cycle length, days", "28"),
    ("All cycles completed", "5/5 (100%)"),
    ("Days from last blinatumomab to HSCT, median (range)", "32 (25–45)"),
    ("MRD-negative before HSCT", "5/5 (100%)"),
    ("Donor", "haploidentical 4 (80%), matched sibling 1 (20%)"),
    ("Graft source", "peripheral blood 4 (80%), bone marrow 1 (20%)"),
    ("HLA match", "5/10 3 (60%), 10/10 1 (20%), 6/10 1 (20%)"),
    ("CD34+ cells ×10⁶/kg, median (range)", "7.2 (4.1–10.4)"),
    ("Conditioning intensity", "myeloablative (MAC) 4 (80%), reduced intensity (RIC) 1 (20%)"),
    ("TBI", "3/5 (60%); dose 12 Gy 2 (67%), 2 Gy 1 (33%)"),
    ("Serotherapy", "none 3 (60%), ATG 2 (40%)"),
    ("GVHD prophylaxis", "MMF + PTCy + tacrolimus 4 (80%), cyclosporine + methotrexate 1 (20%)"),
])
def test_table1(report: Report, name: str, value: str):
    assert _lookup(report.table1, "characteristic", name) == value


def test_table1_mrd_before_hsct_per_patient(report: Report):
    text = _lookup(report.table1, "characteristic", "Last MRD before HSCT")
    assert "JH-04 0.004% flow bone marrow" in text
    assert "JH-01 < LOD (sensitivity 0.001%) pcr bone marrow" in text  # marrow preferred over same-day blood


@pytest.mark.parametrize(("name", "value"), [
    ("MRD clearance (MRD-negative) before HSCT", "5/5 (100%)"),
    ("Interval last blinatumomab → HSCT, days, median (range)", "32 (25–45)"),
    ("Neutrophil engraftment day, median (range)", "12 (11–16)"),
    ("Platelet engraftment day, median (range)", "9 (8–13)"),
    ("Full donor chimerism day, median (range)", "35 (30–84)"),
    ("Full donor chimerism sustained", "5/5 (100%)"),
    ("Engraftment syndrome", "4/5 (80%)"),
    ("CMV reactivation", "4/5 (80%)"),
    ("EBV reactivation", "1/5 (20%)"),
    ("  bacterial: Clostridioides difficile, gastrointestinal", "1/5 (20%)"),
    ("C. difficile enterocolitis", "1/5 (20%)"),
    ("Acute GVHD grade II–IV", "2/5 (40%)"),
    ("Acute GVHD grade III–IV", "1/5 (20%)"),
    ("Steroid-refractory acute GVHD", "2/5 (40%)"),
    ("Chronic GVHD", "0/5 (0%)"),
    ("Overall survival at 1 year", "100.0% (95% CI 100.0–100.0%)"),
    ("Overall survival at 2 years", "100.0% (95% CI 100.0–100.0%)"),
    ("Event-free (failure-free) survival at 2 years", "100.0% (95% CI 100.0–100.0%)"),
    ("Follow-up, days, median (range)", "173 (52–1015)"),
    ("Alive in continuous complete remission", "5/5 (100%)"),
    ("Active GVHD", "0/5 (0%)"),
])
def test_outcomes_table(report: Report, name: str, value: str):
    assert _lookup(report.outcomes, "outcome", name) == value


def test_trm_row_uses_aalen_johansen(report: Report):
    assert _lookup(report.outcomes, "outcome", "Transplant-related (non-relapse) mortality").startswith(
        "0/5 (0%); cumulative incidence at 1 year 0.0%")


def test_km_tables_are_the_estimator_output(report: Report):
    os_tab = report.survival["os"]
    assert os_tab.columns == ["time", "at_risk", "events", "censored", "estimate", "lower", "upper"]
    assert os_tab["time"].to_list() == [52, 120, 173, 400, 1015]
    assert os_tab["at_risk"].to_list() == [5, 4, 3, 2, 1]
    assert os_tab["events"].sum() == 0


def test_parameters_listed_with_defaults(report: Report):
    names = report.parameters["name"].to_list()
    assert "platelet_threshold_e9_per_l" in names and "mrd_negative_below_percent" in names
    row = report.parameters.filter(pl.col("name") == "platelet_threshold_e9_per_l").row(0, named=True)
    assert (row["value"], row["default"], row["overridden"]) == ("20.0", "20.0", False)
    md = render_markdown(report)
    assert "platelet_threshold_e9_per_l = 20.0\n" in md
    assert "As of (clinical date): 2025-08-31" in md


def test_override_changes_parameters_and_figures(timeline: Timeline):
    r = build_report(timeline, as_of=CUTOFF, params={"platelet_threshold_e9_per_l": "50"})
    row = r.parameters.filter(pl.col("name") == "platelet_threshold_e9_per_l").row(0, named=True)
    assert (row["value"], row["default"], row["overridden"]) == ("50.0", "20.0", True)
    assert r.thresholds["platelets"] == 50.0
    # platelets >= 50 (transfusion-free 7 days, 3 values): days 19, 13, 12, 15, 13
    assert r.values["median_platelet_engraftment_day"] == 13
    assert r.values["platelet_engraftment_day_range"] == [12, 19]
    assert "platelet_threshold_e9_per_l = 50.0   <- override (default 20.0)" in render_markdown(r)
    agrees = {row["item"]: row["agrees"] for row in compare(COHORT["abstract"], r.values)}
    assert agrees["Median platelet engraftment"] is False and agrees["Median neutrophil engraftment"] is True


def test_unknown_parameter_is_refused(timeline: Timeline):
    with pytest.raises(ParameterError):
        build_report(timeline, as_of=CUTOFF, params={"no_such_rule": "1"})


def test_report_before_any_transplant_is_empty_not_an_error(timeline: Timeline):
    r = build_report(timeline, as_of="2019-06-01")
    assert r.n_patients == 0
    assert r.n_registered == 2  # JH-01 (diagnosed 2018) and JH-05 (2019-03) are registered by then
    assert r.follow_up is None and r.survival["os"] is None
    assert _lookup(r.outcomes, "outcome", "Engraftment syndrome") == "0/0"
    md = render_markdown(r)
    assert md.startswith("# Outcomes report: 0 patients transplanted")
    for fig in render_figures(r).values():  # empty figures still draw
        assert fig.axes


def test_markdown_and_html_render(report: Report):
    md = render_markdown(report, {"swimmer": "swimmer.png"})
    for heading in ("## Parameters", "## Table 1.", "## Table 2.", "## Patients", "## Figures"):
        assert heading in md
    assert "![Figure 1." in md and "(swimmer.png)" in md
    # the centre's report: nothing of the seed paper's abstract in it
    assert "abstract" not in md.lower() and "jh2132" not in md.lower()
    page = render_html(report, {"swimmer": "<svg id=\"x\"></svg>"})
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<svg" in page
    assert not re.search(r"""(src|href)=["']https?:""", page) and "<link" not in page


def test_figure_frames(report: Report):
    assert report.swimmer_lanes["patient_id"].to_list() == ["JH-01", "JH-02", "JH-03", "JH-04", "JH-05"]
    lanes = {r["patient_id"]: r for r in report.swimmer_lanes.to_dicts()}
    assert lanes["JH-05"]["end_day"] == 52 and lanes["JH-01"]["end_day"] == 1015
    assert lanes["JH-01"]["start_day"] == -115  # blinatumomab cycle 1 started 2022-07-16, HSCT 2022-11-08
    blina = report.swimmer_spans.filter(pl.col("kind") == "blinatumomab")
    assert blina.height == 8  # 2 + 1 + 2 + 1 + 2 cycles
    assert (blina["end_day"] - blina["start_day"]).to_list() == [28] * 8
    kinds = report.swimmer_markers.group_by("kind").len().sort("kind")
    counts = dict(zip(kinds["kind"], kinds["len"]))
    assert counts["engraftment_syndrome"] == 4 and counts["last_contact"] == 5
    assert counts["neutrophil_engraftment"] == counts["platelet_engraftment"] == 5
    assert "death" not in counts
    assert set(report.counts.columns) == {"patient_id", "day", "anc", "platelets"}
    jh05 = report.counts.filter((pl.col("patient_id") == "JH-05") & (pl.col("day") == 11))
    assert jh05["anc"].to_list() == [0.46]  # the lowest of the day's two counts
    assert report.transfusions.filter(pl.col("patient_id") == "JH-01")["day"].to_list() == [1, 3, 6]


def test_figures_written_as_png_and_svg(report: Report, tmp_path: Path):
    figs = render_figures(report)
    assert set(figs) == {"swimmer", "survival", "incidence", "counts"}
    for stem, fig in figs.items():
        saved = F.save_figure(fig, tmp_path, stem)
        png, svg = Path(saved["png"]), Path(saved["svg"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
        text = svg.read_text(encoding="utf-8")
        assert "<svg" in text and svg.stat().st_size > 5_000
        assert "<dc:date>" not in text
        assert saved["svg_markup"].startswith("<svg") and f'id="{stem}-' in saved["svg_markup"]
    assert "JH-03" in (tmp_path / "swimmer.svg").read_text(encoding="utf-8")  # fonttype none: text is text


def test_figures_are_deterministic(report: Report, tmp_path: Path):
    fig = F.km_plot(report.survival)
    a = F.save_figure(fig, tmp_path / "a", "km")
    b = F.save_figure(F.km_plot(report.survival), tmp_path / "b", "km")
    assert Path(a["svg"]).read_bytes() == Path(b["svg"]).read_bytes()
    assert Path(a["png"]).read_bytes() == Path(b["png"]).read_bytes()


AML_THEN_BALL = [
    {"type": "patient_registered", "patient_id": "TX-1", "occurred_on": "2023-01-05", "birth_date": "2012-04-02",
     "sex": "female"},
    {"type": "diagnosis", "patient_id": "TX-1", "occurred_on": "2023-01-05", "disease": "aml"},
    {"type": "diagnosis", "patient_id": "TX-1", "occurred_on": "2023-06-01", "disease": "b_all",
     "risk_group": "high", "genetics": ["KMT2A::AFF1"]},
    {"type": "relapse", "patient_id": "TX-1", "occurred_on": "2023-10-02", "site": "bone_marrow"},
    {"type": "conditioning_started", "patient_id": "TX-1", "occurred_on": "2024-01-03", "regimen": "TBI/VP16",
     "intensity": "myeloablative", "tbi_gy": 12},
    {"type": "gvhd_prophylaxis_started", "patient_id": "TX-1", "occurred_on": "2024-01-08",
     "agents": ["tacrolimus", "mmf"]},
    {"type": "stem_cell_infusion", "patient_id": "TX-1", "occurred_on": "2024-01-10", "donor": "matched_unrelated",
     "graft_source": "peripheral_blood", "hla_match": "9/10", "cd34_e6_per_kg": 6.1},
    {"type": "gvhd_prophylaxis_started", "patient_id": "TX-1", "occurred_on": "2024-01-13", "agents": ["ptcy"]},
    {"type": "follow_up", "patient_id": "TX-1", "occurred_on": "2024-06-01", "disease_status": "remission"},
]


def test_table1_is_the_patients_row(tmp_path):
    """One definition of each fact (the defect: the report re-derived diagnosis and prophylaxis from payloads
    and disagreed with `patients` for a patient with AML, then B-ALL, and prophylaxis before and after day 0)."""
    with Timeline.open(tmp_path / "data") as tl:
        tl.ingest(AML_THEN_BALL)
        tl.project()
        report = build_report(tl)
        row = tl.sql("SELECT * FROM patients WHERE patient_id = 'TX-1'").row(0, named=True)
    table1 = dict(zip(report.table1["characteristic"], report.table1["value"], strict=True))
    from timeline.queries.labels import label

    one = "1 (100%)"
    assert (row["disease"], row["diagnosis_on"].isoformat()) == ("b_all", "2023-06-01")
    assert table1["Diagnosis"] == f"{label(row['disease'])} {one}"
    assert table1["Diagnosis date (range)"] == str(row["diagnosis_on"])  # one patient: one date
    assert table1["GVHD prophylaxis"] == f"{label(row['gvhd_prophylaxis'])} {one}"
    assert table1["HLA match"] == f"{row['hla_match']} {one}"
    assert table1["Conditioning regimen"] == f"{label(row['conditioning_regimen'])} {one}"
    assert table1["Relapses before HSCT"] == f"{row['relapse_count_before_hsct']} relapse {one}"
