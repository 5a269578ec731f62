"""Disease status: intervals of one status per patient: `active_disease`, `remission_mrd_positive`,
`remission_mrd_negative`.

Status points:
- `diagnosis`, `relapse`, `disease_assessment` refractory/progression -> active_disease;
- `disease_assessment` complete_remission/cri -> remission: MRD-negative if the latest MRD test since the
  last active-disease point (on the same day: processed before it) is negative, else MRD-positive;
  `partial_response` sets no status;
- `mrd_test`: level at or above `active_disease_mrd_at_least_percent` -> active_disease; negative by the
  MRD rule (`mrd`) -> remission_mrd_negative; otherwise remission_mrd_positive (a positive test after
  negativity is MRD recurrence, not relapse: no relapse is derived from it).
Several points on one day are processed in this order, the last deciding the day's status: assessments,
then MRD tests (peripheral blood before bone marrow, so the marrow decides), then diagnosis/relapse (they
outrank everything); within a rank the more severe result last, then by recorded_at, event_id. Points
after the death date are ignored. Consecutive days with the same status form one interval; `to_on` =
`from_on` of the next interval, the death date for the last interval of a dead patient, else NULL.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import PATIENT_ID, Column, Model
from ..parameters import check_number, parameter
from ..references import cite
from . import mrd


@dataclass(frozen=True)
class Parameters(mrd.Parameters):
    active_disease_mrd_at_least_percent: float = parameter(
        5.0, "An MRD test at or above this level is active disease (the morphological threshold).",
        "% of nucleated cells", cite("CIBMTR-FIM", "VAN-DONGEN-2015") + " (CR: < 5 % marrow blasts)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("active_disease_mrd_at_least_percent", self.active_disease_mrd_at_least_percent, 0, 100)


STATUSES = ("active_disease", "remission_mrd_positive", "remission_mrd_negative")

DISEASE_STATUS = Model(
    name="disease_status",
    grain="status interval",
    key=("patient_id", "interval_number"),
    columns=(
        PATIENT_ID,
        Column("interval_number", "INTEGER", "1, 2, … in date order", not_null=True),
        Column("status", "VARCHAR", "the disease status of the interval", not_null=True, values=STATUSES),
        Column("from_on", "DATE", "first day of the interval", not_null=True),
        Column("to_on", "DATE", "first day of the next interval, or the death date; NULL = ongoing"),
    ),
    sql=f"""
WITH pts AS (
    SELECT e.patient_id, e.occurred_on, e.recorded_at, e.event_id,
           CASE
               WHEN e.type IN ('diagnosis', 'relapse') THEN 'active'
               WHEN e.type = 'disease_assessment' AND e.payload->>'response' IN ('refractory', 'progression')
                   THEN 'active'
               WHEN e.type = 'disease_assessment' AND e.payload->>'response' IN ('complete_remission', 'cri')
                   THEN 'remission'
               WHEN e.type = 'mrd_test' AND coalesce(m.result_percent >= $active_disease_mrd_at_least_percent, false)
                   THEN 'active'
               WHEN e.type = 'mrd_test' AND m.negative THEN 'mrd_negative'
               WHEN e.type = 'mrd_test' THEN 'mrd_positive'
           END AS kind,
           CASE e.type WHEN 'disease_assessment' THEN 1 WHEN 'mrd_test' THEN 2 ELSE 3 END AS day_rank,
           CASE WHEN e.type = 'mrd_test' AND m.specimen = 'bone_marrow' THEN 1 ELSE 0 END AS specimen_rank
    FROM ref('events') e
    LEFT JOIN (SELECT event_id, result_percent, negative, specimen FROM ref('mrd_tests')) m   -- each MRD test's
        ON m.event_id = e.event_id                                                             -- values, parsed once
    LEFT JOIN ref('patients') pt USING (patient_id)
    WHERE e.type IN ('diagnosis', 'relapse', 'disease_assessment', 'mrd_test')
      AND (pt.death_on IS NULL OR e.occurred_on <= pt.death_on)
),
ordered AS (
    SELECT *, row_number() OVER (
        PARTITION BY patient_id
        ORDER BY occurred_on, day_rank, specimen_rank,
                 CASE kind WHEN 'mrd_negative' THEN 0 WHEN 'remission' THEN 0 WHEN 'mrd_positive' THEN 1 ELSE 2 END,
                 recorded_at, event_id) AS seq
    FROM pts WHERE kind IS NOT NULL
),
carried AS (
    SELECT *,
           max(CASE WHEN kind = 'active' THEN seq END) OVER w AS last_active_seq,
           max(CASE WHEN kind IN ('mrd_negative', 'mrd_positive') THEN seq END) OVER w AS last_mrd_seq,
           last_value(CASE WHEN kind IN ('mrd_negative', 'mrd_positive') THEN kind END IGNORE NULLS) OVER w
               AS last_mrd_kind
    FROM ordered
    WINDOW w AS (PARTITION BY patient_id ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
points AS (
    SELECT patient_id, occurred_on, seq,
           CASE kind
               WHEN 'active' THEN 'active_disease'
               WHEN 'mrd_negative' THEN 'remission_mrd_negative'
               WHEN 'mrd_positive' THEN 'remission_mrd_positive'
               ELSE CASE WHEN last_mrd_kind = 'mrd_negative' AND last_mrd_seq > coalesce(last_active_seq, 0)
                         THEN 'remission_mrd_negative' ELSE 'remission_mrd_positive' END
           END AS status
    FROM carried
),
daily AS (
    SELECT patient_id, occurred_on, status FROM points
    QUALIFY row_number() OVER (PARTITION BY patient_id, occurred_on ORDER BY seq DESC) = 1
),
islands AS (
    SELECT *, count(*) FILTER (WHERE changed)
                  OVER (PARTITION BY patient_id ORDER BY occurred_on ROWS UNBOUNDED PRECEDING) AS interval_number
    FROM (SELECT *, status IS DISTINCT FROM lag(status) OVER (PARTITION BY patient_id ORDER BY occurred_on) AS changed
          FROM daily)
),
intervals AS (
    SELECT patient_id, CAST(interval_number AS INTEGER) AS interval_number, any_value(status) AS status,
           min(occurred_on) AS from_on
    FROM islands GROUP BY patient_id, interval_number
)
SELECT i.patient_id, i.interval_number, i.status, i.from_on,
       coalesce(lead(i.from_on) OVER (PARTITION BY i.patient_id ORDER BY i.from_on), pt.death_on) AS to_on
FROM intervals i LEFT JOIN ref('patients') pt USING (patient_id)
""",
)

MODELS = (DISEASE_STATUS,)

CHECKS = (
    Check("relapse_with_negative_mrd", "warning",
          "A relapse on a day with an MRD-negative test: one of the two is wrong (the relapse decides the day's "
          "status).",
          """SELECT r.patient_id, r.event_id, r.occurred_on,
                     'relapse on ' || r.occurred_on || ' and an MRD-negative test the same day',
                     'check the relapse and the MRD result of that day'
              FROM ref('events') r
              WHERE r.type = 'relapse' AND EXISTS (   -- mrd_tests: each test with its negativity by the MRD rule
                  SELECT 1 FROM ref('mrd_tests') m
                  WHERE m.patient_id = r.patient_id AND m.occurred_on = r.occurred_on AND m.negative)"""),
)
