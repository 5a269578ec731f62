"""Blood counts by day: one row per patient and day with a blood count or a transfusion.

Several counts on one day keep the lowest value of each measure (a day counts as recovered only if it
clearly is: the repeat manual differential below an automated count decides). Transfusions are flagged by
product. Engraftment reads its counts and platelet transfusions from here.
"""

from __future__ import annotations

from ..model import Column, Model

BLOOD_COUNTS = Model(
    name="blood_counts",
    grain="patient × day with a count or a transfusion",
    key=("patient_id", "occurred_on"),
    columns=(
        Column("patient_id", "VARCHAR", "pseudonymous patient id", not_null=True),
        Column("occurred_on", "DATE", "sample (or transfusion) date", not_null=True),
        Column("day", "INTEGER", "post-transplant day"),
        Column("anc_e9_per_l", "DOUBLE", "lowest absolute neutrophil count of the day, ×10⁹/L"),
        Column("platelets_e9_per_l", "DOUBLE", "lowest platelet count of the day, ×10⁹/L"),
        Column("wbc_e9_per_l", "DOUBLE", "lowest white cell count of the day, ×10⁹/L"),
        Column("hb_g_per_dl", "DOUBLE", "lowest haemoglobin of the day, g/dL"),
        Column("platelets_transfused", "BOOLEAN", "a platelet transfusion that day", not_null=True),
        Column("red_cells_transfused", "BOOLEAN", "a red-cell transfusion that day", not_null=True),
    ),
    sql="""
SELECT patient_id, occurred_on, any_value(day) AS day,
       min(TRY_CAST(x[1] AS DOUBLE)) AS anc_e9_per_l, min(TRY_CAST(x[2] AS DOUBLE)) AS platelets_e9_per_l,
       min(TRY_CAST(x[3] AS DOUBLE)) AS wbc_e9_per_l, min(TRY_CAST(x[4] AS DOUBLE)) AS hb_g_per_dl,
       coalesce(bool_or(type = 'transfusion' AND x[5] = 'platelets'), false) AS platelets_transfused,
       coalesce(bool_or(type = 'transfusion' AND x[5] = 'red_cells'), false) AS red_cells_transfused
FROM (
    SELECT patient_id, occurred_on, day, type,
           json_extract_string(payload, ['anc_e9_per_l', 'platelets_e9_per_l', 'wbc_e9_per_l', 'hb_g_per_dl',
                                         'product']) AS x
    FROM ref('events') WHERE type IN ('blood_count', 'transfusion')
)
GROUP BY patient_id, occurred_on
""",
)

MODELS = (BLOOD_COUNTS,)
