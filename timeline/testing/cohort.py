"""Seeded, deterministic synthetic cohort of allogeneic stem-cell transplant courses.

Every event is a public-format event dict (``/work/shared/EVENTS.md``): ``type``, ``patient_id``
(``SYN-000001``, ...), ``occurred_on`` (ISO date) and the type's fields. A patient's events come in
chronological order (same-day events in clinical order: a relapse before a death, a death last) and
patients come one after the other.

The course of a patient (~150 events on average): registration and diagnosis (mostly B-ALL; also AML,
T-ALL, MDS, MPAL, CML, other), first-line chemotherapy, relapse and salvage for many, blinatumomab
bridging for a large share of B-ALL (1-2 cycles of 28 days, cycle 1 stepped up 5 -> 15 ug/m2/day, or
9 -> 28 ug/day at >= 45 kg), MRD tests and disease assessments, conditioning (~day -7), GVHD
prophylaxis, the stem-cell infusion (day 0), daily blood counts to day +60 with an aplasia nadir and
recovery (and the transfusions it needs), weekly counts to +100 then monthly / at each contact,
chimerism, CMV and EBV loads, infections, engraftment syndrome, toxicities, acute GVHD with MAGIC
stages and its treatment and response, chronic GVHD, follow-up contacts, relapses and deaths.
Nothing is dated after a patient's death nor after :data:`DATE_LIMIT`.

Determinism: patient ``i`` of seed ``s`` depends only on ``(s, i)`` (:func:`patient_rng`), so a
cohort can be generated in partitions or in parallel and a prefix of a cohort is a smaller cohort.
No global random state is used.

Speed: events are rendered straight to JSON text from precomputed string tables (dates, numbers);
:func:`write_cohort_jsonl` never builds a dict. :func:`generate_patient` / :func:`iter_cohort` parse
the very same text, so both paths yield identical events.

Command line::

    python -m timeline.testing.cohort --patients 10000 --seed 1 --out cohort.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from math import exp, log

from timeline.events import magic_overall_grade

__all__ = [
    "DATE_LIMIT",
    "HSCT_FIRST",
    "HSCT_LAST",
    "generate_patient",
    "iter_cohort",
    "main",
    "patient_id",
    "patient_lines",
    "patient_rng",
    "write_cohort_jsonl",
]

#: No generated event is dated after this day.
DATE_LIMIT = date(2026, 11, 1)
#: Transplant (day 0) dates are spread uniformly over these two days included.
HSCT_FIRST = date(2012, 1, 1)
HSCT_LAST = date(2025, 12, 31)

# ---------------------------------------------------------------------------------------------
# Precomputed string tables. All internal dates are "day numbers" = ordinal - _BASE, so that a
# date's ISO text is _D[day].
_BASE = date(1920, 1, 1).toordinal()
_LIMIT = DATE_LIMIT.toordinal() - _BASE
_D = [date.fromordinal(o + _BASE).isoformat() for o in range(_LIMIT + 1)]
_H0 = HSCT_FIRST.toordinal() - _BASE
_H1 = HSCT_LAST.toordinal() - _BASE
# numbers as JSON text: 2 decimals (0..99.99), 1 decimal (0..99.9), integers (0..4999)
_F2 = [repr(i / 100) for i in range(10000)]
_F1 = [repr(i / 10) for i in range(1000)]
_I = [str(i) for i in range(5000)]

# Same-day order of event types (lower first). The death is always last on its day.
_PRIO = {
    "patient_registered": 0,
    "diagnosis": 1,
    "relapse": 2,
    "disease_assessment": 3,
    "mrd_test": 4,
    "chemotherapy_stopped": 5,
    "blinatumomab_stopped": 6,
    "chemotherapy_started": 7,
    "blinatumomab_started": 8,
    "blinatumomab_dose_changed": 9,
    "conditioning_started": 10,
    "gvhd_prophylaxis_started": 11,
    "stem_cell_infusion": 12,
    "blood_count": 13,
    "transfusion": 14,
    "graft_failure": 15,
    "chimerism_test": 16,
    "donor_lymphocyte_infusion": 17,
    "viral_load": 18,
    "viral_reactivation": 19,
    "infection": 20,
    "engraftment_syndrome": 21,
    "toxicity": 22,
    "gvhd_diagnosed": 23,
    "gvhd_treatment_started": 24,
    "gvhd_response": 25,
    "gvhd_resolved": 26,
    "follow_up": 27,
    "death": 99,
}


def _stages_for_grade(rnd: Callable[[], float], grade: int) -> tuple[int, int, int, int]:
    """MAGIC (skin, liver, lower GI, upper GI) stages whose derived grade is ``grade``."""
    if grade == 1:
        return (1 if rnd() < 0.55 else 2), 0, 0, 0
    if grade == 2:
        while True:
            skin = (0, 1, 2, 3, 3)[int(rnd() * 5)]
            liver = 1 if rnd() < 0.15 else 0
            lgi = 1 if rnd() < 0.5 else 0
            ugi = 1 if rnd() < 0.35 else 0
            if magic_overall_grade(skin, liver, ugi, lgi) == 2:
                return skin, liver, lgi, ugi
    if grade == 3:
        while True:
            skin = int(rnd() * 4)
            liver = (0, 0, 0, 1, 2, 3)[int(rnd() * 6)]
            lgi = (0, 1, 2, 2, 3, 3)[int(rnd() * 6)]
            ugi = 1 if rnd() < 0.5 else 0
            if magic_overall_grade(skin, liver, ugi, lgi) == 3:
                return skin, liver, lgi, ugi
    # grade 4
    organ = rnd()
    skin = 4 if organ < 0.25 else int(rnd() * 4)
    liver = 4 if 0.25 <= organ < 0.4 else int(rnd() * 4)
    lgi = 4 if organ >= 0.4 else int(rnd() * 4)
    return skin, liver, lgi, (1 if rnd() < 0.5 else 0)


def patient_id(index: int) -> str:
    """Pseudonymous id of patient ``index`` (0-based): ``SYN-000001`` for index 0."""
    return f"SYN-{index + 1:06d}"


def patient_rng(seed: int, index: int) -> random.Random:
    """The random generator of patient ``index`` in the cohort of ``seed`` (independent per patient)."""
    return random.Random(f"timeline.cohort/{seed}/{index}")


def _j(s: str) -> str:
    return json.dumps(s)


# ---------------------------------------------------------------------------------------------
# The course of one patient, rendered as JSON lines.


def patient_lines(rng: random.Random, index: int) -> list[str]:  # noqa: C901 - one clinical story
    """The events of one synthetic patient as JSON text lines (each ending with a newline)."""
    rnd = rng.random
    gauss = rng.gauss
    pid = patient_id(index)
    D = _D
    F2 = _F2
    F1 = _F1
    I = _I  # noqa: E741
    out: list[tuple[int, int, str]] = []
    app = out.append
    pfx = '","patient_id":"' + pid + '","occurred_on":"'
    prio = _PRIO

    def pick(seq):
        return seq[int(rnd() * len(seq))]

    def wpick(pairs):
        x = rnd()
        for value, p in pairs:
            x -= p
            if x < 0:
                return value
        return pairs[-1][0]

    # ---- who, what, when ----------------------------------------------------------------
    d0 = _H0 + int(rnd() * (_H1 - _H0 + 1))  # day 0
    disease = wpick(
        (("b_all", 0.56), ("aml", 0.2), ("t_all", 0.08), ("mds", 0.07), ("mpal", 0.03), ("cml", 0.02),
         ("other", 0.04))
    )
    all_like = disease in ("b_all", "t_all", "mpal")
    pediatric_share = {"b_all": 0.7, "t_all": 0.5, "mpal": 0.5, "aml": 0.3, "mds": 0.15, "cml": 0.1, "other": 0.3}
    if rnd() < pediatric_share[disease]:
        age = 1.0 + 16.9 * rnd() ** 1.2
    elif disease == "mds":
        age = 35 + 40 * rnd()
    else:
        age = 18 + 52 * rnd()
    birth = d0 - int(age * 365.25) - int(rnd() * 30)
    adult = age >= 18
    weight_ge_45 = age >= 14 or (age >= 12 and rnd() < 0.5)
    sex = wpick((("male", 0.55), ("female", 0.435), ("unknown", 0.01), ("other", 0.005)))

    donor = wpick(
        (
            ("matched_sibling", 0.24),
            ("matched_unrelated", 0.3),
            ("haploidentical", 0.29),
            ("mismatched_unrelated", 0.09),
            ("cord_blood", 0.08 if adult else 0.12),
        )
    )
    if donor == "cord_blood":
        source = "cord_blood"
        hla = pick(("4/6", "5/6", "5/6", "6/6"))
        cd34 = 0.1 + 0.5 * rnd()
    else:
        if donor == "matched_sibling":
            source = "bone_marrow" if rnd() < 0.45 else "peripheral_blood"
            hla = "10/10"
        elif donor == "matched_unrelated":
            source = "bone_marrow" if rnd() < 0.25 else "peripheral_blood"
            hla = "10/10"
        elif donor == "mismatched_unrelated":
            source = "bone_marrow" if rnd() < 0.2 else "peripheral_blood"
            hla = "9/10"
        else:
            source = "bone_marrow" if rnd() < 0.4 else "peripheral_blood"
            hla = pick(("5/10", "5/10", "6/10", "7/10"))
        cd34 = (4.0 + 5.0 * rnd()) if source == "peripheral_blood" else (1.5 + 4.5 * rnd())
    cd34 = round(cd34, 2)

    relapse_pre = False  # transplanted after a relapse (CR2+)
    blina = False
    if disease == "b_all":
        relapse_pre = rnd() < 0.6
        blina = rnd() < (0.7 if relapse_pre else 0.3)
    elif disease in ("t_all", "mpal", "aml"):
        relapse_pre = rnd() < 0.35

    # ---- engraftment kinetics -----------------------------------------------------------
    ptcy = donor == "haploidentical" or (donor in ("matched_unrelated", "mismatched_unrelated") and rnd() < 0.25)
    if source == "peripheral_blood":
        e_day = 14 + gauss(0, 2.5)
    elif source == "bone_marrow":
        e_day = 19 + gauss(0, 3.5)
    else:
        e_day = 25 + gauss(0, 5)
    if ptcy:
        e_day += 2
    e_day = int(min(max(e_day, 9), 40))
    p_shift = 9.0 if source == "cord_blood" else 3.0
    p_day = int(e_day + gauss(p_shift, 6))
    if p_day < 9:
        p_day = 9
    if rnd() < (0.12 if source == "cord_blood" else 0.03):
        p_day = 61 + int(rnd() * 60)  # platelets not engrafted within the daily window
    gf_rate = {"cord_blood": 0.09, "haploidentical": 0.04}.get(donor, 0.02)
    graft_failure = rnd() < gf_rate
    never_neutropenic = not graft_failure and rnd() < 0.012
    second_hsct = None  # day of a second infusion after graft failure
    if graft_failure:
        if rnd() < 0.55:
            second_hsct = 31 + int(rnd() * 20)
            e_day = second_hsct + 11 + int(rnd() * 6)
            p_day = e_day + int(rnd() * 10)
        else:
            e_day = p_day = 10_000

    # ---- outcome: complications that drive mortality, relapse, death, censoring ------------
    gvhd_p = {"matched_sibling": 0.3, "matched_unrelated": 0.38, "mismatched_unrelated": 0.45, "haploidentical": 0.33}
    agvhd = e_day < 200 and rnd() < gvhd_p.get(donor, 0.35)
    agvhd_grade = 0
    agvhd_on = 0
    sr = False
    if agvhd:
        agvhd_grade = wpick(((1, 0.4), (2, 0.35), (3, 0.17), (4, 0.08)))
        agvhd_on = max(e_day + 1 + int(rnd() * 4), int(14 + exp(log(18) + 0.6 * gauss(0, 1))))
        agvhd_on = min(agvhd_on, 150)
        sr = agvhd_grade >= 2 and rnd() < (0.25 if agvhd_grade == 2 else 0.5)
    cgvhd = rnd() < (0.35 if agvhd else 0.13)
    cgvhd_on = 100 + int(rnd() * 440)
    cgvhd_sev = wpick((("mild", 0.35), ("moderate", 0.45), ("severe", 0.2)))

    relapse_p = {"b_all": 0.22, "t_all": 0.25, "mpal": 0.25, "aml": 0.28, "mds": 0.2, "cml": 0.15,
                 "other": 0.2}[disease]
    if relapse_pre:
        relapse_p *= 1.35
    relapse_day = None
    if rnd() < relapse_p:
        relapse_day = int(40 + exp(log(200) + 0.8 * gauss(0, 1)))
        if relapse_day > 2500:
            relapse_day = 2500

    death_day = None
    death_cause = None
    # non-relapse mortality
    nrm_p = 0.045
    if agvhd_grade >= 3:
        nrm_p += 0.25
    if sr:
        nrm_p += 0.1
    if cgvhd and cgvhd_sev == "severe":
        nrm_p += 0.1
    vod = rnd() < 0.06
    vod_fatal = vod and rnd() < 0.15
    if graft_failure and second_hsct is None:
        death_day, death_cause = 25 + int(rnd() * 50), "infection"
    elif vod_fatal:
        death_day, death_cause = 14 + int(rnd() * 25), "toxicity"
    elif rnd() < nrm_p:
        if agvhd_grade >= 3 or (sr and rnd() < 0.7):
            death_day, death_cause = agvhd_on + 20 + int(rnd() * 200), "gvhd"
        elif cgvhd and cgvhd_sev == "severe" and rnd() < 0.6:
            death_day, death_cause = cgvhd_on + 60 + int(rnd() * 500), "gvhd"
        else:
            death_cause = wpick(
                (("infection", 0.5), ("transplant_related", 0.2), ("other", 0.15), ("unknown", 0.1),
                 ("toxicity", 0.05))
            )
            death_day = int(exp(log(90) + 1.0 * gauss(0, 1)))
            death_day = min(max(death_day, 5), 1500)
    if death_day is not None and relapse_day is not None and relapse_day > death_day:
        relapse_day = None  # died in remission
    if relapse_day is not None and (death_day is None or death_day >= relapse_day):
        # deaths after relapse are relapse deaths (the rare same-day case included)
        if rnd() < 0.7:
            if rnd() < 0.02:
                death_day = relapse_day
            else:
                death_day = relapse_day + int(exp(log(150) + 0.9 * gauss(0, 1)))
                death_day = max(death_day, relapse_day + 7)
            death_cause = "relapse" if rnd() < 0.95 else "infection"
        elif death_day is not None:
            death_cause = "relapse"

    # censoring: data lock (2026-10-xx) or loss to follow-up
    censor = _LIMIT - int(rnd() * 31)
    if rnd() < 0.45:
        censor = min(censor, d0 + 180 + int(rnd() * 2000))
    dead = death_day is not None and d0 + death_day <= censor
    end = d0 + death_day if dead else censor  # last day anything may be dated
    if relapse_day is not None and d0 + relapse_day > end:
        relapse_day = None
    last_day = end - d0  # in days from day 0

    def ev(day: int, typ: str, body: str = "") -> None:
        # day is an absolute day number
        if day <= end:
            app((day, prio[typ], f'{{"type":"{typ}{pfx}{D[day]}"{body}}}\n'))

    def mrd(day: int, method: str, specimen: str, positive: float | None) -> None:
        if positive is None:
            sens = "0.001" if (method != "flow" and rnd() < 0.5) else "0.01"
            ev(day, "mrd_test", f',"method":"{method}","specimen":"{specimen}","below_detection":true'
                                f',"sensitivity_percent":{sens}')
        else:
            ev(day, "mrd_test",
               f',"method":"{method}","specimen":"{specimen}","result_percent":{round(positive, 3)!r}')

    def small_positive() -> float:
        return exp(log(0.001) + rnd() * (log(2.0) - log(0.001)))

    # ---- before the transplant ----------------------------------------------------------
    mrd_method = "pcr" if (all_like and rnd() < 0.35) else "flow"
    regimens = {
        "b_all": (("AIEOP-BFM ALL induction", "AIEOP-BFM ALL consolidation", "6-MP/MTX maintenance") if not adult
                  else ("GMALL induction", "GMALL consolidation", "POMP maintenance")),
        "t_all": ("BFM induction with nelarabine", "BFM consolidation", "6-MP/MTX maintenance"),
        "mpal": ("ALL-type induction", "ALL-type consolidation", "6-MP/MTX maintenance"),
        "aml": ("7+3 daunorubicin/cytarabine", "high-dose cytarabine", "azacitidine maintenance"),
        "mds": ("azacitidine", "azacitidine", "azacitidine"),
        "cml": ("imatinib", "dasatinib", "dasatinib"),
        "other": ("CHOP-like induction", "consolidation", "maintenance"),
    }[disease]
    salvage = pick({
        "b_all": ("IntReALL SR", "ALL-REZ BFM 2002", "UKALL R3", "FLAG-Ida"),
        "t_all": ("nelarabine/cyclophosphamide/etoposide", "FLAG-Ida"),
        "mpal": ("FLAG-Ida",),
        "aml": ("FLAG-Ida", "CLAG-M", "venetoclax/azacitidine"),
    }.get(disease, ("salvage chemotherapy",)))

    if blina:  # blinatumomab stop -> HSCT, median ~32 days
        gap = min(max(int(exp(log(32) + 0.3 * gauss(0, 1))), 14), 75)
    else:
        gap = 20 + int(rnd() * 25)
    cycles = (1 if rnd() < 0.5 else 2) if blina else 0
    last_stop = d0 - gap
    # start of the bridging (or of the last block of therapy before work-up)
    if blina:
        b1 = last_stop - 28 - (42 if cycles == 2 else 0)
        therapy_end = b1 - 7 - int(rnd() * 21)
    else:
        therapy_end = last_stop
    if relapse_pre:
        relapse_at = therapy_end - 42 - int(rnd() * 14)
        salvage_start = relapse_at + 3 + int(rnd() * 5)
        dx = relapse_at - int(180 + rnd() * 1100)
    else:
        relapse_at = None
        dx = therapy_end - int(130 + rnd() * 120)
    if dx < birth + 90:  # very young patient: compress the first-line phase
        dx = birth + 90 + int(rnd() * 30)
        if relapse_at is not None and relapse_at - dx < 120:
            relapse_at = None
    ev(dx, "patient_registered", f',"birth_date":"{D[birth]}","sex":"{sex}"')
    genetics = {
        "b_all": (("ETV6-RUNX1",), ("high hyperdiploidy",), ("BCR-ABL1",), ("KMT2A-AFF1",), ("TCF3-PBX1",),
                  ("IKZF1 deletion",), ()),
        "aml": (("FLT3-ITD", "NPM1"), ("RUNX1-RUNX1T1",), ("complex karyotype",), ("KMT2A-MLLT3",), ()),
        "cml": (("BCR-ABL1",),),
    }.get(disease, ((),))
    g = pick(genetics)
    risk = pick(("standard", "high", "very high")) if disease != "other" else None
    body = f',"disease":"{disease}"'
    if risk and rnd() < 0.8:
        body += f',"risk_group":"{risk}"'
    if g:
        body += ',"genetics":[' + ",".join(_j(x) for x in g) + "]"
    ev(dx, "diagnosis", body)
    # first-line therapy
    first_end = relapse_at if relapse_at is not None else therapy_end
    ind0 = dx + 1 + int(rnd() * 4)
    ind1 = ind0 + 30 + int(rnd() * 8)
    ev(ind0, "chemotherapy_started", f',"regimen":{_j(regimens[0])},"intent":"induction"')
    if ind1 < first_end - 5:
        ev(ind1, "chemotherapy_stopped", f',"regimen":{_j(regimens[0])}')
        ev(ind1 - 2, "disease_assessment", ',"response":"complete_remission","marrow_blasts_percent":'
           + F1[int(rnd() * 40)])
        if disease != "cml":
            mrd(ind1 - 2, mrd_method, "bone_marrow", small_positive() if rnd() < 0.5 else None)
        con0 = ind1 + 5 + int(rnd() * 10)
        con1 = min(con0 + 60 + int(rnd() * 80), first_end - 3)
        if con1 > con0:
            ev(con0, "chemotherapy_started", f',"regimen":{_j(regimens[1])},"intent":"consolidation"')
            ev(con1, "chemotherapy_stopped", f',"regimen":{_j(regimens[1])}')
            if relapse_at is not None and relapse_at - con1 > 40:
                m0 = con1 + 7 + int(rnd() * 14)
                m1 = min(m0 + 400 + int(rnd() * 300), relapse_at - 1)
                if m1 > m0:
                    ev(m0, "chemotherapy_started", f',"regimen":{_j(regimens[2])},"intent":"maintenance"')
                    ev(m1, "chemotherapy_stopped", f',"regimen":{_j(regimens[2])}')
    elif first_end - 1 > ind0:
        ev(first_end - 1, "chemotherapy_stopped", f',"regimen":{_j(regimens[0])}')
    if relapse_at is not None:
        site = wpick((("bone_marrow", 0.72), ("cns", 0.1), ("combined", 0.14),
                      ("testicular", 0.04 if sex == "male" else 0.0), ("other", 0.04 if sex != "male" else 0.0)))
        body = f',"site":"{site}"'
        if site in ("bone_marrow", "combined"):
            body += ',"marrow_blasts_percent":' + F1[50 + int(rnd() * 900)]
        ev(relapse_at, "relapse", body)
        s1 = salvage_start + 28 + int(rnd() * 8)
        ev(salvage_start, "chemotherapy_started", f',"regimen":{_j(salvage)},"intent":"salvage"')
        ev(s1, "chemotherapy_stopped", f',"regimen":{_j(salvage)}')
        resp = "complete_remission" if rnd() < 0.85 else "cri"
        ev(s1 - 1, "disease_assessment", f',"response":"{resp}","marrow_blasts_percent":' + F1[int(rnd() * 45)])
        mrd(s1 - 1, mrd_method, "bone_marrow", small_positive() if (blina or rnd() < 0.4) else None)
    if blina:
        per_m2 = not weight_ge_45
        key = "dose_ug_per_m2_day" if per_m2 else "dose_ug_per_day"
        lo, hi = ("5", "15") if per_m2 else ("9", "28")
        start = b1
        mrd_neg_p = 0.8
        for c in range(1, cycles + 1):
            ev(start, "blinatumomab_started", f',"cycle":{c},"{key}":{lo if c == 1 else hi}')
            if c == 1:
                ev(start + 7, "blinatumomab_dose_changed", f',"cycle":1,"{key}":{hi}')
                if rnd() < 0.12:
                    ev(start + 1 + int(rnd() * 2), "toxicity", f',"kind":"crs","grade":{1 if rnd() < 0.7 else 2}')
            ev(start + 28, "blinatumomab_stopped", f',"cycle":{c},"reason":"completed"')
            t = start + 24 + int(rnd() * 4)  # bone marrow at the end of the cycle
            mrd(t, mrd_method, "bone_marrow", None if rnd() < mrd_neg_p else small_positive() / 10)
            mrd_neg_p = 0.9
            start += 42
    # pre-transplant work-up
    work = d0 - 12 - int(rnd() * 12)
    if blina and work <= last_stop:
        work = last_stop + 1
    pre_resp = wpick((("complete_remission", 0.82), ("cri", 0.08), ("partial_response", 0.05), ("refractory", 0.03),
                      ("progression", 0.02)))
    if disease == "mds":
        pre_resp = wpick((("complete_remission", 0.4), ("partial_response", 0.35), ("refractory", 0.25)))
    body = f',"response":"{pre_resp}"'
    if rnd() < 0.7:
        blasts = rnd() * 4.5 if pre_resp in ("complete_remission", "cri") else 5 + rnd() * 30
        body += ',"marrow_blasts_percent":' + F1[int(blasts * 10)]
    ev(work, "disease_assessment", body)
    if disease not in ("cml", "other", "mds"):
        neg = rnd() < (0.85 if blina else 0.65) and pre_resp in ("complete_remission", "cri")
        mrd(work, mrd_method, "bone_marrow", None if neg else small_positive())

    # conditioning and prophylaxis
    if all_like and not (age > 50) and rnd() < 0.6 and age >= 4:
        cond = ("TBI/etoposide", "myeloablative", "12", "")
    elif all_like and age < 50:
        cond = (pick(("Flu/Treo/Thiotepa", "Bu/Flu/Thiotepa")), "myeloablative", None, "")
    elif age >= 55:
        cond = pick((("Flu/Mel", "reduced_intensity", None, ""), ("Flu/Bu2", "reduced_intensity", None, ""),
                     ("Flu/Cy/TBI", "non_myeloablative", "2", ""), ("FLAMSA-Bu", "reduced_intensity", None, "")))
    else:
        cond = pick((("Bu/Cy", "myeloablative", None, ""), ("Flu/Bu4", "myeloablative", None, ""),
                     ("Flu/Treo", "myeloablative", None, ""), ("Flu/Mel", "reduced_intensity", None, "")))
    if donor == "haploidentical" and cond[1] == "myeloablative" and cond[2] is None and rnd() < 0.4:
        cond = ("TBI/Flu/Thiotepa", "myeloablative", "8", "")
    if ptcy:
        sero = "none"
    elif donor in ("matched_unrelated", "mismatched_unrelated"):
        sero = "atg" if rnd() < 0.85 else "alemtuzumab"
    elif donor == "cord_blood":
        sero = "atg" if rnd() < 0.5 else "none"
    else:
        sero = "none" if rnd() < 0.75 else "atg"
    body = f',"regimen":{_j(cond[0])},"intensity":"{cond[1]}"'
    if cond[2] is not None:
        body += f',"tbi_gy":{cond[2]}'
    if rnd() < 0.9:
        body += f',"serotherapy":"{sero}"'
    ev(d0 - 6 - int(rnd() * 3) if cond[1] != "non_myeloablative" else d0 - 6, "conditioning_started", body)
    if ptcy:
        agents = ("ptcy", "tacrolimus", "mmf") if rnd() < 0.8 else ("ptcy", "cyclosporine", "mmf")
        proph_day = d0 + 3
    elif donor == "cord_blood":
        agents = ("cyclosporine", "mmf")
        proph_day = d0 - 1
    elif donor == "matched_sibling":
        agents = pick((("cyclosporine", "methotrexate"), ("cyclosporine", "methotrexate"), ("cyclosporine", "mmf"),
                       ("tacrolimus", "methotrexate")))
        proph_day = d0 - 1
    else:
        agents = ("cyclosporine", "methotrexate") if rnd() < 0.6 else ("tacrolimus", "methotrexate")
        proph_day = d0 - 1
    if sero == "atg" and rnd() < 0.7:
        agents = agents + ("atg",)
        proph_day = d0 - 3
    if rnd() < 0.03:
        agents = agents + ("abatacept",)
    ev(proph_day, "gvhd_prophylaxis_started", ',"agents":[' + ",".join('"' + a + '"' for a in agents) + "]")

    # ---- the transplant ------------------------------------------------------------------
    body = f',"donor":"{donor}","source":"{source}"'
    if rnd() < 0.9:
        body += f',"hla_match":"{hla}"'
    if rnd() < 0.95:
        body += f',"cd34_e6_per_kg":{cd34!r}'
    ev(d0, "stem_cell_infusion", body + ',"transplant_number":1')
    if second_hsct is not None:
        ev(d0 + second_hsct, "stem_cell_infusion",
           ',"donor":"haploidentical","source":"peripheral_blood","hla_match":"5/10","cd34_e6_per_kg":'
           + F2[500 + int(rnd() * 500)] + ',"transplant_number":2')
    if graft_failure and rnd() < 0.85:
        ev(d0 + 28 + int(rnd() * 8), "graft_failure", ',"kind":"primary"')

    # daily blood counts day 0..+60 (longer if the graft failed and was replaced)
    daily_to = 60 if second_hsct is None else max(60, e_day + 10)
    if daily_to > last_day:
        daily_to = last_day
    pfx_bc = '{"type":"blood_count' + pfx
    pfx_tx = '{"type":"transfusion' + pfx
    p_bc = prio["blood_count"]
    p_tx = prio["transfusion"]
    a = 0.2 + 2.5 * rnd()  # ANC on day 0
    nadir = 3 + int(rnd() * 4)
    a_decay = (0.05 / a) ** (1.0 / nadir) if a > 0.05 else 1.0
    a_plateau = 1.8 + 4.0 * rnd()
    a_growth = 0.25 + 0.5 * rnd()
    dip = rnd() < 0.1  # a short run >= 0.5 interrupted just before engraftment
    plt = 20 + 120 * rnd()
    p_nadir = 3 + 7 * rnd()
    p_plateau = 80 + 220 * rnd()
    p_growth = 4 + 12 * rnd()
    boost = 0.0
    hb = 8.0 + 3.0 * rnd()
    hb_floor = 7.0 + rnd()
    lymph = 0.05 + 0.2 * rnd()
    last_ptx = -100
    for k in range(daily_to + 1):
        day = d0 + k
        # neutrophils
        if never_neutropenic:
            anc = 0.6 + 1.2 * rnd() + (0.0 if k < 12 else min(a_plateau, 0.1 * (k - 12)))
        elif k < nadir:
            anc = a * a_decay ** k * (0.85 + 0.3 * rnd())
        elif k < e_day - 3:
            anc = 0.09 * rnd() ** 2
            if second_hsct is not None and k > second_hsct + 3:
                anc *= 0.3
        elif k < e_day:
            if dip and k < e_day - 1:
                anc = 0.5 + 0.25 * rnd()
            else:
                anc = 0.1 + 0.35 * rnd() * (k - e_day + 4) / 3
        else:
            anc = 0.5 + min(a_plateau, a_growth * (k - e_day + 1)) * (0.7 + 0.6 * rnd())
        # platelets (native count + decaying transfusion boost)
        if k < 4:
            native = plt * 0.72 ** k
        elif k < p_day - 7:
            native = p_nadir * (0.6 + 0.8 * rnd())
        elif k < p_day:
            native = 10 + 9.9 * rnd()
        else:
            native = min(p_plateau, 20 + p_growth * (k - p_day)) * (0.9 + 0.2 * rnd())
        pv = native + boost
        # haemoglobin
        if k < e_day + 7:
            hb -= 0.25 * rnd()
        elif hb < 12.5:
            hb += 0.08 * rnd()
        wbc = anc + lymph * (0.5 + rnd()) + (0.0 if k < e_day else 0.4)
        if k >= e_day and lymph < 1.2:
            lymph += 0.04
        app((day, p_bc, f'{pfx_bc}{D[day]}","anc_e9_per_l":{F2[int(anc * 100)]},"platelets_e9_per_l":{I[int(pv)]}'
                        f',"wbc_e9_per_l":{F2[int(wbc * 100)]},"hb_g_per_dl":{F1[int(hb * 10)]}}}\n'))
        boost *= 0.55
        if pv < 10.5 or (pv < 20 and rnd() < 0.25):
            if k <= p_day - 8 and k - last_ptx >= 1:
                app((day, p_tx, f'{pfx_tx}{D[day]}","product":"platelets"}}\n'))
                boost = 25 + 20 * rnd()
                last_ptx = k
        if hb < hb_floor:
            app((day, p_tx, f'{pfx_tx}{D[day]}","product":"red_cells"}}\n'))
            hb += 1.8 + 0.6 * rnd()

    # later counts: weekly to +100, monthly to +365, then at each follow-up contact
    def later_count(k: int) -> None:
        day = d0 + k
        if day > end:
            return
        if k >= e_day:
            anc = 0.5 + min(a_plateau, a_growth * (k - e_day + 1)) * (0.7 + 0.6 * rnd())
        else:
            anc = 0.05 + 0.3 * rnd()
        if relapse_day is not None and k >= relapse_day:
            anc *= 0.4
        if k >= p_day:
            pv = min(p_plateau, 20 + p_growth * (k - p_day)) * (0.85 + 0.3 * rnd())
        else:
            pv = 6 + 13 * rnd()
        h = 10 + 3.5 * rnd() if k > e_day + 30 else 8 + 2 * rnd()
        app((day, p_bc, f'{pfx_bc}{D[day]}","anc_e9_per_l":{F2[min(int(anc * 100), 9999)]}'
                        f',"platelets_e9_per_l":{I[int(pv)]},"wbc_e9_per_l":{F2[min(int((anc + 1.2) * 100), 9999)]}'
                        f',"hb_g_per_dl":{F1[int(h * 10)]}}}\n'))
        if pv < 10:
            app((day, p_tx, f'{pfx_tx}{D[day]}","product":"platelets"}}\n'))

    k = daily_to + 7
    while k <= 100:
        later_count(k)
        k += 7
    k = 120 + int(rnd() * 5)
    while k <= 365:
        later_count(k)
        k += 28 + int(rnd() * 6)

    # chimerism
    mixed = rnd() < 0.12
    comp_tcell = rnd() < 0.3
    for target in (30, 60, 100, 180, 365):
        k = target - 3 + int(rnd() * 7)
        if graft_failure and second_hsct is None:
            dp = rnd() * 4.9
        elif graft_failure and k < e_day:
            dp = rnd() * 4.9
        elif relapse_day is not None and relapse_day - 60 < k:
            dp = 40 + 50 * rnd()
        elif mixed and target <= 100:
            dp = 60 + 35 * rnd()
        else:
            dp = 95.1 + 4.9 * rnd()
        method = "str" if rnd() < 0.85 else "qpcr"
        ev(d0 + k, "chimerism_test",
           f',"donor_percent":{F1[int(dp * 10)]},"compartment":"whole_blood","method":"{method}"')
        if comp_tcell and target in (30, 100):
            tp = dp if dp < 95 else 85 + 15 * rnd()
            ev(d0 + k, "chimerism_test",
               f',"donor_percent":{F1[int(tp * 10)]},"compartment":"t_cell","method":"{method}"')
    if mixed and donor != "cord_blood" and rnd() < 0.4:
        ev(d0 + 110 + int(rnd() * 30), "donor_lymphocyte_infusion", ',"cd3_e6_per_kg":' + F2[10 + int(rnd() * 490)])

    # CMV weekly to +100 (plasma); EBV every 2 weeks
    cmv_react = rnd() < 0.36
    cmv_on = 18 + int(rnd() * 45)
    blips = rnd() < 0.15
    k = 4 + int(rnd() * 5)
    peak = exp(log(1500) + rnd() * (log(80000) - log(1500)))
    first_pos = None
    while k <= 100:
        if cmv_react and k >= cmv_on:
            t = k - cmv_on
            level = peak * exp(-0.25 * t) if first_pos is not None else max(peak, 1000.0)
            if first_pos is None:
                first_pos = k
            if level < 150:
                ev(d0 + k, "viral_load", ',"virus":"cmv","specimen":"plasma","below_detection":true')
            else:
                ev(d0 + k, "viral_load", f',"virus":"cmv","specimen":"plasma","iu_per_ml":{int(level)}')
        elif blips and rnd() < 0.25:
            ev(d0 + k, "viral_load", f',"virus":"cmv","specimen":"plasma","iu_per_ml":{int(50 + 800 * rnd())}')
        else:
            ev(d0 + k, "viral_load", ',"virus":"cmv","specimen":"plasma","below_detection":true')
        k += 7
    if first_pos is not None and rnd() < 0.75:
        ev(d0 + first_pos + int(rnd() * 3), "viral_reactivation",
           ',"virus":"cmv","treated":' + ("true" if rnd() < 0.85 else "false"))
    ebv_spec = "whole_blood" if rnd() < 0.5 else "plasma"
    ebv_react = rnd() < 0.12
    ebv_on = 30 + int(rnd() * 60)
    k = 10 + int(rnd() * 7)
    ebv_first = None
    while k <= 100:
        if ebv_react and k >= ebv_on:
            level = 2000 + 60000 * rnd() if ebv_first is None else 300 + 3000 * rnd()
            if ebv_first is None:
                ebv_first = k
            ev(d0 + k, "viral_load", f',"virus":"ebv","specimen":"{ebv_spec}","iu_per_ml":{int(level)}')
        else:
            ev(d0 + k, "viral_load", f',"virus":"ebv","specimen":"{ebv_spec}","below_detection":true')
        k += 14
    if ebv_first is not None and rnd() < 0.7:
        ev(d0 + ebv_first + 1, "viral_reactivation",
           ',"virus":"ebv","treated":' + ("true" if rnd() < 0.6 else "false"))
    if rnd() < 0.05:  # BK virus haemorrhagic cystitis
        kb = 20 + int(rnd() * 40)
        ev(d0 + kb, "viral_load", f',"virus":"bk","specimen":"urine","iu_per_ml":{int(1e6 + 1e8 * rnd())}')
        ev(d0 + kb, "infection", ',"category":"viral","organism":"BK virus","site":"urinary"')

    # infections, engraftment syndrome, toxicities
    infections = (1 + (rnd() < 0.25)) if rnd() < 0.15 else 0
    if death_cause == "infection" and dead:
        ev(end - int(rnd() * 6), "infection", ',"category":"' + pick(("bacterial", "fungal", "bacterial", "viral"))
           + '","site":"' + pick(("bloodstream", "respiratory")) + '"')
    used = set()
    for _ in range(infections):
        kind = wpick((("bacterial", 0.6), ("viral", 0.2), ("fungal", 0.18), ("parasitic", 0.02)))
        org, site = pick({
            "bacterial": (("Escherichia coli", "bloodstream"), ("Klebsiella pneumoniae", "bloodstream"),
                          ("Staphylococcus epidermidis", "bloodstream"), ("Pseudomonas aeruginosa", "bloodstream"),
                          ("Enterococcus faecium", "bloodstream"), ("Clostridioides difficile", "gastrointestinal"),
                          ("Escherichia coli", "urinary")),
            "viral": (("RSV", "respiratory"), ("influenza A", "respiratory"), ("parainfluenza 3", "respiratory"),
                      ("adenovirus", "gastrointestinal"), ("norovirus", "gastrointestinal")),
            "fungal": (("Aspergillus fumigatus", "respiratory"), ("Candida albicans", "bloodstream"),
                       ("Candida glabrata", "bloodstream")),
            "parasitic": (("Toxoplasma gondii", "cns"),),
        }[kind])
        k = 3 + int(rnd() * 25) if rnd() < 0.6 else 30 + int(rnd() * 300)
        if (k, kind) in used:
            continue
        used.add((k, kind))
        body = f',"category":"{kind}"'
        if rnd() < 0.9:
            body += f',"organism":{_j(org)}'
        if rnd() < 0.9:
            body += f',"site":"{site}"'
        ev(d0 + k, "infection", body)
    if e_day < 200 and not never_neutropenic and rnd() < 0.2:
        ev(d0 + max(7, e_day - 2 + int(rnd() * 5)), "engraftment_syndrome")
    if rnd() < 0.5:
        ev(d0 + 2 + int(rnd() * 7), "toxicity", f',"kind":"mucositis","grade":{1 + int(rnd() * 4)}')
    if vod:
        ev(d0 + 5 + int(rnd() * 10), "toxicity",
           f',"kind":"vod_sos","grade":{4 if vod_fatal else 2 + int(rnd() * 2)}')
    if ptcy and source == "peripheral_blood" and rnd() < 0.3:
        ev(d0 + 1 + int(rnd() * 3), "toxicity", f',"kind":"crs","grade":{1 + int(rnd() * 2)}')
    if rnd() < 0.03:
        ev(d0 + 30 + int(rnd() * 90), "toxicity", f',"kind":"tma","grade":{2 + int(rnd() * 2)}')
    if rnd() < 0.01:
        ev(d0 + 3 + int(rnd() * 20), "toxicity", f',"kind":"icans","grade":{1 + int(rnd() * 3)}')

    # acute GVHD
    if agvhd:
        def diag(day: int, grade: int) -> None:
            s, lv, lg, ug = _stages_for_grade(rnd, grade)
            form = rnd()
            body = ',"kind":"acute"'
            if form < 0.1:
                body += f',"grade":{grade}'
            else:
                if form > 0.85:
                    body += f',"grade":{grade}'
                body += f',"skin_stage":{s},"liver_stage":{lv},"lower_gi_stage":{lg},"upper_gi_stage":{ug}'
            ev(day, "gvhd_diagnosed", body)

        on = d0 + agvhd_on
        first_grade = agvhd_grade
        if agvhd_grade >= 2 and rnd() < 0.25:
            first_grade = agvhd_grade - 1
        diag(on, first_grade)
        top_on = on
        if first_grade != agvhd_grade:
            top_on = on + 4 + int(rnd() * 10)
            diag(top_on, agvhd_grade)
        if agvhd_grade >= 2:
            tx = (on if first_grade >= 2 else top_on) + int(rnd() * 2)
            dose = "2.0" if (agvhd_grade >= 3 or rnd() < 0.7) else "1.0"
            ev(tx, "gvhd_treatment_started",
               f',"kind":"acute","line":1,"agents":["methylprednisolone"],"steroid_mg_per_kg_day":{dose}')
            if sr:
                if rnd() < 0.5:
                    r_day, resp = tx + 3 + int(rnd() * 4), "progression"
                else:
                    r_day, resp = tx + 7 + int(rnd() * 7), "no_response"
                flag = ',"steroid_refractory":true' if rnd() < 0.8 else ""
                ev(r_day, "gvhd_response", f',"kind":"acute","response":"{resp}"{flag}')
                t2 = r_day + 1 + int(rnd() * 2)
                ev(t2, "gvhd_treatment_started", ',"kind":"acute","line":2,"agents":["ruxolitinib"]')
                r2 = wpick((("complete", 0.4), ("partial", 0.35), ("no_response", 0.25)))
                ev(t2 + 14 + int(rnd() * 14), "gvhd_response", f',"kind":"acute","response":"{r2}"')
                if r2 == "complete":
                    ev(t2 + 40 + int(rnd() * 40), "gvhd_resolved", ',"kind":"acute"')
            else:
                r = "complete" if rnd() < 0.65 else "partial"
                r_day = tx + 7 + int(rnd() * 21)
                ev(r_day, "gvhd_response", f',"kind":"acute","response":"{r}","steroid_refractory":false')
                ev(r_day + 10 + int(rnd() * 40), "gvhd_resolved", ',"kind":"acute"')
        elif rnd() < 0.6:
            ev(on + 10 + int(rnd() * 30), "gvhd_resolved", ',"kind":"acute"')

    # chronic GVHD
    if cgvhd and not (graft_failure and second_hsct is None):
        on = d0 + cgvhd_on
        ev(on, "gvhd_diagnosed", f',"kind":"chronic","severity":"{cgvhd_sev}"')
        if cgvhd_sev != "mild":
            ev(on + int(rnd() * 7), "gvhd_treatment_started",
               ',"kind":"chronic","line":1,"agents":["prednisone"' + (',"ruxolitinib"' if rnd() < 0.2 else "")
               + '],"steroid_mg_per_kg_day":1.0')
            r = wpick((("complete", 0.25), ("partial", 0.5), ("no_response", 0.2), ("progression", 0.05)))
            ev(on + 60 + int(rnd() * 60), "gvhd_response", f',"kind":"chronic","response":"{r}"')
            if r in ("no_response", "progression"):
                ev(on + 125 + int(rnd() * 30), "gvhd_treatment_started",
                   ',"kind":"chronic","line":2,"agents":["'
                   + pick(("ruxolitinib", "belumosudil", "extracorporeal photopheresis")) + '"]')
            elif rnd() < 0.5:
                ev(on + 200 + int(rnd() * 400), "gvhd_resolved", ',"kind":"chronic"')
        elif rnd() < 0.5:
            ev(on + 90 + int(rnd() * 200), "gvhd_resolved", ',"kind":"chronic"')

    # disease after the transplant: assessments, MRD, relapse and its treatment
    for target in (30, 100, 180, 365):
        k = target - 4 + int(rnd() * 9)
        if relapse_day is not None and k >= relapse_day:
            break
        if target in (30, 100):
            ev(d0 + k, "disease_assessment",
               ',"response":"complete_remission","marrow_blasts_percent":' + F1[int(rnd() * 30)])
        if disease not in ("cml", "other", "mds"):
            pos = relapse_day is not None and relapse_day - k < 100
            mrd(d0 + k, mrd_method, "bone_marrow", (0.05 + 3 * rnd()) if pos else None)
    in_remission_again = None
    if relapse_day is not None:
        r = d0 + relapse_day
        site = wpick((("bone_marrow", 0.75), ("combined", 0.12), ("cns", 0.08), ("other", 0.05)))
        body = f',"site":"{site}"'
        if site in ("bone_marrow", "combined") and rnd() < 0.9:
            body += ',"marrow_blasts_percent":' + F1[50 + int(rnd() * 900)]
        ev(r, "relapse", body)
        st = r + 3 + int(rnd() * 7)
        if disease == "b_all" and rnd() < 0.35:
            key = "dose_ug_per_day" if weight_ge_45 else "dose_ug_per_m2_day"
            lo, hi = ("9", "28") if weight_ge_45 else ("5", "15")
            ev(st, "blinatumomab_started", f',"cycle":1,"{key}":{lo}')
            ev(st + 7, "blinatumomab_dose_changed", f',"cycle":1,"{key}":{hi}')
            stop_reason = "completed" if rnd() < 0.6 else "progression"
            ev(st + (28 if stop_reason == "completed" else 10 + int(rnd() * 14)), "blinatumomab_stopped",
               f',"cycle":1,"reason":"{stop_reason}"')
            resp_at = st + 30
        else:
            reg = pick(("FLAG-Ida", "venetoclax/azacitidine", "clofarabine-based", "palliative"))
            ev(st, "chemotherapy_started", f',"regimen":{_j(reg)},"intent":"salvage"')
            ev(st + 28 + int(rnd() * 7), "chemotherapy_stopped", f',"regimen":{_j(reg)}')
            resp_at = st + 30
        if donor != "cord_blood" and rnd() < 0.25:
            ev(resp_at + 7, "donor_lymphocyte_infusion", ',"cd3_e6_per_kg":' + F2[10 + int(rnd() * 990)])
        good = rnd() < 0.35
        response = "complete_remission" if good else pick(("refractory", "progression"))
        ev(resp_at + 3, "disease_assessment", f',"response":"{response}"')
        if good:
            in_remission_again = resp_at + 3

    # follow-up contacts (and a blood count at each contact after day +365)
    k = 28 + int(rnd() * 6)
    dead_on = end if dead else None
    while True:
        day = d0 + k
        if day > end or (dead_on is not None and day >= dead_on):
            break
        relapsed = relapse_day is not None and day >= d0 + relapse_day
        if relapsed and not (in_remission_again and day >= in_remission_again):
            status = "relapse"
        else:
            status = "remission" if rnd() < 0.95 else "not_assessed"
        ev(day, "follow_up", f',"disease_status":"{status}"')
        if k > 365:
            later_count(k)
        k += (28 + int(rnd() * 6)) if k < 330 else (91 + int(rnd() * 92))
    if not dead and end - d0 > 28:
        last_fu = max((o for o, p, _ in out if p == prio["follow_up"]), default=-1)
        if last_fu < end - 30:
            status = "relapse" if relapse_day is not None and not in_remission_again else "remission"
            ev(end, "follow_up", f',"disease_status":"{status}"')
    if dead:
        ev(end, "death", f',"cause":"{death_cause}"')

    out.sort()
    # an exact duplicate would be the same event twice (same content-derived id): keep one
    return list(dict.fromkeys([line for _, _, line in out]))


# ---------------------------------------------------------------------------------------------
# Public entry points


def generate_patient(rng: random.Random, index: int) -> list[dict]:
    """The events of one synthetic patient, in chronological order, as public-format dicts."""
    loads = json.loads
    return [loads(line) for line in patient_lines(rng, index)]


def iter_cohort(n_patients: int, seed: int = 0) -> Iterator[dict]:
    """Yield the events of ``n_patients`` synthetic patients (patients one after the other)."""
    loads = json.loads
    for i in range(n_patients):
        for line in patient_lines(patient_rng(seed, i), i):
            yield loads(line)


def write_cohort_jsonl(
    path: str | os.PathLike[str],
    n_patients: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the cohort as JSON Lines to ``path``; return the number of events written.

    ``progress(patients_done, events_done)`` is called every 1,000 patients and at the end.
    """
    n_events = 0
    # one write of one joined string per patient: cheaper than keeping big batches alive
    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        write = f.write
        join = "".join
        for i in range(n_patients):
            lines = patient_lines(patient_rng(seed, i), i)
            n_events += len(lines)
            write(join(lines))
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, n_events)
    if progress is not None and n_patients % 1000 != 0:
        progress(n_patients, n_events)
    return n_events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m timeline.testing.cohort",
        description="Write a seeded synthetic HSCT cohort as JSON Lines (public event format).",
    )
    parser.add_argument("--patients", type=int, default=1000, help="number of patients (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output file (.jsonl)")
    parser.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    args = parser.parse_args(argv)
    if args.patients < 0:
        parser.error("--patients must be >= 0")
    t0 = time.perf_counter()
    show = not args.quiet and sys.stderr.isatty()

    def progress(done: int, events: int) -> None:
        rate = events / max(time.perf_counter() - t0, 1e-9)
        sys.stderr.write(f"\r{done:,}/{args.patients:,} patients  {events:,} events  {rate:,.0f} events/s")
        sys.stderr.flush()

    n = write_cohort_jsonl(args.out, args.patients, seed=args.seed, progress=progress if show else None)
    dt = time.perf_counter() - t0
    if show:
        sys.stderr.write("\n")
    if not args.quiet:
        sys.stderr.write(
            f"wrote {n:,} events for {args.patients:,} patients to {args.out} in {dt:.2f} s "
            f"({n / max(dt, 1e-9):,.0f} events/s)\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
