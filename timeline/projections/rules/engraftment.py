"""Engraftment: neutrophil and platelet engraftment and graft failure, one row per transplanted patient.

- One value per lineage per day (the lowest: `blood_counts`). Only values after day 0 count, and only once
  the lineage is evaluable (CIBMTR): after a value below the threshold or, for platelets, after a platelet
  transfusion on or after day 0. The run starts after that (the nadir).
- Neutrophil: the first of `anc_run_length` consecutive values (on different days) each at or above the
  threshold; a value below it in between resets the run. A lineage with counts after day 0 that is never
  evaluable (the ANC never falls below the threshold; the platelets never do and are never transfused) is
  `not_applicable` (CIBMTR "never neutropenic").
- Platelet: the same, over eligible values only: value date - date of the last platelet `transfusion` on or
  before it ≥ `platelet_transfusion_free_days` (CIBMTR worked example: transfused day 0, day 7 eligible).
  Ineligible values are skipped (they neither count nor reset); a platelet transfusion dated after one
  eligible value of a run and up to the next resets the run. The nadir is found on all values (the CIBMTR
  example's day-4 low is itself ineligible). `platelet_50_*` is the same rule at
  `platelet_second_threshold_e9_per_l`.
- A recorded `engraftment` event counts only when the patient has no count of that lineage after day 0
  (basis 'recorded'); otherwise the basis is 'counts' (also while not yet engrafted) and the recorded one is
  set aside, with a data query. A recorded engraftment on day 0 means the count never fell: engrafted on
  day 0 (time 0 in the endpoint), with a data query; one before day 0 is ignored, with a data query.
- Graft failure: 'primary' if derived (neutrophil data exist, no neutrophil engraftment by day
  `primary_graft_failure_day` (`..._cord` for cord blood), last contact on or after that day) or a
  `graft_failure` of kind primary not after neutrophil engraftment; else 'secondary' for a `graft_failure`
  after neutrophil engraftment or diagnosed as secondary.

Gaps and islands, in one window pass over the day values and the platelet transfusions: each value gets
the last transfusion on or before it (a transfusion sorts before a value of its day) and a running count of
low values, which numbers the islands. A run is an island's eligible values since the same last
transfusion; an island with enough values at or above the threshold engrafts on its first such value.
(Counting every low value, eligible or not, splits the same runs as counting the eligible ones only: after
a given transfusion the ineligible values all come before the eligible ones.) Values dated after a run is
complete never change it, so an engraftment day does not move when later counts arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import PATIENT_ID, Column, Model
from ..parameters import check_int, check_number, parameter
from ..references import cite

_ANC = cite("CIBMTR-FIM", "SUREDA-2024")
_PLT = cite("CIBMTR-FIM", "SUREDA-2024")
_GF = cite("SUREDA-2024", "KHARFAN-DABAJA-2021")


@dataclass(frozen=True)
class Parameters:
    anc_threshold_e9_per_l: float = parameter(
        0.5, "ANC a value must reach (≥) to count towards neutrophil engraftment.", "×10⁹/L",
        _ANC + " (EBMT Handbook variant: > 0.5 " + cite("EBMT-HANDBOOK-2019") + ")")
    anc_run_length: int = parameter(
        3, "Number of consecutive ANC values on different days at or above the threshold.", "values",
        _ANC + " (Spitzer's engraftment-syndrome variant: 2)")
    platelet_threshold_e9_per_l: float = parameter(
        20.0, "Platelets for platelet engraftment (columns platelet_on, platelet_day).", "×10⁹/L", _PLT)
    platelet_second_threshold_e9_per_l: float = parameter(
        50.0, "Platelets for the second milestone (columns platelet_50_on, platelet_50_day).", "×10⁹/L",
        _PLT + " (Form 2100 collects ≥ 20 and ≥ 50)")
    platelet_run_length: int = parameter(
        3, "Number of consecutive eligible platelet values on different days at or above the threshold.",
        "values", _PLT)
    platelet_transfusion_free_days: int = parameter(
        7, "A platelet value is eligible only if value date - last platelet transfusion date ≥ this.", "days",
        _PLT + " (worked example: transfused day 0, day 7 eligible)")
    primary_graft_failure_day: int = parameter(
        30, "Primary graft failure if no neutrophil engraftment by this day (bone marrow, peripheral blood).",
        "day", _GF + " (EBMT Handbook variant: 28 " + cite("EBMT-HANDBOOK-2019") + ")")
    primary_graft_failure_day_cord: int = parameter(
        42, "Primary graft failure if no neutrophil engraftment by this day (cord blood).", "day", _GF)

    def __post_init__(self) -> None:
        for name in ("anc_threshold_e9_per_l", "platelet_threshold_e9_per_l", "platelet_second_threshold_e9_per_l"):
            check_number(name, getattr(self, name), low=0)
        check_int("anc_run_length", self.anc_run_length, low=1)
        check_int("platelet_run_length", self.platelet_run_length, low=1)
        for name in ("platelet_transfusion_free_days", "primary_graft_failure_day", "primary_graft_failure_day_cord"):
            check_int(name, getattr(self, name), low=0)


def _run_start_sql(value: str, ok: str, low: str, island: str, last_tf: str, threshold: str,
                   run_length: str) -> str:
    """First day (`run_on`) of the first run of `run_length` values at or above `threshold` (parameter
    names) after the nadir, per patient, from `days` (one row per patient-day, running counts computed in
    one window pass): `value` is the day's value; `ok` says it may count; `low` is the number of low values
    before the day (> 0: the day is after the nadir); `island` numbers the runs (the running count of low
    values up to the day); `last_tf` is the last platelet transfusion on or before the day (a new one
    starts a new run; NULL for neutrophils)."""
    return f"""
    SELECT patient_id, min(run_on) AS run_on
    FROM (
        SELECT patient_id, min(on_) FILTER (WHERE v >= {threshold}) AS run_on,
               count(*) FILTER (WHERE v >= {threshold}) AS n_high
        FROM (SELECT patient_id, on_, {ok} AS ok, {low} AS low, {island} AS island, {last_tf} AS last_tf,
                     {value} AS v FROM days)
        WHERE ok AND low > 0
        GROUP BY patient_id, island, last_tf
    )
    WHERE n_high >= {run_length}
    GROUP BY patient_id"""


LINEAGE_STATUSES = ("engrafted", "not_applicable", "not_yet")
BASES = ("counts", "recorded")

ENGRAFTMENT = Model(
    name="engraftment",
    grain="transplanted patient",
    key=("patient_id",),
    columns=(
        PATIENT_ID,
        Column("hsct_on", "DATE", "day 0", not_null=True),
        Column("neutrophil_on", "DATE", "neutrophil engraftment date"),
        Column("neutrophil_day", "INTEGER", "neutrophil engraftment day"),
        Column("neutrophil_basis", "VARCHAR", "counts, or recorded (no ANC after day 0)", values=BASES),
        Column("neutrophil_status", "VARCHAR", "engrafted, not_applicable (never below the threshold) or not_yet",
               not_null=True, values=LINEAGE_STATUSES),
        Column("platelet_on", "DATE", "platelet engraftment date"),
        Column("platelet_day", "INTEGER", "platelet engraftment day"),
        Column("platelet_basis", "VARCHAR", "counts, or recorded (no platelet count after day 0)", values=BASES),
        Column("platelet_status", "VARCHAR", "engrafted, not_applicable or not_yet", not_null=True,
               values=LINEAGE_STATUSES),
        Column("platelet_50_on", "DATE", "date of the second platelet milestone"),
        Column("platelet_50_day", "INTEGER", "day of the second platelet milestone"),
        Column("graft_failure", "VARCHAR", "primary or secondary", values=("primary", "secondary")),
        Column("graft_failure_on", "DATE", "graft failure date"),
        Column("graft_failure_day", "INTEGER", "graft failure day"),
        Column("graft_failure_basis", "VARCHAR", "derived (no engraftment by the cut-off day) or recorded",
               values=("derived", "recorded")),
    ),
    sql=f"""
WITH tx AS (
    SELECT patient_id, hsct_on, last_contact_on, death_on,
           CASE WHEN coalesce(graft_source = 'cord_blood' OR donor = 'cord_blood', false)
                THEN $primary_graft_failure_day_cord ELSE $primary_graft_failure_day END AS gf_day
    FROM ref('patients') WHERE hsct_on IS NOT NULL   -- every patient has events (patients are made from them)
),
ev AS (   -- recorded engraftment on or after day 0, graft failure after day 0
    SELECT v.patient_id, v.type, v.occurred_on, v.payload, tx.hsct_on
    FROM ref('events') v JOIN tx USING (patient_id)
    WHERE (v.type = 'engraftment' AND v.occurred_on >= tx.hsct_on)
       OR (v.type = 'graft_failure' AND v.occurred_on > tx.hsct_on)
),
counts AS (   -- one value per lineage per day after day 0: the lowest (blood_counts)
    SELECT c.patient_id, c.occurred_on AS on_, c.anc_e9_per_l AS anc, c.platelets_e9_per_l AS plt, tx.hsct_on
    FROM ref('blood_counts') c JOIN tx USING (patient_id)
    WHERE c.occurred_on > tx.hsct_on
),
plt_tf AS (   -- platelet transfusions at any date (one before day 0 still blocks early values)
    SELECT b.patient_id, b.occurred_on AS tf_on, tx.hsct_on FROM ref('blood_counts') b JOIN tx USING (patient_id)
    WHERE b.platelets_transfused
),
days AS (   -- each day: the last platelet transfusion on or before it (a transfusion sorts before a count
            -- of its day), its platelet eligibility (transfusion-free window), and running counts of low
            -- values: before the day (> 0: after the nadir), and up to it (they number the runs). All in
            -- one window pass over the counts and the transfusions.
    SELECT patient_id, on_, anc, plt, last_tf,
           CAST(coalesce(last_tf >= hsct_on, false) AS INTEGER) AS transfused,   -- since day 0: evaluable
           plt IS NOT NULL AND (last_tf IS NULL OR on_ - last_tf >= $platelet_transfusion_free_days) AS plt_ok,
           anc_lows - coalesce(CAST(anc < $anc_threshold_e9_per_l AS INTEGER), 0) AS anc_low, anc_lows AS anc_island,
           plt_lows - coalesce(CAST(plt < $platelet_threshold_e9_per_l AS INTEGER), 0) AS plt_low, plt_lows AS plt_island,
           plt50_lows - coalesce(CAST(plt < $platelet_second_threshold_e9_per_l AS INTEGER), 0) AS plt50_low, plt50_lows AS plt50_island
    FROM (
        SELECT *,
               count(*) FILTER (WHERE anc < $anc_threshold_e9_per_l) OVER upto AS anc_lows,
               count(*) FILTER (WHERE plt < $platelet_threshold_e9_per_l) OVER upto AS plt_lows,
               count(*) FILTER (WHERE plt < $platelet_second_threshold_e9_per_l) OVER upto AS plt50_lows,
               max(tf_on) OVER upto AS last_tf
        FROM (SELECT patient_id, on_, anc, plt, CAST(NULL AS DATE) AS tf_on, hsct_on FROM counts
              UNION ALL
              SELECT patient_id, tf_on, NULL, NULL, tf_on, hsct_on FROM plt_tf)
        WINDOW upto AS (PARTITION BY patient_id ORDER BY on_, tf_on NULLS LAST ROWS UNBOUNDED PRECEDING)
    )
    WHERE tf_on IS NULL
),
anc_eng AS ({_run_start_sql("anc", "anc IS NOT NULL", "anc_low", "anc_island", "NULL",
                            "$anc_threshold_e9_per_l", "$anc_run_length")}),
plt_eng AS ({_run_start_sql("plt", "plt_ok", "plt_low + transfused", "plt_island", "last_tf",
                            "$platelet_threshold_e9_per_l", "$platelet_run_length")}),
plt50_eng AS ({_run_start_sql("plt", "plt_ok", "plt50_low + transfused", "plt50_island", "last_tf",
                              "$platelet_second_threshold_e9_per_l", "$platelet_run_length")}),
lineage_info AS (
    SELECT patient_id,
           count(anc) > 0 AS has_anc, coalesce(bool_or(anc < $anc_threshold_e9_per_l), false) AS anc_low,
           count(plt) > 0 AS has_plt, coalesce(bool_or(plt < $platelet_threshold_e9_per_l), false) AS plt_low
    FROM days GROUP BY patient_id
),
transfused AS (   -- a platelet transfusion on or after day 0 makes the platelet lineage evaluable
    SELECT DISTINCT patient_id FROM plt_tf WHERE tf_on >= hsct_on
),
recorded AS (
    SELECT patient_id,
           min(occurred_on) FILTER (WHERE payload->>'lineage' = 'neutrophil') AS rec_neutrophil_on,
           min(occurred_on) FILTER (WHERE payload->>'lineage' = 'platelet') AS rec_platelet_on
    FROM ev WHERE type = 'engraftment' GROUP BY patient_id
),
lineages AS (
    SELECT tx.*,
           coalesce(li.has_anc, false) AS has_anc, coalesce(li.anc_low, false) AS anc_low,
           coalesce(li.has_plt, false) AS has_plt,
           coalesce(li.plt_low, false) OR t.patient_id IS NOT NULL AS plt_low,   -- evaluable (CIBMTR)
           CASE WHEN coalesce(li.has_anc, false) THEN a.run_on ELSE r.rec_neutrophil_on END AS neutrophil_on,
           CASE WHEN coalesce(li.has_anc, false) THEN 'counts'
                WHEN r.rec_neutrophil_on IS NOT NULL THEN 'recorded' END AS neutrophil_basis,
           CASE WHEN coalesce(li.has_plt, false) THEN pe.run_on ELSE r.rec_platelet_on END AS platelet_on,
           CASE WHEN coalesce(li.has_plt, false) THEN 'counts'
                WHEN r.rec_platelet_on IS NOT NULL THEN 'recorded' END AS platelet_basis,
           p50.run_on AS platelet_50_on
    FROM tx
    LEFT JOIN lineage_info li USING (patient_id)
    LEFT JOIN transfused t USING (patient_id)
    LEFT JOIN recorded r USING (patient_id)
    LEFT JOIN anc_eng a USING (patient_id)
    LEFT JOIN plt_eng pe USING (patient_id)
    LEFT JOIN plt50_eng p50 USING (patient_id)
),
derived_gf AS (   -- primary graft failure derived from neutrophil data
    SELECT patient_id,
           CASE WHEN neutrophil_basis IS NOT NULL
                 AND NOT (has_anc AND NOT anc_low)                      -- never neutropenic: not applicable
                 AND (neutrophil_on IS NULL OR neutrophil_on - hsct_on > gf_day)
                 AND last_contact_on >= hsct_on + gf_day
                 AND (death_on IS NULL OR death_on >= hsct_on + gf_day)
                THEN CAST(hsct_on + gf_day AS DATE) END AS derived_primary_on
    FROM lineages
),
gf_events AS (   -- as diagnosed; any graft failure after neutrophil engraftment is secondary
    SELECT e.patient_id,
           min(e.occurred_on) FILTER (WHERE eff_kind = 'primary') AS ev_primary_on,
           min(e.occurred_on) FILTER (WHERE eff_kind = 'secondary') AS ev_secondary_on
    FROM (
        SELECT ev.patient_id, ev.occurred_on,
               CASE WHEN l.neutrophil_on IS NOT NULL AND ev.occurred_on > l.neutrophil_on THEN 'secondary'
                    ELSE ev.payload->>'kind' END AS eff_kind
        FROM ev JOIN lineages l USING (patient_id)
        WHERE ev.type = 'graft_failure'
    ) e
    GROUP BY e.patient_id
),
gf AS (
    SELECT l.patient_id,
           CASE WHEN d.derived_primary_on IS NOT NULL OR g.ev_primary_on IS NOT NULL THEN 'primary'
                WHEN g.ev_secondary_on IS NOT NULL THEN 'secondary' END AS graft_failure,
           CASE WHEN d.derived_primary_on IS NOT NULL OR g.ev_primary_on IS NOT NULL
                THEN least(d.derived_primary_on, g.ev_primary_on)
                ELSE g.ev_secondary_on END AS graft_failure_on,
           CASE WHEN d.derived_primary_on IS NOT NULL
                 AND (g.ev_primary_on IS NULL OR d.derived_primary_on < g.ev_primary_on) THEN 'derived'
                WHEN g.ev_primary_on IS NOT NULL OR g.ev_secondary_on IS NOT NULL THEN 'recorded' END
               AS graft_failure_basis
    FROM lineages l
    LEFT JOIN derived_gf d USING (patient_id)
    LEFT JOIN gf_events g USING (patient_id)
)
SELECT l.patient_id, l.hsct_on,
       l.neutrophil_on, CAST(l.neutrophil_on - l.hsct_on AS INTEGER) AS neutrophil_day,
       l.neutrophil_basis,
       CASE WHEN l.neutrophil_on IS NOT NULL THEN 'engrafted'
            WHEN l.has_anc AND NOT l.anc_low THEN 'not_applicable'
            ELSE 'not_yet' END AS neutrophil_status,
       l.platelet_on, CAST(l.platelet_on - l.hsct_on AS INTEGER) AS platelet_day,
       l.platelet_basis,
       CASE WHEN l.platelet_on IS NOT NULL THEN 'engrafted'
            WHEN l.has_plt AND NOT l.plt_low THEN 'not_applicable'
            ELSE 'not_yet' END AS platelet_status,
       l.platelet_50_on, CAST(l.platelet_50_on - l.hsct_on AS INTEGER) AS platelet_50_day,
       gf.graft_failure, gf.graft_failure_on,
       CAST(gf.graft_failure_on - l.hsct_on AS INTEGER) AS graft_failure_day,
       gf.graft_failure_basis
FROM lineages l JOIN gf USING (patient_id)
""",
)

MODELS = (ENGRAFTMENT,)

_RECORDED = """
    SELECT e.patient_id, e.event_id, e.occurred_on, e.payload->>'lineage' AS lineage, e.day, g.hsct_on,
           CASE e.payload->>'lineage' WHEN 'neutrophil' THEN g.neutrophil_basis ELSE g.platelet_basis END AS basis
    FROM ref('events') e JOIN ref('engraftment') g USING (patient_id)
    WHERE e.type = 'engraftment'"""

CHECKS = (
    Check("recorded_engraftment_set_aside", "warning",
          "A recorded `engraftment` set aside because counts of that lineage exist after day 0: the counts decide.",
          f"""SELECT patient_id, event_id, occurred_on,
                     'recorded ' || lineage || ' engraftment on ' || occurred_on || ' (day ' || day
                         || ') is set aside: the counts after day 0 decide' AS message,
                     'retract the recorded engraftment, or check the counts' AS suggestion
              FROM ({_RECORDED}) WHERE basis = 'counts' AND day >= 0"""),
    Check("recorded_engraftment_on_day0", "warning",
          "A recorded `engraftment` on day 0 (no counts after day 0): read as a count that never fell, engrafted "
          "on day 0, time 0 in the endpoint.",
          f"""SELECT patient_id, event_id, occurred_on,
                     'recorded ' || lineage || ' engraftment on day 0 (' || occurred_on
                         || '): counted as engrafted on day 0', 'check the date; record the counts if there are any'
              FROM ({_RECORDED}) WHERE basis = 'recorded' AND day = 0"""),
    Check("recorded_engraftment_before_day0", "warning",
          "A recorded `engraftment` before day 0: ignored (engraftment follows the infusion).",
          f"""SELECT patient_id, event_id, occurred_on,
                     'recorded ' || lineage || ' engraftment on ' || occurred_on || ', before day 0 ('
                         || hsct_on || '), is ignored', 'correct the date, or retract it'
              FROM ({_RECORDED}) WHERE day < 0"""),
    Check("primary_graft_failure_after_engraftment", "warning",
          "A `graft_failure` recorded as primary after neutrophil engraftment: counted as secondary.",
          """SELECT e.patient_id, e.event_id, e.occurred_on,
                    'primary graft failure recorded on ' || e.occurred_on || ', after neutrophil engraftment on '
                        || g.neutrophil_on || ': counted as secondary',
                    'correct the kind to secondary, or check the engraftment counts'
             FROM ref('events') e JOIN ref('engraftment') g USING (patient_id)
             WHERE e.type = 'graft_failure' AND e.payload->>'kind' = 'primary' AND e.occurred_on > g.neutrophil_on"""),
)
