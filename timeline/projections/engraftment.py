"""`engraftment` projection: neutrophil and platelet engraftment and graft failure, one row per transplant.

Rules (ENDPOINTS.md "Engraftment"; clinical-definitions §1–3, CIBMTR FIM "Initial ANC / platelet
recovery", harmonized EBMT-ASTCT-CIBMTR-APBMT 2024):

- One value per lineage per day (the lowest). Only values after day 0 count, and only after the
  post-transplant nadir: the run starts after the first value below the threshold.
- Neutrophil: first of `anc_run_length` consecutive values (on different days) each >= threshold; a value
  below the threshold in between resets the run. Counts after day 0 that never fall below the threshold:
  `neutrophil_status` = 'not_applicable' (CIBMTR "never neutropenic").
- Platelet: the same, over *eligible* values only: value date - date of the last platelet `transfusion` on
  or before it >= `platelet_transfusion_free_days` (CIBMTR worked example: transfused day 0, day 7
  eligible). Ineligible values are skipped (they neither count nor reset); a platelet transfusion dated
  after one eligible value of a run and up to the next resets the run. The nadir is found on all values
  (CIBMTR example: the day-4 low is itself ineligible). `platelet_50_*` is the same rule at
  `platelet_second_threshold_e9_per_l`.
- A recorded `engraftment` event counts only when the patient has no count of that lineage after day 0
  (basis 'recorded'); otherwise basis is 'counts' (also while not yet engrafted).
- Graft failure: 'primary' if derived (neutrophil data exist, no neutrophil engraftment by day
  `primary_graft_failure_day` (`..._cord` for cord blood), last contact on or after that day) or a
  `graft_failure` event of kind primary not after neutrophil engraftment; else 'secondary' for a
  `graft_failure` event after neutrophil engraftment or diagnosed as secondary.

Gaps-and-islands, in one window pass over the day values and the platelet transfusions: each value gets
the last transfusion on or before it (a transfusion sorts before a value of its day) and a running count
of low values, which numbers the islands. A run is an island's eligible values since the same last
transfusion; an island with enough values at or above the threshold engrafts on its first such value.
(Counting every low value, eligible or not, splits the same runs as counting the eligible ones only: after
a given transfusion the ineligible values all come before the eligible ones.) Values dated after a run is
complete never change it, so an engraftment day does not move when later counts arrive.

Columns: patient_id, hsct_on, neutrophil_on, neutrophil_day, neutrophil_basis, neutrophil_status,
platelet_on, platelet_day, platelet_basis, platelet_status, platelet_50_on, platelet_50_day,
graft_failure, graft_failure_on, graft_failure_day, graft_failure_basis ('derived'/'recorded').
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timeline.projections.pipeline import check_int, check_number, num

TABLE = "engraftment"
DEPENDS_ON: tuple[str, ...] = ("patients",)

_CIBMTR_ANC = "CIBMTR FIM 'Initial ANC recovery'; ASTCT 2021; clinical-definitions §1"
_CIBMTR_PLT = "CIBMTR FIM 'Initial platelet recovery' and Form 2100; clinical-definitions §2"
_GF = "harmonized EBMT/ASTCT/CIBMTR/APBMT 2024 (Sureda, BMT 2024;59:832); clinical-definitions §3"


@dataclass(frozen=True)
class Parameters:
    anc_threshold_e9_per_l: float = field(
        default=0.5,
        metadata={"doc": "ANC (x10^9/L) a value must reach (>=) to count towards neutrophil engraftment.",
                  "source": _CIBMTR_ANC + " (EBMT Handbook variant: > 0.5)"},
    )
    anc_run_length: int = field(
        default=3,
        metadata={"doc": "Number of consecutive ANC values on different days at or above the threshold.",
                  "source": _CIBMTR_ANC + " (Spitzer variant: 2)"},
    )
    platelet_threshold_e9_per_l: float = field(
        default=20.0,
        metadata={"doc": "Platelets (x10^9/L) for platelet engraftment (columns platelet_on/platelet_day).",
                  "source": _CIBMTR_PLT},
    )
    platelet_second_threshold_e9_per_l: float = field(
        default=50.0,
        metadata={"doc": "Platelets (x10^9/L) for the second milestone (columns platelet_50_on/_day).",
                  "source": _CIBMTR_PLT + " (Form 2100 collects >= 20 and >= 50)"},
    )
    platelet_run_length: int = field(
        default=3,
        metadata={"doc": "Number of consecutive eligible platelet values on different days at or above the threshold.",
                  "source": _CIBMTR_PLT},
    )
    platelet_transfusion_free_days: int = field(
        default=7,
        metadata={"doc": "A platelet value is eligible only if value date - last platelet transfusion date >= this.",
                  "source": _CIBMTR_PLT + " (worked example: transfused day 0, day 7 eligible)"},
    )
    primary_graft_failure_day: int = field(
        default=30,
        metadata={"doc": "Primary graft failure if no neutrophil engraftment by this day (bone marrow, peripheral blood).",
                  "source": _GF + " (EBMT Handbook variant: 28)"},
    )
    primary_graft_failure_day_cord: int = field(
        default=42,
        metadata={"doc": "Primary graft failure if no neutrophil engraftment by this day (cord blood).",
                  "source": _GF},
    )

    def __post_init__(self) -> None:
        for name in ("anc_threshold_e9_per_l", "platelet_threshold_e9_per_l", "platelet_second_threshold_e9_per_l"):
            check_number(name, getattr(self, name), low=0)
        check_int("anc_run_length", self.anc_run_length, low=1)
        check_int("platelet_run_length", self.platelet_run_length, low=1)
        for name in ("platelet_transfusion_free_days", "primary_graft_failure_day", "primary_graft_failure_day_cord"):
            check_int(name, getattr(self, name), low=0)


def _run_start_sql(value: str, ok: str, low: str, island: str, last_tf: str, threshold: float,
                   run_length: int) -> str:
    """First day (`run_on`) of the first run of `run_length` values >= `threshold` after the nadir, per
    patient, from `days` (one row per patient-day, running counts computed in one window pass, see
    query()): `value` is the day's value; `ok` says it may count; `low` is the number of low values
    before the day (> 0: the day is after the nadir); `island` numbers the runs (the running count of low
    values up to the day); `last_tf` is the last platelet transfusion on or before the day (a new one starts a new
    run; NULL for neutrophils)."""
    t = num(threshold)
    return f"""
    SELECT patient_id, min(run_on) AS run_on
    FROM (
        SELECT patient_id, min(on_) FILTER (WHERE v >= {t}) AS run_on, count(*) FILTER (WHERE v >= {t}) AS n_high
        FROM (SELECT patient_id, on_, {ok} AS ok, {low} AS low, {island} AS island, {last_tf} AS last_tf,
                     {value} AS v FROM days)
        WHERE ok AND low > 0
        GROUP BY patient_id, island, last_tf
    )
    WHERE n_high >= {int(run_length)}
    GROUP BY patient_id"""


def query(p: Parameters) -> str:
    anc_thr = num(p.anc_threshold_e9_per_l)
    plt_thr = num(p.platelet_threshold_e9_per_l)
    plt50_thr = num(p.platelet_second_threshold_e9_per_l)
    free = int(p.platelet_transfusion_free_days)
    return f"""
WITH tx AS (
    SELECT patient_id, hsct_on, last_contact_on, death_on,
           CASE WHEN coalesce(source = 'cord_blood' OR donor = 'cord_blood', false)
                THEN {int(p.primary_graft_failure_day_cord)} ELSE {int(p.primary_graft_failure_day)} END AS gf_day
    FROM patients
    WHERE hsct_on IS NOT NULL AND patient_id IN (SELECT patient_id FROM visible_events)
),
ev AS (   -- recorded engraftment and graft failure after day 0
    SELECT v.patient_id, v.type, v.occurred_on, v.payload, tx.hsct_on
    FROM visible_events v JOIN tx USING (patient_id)
    WHERE v.occurred_on > tx.hsct_on AND v.type IN ('engraftment', 'graft_failure')
),
counts AS (   -- one value per lineage per day after day 0: the lowest
    SELECT c.patient_id, c.occurred_on AS on_, min(TRY_CAST(x[1] AS DOUBLE)) AS anc,
           min(TRY_CAST(x[2] AS DOUBLE)) AS plt
    FROM (SELECT patient_id, occurred_on, json_extract_string(payload, ['anc_e9_per_l', 'platelets_e9_per_l']) AS x
          FROM visible_events WHERE type = 'blood_count') c
    JOIN tx USING (patient_id)
    WHERE c.occurred_on > tx.hsct_on
    GROUP BY c.patient_id, c.occurred_on
),
plt_tf AS (   -- platelet transfusions at any date (one before day 0 still blocks early values)
    SELECT DISTINCT patient_id, occurred_on AS tf_on FROM visible_events
    WHERE type = 'transfusion' AND payload->>'product' = 'platelets'
      AND patient_id IN (SELECT patient_id FROM tx)
),
days AS (   -- each day: the last platelet transfusion on or before it (a transfusion sorts before a count
            -- of its day), its platelet eligibility (transfusion-free window), and running counts of low
            -- values: before the day (> 0: after the nadir), and up to it (they number the runs). All in
            -- one window pass over the counts and the transfusions.
    SELECT patient_id, on_, anc, plt, last_tf,
           plt IS NOT NULL AND (last_tf IS NULL OR on_ - last_tf >= {free}) AS plt_ok,
           anc_lows - coalesce(CAST(anc < {anc_thr} AS INTEGER), 0) AS anc_low, anc_lows AS anc_island,
           plt_lows - coalesce(CAST(plt < {plt_thr} AS INTEGER), 0) AS plt_low, plt_lows AS plt_island,
           plt50_lows - coalesce(CAST(plt < {plt50_thr} AS INTEGER), 0) AS plt50_low, plt50_lows AS plt50_island
    FROM (
        SELECT *,
               count(*) FILTER (WHERE anc < {anc_thr}) OVER upto AS anc_lows,
               count(*) FILTER (WHERE plt < {plt_thr}) OVER upto AS plt_lows,
               count(*) FILTER (WHERE plt < {plt50_thr}) OVER upto AS plt50_lows,
               max(tf_on) OVER upto AS last_tf
        FROM (SELECT patient_id, on_, anc, plt, CAST(NULL AS DATE) AS tf_on FROM counts
              UNION ALL
              SELECT patient_id, tf_on, NULL, NULL, tf_on FROM plt_tf)
        WINDOW upto AS (PARTITION BY patient_id ORDER BY on_, tf_on NULLS LAST ROWS UNBOUNDED PRECEDING)
    )
    WHERE tf_on IS NULL
),
anc_eng AS ({_run_start_sql("anc", "anc IS NOT NULL", "anc_low", "anc_island", "NULL",
                            p.anc_threshold_e9_per_l, p.anc_run_length)}),
plt_eng AS ({_run_start_sql("plt", "plt_ok", "plt_low", "plt_island", "last_tf",
                            p.platelet_threshold_e9_per_l, p.platelet_run_length)}),
plt50_eng AS ({_run_start_sql("plt", "plt_ok", "plt50_low", "plt50_island", "last_tf",
                              p.platelet_second_threshold_e9_per_l, p.platelet_run_length)}),
lineage_info AS (
    SELECT patient_id,
           count(anc) > 0 AS has_anc, coalesce(bool_or(anc < {anc_thr}), false) AS anc_low,
           count(plt) > 0 AS has_plt, coalesce(bool_or(plt < {plt_thr}), false) AS plt_low
    FROM days GROUP BY patient_id
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
           coalesce(li.has_plt, false) AS has_plt, coalesce(li.plt_low, false) AS plt_low,
           CASE WHEN coalesce(li.has_anc, false) THEN a.run_on ELSE r.rec_neutrophil_on END AS neutrophil_on,
           CASE WHEN coalesce(li.has_anc, false) THEN 'counts'
                WHEN r.rec_neutrophil_on IS NOT NULL THEN 'recorded' END AS neutrophil_basis,
           CASE WHEN coalesce(li.has_plt, false) THEN pe.run_on ELSE r.rec_platelet_on END AS platelet_on,
           CASE WHEN coalesce(li.has_plt, false) THEN 'counts'
                WHEN r.rec_platelet_on IS NOT NULL THEN 'recorded' END AS platelet_basis,
           p50.run_on AS platelet_50_on
    FROM tx
    LEFT JOIN lineage_info li USING (patient_id)
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
"""
