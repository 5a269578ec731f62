"""Bridging: the blinatumomab bridge and the MRD status before the transplant, one row per patient.

- "Before day 0" = day < 0. A patient without a (index) transplant yet has no day 0: every event counts
  as before it (the bridge so far, as of the view's date) and the HSCT date is NULL.
- `blinatumomab_cycles` = the cycles started before day 0 (`blinatumomab_cycles`: distinct `cycle`
  numbers; 0 if none); `blinatumomab_first_started_on` = the earliest start.
- `blinatumomab_last_stopped_on` = the latest `blinatumomab_stopped` before day 0;
  `days_blinatumomab_to_hsct` = day-0 date - last stop date, in days.
- MRD before HSCT = the latest `mrd_test` on or before day 0; on the same date bone marrow is preferred
  over peripheral blood (then the latest recorded). `mrd_before_hsct_percent` is the result, or for a
  below-detection test the assay sensitivity, with `mrd_before_hsct_below_detection` true;
  `mrd_negative_before_hsct` by the MRD rule (`mrd`), NULL without a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import PATIENT_ID, Column, Model
from . import mrd


@dataclass(frozen=True)
class Parameters(mrd.Parameters):
    """Only the shared MRD-negativity parameters (defined in `mrd`)."""


BRIDGING = Model(
    name="bridging",
    grain="patient",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("blinatumomab_cycles", "BIGINT", "distinct blinatumomab cycles started before day 0", not_null=True),
        Column("blinatumomab_first_started_on", "DATE", "earliest blinatumomab start before day 0"),
        Column("blinatumomab_last_stopped_on", "DATE", "latest blinatumomab stop before day 0"),
        Column("days_blinatumomab_to_hsct", "INTEGER", "day-0 date - last stop date"),
        Column("mrd_before_hsct_on", "DATE", "date of the latest MRD test on or before day 0"),
        Column("mrd_before_hsct_specimen", "VARCHAR", "its specimen", values=("bone_marrow", "peripheral_blood")),
        Column("mrd_before_hsct_method", "VARCHAR", "its method", values=("flow", "pcr", "ngs")),
        Column("mrd_before_hsct_percent", "DOUBLE", "its result, or its sensitivity when below detection (%)"),
        Column("mrd_before_hsct_below_detection", "BOOLEAN", "it found no detectable MRD"),
        Column("mrd_negative_before_hsct", "BOOLEAN", "it is MRD-negative by the MRD rule"),
    ),
    sql=f"""
WITH blin AS (
    SELECT patient_id, count(started_on) AS blinatumomab_cycles,
           min(started_on) AS blinatumomab_first_started_on, max(stopped_on) AS blinatumomab_last_stopped_on
    FROM ref('blinatumomab_cycles') GROUP BY patient_id
),
last_mrd AS (
    SELECT patient_id, occurred_on AS mrd_before_hsct_on,
           payload->>'specimen' AS mrd_before_hsct_specimen,
           payload->>'method' AS mrd_before_hsct_method,
           CASE WHEN {mrd.below_detection()} THEN {mrd.sensitivity_percent()}
                ELSE {mrd.result_percent()} END AS mrd_before_hsct_percent,
           {mrd.below_detection()} AS mrd_before_hsct_below_detection,
           {mrd.negative()} AS mrd_negative_before_hsct
    FROM ref('events')
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
FROM ref('patients') pt
LEFT JOIN blin USING (patient_id)
LEFT JOIN last_mrd USING (patient_id)
""",
)

MODELS = (BRIDGING,)
