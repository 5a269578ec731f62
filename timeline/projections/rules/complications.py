"""Complications: one row per complication episode.

- `engraftment_syndrome`, `infection` (detail: category, organism, site), `toxicity` (detail: kind and grade;
  `grade`), `graft_failure` (detail: kind): one row per event. A primary graft failure derived by the
  `engraftment` rule (basis 'derived') adds a `graft_failure` row on the cut-off day.
- Acute GVHD (grade from the payload: the vocabulary derives it from MAGIC stages): `agvhd` = the first
  diagnosis of grade ≥ 1, `grade` = the maximum grade reached; `agvhd_2_4` / `agvhd_3_4` = the first date a
  diagnosis of grade ≥ 2 / ≥ 3 is recorded.
- `sr_agvhd` (steroid-refractory, REACH-type windows): an acute `gvhd_response` with `steroid_refractory`
  true; or, with an acute `gvhd_treatment_started` at steroid ≥ `sr_agvhd_steroid_mg_per_kg_day` on or before
  it, an acute response `progression` ≥ `sr_agvhd_progression_days` or `no_response` ≥
  `sr_agvhd_no_response_days` after that start (response date - start date; the earliest qualifying start).
  Onset = the first response establishing it; the detail names the criterion that fired.
- `cgvhd` = the first chronic diagnosis (detail: maximum and initial NIH severity); `cgvhd_systemic` = a
  chronic diagnosis with a chronic `gvhd_treatment_started`, dated at the first chronic diagnosis whether the
  treatment started before or after it (the detail gives the treatment start). A chronic treatment without
  a chronic diagnosis is a data query, not chronic GVHD.
- Viral reactivation `<virus>_reactivation`: a `viral_reactivation` event, or a `viral_load` of that virus ≥
  `viral_reactivation_iu_per_ml`, both only from day 1 (below-detection loads count as 0; a recorded
  reactivation on or before day 0 is a data query, neither a row nor an endpoint event). A positive starts a new
  episode only if the loads below threshold since the previous positive span ≥ `viral_episode_gap_days`
  (last below-threshold load - first one); episodes are numbered in `episode` and in the detail.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import PATIENT_ID, Column, Model
from ..parameters import check_int, check_number, parameter
from ..references import cite

_SR = cite("SCHOEMANS-2018")
_VIRUS = cite("LJUNGMAN-2017", "ECIL-6")


@dataclass(frozen=True)
class Parameters:
    sr_agvhd_steroid_mg_per_kg_day: float = parameter(
        2.0, "Minimum steroid dose of the acute GVHD treatment from which the refractoriness windows are "
        "counted.", "mg/kg/day prednisone equivalent", _SR)
    sr_agvhd_progression_days: int = parameter(
        3, "Acute GVHD progression this many days or more after the steroid start is steroid-refractory.",
        "days", _SR + " (task force: 3–5 days)")
    sr_agvhd_no_response_days: int = parameter(
        7, "Acute GVHD without response this many days or more after the steroid start is "
        "steroid-refractory.", "days", _SR + " (task force: 5–7 days; some trials 14)")
    viral_reactivation_iu_per_ml: float = parameter(
        1000.0, "Viral load at or above which a load from day 1 on is a reactivation.",
        "IU/mL (WHO international units)", _VIRUS + " (no universal threshold; commonly 1,000–10,000)")
    viral_episode_gap_days: int = parameter(
        28, "Span of loads below threshold needed between two positives for a new episode.", "days",
        _VIRUS + " (≥ 4 weeks without detection; variant: 2 negatives about a week apart)")

    def __post_init__(self) -> None:
        check_number("sr_agvhd_steroid_mg_per_kg_day", self.sr_agvhd_steroid_mg_per_kg_day, low=0)
        check_number("viral_reactivation_iu_per_ml", self.viral_reactivation_iu_per_ml, low=0)
        for name in ("sr_agvhd_progression_days", "sr_agvhd_no_response_days", "viral_episode_gap_days"):
            check_int(name, getattr(self, name), low=0)


def _agvhd_reached_sql(min_grade: int) -> str:
    """First date with an acute diagnosis of grade >= `min_grade` (row `agvhd_<min_grade>_4`)."""
    return f"""
    SELECT patient_id, 'agvhd_{min_grade}_4' AS complication, onset_on,
           'grade ' || grade || ' (first grade >= {min_grade})' AS detail, grade
    FROM (
        SELECT patient_id, min(occurred_on) AS onset_on, arg_min(grade, occurred_on) AS grade
        FROM (SELECT patient_id, occurred_on, max(grade) AS grade    -- the highest grade of each day
              FROM agvhd_dx WHERE grade >= {min_grade} GROUP BY patient_id, occurred_on)
        GROUP BY patient_id
    )"""



COMPLICATIONS = Model(
    name="complications",
    grain="complication episode",
    key=("patient_id", "complication", "episode"),
    columns=(
        PATIENT_ID,
        Column("complication", "VARCHAR", "engraftment_syndrome, infection, toxicity, graft_failure, agvhd, "
               "agvhd_2_4, agvhd_3_4, sr_agvhd, cgvhd, cgvhd_systemic or <virus>_reactivation", not_null=True),
        Column("onset_on", "DATE", "onset date", not_null=True),
        Column("day", "INTEGER", "post-transplant day of the onset (NULL without a transplant)"),
        Column("detail", "VARCHAR", "what the row rests on, in words"),
        Column("grade", "INTEGER", "grade (acute GVHD, toxicity)"),
        Column("episode", "INTEGER", "1, 2, … per patient and complication, by onset", not_null=True),
    ),
    sql=f"""
WITH pt AS (
    SELECT patient_id, hsct_on FROM ref('patients') WHERE patient_id IN (SELECT patient_id FROM ref('events'))
),
ev AS (
    SELECT v.patient_id, v.type, v.occurred_on, v.payload, pt.hsct_on
    FROM ref('events') v LEFT JOIN pt USING (patient_id)
    WHERE v.type IN ('engraftment_syndrome', 'toxicity', 'graft_failure', 'gvhd_diagnosed',
                     'gvhd_treatment_started', 'gvhd_response', 'viral_reactivation', 'viral_load')
),
per_event AS (
    SELECT patient_id, 'engraftment_syndrome' AS complication, occurred_on AS onset_on,
           CAST(NULL AS VARCHAR) AS detail, CAST(NULL AS INTEGER) AS grade
    FROM ev WHERE type = 'engraftment_syndrome'
    UNION ALL
    SELECT patient_id, 'infection', onset_on,
           category || coalesce(': ' || organism, '') || coalesce(' (site ' || site || ')', ''), NULL
    FROM ref('infections') WHERE patient_id IN (SELECT patient_id FROM pt)
    UNION ALL
    SELECT patient_id, 'toxicity', occurred_on,
           (payload->>'kind') || ' grade ' || (payload->>'grade'), TRY_CAST(payload->>'grade' AS INTEGER)
    FROM ev WHERE type = 'toxicity'
    UNION ALL
    SELECT patient_id, 'graft_failure', occurred_on, (payload->>'kind') || ' (as diagnosed)', NULL
    FROM ev WHERE type = 'graft_failure'
    UNION ALL
    SELECT patient_id, 'graft_failure', graft_failure_on,
           'primary (derived: no neutrophil engraftment by day +' || graft_failure_day || ')', NULL
    FROM ref('engraftment')
    WHERE graft_failure_basis = 'derived' AND patient_id IN (SELECT patient_id FROM pt)
),
agvhd_dx AS (
    SELECT patient_id, occurred_on, TRY_CAST(payload->>'grade' AS INTEGER) AS grade
    FROM ev
    WHERE type = 'gvhd_diagnosed' AND payload->>'kind' = 'acute'
      AND TRY_CAST(payload->>'grade' AS INTEGER) >= 1
),
agvhd AS (
    SELECT patient_id, 'agvhd' AS complication, min(occurred_on) AS onset_on,
           'max grade ' || max(grade) AS detail, max(grade) AS grade
    FROM agvhd_dx GROUP BY patient_id
    UNION ALL {_agvhd_reached_sql(2)}
    UNION ALL {_agvhd_reached_sql(3)}
),
steroid_start AS (   -- earliest acute GVHD treatment at the qualifying steroid dose
    SELECT patient_id, min(occurred_on) AS start_on
    FROM ev
    WHERE type = 'gvhd_treatment_started' AND payload->>'kind' = 'acute'
      AND TRY_CAST(payload->>'steroid_mg_per_kg_day' AS DOUBLE) >= $sr_agvhd_steroid_mg_per_kg_day
    GROUP BY patient_id
),
acute_resp AS (
    SELECT r.patient_id, r.occurred_on, r.payload->>'response' AS response,
           coalesce(TRY_CAST(r.payload->>'steroid_refractory' AS BOOLEAN), false) AS judged_sr,
           s.start_on, r.occurred_on - s.start_on AS days_on_steroid
    FROM ev r LEFT JOIN steroid_start s USING (patient_id)
    WHERE r.type = 'gvhd_response' AND r.payload->>'kind' = 'acute'
),
sr_criteria AS (
    SELECT patient_id, occurred_on, 1 AS priority,
           'steroid_refractory: judged by the clinician' AS detail
    FROM acute_resp WHERE judged_sr
    UNION ALL
    SELECT patient_id, occurred_on, 2,
           'progression: ' || days_on_steroid || ' days after steroid >= ' || format('{{:g}}', $sr_agvhd_steroid_mg_per_kg_day) || ' mg/kg/day started ' || start_on
    FROM acute_resp WHERE response = 'progression' AND days_on_steroid >= $sr_agvhd_progression_days
    UNION ALL
    SELECT patient_id, occurred_on, 3,
           'no_response: ' || days_on_steroid || ' days after steroid >= ' || format('{{:g}}', $sr_agvhd_steroid_mg_per_kg_day) || ' mg/kg/day started ' || start_on
    FROM acute_resp WHERE response = 'no_response' AND days_on_steroid >= $sr_agvhd_no_response_days
),
sr_agvhd AS (   -- the first criterion met (by date, then the order above)
    SELECT patient_id, 'sr_agvhd' AS complication, min(occurred_on) AS onset_on,
           arg_min(detail, (occurred_on, priority, detail)) AS detail, CAST(NULL AS INTEGER) AS grade
    FROM sr_criteria GROUP BY patient_id
),
cgvhd_dx AS (
    SELECT patient_id, occurred_on, coalesce(payload->>'severity', 'unknown') AS severity,
           CASE payload->>'severity' WHEN 'mild' THEN 1 WHEN 'moderate' THEN 2 WHEN 'severe' THEN 3 ELSE 0 END
               AS severity_rank
    FROM ev WHERE type = 'gvhd_diagnosed' AND payload->>'kind' = 'chronic'
),
cgvhd AS (
    SELECT patient_id, 'cgvhd' AS complication, min(occurred_on) AS onset_on,
           'max severity ' || arg_max(severity, severity_rank)
               || '; at diagnosis ' || arg_min(severity, (occurred_on, -severity_rank)) AS detail,
           CAST(NULL AS INTEGER) AS grade
    FROM cgvhd_dx GROUP BY patient_id
    UNION ALL   -- dated at the chronic diagnosis, whether the treatment came before or after it
    SELECT t.patient_id, 'cgvhd_systemic', d.onset_on, t.detail, NULL
    FROM (SELECT patient_id, arg_min(detail, (occurred_on, detail)) AS detail
          FROM (SELECT patient_id, occurred_on, 'systemic treatment line ' || coalesce(payload->>'line', '?')
                           || ' started ' || occurred_on AS detail
                FROM ev WHERE type = 'gvhd_treatment_started' AND payload->>'kind' = 'chronic')
          GROUP BY patient_id) t
    JOIN (SELECT patient_id, min(occurred_on) AS onset_on FROM cgvhd_dx GROUP BY patient_id) d USING (patient_id)
),
viral_points AS (   -- per day and virus: positive if a diagnosed reactivation or a load >= threshold
    SELECT patient_id, virus, on_, bool_or(positive) AS positive,
           bool_or(diagnosed) AS diagnosed, max(iu) AS max_iu
    FROM (
        SELECT patient_id, payload->>'virus' AS virus, occurred_on AS on_, true AS positive,
               true AS diagnosed, CAST(NULL AS DOUBLE) AS iu
        FROM ev WHERE type = 'viral_reactivation' AND occurred_on > hsct_on   -- from day 1
        UNION ALL
        SELECT patient_id, virus, on_, iu >= $viral_reactivation_iu_per_ml, false, iu
        FROM (
            SELECT patient_id, payload->>'virus' AS virus, occurred_on AS on_,
                   CASE WHEN coalesce(TRY_CAST(payload->>'below_detection' AS BOOLEAN), false) THEN 0.0
                        ELSE TRY_CAST(payload->>'iu_per_ml' AS DOUBLE) END AS iu
            FROM ev WHERE type = 'viral_load' AND occurred_on > hsct_on
        )
        WHERE iu IS NOT NULL
    )
    GROUP BY patient_id, virus, on_
),
viral_seg AS (   -- segment k = k-th positive day and the below-threshold days after it
    SELECT *, count(*) FILTER (WHERE positive)
                  OVER (PARTITION BY patient_id, virus ORDER BY on_ ROWS UNBOUNDED PRECEDING) AS seg
    FROM viral_points
),
viral_gaps AS (
    SELECT patient_id, virus, seg,
           max(on_) FILTER (WHERE NOT positive) - min(on_) FILTER (WHERE NOT positive) AS negative_span
    FROM viral_seg GROUP BY patient_id, virus, seg
),
viral_pos AS (
    SELECT s.patient_id, s.virus, s.on_, s.diagnosed, s.max_iu,
           count(*) FILTER (WHERE s.seg = 1 OR coalesce(g.negative_span >= $viral_episode_gap_days, false))
               OVER (PARTITION BY s.patient_id, s.virus ORDER BY s.on_ ROWS UNBOUNDED PRECEDING) AS episode
    FROM viral_seg s
    LEFT JOIN viral_gaps g ON g.patient_id = s.patient_id AND g.virus = s.virus AND g.seg = s.seg - 1
    WHERE s.positive
),
viral AS (
    SELECT patient_id, virus || '_reactivation' AS complication, min(on_) AS onset_on,
           virus || ' episode ' || episode || ', onset by '
               || CASE WHEN arg_min(diagnosed, on_) THEN 'diagnosed reactivation'
                       ELSE 'viral load ' || format('{{:.10g}}', arg_min(max_iu, on_)) || ' IU/mL' END AS detail,
           CAST(NULL AS INTEGER) AS grade
    FROM viral_pos GROUP BY patient_id, virus, episode
),
all_rows AS (
    SELECT * FROM per_event
    UNION ALL SELECT * FROM agvhd
    UNION ALL SELECT * FROM sr_agvhd
    UNION ALL SELECT * FROM cgvhd
    UNION ALL SELECT * FROM viral
)
SELECT a.patient_id, a.complication, a.onset_on, CAST(a.onset_on - pt.hsct_on AS INTEGER) AS day,
       a.detail, CAST(a.grade AS INTEGER) AS grade,
       CAST(row_number() OVER (PARTITION BY a.patient_id, a.complication ORDER BY a.onset_on, a.detail)
            AS INTEGER) AS episode
FROM all_rows a LEFT JOIN pt USING (patient_id)
""",
)

MODELS = (COMPLICATIONS,)

CHECKS = (
    Check("chronic_gvhd_treatment_without_diagnosis", "warning",
          "A chronic GVHD treatment without a chronic GVHD diagnosis: neither `cgvhd_systemic` nor a GRFS event.",
          """SELECT t.patient_id, t.event_id, t.occurred_on,
                    'chronic GVHD treatment started on ' || t.occurred_on || ' without a chronic GVHD diagnosis',
                    'record the chronic GVHD diagnosis, or correct the kind of the treatment'
             FROM ref('events') t
             WHERE t.type = 'gvhd_treatment_started' AND t.payload->>'kind' = 'chronic'
               AND NOT EXISTS (SELECT 1 FROM ref('events') d WHERE d.patient_id = t.patient_id
                               AND d.type = 'gvhd_diagnosed' AND d.payload->>'kind' = 'chronic')"""),
    Check("viral_reactivation_before_day1", "warning",
          "A `viral_reactivation` recorded on or before day 0: reactivations count from day 1, so it is neither a "
          "complication row nor an endpoint event.",
          """SELECT patient_id, event_id, occurred_on,
                    (payload->>'virus') || ' reactivation recorded on ' || occurred_on || ' (day ' || day
                        || '): reactivations count from day 1',
                    'check the date (a pre-transplant infection is recorded as an infection)'
             FROM ref('events') WHERE type = 'viral_reactivation' AND day <= 0"""),
    Check("gvhd_resolved_without_diagnosis", "warning",
          "A `gvhd_resolved` of a kind never diagnosed.",
          """SELECT r.patient_id, r.event_id, r.occurred_on,
                    (r.payload->>'kind') || ' GVHD resolved on ' || r.occurred_on || ' but never diagnosed',
                    'record the diagnosis, or correct the kind'
             FROM ref('events') r
             WHERE r.type = 'gvhd_resolved'
               AND NOT EXISTS (SELECT 1 FROM ref('events') d WHERE d.patient_id = r.patient_id
                               AND d.type = 'gvhd_diagnosed' AND d.payload->>'kind' = r.payload->>'kind')"""),
)
