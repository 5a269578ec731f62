"""Status at last contact: one row per transplanted patient.

- `relapses_after_hsct`: relapse events after day 0.
- `disease_status`: the `disease_status` interval holding the last contact.
- `active_disease_after_hsct`: an active-disease interval overlaps the time from day 0 to the last contact.
- `continuous_complete_remission`: alive, no relapse after day 0, no active disease after day 0, and in
  remission (MRD-positive or negative) at the last contact.
- `active_gvhd`: the kinds of GVHD with an episode left unresolved (`gvhd_episodes`), for a living patient.
"""

from __future__ import annotations

from ..model import PATIENT_ID, Column, Model
from .disease_status import STATUSES

STATUS_AT_LAST_CONTACT = Model(
    name="status_at_last_contact",
    grain="transplanted patient",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("last_contact_on", "DATE", "last contact (patients.last_contact_on)", not_null=True),
        Column("relapses_after_hsct", "BIGINT", "relapse events after day 0", not_null=True),
        Column("disease_status", "VARCHAR", "disease status at the last contact", values=STATUSES),
        Column("active_disease_after_hsct", "BOOLEAN", "active disease between day 0 and the last contact",
               not_null=True),
        Column("continuous_complete_remission", "BOOLEAN", "alive in remission since day 0", not_null=True),
        Column("active_gvhd", "VARCHAR", "kinds of GVHD active at the last contact of a living patient"),
    ),
    sql="""
WITH pt AS (
    SELECT patient_id, hsct_on, last_contact_on, vital_status FROM ref('patients')
    WHERE hsct_on IS NOT NULL AND last_contact_on IS NOT NULL
),
relapse_after AS (
    SELECT patient_id, count(*) AS n FROM ref('events') WHERE type = 'relapse' AND day > 0 GROUP BY patient_id
),
active_disease AS (
    SELECT DISTINCT d.patient_id FROM ref('disease_status') d JOIN pt USING (patient_id)
    WHERE d.status = 'active_disease' AND d.from_on <= pt.last_contact_on
      AND (d.to_on IS NULL OR d.to_on > pt.hsct_on)
),
status_last AS (
    SELECT d.patient_id, arg_max(d.status, d.from_on) AS status
    FROM ref('disease_status') d JOIN pt USING (patient_id)
    WHERE d.from_on <= pt.last_contact_on AND (d.to_on IS NULL OR d.to_on > pt.last_contact_on)
    GROUP BY d.patient_id
),
gvhd_active AS (
    SELECT patient_id, string_agg(DISTINCT kind, ', ' ORDER BY kind) AS kinds
    FROM ref('gvhd_episodes') WHERE resolved_on IS NULL GROUP BY patient_id
)
SELECT pt.patient_id, pt.last_contact_on,
       coalesce(relapse_after.n, 0) AS relapses_after_hsct,
       status_last.status AS disease_status,
       active_disease.patient_id IS NOT NULL AS active_disease_after_hsct,
       (pt.vital_status = 'alive' AND coalesce(relapse_after.n, 0) = 0 AND active_disease.patient_id IS NULL
        AND coalesce(status_last.status LIKE 'remission%', false)) AS continuous_complete_remission,
       CASE WHEN pt.vital_status = 'alive' THEN gvhd_active.kinds END AS active_gvhd
FROM pt
LEFT JOIN relapse_after USING (patient_id)
LEFT JOIN active_disease USING (patient_id)
LEFT JOIN status_last USING (patient_id)
LEFT JOIN gvhd_active USING (patient_id)
""",
)

MODELS = (STATUS_AT_LAST_CONTACT,)
