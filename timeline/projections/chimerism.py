"""`chimerism` projection: one row per `chimerism_test`, categorised by % donor cells.

Default (ASTCT 2021 / Sureda 2024 harmonised, clinical-definitions §4; ENDPOINTS.md §Chimerism):
`full_donor` > 95 %, `low_donor` < 5 %, `mixed` in between (5–95 inclusive). Variants are parameters:
CIBMTR pediatric ALL alternative CR uses >= 95 % (`full_donor_chimerism_threshold_inclusive=true`),
the CIBMTR WAS form >= 80 % (`full_donor_chimerism_above_percent=80` plus inclusive).

Columns: patient_id, occurred_on, day, compartment, donor_percent (DOUBLE), category, method, event_id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timeline.projections.pipeline import check_bool, check_number, num

TABLE = "chimerism"
DEPENDS_ON: tuple[str, ...] = ("events",)


@dataclass(frozen=True)
class Parameters:
    full_donor_chimerism_above_percent: float = field(
        default=95.0,
        metadata={
            "doc": "A test is full donor when donor % is above this (strictly, unless "
            "full_donor_chimerism_threshold_inclusive).",
            "source": "ASTCT 2021 / Sureda 2024 Table 1; ENDPOINTS.md §Chimerism; variants CIBMTR FIM (ALL >=95, WAS >=80)",
        },
    )
    full_donor_chimerism_threshold_inclusive: bool = field(
        default=False,
        metadata={
            "doc": "If true, donor % equal to full_donor_chimerism_above_percent is also full donor (>=).",
            "source": "CIBMTR FIM ALL response criteria (>=95%); clinical-definitions §4(b)",
        },
    )
    low_donor_chimerism_below_percent: float = field(
        default=5.0,
        metadata={
            "doc": "A test is low donor (graft loss range) when donor % is below this; otherwise mixed.",
            "source": "clinical-definitions §4 (graft loss <5%); CIBMTR FIM WAS form (<5% host only); ENDPOINTS.md §Chimerism",
        },
    )

    def __post_init__(self) -> None:
        check_number("full_donor_chimerism_above_percent", self.full_donor_chimerism_above_percent, 0, 100)
        check_number("low_donor_chimerism_below_percent", self.low_donor_chimerism_below_percent, 0, 100)
        check_bool("full_donor_chimerism_threshold_inclusive", self.full_donor_chimerism_threshold_inclusive)
        if self.low_donor_chimerism_below_percent > self.full_donor_chimerism_above_percent:
            raise ValueError("low_donor_chimerism_below_percent must not exceed full_donor_chimerism_above_percent")


def query(p: Parameters) -> str:
    full_op = ">=" if p.full_donor_chimerism_threshold_inclusive else ">"
    return f"""
SELECT patient_id, occurred_on, day,
       payload->>'compartment' AS compartment,
       donor_percent,
       CASE WHEN donor_percent {full_op} {num(p.full_donor_chimerism_above_percent)} THEN 'full_donor'
            WHEN donor_percent < {num(p.low_donor_chimerism_below_percent)} THEN 'low_donor'
            WHEN donor_percent IS NOT NULL THEN 'mixed'
       END AS category,
       payload->>'method' AS method,
       event_id
FROM (SELECT *, TRY_CAST(payload->>'donor_percent' AS DOUBLE) AS donor_percent
      FROM events WHERE type = 'chimerism_test')
"""
