"""Unit tests of the event vocabulary (timeline.events) against the contract in docs/events.md."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from uuid import UUID, uuid4, uuid5

import pytest
from pydantic import ValidationError

from timeline.events.problems import TYPES_HINT
from timeline.events import (
    EVENT_ADAPTER,
    EVENT_ID_NAMESPACE,
    EVENT_TYPES,
    BloodCount,
    EventBase,
    EventCorrected,
    GvhdDiagnosed,
    Problem,
    canonical_json,
    content_event_id,
    json_schema,
    list_fields,
    magic_overall_grade,
    parse_event,
    parse_event_json,
    problems_from,
    to_json_dict,
)
from timeline.clock import latest_clinical_date
from timeline.events.examples import EXAMPLES as DOC_EXAMPLES

ENVELOPE = {"patient_id": "JH2132-01", "occurred_on": "2024-03-14"}
SOME_ID = "0b7e3f4a-5c6d-4e8f-9a0b-1c2d3e4f5a6b"

# A minimal valid example of every type in docs/events.md (the contract's list of type names).
EXAMPLES: dict[str, dict] = {
    "patient_registered": {"birth_date": "2012-05-01", "sex": "female"},
    "diagnosis": {"disease": "b_all", "risk_group": "high", "genetics": ["KMT2A-r", "IKZF1 del"]},
    "relapse": {"site": "bone_marrow", "marrow_blasts_percent": 42.5},
    "disease_assessment": {"response": "complete_remission", "marrow_blasts_percent": 1.0},
    "mrd_test": {"method": "flow", "specimen": "bone_marrow", "below_detection": True, "sensitivity_percent": 0.01},
    "chemotherapy_started": {"regimen": "FLAG-Ida", "intent": "salvage"},
    "chemotherapy_stopped": {"regimen": "FLAG-Ida"},
    "blinatumomab_started": {"cycle": 1, "dose_ug_per_m2_day": 15.0},
    "blinatumomab_dose_changed": {"cycle": 1, "dose_ug_per_day": 28.0},
    "blinatumomab_stopped": {"cycle": 1, "reason": "completed"},
    "conditioning_started": {"regimen": "TBI/VP16", "intensity": "myeloablative", "tbi_gy": 12.0, "serotherapy": "atg"},
    "gvhd_prophylaxis_started": {"agents": ["ptcy", "tacrolimus", "mmf"]},
    "stem_cell_infusion": {"donor": "haploidentical", "graft_source": "peripheral_blood", "hla_match": "5/10",
                           "cd34_e6_per_kg": 6.2, "transplant_number": 1},
    "graft_failure": {"kind": "secondary"},
    "donor_lymphocyte_infusion": {"cd3_e6_per_kg": 1.0},
    "engraftment": {"lineage": "neutrophil"},
    "blood_count": {"anc_e9_per_l": 0.62, "platelets_e9_per_l": 18.0},
    "transfusion": {"product": "platelets"},
    "chimerism_test": {"donor_percent": 99.5, "compartment": "t_cell", "method": "str"},
    "viral_load": {"virus": "cmv", "specimen": "plasma", "iu_per_ml": 1500.0},
    "viral_reactivation": {"virus": "cmv", "treated": True},
    "infection": {"category": "bacterial", "organism": "E. coli", "site": "bloodstream"},
    "engraftment_syndrome": {},
    "gvhd_diagnosed": {"kind": "acute", "grade": 2, "skin_stage": 3},
    "gvhd_treatment_started": {"kind": "acute", "line": 1, "agents": ["methylprednisolone"], "steroid_mg_per_kg_day": 2.0},
    "gvhd_response": {"kind": "acute", "response": "partial", "steroid_refractory": False},
    "gvhd_resolved": {"kind": "chronic"},
    "toxicity": {"kind": "crs", "grade": 2},
    "follow_up": {"disease_status": "remission"},
    "death": {"cause": "infection"},
    "consent_withdrawn": {"scope": "all_use"},
    "event_corrected": {"corrects": SOME_ID,
                        "replacement": {"type": "blood_count", "occurred_on": "2024-03-13", "anc_e9_per_l": 0.7}},
    "event_retracted": {"retracts": SOME_ID, "reason": "entered for the wrong patient"},
}


def event(type_name: str, **fields) -> dict:
    return {"type": type_name, **ENVELOPE, **EXAMPLES[type_name], **fields}


def problems(obj: dict) -> list[Problem]:
    """The problems of a dict, checked to be the same on the JSON path."""
    with pytest.raises(ValidationError) as python_error:
        parse_event(obj)
    found = problems_from(python_error.value)
    with pytest.raises(ValidationError) as json_error:
        parse_event_json(json.dumps(obj))
    assert [p.field for p in problems_from(json_error.value)] == [p.field for p in found]
    return found


def only_problem(obj: dict) -> Problem:
    found = problems(obj)
    assert len(found) == 1, found
    return found[0]


# --- the catalogue --------------------------------------------------------------------------


def test_catalogue_has_exactly_the_contract_types():
    assert list(EVENT_TYPES) == list(EXAMPLES)
    for name, cls in EVENT_TYPES.items():
        assert issubclass(cls, EventBase)
        assert cls.model_config["frozen"] and cls.model_config["extra"] == "forbid"
        assert cls.__doc__ and cls.__doc__.strip()


@pytest.mark.parametrize("type_name", list(EXAMPLES))
def test_every_type_accepts_its_example_and_round_trips(type_name):
    obj = event(type_name, event_id=SOME_ID, source="form", recorded_by="dm1", note="checked")
    if type_name == "stem_cell_infusion":  # here `source` is the graft source (docs/events.md)
        obj["source"] = "peripheral_blood"
    parsed = parse_event(obj)
    assert isinstance(parsed, EVENT_TYPES[type_name])
    assert to_json_dict(parsed) == obj
    assert parse_event_json(json.dumps(obj)) == parsed


@pytest.mark.parametrize("type_name", list(EXAMPLES))
def test_every_type_rejects_an_unknown_field(type_name):
    assert only_problem(event(type_name, colour="blue")) == Problem("colour", "blue", "unknown field")


def test_models_are_frozen():
    count = BloodCount(patient_id="P1", occurred_on=date(2024, 1, 2), anc_e9_per_l=0.4)
    with pytest.raises(ValidationError):
        count.anc_e9_per_l = 1.0


def test_recorded_at_is_not_input():
    assert only_problem(event("death", recorded_at="2024-03-14T10:00:00Z")).rule == \
        "unknown field; did you mean `recorded_by`?"


# --- typical bad values, one per rule -------------------------------------------------------

BAD_VALUES = [
    ("patient_registered", {"sex": "f"}, "sex", "must be one of: female, male, other, unknown"),
    ("patient_registered", {"birth_date": "01/05/2012"}, "birth_date", "must be a real date YYYY-MM-DD"),
    ("diagnosis", {"disease": "ALL"}, "disease", "must be one of: b_all, t_all, aml, mpal, cml, mds, other"),
    ("diagnosis", {"genetics": []}, "genetics", "must not be empty"),
    ("relapse", {"marrow_blasts_percent": 101}, "marrow_blasts_percent", "expected % of marrow cells, 0–100"),
    ("disease_assessment", {"response": "CR"}, "response", None),
    ("mrd_test", {"sensitivity_percent": -0.1}, "sensitivity_percent",
     "expected % of nucleated cells, above 0 and at most 100"),
    ("mrd_test", {"method": "elisa"}, "method", "must be one of: flow, pcr, ngs"),
    ("chemotherapy_started", {"intent": "palliative"}, "intent", None),
    ("chemotherapy_started", {"regimen": ""}, "regimen", "must not be empty"),
    ("chemotherapy_stopped", {"intent": "salvage"}, "intent", "unknown field; did you mean `note`?"),
    ("blinatumomab_started", {"cycle": 0}, "cycle", "must be ≥ 1"),
    ("blinatumomab_started", {"cycle": 1.5}, "cycle", "must be a whole number"),
    ("blinatumomab_started", {"dose_ug_per_m2_day": 0}, "dose_ug_per_m2_day",
     "expected µg/m²/day, above 0 and at most 60"),
    ("blinatumomab_dose_changed", {"dose_ug_per_day": -9}, "dose_ug_per_day",
     "expected µg/day, above 0 and at most 120"),
    ("blinatumomab_stopped", {"reason": "relapse"}, "reason", None),
    ("conditioning_started", {"tbi_gy": -2}, "tbi_gy", "expected Gy, 0–20"),
    ("conditioning_started", {"intensity": "ric"}, "intensity", None),
    ("gvhd_prophylaxis_started", {"agents": ["ptcy", "csa"]}, "agents[1]", None),
    ("gvhd_prophylaxis_started", {"agents": "ptcy"}, "agents", "must be a list (in CSV: values separated by |)"),
    ("stem_cell_infusion", {"hla_match": "10-10"}, "hla_match", "must be matched/typed alleles like 10/10"),
    ("stem_cell_infusion", {"cd34_e6_per_kg": 0}, "cd34_e6_per_kg",
     "expected ×10⁶/kg, above 0 and at most 100"),
    ("stem_cell_infusion", {"transplant_number": 0}, "transplant_number", "must be ≥ 1"),
    ("stem_cell_infusion", {"graft_source": "lab"}, "graft_source",
     "must be one of: bone_marrow, peripheral_blood, cord_blood"),
    ("graft_failure", {"kind": "late"}, "kind", "must be one of: primary, secondary"),
    ("donor_lymphocyte_infusion", {"cd3_e6_per_kg": -1}, "cd3_e6_per_kg",
     "expected ×10⁶/kg, above 0 and at most 1000"),
    ("engraftment", {"lineage": "red_cells"}, "lineage", "must be one of: neutrophil, platelet"),
    ("blood_count", {"anc_e9_per_l": -0.1}, "anc_e9_per_l", "expected ×10⁹/L, 0–100"),
    ("blood_count", {"hb_g_per_dl": "low"}, "hb_g_per_dl", "must be a number"),
    ("transfusion", {"product": "plasma"}, "product", None),
    ("chimerism_test", {"donor_percent": 100.5}, "donor_percent", "expected % donor cells, 0–100"),
    ("chimerism_test", {"compartment": "cd3"}, "compartment", None),
    ("viral_load", {"iu_per_ml": -1}, "iu_per_ml", "expected IU/mL, 0–10,000,000,000"),
    ("viral_load", {"virus": "hsv"}, "virus", "must be one of: cmv, ebv, adenovirus, bk, hhv6, other"),
    ("viral_reactivation", {"treated": "maybe"}, "treated", "must be true or false"),
    ("infection", {"site": "blood"}, "site", None),
    ("gvhd_diagnosed", {"upper_gi_stage": 2}, "upper_gi_stage", "must be ≤ 1"),
    ("gvhd_diagnosed", {"skin_stage": 5}, "skin_stage", "must be ≤ 4"),
    ("gvhd_diagnosed", {"grade": 0, "skin_stage": None}, "grade", "must be ≥ 1"),
    ("gvhd_treatment_started", {"line": 0}, "line", "must be ≥ 1"),
    ("gvhd_treatment_started", {"agents": []}, "agents", "must not be empty"),
    ("gvhd_treatment_started", {"steroid_mg_per_kg_day": -1}, "steroid_mg_per_kg_day",
     "expected mg/kg/day prednisone equivalent, 0–30"),
    ("gvhd_response", {"steroid_refractory": "yes"}, "steroid_refractory", "must be true or false"),
    ("gvhd_response", {"response": "cr"}, "response", None),
    ("gvhd_resolved", {"kind": "both"}, "kind", "must be one of: acute, chronic"),
    ("toxicity", {"grade": 6}, "grade", "must be ≤ 5"),
    ("toxicity", {"kind": "gvhd"}, "kind", None),
    ("follow_up", {"disease_status": "alive"}, "disease_status", None),
    ("death", {"cause": "old_age"}, "cause", None),
    ("event_corrected", {"corrects": "not-a-uuid"}, "corrects", "must be a UUID"),
    ("event_corrected", {"replacement": "blood_count"}, "replacement", "must be an object"),
    ("event_retracted", {"reason": ""}, "reason", "must not be empty"),
]


@pytest.mark.parametrize(("type_name", "fields", "field", "rule"), BAD_VALUES,
                         ids=[f"{t}-{f}" for t, _, f, _ in BAD_VALUES])
def test_typical_bad_values_name_their_field(type_name, fields, field, rule):
    obj = {k: v for k, v in event(type_name, **fields).items() if v is not None}
    problem = only_problem(obj)
    assert problem.field == field
    assert problem.value == fields.get(field.split("[")[0]) or field.endswith("]")
    if rule is not None:
        assert problem.rule == rule
    else:
        assert problem.rule.startswith("must be one of: ")


def test_missing_required_fields_are_all_reported():
    found = problems({"type": "stem_cell_infusion", "patient_id": "P1"})
    assert {(p.field, p.rule) for p in found} == {
        ("occurred_on", "required"), ("donor", "required"), ("graft_source", "required")}
    assert all(p.value is None for p in found)


def test_every_problem_of_an_event_is_reported_at_once():
    found = problems(event("blood_count", patient_id="bad id", anc_e9_per_l=-1, wbc_e9_per_l="x", extra=1))
    assert [p.field for p in found] == ["patient_id", "anc_e9_per_l", "wbc_e9_per_l", "extra"]


# --- envelope ---------------------------------------------------------------------------------

@pytest.mark.parametrize("patient_id", ["", "x" * 65, "has space", "é1", "P/1", "P#1"])
def test_patient_id_alphabet_and_length(patient_id):
    problem = only_problem(event("death", patient_id=patient_id))
    assert problem == Problem("patient_id", patient_id, "must be 1–64 characters from A–Z a–z 0–9 - _ .")


def test_patient_id_edges_are_accepted():
    for patient_id in ("x", "x" * 64, "A-z_0.9"):
        assert parse_event(event("death", patient_id=patient_id)).patient_id == patient_id


@pytest.mark.parametrize("value", ["2024-03-14T00:00:00", "2024-03-14T00:00:00Z", "14/03/2024", "2024-3-14",
                                   "20240314", "2024-02-30", "2023-02-29", "", 20240314, 1710374400])
def test_dates_must_be_real_iso_days(value):
    assert only_problem(event("death", occurred_on=value)) == Problem(
        "occurred_on", value, "must be a real date YYYY-MM-DD")


def test_python_dates_accept_date_but_not_datetime():
    assert parse_event(event("death", occurred_on=date(2024, 2, 29))).occurred_on == date(2024, 2, 29)
    with pytest.raises(ValidationError) as error:
        parse_event(event("death", occurred_on=datetime(2024, 2, 29)))
    assert problems_from(error.value)[0].field == "occurred_on"


def test_dates_may_not_lie_in_the_future():
    latest = latest_clinical_date()
    assert parse_event(event("death", occurred_on=latest.isoformat())).occurred_on == latest
    tomorrow = (latest + timedelta(days=1)).isoformat()
    assert only_problem(event("death", occurred_on=tomorrow)) == Problem(
        "occurred_on", tomorrow, "must not be in the future")
    assert only_problem(event("patient_registered", birth_date=tomorrow)).field == "birth_date"


def test_note_at_most_2000_characters():
    assert parse_event(event("death", note="n" * 2000)).note == "n" * 2000
    assert only_problem(event("death", note="n" * 2001)).rule == "must be at most 2,000 characters (docs/limits.md)"


def test_event_id_must_be_a_uuid():
    assert only_problem(event("death", event_id="42")) == Problem("event_id", "42", "must be a UUID")


def test_unknown_or_missing_type_is_one_problem_naming_the_closest_type():
    """The list of types is given once per file by the reader (tests/test_errors_that_help.py), not per line."""
    for obj, value, rule in (({**ENVELOPE, "type": "bloodcount"}, "bloodcount",
                              "unknown type; did you mean `blood_count`?"),
                             ({**ENVELOPE, "type": "xyz"}, "xyz", "unknown type"),
                             (dict(ENVELOPE), None, "required: the event type")):
        problem = only_problem(obj)
        assert (problem.field, problem.value, problem.rule) == ("type", value, rule)
    assert TYPES_HINT.count(",") == len(EVENT_TYPES) - 1


def test_a_non_object_is_one_problem():
    with pytest.raises(ValidationError) as error:
        parse_event_json("[1, 2]")
    assert len(problems_from(error.value)) == 1


# --- CSV and JSON input forms -----------------------------------------------------------------

def test_python_input_accepts_csv_text_for_numbers_and_booleans():
    row = {"type": "mrd_test", **ENVELOPE, "method": "pcr", "specimen": "bone_marrow",
           "below_detection": "true", "sensitivity_percent": "0.001"}
    assert to_json_dict(parse_event(row))["below_detection"] is True
    row = {"type": "viral_load", **ENVELOPE, "virus": "ebv", "specimen": "plasma", "iu_per_ml": "250",
           "below_detection": "FALSE"}
    assert parse_event(row).below_detection is False
    assert parse_event(event("blinatumomab_started", cycle="2")).cycle == 2


def test_json_input_takes_json_types_only():
    for fields, field in (({"cycle": "2"}, "cycle"), ({"cycle": True}, "cycle"),
                          ({"dose_ug_per_m2_day": "15"}, "dose_ug_per_m2_day")):
        with pytest.raises(ValidationError) as error:
            parse_event_json(json.dumps(event("blinatumomab_started", **fields)))
        assert [p.field for p in problems_from(error.value)] == [field]


@pytest.mark.parametrize("value", ["yes", "1", 1, 0, "t"])
def test_booleans_are_true_or_false_only(value):
    assert only_problem(event("viral_reactivation", treated=value)).rule == "must be true or false"


# --- either/or rules --------------------------------------------------------------------------

def test_mrd_result_or_below_detection_with_sensitivity():
    base = {"type": "mrd_test", **ENVELOPE, "method": "flow", "specimen": "bone_marrow"}
    assert parse_event({**base, "result_percent": 0.02}).result_percent == 0.02
    assert parse_event({**base, "result_percent": 0.0, "sensitivity_percent": 0.01}).sensitivity_percent == 0.01
    assert only_problem(base).field == "result_percent"
    assert only_problem({**base, "below_detection": True}).field == "sensitivity_percent"
    assert only_problem({**base, "below_detection": False}).field == "result_percent"
    both = only_problem({**base, "result_percent": 0.1, "below_detection": True, "sensitivity_percent": 0.01})
    assert both.field == "result_percent" and "not both" in both.rule


@pytest.mark.parametrize("type_name", ["blinatumomab_started", "blinatumomab_dose_changed"])
def test_blinatumomab_exactly_one_dose(type_name):
    base = {"type": type_name, **ENVELOPE, "cycle": 2}
    neither = only_problem(base)
    assert neither.field == "dose_ug_per_m2_day" and "exactly one" in neither.rule
    both = only_problem({**base, "dose_ug_per_m2_day": 15, "dose_ug_per_day": 28})
    assert both.field == "dose_ug_per_day" and "exactly one" in both.rule


def test_blood_count_needs_a_value():
    problem = only_problem({"type": "blood_count", **ENVELOPE})
    assert problem.field == "anc_e9_per_l" and "at least one of" in problem.rule
    assert parse_event({"type": "blood_count", **ENVELOPE, "hb_g_per_dl": 0}).hb_g_per_dl == 0


def test_viral_load_value_or_below_detection():
    base = {"type": "viral_load", **ENVELOPE, "virus": "cmv", "specimen": "plasma"}
    assert parse_event({**base, "below_detection": True}).iu_per_ml is None
    assert only_problem(base).field == "iu_per_ml"
    assert "not both" in only_problem({**base, "iu_per_ml": 10, "below_detection": True}).rule


# --- acute GVHD: MAGIC grade ------------------------------------------------------------------

@pytest.mark.parametrize(("stages", "grade"), [
    ({"skin": 3}, 2),          # not the max stage: skin 3 alone is grade II
    ({"lower_gi": 2}, 3),      # lower GI 2 alone is grade III
    ({"upper_gi": 1}, 2),      # upper GI 1 alone is grade II
    ({"liver": 4}, 4),
    ({"skin": 4}, 4),
    ({"liver": 1}, 2),
    ({"liver": 3}, 3),
    ({"skin": 2}, 1),
    ({"skin": 1, "upper_gi": 1}, 2),
    ({"skin": 3, "lower_gi": 3}, 3),
    ({"skin": 2, "liver": 1, "lower_gi": 4}, 4),
    ({}, 0),
])
def test_magic_overall_grade_examples(stages, grade):
    args = {"skin": 0, "liver": 0, "upper_gi": 0, "lower_gi": 0, **stages}
    assert magic_overall_grade(**args) == grade


def test_magic_overall_grade_matches_an_organ_wise_oracle():
    # Independent formulation: the top-down rule equals the maximum of per-organ grade contributions.
    skin = {0: 0, 1: 1, 2: 1, 3: 2, 4: 4}
    liver = lower_gi = {0: 0, 1: 2, 2: 3, 3: 3, 4: 4}
    upper_gi = {0: 0, 1: 2}
    for s, l, u, g in itertools.product(range(5), range(5), range(2), range(5)):
        assert magic_overall_grade(s, l, u, g) == max(skin[s], liver[l], upper_gi[u], lower_gi[g])


def gvhd(**fields) -> dict:
    return {"type": "gvhd_diagnosed", **ENVELOPE, "kind": "acute", **fields}


def test_acute_grade_is_derived_and_stored():
    derived = parse_event(gvhd(skin_stage=3))
    assert derived.grade == 2
    assert to_json_dict(derived)["grade"] == 2
    assert parse_event_json(json.dumps(gvhd(lower_gi_stage=2, skin_stage=1))).grade == 3
    assert GvhdDiagnosed(patient_id="P1", occurred_on=date(2024, 1, 1), kind="acute", upper_gi_stage=1).grade == 2
    assert parse_event(gvhd(grade=3)).grade == 3  # a grade without stages is taken as given


def test_given_grade_must_agree_with_the_stages():
    assert parse_event(gvhd(grade=2, skin_stage=3)).grade == 2
    problem = only_problem(gvhd(grade=3, skin_stage=3))
    assert problem.field == "grade" and problem.value == 3
    assert "grade 3" in problem.rule and "MAGIC grade 2" in problem.rule


def test_all_stages_zero_is_no_gvhd():
    problem = only_problem(gvhd(skin_stage=0, lower_gi_stage=0))
    assert problem.field == "grade" and "no acute GVHD" in problem.rule


def test_acute_needs_grade_or_stages_and_no_severity():
    assert only_problem(gvhd()).field == "grade"
    assert only_problem(gvhd(grade=1, severity="mild")).field == "severity"


def test_chronic_needs_severity_and_no_acute_fields():
    chronic = {"type": "gvhd_diagnosed", **ENVELOPE, "kind": "chronic"}
    assert parse_event({**chronic, "severity": "moderate"}).grade is None
    assert only_problem(chronic).field == "severity"
    found = problems({**chronic, "severity": "mild", "grade": 2, "liver_stage": 1})
    assert [p.field for p in found] == ["grade", "liver_stage"]


# --- corrections ------------------------------------------------------------------------------

def correction(replacement: dict) -> dict:
    return {"type": "event_corrected", **ENVELOPE, "corrects": SOME_ID, "replacement": replacement}


def test_replacement_is_validated_and_kept_canonical():
    corrected = parse_event(correction({"type": "gvhd_diagnosed", "occurred_on": "2024-03-01", "kind": "acute",
                                        "skin_stage": "3"}))
    assert corrected.replacement == {"type": "gvhd_diagnosed", "occurred_on": "2024-03-01", "kind": "acute",
                                     "grade": 2, "skin_stage": 3}
    replacement = corrected.replacement_event()
    assert isinstance(replacement, GvhdDiagnosed)
    assert replacement.patient_id == ENVELOPE["patient_id"] and replacement.grade == 2
    assert to_json_dict(corrected)["replacement"] == corrected.replacement


def test_replacement_may_change_type_and_date():
    corrected = parse_event(correction({"type": "stem_cell_infusion", "occurred_on": "2024-01-01",
                                        "donor": "matched_sibling", "graft_source": "bone_marrow"}))
    assert corrected.replacement["transplant_number"] == 1
    assert corrected.replacement_event().occurred_on == date(2024, 1, 1)


def test_replacement_errors_are_located_inside_it():
    problem = only_problem(correction({"type": "gvhd_diagnosed", "occurred_on": "2024-03-01", "kind": "acute",
                                       "grade": 3, "skin_stage": 3}))
    assert problem.field == "replacement.grade" and "MAGIC grade 2" in problem.rule
    problem = only_problem(correction({"type": "blood_count", "occurred_on": "2024-03-01", "anc_e9_per_l": -1}))
    assert problem == Problem("replacement.anc_e9_per_l", -1, "expected ×10⁹/L, 0–100")
    found = problems(correction({"type": "death", "cause": "x", "extra": 1}))
    assert {p.field for p in found} == {"replacement.occurred_on", "replacement.cause", "replacement.extra"}


def test_replacement_fields_are_as_strict_as_top_level_fields():
    base = {"type": "viral_reactivation", "occurred_on": "2024-03-01", "virus": "cmv"}
    assert parse_event(correction({**base, "treated": "true"})).replacement["treated"] is True
    assert only_problem(correction({**base, "treated": "yes"})) == Problem(
        "replacement.treated", "yes", "must be true or false")
    assert only_problem(correction({**base, "occurred_on": "2024-03-01T00:00:00"})).field == "replacement.occurred_on"


def test_replacement_carries_no_patient_or_event_id():
    base = {"type": "death", "occurred_on": "2024-03-01", "cause": "relapse"}
    assert only_problem(correction({**base, "patient_id": "other"})).field == "replacement.patient_id"
    assert only_problem(correction({**base, "event_id": SOME_ID})).field == "replacement.event_id"


@pytest.mark.parametrize("type_name", ["event_corrected", "event_retracted", "nonsense", None])
def test_replacement_type_must_be_an_ordinary_event(type_name):
    replacement = {"occurred_on": "2024-03-01"} | ({"type": type_name} if type_name else {})
    problem = only_problem(correction(replacement))
    assert problem.field == "replacement.type" and problem.value == type_name


def test_replacement_is_checked_even_when_patient_id_is_bad():
    found = problems({**correction({"type": "death", "occurred_on": "2024-03-01", "cause": "x"}),
                      "patient_id": "bad id"})
    assert [p.field for p in found] == ["patient_id", "replacement.cause"]


def test_direct_construction_of_a_correction():
    corrected = EventCorrected(patient_id="P1", occurred_on=date(2024, 5, 1), corrects=UUID(SOME_ID),
                               replacement={"type": "follow_up", "occurred_on": "2024-04-30",
                                            "disease_status": "remission"})
    assert corrected.replacement_event().patient_id == "P1"


def test_retraction_needs_a_reason():
    retraction = {"type": "event_retracted", **ENVELOPE, "retracts": SOME_ID}
    assert only_problem(retraction) == Problem("reason", None, "required")
    assert parse_event({**retraction, "reason": "duplicate"}).retracts == UUID(SOME_ID)


# --- schema, ids, list fields -----------------------------------------------------------------

def test_json_schema_is_generated_with_every_type():
    schema = json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)
    assert len(schema["oneOf"]) == len(EVENT_TYPES)
    plain = EVENT_ADAPTER.json_schema()
    for name, cls in EVENT_TYPES.items():
        definition = schema["$defs"][cls.__name__]
        assert definition.pop("examples") == [DOC_EXAMPLES[name]]  # the one addition to the generated schema
        assert definition["required"][:2] == ["type", "patient_id"]
        assert definition["properties"]["occurred_on"]["format"] == "date"
        assert definition["properties"]["occurred_on"]["description"]
        assert definition["additionalProperties"] is False
    assert schema == plain | {k: schema[k] for k in ("$schema", "title")}
    upper_gi = schema["$defs"]["GvhdDiagnosed"]["properties"]["upper_gi_stage"]["anyOf"][0]
    assert (upper_gi["minimum"], upper_gi["maximum"]) == (0, 1)
    json.dumps(schema)


def test_content_event_id_is_stable_and_ignores_event_id():
    obj = event("blood_count")
    first = content_event_id(parse_event(obj))
    assert first.version == 5
    assert content_event_id(parse_event_json(json.dumps(obj))) == first
    assert content_event_id(parse_event({**obj, "event_id": str(uuid4())})) == first
    assert content_event_id(parse_event(dict(reversed(list(obj.items()))))) == first
    # the same values as CSV text or as another JSON number spelling are the same content
    assert content_event_id(parse_event({**obj, "anc_e9_per_l": "0.62", "platelets_e9_per_l": "18"})) == first
    assert content_event_id(parse_event({**obj, "anc_e9_per_l": 0.63})) != first
    assert content_event_id(parse_event({**obj, "patient_id": "JH2132-02"})) != first
    # pinned: ids already stored depend on the canonical form and the namespace
    canonical = ('{"type":"blood_count","patient_id":"JH2132-01","occurred_on":"2024-03-14",'
                 '"anc_e9_per_l":0.62,"platelets_e9_per_l":18.0}')
    assert canonical_json(parse_event(obj)) == canonical.encode()
    assert first == uuid5(EVENT_ID_NAMESPACE, canonical) == UUID("8b635f47-d9c8-5926-9049-a9053ec48470")


def test_content_event_id_of_a_correction_ignores_replacement_key_order():
    a = correction({"type": "death", "occurred_on": "2024-03-01", "cause": "relapse"})
    b = correction({"cause": "relapse", "occurred_on": "2024-03-01", "type": "death"})
    assert content_event_id(parse_event(a)) == content_event_id(parse_event(b))


def test_defaults_and_derived_values_are_content():
    infusion = {"type": "stem_cell_infusion", **ENVELOPE, "donor": "matched_sibling", "graft_source": "bone_marrow"}
    assert content_event_id(parse_event(infusion)) == content_event_id(parse_event({**infusion, "transplant_number": 1}))
    assert content_event_id(parse_event(gvhd(skin_stage=3))) == content_event_id(parse_event(gvhd(skin_stage=3, grade=2)))


def test_list_fields():
    assert list_fields("diagnosis") == {"genetics"}
    assert list_fields("gvhd_prophylaxis_started") == {"agents"}
    assert list_fields("gvhd_treatment_started") == {"agents"}
    assert list_fields("blood_count") == set()
    assert list_fields("no_such_type") == set()
    assert all(not list_fields(name) for name in EVENT_TYPES
               if name not in ("diagnosis", "gvhd_prophylaxis_started", "gvhd_treatment_started"))
