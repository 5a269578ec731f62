"""Hand-made cases for the engraftment, complications and endpoints projections (docs/rules.md rules)."""

from __future__ import annotations

import datetime as dt

import pytest

from projection_support import project, rows
from timeline.events.complications import GvhdDiagnosed

DAY0 = dt.date(2024, 1, 1)


def d(n: int) -> str:
    """ISO date of post-transplant day n."""
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def ev(patient: str, type_: str, day: int, **fields) -> dict:
    return {"type": type_, "patient_id": patient, "occurred_on": d(day), **fields}


def transplant(patient: str, source: str = "peripheral_blood", donor: str = "matched_unrelated") -> list[dict]:
    return [ev(patient, "diagnosis", -300, disease="b_all"),
            ev(patient, "stem_cell_infusion", 0, donor=donor, graft_source=source)]


def anc(patient: str, series: list[tuple[int, float]]) -> list[dict]:
    return [ev(patient, "blood_count", day, anc_e9_per_l=v) for day, v in series]


def plt(patient: str, series: list[tuple[int, float]]) -> list[dict]:
    return [ev(patient, "blood_count", day, platelets_e9_per_l=v) for day, v in series]


def engraftment(events: list[dict], **overrides) -> dict[str, dict]:
    con = project(events, tables=["engraftment"], **overrides)
    return {r["patient_id"]: r for r in rows(con, "SELECT * FROM engraftment")}


def complications(events: list[dict], **overrides) -> list[dict]:
    con = project(events, tables=["complications"], **overrides)
    return rows(con, "SELECT * FROM complications ORDER BY patient_id, complication, onset_on")


def endpoints(events: list[dict], **overrides) -> dict[tuple[str, str], dict]:
    con = project(events, **overrides)
    return {(r["patient_id"], r["endpoint"]): r for r in rows(con, "SELECT * FROM endpoints")}


# Falls below 0.5 on day 3 and engrafts on day 12 (12, 13, 14 >= 0.5).
ENGRAFTS_DAY_12 = [(3, 0.1), (8, 0.2), (12, 0.6), (13, 0.9), (14, 1.2)]
# CIBMTR worked example: platelet transfusion on day 0, counts d1..d9 -> engraftment day 7.
CIBMTR_PLATELETS = [(1, 35), (2, 30), (3, 25), (4, 10), (5, 15), (6, 19), (7, 23), (8, 25), (9, 40)]


# --------------------------------------------------------------------------------------------- engraftment

def test_platelet_cibmtr_worked_example_engrafts_on_day_7():
    events = transplant("P") + [ev("P", "transfusion", 0, product="platelets")] + plt("P", CIBMTR_PLATELETS)
    row = engraftment(events)["P"]
    assert (row["platelet_day"], row["platelet_on"], row["platelet_basis"]) == (7, DAY0 + dt.timedelta(7), "counts")
    assert row["platelet_status"] == "engrafted"
    assert row["platelet_50_on"] is None  # never 3 values >= 50


def test_platelet_red_cell_transfusion_does_not_block_and_transfusion_in_run_resets():
    # low on day 4; d8, d9 >= 20 eligible, platelets transfused d10 -> run reset; d17..d19 eligible again
    events = transplant("P") + [ev("P", "transfusion", 1, product="red_cells"),
                                ev("P", "transfusion", 10, product="platelets")]
    events += plt("P", [(4, 8), (8, 25), (9, 26), (12, 40), (17, 30), (18, 31), (19, 33)])
    assert engraftment(events)["P"]["platelet_day"] == 17
    # without the platelet transfusion the run d8, d9, d12 engrafts on day 8
    no_tf = [e for e in events if e.get("product") != "platelets"]
    assert engraftment(no_tf)["P"]["platelet_day"] == 8


def test_platelet_threshold_override_and_second_milestone():
    events = transplant("P") + [ev("P", "transfusion", 0, product="platelets")]
    events += plt("P", CIBMTR_PLATELETS + [(10, 55), (11, 60), (12, 45), (14, 52), (15, 58), (16, 70)])
    default = engraftment(events)["P"]
    assert (default["platelet_day"], default["platelet_50_day"]) == (7, 14)  # day-12 value 45 resets the >= 50 run
    assert engraftment(events, platelet_threshold_e9_per_l=50)["P"]["platelet_day"] == 14
    assert engraftment(events, platelet_threshold_e9_per_l="50")["P"]["platelet_day"] == 14
    assert engraftment(events, platelet_transfusion_free_days=10)["P"]["platelet_day"] == 10


def test_neutrophil_run_reset_by_a_low_value():
    events = transplant("P") + anc("P", [(2, 0.1), (10, 0.6), (11, 0.7), (12, 0.3), (14, 0.6), (15, 0.8), (16, 1.0)])
    row = engraftment(events)["P"]
    assert (row["neutrophil_day"], row["neutrophil_status"], row["neutrophil_basis"]) == (14, "engrafted", "counts")
    assert engraftment(events, anc_run_length=2)["P"]["neutrophil_day"] == 10


def test_neutrophil_values_before_the_nadir_and_on_day_0_are_ignored():
    events = transplant("P") + anc("P", [(-2, 3.0), (0, 2.0), (1, 1.5), (2, 1.2), (3, 0.9), (5, 0.2),
                                         (12, 0.6), (13, 0.7), (14, 0.9)])
    assert engraftment(events)["P"]["neutrophil_day"] == 12


def test_lowest_value_of_the_day_counts():
    # day 13 has 0.9 and 0.4: the lowest (0.4) resets the run
    events = transplant("P") + anc("P", [(3, 0.1), (12, 0.6), (13, 0.9), (13, 0.4), (14, 0.6), (15, 0.6), (16, 0.6)])
    assert engraftment(events)["P"]["neutrophil_day"] == 14


def test_never_neutropenic_is_not_applicable_and_not_graft_failure():
    events = transplant("P") + anc("P", [(1, 1.0), (5, 0.8), (9, 0.7), (20, 1.1)]) + [ev("P", "follow_up", 60, disease_status="remission")]
    row = engraftment(events)["P"]
    assert (row["neutrophil_on"], row["neutrophil_status"], row["graft_failure"]) == (None, "not_applicable", None)


def test_recorded_engraftment_counts_only_without_counts_of_that_lineage():
    events = transplant("REC") + [ev("REC", "engraftment", 15, lineage="neutrophil"),
                                  ev("REC", "engraftment", 25, lineage="platelet")]
    events += transplant("BOTH") + [ev("BOTH", "engraftment", 9, lineage="neutrophil"),
                                    ev("BOTH", "engraftment", 25, lineage="platelet")] + anc("BOTH", ENGRAFTS_DAY_12)
    events += transplant("NONE")
    out = engraftment(events)
    assert (out["REC"]["neutrophil_day"], out["REC"]["neutrophil_basis"]) == (15, "recorded")
    assert (out["REC"]["platelet_day"], out["REC"]["platelet_basis"]) == (25, "recorded")
    assert (out["BOTH"]["neutrophil_day"], out["BOTH"]["neutrophil_basis"]) == (12, "counts")
    assert (out["BOTH"]["platelet_day"], out["BOTH"]["platelet_basis"]) == (25, "recorded")  # no platelet counts
    assert (out["NONE"]["neutrophil_on"], out["NONE"]["neutrophil_basis"], out["NONE"]["neutrophil_status"]) == (
        None, None, "not_yet")


def test_one_row_per_transplanted_patient_only():
    events = transplant("TX") + [ev("NOTX", "diagnosis", 0, disease="aml")]
    assert set(engraftment(events)) == {"TX"}


NO_RECOVERY = [(3, 0.1), (10, 0.1), (20, 0.2), (29, 0.3)]


@pytest.mark.parametrize(
    ("source", "last_day", "expected"),
    [
        ("peripheral_blood", 30, ("primary", 30)),
        ("bone_marrow", 31, ("primary", 30)),
        ("peripheral_blood", 29, (None, None)),   # last contact before day 30: not yet failure
        ("cord_blood", 35, (None, None)),          # cord blood: cut-off day 42
        ("cord_blood", 42, ("primary", 42)),
    ],
)
def test_primary_graft_failure_derived(source, last_day, expected):
    events = transplant("P", source=source) + anc("P", NO_RECOVERY) + [ev("P", "follow_up", last_day, disease_status="remission")]
    row = engraftment(events)["P"]
    assert (row["graft_failure"], row["graft_failure_day"]) == expected
    if expected[0]:
        assert row["graft_failure_basis"] == "derived"
        comp = [c for c in complications(events) if c["complication"] == "graft_failure"]
        assert [(c["day"], c["detail"]) for c in comp] == [
            (expected[1], f"primary (derived: no neutrophil engraftment by day +{expected[1]})")]


def test_primary_graft_failure_parameter_and_no_failure_when_dead_before_cutoff():
    events = transplant("P") + anc("P", NO_RECOVERY) + [ev("P", "follow_up", 29, disease_status="remission")]
    assert engraftment(events, primary_graft_failure_day=28)["P"]["graft_failure"] == "primary"
    dead = transplant("D") + anc("D", NO_RECOVERY) + [ev("D", "death", 25, cause="infection")]
    assert engraftment(dead)["D"]["graft_failure"] is None


def test_graft_failure_events_primary_and_secondary():
    primary = transplant("P") + anc("P", [(3, 0.1)]) + [ev("P", "graft_failure", 21, kind="primary")]
    row = engraftment(primary)["P"]
    assert (row["graft_failure"], row["graft_failure_day"], row["graft_failure_basis"]) == ("primary", 21, "recorded")
    secondary = transplant("S") + anc("S", ENGRAFTS_DAY_12) + [ev("S", "graft_failure", 60, kind="secondary"),
                                                               ev("S", "follow_up", 90, disease_status="remission")]
    row = engraftment(secondary)["S"]
    assert (row["graft_failure"], row["graft_failure_day"], row["neutrophil_day"]) == ("secondary", 60, 12)


def test_engraftment_day_does_not_move_when_later_counts_arrive():
    base = (transplant("P") + anc("P", ENGRAFTS_DAY_12) + [ev("P", "transfusion", 0, product="platelets")]
            + plt("P", CIBMTR_PLATELETS))
    first = engraftment(base)["P"]
    later = base + anc("P", [(15, 0.1), (16, 0.2), (20, 0.9)]) + plt("P", [(10, 5), (11, 4)]) + [
        ev("P", "transfusion", 11, product="platelets")]
    again = engraftment(later)["P"]
    assert (again["neutrophil_day"], again["platelet_day"]) == (first["neutrophil_day"], first["platelet_day"]) == (12, 7)


# ------------------------------------------------------------------------------------------- complications

def acute(patient: str, day: int, **stages) -> dict:
    """An acute GVHD diagnosis validated by the vocabulary (which derives the MAGIC grade)."""
    model = GvhdDiagnosed(patient_id=patient, occurred_on=d(day), kind="acute", **stages)
    return model.model_dump(mode="json", exclude_none=True)


def by(rows_: list[dict], patient: str, complication: str) -> list[dict]:
    return [r for r in rows_ if r["patient_id"] == patient and r["complication"] == complication]


def test_magic_grade_not_max_stage_drives_agvhd_rows():
    events = transplant("SKIN") + [acute("SKIN", 20, skin_stage=3)]                       # grade II
    events += transplant("GUT") + [acute("GUT", 15, skin_stage=1),                         # grade I
                                   acute("GUT", 25, lower_gi_stage=2),                     # grade III
                                   acute("GUT", 40, upper_gi_stage=1)]                     # grade II
    out = complications(events)
    assert [(r["day"], r["grade"]) for r in by(out, "SKIN", "agvhd_2_4")] == [(20, 2)]
    assert by(out, "SKIN", "agvhd_3_4") == []
    assert [(r["day"], r["grade"], r["detail"]) for r in by(out, "GUT", "agvhd")] == [(15, 3, "max grade 3")]
    assert [(r["day"], r["grade"]) for r in by(out, "GUT", "agvhd_2_4")] == [(25, 3)]
    assert [(r["day"], r["grade"]) for r in by(out, "GUT", "agvhd_3_4")] == [(25, 3)]


def sr_case(patient: str, steroid: float, responses: list[tuple[int, dict]]) -> list[dict]:
    events = transplant(patient) + [acute(patient, 18, skin_stage=3),
                                    ev(patient, "gvhd_treatment_started", 20, kind="acute", line=1,
                                       agents=["methylprednisolone"], steroid_mg_per_kg_day=steroid)]
    return events + [ev(patient, "gvhd_response", day, kind="acute", **fields) for day, fields in responses]


def sr_rows(events: list[dict], **overrides) -> list[tuple[int, str]]:
    return [(r["day"], r["detail"].split(":")[0]) for r in complications(events, **overrides)
            if r["complication"] == "sr_agvhd"]


def test_sr_agvhd_progression_window():
    two_days = sr_case("P", 2, [(22, {"response": "progression"})])
    assert sr_rows(two_days) == []
    three_days = sr_case("P", 2, [(22, {"response": "progression"}), (23, {"response": "progression"})])
    assert sr_rows(three_days) == [(23, "progression")]
    assert sr_rows(three_days, sr_agvhd_progression_days=5) == []


def test_sr_agvhd_no_response_window_and_dose():
    six = sr_case("P", 2, [(26, {"response": "no_response"})])
    assert sr_rows(six) == []
    seven = sr_case("P", 2.5, [(26, {"response": "no_response"}), (27, {"response": "no_response"})])
    assert sr_rows(seven) == [(27, "no_response")]
    low_dose = sr_case("P", 1, [(27, {"response": "no_response"}), (30, {"response": "progression"})])
    assert sr_rows(low_dose) == []
    assert sr_rows(low_dose, sr_agvhd_steroid_mg_per_kg_day=1) == [(27, "no_response")]


def test_sr_agvhd_clinician_judgement_and_first_establishing_response():
    judged = sr_case("P", 1, [(21, {"response": "partial", "steroid_refractory": True})])
    assert sr_rows(judged) == [(21, "steroid_refractory")]
    both = sr_case("P", 2, [(24, {"response": "progression"}), (30, {"response": "no_response", "steroid_refractory": True})])
    assert sr_rows(both) == [(24, "progression")]


def test_chronic_gvhd_rows():
    events = transplant("P") + [ev("P", "gvhd_diagnosed", 120, kind="chronic", severity="mild"),
                                ev("P", "gvhd_diagnosed", 150, kind="chronic", severity="moderate"),
                                ev("P", "gvhd_treatment_started", 160, kind="chronic", line=1, agents=["prednisone"])]
    out = complications(events)
    assert [(r["day"], r["detail"]) for r in by(out, "P", "cgvhd")] == [(120, "max severity moderate; at diagnosis mild")]
    # dated at the chronic diagnosis, whatever the date of the treatment; the detail gives the treatment start
    assert [(r["day"], r["detail"]) for r in by(out, "P", "cgvhd_systemic")] == [
        (120, f"systemic treatment line 1 started {d(160)}")]


def cmv(patient: str, day: int, iu: float | None) -> dict:
    if iu is None:
        return ev(patient, "viral_load", day, virus="cmv", specimen="plasma", below_detection=True)
    return ev(patient, "viral_load", day, virus="cmv", specimen="plasma", iu_per_ml=iu)


def test_viral_episodes_need_28_days_below_threshold_in_between():
    events = transplant("P") + [
        cmv("P", 0, 50000),                         # day 0: not after day 0
        cmv("P", 10, 2000), cmv("P", 17, 500), cmv("P", 24, None),
        cmv("P", 40, 3000),                         # below-threshold span 7 days: same episode
        cmv("P", 50, None), cmv("P", 60, 200), cmv("P", 77, None),
        cmv("P", 80, 1500),                         # span 27 days: same episode
        cmv("P", 90, None), cmv("P", 118, None),
        cmv("P", 120, 1000),                        # span 28 days: episode 2 (>= threshold)
    ]
    out = by(complications(events), "P", "cmv_reactivation")
    assert [(r["day"], r["episode"]) for r in out] == [(10, 1), (120, 2)]
    assert out[1]["detail"].startswith("cmv episode 2")
    assert [r["day"] for r in by(complications(events, viral_episode_gap_days=7), "P", "cmv_reactivation")] == [10, 40, 80, 120]
    assert [r["day"] for r in by(complications(events, viral_reactivation_iu_per_ml=2500), "P", "cmv_reactivation")] == [40]


def test_viral_reactivation_event_or_first_load_whichever_earlier():
    events = transplant("P") + [
        ev("P", "viral_reactivation", 6, virus="ebv", treated=True),
        ev("P", "viral_load", 8, virus="ebv", specimen="whole_blood", iu_per_ml=4000),
        ev("P", "viral_load", 9, virus="adenovirus", specimen="plasma", iu_per_ml=1200),
    ]
    out = complications(events)
    assert [(r["day"], r["detail"]) for r in by(out, "P", "ebv_reactivation")] == [
        (6, "ebv episode 1, onset by diagnosed reactivation")]
    assert [r["day"] for r in by(out, "P", "adenovirus_reactivation")] == [9]


def test_per_event_complications():
    events = transplant("P") + [
        ev("P", "engraftment_syndrome", 11),
        ev("P", "infection", 5, category="bacterial", organism="E. coli", site="bloodstream"),
        ev("P", "infection", 30, category="fungal"),
        ev("P", "toxicity", 3, kind="vod_sos", grade=3),
    ]
    out = complications(events)
    assert [r["detail"] for r in by(out, "P", "infection")] == ["bacterial: E. coli (site bloodstream)", "fungal"]
    assert [r["episode"] for r in by(out, "P", "infection")] == [1, 2]
    assert [(r["day"], r["detail"], r["grade"]) for r in by(out, "P", "toxicity")] == [(3, "vod_sos grade 3", 3)]
    assert [r["day"] for r in by(out, "P", "engraftment_syndrome")] == [11]


# ----------------------------------------------------------------------------------------------- endpoints

def status(out: dict, patient: str, endpoint: str) -> tuple[int, int, str]:
    r = out[(patient, endpoint)]
    return r["time_days"], r["status"], r["event_desc"]


def cohort() -> list[dict]:
    events = []
    events += transplant("REL") + anc("REL", ENGRAFTS_DAY_12) + [ev("REL", "relapse", 100, site="bone_marrow"),
                                                                ev("REL", "death", 150, cause="relapse")]
    events += transplant("NRM") + [ev("NRM", "death", 80, cause="infection")]
    events += transplant("SAME") + [ev("SAME", "relapse", 120, site="cns"), ev("SAME", "death", 120, cause="relapse")]
    events += transplant("ALIVE") + anc("ALIVE", ENGRAFTS_DAY_12) + [ev("ALIVE", "follow_up", 300, disease_status="remission")]
    events += transplant("GVHD") + anc("GVHD", ENGRAFTS_DAY_12) + [
        acute("GVHD", 30, skin_stage=3), acute("GVHD", 40, liver_stage=2),
        ev("GVHD", "gvhd_diagnosed", 200, kind="chronic", severity="moderate"),
        ev("GVHD", "gvhd_treatment_started", 210, kind="chronic", line=1, agents=["prednisone"]),
        cmv("GVHD", 35, 2500), ev("GVHD", "follow_up", 400, disease_status="remission")]
    events += transplant("PGF") + anc("PGF", NO_RECOVERY) + [ev("PGF", "death", 50, cause="infection")]
    # relapse before transplant (must not count from HSCT), blinatumomab bridge
    events += [ev("PRE", "diagnosis", -400, disease="b_all"), ev("PRE", "relapse", -120, site="bone_marrow"),
               ev("PRE", "blinatumomab_started", -90, cycle=1, dose_ug_per_m2_day=15),
               ev("PRE", "stem_cell_infusion", 0, donor="haploidentical", graft_source="peripheral_blood"),
               ev("PRE", "follow_up", 200, disease_status="remission")]
    events += [ev("NOTX", "diagnosis", -10, disease="aml"), ev("NOTX", "follow_up", 20, disease_status="not_assessed")]
    return events


def test_endpoints_relapse_nrm_same_day_and_censoring():
    out = endpoints(cohort())
    assert status(out, "REL", "relapse") == (100, 1, "relapse")
    assert status(out, "REL", "nrm") == (100, 2, "relapse")
    assert status(out, "REL", "lfs") == (100, 1, "relapse")
    assert status(out, "REL", "os") == (150, 1, "death")
    assert status(out, "NRM", "nrm") == (80, 1, "death without relapse")
    assert status(out, "NRM", "relapse") == (80, 2, "death without relapse")
    assert status(out, "SAME", "relapse") == (120, 1, "relapse")     # same day: relapse first
    assert status(out, "SAME", "nrm") == (120, 2, "relapse")
    assert status(out, "SAME", "lfs")[1:] == (1, "relapse")
    for endpoint in ("os", "lfs", "efs", "grfs", "relapse", "nrm", "agvhd_2_4", "cgvhd", "cmv_reactivation"):
        assert status(out, "ALIVE", endpoint)[:2] == (300, 0)
    assert status(out, "ALIVE", "neutrophil_engraftment") == (12, 1, "neutrophil engraftment")
    assert status(out, "ALIVE", "platelet_engraftment")[:2] == (300, 0)
    assert status(out, "PRE", "relapse")[:2] == (200, 0)   # pre-HSCT relapse is not an event from day 0
    assert not any(p == "NOTX" for p, _ in out)            # no transplant: no origin, no rows


def test_endpoints_gvhd_grfs_efs_and_engraftment():
    out = endpoints(cohort())
    assert status(out, "GVHD", "agvhd_2_4")[:2] == (30, 1)
    assert status(out, "GVHD", "agvhd_3_4")[:2] == (40, 1)
    assert status(out, "GVHD", "grfs") == (40, 1, "acute GVHD grade III-IV")
    assert status(out, "GVHD", "cgvhd")[:2] == (200, 1)
    assert status(out, "GVHD", "cmv_reactivation")[:2] == (35, 1)
    assert status(out, "GVHD", "efs")[:2] == (400, 0)
    assert status(out, "PGF", "efs") == (30, 1, "graft failure")
    assert status(out, "PGF", "neutrophil_engraftment") == (50, 2, "death without neutrophil engraftment")
    assert status(out, "NRM", "agvhd_2_4")[:2] == (80, 2)
    # cGVHD needing systemic treatment is a GRFS event, dated at its diagnosis
    cg = transplant("CG") + [ev("CG", "gvhd_diagnosed", 150, kind="chronic", severity="mild"),
                             ev("CG", "gvhd_treatment_started", 170, kind="chronic", line=1, agents=["prednisone"]),
                             ev("CG", "follow_up", 300, disease_status="remission")]
    assert status(endpoints(cg), "CG", "grfs") == (150, 1, "chronic GVHD needing systemic treatment")
    untreated = [e for e in cg if e["type"] != "gvhd_treatment_started"]
    assert status(endpoints(untreated), "CG", "grfs")[:2] == (300, 0)


def test_endpoint_origin_parameter():
    diag = endpoints(cohort(), endpoint_origin="diagnosis")
    assert diag[("PRE", "relapse")]["origin_on"] == DAY0 - dt.timedelta(400)
    assert status(diag, "PRE", "relapse")[:2] == (280, 1)     # the pre-HSCT relapse counts from diagnosis
    assert status(diag, "NOTX", "os")[:2] == (30, 0)
    blina = endpoints(cohort(), endpoint_origin="blinatumomab")
    assert {p for p, _ in blina} == {"PRE"}
    assert status(blina, "PRE", "os")[:2] == (290, 0)
    relapse = endpoints(cohort(), endpoint_origin="relapse")
    assert status(relapse, "REL", "os")[:2] == (50, 1)
    assert status(relapse, "REL", "relapse")[:2] == (50, 2)  # no second relapse; death competes
    with pytest.raises(ValueError):
        endpoints(cohort(), endpoint_origin="randomisation")


def test_endpoint_invariants_on_hand_cases():
    for origin in ("hsct", "diagnosis", "relapse"):
        con = project(cohort(), endpoint_origin=origin)
        out = rows(con, """
            SELECT e.*, p.last_contact_on FROM endpoints e JOIN patients p USING (patient_id)""")
        by_patient: dict[str, dict[str, dict]] = {}
        for r in out:
            by_patient.setdefault(r["patient_id"], {})[r["endpoint"]] = r
            assert 0 <= r["time_days"] <= (r["last_contact_on"] - r["origin_on"]).days
            assert r["time_days"] == (r["end_on"] - r["origin_on"]).days
            assert r["status"] in (0, 1, 2)
        for patient, eps in by_patient.items():
            assert len(eps) == 13, patient
            assert eps["os"]["time_days"] >= eps["lfs"]["time_days"]
            rel, nrm, lfs = eps["relapse"], eps["nrm"], eps["lfs"]
            assert not (rel["status"] == 1 and nrm["status"] == 1)
            assert (lfs["status"] == 1) == (rel["status"] == 1 or nrm["status"] == 1)
            assert lfs["time_days"] == rel["time_days"] == nrm["time_days"]


def test_incremental_build_matches_full_build():
    events = cohort()
    full = project(events)
    expected = rows(full, "SELECT * FROM endpoints ORDER BY ALL")
    con = project(events)
    project(events, con=con, patients=["REL", "GVHD"])
    assert rows(con, "SELECT * FROM endpoints ORDER BY ALL") == expected
    assert rows(con, "SELECT * FROM complications ORDER BY ALL") == rows(full, "SELECT * FROM complications ORDER BY ALL")
