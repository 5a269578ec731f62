"""The rule clarifications (docs/rules.md: Time, Engraftment, Chimerism, Complications, GRFS), each on a
minimal patient."""

from __future__ import annotations

import datetime as dt

from projection_support import project, rows

DAY0 = dt.date(2024, 3, 1)


def d(n: int) -> str:
    return (DAY0 + dt.timedelta(days=n)).isoformat()


def ev(type_: str, day: int, **fields) -> dict:
    return {"type": type_, "patient_id": "P1", "occurred_on": d(day), **fields}


BASE = [ev("patient_registered", -400, birth_date="2012-05-01", sex="female"),
        ev("diagnosis", -400, disease="b_all"),
        ev("stem_cell_infusion", 0, donor="haploidentical", graft_source="peripheral_blood")]


def one(con, sql: str, *args) -> dict:
    [row] = rows(con, sql, *args)
    return row


def checks(con) -> set[str]:
    return {r["check"] for r in rows(con, 'SELECT "check" FROM data_queries')}


def endpoint(con, name: str) -> dict:
    return one(con, "SELECT * FROM endpoints WHERE endpoint = ?", name)


def test_last_contact_is_capped_at_the_death_date():
    con = project(BASE + [ev("death", 50, cause="infection"), ev("follow_up", 60, disease_status="remission")])
    assert one(con, "SELECT last_contact_on FROM patients")["last_contact_on"] == DAY0 + dt.timedelta(50)
    os_ = endpoint(con, "os")
    assert (os_["time_days"], os_["status"]) == (50, 1)
    assert "event_after_death" in checks(con)


def _platelets(transfused: bool) -> list[dict]:
    counts = [ev("blood_count", day, platelets_e9_per_l=v) for day, v in
              ((1, 45), (3, 38), (6, 30), (9, 26), (10, 28), (11, 35))]
    return BASE + counts + ([ev("transfusion", 2, product="platelets")] if transfused else [])


def test_a_platelet_transfusion_after_day0_makes_the_lineage_evaluable():
    """CIBMTR: a value below 20 or a platelet transfusion on or after day 0 makes the lineage evaluable."""
    never_low = project(_platelets(transfused=False), tables=["engraftment"])
    assert one(never_low, "SELECT platelet_status, platelet_day FROM engraftment") == \
        {"platelet_status": "not_applicable", "platelet_day": None}
    transfused = project(_platelets(transfused=True), tables=["engraftment"])
    # eligible from day 9 (transfused day 2, 7 days free): 26, 28, 35 on days 9, 10, 11
    assert one(transfused, "SELECT platelet_status, platelet_day FROM engraftment") == \
        {"platelet_status": "engrafted", "platelet_day": 9}


def test_a_recorded_engraftment_on_day0_is_engraftment_at_time_0():
    con = project(BASE + [ev("engraftment", 0, lineage="neutrophil"), ev("follow_up", 100, disease_status="remission")])
    got = one(con, "SELECT neutrophil_day, neutrophil_basis, neutrophil_status FROM engraftment")
    assert got == {"neutrophil_day": 0, "neutrophil_basis": "recorded", "neutrophil_status": "engrafted"}
    e = endpoint(con, "neutrophil_engraftment")
    assert (e["time_days"], e["status"]) == (0, 1)
    assert "recorded_engraftment_on_day0" in checks(con)


def test_a_recorded_engraftment_before_day0_is_ignored():
    con = project(BASE + [ev("engraftment", -1, lineage="neutrophil"), ev("follow_up", 100, disease_status="remission")])
    assert one(con, "SELECT neutrophil_day, neutrophil_basis FROM engraftment") == \
        {"neutrophil_day": None, "neutrophil_basis": None}
    assert endpoint(con, "neutrophil_engraftment")["status"] == 0
    assert "recorded_engraftment_before_day0" in checks(con)


def test_sustained_full_donor_chimerism_looks_at_every_compartment():
    tests = [ev("chimerism_test", 30, donor_percent=99, compartment="whole_blood"),
             ev("chimerism_test", 60, donor_percent=80, compartment="t_cell"),
             ev("chimerism_test", 90, donor_percent=99, compartment="whole_blood")]
    con = project(BASE + tests, tables=["patients"])
    assert one(con, "SELECT full_donor_chimerism_day, full_donor_chimerism_sustained FROM patients") == \
        {"full_donor_chimerism_day": 30, "full_donor_chimerism_sustained": False}


def test_a_recorded_viral_reactivation_counts_from_day1_only():
    early = project(BASE + [ev("viral_reactivation", -2, virus="cmv"), ev("follow_up", 100, disease_status="remission")])
    assert rows(early, "SELECT * FROM complications WHERE complication = 'cmv_reactivation'") == []
    assert endpoint(early, "cmv_reactivation")["status"] == 0  # the two tables agree
    assert "viral_reactivation_before_day1" in checks(early)
    day1 = project(BASE + [ev("viral_reactivation", 1, virus="cmv"), ev("follow_up", 100, disease_status="remission")])
    assert one(day1, "SELECT day FROM complications WHERE complication = 'cmv_reactivation'")["day"] == 1
    assert endpoint(day1, "cmv_reactivation")["time_days"] == 1


def test_chronic_gvhd_needing_treatment_is_dated_at_its_diagnosis():
    con = project(BASE + [ev("gvhd_treatment_started", 100, kind="chronic", line=1, agents=["prednisone"]),
                          ev("gvhd_diagnosed", 120, kind="chronic", severity="moderate"),
                          ev("follow_up", 200, disease_status="remission")])
    row = one(con, "SELECT day, detail FROM complications WHERE complication = 'cgvhd_systemic'")
    assert row["day"] == 120 and "started " + d(100) in row["detail"]
    grfs = endpoint(con, "grfs")
    assert (grfs["time_days"], grfs["status"], grfs["event_desc"]) == \
        (120, 1, "chronic GVHD needing systemic treatment")


def test_a_chronic_treatment_without_diagnosis_is_a_data_query_not_an_event():
    con = project(BASE + [ev("gvhd_treatment_started", 100, kind="chronic", line=1, agents=["prednisone"]),
                          ev("follow_up", 200, disease_status="remission")])
    assert rows(con, "SELECT * FROM complications WHERE complication LIKE 'cgvhd%'") == []
    assert endpoint(con, "grfs")["status"] == 0
    assert "chronic_gvhd_treatment_without_diagnosis" in checks(con)


def test_a_death_before_the_transplant_leaves_the_patient_out_not_the_cohort():
    other = [{**e, "patient_id": "P2"} for e in BASE] + [{**ev("follow_up", 30, disease_status="remission"),
                                                          "patient_id": "P2"}]
    con = project(BASE + [ev("death", -5, cause="relapse")] + other)
    assert rows(con, "SELECT * FROM endpoints WHERE patient_id = 'P1'") == []
    assert {r["time_days"] >= 0 for r in rows(con, "SELECT time_days FROM endpoints")} == {True}
    assert {"death_before_hsct", "left_out_of_endpoints"} <= checks(con)
