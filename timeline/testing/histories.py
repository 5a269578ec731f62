"""Hypothesis strategies for clinically coherent patient histories (public API).

For users who property-test rules (engraftment, bridging, GVHD, endpoints) against the public event
format (``docs/events.md``)::

    from hypothesis import given
    from timeline.testing.histories import patient_history, cohort_histories

    @given(patient_history())
    def test_engraftment_never_before_day_0(events): ...

A history is a list of public-format event dicts (``type``, ``patient_id``, ``occurred_on`` as ISO
text, the type's fields) for one patient, in chronological order (same-day events in clinical
order: registration first, a relapse before a death, a death last), 10-80 events: registration,
diagnosis, first-line therapy, often a relapse with salvage, blinatumomab bridging (cycles with the
cycle-1 step-up, MRD after each), conditioning, prophylaxis, the stem-cell infusion, blood counts
around the nadir and engraftment with platelet and red-cell transfusions, chimerism, CMV/EBV loads,
infections, engraftment syndrome, acute GVHD with MAGIC stages (treatment and response), chronic
GVHD, and a death or follow-up contacts.

Everything is drawn with hypothesis (no seeded RNG), so failing examples shrink; values are drawn
from short lists that straddle the engine's thresholds (ANC 0.49/0.5, platelets 19/20, MRD 0.01%,
CMV 999/1000 IU/mL, donor chimerism 4.9/5/95/95.1 %, steroid-refractoriness at 3 and 7 days).
Edge cases the strategies reach on purpose: no infusion at all; death before engraftment; a graft
that never engrafts (with or without a ``graft_failure`` event); counts that never fall below 0.5
(never neutropenic); counts at or above 0.5 on day 0 before the nadir; a run of 0.5+ broken by one
low value; two counts on one day; platelet transfusions within 7 days before values >= 20;
relapse and death on the same day.

Coherence guaranteed by construction: events are dated on or after birth and on or before
2026-11-01; nothing after a death (a death is the last event, at most one); blood counts,
transfusions, chimerism, viral loads and post-transplant complications only on or after day 0;
acute GVHD only after neutrophil recovery; a given GVHD grade always equals the MAGIC grade of the
stages given with it; WBC >= ANC; follow-up contacts only while alive.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from timeline.events import magic_overall_grade

__all__ = ["cohort_histories", "history_patient_id", "patient_history"]

_EPOCH = date(2019, 1, 1)
_LATEST = date(2026, 11, 1)

# same-day order (lower first); death always last
_PRIO = {
    "patient_registered": 0, "diagnosis": 1, "relapse": 2, "disease_assessment": 3, "mrd_test": 4,
    "chemotherapy_stopped": 5, "blinatumomab_stopped": 6, "chemotherapy_started": 7,
    "blinatumomab_started": 8, "blinatumomab_dose_changed": 9, "conditioning_started": 10,
    "gvhd_prophylaxis_started": 11, "stem_cell_infusion": 12, "blood_count": 13, "transfusion": 14,
    "graft_failure": 15, "chimerism_test": 16, "donor_lymphocyte_infusion": 17, "viral_load": 18,
    "viral_reactivation": 19, "infection": 20, "engraftment_syndrome": 21, "toxicity": 22,
    "gvhd_diagnosed": 23, "gvhd_treatment_started": 24, "gvhd_response": 25, "gvhd_resolved": 26,
    "follow_up": 27, "death": 99,
}

# values straddling the engine's thresholds; the first of each list is what shrinking goes to
_ANC_LOW = (0.0, 0.01, 0.05, 0.2, 0.49)
_ANC_OK = (1.2, 0.5, 0.7, 2.4)
_ANC_DAY0 = (0.3, 0.8, 1.6, 0.05)
_PLT_LOW = (8, 5, 12, 19)
_PLT_OK = (45, 20, 25, 90)
_HB = (8.5, 7.2, 9.8)
_MRD = (None, 0.005, 0.01, 0.3, 6.0)  # None: below detection
_SENSITIVITY = (0.01, 0.001, 0.1)
_CMV = (None, 150, 999, 1000, 12000)
_DONOR_PERCENT = (100.0, 99.0, 95.1, 95.0, 60.0, 5.0, 4.9, 0.0)
_OUTCOMES = ("alive", "death", "relapse_then_death", "relapse_death_same_day", "relapse_alive")


def history_patient_id(n: int) -> str:
    """The pseudonymous id ``cohort_histories`` gives its ``n``-th patient (1-based): ``HYP-0001``."""
    return f"HYP-{n:04d}"


class _Builder:
    """Collects (day, order, event) for one patient; drops what falls after the last allowed day."""

    def __init__(self, patient_id: str, day0: date, end: int | None = None) -> None:
        self.pid = patient_id
        self.day0 = day0
        self.end = end  # last allowed day (relative to day 0); None = no limit yet
        self.items: list[tuple[int, int, int, dict[str, Any]]] = []

    def add(self, day: int, type_: str, **fields: Any) -> None:
        if self.end is not None and day > self.end:
            return
        event = {"type": type_, "patient_id": self.pid,
                 "occurred_on": (self.day0 + timedelta(days=day)).isoformat()}
        event.update((k, v) for k, v in fields.items() if v is not None)
        self.items.append((day, _PRIO[type_], len(self.items), event))

    def events(self) -> list[dict[str, Any]]:
        out, seen = [], set()
        for *_, e in sorted(self.items, key=lambda t: t[:3]):
            key = repr(sorted(e.items()))  # the same event twice would be one (content-derived id)
            if key not in seen:
                seen.add(key)
                out.append(e)
        return out


def _mrd(draw: st.DrawFn, b: _Builder, day: int) -> None:
    method = draw(st.sampled_from(("flow", "pcr", "ngs")))
    specimen = draw(st.sampled_from(("bone_marrow", "peripheral_blood")))
    value = draw(st.sampled_from(_MRD))
    if value is None:
        b.add(day, "mrd_test", method=method, specimen=specimen, below_detection=True,
              sensitivity_percent=draw(st.sampled_from(_SENSITIVITY)))
    else:
        b.add(day, "mrd_test", method=method, specimen=specimen, result_percent=value)


@st.composite
def patient_history(draw: st.DrawFn, patient_id: str | None = None) -> list[dict[str, Any]]:
    """Strategy: one patient's coherent history, 10-80 public-format event dicts in date order."""
    pid = patient_id if patient_id is not None else history_patient_id(draw(st.integers(1, 9999)))
    day0 = _EPOCH + timedelta(days=draw(st.integers(-2500, 1900)))  # 2012-02 .. 2024-03
    age_years = draw(st.integers(2, 70))
    birth_day = -age_years * 365 - draw(st.integers(0, 364))
    disease = draw(st.sampled_from(("b_all", "b_all", "b_all", "aml", "t_all", "mds", "mpal", "cml", "other")))
    infused = draw(st.sampled_from((True, True, True, False)))  # mostly transplanted; shrinks to it
    relapsed_before = (not infused) or draw(st.booleans())
    cycles = draw(st.integers(0, 2)) if disease == "b_all" else 0

    # ---- outcome first: it bounds everything else -------------------------------------------
    scenario = "none"
    if infused:
        scenario = draw(st.sampled_from(
            ("engrafts", "dip", "never_neutropenic", "death_before_engraftment", "graft_failure")))
    e_day = draw(st.integers(8, 28))  # neutrophil recovery (first of the run)
    step = draw(st.integers(1, 2))  # days between counts
    if scenario == "death_before_engraftment":
        outcome = "death"
        last = draw(st.integers(3, e_day - 1))
    else:
        outcome = draw(st.sampled_from(_OUTCOMES))
        last = draw(st.integers(45 if infused else 1, 700))
    b = _Builder(pid, day0)
    # nothing may be dated after the latest allowed day
    latest = (_LATEST - day0).days
    last = min(last, latest)

    # ---- before the transplant ---------------------------------------------------------------
    gap = draw(st.integers(7, 60))  # last therapy stop -> day 0
    bridge_start = -gap - 28 * cycles - 14 * max(cycles - 1, 0)
    salvage_start = bridge_start - draw(st.integers(35, 70))
    relapse_day = salvage_start - draw(st.integers(1, 7)) if relapsed_before else None
    first_line_end = (relapse_day if relapse_day is not None else bridge_start) - draw(st.integers(5, 60))
    dx = first_line_end - draw(st.integers(60, 500))
    dx = max(dx, birth_day + 60)
    if first_line_end <= dx + 35:
        first_line_end = dx + 35
    birth = day0 + timedelta(days=birth_day)
    b.add(dx, "patient_registered", birth_date=birth.isoformat(),
          sex=draw(st.sampled_from(("male", "female", "unknown", "other"))))
    b.add(dx, "diagnosis", disease=disease,
          risk_group=draw(st.sampled_from((None, "standard", "high"))))
    regimen = {"aml": "7+3", "mds": "azacitidine", "cml": "imatinib"}.get(disease, "BFM induction")
    b.add(dx + 2, "chemotherapy_started", regimen=regimen, intent="induction")
    b.add(first_line_end, "chemotherapy_stopped", regimen=regimen)
    b.add(first_line_end, "disease_assessment",
          response=draw(st.sampled_from(("complete_remission", "cri", "partial_response", "refractory"))))
    _mrd(draw, b, first_line_end)
    if relapse_day is not None:
        b.add(relapse_day, "relapse", site=draw(st.sampled_from(("bone_marrow", "cns", "combined"))),
              marrow_blasts_percent=draw(st.sampled_from((None, 30.0, 85.5))))
        b.add(salvage_start, "chemotherapy_started", regimen="FLAG-Ida", intent="salvage")
        stop = salvage_start + 28
        b.add(stop, "chemotherapy_stopped", regimen="FLAG-Ida")
        b.add(stop + 1, "disease_assessment",
              response=draw(st.sampled_from(("complete_remission", "cri", "refractory"))))
    per_m2 = draw(st.booleans().map(lambda x: not x))
    dose_key = "dose_ug_per_m2_day" if per_m2 else "dose_ug_per_day"
    low, high = (5.0, 15.0) if per_m2 else (9.0, 28.0)
    start = bridge_start
    for cycle in range(1, cycles + 1):
        b.add(start, "blinatumomab_started", cycle=cycle, **{dose_key: low if cycle == 1 else high})
        if cycle == 1:
            b.add(start + 7, "blinatumomab_dose_changed", cycle=1, **{dose_key: high})
        b.add(start + 28, "blinatumomab_stopped", cycle=cycle,
              reason=draw(st.sampled_from(("completed", "toxicity", "transplant", "other"))))
        _mrd(draw, b, start + 28)
        start += 42

    # ---- no transplant: the story ends with the outcome ---------------------------------------
    if not infused:
        b.end = last
        _outcome(draw, b, outcome, last, first_day=1, relapsed_after=None)
        return b.events()

    # ---- the transplant ------------------------------------------------------------------------
    b.add(-draw(st.integers(5, 8)), "conditioning_started",
          regimen=draw(st.sampled_from(("TBI/etoposide", "Flu/Treo/Thiotepa", "Flu/Mel"))),
          intensity=draw(st.sampled_from(("myeloablative", "reduced_intensity", "non_myeloablative"))),
          tbi_gy=draw(st.sampled_from((None, 12.0, 2.0))))
    ptcy = draw(st.booleans())
    b.add(3 if ptcy else -1, "gvhd_prophylaxis_started",
          agents=["ptcy", "tacrolimus", "mmf"] if ptcy else ["cyclosporine", "methotrexate"])
    donor = draw(st.sampled_from(
        ("haploidentical", "matched_sibling", "matched_unrelated", "mismatched_unrelated", "cord_blood")))
    source = "cord_blood" if donor == "cord_blood" else draw(st.sampled_from(("peripheral_blood", "bone_marrow")))
    b.add(0, "stem_cell_infusion", donor=donor, graft_source=source,
          cd34_e6_per_kg=draw(st.sampled_from((None, 5.2, 0.3))), transplant_number=1)

    relapse_after = None
    if outcome in ("relapse_then_death", "relapse_alive"):
        relapse_after = draw(st.integers(30, max(30, last - 1)))
    elif outcome == "relapse_death_same_day":
        relapse_after = last
    b.end = last

    # ---- blood counts around the nadir and engraftment ---------------------------------------
    engrafts = scenario in ("engrafts", "dip", "never_neutropenic")
    if scenario == "death_before_engraftment":
        count_to = last
    elif scenario == "graft_failure":
        count_to = 35
        step = 2
    else:
        count_to = min(e_day + 2 * step + draw(st.integers(0, 6)), 31)
    p_day = e_day + draw(st.integers(-4, 6)) if engrafts else 10_000
    late_tx = engrafts and draw(st.booleans())  # a platelet transfusion within 7 days of values >= 20
    boost_next = False
    platelet_tx = red_tx = 0  # capped: a history stays within 80 events
    days = list(range(0, count_to + 1, step))
    for d in days:
        if scenario == "never_neutropenic":
            anc = draw(st.sampled_from((0.5, 0.8, 1.4)))
        elif d == 0:
            anc = draw(st.sampled_from(_ANC_DAY0))
        elif d >= e_day and engrafts:
            anc = draw(st.sampled_from(_ANC_OK))
        elif scenario == "dip" and e_day - 3 * step <= d < e_day - step:
            anc = draw(st.sampled_from((0.5, 0.6)))  # a short run that a low value breaks
        else:
            anc = draw(st.sampled_from(_ANC_LOW))
        if d >= p_day:
            plt = draw(st.sampled_from(_PLT_OK))
        else:
            plt = draw(st.sampled_from(_PLT_LOW))
            if boost_next:
                plt += draw(st.sampled_from((15, 30)))  # transfused yesterday: >= 20, not eligible
        boost_next = False
        b.add(d, "blood_count", anc_e9_per_l=anc, platelets_e9_per_l=float(plt),
              wbc_e9_per_l=round(anc + 0.2, 2), hb_g_per_dl=draw(st.sampled_from(_HB)))
        if d < p_day and plt < 10 and platelet_tx < 4 and draw(st.booleans()):
            b.add(d, "transfusion", product="platelets")
            platelet_tx += 1
            boost_next = True
        if 3 <= d < e_day and red_tx < 2 and draw(st.integers(0, 5)) == 0:
            b.add(d, "transfusion", product="red_cells")
            red_tx += 1
    if late_tx and p_day - 7 >= 1:
        b.add(p_day - draw(st.integers(1, 7)), "transfusion", product="platelets")
    if engrafts and draw(st.integers(0, 3)) == 0:
        # two samples on one day: the lower value is the one that counts
        d = days[-1]
        b.add(d, "blood_count", anc_e9_per_l=0.3, platelets_e9_per_l=15.0)
    if scenario == "graft_failure" and draw(st.booleans()):
        b.add(draw(st.integers(28, 35)), "graft_failure", kind="primary")

    # ---- later course ----------------------------------------------------------------------------
    for target in draw(st.lists(st.sampled_from((30, 60, 100)), max_size=2, unique=True)):
        percents = _DONOR_PERCENT if scenario != "graft_failure" else (4.9, 0.0, 2.5)  # rejected graft
        b.add(target, "chimerism_test", donor_percent=draw(st.sampled_from(percents)),
              compartment=draw(st.sampled_from(("whole_blood", "t_cell", "bone_marrow"))), method="str")
    cmv_days = draw(st.lists(st.integers(1, 14), max_size=3, unique=True))
    reactivated = None
    for week in sorted(cmv_days):
        load = draw(st.sampled_from(_CMV))
        if load is None:
            b.add(7 * week, "viral_load", virus="cmv", specimen="plasma", below_detection=True)
        else:
            b.add(7 * week, "viral_load", virus="cmv", specimen="plasma", iu_per_ml=float(load))
            if load >= 1000 and reactivated is None:
                reactivated = 7 * week
    if reactivated is not None and draw(st.booleans()):
        b.add(reactivated + draw(st.integers(0, 3)), "viral_reactivation", virus="cmv",
              treated=draw(st.sampled_from((True, False, None))))
    if draw(st.integers(0, 3)) == 0:
        b.add(draw(st.integers(14, 100)), "viral_load", virus="ebv",
              specimen=draw(st.sampled_from(("whole_blood", "plasma"))),
              iu_per_ml=float(draw(st.sampled_from((500, 1000, 25000)))))
    if draw(st.booleans()):
        category = draw(st.sampled_from(("bacterial", "viral", "fungal")))
        b.add(draw(st.integers(1, 60)), "infection", category=category,
              organism={"bacterial": "Escherichia coli", "viral": "RSV", "fungal": "Aspergillus fumigatus"}[category],
              site=draw(st.sampled_from(("bloodstream", "respiratory", "gastrointestinal"))))
    if engrafts and scenario != "never_neutropenic" and draw(st.booleans()):
        b.add(max(1, e_day + draw(st.integers(-2, 2))), "engraftment_syndrome")
    if draw(st.booleans()):
        b.add(draw(st.integers(2, 9)), "toxicity", kind=draw(st.sampled_from(("mucositis", "vod_sos", "crs"))),
              grade=draw(st.integers(1, 4)))
    if engrafts and draw(st.booleans()):
        _acute_gvhd(draw, b, onset=e_day + draw(st.integers(1, 40)))
    if engrafts and last > 100 and draw(st.integers(0, 3)) == 0:
        onset = draw(st.integers(100, max(100, last)))
        severity = draw(st.sampled_from(("mild", "moderate", "severe")))
        b.add(onset, "gvhd_diagnosed", kind="chronic", severity=severity)
        if severity != "mild":
            b.add(onset + 1, "gvhd_treatment_started", kind="chronic", line=1, agents=["prednisone"],
                  steroid_mg_per_kg_day=1.0)

    first_day = days[-1] + 1
    _outcome(draw, b, outcome, last, first_day=first_day, relapsed_after=relapse_after)
    return b.events()


def _acute_gvhd(draw: st.DrawFn, b: _Builder, onset: int) -> None:
    skin = draw(st.integers(0, 4))
    liver = draw(st.integers(0, 4))
    lower = draw(st.integers(0, 4))
    upper = draw(st.integers(0, 1))
    if magic_overall_grade(skin, liver, upper, lower) == 0:
        skin = 1
    grade = magic_overall_grade(skin, liver, upper, lower)
    form = draw(st.sampled_from(("stages", "stages_and_grade", "grade")))
    if form == "grade":
        b.add(onset, "gvhd_diagnosed", kind="acute", grade=grade)
    else:
        b.add(onset, "gvhd_diagnosed", kind="acute", skin_stage=skin, liver_stage=liver,
              lower_gi_stage=lower, upper_gi_stage=upper,
              grade=grade if form == "stages_and_grade" else None)
    if grade >= 2:
        start = onset + draw(st.integers(0, 1))
        b.add(start, "gvhd_treatment_started", kind="acute", line=1, agents=["methylprednisolone"],
              steroid_mg_per_kg_day=draw(st.sampled_from((2.0, 1.0))))
        after = draw(st.integers(1, 28))  # refractoriness windows: progression >= 3, no response >= 7
        response = draw(st.sampled_from(("complete", "partial", "no_response", "progression")))
        b.add(start + after, "gvhd_response", kind="acute", response=response,
              steroid_refractory=draw(st.sampled_from((None, True, False))))
        if response == "complete" and draw(st.booleans()):
            b.add(start + after + draw(st.integers(1, 30)), "gvhd_resolved", kind="acute")


def _outcome(draw: st.DrawFn, b: _Builder, outcome: str, last: int, first_day: int,
             relapsed_after: int | None) -> None:
    """Relapse, follow-up contacts while alive, and the death (last) or a last contact on ``last``."""
    dead = outcome in ("death", "relapse_then_death", "relapse_death_same_day")
    if relapsed_after is None and outcome.startswith("relapse"):
        if outcome == "relapse_death_same_day":
            relapsed_after = last
        else:
            relapsed_after = draw(st.integers(first_day, max(first_day, last)))
    if relapsed_after is not None:
        b.add(relapsed_after, "relapse", site=draw(st.sampled_from(("bone_marrow", "combined", "cns"))))
    contacts = sorted(draw(st.lists(st.integers(first_day, max(first_day, last)), max_size=2, unique=True)))
    if not dead:
        contacts = sorted(set(contacts) | {last})
    for day in contacts:
        if dead and day >= last:
            continue
        status = "relapse" if relapsed_after is not None and day >= relapsed_after else "remission"
        b.add(day, "follow_up", disease_status=status)
    if dead:
        cause = "relapse" if relapsed_after is not None else draw(
            st.sampled_from(("infection", "transplant_related", "gvhd", "toxicity", "other", "unknown")))
        b.add(last, "death", cause=cause)


@st.composite
def cohort_histories(draw: st.DrawFn, min_patients: int = 1, max_patients: int = 5) -> list[dict[str, Any]]:
    """Strategy: the events of several patients (``HYP-0001`` ...), each patient's history in order."""
    n = draw(st.integers(min_patients, max_patients))
    events: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        events.extend(draw(patient_history(patient_id=history_patient_id(i))))
    return events
