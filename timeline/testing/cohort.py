"""Seeded, deterministic synthetic cohort of allogeneic stem-cell transplant courses.

Every event is a public-format event dict (``docs/events.md``): ``type``, ``patient_id``
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
_P_BLOOD_COUNT = _PRIO["blood_count"]


def _candidate_stages(rnd: Callable[[], float], grade: int) -> tuple[int, int, int, int]:
    """Random MAGIC (skin, liver, lower GI, upper GI) stages typical of grade 2 or 3 (the grade may differ)."""
    if grade == 2:
        return ((0, 1, 2, 3, 3)[int(rnd() * 5)], 1 if rnd() < 0.15 else 0, 1 if rnd() < 0.5 else 0,
                1 if rnd() < 0.35 else 0)
    return (int(rnd() * 4), (0, 0, 0, 1, 2, 3)[int(rnd() * 6)], (0, 1, 2, 2, 3, 3)[int(rnd() * 6)],
            1 if rnd() < 0.5 else 0)


def _stages_for_grade(rnd: Callable[[], float], grade: int) -> tuple[int, int, int, int]:
    """MAGIC (skin, liver, lower GI, upper GI) stages whose derived grade is ``grade``."""
    if grade == 1:
        return (1 if rnd() < 0.55 else 2), 0, 0, 0
    if grade in (2, 3):
        while True:  # draw until the stages make the grade
            skin, liver, lgi, ugi = _candidate_stages(rnd, grade)
            if magic_overall_grade(skin, liver, ugi, lgi) == grade:
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
# Clinical tables used by the draws below. A table's order is part of the cohort's definition
# (a draw picks an entry by position), so reordering one changes the generated patients.

_DISEASES = (("b_all", 0.56), ("aml", 0.2), ("t_all", 0.08), ("mds", 0.07), ("mpal", 0.03), ("cml", 0.02),
             ("other", 0.04))
_PEDIATRIC_SHARE = {"b_all": 0.7, "t_all": 0.5, "mpal": 0.5, "aml": 0.3, "mds": 0.15, "cml": 0.1, "other": 0.3}
_SEXES = (("male", 0.55), ("female", 0.435), ("unknown", 0.01), ("other", 0.005))
#: share of bone-marrow (vs peripheral blood) grafts, and HLA match, per non-cord donor
_BONE_MARROW_SHARE = {"matched_sibling": 0.45, "matched_unrelated": 0.25, "mismatched_unrelated": 0.2,
                      "haploidentical": 0.4}
_HLA = {"matched_sibling": "10/10", "matched_unrelated": "10/10", "mismatched_unrelated": "9/10"}
_HAPLO_HLA = ("5/10", "5/10", "6/10", "7/10")
_CORD_HLA = ("4/6", "5/6", "5/6", "6/6")
_AGVHD_RISK = {"matched_sibling": 0.3, "matched_unrelated": 0.38, "mismatched_unrelated": 0.45,
               "haploidentical": 0.33}
_RELAPSE_RISK = {"b_all": 0.22, "t_all": 0.25, "mpal": 0.25, "aml": 0.28, "mds": 0.2, "cml": 0.15, "other": 0.2}
#: (induction, consolidation, maintenance) per disease; adults with B-ALL get _ADULT_B_ALL_FIRST_LINE
_FIRST_LINE = {
    "b_all": ("AIEOP-BFM ALL induction", "AIEOP-BFM ALL consolidation", "6-MP/MTX maintenance"),
    "t_all": ("BFM induction with nelarabine", "BFM consolidation", "6-MP/MTX maintenance"),
    "mpal": ("ALL-type induction", "ALL-type consolidation", "6-MP/MTX maintenance"),
    "aml": ("7+3 daunorubicin/cytarabine", "high-dose cytarabine", "azacitidine maintenance"),
    "mds": ("azacitidine", "azacitidine", "azacitidine"),
    "cml": ("imatinib", "dasatinib", "dasatinib"),
    "other": ("CHOP-like induction", "consolidation", "maintenance"),
}
_ADULT_B_ALL_FIRST_LINE = ("GMALL induction", "GMALL consolidation", "POMP maintenance")
_SALVAGE = {
    "b_all": ("IntReALL SR", "ALL-REZ BFM 2002", "UKALL R3", "FLAG-Ida"),
    "t_all": ("nelarabine/cyclophosphamide/etoposide", "FLAG-Ida"),
    "mpal": ("FLAG-Ida",),
    "aml": ("FLAG-Ida", "CLAG-M", "venetoclax/azacitidine"),
}
_GENETICS = {
    "b_all": (("ETV6-RUNX1",), ("high hyperdiploidy",), ("BCR-ABL1",), ("KMT2A-AFF1",), ("TCF3-PBX1",),
              ("IKZF1 deletion",), ()),
    "aml": (("FLT3-ITD", "NPM1"), ("RUNX1-RUNX1T1",), ("complex karyotype",), ("KMT2A-MLLT3",), ()),
    "cml": (("BCR-ABL1",),),
}
#: (regimen, intensity, TBI dose in Gy or None)
_OLDER_CONDITIONING = (("Flu/Mel", "reduced_intensity", None), ("Flu/Bu2", "reduced_intensity", None),
                       ("Flu/Cy/TBI", "non_myeloablative", "2"), ("FLAMSA-Bu", "reduced_intensity", None))
_ADULT_CONDITIONING = (("Bu/Cy", "myeloablative", None), ("Flu/Bu4", "myeloablative", None),
                       ("Flu/Treo", "myeloablative", None), ("Flu/Mel", "reduced_intensity", None))
_ORGANISMS = {
    "bacterial": (("Escherichia coli", "bloodstream"), ("Klebsiella pneumoniae", "bloodstream"),
                  ("Staphylococcus epidermidis", "bloodstream"), ("Pseudomonas aeruginosa", "bloodstream"),
                  ("Enterococcus faecium", "bloodstream"), ("Clostridioides difficile", "gastrointestinal"),
                  ("Escherichia coli", "urinary")),
    "viral": (("RSV", "respiratory"), ("influenza A", "respiratory"), ("parainfluenza 3", "respiratory"),
              ("adenovirus", "gastrointestinal"), ("norovirus", "gastrointestinal")),
    "fungal": (("Aspergillus fumigatus", "respiratory"), ("Candida albicans", "bloodstream"),
               ("Candida glabrata", "bloodstream")),
    "parasitic": (("Toxoplasma gondii", "cns"),),
}
_MRD_DISEASES = ("b_all", "t_all", "mpal", "aml")  # diseases followed by MRD tests after the transplant


# ---------------------------------------------------------------------------------------------
# The course of one patient, rendered as JSON lines.
#
# patient_lines() makes a _Course and runs the phases below on it, in order. The _draw_* phases
# only decide the patient's fate (disease, graft, engraftment, complications, relapse, death, end
# of follow-up) and store it on the course; the later phases render the events from it. Each phase
# takes its random numbers in a fixed order, so the order of the phases is part of the cohort's
# definition: swapping two phases changes every patient.


class _Course:
    """One patient's course being generated: the random source, the events so far, shared helpers.

    Day numbers are absolute (``ordinal - _BASE``) for ``d0``, ``birth``, ``end``, ``dx`` and the
    pre-transplant milestones, and relative to day 0 (the infusion) for the post-transplant ones
    (``e_day``, ``p_day``, ``second_hsct``, ``*_on``, ``relapse_day``, ``death_day``, ``last_day``).
    :meth:`ev` drops events dated after ``end``.
    """

    # who (_draw_patient, _draw_graft, _draw_disease_status)
    d0: int  # day 0: the infusion
    disease: str
    all_like: bool  # ALL or MPAL: MRD by PCR possible, TBI-based conditioning
    age: float
    birth: int
    adult: bool
    weight_ge_45: bool  # flat (not per m2) blinatumomab dosing
    sex: str
    donor: str
    source: str
    hla: str
    cd34: float
    relapse_pre: bool  # transplanted after a relapse (CR2+)
    blina: bool  # blinatumomab bridging to the transplant
    # engraftment (_draw_engraftment)
    ptcy: bool  # post-transplant cyclophosphamide
    e_day: int  # neutrophil engraftment (10_000: never)
    p_day: int  # platelet engraftment (10_000: never)
    graft_failure: bool
    never_neutropenic: bool
    second_hsct: int | None  # day of a second infusion after graft failure
    # complications and outcome (_draw_gvhd, _draw_relapse, _draw_*_death, _draw_end_of_follow_up)
    agvhd: bool
    agvhd_grade: int
    agvhd_on: int
    sr: bool  # steroid-refractory acute GVHD
    cgvhd: bool
    cgvhd_on: int
    cgvhd_sev: str
    relapse_day: int | None
    vod: bool
    vod_fatal: bool
    death_day: int | None
    death_cause: str | None
    dead: bool  # died before the end of follow-up
    end: int  # last day anything may be dated (death or censoring)
    last_day: int  # end - d0
    # before the transplant (_plan_pretransplant_course)
    mrd_method: str
    regimens: tuple[str, str, str]
    salvage: str
    cycles: int  # blinatumomab cycles
    last_stop: int  # end of the last therapy before the transplant
    b1: int | None  # start of blinatumomab cycle 1
    therapy_end: int  # end of the chemotherapy (first line or salvage)
    relapse_at: int | None  # pre-transplant relapse
    salvage_start: int | None
    dx: int  # diagnosis (and registration)
    # blood count kinetics (_draw_count_kinetics)
    daily_to: int
    anc0: float
    nadir: int
    a_decay: float
    a_plateau: float
    a_growth: float
    dip: bool  # a short ANC run >= 0.5 just before engraftment
    plt0: float
    p_nadir: float
    p_plateau: float
    p_growth: float
    hb0: float
    hb_floor: float  # red-cell transfusion threshold
    lymph0: float

    def __init__(self, rng: random.Random, index: int) -> None:
        self.rnd = rng.random
        self.gauss = rng.gauss
        self.pfx = '","patient_id":"' + patient_id(index) + '","occurred_on":"'
        self.pfx_bc = '{"type":"blood_count' + self.pfx
        self.out: list[tuple[int, int, str]] = []  # (day, same-day priority, JSON line)
        self.end = _LIMIT

    def pick(self, seq):
        """An element of ``seq``, uniformly."""
        return seq[int(self.rnd() * len(seq))]

    def wpick(self, pairs):
        """A value of ``(value, probability)`` pairs, by probability."""
        x = self.rnd()
        for value, p in pairs:
            x -= p
            if x < 0:
                return value
        return pairs[-1][0]

    def small_positive(self) -> float:
        """A low positive MRD level (%), log-uniform in [0.001, 2)."""
        return exp(log(0.001) + self.rnd() * (log(2.0) - log(0.001)))

    def ev(self, day: int, typ: str, body: str = "") -> None:
        """Add a ``typ`` event on (absolute) ``day``; ``body`` is its further JSON fields, each after a comma."""
        if day <= self.end:
            self.out.append((day, _PRIO[typ], f'{{"type":"{typ}{self.pfx}{_D[day]}"{body}}}\n'))

    def mrd(self, day: int, method: str, specimen: str, positive: float | None) -> None:
        """An MRD test: ``positive`` percent, or below detection if None."""
        if positive is None:
            sens = "0.001" if (method != "flow" and self.rnd() < 0.5) else "0.01"
            self.ev(day, "mrd_test", f',"method":"{method}","specimen":"{specimen}","below_detection":true'
                                     f',"sensitivity_percent":{sens}')
        else:
            self.ev(day, "mrd_test",
                    f',"method":"{method}","specimen":"{specimen}","result_percent":{round(positive, 3)!r}')

    def chemo(self, start: int, stop: int | None, regimen: str, intent: str) -> None:
        """A chemotherapy block from ``start`` to ``stop`` (None: not stopped)."""
        text = _j(regimen)
        self.ev(start, "chemotherapy_started", f',"regimen":{text},"intent":"{intent}"')
        if stop is not None:
            self.ev(stop, "chemotherapy_stopped", f',"regimen":{text}')

    def relapse(self, day: int, sites: tuple[tuple[str, float], ...], blasts_p: float | None) -> None:
        """A relapse at a site drawn from ``sites``; marrow blasts given with probability ``blasts_p`` (None: 1)."""
        site = self.wpick(sites)
        body = f',"site":"{site}"'
        if site in ("bone_marrow", "combined") and (blasts_p is None or self.rnd() < blasts_p):
            body += ',"marrow_blasts_percent":' + _F1[50 + int(self.rnd() * 900)]
        self.ev(day, "relapse", body)

    def dli(self, day: int, span: int) -> None:
        """A donor lymphocyte infusion of 0.10 to (span + 9) / 100 x 10^6 CD3+ cells/kg."""
        self.ev(day, "donor_lymphocyte_infusion", ',"cd3_e6_per_kg":' + _F2[10 + int(self.rnd() * span)])

    def blood_count(self, day: int, anc: float, platelets: float, wbc: float, hb: float) -> None:
        """A blood count (the most frequent event: rendered here rather than through :meth:`ev`).

        The kinetics keep every value well inside the tables (ANC and WBC < 11, Hb < 14).
        """
        if day <= self.end:
            self.out.append((day, _P_BLOOD_COUNT,
                             f'{self.pfx_bc}{_D[day]}","anc_e9_per_l":{_F2[int(anc * 100)]}'
                             f',"platelets_e9_per_l":{_I[int(platelets)]},"wbc_e9_per_l":{_F2[int(wbc * 100)]}'
                             f',"hb_g_per_dl":{_F1[int(hb * 10)]}}}\n'))

    def transfusion(self, day: int, product: str) -> None:
        """A transfusion of ``product`` (platelets or red_cells)."""
        self.ev(day, "transfusion", f',"product":"{product}"')

    def viral_load(self, day: int, virus: str, specimen: str, iu_per_ml: int | None) -> None:
        """A viral load: ``iu_per_ml``, or below detection if None."""
        level = ',"below_detection":true' if iu_per_ml is None else f',"iu_per_ml":{iu_per_ml}'
        self.ev(day, "viral_load", f',"virus":"{virus}","specimen":"{specimen}"{level}')

    def reactivation(self, day: int, virus: str, treated_p: float) -> None:
        """A reported reactivation of ``virus``, treated with probability ``treated_p``."""
        self.ev(day, "viral_reactivation",
                f',"virus":"{virus}","treated":' + ("true" if self.rnd() < treated_p else "false"))

    def engrafted_anc(self, k: int) -> float:
        """Neutrophils on day ``k`` after engraftment: growing to a plateau, with noise."""
        return 0.5 + min(self.a_plateau, self.a_growth * (k - self.e_day + 1)) * (0.7 + 0.6 * self.rnd())

    def lines(self) -> list[str]:
        """The events in chronological (then clinical) order.

        An exact duplicate would be the same event twice (same content-derived id): it is kept once.
        """
        out = self.out
        out.sort()
        return list(dict.fromkeys([line for _, _, line in out]))


def patient_lines(rng: random.Random, index: int) -> list[str]:
    """The events of one synthetic patient as JSON text lines (each ending with a newline)."""
    c = _Course(rng, index)
    # the patient's fate
    _draw_patient(c)
    _draw_graft(c)
    _draw_disease_status(c)
    _draw_engraftment(c)
    _draw_gvhd(c)
    _draw_relapse(c)
    _draw_non_relapse_death(c)
    _draw_relapse_death(c)
    _draw_end_of_follow_up(c)
    # before the transplant
    _plan_pretransplant_course(c)
    _registration_and_diagnosis(c)
    _first_line_therapy(c)
    _relapse_and_salvage(c)
    _blinatumomab_bridging(c)
    _pretransplant_workup(c)
    # the transplant
    _gvhd_prophylaxis(c, _conditioning(c))
    _stem_cell_infusion(c)
    # after the transplant
    _draw_count_kinetics(c)
    _daily_blood_counts(c)
    _weekly_and_monthly_counts(c)
    _chimerism(c)
    _cmv(c)
    _ebv(c)
    _bk_cystitis(c)
    _infections(c)
    _engraftment_syndrome_and_toxicities(c)
    _acute_gvhd(c)
    _chronic_gvhd(c)
    _post_transplant_disease_checks(c)
    back_in_remission = _post_transplant_relapse(c)
    _follow_up_contacts(c, back_in_remission)
    _last_contact_and_death(c, back_in_remission)
    return c.lines()


# ---- the patient's fate ------------------------------------------------------------------


def _draw_patient(c: _Course) -> None:
    """Day 0, disease (mostly B-ALL), age (children for most ALL), birth date and sex."""
    rnd = c.rnd
    c.d0 = _H0 + int(rnd() * (_H1 - _H0 + 1))
    c.disease = disease = c.wpick(_DISEASES)
    c.all_like = disease in ("b_all", "t_all", "mpal")
    if rnd() < _PEDIATRIC_SHARE[disease]:
        age = 1.0 + 16.9 * rnd() ** 1.2
    elif disease == "mds":
        age = 35 + 40 * rnd()
    else:
        age = 18 + 52 * rnd()
    c.age = age
    c.birth = c.d0 - int(age * 365.25) - int(rnd() * 30)
    c.adult = age >= 18
    c.weight_ge_45 = age >= 14 or (age >= 12 and rnd() < 0.5)
    c.sex = c.wpick(_SEXES)


def _draw_graft(c: _Course) -> None:
    """Donor type, stem-cell source, HLA match and CD34 dose (cord blood more often for children)."""
    rnd = c.rnd
    c.donor = donor = c.wpick((("matched_sibling", 0.24), ("matched_unrelated", 0.3), ("haploidentical", 0.29),
                               ("mismatched_unrelated", 0.09), ("cord_blood", 0.08 if c.adult else 0.12)))
    if donor == "cord_blood":
        c.source = "cord_blood"
        c.hla = c.pick(_CORD_HLA)
        cd34 = 0.1 + 0.5 * rnd()
    else:
        c.source = "bone_marrow" if rnd() < _BONE_MARROW_SHARE[donor] else "peripheral_blood"
        c.hla = c.pick(_HAPLO_HLA) if donor == "haploidentical" else _HLA[donor]
        cd34 = (4.0 + 5.0 * rnd()) if c.source == "peripheral_blood" else (1.5 + 4.5 * rnd())
    c.cd34 = round(cd34, 2)


def _draw_disease_status(c: _Course) -> None:
    """Whether the patient is transplanted after a relapse, and (B-ALL) bridged with blinatumomab."""
    rnd = c.rnd
    c.relapse_pre = False
    c.blina = False
    if c.disease == "b_all":
        c.relapse_pre = rnd() < 0.6
        c.blina = rnd() < (0.7 if c.relapse_pre else 0.3)
    elif c.disease in ("t_all", "mpal", "aml"):
        c.relapse_pre = rnd() < 0.35


def _draw_engraftment(c: _Course) -> None:
    """Neutrophil and platelet engraftment days (by graft source), graft failure and second transplant."""
    rnd, gauss, donor, source = c.rnd, c.gauss, c.donor, c.source
    c.ptcy = donor == "haploidentical" or (donor in ("matched_unrelated", "mismatched_unrelated") and rnd() < 0.25)
    if source == "peripheral_blood":
        e_day = 14 + gauss(0, 2.5)
    elif source == "bone_marrow":
        e_day = 19 + gauss(0, 3.5)
    else:
        e_day = 25 + gauss(0, 5)
    if c.ptcy:
        e_day += 2
    e_day = int(min(max(e_day, 9), 40))
    p_day = int(e_day + gauss(9.0 if source == "cord_blood" else 3.0, 6))
    if p_day < 9:
        p_day = 9
    if rnd() < (0.12 if source == "cord_blood" else 0.03):
        p_day = 61 + int(rnd() * 60)  # platelets not engrafted within the daily window
    c.graft_failure = rnd() < {"cord_blood": 0.09, "haploidentical": 0.04}.get(donor, 0.02)
    c.never_neutropenic = not c.graft_failure and rnd() < 0.012
    c.second_hsct = None
    if c.graft_failure:
        if rnd() < 0.55:
            c.second_hsct = 31 + int(rnd() * 20)
            e_day = c.second_hsct + 11 + int(rnd() * 6)
            p_day = e_day + int(rnd() * 10)
        else:
            e_day = p_day = 10_000
    c.e_day = e_day
    c.p_day = p_day


def _draw_gvhd(c: _Course) -> None:
    """Acute GVHD (grade, onset, steroid refractoriness) and chronic GVHD (onset, severity)."""
    rnd, gauss = c.rnd, c.gauss
    c.agvhd = c.e_day < 200 and rnd() < _AGVHD_RISK.get(c.donor, 0.35)
    c.agvhd_grade = 0
    c.agvhd_on = 0
    c.sr = False
    if c.agvhd:
        grade = c.agvhd_grade = c.wpick(((1, 0.4), (2, 0.35), (3, 0.17), (4, 0.08)))
        on = max(c.e_day + 1 + int(rnd() * 4), int(14 + exp(log(18) + 0.6 * gauss(0, 1))))
        c.agvhd_on = min(on, 150)
        c.sr = grade >= 2 and rnd() < (0.25 if grade == 2 else 0.5)
    c.cgvhd = rnd() < (0.35 if c.agvhd else 0.13)
    c.cgvhd_on = 100 + int(rnd() * 440)
    c.cgvhd_sev = c.wpick((("mild", 0.35), ("moderate", 0.45), ("severe", 0.2)))


def _draw_relapse(c: _Course) -> None:
    """Whether and when the disease comes back after the transplant (more likely if transplanted in CR2+)."""
    relapse_p = _RELAPSE_RISK[c.disease]
    if c.relapse_pre:
        relapse_p *= 1.35
    c.relapse_day = None
    if c.rnd() < relapse_p:
        c.relapse_day = min(int(40 + exp(log(200) + 0.8 * c.gauss(0, 1))), 2500)


def _draw_non_relapse_death(c: _Course) -> None:
    """VOD/SOS, and death without relapse: unreplaced graft failure, fatal VOD, GVHD or other causes."""
    rnd = c.rnd
    nrm_p = 0.045
    if c.agvhd_grade >= 3:
        nrm_p += 0.25
    if c.sr:
        nrm_p += 0.1
    severe_cgvhd = c.cgvhd and c.cgvhd_sev == "severe"
    if severe_cgvhd:
        nrm_p += 0.1
    c.vod = rnd() < 0.06
    c.vod_fatal = c.vod and rnd() < 0.15
    c.death_day = c.death_cause = None
    if c.graft_failure and c.second_hsct is None:
        c.death_day, c.death_cause = 25 + int(rnd() * 50), "infection"
    elif c.vod_fatal:
        c.death_day, c.death_cause = 14 + int(rnd() * 25), "toxicity"
    elif rnd() < nrm_p:
        if c.agvhd_grade >= 3 or (c.sr and rnd() < 0.7):
            c.death_day, c.death_cause = c.agvhd_on + 20 + int(rnd() * 200), "gvhd"
        elif severe_cgvhd and rnd() < 0.6:
            c.death_day, c.death_cause = c.cgvhd_on + 60 + int(rnd() * 500), "gvhd"
        else:
            c.death_cause = c.wpick((("infection", 0.5), ("transplant_related", 0.2), ("other", 0.15),
                                     ("unknown", 0.1), ("toxicity", 0.05)))
            c.death_day = min(max(int(exp(log(90) + 1.0 * c.gauss(0, 1))), 5), 1500)


def _draw_relapse_death(c: _Course) -> None:
    """Reconcile relapse and death: no relapse after death; most relapsed patients die of the relapse."""
    rnd, relapse_day = c.rnd, c.relapse_day
    if c.death_day is not None and relapse_day is not None and relapse_day > c.death_day:
        c.relapse_day = relapse_day = None  # died in remission
    if relapse_day is not None and (c.death_day is None or c.death_day >= relapse_day):
        # deaths after relapse are relapse deaths (the rare same-day case included)
        if rnd() < 0.7:
            if rnd() < 0.02:
                c.death_day = relapse_day
            else:
                c.death_day = max(relapse_day + int(exp(log(150) + 0.9 * c.gauss(0, 1))), relapse_day + 7)
            c.death_cause = "relapse" if rnd() < 0.95 else "infection"
        elif c.death_day is not None:
            c.death_cause = "relapse"


def _draw_end_of_follow_up(c: _Course) -> None:
    """Censoring (data lock in 2026-10 or loss to follow-up), hence whether the death is seen, and ``end``."""
    rnd, d0 = c.rnd, c.d0
    censor = _LIMIT - int(rnd() * 31)
    if rnd() < 0.45:
        censor = min(censor, d0 + 180 + int(rnd() * 2000))
    c.dead = c.death_day is not None and d0 + c.death_day <= censor
    c.end = d0 + c.death_day if c.dead else censor
    if c.relapse_day is not None and d0 + c.relapse_day > c.end:
        c.relapse_day = None
    c.last_day = c.end - d0


# ---- before the transplant -----------------------------------------------------------------


def _plan_pretransplant_course(c: _Course) -> None:
    """Regimens and the milestones before day 0, counted back from it: bridging, relapse, diagnosis."""
    rnd, blina = c.rnd, c.blina
    c.mrd_method = "pcr" if (c.all_like and rnd() < 0.35) else "flow"
    c.regimens = _ADULT_B_ALL_FIRST_LINE if c.disease == "b_all" and c.adult else _FIRST_LINE[c.disease]
    c.salvage = c.pick(_SALVAGE.get(c.disease, ("salvage chemotherapy",)))
    if blina:  # blinatumomab stop -> HSCT, median ~32 days
        gap = min(max(int(exp(log(32) + 0.3 * c.gauss(0, 1))), 14), 75)
    else:
        gap = 20 + int(rnd() * 25)
    c.cycles = (1 if rnd() < 0.5 else 2) if blina else 0
    c.last_stop = c.d0 - gap
    c.b1 = None
    if blina:  # the bridging starts 1 or 2 cycles (28 days, 2 weeks apart) before the last stop
        c.b1 = c.last_stop - 28 - (42 if c.cycles == 2 else 0)
        c.therapy_end = c.b1 - 7 - int(rnd() * 21)
    else:
        c.therapy_end = c.last_stop
    c.relapse_at = c.salvage_start = None
    if c.relapse_pre:
        c.relapse_at = c.therapy_end - 42 - int(rnd() * 14)
        c.salvage_start = c.relapse_at + 3 + int(rnd() * 5)
        c.dx = c.relapse_at - int(180 + rnd() * 1100)
    else:
        c.dx = c.therapy_end - int(130 + rnd() * 120)
    if c.dx < c.birth + 90:  # very young patient: compress the first-line phase
        c.dx = c.birth + 90 + int(rnd() * 30)
        if c.relapse_at is not None and c.relapse_at - c.dx < 120:
            c.relapse_at = None


def _registration_and_diagnosis(c: _Course) -> None:
    """Registration (birth date, sex) and the diagnosis with its risk group and genetics, on the same day."""
    disease = c.disease
    c.ev(c.dx, "patient_registered", f',"birth_date":"{_D[c.birth]}","sex":"{c.sex}"')
    genetics = c.pick(_GENETICS.get(disease, ((),)))
    risk = c.pick(("standard", "high", "very high")) if disease != "other" else None
    body = f',"disease":"{disease}"'
    if risk and c.rnd() < 0.8:
        body += f',"risk_group":"{risk}"'
    if genetics:
        body += ',"genetics":[' + ",".join(_j(x) for x in genetics) + "]"
    c.ev(c.dx, "diagnosis", body)


def _first_line_therapy(c: _Course) -> None:
    """Induction up to the relapse or the end of therapy; if it completes, remission and MRD, then the rest."""
    rnd = c.rnd
    first_end = c.relapse_at if c.relapse_at is not None else c.therapy_end
    ind0 = c.dx + 1 + int(rnd() * 4)
    ind1 = ind0 + 30 + int(rnd() * 8)
    completed = ind1 < first_end - 5
    stop = ind1 if completed else (first_end - 1 if first_end - 1 > ind0 else None)
    c.chemo(ind0, stop, c.regimens[0], "induction")
    if completed:
        c.ev(ind1 - 2, "disease_assessment", ',"response":"complete_remission","marrow_blasts_percent":'
             + _F1[int(rnd() * 40)])
        if c.disease != "cml":
            c.mrd(ind1 - 2, c.mrd_method, "bone_marrow", c.small_positive() if rnd() < 0.5 else None)
        _consolidation_and_maintenance(c, ind1, first_end)


def _consolidation_and_maintenance(c: _Course, induction_end: int, first_end: int) -> None:
    """Consolidation after induction; maintenance too when a relapse comes long enough after it."""
    rnd, relapse_at = c.rnd, c.relapse_at
    con0 = induction_end + 5 + int(rnd() * 10)
    con1 = min(con0 + 60 + int(rnd() * 80), first_end - 3)
    if con1 <= con0:
        return
    c.chemo(con0, con1, c.regimens[1], "consolidation")
    if relapse_at is not None and relapse_at - con1 > 40:
        m0 = con1 + 7 + int(rnd() * 14)
        m1 = min(m0 + 400 + int(rnd() * 300), relapse_at - 1)
        if m1 > m0:
            c.chemo(m0, m1, c.regimens[2], "maintenance")


def _relapse_and_salvage(c: _Course) -> None:
    """A relapse before the transplant, salvage chemotherapy and the second remission with its MRD."""
    if c.relapse_at is None:
        return
    rnd, male = c.rnd, c.sex == "male"
    c.relapse(c.relapse_at, (("bone_marrow", 0.72), ("cns", 0.1), ("combined", 0.14),
                             ("testicular", 0.04 if male else 0.0), ("other", 0.04 if not male else 0.0)), None)
    s1 = c.salvage_start + 28 + int(rnd() * 8)
    c.chemo(c.salvage_start, s1, c.salvage, "salvage")
    resp = "complete_remission" if rnd() < 0.85 else "cri"
    c.ev(s1 - 1, "disease_assessment", f',"response":"{resp}","marrow_blasts_percent":' + _F1[int(rnd() * 45)])
    c.mrd(s1 - 1, c.mrd_method, "bone_marrow", c.small_positive() if (c.blina or rnd() < 0.4) else None)


def _blina_dose(c: _Course) -> tuple[str, str, str]:
    """Blinatumomab dose field and (step 1, step 2) doses: 5 -> 15 ug/m2/day, or 9 -> 28 ug/day at >= 45 kg."""
    if c.weight_ge_45:
        return "dose_ug_per_day", "9", "28"
    return "dose_ug_per_m2_day", "5", "15"


def _blinatumomab_bridging(c: _Course) -> None:
    """Blinatumomab cycles to the transplant (cycle 1 stepped up on day 8, sometimes CRS), MRD after each."""
    if not c.blina:
        return
    rnd = c.rnd
    key, lo, hi = _blina_dose(c)
    start = c.b1
    mrd_neg_p = 0.8
    for cycle in range(1, c.cycles + 1):
        c.ev(start, "blinatumomab_started", f',"cycle":{cycle},"{key}":{lo if cycle == 1 else hi}')
        if cycle == 1:
            c.ev(start + 7, "blinatumomab_dose_changed", f',"cycle":1,"{key}":{hi}')
            if rnd() < 0.12:
                c.ev(start + 1 + int(rnd() * 2), "toxicity", f',"kind":"crs","grade":{1 if rnd() < 0.7 else 2}')
        c.ev(start + 28, "blinatumomab_stopped", f',"cycle":{cycle},"reason":"completed"')
        t = start + 24 + int(rnd() * 4)  # bone marrow at the end of the cycle
        c.mrd(t, c.mrd_method, "bone_marrow", None if rnd() < mrd_neg_p else c.small_positive() / 10)
        mrd_neg_p = 0.9
        start += 42


def _pretransplant_workup(c: _Course) -> None:
    """The disease assessment (and MRD) of the work-up, 12-23 days before day 0 (after any bridging)."""
    rnd = c.rnd
    work = c.d0 - 12 - int(rnd() * 12)
    if c.blina and work <= c.last_stop:
        work = c.last_stop + 1
    pre_resp = c.wpick((("complete_remission", 0.82), ("cri", 0.08), ("partial_response", 0.05),
                        ("refractory", 0.03), ("progression", 0.02)))
    if c.disease == "mds":
        pre_resp = c.wpick((("complete_remission", 0.4), ("partial_response", 0.35), ("refractory", 0.25)))
    in_cr = pre_resp in ("complete_remission", "cri")
    body = f',"response":"{pre_resp}"'
    if rnd() < 0.7:
        blasts = rnd() * 4.5 if in_cr else 5 + rnd() * 30
        body += ',"marrow_blasts_percent":' + _F1[int(blasts * 10)]
    c.ev(work, "disease_assessment", body)
    if c.disease in _MRD_DISEASES:
        neg = rnd() < (0.85 if c.blina else 0.65) and in_cr
        c.mrd(work, c.mrd_method, "bone_marrow", None if neg else c.small_positive())


# ---- the transplant ----------------------------------------------------------------------


def _conditioning(c: _Course) -> str:
    """The conditioning regimen (by disease, age and donor) from about day -7; returns the serotherapy."""
    rnd, age, all_like, donor = c.rnd, c.age, c.all_like, c.donor
    if all_like and not (age > 50) and rnd() < 0.6 and age >= 4:
        regimen, intensity, tbi = "TBI/etoposide", "myeloablative", "12"
    elif all_like and age < 50:
        regimen, intensity, tbi = c.pick(("Flu/Treo/Thiotepa", "Bu/Flu/Thiotepa")), "myeloablative", None
    else:
        regimen, intensity, tbi = c.pick(_OLDER_CONDITIONING if age >= 55 else _ADULT_CONDITIONING)
    if donor == "haploidentical" and intensity == "myeloablative" and tbi is None and rnd() < 0.4:
        regimen, intensity, tbi = "TBI/Flu/Thiotepa", "myeloablative", "8"
    if c.ptcy:
        sero = "none"
    elif donor in ("matched_unrelated", "mismatched_unrelated"):
        sero = "atg" if rnd() < 0.85 else "alemtuzumab"
    elif donor == "cord_blood":
        sero = "atg" if rnd() < 0.5 else "none"
    else:
        sero = "none" if rnd() < 0.75 else "atg"
    body = f',"regimen":{_j(regimen)},"intensity":"{intensity}"'
    if tbi is not None:
        body += f',"tbi_gy":{tbi}'
    if rnd() < 0.9:
        body += f',"serotherapy":"{sero}"'
    c.ev(c.d0 - 6 - int(rnd() * 3) if intensity != "non_myeloablative" else c.d0 - 6, "conditioning_started", body)
    return sero


def _gvhd_prophylaxis(c: _Course, serotherapy: str) -> None:
    """GVHD prophylaxis: PTCY-based from day +3, else a calcineurin inhibitor from day -1 (ATG: day -3)."""
    rnd, d0, donor = c.rnd, c.d0, c.donor
    proph_day = d0 - 1
    if c.ptcy:
        agents = ("ptcy", "tacrolimus", "mmf") if rnd() < 0.8 else ("ptcy", "cyclosporine", "mmf")
        proph_day = d0 + 3
    elif donor == "cord_blood":
        agents = ("cyclosporine", "mmf")
    elif donor == "matched_sibling":
        agents = c.pick((("cyclosporine", "methotrexate"), ("cyclosporine", "methotrexate"),
                         ("cyclosporine", "mmf"), ("tacrolimus", "methotrexate")))
    else:
        agents = ("cyclosporine", "methotrexate") if rnd() < 0.6 else ("tacrolimus", "methotrexate")
    if serotherapy == "atg" and rnd() < 0.7:
        agents = agents + ("atg",)
        proph_day = d0 - 3
    if rnd() < 0.03:
        agents = agents + ("abatacept",)
    c.ev(proph_day, "gvhd_prophylaxis_started", ',"agents":[' + ",".join('"' + a + '"' for a in agents) + "]")


def _stem_cell_infusion(c: _Course) -> None:
    """The infusion on day 0, a haploidentical second one after graft failure, and the graft failure."""
    rnd, d0 = c.rnd, c.d0
    body = f',"donor":"{c.donor}","graft_source":"{c.source}"'
    if rnd() < 0.9:
        body += f',"hla_match":"{c.hla}"'
    if rnd() < 0.95:
        body += f',"cd34_e6_per_kg":{c.cd34!r}'
    c.ev(d0, "stem_cell_infusion", body + ',"transplant_number":1')
    if c.second_hsct is not None:
        c.ev(d0 + c.second_hsct, "stem_cell_infusion",
             ',"donor":"haploidentical","graft_source":"peripheral_blood","hla_match":"5/10","cd34_e6_per_kg":'
             + _F2[500 + int(rnd() * 500)] + ',"transplant_number":2')
    if c.graft_failure and rnd() < 0.85:
        c.ev(d0 + 28 + int(rnd() * 8), "graft_failure", ',"kind":"primary"')


# ---- blood counts and transfusions ---------------------------------------------------------


def _draw_count_kinetics(c: _Course) -> None:
    """The shape of the aplasia and recovery: day-0 levels, nadirs, plateaus and growth rates."""
    rnd = c.rnd
    daily_to = 60 if c.second_hsct is None else max(60, c.e_day + 10)
    c.daily_to = min(daily_to, c.last_day)
    c.anc0 = a = 0.2 + 2.5 * rnd()
    c.nadir = nadir = 3 + int(rnd() * 4)
    c.a_decay = (0.05 / a) ** (1.0 / nadir) if a > 0.05 else 1.0
    c.a_plateau = 1.8 + 4.0 * rnd()
    c.a_growth = 0.25 + 0.5 * rnd()
    c.dip = rnd() < 0.1
    c.plt0 = 20 + 120 * rnd()
    c.p_nadir = 3 + 7 * rnd()
    c.p_plateau = 80 + 220 * rnd()
    c.p_growth = 4 + 12 * rnd()
    c.hb0 = 8.0 + 3.0 * rnd()
    c.hb_floor = 7.0 + rnd()
    c.lymph0 = 0.05 + 0.2 * rnd()


def _daily_anc(c: _Course, k: int) -> float:
    """Neutrophils on day ``k``: decay to the nadir, aplasia, the rise to engraftment, recovery."""
    rnd, e_day = c.rnd, c.e_day
    if c.never_neutropenic:
        return 0.6 + 1.2 * rnd() + (0.0 if k < 12 else min(c.a_plateau, 0.1 * (k - 12)))
    if k < c.nadir:
        return c.anc0 * c.a_decay ** k * (0.85 + 0.3 * rnd())
    if k < e_day - 3:
        anc = 0.09 * rnd() ** 2
        if c.second_hsct is not None and k > c.second_hsct + 3:
            anc *= 0.3
        return anc
    if k < e_day:
        if c.dip and k < e_day - 1:
            return 0.5 + 0.25 * rnd()
        return 0.1 + 0.35 * rnd() * (k - e_day + 4) / 3
    return c.engrafted_anc(k)


def _daily_native_platelets(c: _Course, k: int) -> float:
    """The patient's own platelets on day ``k`` (without transfused ones): fall, nadir, rise, plateau."""
    rnd, p_day = c.rnd, c.p_day
    if k < 4:
        return c.plt0 * 0.72 ** k
    if k < p_day - 7:
        return c.p_nadir * (0.6 + 0.8 * rnd())
    if k < p_day:
        return 10 + 9.9 * rnd()
    return min(c.p_plateau, 20 + c.p_growth * (k - p_day)) * (0.9 + 0.2 * rnd())


def _daily_blood_counts(c: _Course) -> None:
    """Daily counts from day 0 to +60 (longer after a second graft), with platelet and red-cell transfusions.

    Transfused platelets add a boost that decays day by day; haemoglobin drifts down until engraftment
    and a red-cell transfusion lifts it whenever it falls under the patient's threshold.
    """
    rnd, d0, e_day, p_day, hb_floor = c.rnd, c.d0, c.e_day, c.p_day, c.hb_floor
    blood_count, transfusion = c.blood_count, c.transfusion
    boost = 0.0
    hb = c.hb0
    lymph = c.lymph0
    last_ptx = -100
    for k in range(c.daily_to + 1):
        day = d0 + k
        anc = _daily_anc(c, k)
        pv = _daily_native_platelets(c, k) + boost
        if k < e_day + 7:
            hb -= 0.25 * rnd()
        elif hb < 12.5:
            hb += 0.08 * rnd()
        wbc = anc + lymph * (0.5 + rnd()) + (0.0 if k < e_day else 0.4)
        if k >= e_day and lymph < 1.2:
            lymph += 0.04
        blood_count(day, anc, pv, wbc, hb)
        boost *= 0.55
        if pv < 10.5 or (pv < 20 and rnd() < 0.25):
            if k <= p_day - 8 and k - last_ptx >= 1:
                transfusion(day, "platelets")
                boost = 25 + 20 * rnd()
                last_ptx = k
        if hb < hb_floor:
            transfusion(day, "red_cells")
            hb += 1.8 + 0.6 * rnd()


def _contact_blood_count(c: _Course, k: int) -> None:
    """A blood count on day ``k`` after the daily window (and a platelet transfusion if very low)."""
    day = c.d0 + k
    if day > c.end:
        return
    rnd, e_day, p_day = c.rnd, c.e_day, c.p_day
    if k >= e_day:
        anc = c.engrafted_anc(k)
    else:
        anc = 0.05 + 0.3 * rnd()
    if c.relapse_day is not None and k >= c.relapse_day:
        anc *= 0.4
    if k >= p_day:
        pv = min(c.p_plateau, 20 + c.p_growth * (k - p_day)) * (0.85 + 0.3 * rnd())
    else:
        pv = 6 + 13 * rnd()
    hb = 10 + 3.5 * rnd() if k > e_day + 30 else 8 + 2 * rnd()
    c.blood_count(day, anc, pv, anc + 1.2, hb)
    if pv < 10:
        c.transfusion(day, "platelets")


def _weekly_and_monthly_counts(c: _Course) -> None:
    """Weekly counts to day +100, then about monthly to +365 (later ones come with the follow-up contacts)."""
    k = c.daily_to + 7
    while k <= 100:
        _contact_blood_count(c, k)
        k += 7
    k = 120 + int(c.rnd() * 5)
    while k <= 365:
        _contact_blood_count(c, k)
        k += 28 + int(c.rnd() * 6)


# ---- chimerism, viruses, infections, toxicities --------------------------------------------


def _donor_percent(c: _Course, k: int, target: int, mixed: bool) -> float:
    """Whole-blood donor chimerism on day ``k``: lost graft, falling before a relapse, mixed or complete."""
    rnd = c.rnd
    if c.graft_failure and (c.second_hsct is None or k < c.e_day):
        return rnd() * 4.9
    if c.relapse_day is not None and c.relapse_day - 60 < k:
        return 40 + 50 * rnd()
    if mixed and target <= 100:
        return 60 + 35 * rnd()
    return 95.1 + 4.9 * rnd()


def _chimerism(c: _Course) -> None:
    """Chimerism around days +30, +60, +100, +180, +365 (T cells at +30/+100 for some); DLI if mixed."""
    rnd, d0 = c.rnd, c.d0
    mixed = rnd() < 0.12
    comp_tcell = rnd() < 0.3
    for target in (30, 60, 100, 180, 365):
        k = target - 3 + int(rnd() * 7)
        dp = _donor_percent(c, k, target, mixed)
        method = "str" if rnd() < 0.85 else "qpcr"
        c.ev(d0 + k, "chimerism_test",
             f',"donor_percent":{_F1[int(dp * 10)]},"compartment":"whole_blood","method":"{method}"')
        if comp_tcell and target in (30, 100):
            tp = dp if dp < 95 else 85 + 15 * rnd()
            c.ev(d0 + k, "chimerism_test",
                 f',"donor_percent":{_F1[int(tp * 10)]},"compartment":"t_cell","method":"{method}"')
    if mixed and c.donor != "cord_blood" and rnd() < 0.4:
        c.dli(d0 + 110 + int(rnd() * 30), 490)


def _viral_series(c: _Course, virus: str, specimen: str, k: int, step: int, react_on: int | None,
                  positive: Callable[[int, int | None], int | None], negative: Callable[[], int | None]) -> int | None:
    """Loads of ``virus`` every ``step`` days from day ``k`` to +100.

    From day ``react_on`` on (None: no reactivation) the load is ``positive(k, first reactivated day or None)``,
    before it ``negative()`` (None: below detection). Returns the first reactivated day, if any.
    """
    first = None
    while k <= 100:
        if react_on is not None and k >= react_on:
            iu_per_ml = positive(k, first)
            if first is None:
                first = k
        else:
            iu_per_ml = negative()
        c.viral_load(c.d0 + k, virus, specimen, iu_per_ml)
        k += step
    return first


def _cmv(c: _Course) -> None:
    """Weekly plasma CMV loads to day +100: a reactivation peaks then decays (or low blips); mostly reported."""
    rnd = c.rnd
    react = rnd() < 0.36
    react_on = 18 + int(rnd() * 45)
    blips = rnd() < 0.15
    k = 4 + int(rnd() * 5)
    peak = exp(log(1500) + rnd() * (log(80000) - log(1500)))

    def positive(k: int, first: int | None) -> int | None:  # the peak, then a decay (e^-0.25 a day)
        level = peak * exp(-0.25 * (k - react_on)) if first is not None else max(peak, 1000.0)
        return None if level < 150 else int(level)

    def negative() -> int | None:
        return int(50 + 800 * rnd()) if blips and rnd() < 0.25 else None

    first = _viral_series(c, "cmv", "plasma", k, 7, react_on if react else None, positive, negative)
    if first is not None and rnd() < 0.75:
        c.reactivation(c.d0 + first + int(rnd() * 3), "cmv", 0.85)


def _ebv(c: _Course) -> None:
    """EBV loads every 2 weeks to day +100 (whole blood or plasma); a reactivation is often reported."""
    rnd = c.rnd
    specimen = "whole_blood" if rnd() < 0.5 else "plasma"
    react = rnd() < 0.12
    react_on = 30 + int(rnd() * 60)
    k = 10 + int(rnd() * 7)

    def positive(k: int, first: int | None) -> int:  # high at first, then lower
        return int(2000 + 60000 * rnd() if first is None else 300 + 3000 * rnd())

    first = _viral_series(c, "ebv", specimen, k, 14, react_on if react else None, positive, lambda: None)
    if first is not None and rnd() < 0.7:
        c.reactivation(c.d0 + first + 1, "ebv", 0.6)


def _bk_cystitis(c: _Course) -> None:
    """A BK virus haemorrhagic cystitis for a few: a high urine load and a urinary infection."""
    rnd = c.rnd
    if rnd() < 0.05:
        day = c.d0 + 20 + int(rnd() * 40)
        c.viral_load(day, "bk", "urine", int(1e6 + 1e8 * rnd()))
        c.ev(day, "infection", ',"category":"viral","organism":"BK virus","site":"urinary"')


def _infections(c: _Course) -> None:
    """Documented infections: the fatal one of an infection death, and 0-2 others (early or late)."""
    rnd, d0 = c.rnd, c.d0
    infections = (1 + (rnd() < 0.25)) if rnd() < 0.15 else 0
    if c.death_cause == "infection" and c.dead:
        c.ev(c.end - int(rnd() * 6), "infection",
             ',"category":"' + c.pick(("bacterial", "fungal", "bacterial", "viral"))
             + '","site":"' + c.pick(("bloodstream", "respiratory")) + '"')
    used = set()
    for _ in range(infections):
        kind = c.wpick((("bacterial", 0.6), ("viral", 0.2), ("fungal", 0.18), ("parasitic", 0.02)))
        organism, site = c.pick(_ORGANISMS[kind])
        k = 3 + int(rnd() * 25) if rnd() < 0.6 else 30 + int(rnd() * 300)
        if (k, kind) in used:
            continue
        used.add((k, kind))
        body = f',"category":"{kind}"'
        if rnd() < 0.9:
            body += f',"organism":{_j(organism)}'
        if rnd() < 0.9:
            body += f',"site":"{site}"'
        c.ev(d0 + k, "infection", body)


def _engraftment_syndrome_and_toxicities(c: _Course) -> None:
    """Engraftment syndrome around engraftment; mucositis, VOD/SOS, CRS (PTCY with PBSC), TMA, ICANS."""
    rnd, d0 = c.rnd, c.d0
    if c.e_day < 200 and not c.never_neutropenic and rnd() < 0.2:
        c.ev(d0 + max(7, c.e_day - 2 + int(rnd() * 5)), "engraftment_syndrome")
    if rnd() < 0.5:
        c.ev(d0 + 2 + int(rnd() * 7), "toxicity", f',"kind":"mucositis","grade":{1 + int(rnd() * 4)}')
    if c.vod:
        c.ev(d0 + 5 + int(rnd() * 10), "toxicity",
             f',"kind":"vod_sos","grade":{4 if c.vod_fatal else 2 + int(rnd() * 2)}')
    if c.ptcy and c.source == "peripheral_blood" and rnd() < 0.3:
        c.ev(d0 + 1 + int(rnd() * 3), "toxicity", f',"kind":"crs","grade":{1 + int(rnd() * 2)}')
    if rnd() < 0.03:
        c.ev(d0 + 30 + int(rnd() * 90), "toxicity", f',"kind":"tma","grade":{2 + int(rnd() * 2)}')
    if rnd() < 0.01:
        c.ev(d0 + 3 + int(rnd() * 20), "toxicity", f',"kind":"icans","grade":{1 + int(rnd() * 3)}')


# ---- GVHD ----------------------------------------------------------------------------------


def _acute_gvhd_diagnosis(c: _Course, day: int, grade: int) -> None:
    """An acute GVHD diagnosis with MAGIC organ stages matching ``grade`` (sometimes the grade only, or both)."""
    s, lv, lg, ug = _stages_for_grade(c.rnd, grade)
    form = c.rnd()
    body = ',"kind":"acute"'
    if form < 0.1:
        body += f',"grade":{grade}'
    else:
        if form > 0.85:
            body += f',"grade":{grade}'
        body += f',"skin_stage":{s},"liver_stage":{lv},"lower_gi_stage":{lg},"upper_gi_stage":{ug}'
    c.ev(day, "gvhd_diagnosed", body)


def _acute_gvhd(c: _Course) -> None:
    """Acute GVHD: diagnosed (some first one grade lower, then worsening); grade >= 2 treated, grade 1 may resolve."""
    if not c.agvhd:
        return
    rnd, grade = c.rnd, c.agvhd_grade
    on = c.d0 + c.agvhd_on
    first_grade = grade
    if grade >= 2 and rnd() < 0.25:
        first_grade = grade - 1
    _acute_gvhd_diagnosis(c, on, first_grade)
    top_on = on
    if first_grade != grade:
        top_on = on + 4 + int(rnd() * 10)
        _acute_gvhd_diagnosis(c, top_on, grade)
    if grade >= 2:
        _acute_gvhd_treatment(c, (on if first_grade >= 2 else top_on) + int(rnd() * 2))
    elif rnd() < 0.6:
        c.ev(on + 10 + int(rnd() * 30), "gvhd_resolved", ',"kind":"acute"')


def _acute_gvhd_treatment(c: _Course, start: int) -> None:
    """First-line steroids from ``start``: a response and resolution, or steroid refractoriness."""
    rnd = c.rnd
    dose = "2.0" if (c.agvhd_grade >= 3 or rnd() < 0.7) else "1.0"
    c.ev(start, "gvhd_treatment_started",
         f',"kind":"acute","line":1,"agents":["methylprednisolone"],"steroid_mg_per_kg_day":{dose}')
    if c.sr:
        _steroid_refractory_acute_gvhd(c, start)
        return
    response = "complete" if rnd() < 0.65 else "partial"
    r_day = start + 7 + int(rnd() * 21)
    c.ev(r_day, "gvhd_response", f',"kind":"acute","response":"{response}","steroid_refractory":false')
    c.ev(r_day + 10 + int(rnd() * 40), "gvhd_resolved", ',"kind":"acute"')


def _steroid_refractory_acute_gvhd(c: _Course, start: int) -> None:
    """Progression or no response on steroids, second-line ruxolitinib and its response."""
    rnd = c.rnd
    if rnd() < 0.5:
        r_day, response = start + 3 + int(rnd() * 4), "progression"
    else:
        r_day, response = start + 7 + int(rnd() * 7), "no_response"
    flag = ',"steroid_refractory":true' if rnd() < 0.8 else ""
    c.ev(r_day, "gvhd_response", f',"kind":"acute","response":"{response}"{flag}')
    t2 = r_day + 1 + int(rnd() * 2)
    c.ev(t2, "gvhd_treatment_started", ',"kind":"acute","line":2,"agents":["ruxolitinib"]')
    r2 = c.wpick((("complete", 0.4), ("partial", 0.35), ("no_response", 0.25)))
    c.ev(t2 + 14 + int(rnd() * 14), "gvhd_response", f',"kind":"acute","response":"{r2}"')
    if r2 == "complete":
        c.ev(t2 + 40 + int(rnd() * 40), "gvhd_resolved", ',"kind":"acute"')


def _chronic_gvhd(c: _Course) -> None:
    """Chronic GVHD (not after an unreplaced graft): moderate/severe treated with prednisone, then line 2."""
    if not c.cgvhd or (c.graft_failure and c.second_hsct is None):
        return
    rnd = c.rnd
    on = c.d0 + c.cgvhd_on
    c.ev(on, "gvhd_diagnosed", f',"kind":"chronic","severity":"{c.cgvhd_sev}"')
    if c.cgvhd_sev == "mild":
        if rnd() < 0.5:
            c.ev(on + 90 + int(rnd() * 200), "gvhd_resolved", ',"kind":"chronic"')
        return
    c.ev(on + int(rnd() * 7), "gvhd_treatment_started",
         ',"kind":"chronic","line":1,"agents":["prednisone"' + (',"ruxolitinib"' if rnd() < 0.2 else "")
         + '],"steroid_mg_per_kg_day":1.0')
    response = c.wpick((("complete", 0.25), ("partial", 0.5), ("no_response", 0.2), ("progression", 0.05)))
    c.ev(on + 60 + int(rnd() * 60), "gvhd_response", f',"kind":"chronic","response":"{response}"')
    if response in ("no_response", "progression"):
        c.ev(on + 125 + int(rnd() * 30), "gvhd_treatment_started", ',"kind":"chronic","line":2,"agents":["'
             + c.pick(("ruxolitinib", "belumosudil", "extracorporeal photopheresis")) + '"]')
    elif rnd() < 0.5:
        c.ev(on + 200 + int(rnd() * 400), "gvhd_resolved", ',"kind":"chronic"')


# ---- the disease after the transplant, follow-up and death ---------------------------------


def _post_transplant_disease_checks(c: _Course) -> None:
    """Marrow checks around days +30, +100, +180, +365 until a relapse: remission, and MRD rising before it."""
    rnd, d0, relapse_day = c.rnd, c.d0, c.relapse_day
    for target in (30, 100, 180, 365):
        k = target - 4 + int(rnd() * 9)
        if relapse_day is not None and k >= relapse_day:
            break
        if target in (30, 100):
            c.ev(d0 + k, "disease_assessment",
                 ',"response":"complete_remission","marrow_blasts_percent":' + _F1[int(rnd() * 30)])
        if c.disease in _MRD_DISEASES:
            pos = relapse_day is not None and relapse_day - k < 100
            c.mrd(d0 + k, c.mrd_method, "bone_marrow", (0.05 + 3 * rnd()) if pos else None)


def _post_transplant_relapse(c: _Course) -> int | None:
    """The relapse, its treatment, perhaps a DLI, and the response; returns the day of a new remission."""
    if c.relapse_day is None:
        return None
    rnd = c.rnd
    day = c.d0 + c.relapse_day
    c.relapse(day, (("bone_marrow", 0.75), ("combined", 0.12), ("cns", 0.08), ("other", 0.05)), 0.9)
    start = day + 3 + int(rnd() * 7)
    _relapse_treatment(c, start)
    resp_at = start + 30
    if c.donor != "cord_blood" and rnd() < 0.25:
        c.dli(resp_at + 7, 990)
    good = rnd() < 0.35
    response = "complete_remission" if good else c.pick(("refractory", "progression"))
    c.ev(resp_at + 3, "disease_assessment", f',"response":"{response}"')
    return resp_at + 3 if good else None


def _relapse_treatment(c: _Course, start: int) -> None:
    """One blinatumomab cycle for some B-ALL relapses (maybe stopped for progression), else salvage chemotherapy."""
    rnd = c.rnd
    if c.disease == "b_all" and rnd() < 0.35:
        key, lo, hi = _blina_dose(c)
        c.ev(start, "blinatumomab_started", f',"cycle":1,"{key}":{lo}')
        c.ev(start + 7, "blinatumomab_dose_changed", f',"cycle":1,"{key}":{hi}')
        reason = "completed" if rnd() < 0.6 else "progression"
        c.ev(start + (28 if reason == "completed" else 10 + int(rnd() * 14)), "blinatumomab_stopped",
             f',"cycle":1,"reason":"{reason}"')
    else:
        regimen = c.pick(("FLAG-Ida", "venetoclax/azacitidine", "clofarabine-based", "palliative"))
        c.chemo(start, start + 28 + int(rnd() * 7), regimen, "salvage")


def _follow_up_contacts(c: _Course, back_in_remission: int | None) -> None:
    """Contacts about monthly to day +330, then every 3-6 months (with a blood count after +365) until the end."""
    rnd, d0, end = c.rnd, c.d0, c.end
    relapsed_on = d0 + c.relapse_day if c.relapse_day is not None else None
    k = 28 + int(rnd() * 6)
    while True:
        day = d0 + k
        if day > end or (c.dead and day >= end):
            break
        if relapsed_on is not None and day >= relapsed_on and not (back_in_remission and day >= back_in_remission):
            status = "relapse"
        else:
            status = "remission" if rnd() < 0.95 else "not_assessed"
        c.ev(day, "follow_up", f',"disease_status":"{status}"')
        if k > 365:
            _contact_blood_count(c, k)
        k += (28 + int(rnd() * 6)) if k < 330 else (91 + int(rnd() * 92))


def _last_contact_and_death(c: _Course, back_in_remission: int | None) -> None:
    """If alive, a closing follow-up on the last day when the last contact is over a month old; if dead, the death."""
    end = c.end
    if not c.dead and end - c.d0 > 28:
        follow_up = _PRIO["follow_up"]
        last_fu = max((day for day, p, _ in c.out if p == follow_up), default=-1)
        if last_fu < end - 30:
            status = "relapse" if c.relapse_day is not None and not back_in_remission else "remission"
            c.ev(end, "follow_up", f',"disease_status":"{status}"')
    if c.dead:
        c.ev(end, "death", f',"cause":"{c.death_cause}"')


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
    first: int = 0,
) -> int:
    """Write the cohort as JSON Lines to ``path``; return the number of events written.

    ``first``: the index of the first patient written (patients ``first`` .. ``first + n_patients - 1``), so that
    a cohort written in parts of consecutive patients is, concatenated, the same cohort written at once.
    ``progress(patients_done, events_done)`` is called every 1,000 patients and at the end.
    """
    n_events = 0
    # one write of one joined string per patient: cheaper than keeping big batches alive
    with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        write = f.write
        join = "".join
        for k in range(n_patients):
            i = first + k
            lines = patient_lines(patient_rng(seed, i), i)
            n_events += len(lines)
            write(join(lines))
            if progress is not None and (k + 1) % 1000 == 0:
                progress(k + 1, n_events)
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
