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

from ..model import Column, Model

PATIENTS = Model(
    name="patients",
    grain="patient",
    key=("patient_id",),
    columns=(
        Column("patient_id", "VARCHAR", "pseudonymous patient id", not_null=True),
        Column("sex", "VARCHAR", "from the latest patient_registered", values=("female", "male", "other", "unknown")),
        Column("birth_date", "DATE", "from the latest patient_registered"),
        Column("disease", "VARCHAR", "from the latest diagnosis"),
        Column("hsct_on", "DATE", "day 0 of the index transplant (NULL: not transplanted)"),
        Column("age_at_hsct_years", "DOUBLE", "(hsct_on - birth_date) / 365.25"),
        Column("donor", "VARCHAR", "donor of the index transplant's first infusion"),
        Column("source", "VARCHAR", "graft source of the index transplant's first infusion"),
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
    ),
    sql="""
WITH per_patient AS (   -- one pass over every event: who, last event, day 0
    SELECT patient_id, max(occurred_on) AS last_event_on,
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
    SELECT patient_id, r->>'sex' AS sex, TRY_CAST(r->>'birth_date' AS DATE) AS birth_date
    FROM (SELECT patient_id, arg_max(payload, (occurred_on, recorded_at, event_id)) AS r FROM ev WHERE type = 'patient_registered'
          GROUP BY patient_id)
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
    SELECT patient_id, r->>'donor' AS donor, r->>'source' AS source, r->>'hla_match' AS hla_match
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
seen AS (SELECT patient_id, last_event_on FROM per_patient),
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
       graft.donor, graft.source,
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
       cond.conditioning_on, cond.conditioning_day
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
