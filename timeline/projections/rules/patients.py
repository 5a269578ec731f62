"""Patients: one row per patient with registration, disease, transplant and outcome facts.

- A patient is anyone with a visible event. A fact recorded twice (registration, diagnosis, conditioning,
  death): the latest one wins, by (occurred_on, recorded_at, event_id).
- `hsct_on` = day 0 of the index transplant (rule in `day_numbering`); transplant facts (donor, graft
  source, HLA match) come from its first infusion; `cd34_e6_per_kg` is the sum over the infusions of the
  index transplant (a split graft's total dose).
- The index transplant's episode runs from the previous transplant's day 0 (exclusive) to the next one's
  (exclusive). Conditioning = the latest `conditioning_started` of the episode on or before day 0; GVHD
  prophylaxis = the distinct agents of every `gvhd_prophylaxis_started` of the episode (PTCy starts after
  day 0), sorted, joined with '+'. Without a transplant: all of the patient's events.
- Diagnosis (disease, date, risk group, genetics) = the latest `diagnosis`: a later diagnosis (a lineage
  switch, a secondary leukaemia) replaces the earlier one.
- `relapse_count_before_hsct` counts `relapse` events before day 0 (all of them without a transplant);
  `first_relapse_before_hsct_on` is the first, `relapse_sites_before_hsct` their sites in date order.
- Last contact = the latest `occurred_on` among the visible events (any event of a living patient shows
  they were alive); for a dead patient the death date. `vital_status` is 'dead' iff a `death` is visible.
- `full_donor_chimerism_day` = day of the first full-donor test after day 0 (any compartment);
  `full_donor_chimerism_sustained` = every test on or after that day is full donor (same-day tests in
  other compartments included, since the order within a day is unknown); NULL without a full-donor test.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import PATIENT_ID, Column, Model
from ..parameters import check_number, parameter


@dataclass(frozen=True)
class Parameters:
    plausible_age_at_hsct_max_years: float = parameter(
        80.0, "An age at transplant above this is queried as implausible (a birth date typed wrong).", "years",
        "a data-quality threshold of this engine (not a clinical definition)")

    def __post_init__(self) -> None:
        check_number("plausible_age_at_hsct_max_years", self.plausible_age_at_hsct_max_years, 0, 150)

PATIENTS = Model(
    name="patients",
    grain="patient",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("sex", "VARCHAR", "from the latest patient_registered", values=("female", "male", "other", "unknown")),
        Column("birth_date", "DATE", "from the latest patient_registered"),
        Column("disease", "VARCHAR", "from the latest diagnosis"),
        Column("hsct_on", "DATE", "day 0 of the index transplant (NULL: not transplanted)"),
        Column("age_at_hsct_years", "DOUBLE", "(hsct_on - birth_date) / 365.25"),
        Column("donor", "VARCHAR", "donor of the index transplant's first infusion"),
        Column("graft_source", "VARCHAR", "graft source of the index transplant's first infusion",
               values=("bone_marrow", "peripheral_blood", "cord_blood")),
        Column("cd34_e6_per_kg", "DOUBLE", "CD34+ cells ×10⁶/kg, summed over the index transplant's infusions"),
        Column("conditioning_intensity", "VARCHAR", "of the latest conditioning on or before day 0 in the episode"),
        Column("last_contact_on", "DATE", "latest clinical date among the visible events; the death date if dead"),
        Column("vital_status", "VARCHAR", "alive or dead (a death event is visible)", not_null=True,
               values=("alive", "dead")),
        Column("death_on", "DATE", "date of the (latest) death event"),
        Column("death_cause", "VARCHAR", "cause of the (latest) death event"),
        Column("full_donor_chimerism_day", "INTEGER", "day of the first full-donor test after day 0"),
        Column("full_donor_chimerism_sustained", "BOOLEAN",
               "every test on or after that day, in any compartment, is full donor"),
        Column("hla_match", "VARCHAR", "HLA match of the index transplant's first infusion (e.g. 10/10)"),
        Column("conditioning_regimen", "VARCHAR", "regimen of that conditioning"),
        Column("tbi_gy", "DOUBLE", "total body irradiation dose of that conditioning, Gy"),
        Column("serotherapy", "VARCHAR", "serotherapy of that conditioning (atg, alemtuzumab, none)"),
        Column("gvhd_prophylaxis", "VARCHAR", "distinct agents of the episode's GVHD prophylaxis, sorted, joined with +"),
        Column("relapse_count_before_hsct", "BIGINT", "relapse events before day 0 (all, without a transplant)",
               not_null=True),
        Column("diagnosis_on", "DATE", "date of the latest diagnosis"),
        Column("risk_group", "VARCHAR", "risk group of the latest diagnosis"),
        Column("genetics", "VARCHAR", "genetics of the latest diagnosis, joined with ', '"),
        Column("first_relapse_before_hsct_on", "DATE", "date of the first relapse before day 0"),
        Column("relapse_sites_before_hsct", "VARCHAR", "sites of the relapses before day 0, in date order"),
        Column("months_diagnosis_to_first_relapse", "INTEGER",
               "whole months from diagnosis_on to first_relapse_before_hsct_on"),
        Column("conditioning_on", "DATE", "start date of the conditioning (as above)"),
        Column("conditioning_day", "INTEGER", "its post-transplant day"),
        Column("registered_on", "DATE", "date of the latest patient_registered"),
        Column("first_event_on", "DATE", "date of the patient's first visible event", not_null=True),
        Column("last_event_on", "DATE", "date of the patient's latest visible event (after a death: not contact)",
               not_null=True),
    ),
    sql="""
WITH per_patient AS (   -- one pass over every event: who, last event, day 0
    SELECT patient_id, max(occurred_on) AS last_event_on, min(occurred_on) AS first_event_on,
           any_value(occurred_on - day) FILTER (WHERE day IS NOT NULL) AS hsct_on
    FROM ref('events') WHERE type NOT IN ('event_corrected', 'event_retracted') GROUP BY patient_id
),
ids AS (SELECT patient_id FROM per_patient),
ev AS MATERIALIZED (   -- the few events read below, picked out once
    SELECT * FROM ref('events')
    WHERE type IN ('patient_registered', 'diagnosis', 'stem_cell_infusion', 'conditioning_started',
                   'gvhd_prophylaxis_started', 'relapse', 'death')
),
reg AS (
    SELECT patient_id, r->>'sex' AS sex, TRY_CAST(r->>'birth_date' AS DATE) AS birth_date, registered_on
    FROM (SELECT patient_id, arg_max(payload, (occurred_on, recorded_at, event_id)) AS r, max(occurred_on) AS registered_on
          FROM ev WHERE type = 'patient_registered' GROUP BY patient_id)
),
dx AS (
    SELECT patient_id, r->>'disease' AS disease, diagnosis_on, r->>'risk_group' AS risk_group,
           array_to_string(TRY_CAST(r->'genetics' AS VARCHAR[]), ', ') AS genetics
    FROM (SELECT patient_id, arg_max(payload, (occurred_on, recorded_at, event_id)) AS r, max(occurred_on) AS diagnosis_on
          FROM ev WHERE type = 'diagnosis' GROUP BY patient_id)
),
hsct AS (SELECT patient_id, hsct_on FROM per_patient WHERE hsct_on IS NOT NULL),
inf AS (
    SELECT *, coalesce(TRY_CAST(payload->>'transplant_number' AS INTEGER), 1) AS transplant_number
    FROM ev WHERE type = 'stem_cell_infusion' AND day IS NOT NULL
),
tx AS (SELECT patient_id, transplant_number, min(day) AS first_day FROM inf GROUP BY ALL),
idx AS (SELECT patient_id, min(transplant_number) AS transplant_number FROM tx WHERE first_day = 0 GROUP BY ALL),
episode AS (
    SELECT i.patient_id, i.transplant_number,
           max(t.first_day) FILTER (WHERE t.first_day < 0) AS prev_day,
           min(t.first_day) FILTER (WHERE t.first_day > 0) AS next_day
    FROM idx i JOIN tx t USING (patient_id) GROUP BY ALL
),
graft AS (
    SELECT patient_id, r->>'donor' AS donor, r->>'graft_source' AS graft_source, r->>'hla_match' AS hla_match
    FROM (SELECT patient_id, arg_min(payload, (occurred_on, recorded_at, event_id)) AS r
          FROM inf JOIN idx USING (patient_id, transplant_number) GROUP BY patient_id)
),
dose AS (
    SELECT patient_id, sum(TRY_CAST(payload->>'cd34_e6_per_kg' AS DOUBLE)) AS cd34_e6_per_kg
    FROM inf JOIN idx USING (patient_id, transplant_number) GROUP BY patient_id
),
in_episode AS (
    SELECT e.* FROM ev e LEFT JOIN episode w USING (patient_id)
    WHERE e.day IS NULL
       OR ((w.prev_day IS NULL OR e.day > w.prev_day) AND (w.next_day IS NULL OR e.day < w.next_day))
),
cond AS (
    SELECT patient_id, r->>'intensity' AS conditioning_intensity, r->>'regimen' AS conditioning_regimen,
           TRY_CAST(r->>'tbi_gy' AS DOUBLE) AS tbi_gy, r->>'serotherapy' AS serotherapy,
           conditioning_on, conditioning_day
    FROM (SELECT patient_id, arg_max(payload, (occurred_on, recorded_at, event_id)) AS r, max(occurred_on) AS conditioning_on,
                 CAST(arg_max(day, (occurred_on, recorded_at, event_id)) AS INTEGER) AS conditioning_day
          FROM in_episode WHERE type = 'conditioning_started' AND (day IS NULL OR day <= 0) GROUP BY patient_id)
),
proph AS (
    SELECT patient_id,
           array_to_string(list_sort(list_distinct(flatten(list(
               coalesce(TRY_CAST(payload->'agents' AS VARCHAR[]), []))))), '+') AS gvhd_prophylaxis
    FROM in_episode WHERE type = 'gvhd_prophylaxis_started' GROUP BY patient_id
),
relapses AS (
    SELECT patient_id, count(*) AS relapse_count_before_hsct, min(occurred_on) AS first_relapse_before_hsct_on,
           string_agg(payload->>'site', ', ' ORDER BY occurred_on, payload->>'site') AS relapse_sites_before_hsct
    FROM ev WHERE type = 'relapse' AND (day IS NULL OR day < 0) GROUP BY patient_id
),
death AS (
    SELECT patient_id, max(occurred_on) AS death_on, arg_max(payload, (occurred_on, recorded_at, event_id))->>'cause' AS death_cause
    FROM ev WHERE type = 'death' GROUP BY patient_id
),
seen AS (SELECT patient_id, first_event_on, last_event_on FROM per_patient),
fdc AS (
    SELECT patient_id, min(day) AS full_donor_chimerism_day
    FROM ref('chimerism') WHERE category = 'full_donor' AND day > 0 GROUP BY patient_id
),
fdc_sustained AS (
    SELECT c.patient_id, bool_and(c.category = 'full_donor') AS full_donor_chimerism_sustained
    FROM ref('chimerism') c JOIN fdc f ON c.patient_id = f.patient_id AND c.day >= f.full_donor_chimerism_day
    GROUP BY c.patient_id
)
SELECT ids.patient_id,
       reg.sex, reg.birth_date,
       dx.disease,
       hsct.hsct_on,
       CAST(hsct.hsct_on - reg.birth_date AS DOUBLE) / 365.25 AS age_at_hsct_years,
       graft.donor, graft.graft_source,
       dose.cd34_e6_per_kg,
       cond.conditioning_intensity,
       coalesce(death.death_on, seen.last_event_on) AS last_contact_on,
       CASE WHEN death.death_on IS NULL THEN 'alive' ELSE 'dead' END AS vital_status,
       death.death_on, death.death_cause,
       fdc.full_donor_chimerism_day,
       fdc_sustained.full_donor_chimerism_sustained,
       graft.hla_match,
       cond.conditioning_regimen, cond.tbi_gy, cond.serotherapy,
       proph.gvhd_prophylaxis,
       coalesce(relapses.relapse_count_before_hsct, 0) AS relapse_count_before_hsct,
       dx.diagnosis_on,
       dx.risk_group, dx.genetics,
       relapses.first_relapse_before_hsct_on, relapses.relapse_sites_before_hsct,
       CAST(date_diff('month', dx.diagnosis_on, relapses.first_relapse_before_hsct_on) AS INTEGER)
           AS months_diagnosis_to_first_relapse,
       cond.conditioning_on, cond.conditioning_day,
       reg.registered_on, seen.first_event_on, seen.last_event_on
FROM ids
LEFT JOIN reg USING (patient_id)
LEFT JOIN dx USING (patient_id)
LEFT JOIN hsct USING (patient_id)
LEFT JOIN graft USING (patient_id)
LEFT JOIN dose USING (patient_id)
LEFT JOIN cond USING (patient_id)
LEFT JOIN proph USING (patient_id)
LEFT JOIN relapses USING (patient_id)
LEFT JOIN death USING (patient_id)
LEFT JOIN seen USING (patient_id)
LEFT JOIN fdc USING (patient_id)
LEFT JOIN fdc_sustained USING (patient_id)
""",
)

MODELS = (PATIENTS,)

_ONE_OF_A_KIND = ("patient_registered", "diagnosis", "death")
_PROVENANCE = '{"source": null, "source_record_id": null, "recorded_by": null, "note": null}'

CHECKS = (
    Check("death_before_hsct", "error",
          "A death dated before the transplant's day 0: the course is impossible, and the patient is left out of "
          "every endpoint until it is resolved.",
          """SELECT patient_id, NULL AS event_id, death_on AS occurred_on,
                    'death on ' || death_on || ' is before the transplant (day 0 ' || hsct_on || ')' AS message,
                    'correct the date of the death or of the infusion' AS suggestion
             FROM ref('patients') WHERE death_on < hsct_on"""),
    Check("event_after_death", "error",
          "An event dated after the death: it is never taken as contact (last contact is the death date) and no "
          "rule counts it.",
          """SELECT e.patient_id, e.event_id, e.occurred_on,
                    e.type || ' on ' || e.occurred_on || ' is after the death on ' || p.death_on AS message,
                    'correct the date of this event or of the death, or retract the one entered in error'
             FROM ref('events') e JOIN ref('patients') p USING (patient_id)
             WHERE p.last_event_on > p.death_on AND e.occurred_on > p.death_on"""),
    Check("birth_after_registration", "error",
          "A birth date after the registration it is recorded with (the age is negative).",
          """SELECT patient_id, event_id, occurred_on,
                    'birth date ' || (payload->>'birth_date') || ' is after the registration on ' || occurred_on,
                    'correct the birth date'
             FROM ref('events')
             WHERE type = 'patient_registered' AND TRY_CAST(payload->>'birth_date' AS DATE) > occurred_on"""),
    Check("birth_after_event", "error",
          "A birth date after one of the patient's events (other than a registration already queried).",
          """SELECT patient_id, NULL, first_event_on,
                    'birth date ' || birth_date || ' is after the first event on ' || first_event_on,
                    'correct the birth date or the date of the first event'
             FROM ref('patients')
             WHERE birth_date > first_event_on AND NOT coalesce(birth_date > registered_on, false)"""),
    Check("implausible_age_at_hsct", "warning",
          "An age at transplant above `plausible_age_at_hsct_max_years`: a birth date typed wrong?",
          """SELECT patient_id, NULL, hsct_on,
                    'age at transplant ' || round(age_at_hsct_years, 1) || ' years (born ' || birth_date || ')',
                    'check the birth date'
             FROM ref('patients') WHERE age_at_hsct_years > $plausible_age_at_hsct_max_years"""),
    Check("registered_not_transplanted", "warning",
          "A registered patient without a stem-cell infusion: outside the transplanted cohort (Table 1, endpoints) "
          "until one is recorded.",
          """SELECT patient_id, NULL, registered_on, 'registered on ' || registered_on || ' but never transplanted',
                    'record the stem_cell_infusion, or confirm the patient was not transplanted'
             FROM ref('patients') WHERE registered_on IS NOT NULL AND hsct_on IS NULL"""),
    Check("transplanted_without_registration", "warning",
          "A transplanted patient without a registration: age and sex are unknown.",
          """SELECT patient_id, NULL, hsct_on, 'transplanted on ' || hsct_on || ' but never registered',
                    'record patient_registered with the birth date and sex'
             FROM ref('patients') WHERE hsct_on IS NOT NULL AND registered_on IS NULL"""),
    Check("transplanted_without_diagnosis", "warning",
          "A transplanted patient without a diagnosis: the disease is unknown.",
          """SELECT patient_id, NULL, hsct_on, 'transplanted on ' || hsct_on || ' without a diagnosis',
                    'record the diagnosis'
             FROM ref('patients') WHERE hsct_on IS NOT NULL AND disease IS NULL"""),
    Check("last_contact_before_hsct", "error",
          "A last contact before the transplant's day 0 (with last contact capped at the death date: a death "
          "before day 0): no follow-up time can be computed.",
          """SELECT patient_id, NULL, last_contact_on,
                    'last contact on ' || last_contact_on || ' is before the transplant on ' || hsct_on,
                    'correct the dates of the death or of the infusion'
             FROM ref('patients') WHERE last_contact_on < hsct_on"""),
    Check("several_records_of_one_fact", "warning",
          "A registration, diagnosis or death recorded more than once with different content: the rule takes the "
          "latest (by date, then recording), which may not be the one meant.",
          f"""WITH several AS (  -- first the few records that are not alone (their contents compared next)
                  SELECT * FROM ref('events') WHERE type IN {_ONE_OF_A_KIND}
                  QUALIFY count(*) OVER (PARTITION BY patient_id, type) > 1)
              SELECT patient_id, NULL, max(occurred_on),
                     count(DISTINCT CAST(json_merge_patch(payload, '{_PROVENANCE}') AS VARCHAR)) || ' different '
                         || type || ' records; the latest, of ' || max(occurred_on) || ', is used',
                     'retract the records entered in error, or correct them'
              FROM several GROUP BY patient_id, type
              HAVING count(DISTINCT CAST(json_merge_patch(payload, '{_PROVENANCE}') AS VARCHAR)) > 1"""),
    Check("same_day_duplicate", "warning",
          "Two events of one type on one day with different values where one is expected (an infusion, a "
          "conditioning, a follow-up, a relapse): a duplicate entry? Two infusions on one day add their CD34 doses.",
          f"""WITH same_day AS (  -- first the few events not alone on their day (their contents compared next)
                  SELECT * FROM ref('events')
                  WHERE type IN ('stem_cell_infusion', 'conditioning_started', 'follow_up', 'relapse')
                  QUALIFY count(*) OVER (PARTITION BY patient_id, type, occurred_on) > 1)
              SELECT patient_id, NULL, occurred_on,
                     count(*) || ' ' || type || ' events on ' || occurred_on || ' with different values',
                     'retract the duplicate (timeline retract ID) or correct it'
              FROM same_day GROUP BY patient_id, type, occurred_on
              HAVING count(DISTINCT CAST(json_merge_patch(payload, '{_PROVENANCE}') AS VARCHAR)) > 1"""),
)
