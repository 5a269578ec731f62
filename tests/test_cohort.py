"""The synthetic cohort generator and the hypothesis history strategies (timeline.testing)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from itertools import groupby
from statistics import mean, median

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from timeline.events import content_event_id, magic_overall_grade, parse_event, parse_event_json
from timeline.testing.cohort import (
    DATE_LIMIT,
    generate_patient,
    iter_cohort,
    main,
    patient_id,
    patient_lines,
    patient_rng,
    write_cohort_jsonl,
)
from timeline.testing.histories import cohort_histories, patient_history

LIMIT = DATE_LIMIT.isoformat()  # "2026-11-01"
COUNT_TYPES = {"blood_count", "transfusion", "chimerism_test", "viral_load", "engraftment_syndrome",
               "graft_failure", "gvhd_diagnosed", "gvhd_treatment_started", "gvhd_response", "gvhd_resolved"}


@pytest.fixture(scope="module")
def cohort200() -> list[list[dict]]:
    """200 patients of seed 0, one list of events per patient."""
    return [generate_patient(patient_rng(0, i), i) for i in range(200)]


def _day(e: dict) -> date:
    return date.fromisoformat(e["occurred_on"])


def _day0(events: list[dict]) -> date | None:
    for e in events:
        if e["type"] == "stem_cell_infusion":
            return _day(e)
    return None


def _neutrophil_engraftment_day(events: list[dict]) -> int | None:
    """Independent oracle: first of 3 values >= 0.5 after day 0 and after the nadir (lowest per day)."""
    d0 = _day0(events)
    per_day: dict[int, float] = {}
    for e in events:
        if e["type"] == "blood_count" and "anc_e9_per_l" in e:
            k = (_day(e) - d0).days
            if k > 0:
                per_day[k] = min(per_day.get(k, 1e9), e["anc_e9_per_l"])
    fell, run = False, []
    for k in sorted(per_day):
        if per_day[k] < 0.5:
            fell, run = True, []
        elif fell:
            run.append(k)
            if len(run) == 3:
                return run[0]
    return None


def _check_coherent(events: list[dict]) -> None:
    """Rules every patient course must obey, synthetic cohort or drawn history."""
    assert len({e["patient_id"] for e in events}) == 1
    dates = [e["occurred_on"] for e in events]
    assert dates == sorted(dates), "events out of date order"
    assert dates[-1] <= LIMIT
    assert events[0]["type"] == "patient_registered"
    birth = events[0]["birth_date"]
    assert all(d >= birth for d in dates)
    types = [e["type"] for e in events]
    assert types.count("patient_registered") == 1
    assert types.count("diagnosis") == 1
    assert types.count("death") <= 1
    if "death" in types:
        assert types[-1] == "death", "nothing after a death"
        death_on = events[-1]["occurred_on"]
        assert all(e["occurred_on"] < death_on for e in events if e["type"] == "follow_up")
    d0 = _day0(events)
    if d0 is None:
        assert not COUNT_TYPES & set(types), "post-transplant events without a transplant"
    else:
        assert all(_day(e) >= d0 for e in events if e["type"] in COUNT_TYPES)
        assert all(_day(e) < d0 for e in events if e["type"] == "conditioning_started")
    for e in events:
        if e["type"] == "blood_count" and "wbc_e9_per_l" in e and "anc_e9_per_l" in e:
            assert e["wbc_e9_per_l"] >= e["anc_e9_per_l"]
        if e["type"] == "gvhd_diagnosed" and e["kind"] == "acute" and "skin_stage" in e:
            derived = magic_overall_grade(e["skin_stage"], e["liver_stage"], e["upper_gi_stage"], e["lower_gi_stage"])
            assert derived >= 1
            assert e.get("grade", derived) == derived
    # relapse before death on the same day
    for i, e in enumerate(events):
        if e["type"] == "relapse" and "death" in types:
            assert i < types.index("death")


# ---------------------------------------------------------------------------------------------
# The cohort generator


def test_same_seed_same_events_different_seed_different():
    a = list(iter_cohort(15, seed=7))
    b = list(iter_cohort(15, seed=7))
    c = list(iter_cohort(15, seed=8))
    assert a == b
    assert a != c
    assert {e["patient_id"] for e in a} == {patient_id(i) for i in range(15)} == {e["patient_id"] for e in c}


def test_patient_depends_only_on_seed_and_index():
    # a prefix of a cohort is the smaller cohort; patient i can be generated alone (partitions)
    small = list(iter_cohort(5, seed=3))
    big = list(iter_cohort(8, seed=3))
    assert big[: len(small)] == small
    assert generate_patient(patient_rng(3, 6), 6) == [e for e in big if e["patient_id"] == "SYN-000007"]


def test_written_file_is_the_iterated_cohort(tmp_path):
    p1, p2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    calls = []
    n = write_cohort_jsonl(p1, 12, seed=2, progress=lambda done, events: calls.append((done, events)))
    assert write_cohort_jsonl(p2, 12, seed=2) == n
    assert p1.read_bytes() == p2.read_bytes()
    lines = p1.read_text().splitlines()
    assert len(lines) == n
    assert [json.loads(x) for x in lines] == list(iter_cohort(12, seed=2))
    assert calls == [(12, n)]
    assert write_cohort_jsonl(tmp_path / "c.jsonl", 12, seed=3) > 0
    assert (tmp_path / "c.jsonl").read_bytes() != p1.read_bytes()


def test_a_cohort_written_in_parts_is_the_cohort_written_at_once(tmp_path):
    """`first` lets a large cohort be written as files of consecutive patients (benchmarks/scale.py --registry):
    concatenated, they are byte for byte the file written at once."""
    whole = tmp_path / "whole.jsonl"
    n = write_cohort_jsonl(whole, 9, seed=4)
    parts = [(0, 4), (4, 7), (7, 9)]
    counts = [write_cohort_jsonl(tmp_path / f"part-{lo}.jsonl", hi - lo, seed=4, first=lo) for lo, hi in parts]
    assert sum(counts) == n
    assert b"".join((tmp_path / f"part-{lo}.jsonl").read_bytes() for lo, _ in parts) == whole.read_bytes()
    assert (tmp_path / "part-4.jsonl").read_bytes() != (tmp_path / "part-0.jsonl").read_bytes()[: len(
        (tmp_path / "part-4.jsonl").read_bytes())]


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cohort.jsonl"
    assert main(["--patients", "4", "--seed", "1", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert [json.loads(x) for x in lines] == list(iter_cohort(4, seed=1))
    assert f"wrote {len(lines):,} events for 4 patients" in capsys.readouterr().err


def test_mean_events_per_patient(cohort200):
    sizes = [len(p) for p in cohort200]
    assert 120 <= mean(sizes) <= 180
    assert min(sizes) >= 10


def test_every_course_is_coherent_and_in_the_past(cohort200):
    ids = [p[0]["patient_id"] for p in cohort200]
    assert ids == [patient_id(i) for i in range(200)]
    for events in cohort200:
        _check_coherent(events)
        d0 = _day0(events)
        assert date(2012, 1, 1) <= d0 <= date(2025, 12, 31)
        first = [e for e in events if e["type"] == "stem_cell_infusion"]
        assert first[0]["transplant_number"] == 1


def test_patients_come_one_after_the_other():
    seen = []
    for pid, _ in groupby(iter_cohort(30, seed=11), key=lambda e: e["patient_id"]):
        assert pid not in seen
        seen.append(pid)
    assert len(seen) == 30


def test_sample_validates_with_the_vocabulary(cohort200):
    for events in cohort200[:40]:
        for e in events:
            parse_event(e)
    for i in range(40, 60):  # the JSON fast path the importer uses, and no event twice
        ids = set()
        for line in patient_lines(patient_rng(0, i), i):
            ids.add(content_event_id(parse_event_json(line)))
        assert len(ids) == len(cohort200[i])


def test_clinical_shape_of_the_cohort(cohort200):
    n = len(cohort200)

    def share(pred) -> float:
        return sum(1 for p in cohort200 if pred(p)) / n

    def has(p, t, **kv) -> bool:
        return any(e["type"] == t and all(e.get(k) == v for k, v in kv.items()) for e in p)

    diseases = Counter(next(e["disease"] for e in p if e["type"] == "diagnosis") for p in cohort200)
    assert diseases.most_common(1)[0][0] == "b_all"
    assert 0.15 <= share(lambda p: p[-1]["type"] == "death") <= 0.35
    assert 0.25 <= share(lambda p: has(p, "gvhd_diagnosed", kind="acute")) <= 0.45
    assert 0.1 <= share(lambda p: has(p, "gvhd_diagnosed", kind="chronic")) <= 0.3
    assert 0.25 <= share(lambda p: any(e["type"] == "viral_load" and e["virus"] == "cmv"
                                       and e.get("iu_per_ml", 0) >= 1000 for e in p)) <= 0.5
    assert 0.2 <= share(lambda p: has(p, "blinatumomab_started")) <= 0.5
    # neutrophil recovery from the daily counts, as the engraftment rule reads them
    days = [d for d in map(_neutrophil_engraftment_day, cohort200) if d is not None]
    assert len(days) >= 0.9 * n
    assert 12 <= median(days) <= 22
    assert min(days) >= 9


def test_blinatumomab_bridging_cycles(cohort200):
    for events in cohort200:
        d0 = _day0(events)
        bridging = [e for e in events if e["type"].startswith("blinatumomab") and _day(e) < d0]
        for e in bridging:
            if e["type"] == "blinatumomab_started":
                dose = e.get("dose_ug_per_m2_day", e.get("dose_ug_per_day"))
                assert dose == ((5 if "dose_ug_per_m2_day" in e else 9) if e["cycle"] == 1
                                else (15 if "dose_ug_per_m2_day" in e else 28))
                stops = [s for s in bridging if s["type"] == "blinatumomab_stopped" and s["cycle"] == e["cycle"]]
                assert len(stops) == 1 and (_day(stops[0]) - _day(e)).days == 28
                assert stops[0]["reason"] == "completed"
            if e["type"] == "blinatumomab_dose_changed":
                assert e["cycle"] == 1


# ---------------------------------------------------------------------------------------------
# The hypothesis strategies

_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(patient_history())
def test_drawn_history_is_valid_and_coherent(events):
    assert 10 <= len(events) <= 80
    for e in events:
        parse_event(e)
    _check_coherent(events)
    assert len({content_event_id(parse_event(e)) for e in events}) == len(events)
    d0 = _day0(events)
    for e in events:  # acute GVHD only once neutrophils have come back
        if e["type"] == "gvhd_diagnosed" and e["kind"] == "acute":
            assert any(x["type"] == "blood_count" and x["anc_e9_per_l"] >= 0.5 and d0 < _day(x) < _day(e)
                       for x in events)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort_histories(min_patients=2, max_patients=4))
def test_drawn_cohort(events):
    blocks = [(pid, list(g)) for pid, g in groupby(events, key=lambda e: e["patient_id"])]
    assert 2 <= len(blocks) <= 4
    assert len({pid for pid, _ in blocks}) == len(blocks)
    for _, block in blocks:
        _check_coherent(block)


def _post(events, t):
    d0 = _day0(events)
    return [e for e in events if e["type"] == t and d0 is not None and _day(e) > d0]


def _transfused_then_high(h) -> bool:
    tx = [_day(e) for e in h if e["type"] == "transfusion" and e["product"] == "platelets"]
    return any(e["type"] == "blood_count" and e["platelets_e9_per_l"] >= 20
               and any(0 < (_day(e) - t).days < 7 for t in tx) for e in h)


EDGE_CASES = {
    "no infusion at all": lambda h: _day0(h) is None,
    "relapse and death on the same day": lambda h: h[-1]["type"] == "death" and any(
        e["type"] == "relapse" and e["occurred_on"] == h[-1]["occurred_on"] for e in h),
    "death before neutrophil engraftment": lambda h: _day0(h) is not None and h[-1]["type"] == "death"
    and _neutrophil_engraftment_day(h) is None and (_day(h[-1]) - _day0(h)).days < 30,
    "never neutropenic": lambda h: len(_post(h, "blood_count")) > 5
    and all(e["anc_e9_per_l"] >= 0.5 for e in _post(h, "blood_count")),
    "platelets >= 20 within 7 days of a platelet transfusion": _transfused_then_high,
    "day-0 ANC >= 0.5 before the nadir": lambda h: any(
        e["type"] == "blood_count" and _day(e) == _day0(h) and e["anc_e9_per_l"] >= 0.5 for e in h),
    "no engraftment by day 30 (graft failure)": lambda h: _day0(h) is not None
    and _neutrophil_engraftment_day(h) is None and (_day(h[-1]) - _day0(h)).days > 42,
    "acute GVHD with stages": lambda h: any(e["type"] == "gvhd_diagnosed" and "skin_stage" in e for e in h),
    "blinatumomab bridging": lambda h: any(e["type"] == "blinatumomab_dose_changed" for e in h),
}


def test_edge_cases_are_reachable():
    seen: set[str] = set()

    @settings(max_examples=250, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow])
    @given(patient_history())
    def explore(h):
        seen.update(name for name, cond in EDGE_CASES.items() if cond(h))

    explore()
    assert seen == set(EDGE_CASES), f"never drawn: {set(EDGE_CASES) - seen}"
