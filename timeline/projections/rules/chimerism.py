"""Chimerism: each `chimerism_test` categorised by its percentage of donor cells.

Default (ASTCT 2021, harmonised 2024): `full_donor` above 95 % donor, `low_donor` below 5 %, `mixed` in
between (5–95 inclusive). Variants are parameters: the CIBMTR criteria for paediatric ALL use ≥ 95 %
(`full_donor_chimerism_threshold_inclusive=true`), the CIBMTR WAS form ≥ 80 %
(`full_donor_chimerism_above_percent=80` with inclusive). Per patient, the first full-donor day and whether
it was sustained are in `patients` (rule there).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import DAY, EVENT_ID, PATIENT_ID, Column, Model
from ..parameters import check_bool, check_number, parameter
from ..references import cite


@dataclass(frozen=True)
class Parameters:
    full_donor_chimerism_above_percent: float = parameter(
        95.0, "A test is full donor when donor % is above this (strictly, unless "
        "full_donor_chimerism_threshold_inclusive).", "% donor cells",
        cite("KHARFAN-DABAJA-2021", "SUREDA-2024") + "; variants CIBMTR ALL ≥ 95, WAS ≥ 80 " + cite("CIBMTR-FIM"))
    full_donor_chimerism_threshold_inclusive: bool = parameter(
        False, "If true, donor % equal to full_donor_chimerism_above_percent is also full donor (≥).", "",
        cite("CIBMTR-FIM") + " (ALL response criteria: ≥ 95 %)")
    low_donor_chimerism_below_percent: float = parameter(
        5.0, "A test is low donor (the graft-loss range) when donor % is below this; otherwise mixed.",
        "% donor cells", cite("SUREDA-2024", "CIBMTR-FIM") + " (WAS form: < 5 % host only)")

    chimerism_fraction_at_most_percent: float = parameter(
        1.0, "A donor % at or below this after a test above chimerism_fraction_after_percent is queried: a "
        "fraction (0.97 for 97 %)?", "% donor cells", "a data-quality threshold of this engine (not a clinical definition)")
    chimerism_fraction_after_percent: float = parameter(
        50.0, "The earlier test above which a donor % at or below chimerism_fraction_at_most_percent is queried.",
        "% donor cells", "a data-quality threshold of this engine (not a clinical definition)")

    def __post_init__(self) -> None:
        check_number("chimerism_fraction_at_most_percent", self.chimerism_fraction_at_most_percent, 0, 100)
        check_number("chimerism_fraction_after_percent", self.chimerism_fraction_after_percent, 0, 100)
        check_number("full_donor_chimerism_above_percent", self.full_donor_chimerism_above_percent, 0, 100)
        check_number("low_donor_chimerism_below_percent", self.low_donor_chimerism_below_percent, 0, 100)
        check_bool("full_donor_chimerism_threshold_inclusive", self.full_donor_chimerism_threshold_inclusive)
        if self.low_donor_chimerism_below_percent > self.full_donor_chimerism_above_percent:
            raise ValueError("low_donor_chimerism_below_percent must not exceed full_donor_chimerism_above_percent")


CATEGORIES = ("full_donor", "mixed", "low_donor")

CHIMERISM = Model(
    name="chimerism",
    grain="chimerism test",
    key=("event_id",),
    columns=(
        PATIENT_ID,
        Column("occurred_on", "DATE", "sample date", not_null=True),
        DAY,
        Column("compartment", "VARCHAR", "whole_blood, bone_marrow, t_cell, myeloid or b_cell", not_null=True),
        Column("donor_percent", "DOUBLE", "% donor cells", not_null=True),
        Column("category", "VARCHAR", "full_donor, mixed or low_donor (parameters above)", not_null=True,
               values=CATEGORIES),
        Column("method", "VARCHAR", "str, qpcr, ngs or fish (when given)"),
        EVENT_ID,
    ),
    sql="""
SELECT patient_id, occurred_on, day,
       payload->>'compartment' AS compartment,
       donor_percent,
       CASE WHEN donor_percent > $full_donor_chimerism_above_percent
                 OR ($full_donor_chimerism_threshold_inclusive AND donor_percent = $full_donor_chimerism_above_percent)
                THEN 'full_donor'
            WHEN donor_percent < $low_donor_chimerism_below_percent THEN 'low_donor'
            WHEN donor_percent IS NOT NULL THEN 'mixed'
       END AS category,
       payload->>'method' AS method,
       event_id
FROM (SELECT *, TRY_CAST(payload->>'donor_percent' AS DOUBLE) AS donor_percent
      FROM ref('events') WHERE type = 'chimerism_test')
""",
)

MODELS = (CHIMERISM,)

CHECKS = (
    Check("chimerism_looks_like_a_fraction", "warning",
          "A donor percentage at or below `chimerism_fraction_at_most_percent` after an earlier test above "
          "`chimerism_fraction_after_percent`: a fraction typed for a percentage (0.97 for 97 %)? It is classed as "
          "it stands (low donor).",
          """SELECT patient_id, event_id, occurred_on,
                    'donor chimerism ' || donor_percent || ' % on ' || occurred_on || ' after ' || earlier_max
                        || ' % earlier: a fraction? (as a percentage: ' || round(100 * donor_percent, 4) || ' %)',
                    'correct donor_percent to the percentage (timeline correct ID donor_percent=…)'
             FROM (SELECT *, max(donor_percent) OVER (PARTITION BY patient_id ORDER BY occurred_on
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_max
                   FROM ref('chimerism'))
             WHERE donor_percent <= $chimerism_fraction_at_most_percent
               AND earlier_max > $chimerism_fraction_after_percent"""),
)
