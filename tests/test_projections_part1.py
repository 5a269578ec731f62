"""Rules of the part-1 projections (events, chimerism, patients, bridging, disease_status, MRD) and the
parameter registry, on hand-made timelines. The rules and their sources: docs/rules.md."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from projection_support import load_visible_events, project, rows
from timeline.projections.build import build
from timeline.projections.parameters import ParameterError, registry, resolve
from timeline.projections.rules import mrd

PART1 = ("events", "chimerism", "patients", "bridging", "disease_status")
D = dt.date.fromisoformat


def ev(type_, day, patient="P1", **fields):
    return {"type": type_, "patient_id": patient, "occurred_on": day, **fields}


def infusion(day, patient="P1", **fields):
    base = {"donor": "haploidentical", "graft_source": "peripheral_blood"}
    return ev("stem_cell_infusion", day, patient, **(base | fields))


def one(con, sql, *args):
    result = rows(con, sql, *args)
    assert len(result) == 1, result
    return result[0]


# --------------------------------------------------------------------------------------- day numbering

def test_day_numbering_split_graft_and_no_transplant():
    con = project([
        ev("conditioning_started", "2024-03-01", regimen="FluTreo", intensity="myeloablative"),
        infusion("2024-03-08", event_id="inf1"),
        infusion("2024-03-09", event_id="inf2"),  # split graft, same (default) transplant_number
        ev("blood_count", "2024-03-30", anc_e9_per_l=0.7),
        ev("diagnosis", "2024-01-01", "P2", disease="b_all"),
    ], tables=("events",))
    days = {r["occurred_on"]: r["day"] for r in rows(con, "SELECT * FROM events WHERE patient_id = 'P1'")}
    assert days == {D("2024-03-01"): -7, D("2024-03-08"): 0, D("2024-03-09"): 1, D("2024-03-30"): 22}
    assert one(con, "SELECT day FROM events WHERE patient_id = 'P2'")["day"] is None
    cols = [c[0] for c in con.sql("SELECT * FROM events").description]
    assert cols[:7] == ["event_id", "patient_id", "type", "occurred_on", "recorded_at", "day", "payload"]


def test_index_transplant_selects_second_transplant():
    events = [
        infusion("2024-01-10", transplant_number=1),
        infusion("2024-01-11", transplant_number=1),
        infusion("2024-06-01", transplant_number=2),
        ev("follow_up", "2024-06-11", disease_status="remission"),
    ]
    first = project(events, tables=("events",))
    assert one(first, "SELECT day FROM events WHERE type = 'follow_up'")["day"] == (D("2024-06-11") - D("2024-01-10")).days
    second = project(events, tables=("patients",), index_transplant="2")
    assert one(second, "SELECT day FROM events WHERE type = 'follow_up'")["day"] == 10
    assert one(second, "SELECT hsct_on FROM patients")["hsct_on"] == D("2024-06-01")
    third = project(events, tables=("events",), index_transplant=3)
    assert one(third, "SELECT day FROM events WHERE type = 'follow_up'")["day"] is None


# --------------------------------------------------------------------------------------------- chimerism

def _chimerism(percents, **overrides):
    events = [infusion("2024-01-01")] + [
        ev("chimerism_test", f"2024-02-{i + 1:02d}", donor_percent=x, compartment="whole_blood")
        for i, x in enumerate(percents)]
    con = project(events, tables=("chimerism",), **overrides)
    return {r["donor_percent"]: r["category"] for r in rows(con, "SELECT * FROM chimerism")}


def test_chimerism_categories_at_boundaries():
    assert _chimerism([100, 95.01, 95, 50, 5, 4.99, 0]) == {
        100: "full_donor", 95.01: "full_donor", 95: "mixed", 50: "mixed",
        5: "mixed", 4.99: "low_donor", 0: "low_donor"}


def test_chimerism_threshold_overrides():
    assert _chimerism([95, 94.9], full_donor_chimerism_threshold_inclusive="true") == {
        95: "full_donor", 94.9: "mixed"}
    assert _chimerism([80, 79.9, 4], full_donor_chimerism_above_percent="80",
                      full_donor_chimerism_threshold_inclusive="yes") == {
        80: "full_donor", 79.9: "mixed", 4: "low_donor"}


def test_chimerism_columns_and_day():
    con = project([infusion("2024-01-01"),
                   ev("chimerism_test", "2024-01-31", donor_percent=99, compartment="t_cell", method="str")],
                  tables=("chimerism",))
    r = one(con, "SELECT * FROM chimerism")
    assert {k: r[k] for k in ("patient_id", "occurred_on", "day", "compartment", "donor_percent", "category")} == {
        "patient_id": "P1", "occurred_on": D("2024-01-31"), "day": 30, "compartment": "t_cell",
        "donor_percent": 99.0, "category": "full_donor"}


# ---------------------------------------------------------------------------------------------- patients

def test_patients_registration_transplant_and_last_contact():
    con = project([
        ev("patient_registered", "2020-01-01", birth_date="2014-01-10", sex="unknown"),
        ev("patient_registered", "2020-02-01", birth_date="2014-01-10", sex="female"),  # latest wins
        ev("diagnosis", "2023-01-05", disease="b_all"),
        ev("relapse", "2023-08-01", site="bone_marrow"),
        ev("relapse", "2024-08-01", site="cns"),  # after day 0: not counted
        ev("conditioning_started", "2023-12-01", regimen="old", intensity="reduced_intensity"),
        ev("conditioning_started", "2024-01-03", regimen="TBI/VP16", intensity="myeloablative",
           tbi_gy=12, serotherapy="atg"),
        ev("gvhd_prophylaxis_started", "2024-01-09", agents=["tacrolimus", "mmf"]),
        ev("gvhd_prophylaxis_started", "2024-01-13", agents=["ptcy", "mmf"]),
        infusion("2024-01-10", hla_match="5/10", cd34_e6_per_kg=4.0),
        infusion("2024-01-11", cd34_e6_per_kg=2.5),
        ev("follow_up", "2024-09-01", disease_status="relapse"),
        ev("diagnosis", "2024-01-01", "P2", disease="aml"),
        ev("death", "2024-03-01", "P2", cause="infection"),
    ], tables=("patients",))
    p1 = one(con, "SELECT * FROM patients WHERE patient_id = 'P1'")
    assert p1["sex"] == "female" and p1["birth_date"] == D("2014-01-10")
    assert p1["disease"] == "b_all" and p1["diagnosis_on"] == D("2023-01-05")
    assert p1["hsct_on"] == D("2024-01-10")
    assert p1["age_at_hsct_years"] == pytest.approx((D("2024-01-10") - D("2014-01-10")).days / 365.25)
    assert (p1["donor"], p1["graft_source"], p1["hla_match"]) == ("haploidentical", "peripheral_blood", "5/10")
    assert p1["cd34_e6_per_kg"] == pytest.approx(6.5)  # split graft: total dose
    assert (p1["conditioning_intensity"], p1["conditioning_regimen"], p1["tbi_gy"], p1["serotherapy"]) == (
        "myeloablative", "TBI/VP16", 12.0, "atg")
    assert p1["gvhd_prophylaxis"] == "mmf+ptcy+tacrolimus"
    assert p1["relapse_count_before_hsct"] == 1
    assert (p1["vital_status"], p1["last_contact_on"], p1["death_on"]) == ("alive", D("2024-09-01"), None)
    p2 = one(con, "SELECT * FROM patients WHERE patient_id = 'P2'")
    assert (p2["vital_status"], p2["last_contact_on"], p2["death_on"], p2["death_cause"]) == (
        "dead", D("2024-03-01"), D("2024-03-01"), "infection")
    assert p2["hsct_on"] is None and p2["age_at_hsct_years"] is None


@pytest.mark.parametrize("later, sustained", [([99, 96], True), ([99, 90], False)])
def test_full_donor_chimerism_day_and_sustained(later, sustained):
    events = [infusion("2024-01-01"),
              ev("chimerism_test", "2023-12-30", donor_percent=100, compartment="whole_blood"),  # before day 0
              ev("chimerism_test", "2024-01-15", donor_percent=60, compartment="whole_blood")]
    events += [ev("chimerism_test", f"2024-0{i + 2}-01", donor_percent=x, compartment="whole_blood")
               for i, x in enumerate(later)]
    con = project(events, tables=("patients",))
    r = one(con, "SELECT full_donor_chimerism_day, full_donor_chimerism_sustained FROM patients")
    assert r == {"full_donor_chimerism_day": 31, "full_donor_chimerism_sustained": sustained}


def test_full_donor_chimerism_absent_is_null():
    con = project([infusion("2024-01-01"),
                   ev("chimerism_test", "2024-02-01", donor_percent=50, compartment="whole_blood")],
                  tables=("patients",))
    assert one(con, "SELECT full_donor_chimerism_day d, full_donor_chimerism_sustained s FROM patients") == {
        "d": None, "s": None}


# ---------------------------------------------------------------------------------------------- bridging

def _mrd(day, specimen="bone_marrow", patient="P1", **fields):
    return ev("mrd_test", day, patient, method="flow", specimen=specimen, **fields)


def test_bridging_cycles_last_stop_and_days_to_hsct():
    con = project([
        ev("blinatumomab_started", "2023-10-01", cycle=1, dose_ug_per_m2_day=15),
        ev("blinatumomab_stopped", "2023-10-05", cycle=1, reason="toxicity"),
        ev("blinatumomab_started", "2023-10-08", cycle=1, dose_ug_per_m2_day=15),  # same cycle resumed
        ev("blinatumomab_stopped", "2023-10-31", cycle=1, reason="completed"),
        ev("blinatumomab_started", "2023-11-14", cycle=2, dose_ug_per_day=28),
        ev("blinatumomab_stopped", "2023-12-12", cycle=2, reason="transplant"),
        infusion("2024-01-10"),
        ev("blinatumomab_started", "2024-04-01", cycle=3, dose_ug_per_day=28),  # after day 0
        ev("blinatumomab_stopped", "2024-04-28", cycle=3, reason="completed"),
        ev("diagnosis", "2023-01-01", "P2", disease="b_all"),
    ], tables=("bridging",))
    r = one(con, "SELECT * FROM bridging WHERE patient_id = 'P1'")
    assert r["blinatumomab_cycles"] == 2
    assert r["blinatumomab_first_started_on"] == D("2023-10-01")
    assert r["blinatumomab_last_stopped_on"] == D("2023-12-12")
    assert r["days_blinatumomab_to_hsct"] == 29
    p2 = one(con, "SELECT * FROM bridging WHERE patient_id = 'P2'")
    assert p2["blinatumomab_cycles"] == 0 and p2["days_blinatumomab_to_hsct"] is None
    assert p2["mrd_before_hsct_percent"] is None and p2["mrd_negative_before_hsct"] is None


def test_bridging_mrd_bone_marrow_preferred_same_date():
    con = project([
        _mrd("2023-11-01", result_percent=2.0),
        _mrd("2023-12-20", "peripheral_blood", result_percent=0.5),
        _mrd("2023-12-20", "bone_marrow", below_detection=True, sensitivity_percent=0.001),
        infusion("2024-01-10"),
        _mrd("2024-02-10", result_percent=1.0),  # after day 0: ignored
    ], tables=("bridging",))
    r = one(con, "SELECT * FROM bridging")
    assert r["mrd_before_hsct_on"] == D("2023-12-20") and r["mrd_before_hsct_specimen"] == "bone_marrow"
    assert r["mrd_before_hsct_percent"] == 0.001 and r["mrd_before_hsct_below_detection"] is True
    assert r["mrd_negative_before_hsct"] is True


def test_bridging_mrd_later_blood_beats_earlier_marrow_and_day0_counts():
    con = project([
        _mrd("2023-12-20", "bone_marrow", result_percent=0.001),
        _mrd("2024-01-10", "peripheral_blood", result_percent=0.3),  # on day 0: counts
        infusion("2024-01-10"),
    ], tables=("bridging",))
    r = one(con, "SELECT * FROM bridging")
    assert (r["mrd_before_hsct_specimen"], r["mrd_before_hsct_percent"], r["mrd_before_hsct_below_detection"]) == (
        "peripheral_blood", 0.3, False)
    assert r["mrd_negative_before_hsct"] is False


@pytest.mark.parametrize("rule, expected", [("default", True), ("strict", False)])
def test_bridging_mrd_rule_override(rule, expected):
    con = project([_mrd("2023-12-20", result_percent=0.005), infusion("2024-01-10")],
                  tables=("bridging",), mrd_negativity_rule=rule)
    assert one(con, "SELECT mrd_negative_before_hsct n FROM bridging")["n"] is expected


# ------------------------------------------------------------------------------------------- MRD rule

MRD_CASES = [  # payload, default, strict
    ({"result_percent": 0.005}, True, False),
    ({"result_percent": 0.0099}, True, False),
    ({"result_percent": 0.01}, False, False),
    ({"result_percent": 0.5}, False, False),
    ({"below_detection": True, "sensitivity_percent": 0.01}, True, True),
    ({"below_detection": True, "sensitivity_percent": 0.001}, True, True),
    ({"below_detection": True, "sensitivity_percent": 0.1}, False, False),
    ({"below_detection": True}, False, False),
]


@pytest.mark.parametrize("payload, default, strict", MRD_CASES)
def test_mrd_negativity_rule(payload, default, strict):
    import json
    con = duckdb.connect()
    sql = "SELECT {} FROM (SELECT CAST($payload AS JSON) AS payload)".format(mrd.negative())
    for rule, expected in (("default", default), ("strict", strict)):
        values = resolve({"mrd_negativity_rule": rule}).values
        got = con.execute(sql, {"payload": json.dumps(payload)} | {k: values[k] for k in (
            "mrd_negativity_rule", "mrd_negative_below_percent", "mrd_sensitivity_at_most_percent")}).fetchone()[0]
        assert got is expected, (rule, payload)


def test_mrd_sensitivity_parameter():
    values = resolve({"mrd_sensitivity_at_most_percent": 0.1}).values
    con = duckdb.connect()
    got = con.execute("SELECT " + mrd.negative() + " FROM (SELECT '{\"below_detection\": true, "
                      "\"sensitivity_percent\": 0.1}'::JSON AS payload)",
                      {k: values[k] for k in ("mrd_negativity_rule", "mrd_negative_below_percent",
                                              "mrd_sensitivity_at_most_percent")}).fetchone()[0]
    assert got is True


# ---------------------------------------------------------------------------------------- disease_status

def _intervals(con, patient="P1"):
    return [(r["status"], r["from_on"].isoformat(), r["to_on"] and r["to_on"].isoformat())
            for r in rows(con, "SELECT * FROM disease_status WHERE patient_id = ? ORDER BY from_on", patient)]


def test_disease_status_intervals_mrd_recurrence_and_death():
    con = project([
        ev("diagnosis", "2023-01-01", disease="b_all"),
        ev("disease_assessment", "2023-02-01", response="complete_remission"),
        _mrd("2023-02-01", result_percent=0.5),
        _mrd("2023-03-01", below_detection=True, sensitivity_percent=0.01),
        ev("disease_assessment", "2023-04-01", response="complete_remission"),  # MRD-negative carried
        _mrd("2023-05-01", result_percent=0.001),  # still negative: merges
        _mrd("2023-06-01", result_percent=0.2),  # MRD recurrence, not relapse
        ev("relapse", "2023-09-01", site="bone_marrow"),
        ev("disease_assessment", "2023-10-15", response="partial_response"),  # no status
        ev("disease_assessment", "2023-11-01", response="cri"),  # old negativity is before the relapse
        _mrd("2024-02-01", result_percent=7.0),  # >= 5 %: active disease
        ev("death", "2024-03-01", cause="relapse"),
        _mrd("2024-03-05", result_percent=0.001),  # after death: ignored
    ], tables=("disease_status",))
    assert _intervals(con) == [
        ("active_disease", "2023-01-01", "2023-02-01"),
        ("remission_mrd_positive", "2023-02-01", "2023-03-01"),
        ("remission_mrd_negative", "2023-03-01", "2023-06-01"),
        ("remission_mrd_positive", "2023-06-01", "2023-09-01"),
        ("active_disease", "2023-09-01", "2023-11-01"),
        ("remission_mrd_positive", "2023-11-01", "2024-02-01"),
        ("active_disease", "2024-02-01", "2024-03-01"),
    ]
    assert not rows(con, "SELECT * FROM events WHERE type = 'relapse' AND occurred_on = '2023-06-01'")


def test_disease_status_ongoing_and_refractory():
    con = project([
        ev("diagnosis", "2023-01-01", disease="b_all"),
        ev("disease_assessment", "2023-02-01", response="refractory"),  # merges with active
        ev("disease_assessment", "2023-03-01", response="cri"),
    ], tables=("disease_status",))
    assert _intervals(con) == [("active_disease", "2023-01-01", "2023-03-01"),
                               ("remission_mrd_positive", "2023-03-01", None)]


def test_disease_status_same_day_tie_breaks():
    con = project([
        # relapse outranks a same-day remission assessment and MRD
        ev("disease_assessment", "2023-01-01", response="complete_remission"),
        _mrd("2023-01-01", below_detection=True, sensitivity_percent=0.001),
        ev("relapse", "2023-01-01", site="bone_marrow"),
        # MRD after the assessment: CR + negative MRD the same day -> MRD-negative remission
        ev("disease_assessment", "2023-03-01", response="cri"),
        _mrd("2023-03-01", result_percent=0.001),
        # bone marrow decides over peripheral blood on the same day
        _mrd("2023-05-01", "bone_marrow", result_percent=0.3),
        _mrd("2023-05-01", "peripheral_blood", below_detection=True, sensitivity_percent=0.001),
        ev("death", "2023-05-01", cause="relapse"),  # death the same day closes it
    ], tables=("disease_status",))
    assert _intervals(con) == [
        ("active_disease", "2023-01-01", "2023-03-01"),
        ("remission_mrd_negative", "2023-03-01", "2023-05-01"),
        ("remission_mrd_positive", "2023-05-01", "2023-05-01"),
    ]


def test_disease_status_parameters():
    events = [ev("diagnosis", "2023-01-01", disease="b_all"),
              ev("disease_assessment", "2023-02-01", response="complete_remission"),
              _mrd("2023-03-01", result_percent=0.005),
              _mrd("2023-04-01", result_percent=3.0)]
    default = project(events, tables=("disease_status",))
    assert [s for s, *_ in _intervals(default)] == [
        "active_disease", "remission_mrd_positive", "remission_mrd_negative", "remission_mrd_positive"]
    changed = project(events, tables=("disease_status",), mrd_negativity_rule="strict",
                      active_disease_mrd_at_least_percent="1")
    assert _intervals(changed) == [("active_disease", "2023-01-01", "2023-02-01"),
                                   ("remission_mrd_positive", "2023-02-01", "2023-04-01"),
                                   ("active_disease", "2023-04-01", None)]


# ------------------------------------------------------------------------------------------- pipeline

def test_parameter_registry_is_flat_and_unique():
    reg = registry()
    for name in ("index_transplant", "full_donor_chimerism_above_percent", "low_donor_chimerism_below_percent",
                 "mrd_negative_below_percent", "mrd_sensitivity_at_most_percent", "mrd_negativity_rule",
                 "active_disease_mrd_at_least_percent"):
        assert reg[name].doc and reg[name].source, name
    assert reg["mrd_negativity_rule"].module is mrd  # shared rule: registered once, under mrd


def test_resolve_parses_and_shares():
    params = resolve({"mrd_negativity_rule": "strict", "index_transplant": "2",
                      "full_donor_chimerism_above_percent": "80",
                      "full_donor_chimerism_threshold_inclusive": "false"})
    assert params["mrd_negativity_rule"] == "strict"
    assert params["index_transplant"] == 2
    assert params["full_donor_chimerism_above_percent"] == 80.0
    assert params["full_donor_chimerism_threshold_inclusive"] is False
    assert params.overridden == {"mrd_negativity_rule", "index_transplant", "full_donor_chimerism_above_percent"}


def test_unknown_and_invalid_parameters():
    with pytest.raises(ParameterError) as err:
        resolve({"full_donor_percent": "80"})
    message = str(err.value)
    assert "full_donor_percent" in message and "full_donor_chimerism_above_percent" in message
    with pytest.raises(ParameterError, match="mrd_negativity_rule"):
        resolve({"mrd_negativity_rule": "lenient"})
    with pytest.raises(ParameterError, match="index_transplant"):
        resolve({"index_transplant": "first"})
    with pytest.raises(ParameterError, match="index_transplant"):
        resolve({"index_transplant": "0"})


def test_a_parameter_name_may_leave_out_its_unit():
    params = resolve({"platelet_threshold": "50", "anc_threshold": 1})
    assert params["platelet_threshold_e9_per_l"] == 50.0
    assert params["anc_threshold_e9_per_l"] == 1.0
    # a full name that begins another one is that parameter
    assert resolve({"primary_graft_failure_day": "30"})["primary_graft_failure_day"] == 30
    with pytest.raises(ParameterError, match="ambiguous.*platelet_run_length.*platelet_threshold_e9_per_l"):
        resolve({"platelet": "50"})
    with pytest.raises(ParameterError, match="given twice.*platelet_threshold_e9_per_l"):
        resolve({"platelet_threshold": "50", "platelet_threshold_e9_per_l": "40"})
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\): platelet_thresh\b"):
        resolve({"platelet_thresh": "50"})


def test_build_order_and_incremental_patients():
    events = [infusion("2024-01-01", "P1"), ev("follow_up", "2024-03-01", "P1", disease_status="remission"),
              infusion("2024-02-01", "P2"), ev("chimerism_test", "2024-03-01", "P2", donor_percent=99,
                                                 compartment="whole_blood")]
    events = [e | {"event_id": f"e{i}"} for i, e in enumerate(events)]
    con = duckdb.connect()
    load_visible_events(con, events)
    built = build(con, resolve(), tables=PART1)
    assert built.index("events") < built.index("chimerism") < built.index("patients") < built.index("bridging")
    before = rows(con, "SELECT * FROM patients WHERE patient_id = 'P2'")
    # P1 dies; only P1 is recomputed, P2's rows stay as they are
    load_visible_events(con, events + [ev("death", "2024-04-01", "P1", cause="relapse")])
    build(con, resolve(), patients=["P1"], tables=PART1)
    p1 = one(con, "SELECT vital_status, last_contact_on FROM patients WHERE patient_id = 'P1'")
    assert p1 == {"vital_status": "dead", "last_contact_on": D("2024-04-01")}
    assert rows(con, "SELECT * FROM patients WHERE patient_id = 'P2'") == before
    assert one(con, "SELECT count(*) n FROM events WHERE patient_id = 'P1'")["n"] == 3
    assert not rows(con, "SELECT * FROM duckdb_tables() WHERE table_name LIKE '_stage_%'")
    # a full rebuild gives the same tables as the incremental one
    full = duckdb.connect()
    load_visible_events(full, events + [ev("death", "2024-04-01", "P1", cause="relapse")])
    build(full, resolve(), tables=PART1)
    for table in ("patients", "bridging", "disease_status", "chimerism"):
        a = con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        b = full.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        assert a == b, table


def test_full_pipeline_builds_all_available_tables():
    con = project([infusion("2024-01-01"), ev("diagnosis", "2023-06-01", disease="b_all")])
    tables = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert set(PART1) <= tables
