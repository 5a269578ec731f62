"""Time-to-event endpoints: one row per patient and endpoint.

- Origin (`endpoint_origin`): 'hsct' = day 0 (patients.hsct_on); 'diagnosis' = first `diagnosis`;
  'relapse' = first `relapse`; 'blinatumomab' = first `blinatumomab_started`. Only patients with an
  origin get rows. Censoring at last contact (patients.last_contact_on).
- Only events after the origin count (a death on the origin day counts). Events dated after the death
  are ignored. Same-day relapse and death: the relapse comes first (the death is not NRM).
- status 1 = event, 2 = competing event, 0 = censored; time_days = end_on - origin_on (no +1).

| endpoint | event | competing |
|---|---|---|
| os | death | - |
| lfs | relapse or death, first | - |
| efs | relapse, death or graft failure (engraftment.graft_failure_on), first | - |
| grfs | aGVHD III-IV, cGVHD needing systemic treatment (*), relapse, death, first | - |
| relapse | relapse | death without prior relapse |
| nrm | death without prior relapse | relapse |
| neutrophil_engraftment, platelet_engraftment | engraftment.neutrophil_on / platelet_on | death before it |
| agvhd_2_4, agvhd_3_4, cgvhd | complications rows of that name | death without it |
| cmv_reactivation, ebv_reactivation | first episode onset | death without it |

(*) dated at the chronic GVHD diagnosis, whether the treatment came before or after it; a chronic treatment
without a chronic diagnosis is no event (a data query).

A patient whose death is dated before the origin has no time to compute: they are left out of every
endpoint, and a data query (`left_out_of_endpoints`) says so; `timeline km`, `cif` and the report count them.

Hence os time >= lfs time, the lfs event is the first of the relapse and nrm events at the same time,
and relapse and nrm are never both events.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import PATIENT_ID, Column, Model
from ..parameters import check_choice, parameter
from ..references import cite

ORIGINS = ("hsct", "diagnosis", "relapse", "blinatumomab")
ENDPOINTS = ("os", "lfs", "efs", "grfs", "relapse", "nrm", "neutrophil_engraftment", "platelet_engraftment",
             "agvhd_2_4", "agvhd_3_4", "cgvhd", "cmv_reactivation", "ebv_reactivation")


@dataclass(frozen=True)
class Parameters:
    endpoint_origin: str = parameter(
        "hsct", "Time origin of every endpoint: 'hsct' (day 0), 'diagnosis' (first diagnosis), 'relapse' (first "
        "relapse) or 'blinatumomab' (first blinatumomab_started).", "", cite("KANATE-2019"))

    def __post_init__(self) -> None:
        check_choice("endpoint_origin", self.endpoint_origin, ORIGINS)


#: the origin of every endpoint, per patient: the one named by $endpoint_origin
ORIGIN = """
    SELECT patient_id, origin_on FROM (
        SELECT patient_id, hsct_on AS origin_on, 'hsct' AS origin FROM ref('patients') WHERE hsct_on IS NOT NULL
        UNION ALL
        SELECT patient_id, min(occurred_on), CASE type WHEN 'blinatumomab_started' THEN 'blinatumomab' ELSE type END
        FROM ref('events') WHERE type IN ('diagnosis', 'relapse', 'blinatumomab_started')
        GROUP BY patient_id, type
    )
    WHERE origin = $endpoint_origin"""


def after(expr: str, at_origin: bool = False) -> str:
    """An event date that counts: after the origin (or on it, `at_origin`) and not after the death (or the
    last contact)."""
    op = ">=" if at_origin else ">"
    return f"CASE WHEN {expr} {op} o.origin_on AND {expr} <= coalesce(pa.death_on, pa.last_contact_on) THEN {expr} END"


_NOT_APPLICABLE = ("CASE WHEN {lineage}_status = 'not_applicable' "
                   "THEN 'alive at last contact; not applicable (count never below threshold)' "
                   "ELSE 'alive at last contact' END")


def _single(name: str, event_col: str, event_desc: str,
            censored_desc: str = "'alive at last contact'") -> str:
    """Endpoint with one event kind and death without it as competing event."""
    return f"""
    SELECT patient_id, '{name}' AS endpoint, origin_on,
           CASE WHEN {event_col} IS NOT NULL THEN {event_col} WHEN death_on IS NOT NULL THEN death_on ELSE last_on END,
           CASE WHEN {event_col} IS NOT NULL THEN 1 WHEN death_on IS NOT NULL THEN 2 ELSE 0 END,
           CASE WHEN {event_col} IS NOT NULL THEN '{event_desc}'
                WHEN death_on IS NOT NULL THEN 'death without {event_desc}' ELSE {censored_desc} END
    FROM facts"""


ENDPOINTS_MODEL = Model(
    name="endpoints",
    grain="patient × endpoint",
    key=("patient_id", "endpoint"),
    columns=(
        PATIENT_ID,
        Column("endpoint", "VARCHAR", "the endpoint", not_null=True, values=ENDPOINTS),
        Column("origin_on", "DATE", "time origin (endpoint_origin)", not_null=True),
        Column("end_on", "DATE", "date of the event, competing event or censoring", not_null=True),
        Column("time_days", "INTEGER", "end_on - origin_on", not_null=True),
        Column("status", "INTEGER", "0 censored, 1 event, 2 competing event", not_null=True),
        Column("event_desc", "VARCHAR", "what ended the time, in words", not_null=True),
    ),
    sql=f"""
WITH origin AS ({ORIGIN}),
relapses AS (
    SELECT v.patient_id, min(v.occurred_on) AS relapse_on
    FROM ref('events') v JOIN origin o USING (patient_id)
    WHERE v.type = 'relapse' AND v.occurred_on > o.origin_on
    GROUP BY v.patient_id
),
comp AS (
    SELECT c.patient_id,
           min(c.onset_on) FILTER (WHERE c.complication = 'agvhd_2_4') AS agvhd_2_4_on,
           min(c.onset_on) FILTER (WHERE c.complication = 'agvhd_3_4') AS agvhd_3_4_on,
           min(c.onset_on) FILTER (WHERE c.complication = 'cgvhd') AS cgvhd_on,
           min(c.onset_on) FILTER (WHERE c.complication = 'cgvhd_systemic') AS cgvhd_systemic_on,
           min(c.onset_on) FILTER (WHERE c.complication = 'cmv_reactivation') AS cmv_on,
           min(c.onset_on) FILTER (WHERE c.complication = 'ebv_reactivation') AS ebv_on
    FROM ref('complications') c JOIN origin o USING (patient_id)
    WHERE c.onset_on > o.origin_on
    GROUP BY c.patient_id
),
facts AS (
    SELECT o.patient_id, o.origin_on, pa.last_contact_on AS last_on,
           CASE WHEN pa.death_on >= o.origin_on THEN pa.death_on END AS death_on,
           {after("r.relapse_on")} AS relapse_on,
           {after("e.graft_failure_on")} AS graft_failure_on,
           {after("e.neutrophil_on", at_origin=True)} AS neutrophil_on,
           {after("e.platelet_on", at_origin=True)} AS platelet_on,
           e.neutrophil_status, e.platelet_status,
           {after("c.agvhd_2_4_on")} AS agvhd_2_4_on,
           {after("c.agvhd_3_4_on")} AS agvhd_3_4_on,
           {after("c.cgvhd_on")} AS cgvhd_on,
           {after("c.cgvhd_systemic_on")} AS cgvhd_systemic_on,
           {after("c.cmv_on")} AS cmv_on,
           {after("c.ebv_on")} AS ebv_on
    FROM origin o
    JOIN ref('patients') pa USING (patient_id)
    LEFT JOIN relapses r USING (patient_id)
    LEFT JOIN ref('engraftment') e USING (patient_id)
    LEFT JOIN comp c USING (patient_id)
    WHERE o.origin_on IS NOT NULL AND pa.last_contact_on IS NOT NULL
      AND NOT coalesce(pa.death_on < o.origin_on, false)   -- no time to compute: left out (data query)
),
composite AS (   -- first of several events; on a tie the first listed names it (relapse before death)
    SELECT patient_id, name, arg_min(what, (on_, priority)) AS what, min(on_) AS on_
    FROM (
        SELECT patient_id, 'lfs' AS name, relapse_on AS on_, 1 AS priority, 'relapse' AS what FROM facts
        UNION ALL SELECT patient_id, 'lfs', death_on, 2, 'death' FROM facts
        UNION ALL SELECT patient_id, 'efs', relapse_on, 1, 'relapse' FROM facts
        UNION ALL SELECT patient_id, 'efs', graft_failure_on, 2, 'graft failure' FROM facts
        UNION ALL SELECT patient_id, 'efs', death_on, 3, 'death' FROM facts
        UNION ALL SELECT patient_id, 'grfs', relapse_on, 1, 'relapse' FROM facts
        UNION ALL SELECT patient_id, 'grfs', agvhd_3_4_on, 2, 'acute GVHD grade III-IV' FROM facts
        UNION ALL SELECT patient_id, 'grfs', cgvhd_systemic_on, 3, 'chronic GVHD needing systemic treatment' FROM facts
        UNION ALL SELECT patient_id, 'grfs', death_on, 4, 'death' FROM facts
    )
    WHERE on_ IS NOT NULL
    GROUP BY patient_id, name
),
rows_ AS (
    SELECT patient_id, 'os' AS endpoint, origin_on, coalesce(death_on, last_on) AS end_on,
           CASE WHEN death_on IS NOT NULL THEN 1 ELSE 0 END AS status,
           CASE WHEN death_on IS NOT NULL THEN 'death' ELSE 'alive at last contact' END AS event_desc
    FROM facts
    UNION ALL
    SELECT f.patient_id, n.name, f.origin_on, coalesce(c.on_, f.last_on),
           CASE WHEN c.on_ IS NOT NULL THEN 1 ELSE 0 END,
           coalesce(c.what, 'alive event-free at last contact')
    FROM facts f CROSS JOIN (VALUES ('lfs'), ('efs'), ('grfs')) n(name)
    LEFT JOIN composite c ON c.patient_id = f.patient_id AND c.name = n.name
    UNION ALL
    SELECT patient_id, n.name, origin_on, coalesce(relapse_on, death_on, last_on),   -- each the other's competing
           CASE WHEN relapse_on IS NOT NULL THEN n.on_relapse WHEN death_on IS NOT NULL THEN 3 - n.on_relapse
                ELSE 0 END,
           CASE WHEN relapse_on IS NOT NULL THEN 'relapse' WHEN death_on IS NOT NULL THEN 'death without relapse'
                ELSE 'alive without relapse at last contact' END
    FROM facts CROSS JOIN (VALUES ('relapse', 1), ('nrm', 2)) n(name, on_relapse)
    UNION ALL {_single("neutrophil_engraftment", "neutrophil_on", "neutrophil engraftment",
                       _NOT_APPLICABLE.format(lineage="neutrophil"))}
    UNION ALL {_single("platelet_engraftment", "platelet_on", "platelet engraftment",
                       _NOT_APPLICABLE.format(lineage="platelet"))}
    UNION ALL {_single("agvhd_2_4", "agvhd_2_4_on", "acute GVHD grade II-IV")}
    UNION ALL {_single("agvhd_3_4", "agvhd_3_4_on", "acute GVHD grade III-IV")}
    UNION ALL {_single("cgvhd", "cgvhd_on", "chronic GVHD")}
    UNION ALL {_single("cmv_reactivation", "cmv_on", "CMV reactivation")}
    UNION ALL {_single("ebv_reactivation", "ebv_on", "EBV reactivation")}
)
SELECT patient_id, endpoint, origin_on, end_on, CAST(end_on - origin_on AS INTEGER) AS time_days,
       CAST(status AS INTEGER) AS status, event_desc
FROM rows_
""",
)

MODELS = (ENDPOINTS_MODEL,)

LEFT_OUT = "left_out_of_endpoints"

CHECKS = (
    Check(LEFT_OUT, "error",
          "A patient left out of every endpoint: the death is dated before the endpoints' origin, so no time can "
          "be computed (a negative time would make every estimate of the cohort fail).",
          f"""SELECT p.patient_id, NULL AS event_id, p.death_on AS occurred_on,
                     'left out of every endpoint: the death on ' || p.death_on || ' is before the origin ('
                         || $endpoint_origin || ', ' || o.origin_on || ')' AS message,
                     'correct the date of the death or of the origin event' AS suggestion
              FROM ({ORIGIN}) o JOIN ref('patients') p USING (patient_id)
              WHERE p.death_on < o.origin_on"""),
)
