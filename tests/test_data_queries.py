"""Every data-quality check, on a minimal patient: it finds what it is meant to find, on the right patient
and event, and says nothing of a clean course. The checks and their documentation: docs/rules.md."""

from __future__ import annotations

import datetime as dt

import pytest

from projection_support import project, rows
from timeline.projections import graph

DAY0 = dt.date(2024, 3, 1)


def d(n: int) -> str:
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def ev(type_: str, day: int, patient: str = "P1", **fields) -> dict:
    return {"type": type_, "patient_id": patient, "occurred_on": d(day), **fields}


def course(patient: str = "P1") -> list[dict]:
    """A clean transplanted course: registration, diagnosis, infusion, counts, follow-up."""
    return [ev("patient_registered", -400, patient, birth_date="2012-05-01", sex="female"),
            ev("diagnosis", -400, patient, disease="b_all"),
            ev("stem_cell_infusion", 0, patient, donor="haploidentical", graft_source="peripheral_blood"),
            *[ev("blood_count", day, patient, anc_e9_per_l=v) for day, v in ((1, 0.1), (14, 0.6), (15, 0.8),
                                                                              (16, 1.0))],
            ev("follow_up", 100, patient, disease_status="remission")]


def queries(events: list[dict], check: str | None = None, **params) -> list[dict]:
    con = project(events, **params)
    found = rows(con, 'SELECT * FROM data_queries ORDER BY patient_id, occurred_on, "check"')
    return [r for r in found if check is None or r["check"] == check]


def test_a_clean_course_has_no_data_query():
    assert queries(course()) == []


def test_there_are_at_least_twenty_checks_each_documented():
    checks = graph.checks()
    assert len(checks) >= 20
    assert all(c.doc and c.severity in ("error", "warning") for c in checks)


CASES = [
    # (check, severity, events added to (or replacing) the clean course, the finding's date)
    ("death_before_hsct", "error", [ev("death", -5, cause="relapse")], d(-5)),
    ("event_after_death", "error", [ev("death", 50, cause="infection"),
                                    ev("blood_count", 60, anc_e9_per_l=2.0)], d(60)),
    ("birth_after_registration", "error", [ev("patient_registered", -400, birth_date=d(-300), sex="female")], d(-400)),
    ("birth_after_event", "error", [{**ev("blood_count", 0, anc_e9_per_l=3.0), "occurred_on": "2011-06-01"}],
     "2011-06-01"),
    ("implausible_age_at_hsct", "warning", [ev("patient_registered", -300, birth_date="1920-01-01", sex="male")],
     d(0)),
    ("blinatumomab_stop_before_start", "error", [ev("blinatumomab_started", -40, cycle=1, dose_ug_per_m2_day=15),
                                                 ev("blinatumomab_stopped", -50, cycle=1, reason="completed")], d(-50)),
    ("blinatumomab_stop_without_start", "warning", [ev("blinatumomab_stopped", -50, cycle=2, reason="completed")],
     d(-50)),
    ("blinatumomab_cycles_overlap", "warning", [
        ev("blinatumomab_started", -90, cycle=1, dose_ug_per_m2_day=15),
        ev("blinatumomab_stopped", -62, cycle=1, reason="completed"),
        ev("blinatumomab_started", -70, cycle=2, dose_ug_per_m2_day=15)], d(-70)),
    ("chemotherapy_stop_before_start", "error", [
        ev("chemotherapy_started", -200, regimen="R3", intent="salvage"),
        ev("chemotherapy_stopped", -250, regimen="R3")], d(-250)),
    ("counts_before_day0_unused", "warning", [ev("blood_count", -3, anc_e9_per_l=2.0)], d(-3)),
    ("recorded_engraftment_set_aside", "warning", [ev("engraftment", 12, lineage="neutrophil")], d(12)),
    ("recorded_engraftment_before_day0", "warning", [ev("engraftment", -2, lineage="platelet")], d(-2)),
    ("primary_graft_failure_after_engraftment", "warning", [ev("graft_failure", 40, kind="primary")], d(40)),
    ("chimerism_looks_like_a_fraction", "warning", [
        ev("chimerism_test", 30, donor_percent=97, compartment="whole_blood"),
        ev("chimerism_test", 60, donor_percent=0.97, compartment="whole_blood")], d(60)),
    ("relapse_with_negative_mrd", "warning", [
        ev("relapse", 90, site="bone_marrow"),
        ev("mrd_test", 90, method="flow", specimen="bone_marrow", below_detection=True, sensitivity_percent=0.01)],
     d(90)),
    ("mrd_negative_at_insufficient_sensitivity", "warning", [
        ev("mrd_test", -10, method="flow", specimen="bone_marrow", below_detection=True, sensitivity_percent=0.1)],
     d(-10)),
    ("chronic_gvhd_treatment_without_diagnosis", "warning", [
        ev("gvhd_treatment_started", 150, kind="chronic", line=1, agents=["prednisone"])], d(150)),
    ("viral_reactivation_before_day1", "warning", [ev("viral_reactivation", 0, virus="cmv")], d(0)),
    ("gvhd_resolved_without_diagnosis", "warning", [ev("gvhd_resolved", 50, kind="acute")], d(50)),
    ("several_records_of_one_fact", "warning", [ev("diagnosis", -100, disease="aml")], d(-100)),
    ("same_day_duplicate", "warning", [ev("stem_cell_infusion", 0, donor="haploidentical",
                                          graft_source="peripheral_blood", cd34_e6_per_kg=7.1)], d(0)),
    ("left_out_of_endpoints", "error", [ev("death", -5, cause="relapse")], d(-5)),
    ("last_contact_before_hsct", "error", [ev("death", -5, cause="relapse")], d(-5)),
]


@pytest.mark.parametrize("check, severity, added, on", CASES, ids=[c[0] for c in CASES])
def test_each_check_finds_its_case(check, severity, added, on):
    found = queries(course() + added + course("P2"), check)
    assert found, f"{check} found nothing"
    assert {r["patient_id"] for r in found} == {"P1"}  # the clean patient P2 is never named
    assert {r["severity"] for r in found} == {severity}
    assert str(found[0]["occurred_on"]) == on
    assert all(r["message"] and r["suggestion"] and "P2" not in r["message"] for r in found)


def test_every_check_has_a_case_here():
    assert {c.name for c in graph.checks()} - {c[0] for c in CASES} <= {
        "registered_not_transplanted", "transplanted_without_registration", "transplanted_without_diagnosis",
        "recorded_engraftment_on_day0"}


def test_registration_infusion_and_diagnosis_missing():
    registered_only = [ev("patient_registered", -10, "P3", birth_date="2015-01-01", sex="male")]
    no_registration = [e for e in course("P4") if e["type"] not in ("patient_registered", "diagnosis")]
    found = {(r["patient_id"], r["check"]) for r in queries(registered_only + no_registration)}
    assert found >= {("P3", "registered_not_transplanted"), ("P4", "transplanted_without_registration"),
                     ("P4", "transplanted_without_diagnosis")}


def test_an_event_query_names_the_event():
    added = ev("engraftment", 12, lineage="neutrophil", event_id="11111111-2222-3333-4444-555555555555")
    [found] = queries(course() + [added], "recorded_engraftment_set_aside")
    assert found["event_id"] == "11111111-2222-3333-4444-555555555555"


def test_the_fraction_check_thresholds_are_parameters():
    added = [ev("chimerism_test", 30, donor_percent=97, compartment="whole_blood"),
             ev("chimerism_test", 60, donor_percent=2, compartment="whole_blood")]
    assert queries(course() + added, "chimerism_looks_like_a_fraction") == []
    assert queries(course() + added, "chimerism_looks_like_a_fraction", chimerism_fraction_at_most_percent=2)


def test_the_same_content_recorded_twice_is_no_duplicate():
    """Records of one fact that differ only in where they came from are the same fact: no query; a copy
    with another value is one."""
    again = [ev("follow_up", 100, disease_status="remission", source="second export"),
             ev("diagnosis", -400, disease="b_all", source="second export")]
    assert queries(course() + again, "same_day_duplicate") == []
    assert queries(course() + again, "several_records_of_one_fact") == []
    other = [ev("follow_up", 100, disease_status="relapse")]
    assert [r["occurred_on"].isoformat() for r in queries(course() + other, "same_day_duplicate")] == [d(100)]
