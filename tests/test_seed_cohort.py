"""The seed cohort (doi:10.14740/jh2132) end to end: raw event files -> store -> projections -> report.

Every number of the paper's abstract is asserted against `fixtures/seed/cohort.json` `expected`, from
the values the report computed on the projections (never from cohort.json itself), plus the per-patient
design values of `per_patient` against the report's patient listing.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from timeline.app import Timeline
from timeline.demo import seed_files
from timeline.queries.report import Report

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"
COHORT = json.loads((SEED / "cohort.json").read_text(encoding="utf-8"))
EXPECTED = COHORT["expected"]
CUTOFF = COHORT["data_cutoff"]


@pytest.fixture(scope="module")
def timeline(seed_timeline) -> Timeline:
    return seed_timeline  # conftest: ingested and projected once per session


@pytest.fixture(scope="module")
def report(seed_report) -> Report:
    return seed_report


@pytest.fixture(scope="module")
def values(report: Report) -> dict:
    return report.values


def test_cohort_file_lists_every_fixture():
    assert sorted(p.name for p in seed_files(SEED)) == sorted(COHORT["files"])


def test_parameters_are_the_defaults_expected_assumes(report: Report):
    params = {r["name"]: r["value"] for r in report.parameters.to_dicts()}
    assert not report.parameters["overridden"].any()
    for name, value in COHORT["parameters"].items():
        if name in params:  # cohort.json names a few rules by their clinical name only
            assert float(params[name]) == pytest.approx(float(value)), name


def test_patients_and_diagnosis(values):
    assert values["n_patients"] == EXPECTED["n_patients"] == 5
    assert values["n_registered"] == 5
    assert values["diagnosis"] == EXPECTED["diagnosis"]
    assert values["relapsed_before_hsct"] == EXPECTED["n_patients"]  # relapsed B-ALL, each before HSCT


def test_transplant_dates_and_ages_within_the_paper(values):
    lo, hi = (date.fromisoformat(d) for d in EXPECTED["hsct_on_between"])
    first, last = values["hsct_on_range"]
    assert lo <= first <= last <= hi
    a_lo, a_hi = EXPECTED["age_at_hsct_years_between"]
    assert a_lo <= values["age_at_hsct_years_range"][0] <= values["age_at_hsct_years_range"][1] <= a_hi


def test_blinatumomab_one_to_two_completed_28_day_cycles(values):
    assert values["blinatumomab_cycles_range"] == EXPECTED["blinatumomab_cycles_range"] == [1, 2]
    assert values["blinatumomab_completed_all"] == EXPECTED["blinatumomab_completed_all"] == 5
    assert values["blinatumomab_cycle_days_range"] == [28, 28]


def test_mrd_negative_before_hsct_in_all(values):
    assert values["mrd_negative_before_hsct"] == EXPECTED["mrd_negative_before_hsct"] == 5


def test_donors_one_matched_sibling_four_haploidentical(values):
    assert values["donor"] == EXPECTED["donor"] == {"matched_sibling": 1, "haploidentical": 4}


def test_median_interval_blinatumomab_to_hsct(values):
    assert values["median_days_blinatumomab_to_hsct"] == EXPECTED["median_days_blinatumomab_to_hsct"] == 32


def test_median_engraftment_days(values):
    assert values["median_neutrophil_engraftment_day"] == EXPECTED["median_neutrophil_engraftment_day"] == 12
    assert values["median_platelet_engraftment_day"] == EXPECTED["median_platelet_engraftment_day"] == 9
    assert values["neutrophil_engrafted"] == values["platelet_engrafted"] == 5


def test_full_donor_chimerism_within_one_to_three_months_and_sustained(values):
    assert values["full_donor_chimerism_patients"] == EXPECTED["full_donor_chimerism_patients"] == 5
    lo, hi = EXPECTED["full_donor_chimerism_day_between"]
    first, last = values["full_donor_chimerism_day_range"]
    assert lo <= first <= last <= hi
    assert values["full_donor_chimerism_sustained_patients"] == EXPECTED["full_donor_chimerism_sustained_patients"]


@pytest.mark.parametrize("complication", sorted(EXPECTED["complications"]))
def test_complication_counts(values, complication):
    assert values["complications"][complication] == EXPECTED["complications"][complication]


def test_complications_abstract_numbers(values):
    c = values["complications"]
    assert (c["engraftment_syndrome"], c["cmv_reactivation"], c["ebv_reactivation"],
            c["clostridioides_difficile_enterocolitis"], c["sr_agvhd"]) == (4, 4, 1, 1, 2)


def test_no_deaths_no_trm_no_relapse_no_graft_failure(values):
    assert values["deaths"] == EXPECTED["deaths"] == 0
    assert values["transplant_related_mortality"] == EXPECTED["transplant_related_mortality"] == 0
    assert values["relapses_after_hsct"] == EXPECTED["relapses_after_hsct"] == 0
    assert values["graft_failures"] == EXPECTED["graft_failures"] == 0
    assert values["nrm_cumulative_incidence_1y"] == 0.0


def test_follow_up_median_and_range(values):
    assert values["median_follow_up_days"] == EXPECTED["median_follow_up_days"] == 173
    assert values["follow_up_range_days"] == EXPECTED["follow_up_range_days"] == [52, 1015]
    assert values["reverse_km_median_follow_up_days"] == 173  # nobody died: same as the plain median


def test_status_at_last_follow_up(values):
    assert values["alive_at_last_follow_up"] == EXPECTED["alive_at_last_follow_up"] == 5
    assert values["continuous_complete_remission"] == EXPECTED["continuous_complete_remission"] == 5
    assert values["active_gvhd_at_last_follow_up"] == EXPECTED["active_gvhd_at_last_follow_up"] == 0


def test_os_and_efs_at_last_follow_up(values, report: Report):
    assert values["os_at_last_follow_up"] == EXPECTED["os_at_last_follow_up"] == 1.0
    assert values["efs_at_last_follow_up"] == EXPECTED["efs_at_last_follow_up"] == 1.0
    one_year = report.survival_summary.filter(report.survival_summary["what"] == "1 year")
    assert one_year["endpoint"].to_list() == ["os", "efs"]
    assert one_year["estimate"].to_list() == [1.0, 1.0]


def test_every_expected_number_is_checked(values):
    """Each key of `expected` maps to a report value (a new key in cohort.json needs a test here)."""
    ranges = {"hsct_on_between": "hsct_on_range", "age_at_hsct_years_between": "age_at_hsct_years_range",
              "full_donor_chimerism_day_between": "full_donor_chimerism_day_range"}
    for key in EXPECTED:
        assert ranges.get(key, key) in values, key


def test_every_statement_of_the_abstract_is_reproduced(values):
    """`make demo`'s comparison: each statement of cohort.json `abstract` against the computed values."""
    from timeline.demo import compare

    rows = compare(COHORT["abstract"], values)
    assert len(rows) == 21
    assert [r["item"] for r in rows if not r["agrees"]] == []


def test_a_statement_that_does_not_hold_is_reported_as_such(values):
    from timeline.demo import compare

    [row] = compare([{"item": "x", "paper": "n = 3", "expect": {"complications.cmv_reactivation": 3}}], values)
    assert not row["agrees"] and "complications.cmv_reactivation = 4" in row["engine"]
    [row] = compare([{"item": "y", "paper": "", "expect": {"hsct_on_range": {"within": ["2023-01-01", "2025-12-31"]}}}],
                    values)
    assert not row["agrees"]


@pytest.mark.parametrize("design", COHORT["per_patient"], ids=lambda d: d["patient_id"])
def test_per_patient_design_values(report: Report, design: dict):
    rows = report.patients.filter(report.patients["patient_id"] == design["patient_id"]).to_dicts()
    assert len(rows) == 1
    got = rows[0]
    assert got["hsct_on"] == date.fromisoformat(design["hsct_on"])
    assert round(got["age_at_hsct_years"], 1) == design["age_at_hsct_years"]
    for key in ("donor", "graft_source", "conditioning_intensity", "blinatumomab_cycles", "days_blinatumomab_to_hsct",
                "full_donor_chimerism_day", "follow_up_days"):
        assert got[key] == design[key], key
    assert got["cd34_e6_per_kg"] == pytest.approx(design["cd34_e6_per_kg"])
    assert got["neutrophil_day"] == design["neutrophil_engraftment_day"]
    assert got["platelet_day"] == design["platelet_engraftment_day"]
    assert got["blinatumomab_last_stopped_on"] == date.fromisoformat(design["blinatumomab_last_stopped_on"])
    assert got["last_contact_on"] == date.fromisoformat(design["last_contact_on"])
    abstract_kinds = {"engraftment_syndrome", "cmv_reactivation", "ebv_reactivation", "sr_agvhd"}
    listed = set((got["complications"] or "").split(", ")) & abstract_kinds
    assert listed == set(design["complications"]) & abstract_kinds
