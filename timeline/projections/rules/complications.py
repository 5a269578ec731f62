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
  The loads, each compared with the threshold, are the table `viral_loads`; the episodes (onset, last
  positive day, peak load) the table `viral_episodes`, from which the reactivation rows are taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import DAY, EVENT_ID, PATIENT_ID, Column, Model
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



VIRAL_LOADS = Model(
    name="viral_loads",
    grain="viral load test",
    key=("event_id",),
    columns=(
        PATIENT_ID,
        Column("occurred_on", "DATE", "sample date", not_null=True),
        DAY,
        Column("virus", "VARCHAR", "the virus, as recorded (cmv, ebv, adv, bkv, hhv6, …)", not_null=True),
        Column("iu_per_ml", "DOUBLE", "the load, IU/mL (NULL when below detection)"),
        Column("below_detection", "BOOLEAN", "no detectable virus", not_null=True),
        Column("load_iu_per_ml", "DOUBLE", "the load the rule compares: below detection counts as 0"),
        Column("at_or_above_threshold", "BOOLEAN", "load_iu_per_ml >= viral_reactivation_iu_per_ml"),
        EVENT_ID,
    ),
    sql="""
SELECT patient_id, occurred_on, day, virus, iu_per_ml, below_detection,
       CASE WHEN below_detection THEN 0.0 ELSE iu_per_ml END AS load_iu_per_ml,
       CASE WHEN below_detection THEN 0.0 ELSE iu_per_ml END >= $viral_reactivation_iu_per_ml AS at_or_above_threshold,
       event_id
FROM (SELECT patient_id, occurred_on, day, payload->>'virus' AS virus,
             TRY_CAST(payload->>'iu_per_ml' AS DOUBLE) AS iu_per_ml,
             coalesce(TRY_CAST(payload->>'below_detection' AS BOOLEAN), false) AS below_detection, event_id
      FROM ref('events') WHERE type = 'viral_load')
""",
)

VIRAL_EPISODES = Model(
    name="viral_episodes",
    grain="patient × virus × reactivation episode",
    key=("patient_id", "virus", "episode"),
    columns=(
        PATIENT_ID,
        Column("virus", "VARCHAR", "the virus", not_null=True),
        Column("episode", "BIGINT", "1, 2, … per patient and virus, by onset", not_null=True),
        Column("onset_on", "DATE", "first positive day of the episode (the complication's onset)", not_null=True),
        Column("onset_day", "INTEGER", "its post-transplant day", not_null=True),
        Column("last_positive_on", "DATE", "last positive day of the episode", not_null=True),
        Column("last_positive_day", "INTEGER", "its post-transplant day", not_null=True),
        Column("peak_iu_per_ml", "DOUBLE", "highest load of the episode, IU/mL (NULL: recorded reactivations only)"),
        Column("detail", "VARCHAR", "what the onset rests on, in words", not_null=True),
    ),
    sql="""
WITH pt AS (
    SELECT patient_id, hsct_on FROM ref('patients') WHERE hsct_on IS NOT NULL   -- each has events
),
viral_points AS (   -- per day and virus: positive if a diagnosed reactivation or a load >= threshold (from day 1)
    SELECT patient_id, virus, on_, bool_or(positive) AS positive,
           bool_or(diagnosed) AS diagnosed, max(iu) AS max_iu
    FROM (
        SELECT e.patient_id, e.payload->>'virus' AS virus, e.occurred_on AS on_, true AS positive,
               true AS diagnosed, CAST(NULL AS DOUBLE) AS iu
        FROM ref('events') e JOIN pt USING (patient_id)
        WHERE e.type = 'viral_reactivation' AND e.occurred_on > pt.hsct_on
        UNION ALL
        SELECT l.patient_id, l.virus, l.occurred_on, l.at_or_above_threshold, false, l.load_iu_per_ml
        FROM ref('viral_loads') l JOIN pt USING (patient_id)
        WHERE l.occurred_on > pt.hsct_on AND l.load_iu_per_ml IS NOT NULL
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
)
SELECT s.patient_id, s.virus, s.episode, min(s.on_) AS onset_on,
       CAST(min(s.on_) - any_value(pt.hsct_on) AS INTEGER) AS onset_day,
       max(s.on_) AS last_positive_on, CAST(max(s.on_) - any_value(pt.hsct_on) AS INTEGER) AS last_positive_day,
       max(s.max_iu) AS peak_iu_per_ml,
       s.virus || ' episode ' || s.episode || ', onset by '
           || CASE WHEN arg_min(s.diagnosed, s.on_) THEN 'diagnosed reactivation'
                   ELSE 'viral load ' || format('{:.10g}', arg_min(s.max_iu, s.on_)) || ' IU/mL' END AS detail
FROM viral_pos s JOIN pt USING (patient_id)
GROUP BY s.patient_id, s.virus, s.episode
""",
)


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
    SELECT patient_id, hsct_on FROM ref('patients')   -- every patient has events (patients are made from them)
),
ev AS (
    SELECT v.patient_id, v.type, v.occurred_on, v.payload, pt.hsct_on
    FROM ref('events') v LEFT JOIN pt USING (patient_id)
    WHERE v.type IN ('engraftment_syndrome', 'toxicity', 'graft_failure', 'gvhd_diagnosed',
                     'gvhd_treatment_started', 'gvhd_response')
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
viral AS (
    SELECT patient_id, virus || '_reactivation' AS complication, onset_on, detail, CAST(NULL AS INTEGER) AS grade
    FROM ref('viral_episodes')
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

MODELS = (VIRAL_LOADS, VIRAL_EPISODES, COMPLICATIONS)

CHECKS = (
    Check("chronic_gvhd_treatment_without_diagnosis", "warning",
          "A chronic GVHD treatment without a chronic GVHD diagnosis: neither `cgvhd_systemic` nor a GRFS event.",
          """SELECT t.patient_id, t.event_id, t.occurred_on,
                    'chronic GVHD treatment started on ' || t.occurred_on || ' without a chronic GVHD diagnosis',
                    'record the chronic GVHD diagnosis, or correct the kind of the treatment'
             FROM ref('gvhd_course') t   -- the GVHD events, with their kind
             WHERE t.type = 'gvhd_treatment_started' AND t.kind = 'chronic'
               AND NOT EXISTS (SELECT 1 FROM ref('gvhd_course') d WHERE d.patient_id = t.patient_id
                               AND d.type = 'gvhd_diagnosed' AND d.kind = 'chronic')"""),
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
                    r.kind || ' GVHD resolved on ' || r.occurred_on || ' but never diagnosed',
                    'record the diagnosis, or correct the kind'
             FROM ref('gvhd_course') r   -- the GVHD events, with their kind
             WHERE r.type = 'gvhd_resolved'
               AND NOT EXISTS (SELECT 1 FROM ref('gvhd_course') d WHERE d.patient_id = r.patient_id
                               AND d.type = 'gvhd_diagnosed' AND d.kind = r.kind)"""),
)
