"""Blood counts by day: one row per patient and day with a blood count or a transfusion.

Several counts on one day keep the lowest value of each measure (a day counts as recovered only if it
clearly is: the repeat manual differential below an automated count decides). Transfusions are flagged by
product. Engraftment reads its counts and platelet transfusions from here.
"""

from __future__ import annotations

from ..model import DAY, PATIENT_ID, Column, Model
from ..checks import Check

BLOOD_COUNTS = Model(
    name="blood_counts",
    grain="patient × day with a count or a transfusion",
    key=("patient_id", "occurred_on"),
    columns=(
        PATIENT_ID,
        Column("occurred_on", "DATE", "sample (or transfusion) date", not_null=True),
        DAY,
        Column("anc_e9_per_l", "DOUBLE", "lowest absolute neutrophil count of the day, ×10⁹/L"),
        Column("platelets_e9_per_l", "DOUBLE", "lowest platelet count of the day, ×10⁹/L"),
        Column("wbc_e9_per_l", "DOUBLE", "lowest white cell count of the day, ×10⁹/L"),
        Column("hb_g_per_dl", "DOUBLE", "lowest haemoglobin of the day, g/dL"),
        Column("platelets_transfused", "BOOLEAN", "a platelet transfusion that day", not_null=True),
        Column("red_cells_transfused", "BOOLEAN", "a red-cell transfusion that day", not_null=True),
    ),
    sql="""
SELECT patient_id, occurred_on, any_value(day) AS day,
       min(x.anc_e9_per_l) AS anc_e9_per_l, min(x.platelets_e9_per_l) AS platelets_e9_per_l,
       min(x.wbc_e9_per_l) AS wbc_e9_per_l, min(x.hb_g_per_dl) AS hb_g_per_dl,
       coalesce(bool_or(x.product = 'platelets'), false) AS platelets_transfused,
       coalesce(bool_or(x.product = 'red_cells'), false) AS red_cells_transfused
FROM (
    SELECT patient_id, occurred_on, day,
           from_json(payload, '{"anc_e9_per_l": "DOUBLE", "platelets_e9_per_l": "DOUBLE", "wbc_e9_per_l": "DOUBLE",
                                "hb_g_per_dl": "DOUBLE", "product": "VARCHAR"}') AS x   -- one typed parse
    FROM ref('events') WHERE type IN ('blood_count', 'transfusion')
)
GROUP BY patient_id, occurred_on
""",
)

MODELS = (BLOOD_COUNTS,)

CHECKS = (
    Check("counts_before_day0_unused", "warning",
          "Blood counts dated before day 0: no rule uses them (engraftment counts from day 1). One finding per "
          "patient, so that counts dated against the wrong transplant, or before an infusion that is missing, show.",
          """SELECT patient_id, NULL AS event_id, min(occurred_on) AS occurred_on,
                    count(*) || ' blood count day(s) before day 0 (from ' || min(occurred_on) || ' to '
                        || max(occurred_on) || ') are used by no rule' AS message,
                    'none if they are pre-transplant counts; else check the dates or the infusion' AS suggestion
             FROM ref('blood_counts')
             WHERE day < 0 AND (anc_e9_per_l IS NOT NULL OR platelets_e9_per_l IS NOT NULL)
             GROUP BY patient_id"""),
)
