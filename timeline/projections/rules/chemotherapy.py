"""Chemotherapy before the transplant: one row per patient with chemotherapy before day 0.

Front-line = the distinct regimens started before the first relapse (all of them without a relapse),
sorted, joined with ' + '. Salvage = the regimens started on or after the first relapse, in date order,
joined with ' → ', and their number (`salvage_blocks`). Before day 0 = day < 0 (every event without a
transplant); the first relapse is `patients.first_relapse_before_hsct_on`.
"""

from __future__ import annotations

from ..model import PATIENT_ID, Column, Model
from ..checks import Check

PRIOR_THERAPY = Model(
    name="prior_therapy",
    grain="patient with chemotherapy before day 0",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("frontline_chemotherapy", "VARCHAR", "regimens before the first relapse, sorted, joined with +"),
        Column("salvage_chemotherapy", "VARCHAR", "regimens from the first relapse on, in date order, joined with →"),
        Column("salvage_blocks", "BIGINT", "number of salvage regimens started", not_null=True),
    ),
    sql="""
SELECT e.patient_id,
       string_agg(DISTINCT e.payload->>'regimen', ' + ' ORDER BY e.payload->>'regimen')
           FILTER (WHERE p.first_relapse_before_hsct_on IS NULL OR e.occurred_on < p.first_relapse_before_hsct_on)
           AS frontline_chemotherapy,
       string_agg(e.payload->>'regimen', ' → ' ORDER BY e.occurred_on, e.payload->>'regimen')
           FILTER (WHERE e.occurred_on >= p.first_relapse_before_hsct_on) AS salvage_chemotherapy,
       count(*) FILTER (WHERE e.occurred_on >= p.first_relapse_before_hsct_on) AS salvage_blocks
FROM ref('events') e JOIN ref('patients') p USING (patient_id)
WHERE e.type = 'chemotherapy_started' AND (e.day IS NULL OR e.day < 0)
GROUP BY e.patient_id
""",
)

MODELS = (PRIOR_THERAPY,)

CHECKS = (
    Check("chemotherapy_stop_before_start", "error",
          "A chemotherapy regimen stopped before any start of the same regimen.",
          """WITH first_start AS (
                 SELECT patient_id, payload->>'regimen' AS regimen, min(occurred_on) AS started_on
                 FROM ref('events') WHERE type = 'chemotherapy_started' GROUP BY ALL)
             SELECT s.patient_id, s.event_id, s.occurred_on,
                    b.regimen || ' stopped on ' || s.occurred_on || ', before its first start on ' || b.started_on,
                    'correct the date of the start or of the stop, or the regimen name'
             FROM ref('events') s JOIN first_start b
               ON b.patient_id = s.patient_id AND b.regimen = s.payload->>'regimen'
             WHERE s.type = 'chemotherapy_stopped' AND s.occurred_on < b.started_on"""),
)
