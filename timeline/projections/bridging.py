"""`bridging` projection: blinatumomab bridge and MRD status before the transplant, one row per patient.

Rules (ENDPOINTS.md §Bridging; clinical-definitions §11, §12):
- "Before day 0" = day < 0 (events.day). A patient without a (index) transplant yet has no day 0:
  all events count as before it (the bridge so far, as of the view's date) and the HSCT date is NULL.
- `blinatumomab_cycles` = distinct `cycle` numbers of `blinatumomab_started` before day 0 (0 if none);
  `blinatumomab_first_started_on` = earliest such start.
- `blinatumomab_last_stopped_on` = latest `blinatumomab_stopped` before day 0;
  `days_blinatumomab_to_hsct` = day-0 date - last stop date (days).
- MRD before HSCT = the latest `mrd_test` on or before day 0; on the same date bone marrow is preferred
  over peripheral blood (then the latest recorded). `mrd_before_hsct_percent` is the result, or for a
  below-detection test the assay sensitivity, with `mrd_before_hsct_below_detection` true.
  `mrd_negative_before_hsct` by the MRD rule (mrd.py); NULL when there is no test.

Columns: patient_id, blinatumomab_cycles, blinatumomab_first_started_on, blinatumomab_last_stopped_on,
days_blinatumomab_to_hsct, mrd_before_hsct_on, mrd_before_hsct_specimen, mrd_before_hsct_method,
mrd_before_hsct_percent, mrd_before_hsct_below_detection, mrd_negative_before_hsct.
"""

from __future__ import annotations

from dataclasses import dataclass

from timeline.projections import mrd

TABLE = "bridging"
DEPENDS_ON: tuple[str, ...] = ("events", "patients")


@dataclass(frozen=True)
class Parameters(mrd.Parameters):
    """Only the shared MRD-negativity rule parameters (defined in mrd.py)."""


def query(p: Parameters) -> str:
    return f"""
WITH pre AS (SELECT * FROM events WHERE day IS NULL OR day < 0),
blin AS (
    SELECT patient_id,
           count(DISTINCT TRY_CAST(payload->>'cycle' AS INTEGER)) FILTER (WHERE type = 'blinatumomab_started')
               AS blinatumomab_cycles,
           min(occurred_on) FILTER (WHERE type = 'blinatumomab_started') AS blinatumomab_first_started_on,
           max(occurred_on) FILTER (WHERE type = 'blinatumomab_stopped') AS blinatumomab_last_stopped_on
    FROM pre WHERE type IN ('blinatumomab_started', 'blinatumomab_stopped')
    GROUP BY patient_id
),
last_mrd AS (
    SELECT patient_id, occurred_on AS mrd_before_hsct_on,
           payload->>'specimen' AS mrd_before_hsct_specimen,
           payload->>'method' AS mrd_before_hsct_method,
           CASE WHEN {mrd.below_detection_sql()} THEN {mrd.sensitivity_percent_sql()}
                ELSE {mrd.result_percent_sql()} END AS mrd_before_hsct_percent,
           {mrd.below_detection_sql()} AS mrd_before_hsct_below_detection,
           {mrd.negative_sql(p)} AS mrd_negative_before_hsct
    FROM events
    WHERE type = 'mrd_test' AND (day IS NULL OR day <= 0)
    QUALIFY row_number() OVER (
        PARTITION BY patient_id
        ORDER BY occurred_on DESC, (payload->>'specimen' = 'bone_marrow') DESC NULLS LAST,
                 recorded_at DESC, event_id DESC) = 1
)
SELECT pt.patient_id,
       coalesce(blin.blinatumomab_cycles, 0) AS blinatumomab_cycles,
       blin.blinatumomab_first_started_on,
       blin.blinatumomab_last_stopped_on,
       CAST(pt.hsct_on - blin.blinatumomab_last_stopped_on AS INTEGER) AS days_blinatumomab_to_hsct,
       last_mrd.mrd_before_hsct_on,
       last_mrd.mrd_before_hsct_specimen,
       last_mrd.mrd_before_hsct_method,
       last_mrd.mrd_before_hsct_percent,
       last_mrd.mrd_before_hsct_below_detection,
       last_mrd.mrd_negative_before_hsct
FROM patients pt
LEFT JOIN blin USING (patient_id)
LEFT JOIN last_mrd USING (patient_id)
"""
