"""Blinatumomab cycles before the transplant: one row per patient and cycle number.

A cycle is known by its recorded `cycle` number, never by a fixed length (the label's 28 days of infusion
and 14 without are a protocol, not a rule). Before day 0 = day < 0 (every event without a transplant).
`started_on` = the first `blinatumomab_started` of the cycle; `stopped_on` = the last
`blinatumomab_stopped` of the cycle, with its reason; a cycle may have a stop without a start (recorded
elsewhere) or a start without a stop (ongoing, or the stop not recorded). `infusion_days` = stopped_on -
started_on; `completed` = its last stop says `completed`. `bridging` counts these cycles.
"""

from __future__ import annotations

from ..model import PATIENT_ID, Column, Model
from ..checks import Check

STOP_REASONS = ("completed", "toxicity", "progression", "transplant", "other")

BLINATUMOMAB_CYCLES = Model(
    name="blinatumomab_cycles",
    grain="patient × blinatumomab cycle before day 0",
    key=("patient_id", "cycle"),
    columns=(
        PATIENT_ID,
        Column("cycle", "INTEGER", "the recorded cycle number", not_null=True),
        Column("started_on", "DATE", "first start of the cycle"),
        Column("start_day", "INTEGER", "its post-transplant day"),
        Column("stopped_on", "DATE", "last stop of the cycle"),
        Column("stop_day", "INTEGER", "its post-transplant day"),
        Column("stop_reason", "VARCHAR", "reason of that stop", values=STOP_REASONS),
        Column("infusion_days", "INTEGER", "stopped_on - started_on"),
        Column("completed", "BOOLEAN", "the cycle's last stop says completed", not_null=True),
    ),
    sql="""
WITH pre AS (
    SELECT patient_id, type, occurred_on, recorded_at, event_id, day, payload,
           TRY_CAST(payload->>'cycle' AS INTEGER) AS cycle
    FROM ref('events')
    WHERE type IN ('blinatumomab_started', 'blinatumomab_stopped') AND (day IS NULL OR day < 0)
),
starts AS (
    SELECT patient_id, cycle, min(occurred_on) AS started_on, CAST(min(day) AS INTEGER) AS start_day
    FROM pre WHERE type = 'blinatumomab_started' GROUP BY patient_id, cycle
),
stops AS (
    SELECT patient_id, cycle, max(occurred_on) AS stopped_on, CAST(max(day) AS INTEGER) AS stop_day,
           arg_max(payload->>'reason', (occurred_on, recorded_at, event_id)) AS stop_reason
    FROM pre WHERE type = 'blinatumomab_stopped' GROUP BY patient_id, cycle
)
SELECT patient_id, cycle, started_on, start_day, stopped_on, stop_day, stop_reason,
       CAST(stopped_on - started_on AS INTEGER) AS infusion_days,
       coalesce(stop_reason = 'completed', false) AS completed
FROM starts FULL OUTER JOIN stops USING (patient_id, cycle)
""",
)

MODELS = (BLINATUMOMAB_CYCLES,)

CHECKS = (
    Check("blinatumomab_stop_before_start", "error",
          "A blinatumomab cycle stopped before it started: its infusion days are negative.",
          """SELECT patient_id, NULL AS event_id, stopped_on AS occurred_on,
                    'blinatumomab cycle ' || cycle || ' stopped on ' || stopped_on || ', before its start on '
                        || started_on AS message,
                    'correct the date of the start or of the stop' AS suggestion
             FROM ref('blinatumomab_cycles') WHERE stopped_on < started_on"""),
    Check("blinatumomab_stop_without_start", "warning",
          "A blinatumomab cycle stopped but never started (before day 0): it is not counted as a cycle.",
          """SELECT patient_id, NULL, stopped_on,
                    'blinatumomab cycle ' || cycle || ' stopped on ' || stopped_on || ' without a start',
                    'record the blinatumomab_started of the cycle, or correct the cycle number of the stop'
             FROM ref('blinatumomab_cycles') WHERE started_on IS NULL"""),
    Check("blinatumomab_cycles_overlap", "warning",
          "A blinatumomab cycle starting before the previous cycle stopped (the cycle numbers or dates are wrong).",
          """SELECT patient_id, NULL, started_on,
                    'blinatumomab cycle ' || cycle || ' started on ' || started_on || ', before cycle ' || prev_cycle
                        || ' stopped on ' || prev_stopped_on,
                    'correct the dates or the cycle numbers'
             FROM (SELECT *, lag(cycle) OVER w AS prev_cycle, lag(stopped_on) OVER w AS prev_stopped_on
                   FROM ref('blinatumomab_cycles') WHERE started_on IS NOT NULL
                   WINDOW w AS (PARTITION BY patient_id ORDER BY started_on, cycle))
             WHERE started_on < prev_stopped_on"""),
)
