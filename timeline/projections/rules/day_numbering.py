"""Day numbering: the transplants of each patient and the post-transplant day of every event.

Day 0 is the `occurred_on` of the index `stem_cell_infusion`; day N = date - day-0 date, in days, no +1.
A graft infused over several days is one transplant: infusions sharing a `transplant_number` (default 1)
collapse to their first day. The transplants of a patient are numbered 1, 2, ... by that first day
(ties: by transplant_number), and the parameter `index_transplant` picks the one whose first day is
day 0. A patient without that transplant has `day` NULL on every event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import PATIENT_ID, Column, Model
from ..parameters import check_int, parameter
from ..references import cite


@dataclass(frozen=True)
class Parameters:
    index_transplant: int = parameter(
        1, "Ordinal (1 = first by date) of the transplant whose first infusion day is day 0; infusions with "
        "the same transplant_number are one transplant (split graft).", "ordinal", cite("CIBMTR-FIM"))

    def __post_init__(self) -> None:
        check_int("index_transplant", self.index_transplant, 1)


TRANSPLANTS = Model(
    name="transplants",
    grain="transplant (a patient's infusions sharing a transplant_number)",
    key=("patient_id", "transplant_number"),
    columns=(
        PATIENT_ID,
        Column("transplant_number", "INTEGER", "the infusions' transplant_number (default 1)", not_null=True),
        Column("day0_on", "DATE", "first infusion day of this transplant", not_null=True),
        Column("ordinal", "BIGINT", "1, 2, … by day0_on (ties: transplant_number)", not_null=True),
        Column("is_index", "BOOLEAN", "the index transplant (ordinal = index_transplant): its day0_on is day 0",
               not_null=True),
    ),
    sql="""
SELECT patient_id, transplant_number, day0_on, ordinal, ordinal = $index_transplant AS is_index
FROM (
    SELECT patient_id, transplant_number, day0_on,
           row_number() OVER (PARTITION BY patient_id ORDER BY day0_on, transplant_number) AS ordinal
    FROM (
        SELECT patient_id,
               coalesce(TRY_CAST(payload->>'transplant_number' AS INTEGER), 1) AS transplant_number,
               min(occurred_on) AS day0_on
        FROM ref('visible_events')
        WHERE type = 'stem_cell_infusion'
        GROUP BY ALL
    )
)
""",
)

EVENTS = Model(
    name="events",
    grain="visible event",
    key=("event_id",),
    view=True,
    stage_split="type",   # every rule reads a few types
    columns=(
        Column("event_id", "VARCHAR", "the fact's id (a UUID); a corrected fact keeps its original's id",
               not_null=True),
        PATIENT_ID,
        Column("type", "VARCHAR", "event type (after a correction: the replacement's)", not_null=True),
        Column("occurred_on", "DATE", "clinical date", not_null=True),
        Column("recorded_at", "TIMESTAMPTZ", "when the visible version was recorded (UTC)", not_null=True),
        Column("day", "INTEGER", "days since day 0 of the index transplant (NULL without one)"),
        Column("payload", "JSON", "the event's own fields and its provenance (source, recorded_by, note)",
               not_null=True),
    ),
    sql="""
SELECT CAST(v.event_id AS VARCHAR) AS event_id, v.patient_id, v.type, v.occurred_on, v.recorded_at,
       CAST(v.occurred_on - d.day0_on AS INTEGER) AS day,
       v.payload
FROM ref('visible_events') v
LEFT JOIN (SELECT patient_id, day0_on FROM ref('transplants') WHERE is_index) d USING (patient_id)
""",
)

MODELS = (TRANSPLANTS, EVENTS)
