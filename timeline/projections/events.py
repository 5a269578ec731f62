"""`events` projection: every visible event with its post-transplant day number.

Day 0 is the `occurred_on` of the index `stem_cell_infusion`; day N = date - day-0 date, no +1
(ENDPOINTS.md §Time; clinical-definitions §0, CIBMTR FIM). A graft infused over several days is one
transplant: infusions sharing a `transplant_number` (default 1) collapse to their first day. The
transplants of a patient are numbered 1, 2, ... by that first day (ties: by transplant_number), and the
parameter `index_transplant` picks one. A patient without that transplant has `day` NULL everywhere.

Columns: event_id, patient_id, type, occurred_on, recorded_at, day (INTEGER), payload (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timeline.projections.pipeline import check_int

TABLE = "events"
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parameters:
    index_transplant: int = field(
        default=1,
        metadata={
            "doc": "Ordinal (1 = first by date) of the transplant whose first infusion day is day 0; "
            "infusions with the same transplant_number are one transplant (split graft).",
            "source": "ENDPOINTS.md §Time; clinical-definitions §0 (CIBMTR FIM, multi-day infusion)",
        },
    )

    def __post_init__(self) -> None:
        check_int("index_transplant", self.index_transplant, 1)


def transplants_sql() -> str:
    """One row per transplant: patient_id, transplant_number, day0_on (first infusion day), ordinal."""
    return """
    SELECT patient_id, transplant_number, day0_on,
           row_number() OVER (PARTITION BY patient_id ORDER BY day0_on, transplant_number) AS ordinal
    FROM (
        SELECT patient_id,
               coalesce(TRY_CAST(payload->>'transplant_number' AS INTEGER), 1) AS transplant_number,
               min(occurred_on) AS day0_on
        FROM visible_events
        WHERE type = 'stem_cell_infusion'
        GROUP BY ALL
    )"""


def query(p: Parameters) -> str:
    return f"""
WITH transplants AS ({transplants_sql()}),
day0 AS (
    SELECT patient_id, day0_on FROM transplants WHERE ordinal = {int(p.index_transplant)}
)
SELECT CAST(v.event_id AS VARCHAR) AS event_id, v.patient_id, v.type, v.occurred_on, v.recorded_at,
       CAST(v.occurred_on - d.day0_on AS INTEGER) AS day,
       v.payload
FROM visible_events v
LEFT JOIN day0 d USING (patient_id)
"""
