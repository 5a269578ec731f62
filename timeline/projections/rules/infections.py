"""Infections: one row per `infection` event, with its category, organism and site.

`c_difficile_enterocolitis`: the organism names Clostridioides (or Clostridium) difficile and the site is
gastrointestinal. The `complications` rows of infections read from here.
"""

from __future__ import annotations

from ..model import DAY, EVENT_ID, PATIENT_ID, Column, Model

INFECTIONS = Model(
    name="infections",
    grain="infection event",
    key=("event_id",),
    columns=(
        PATIENT_ID,
        Column("onset_on", "DATE", "date of the infection", not_null=True),
        DAY,
        Column("category", "VARCHAR", "bacterial, viral, fungal or parasitic", not_null=True,
               values=("bacterial", "viral", "fungal", "parasitic")),
        Column("organism", "VARCHAR", "the organism, as recorded"),
        Column("site", "VARCHAR", "bloodstream, gastrointestinal, respiratory, urinary, skin, cns or other"),
        Column("c_difficile_enterocolitis", "BOOLEAN", "C. difficile at a gastrointestinal site", not_null=True),
        EVENT_ID,
    ),
    sql="""
SELECT patient_id, occurred_on AS onset_on, day, payload->>'category' AS category,
       payload->>'organism' AS organism, payload->>'site' AS site,
       coalesce(regexp_matches(lower(payload->>'organism'), 'clostridi(oides|um) difficile')
                AND payload->>'site' = 'gastrointestinal', false) AS c_difficile_enterocolitis,
       event_id
FROM ref('events') WHERE type = 'infection'
""",
)

MODELS = (INFECTIONS,)
