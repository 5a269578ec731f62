"""GVHD episodes after the transplant: one row per patient, kind (acute, chronic) and episode.

Each `gvhd_diagnosed` on or after day 0 belongs to the first `gvhd_resolved` of its kind on or after it
(same day included); the diagnoses sharing a resolution, or all left without one, make one episode.
`resolved_on` NULL: the episode is active at the last contact. Grades and the complication onsets are in
`complications` (rule there); this table gives the spans. `gvhd_course` lists the recorded GVHD events
(diagnoses with their grade or severity, treatment starts, responses, resolutions) as they were recorded.
"""

from __future__ import annotations

from ..model import DAY, EVENT_ID, PATIENT_ID, Column, Model

GVHD_EPISODES = Model(
    name="gvhd_episodes",
    grain="patient × GVHD kind × episode",
    key=("patient_id", "kind", "episode"),
    columns=(
        PATIENT_ID,
        Column("kind", "VARCHAR", "acute or chronic", not_null=True, values=("acute", "chronic")),
        Column("episode", "BIGINT", "1, 2, … per patient and kind, by diagnosis date", not_null=True),
        Column("diagnosed_on", "DATE", "first diagnosis of the episode", not_null=True),
        Column("diagnosed_day", "INTEGER", "its post-transplant day", not_null=True),
        Column("resolved_on", "DATE", "the resolution that ends it (NULL: active)"),
        Column("resolved_day", "INTEGER", "its post-transplant day"),
        Column("diagnoses", "BIGINT", "diagnoses recorded in the episode", not_null=True),
    ),
    sql="""
WITH dx AS (
    SELECT patient_id, payload->>'kind' AS kind, occurred_on, day FROM ref('events')
    WHERE type = 'gvhd_diagnosed' AND day >= 0
),
res AS (
    SELECT patient_id, payload->>'kind' AS kind, occurred_on, day FROM ref('events')
    WHERE type = 'gvhd_resolved' AND day >= 0
),
matched AS (   -- each diagnosis with the first resolution of its kind on or after it
    SELECT d.patient_id, d.kind, d.occurred_on, d.day,
           min(r.occurred_on) AS resolved_on, CAST(min(r.day) AS INTEGER) AS resolved_day
    FROM dx d LEFT JOIN res r ON r.patient_id = d.patient_id AND r.kind = d.kind AND r.occurred_on >= d.occurred_on
    GROUP BY d.patient_id, d.kind, d.occurred_on, d.day
)
SELECT patient_id, kind,
       row_number() OVER (PARTITION BY patient_id, kind ORDER BY min(occurred_on)) AS episode,
       min(occurred_on) AS diagnosed_on, CAST(min(day) AS INTEGER) AS diagnosed_day,
       resolved_on, resolved_day, count(*) AS diagnoses
FROM matched
GROUP BY patient_id, kind, resolved_on, resolved_day
""",
)

GVHD_COURSE = Model(
    name="gvhd_course",
    grain="GVHD event",
    key=("event_id",),
    columns=(
        PATIENT_ID,
        Column("occurred_on", "DATE", "date", not_null=True),
        DAY,
        Column("type", "VARCHAR", "gvhd_diagnosed, gvhd_treatment_started, gvhd_response or gvhd_resolved",
               not_null=True, values=("gvhd_diagnosed", "gvhd_treatment_started", "gvhd_response", "gvhd_resolved")),
        Column("kind", "VARCHAR", "acute or chronic"),
        Column("grade", "INTEGER", "acute GVHD grade of a diagnosis (MAGIC 1–4)"),
        Column("severity", "VARCHAR", "chronic GVHD NIH severity of a diagnosis"),
        Column("response", "VARCHAR", "the response recorded"),
        Column("steroid_mg_per_kg_day", "DOUBLE", "steroid dose of a treatment start"),
        Column("line", "INTEGER", "treatment line"),
        Column("agents", "VARCHAR", "agents of a treatment start, joined with ', '"),
        EVENT_ID,
    ),
    sql="""
SELECT patient_id, occurred_on, day, type, payload->>'kind' AS kind, TRY_CAST(payload->>'grade' AS INTEGER) AS grade,
       payload->>'severity' AS severity, payload->>'response' AS response,
       TRY_CAST(payload->>'steroid_mg_per_kg_day' AS DOUBLE) AS steroid_mg_per_kg_day,
       TRY_CAST(payload->>'line' AS INTEGER) AS line,
       array_to_string(CAST(payload->'agents' AS VARCHAR[]), ', ') AS agents, event_id
FROM ref('events') WHERE type IN ('gvhd_diagnosed', 'gvhd_treatment_started', 'gvhd_response', 'gvhd_resolved')
""",
)

MODELS = (GVHD_EPISODES, GVHD_COURSE)
