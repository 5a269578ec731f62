"""The outcomes report: Table 1, the outcomes table, survival, follow-up, figures, and the seed paper's
abstract set against what the engine computes.

`build_report(tl, as_of, known_at, params)` opens ONE view (`Timeline.as_of`) and reads everything from
it, with SQL over the projection tables and the estimators of `timeline.queries` (Kaplan–Meier,
Aalen–Johansen, reverse Kaplan–Meier). No number is typed in: the only literals are the abstract's own
statements, used for the "paper" column of the comparison. `build_report` does no I/O.

`run_report(tl, as_of, known_at, params, out)` prints the report (Markdown) and writes `out/`:
`report.md`, `report.html` (self-contained: inline CSS, inline SVG figures) and every figure as PNG and
SVG. It is what `timeline report` runs.

The cohort is the patients transplanted by the as-of date (a `patients` row with `hsct_on`); patients
registered but not yet transplanted are counted separately. Post-transplant complications are those
with onset on day 0 or later.
"""

from __future__ import annotations

import dataclasses
import html
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..projections import pipeline
from .cumulative_incidence import AalenJohansen
from .follow_up import FollowUp, follow_up_summary
from .kaplan_meier import KaplanMeier
from .survival import endpoint_frame
from .views import ProjectionView

__all__ = ["Report", "build_report", "run_report", "render_markdown", "render_html", "render_figures",
           "FIGURES"]

#: the figures written by `run_report` (file stem -> caption)
FIGURES = {
    "swimmer": "Figure 1. Each patient's course from the start of blinatumomab bridging to the last follow-up.",
    "survival": "Figure 2. Overall and event-free survival (Kaplan–Meier, 95% log-log band, numbers at risk).",
    "counts": "Figure 3. Neutrophil and platelet recovery after the infusion (lowest value of each day).",
}

SURVIVAL_ENDPOINTS = {"os": "Overall survival", "efs": "Event-free (failure-free) survival"}

# --------------------------------------------------------------------------------------- formatting

_LABELS = {
    "matched_sibling": "matched sibling", "matched_unrelated": "matched unrelated",
    "mismatched_unrelated": "mismatched unrelated", "haploidentical": "haploidentical",
    "cord_blood": "cord blood", "autologous": "autologous", "bone_marrow": "bone marrow",
    "peripheral_blood": "peripheral blood", "myeloablative": "myeloablative (MAC)",
    "reduced_intensity": "reduced intensity (RIC)", "non_myeloablative": "non-myeloablative (NMA)",
    "b_all": "B-ALL", "t_all": "T-ALL", "aml": "AML", "mpal": "MPAL", "cml": "CML", "mds": "MDS",
    "atg": "ATG", "alemtuzumab": "alemtuzumab", "none": "none", "ptcy": "PTCy", "mmf": "MMF",
    "cyclosporine": "cyclosporine", "tacrolimus": "tacrolimus", "methotrexate": "methotrexate",
    "sirolimus": "sirolimus", "abatacept": "abatacept", "female": "female", "male": "male",
    "combined": "combined", "cns": "CNS", "testicular": "testicular",
}

COMPLICATION_LABELS = {
    "engraftment_syndrome": "Engraftment syndrome",
    "cmv_reactivation": "CMV reactivation",
    "ebv_reactivation": "EBV reactivation",
    "infection": "Infection (any)",
    "clostridioides_difficile_enterocolitis": "C. difficile enterocolitis",
    "agvhd": "Acute GVHD (any grade)",
    "agvhd_2_4": "Acute GVHD grade II–IV",
    "agvhd_3_4": "Acute GVHD grade III–IV",
    "sr_agvhd": "Steroid-refractory acute GVHD",
    "cgvhd": "Chronic GVHD",
    "cgvhd_systemic": "Chronic GVHD needing systemic treatment",
    "graft_failure": "Graft failure",
    "toxicity": "Toxicity",
}


def complication_label(name: str) -> str:
    if name in COMPLICATION_LABELS:
        return COMPLICATION_LABELS[name]
    if name.endswith("_reactivation"):
        virus = name.removesuffix("_reactivation")
        return f"{virus.upper() if len(virus) <= 4 else virus} reactivation"
    return name.replace("_", " ").capitalize()


def label(value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, str):
        if "+" in value and value not in _LABELS:
            return " + ".join(label(v) for v in value.split("+"))
        return _LABELS.get(value, value.replace("_", " "))
    return str(value)


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and x.is_integer() and digits <= 1:
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


def _plain(x: Any) -> Any:
    """A median of integers as an int when it is whole (32.0 -> 32)."""
    if isinstance(x, float) and not math.isnan(x) and x.is_integer():
        return int(x)
    return x


def median_range(values: list[float | int | None], digits: int = 1, prefix: str = "") -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    s = pl.Series(vals, dtype=pl.Float64)
    return (f"{prefix}{_num(s.median(), digits)} ({prefix}{_num(s.min(), digits)}–{prefix}{_num(s.max(), digits)})"
            f"{'' if len(vals) == len(values) else f', n = {len(vals)}'}")


def n_of(k: int, n: int) -> str:
    return f"{k}/{n} ({100.0 * k / n:.0f}%)" if n else f"{k}/0"


def counts_text(values: list[Any], n: int | None = None) -> str:
    """'haploidentical 4 (80%), matched sibling 1 (20%)', most frequent first."""
    n = n if n is not None else len(values)
    tally: dict[Any, int] = {}
    for v in values:
        tally[v] = tally.get(v, 0) + 1
    order = sorted(tally.items(), key=lambda kv: (-kv[1], label(kv[0])))
    return ", ".join(f"{label(k)} {c} ({100.0 * c / n:.0f}%)" for k, c in order) if n else "–"


def _pct_ci(est: float | None, lo: float | None, hi: float | None) -> str:
    if est is None:
        return "–"
    return f"{100 * est:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%)"


# ------------------------------------------------------------------------------------------- report

@dataclass
class Report:
    """Everything the report shows, as computed values and polars tables (no I/O)."""

    as_of: date | None
    known_at: datetime | None
    computed_at: datetime  # the store clock when the view was opened (the "now" of known_at=None)
    view: str
    overrides: dict[str, Any]
    parameters: pl.DataFrame  # name, value, default, overridden, module, doc
    thresholds: dict[str, float]
    n_registered: int
    patients: pl.DataFrame  # one row per transplanted patient (the listing behind Table 1 and outcomes)
    table1: pl.DataFrame  # section, characteristic, value
    outcomes: pl.DataFrame  # section, outcome, value
    complications: pl.DataFrame  # complication, label, patients, episodes
    infections: pl.DataFrame  # category, organism, site, patients, episodes
    survival: dict[str, pl.DataFrame | None]  # endpoint -> KaplanMeier.table
    survival_summary: pl.DataFrame  # endpoint, what, time, estimate, lower, upper
    follow_up: FollowUp | None
    abstract: pl.DataFrame  # item, paper, engine, agrees
    values: dict[str, Any] = field(default_factory=dict)  # named numbers (keys as in cohort.json `expected`)
    # inputs of the figures
    swimmer_lanes: pl.DataFrame = field(default_factory=pl.DataFrame)
    swimmer_spans: pl.DataFrame = field(default_factory=pl.DataFrame)
    swimmer_markers: pl.DataFrame = field(default_factory=pl.DataFrame)
    counts: pl.DataFrame = field(default_factory=pl.DataFrame)
    transfusions: pl.DataFrame = field(default_factory=pl.DataFrame)
    engraftment: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def n_patients(self) -> int:
        return self.patients.height


def _resolved_parameters(overrides: Mapping[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    resolved = pipeline.parameters_from(overrides)
    flat: dict[str, Any] = {}
    for p in resolved.values():
        flat.update(dataclasses.asdict(p))
    rows = [{"name": r["name"], "value": str(flat.get(r["name"], r["default"])), "default": str(r["default"]),
             "overridden": r["name"] in overrides, "module": r["module"], "doc": r["doc"]}
            for r in pipeline.describe_parameters()]
    return pl.DataFrame(rows, schema={"name": pl.String, "value": pl.String, "default": pl.String,
                                      "overridden": pl.Boolean, "module": pl.String, "doc": pl.String}), flat


def _columns(view: ProjectionView, table: str) -> set[str]:
    return set(view.sql(f'SELECT * FROM "{table}" LIMIT 0').columns)


def _opt(cols: set[str], name: str, alias: str | None = None, cast: str = "VARCHAR", prefix: str = "") -> str:
    """`prefix.name` when the projection has that column, else a typed NULL (extra columns are optional)."""
    alias = alias or name
    return f"{prefix}{name} AS {alias}" if name in cols else f"CAST(NULL AS {cast}) AS {alias}"


_COHORT = "cohort AS (SELECT patient_id, hsct_on, last_contact_on FROM patients WHERE hsct_on IS NOT NULL)"


def _patient_listing(view: ProjectionView) -> pl.DataFrame:
    pc = _columns(view, "patients")
    bc = _columns(view, "bridging")
    ec = _columns(view, "engraftment")
    sql = f"""
WITH {_COHORT},
e AS (SELECT e.* FROM events e JOIN cohort USING (patient_id)),
dx AS (
    SELECT patient_id, occurred_on AS diagnosis_on,
           array_to_string(CAST(json_extract_string(payload, '$.genetics[*]') AS VARCHAR[]), ', ') AS genetics,
           payload->>'risk_group' AS risk_group
    FROM e WHERE type = 'diagnosis'
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY occurred_on) = 1),
rel AS (
    SELECT patient_id, count(*) AS relapses_before_hsct, min(occurred_on) AS first_relapse_on,
           string_agg(payload->>'site', ', ' ORDER BY occurred_on) AS relapse_sites
    FROM e WHERE type = 'relapse' AND day < 0 GROUP BY patient_id),
chemo AS (
    SELECT e.patient_id,
           string_agg(DISTINCT payload->>'regimen', ' + ' ORDER BY payload->>'regimen')
               FILTER (WHERE rel.first_relapse_on IS NULL OR e.occurred_on < rel.first_relapse_on) AS frontline,
           string_agg(payload->>'regimen', ' → ' ORDER BY e.occurred_on)
               FILTER (WHERE e.occurred_on >= rel.first_relapse_on) AS salvage,
           count(*) FILTER (WHERE e.occurred_on >= rel.first_relapse_on) AS salvage_blocks
    FROM e LEFT JOIN rel USING (patient_id)
    WHERE type = 'chemotherapy_started' AND day < 0 GROUP BY e.patient_id),
blina AS (
    SELECT s.patient_id,
           bool_and(t.reason = 'completed' AND t.stopped_on IS NOT NULL) AS blinatumomab_all_completed,
           min(date_diff('day', s.started_on, t.stopped_on)) AS cycle_days_min,
           max(date_diff('day', s.started_on, t.stopped_on)) AS cycle_days_max,
           min(s.started_on) AS blinatumomab_started_on, min(s.start_day) AS blinatumomab_start_day
    FROM (SELECT patient_id, payload->>'cycle' AS cycle, min(occurred_on) AS started_on, min(day) AS start_day
          FROM e WHERE type = 'blinatumomab_started' AND day < 0 GROUP BY ALL) s
    LEFT JOIN (SELECT patient_id, payload->>'cycle' AS cycle, max(occurred_on) AS stopped_on,
                      arg_max(payload->>'reason', occurred_on) AS reason
               FROM e WHERE type = 'blinatumomab_stopped' AND day < 0 GROUP BY ALL) t USING (patient_id, cycle)
    GROUP BY s.patient_id),
cond AS (
    SELECT patient_id, payload->>'regimen' AS conditioning_regimen, day AS conditioning_day,
           TRY_CAST(payload->>'tbi_gy' AS DOUBLE) AS tbi_gy, payload->>'serotherapy' AS serotherapy
    FROM e WHERE type = 'conditioning_started' AND day <= 0
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY occurred_on DESC) = 1),
inf AS (
    SELECT e.patient_id, payload->>'hla_match' AS hla_match
    FROM e JOIN cohort USING (patient_id) WHERE type = 'stem_cell_infusion' AND e.occurred_on = cohort.hsct_on
    QUALIFY row_number() OVER (PARTITION BY e.patient_id ORDER BY e.recorded_at) = 1),
proph AS (
    SELECT patient_id,
           array_to_string(list_sort(CAST(json_extract_string(payload, '$.agents[*]') AS VARCHAR[])), '+')
               AS gvhd_prophylaxis
    FROM e WHERE type = 'gvhd_prophylaxis_started'
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY abs(day), occurred_on) = 1),
comp AS (
    SELECT c.patient_id, string_agg(DISTINCT c.complication, ', ' ORDER BY c.complication) AS complications
    FROM complications c JOIN cohort USING (patient_id) WHERE c.day >= 0 GROUP BY c.patient_id),
relapse_after AS (
    SELECT patient_id, count(*) AS relapses_after_hsct FROM e WHERE type = 'relapse' AND day > 0
    GROUP BY patient_id),
active_disease AS (
    SELECT DISTINCT d.patient_id FROM disease_status d JOIN cohort c USING (patient_id)
    WHERE d.status = 'active_disease' AND d.from_on <= c.last_contact_on
      AND (d.to_on IS NULL OR d.to_on > c.hsct_on)),
status_last AS (
    SELECT d.patient_id, d.status AS disease_status_at_last_contact
    FROM disease_status d JOIN cohort c USING (patient_id)
    WHERE d.from_on <= c.last_contact_on AND (d.to_on IS NULL OR d.to_on > c.last_contact_on)
    QUALIFY row_number() OVER (PARTITION BY d.patient_id ORDER BY d.from_on DESC) = 1),
gvhd AS (
    SELECT patient_id, payload->>'kind' AS kind,
           max(occurred_on) FILTER (WHERE type = 'gvhd_diagnosed') AS diagnosed_on,
           max(occurred_on) FILTER (WHERE type = 'gvhd_resolved') AS resolved_on
    FROM e WHERE type IN ('gvhd_diagnosed', 'gvhd_resolved') AND day >= 0 GROUP BY ALL),
gvhd_active AS (
    SELECT patient_id, string_agg(kind, ', ' ORDER BY kind) AS active_gvhd_kinds FROM gvhd
    WHERE diagnosed_on IS NOT NULL AND (resolved_on IS NULL OR resolved_on < diagnosed_on)
    GROUP BY patient_id),
os AS (SELECT patient_id, time_days AS follow_up_days FROM endpoints WHERE endpoint = 'os')
SELECT p.patient_id, p.sex, p.birth_date, p.age_at_hsct_years, p.disease, dx.diagnosis_on, dx.genetics,
       dx.risk_group, coalesce(rel.relapses_before_hsct, 0) AS relapses_before_hsct, rel.first_relapse_on,
       rel.relapse_sites, date_diff('month', dx.diagnosis_on, rel.first_relapse_on) AS months_diagnosis_to_relapse,
       chemo.frontline AS frontline_therapy, chemo.salvage AS salvage_therapy,
       coalesce(chemo.salvage_blocks, 0) AS salvage_blocks,
       {_opt(bc, 'blinatumomab_cycles', cast='BIGINT', prefix='b.')}, blina.blinatumomab_all_completed,
       blina.cycle_days_min, blina.cycle_days_max, blina.blinatumomab_start_day,
       {_opt(bc, 'blinatumomab_last_stopped_on', cast='DATE', prefix='b.')},
       {_opt(bc, 'days_blinatumomab_to_hsct', cast='INTEGER', prefix='b.')},
       {_opt(bc, 'mrd_before_hsct_on', cast='DATE', prefix='b.')},
       {_opt(bc, 'mrd_before_hsct_method', prefix='b.')},
       {_opt(bc, 'mrd_before_hsct_specimen', prefix='b.')},
       {_opt(bc, 'mrd_before_hsct_percent', cast='DOUBLE', prefix='b.')},
       {_opt(bc, 'mrd_before_hsct_below_detection', cast='BOOLEAN', prefix='b.')},
       {_opt(bc, 'mrd_negative_before_hsct', cast='BOOLEAN', prefix='b.')},
       p.hsct_on, p.donor, p.source, inf.hla_match, p.cd34_e6_per_kg, p.conditioning_intensity,
       cond.conditioning_regimen, cond.conditioning_day, cond.tbi_gy, cond.serotherapy, proph.gvhd_prophylaxis,
       {_opt(ec, 'neutrophil_day', cast='INTEGER', prefix='g.')},
       {_opt(ec, 'platelet_day', cast='INTEGER', prefix='g.')},
       {_opt(ec, 'graft_failure', prefix='g.')},
       {_opt(pc, 'full_donor_chimerism_day', cast='INTEGER', prefix='p.')},
       {_opt(pc, 'full_donor_chimerism_sustained', cast='BOOLEAN', prefix='p.')},
       comp.complications, coalesce(relapse_after.relapses_after_hsct, 0) AS relapses_after_hsct,
       p.last_contact_on, os.follow_up_days, p.vital_status, p.death_on, p.death_cause,
       status_last.disease_status_at_last_contact,
       (p.vital_status = 'alive' AND coalesce(relapse_after.relapses_after_hsct, 0) = 0
        AND active_disease.patient_id IS NULL
        AND coalesce(status_last.disease_status_at_last_contact, '') LIKE 'remission%') AS continuous_cr,
       gvhd_active.active_gvhd_kinds,
       (p.vital_status = 'alive' AND gvhd_active.patient_id IS NOT NULL) AS active_gvhd
FROM patients p JOIN cohort USING (patient_id)
LEFT JOIN bridging b USING (patient_id) LEFT JOIN engraftment g USING (patient_id)
LEFT JOIN dx USING (patient_id) LEFT JOIN rel USING (patient_id) LEFT JOIN chemo USING (patient_id)
LEFT JOIN blina USING (patient_id) LEFT JOIN cond USING (patient_id) LEFT JOIN inf USING (patient_id)
LEFT JOIN proph USING (patient_id) LEFT JOIN comp USING (patient_id) LEFT JOIN relapse_after USING (patient_id)
LEFT JOIN active_disease USING (patient_id) LEFT JOIN status_last USING (patient_id)
LEFT JOIN gvhd_active USING (patient_id) LEFT JOIN os USING (patient_id)
ORDER BY p.hsct_on, p.patient_id
"""
    return view.sql(sql)


def _complication_counts(view: ProjectionView) -> pl.DataFrame:
    return view.sql(f"""
WITH {_COHORT}
SELECT c.complication, count(DISTINCT c.patient_id) AS patients, count(*) AS episodes
FROM complications c JOIN cohort USING (patient_id) WHERE c.day >= 0
GROUP BY c.complication ORDER BY c.complication""")


def _infections(view: ProjectionView) -> pl.DataFrame:
    return view.sql(f"""
WITH {_COHORT}
SELECT payload->>'category' AS category, coalesce(payload->>'organism', 'organism not recorded') AS organism,
       payload->>'site' AS site, count(DISTINCT e.patient_id) AS patients, count(*) AS episodes,
       regexp_matches(lower(coalesce(payload->>'organism', '')), 'clostridi(oides|um) difficile')
           AND payload->>'site' = 'gastrointestinal' AS c_difficile_enterocolitis
FROM events e JOIN cohort USING (patient_id) WHERE e.type = 'infection' AND e.day >= 0
GROUP BY ALL ORDER BY patients DESC, category, organism, site""")


def _endpoint_counts(view: ProjectionView) -> dict[str, dict[str, int]]:
    df = view.sql(f"""
WITH {_COHORT}
SELECT endpoint, count(*) AS n, count(*) FILTER (WHERE status = 1) AS events,
       count(*) FILTER (WHERE status = 2) AS competing
FROM endpoints JOIN cohort USING (patient_id) GROUP BY endpoint""")
    return {r["endpoint"]: r for r in df.to_dicts()}


def _km(view: ProjectionView, endpoint: str) -> KaplanMeier | None:
    try:
        df = endpoint_frame(view, endpoint)
    except ValueError:
        return None
    if df.is_empty():
        return None
    return KaplanMeier().fit(df, duration="time_days", event="status")


def _survival_rows(name: str, km: KaplanMeier | None, horizon: float = 365.0) -> list[dict[str, Any]]:
    if km is None:
        return []
    t_max = float(km.table["time"].max())
    rows = []
    points = [("1 year", horizon)] if t_max >= horizon else [(f"day {t_max:g} (last observed time)", t_max)]
    if t_max >= horizon:
        points.append((f"last follow-up (day {t_max:g})", t_max))
    for what, t in points:
        r = km.at(t).row(0, named=True)
        rows.append({"endpoint": name, "what": what, "time": t, "estimate": r["estimate"], "lower": r["lower"],
                     "upper": r["upper"]})
    return rows


def _cif_at(view: ProjectionView, endpoint: str, t: float) -> tuple[float, float, float] | None:
    try:
        df = endpoint_frame(view, endpoint)
    except ValueError:
        return None
    if df.is_empty():
        return None
    r = AalenJohansen().fit(df, duration="time_days", status="status").at(t).row(0, named=True)
    return r["estimate"], r["lower"], r["upper"]


# ------------------------------------------------------------------------------- figure frames

def _figure_frames(view: ProjectionView) -> dict[str, pl.DataFrame]:
    lanes = view.sql(f"""
WITH {_COHORT},
starts AS (SELECT patient_id, min(day) AS first_day FROM events JOIN cohort USING (patient_id)
           WHERE type IN ('blinatumomab_started', 'conditioning_started') AND day <= 0 GROUP BY patient_id)
SELECT p.patient_id, least(coalesce(s.first_day, 0), 0) AS start_day,
       date_diff('day', p.hsct_on, coalesce(p.death_on, p.last_contact_on)) AS end_day,
       p.patient_id AS label
FROM patients p JOIN cohort USING (patient_id) LEFT JOIN starts s USING (patient_id)
ORDER BY p.hsct_on, p.patient_id""")
    spans = view.sql(f"""
WITH {_COHORT},
e AS (SELECT e.*, date_diff('day', c.hsct_on, c.last_contact_on) AS last_day
      FROM events e JOIN cohort c USING (patient_id)),
blina AS (
    SELECT s.patient_id, 'blinatumomab' AS kind, s.start_day,
           coalesce(t.stop_day, least(0, s.last_day)) AS end_day
    FROM (SELECT patient_id, payload->>'cycle' AS cycle, min(day) AS start_day, any_value(last_day) AS last_day
          FROM e WHERE type = 'blinatumomab_started' AND day < 0 GROUP BY ALL) s
    LEFT JOIN (SELECT patient_id, payload->>'cycle' AS cycle, max(day) AS stop_day
               FROM e WHERE type = 'blinatumomab_stopped' AND day <= 0 GROUP BY ALL) t USING (patient_id, cycle)),
cond AS (
    SELECT patient_id, 'conditioning' AS kind, day AS start_day, 0 AS end_day FROM e
    WHERE type = 'conditioning_started' AND day <= 0
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY occurred_on DESC) = 1),
gv AS (
    SELECT d.patient_id, CASE WHEN d.payload->>'kind' = 'chronic' THEN 'cgvhd' ELSE 'agvhd' END AS kind,
           d.day AS start_day,
           coalesce((SELECT min(r.day) FROM e r WHERE r.patient_id = d.patient_id AND r.type = 'gvhd_resolved'
                     AND r.payload->>'kind' = d.payload->>'kind' AND r.day >= d.day), d.last_day) AS end_day
    FROM e d WHERE d.type = 'gvhd_diagnosed' AND d.day >= 0
    QUALIFY row_number() OVER (PARTITION BY d.patient_id, d.payload->>'kind', end_day ORDER BY d.day) = 1)
SELECT patient_id, kind, start_day, end_day FROM blina
UNION ALL SELECT patient_id, kind, start_day, end_day FROM cond
UNION ALL SELECT patient_id, kind, start_day, end_day FROM gv
ORDER BY patient_id, start_day""")
    ec = _columns(view, "engraftment")
    pc = _columns(view, "patients")
    eng_markers = []
    if "neutrophil_day" in ec:
        eng_markers.append("SELECT patient_id, 'neutrophil_engraftment' AS kind, neutrophil_day AS day "
                           "FROM engraftment WHERE neutrophil_day IS NOT NULL")
    if "platelet_day" in ec:
        eng_markers.append("SELECT patient_id, 'platelet_engraftment', platelet_day FROM engraftment "
                           "WHERE platelet_day IS NOT NULL")
    if "full_donor_chimerism_day" in pc:
        eng_markers.append("SELECT patient_id, 'full_donor_chimerism', full_donor_chimerism_day FROM patients "
                           "WHERE full_donor_chimerism_day IS NOT NULL")
    union = "".join(f"UNION ALL {q}\n" for q in eng_markers)
    markers = view.sql(f"""
WITH {_COHORT},
m AS (
    SELECT patient_id, complication AS kind, day FROM complications
    WHERE day >= 0 AND complication NOT IN ('agvhd_2_4', 'agvhd_3_4', 'cgvhd_systemic')
    {union}
    UNION ALL SELECT patient_id, 'relapse', day FROM events WHERE type = 'relapse' AND day > 0
    UNION ALL SELECT patient_id, CASE WHEN vital_status = 'dead' THEN 'death' ELSE 'last_contact' END,
                     date_diff('day', hsct_on, coalesce(death_on, last_contact_on))
              FROM patients WHERE hsct_on IS NOT NULL)
SELECT m.patient_id, m.kind, m.day FROM m JOIN cohort USING (patient_id) ORDER BY m.patient_id, m.day, m.kind""")
    counts = view.sql(f"""
WITH {_COHORT}
SELECT e.patient_id, e.day,
       min(TRY_CAST(payload->>'anc_e9_per_l' AS DOUBLE)) AS anc,
       min(TRY_CAST(payload->>'platelets_e9_per_l' AS DOUBLE)) AS platelets
FROM events e JOIN cohort c USING (patient_id)
WHERE e.type = 'blood_count' AND e.day BETWEEN -14 AND 120
GROUP BY e.patient_id, e.day, c.hsct_on ORDER BY c.hsct_on, e.patient_id, e.day""")
    transfusions = view.sql(f"""
WITH {_COHORT}
SELECT e.patient_id, e.day FROM events e JOIN cohort USING (patient_id)
WHERE e.type = 'transfusion' AND payload->>'product' = 'platelets' AND e.day BETWEEN -14 AND 120
ORDER BY e.patient_id, e.day""")
    engraftment = view.sql(f"""
WITH {_COHORT}
SELECT g.patient_id, {_opt(ec, 'neutrophil_day', cast='INTEGER', prefix='g.')},
       {_opt(ec, 'platelet_day', cast='INTEGER', prefix='g.')}
FROM engraftment g JOIN cohort USING (patient_id) ORDER BY g.patient_id""")
    return {"swimmer_lanes": lanes, "swimmer_spans": spans, "swimmer_markers": markers, "counts": counts,
            "transfusions": transfusions, "engraftment": engraftment}


# -------------------------------------------------------------------------------------- assemble

def _table1(p: pl.DataFrame) -> pl.DataFrame:
    n = p.height
    col = lambda name: p[name].to_list() if name in p.columns else [None] * n  # noqa: E731
    rows: list[tuple[str, str, str]] = []

    def add(section: str, what: str, value: str) -> None:
        rows.append((section, what, value))

    S = "Patients and disease"
    add(S, "Patients transplanted", str(n))
    add(S, "Age at HSCT, years, median (range)", median_range(col("age_at_hsct_years")))
    add(S, "Sex", counts_text(col("sex")))
    add(S, "Diagnosis", counts_text(col("disease")))
    genetics = [g for g in col("genetics") if g]
    add(S, "Genetics at diagnosis", counts_text(genetics, n) + (f"; not recorded {n - len(genetics)}"
                                                                 if len(genetics) < n else "") if n else "–")
    add(S, "Relapses before HSCT", counts_text([f"{k} relapse{'s' if k != 1 else ''}" for k in col("relapses_before_hsct")]))
    sites = [s for v in col("relapse_sites") if v for s in v.split(", ")]
    add(S, "Relapse site", counts_text(sites, n) if sites else "–")
    add(S, "Months from diagnosis to relapse, median (range)", median_range(col("months_diagnosis_to_relapse")))
    S = "Prior therapy"
    add(S, "Front-line chemotherapy", counts_text([v for v in col("frontline_therapy") if v], n))
    blocks = [r for v in col("salvage_therapy") if v for r in dict.fromkeys(v.split(" → "))]
    add(S, "Salvage chemotherapy after relapse (patients)", counts_text(blocks, n) if blocks else "–")
    add(S, "Salvage blocks before blinatumomab, median (range)", median_range(col("salvage_blocks")))
    S = "Blinatumomab bridging"
    add(S, "Blinatumomab cycles", counts_text([f"{k} cycle{'s' if k != 1 else ''}" for k in col("blinatumomab_cycles")]))
    lens = [x for x in col("cycle_days_min") + col("cycle_days_max") if x is not None]
    add(S, "Cycle length, days" + (" (range)" if lens and min(lens) != max(lens) else ""),
        _fmt_range([min(lens), max(lens)]) if lens else "–")
    add(S, "All cycles completed", n_of(sum(1 for v in col("blinatumomab_all_completed") if v), n))
    add(S, "Days from last blinatumomab to HSCT, median (range)", median_range(col("days_blinatumomab_to_hsct")))
    add(S, "MRD-negative before HSCT", n_of(sum(1 for v in col("mrd_negative_before_hsct") if v), n))
    mrd = []
    for r in p.iter_rows(named=True):
        if r.get("mrd_before_hsct_percent") is None:
            continue
        val = (f"< LOD (sensitivity {r['mrd_before_hsct_percent']:g}%)" if r.get("mrd_before_hsct_below_detection")
               else f"{r['mrd_before_hsct_percent']:g}%")
        mrd.append(f"{r['patient_id']} {val}" + (f" {r['mrd_before_hsct_method']}" if r.get("mrd_before_hsct_method") else "")
                   + (f" {label(r['mrd_before_hsct_specimen'])}" if r.get("mrd_before_hsct_specimen") else ""))
    add(S, "Last MRD before HSCT", "; ".join(mrd) or "–")
    S = "Donor and graft"
    add(S, "Donor", counts_text(col("donor")))
    add(S, "Graft source", counts_text(col("source")))
    add(S, "HLA match", counts_text(col("hla_match")))
    add(S, "CD34+ cells ×10⁶/kg, median (range)", median_range(col("cd34_e6_per_kg")))
    S = "Conditioning and GVHD prophylaxis"
    add(S, "Conditioning intensity", counts_text(col("conditioning_intensity")))
    add(S, "Conditioning regimen", counts_text(col("conditioning_regimen")))
    tbi = [t for t in col("tbi_gy") if t]
    add(S, "TBI", f"{n_of(len(tbi), n)}; dose {counts_text([f'{t:g} Gy' for t in tbi], len(tbi))}" if tbi else n_of(0, n))
    add(S, "Serotherapy", counts_text(col("serotherapy")))
    add(S, "GVHD prophylaxis", counts_text(col("gvhd_prophylaxis")))
    return pl.DataFrame(rows, schema=["section", "characteristic", "value"], orient="row")


def build_report(tl: Any, as_of: date | str | None = None, known_at: datetime | str | None = None,
                 params: Mapping[str, Any] | None = None) -> Report:
    """Compute the report from one view of the projections (as of `as_of`, as known at `known_at`)."""
    from ..app import _as_date, _as_utc
    from ..store.eventstore import us_to_datetime

    overrides = dict(params or {})
    param_table, flat = _resolved_parameters(overrides)  # raises ParameterError on a bad override
    as_of_d, known_at_t = _as_date(as_of), _as_utc(known_at)
    computed_at = us_to_datetime(tl.store.now_us())
    with tl.as_of(as_of_d, known_at_t, overrides) as view:
        n_registered = int(view.sql("SELECT count(*) AS n FROM patients")["n"][0])
        p = _patient_listing(view)
        comp = _complication_counts(view)
        infections = _infections(view)
        ends = _endpoint_counts(view)
        kms = {name: _km(view, name) for name in SURVIVAL_ENDPOINTS}
        nrm_1y = _cif_at(view, "nrm", 365.0)
        frames = _figure_frames(view)
        view_description = view.description
    n = p.height
    fu = None
    os_df = p.select("follow_up_days", (pl.col("vital_status") == "dead").cast(pl.Int64).alias("status")) \
        .filter(pl.col("follow_up_days").is_not_null())
    if os_df.height:
        fu = follow_up_summary(os_df, duration="follow_up_days", died="status")

    comp_n = {r["complication"]: r["patients"] for r in comp.to_dicts()}
    cdiff = int(infections.filter(pl.col("c_difficile_enterocolitis"))["patients"].sum()) if infections.height else 0
    comp_table = pl.DataFrame(
        [{"complication": k, "label": complication_label(k), "patients": int(r["patients"]),
          "episodes": int(r["episodes"])} for k, r in ((r["complication"], r) for r in comp.to_dicts())],
        schema={"complication": pl.String, "label": pl.String, "patients": pl.Int64, "episodes": pl.Int64})

    surv_rows = [row for name, km in kms.items() for row in _survival_rows(name, km)]
    survival_summary = pl.DataFrame(surv_rows, schema={"endpoint": pl.String, "what": pl.String, "time": pl.Float64,
                                                       "estimate": pl.Float64, "lower": pl.Float64,
                                                       "upper": pl.Float64})

    def col(name: str) -> list[Any]:
        return p[name].to_list()

    def med(name: str) -> Any:
        vals = [v for v in col(name) if v is not None]
        return _plain(pl.Series(vals, dtype=pl.Float64).median()) if vals else None

    def rng(name: str) -> list[Any] | None:
        vals = [v for v in col(name) if v is not None]
        return [min(vals), max(vals)] if vals else None

    def tally(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in col(name):
            if v is not None:
                out[v] = out.get(v, 0) + 1
        return dict(sorted(out.items()))

    def last_estimate(name: str) -> float | None:
        km = kms.get(name)
        return None if km is None else float(km.table["estimate"][-1])

    alive = sum(1 for v in col("vital_status") if v == "alive")
    fd_days = [v for v in col("full_donor_chimerism_day") if v is not None]
    values: dict[str, Any] = {
        "n_registered": n_registered,
        "n_patients": n,
        "diagnosis": tally("disease"),
        "hsct_on_range": rng("hsct_on"),
        "age_at_hsct_years_range": rng("age_at_hsct_years"),
        "relapsed_before_hsct": sum(1 for v in col("relapses_before_hsct") if v),
        "blinatumomab_cycles_range": rng("blinatumomab_cycles"),
        "blinatumomab_cycles": tally("blinatumomab_cycles"),
        "blinatumomab_cycle_days_range": ([min(x for x in col("cycle_days_min") if x is not None),
                                           max(x for x in col("cycle_days_max") if x is not None)]
                                          if any(x is not None for x in col("cycle_days_min")) else None),
        "blinatumomab_completed_all": sum(1 for v in col("blinatumomab_all_completed") if v),
        "mrd_negative_before_hsct": sum(1 for v in col("mrd_negative_before_hsct") if v),
        "donor": tally("donor"),
        "source": tally("source"),
        "median_days_blinatumomab_to_hsct": med("days_blinatumomab_to_hsct"),
        "days_blinatumomab_to_hsct_range": rng("days_blinatumomab_to_hsct"),
        "median_cd34_e6_per_kg": med("cd34_e6_per_kg"),
        "neutrophil_engrafted": sum(1 for v in col("neutrophil_day") if v is not None),
        "platelet_engrafted": sum(1 for v in col("platelet_day") if v is not None),
        "median_neutrophil_engraftment_day": med("neutrophil_day"),
        "neutrophil_engraftment_day_range": rng("neutrophil_day"),
        "median_platelet_engraftment_day": med("platelet_day"),
        "platelet_engraftment_day_range": rng("platelet_day"),
        "full_donor_chimerism_patients": len(fd_days),
        "full_donor_chimerism_day_range": [min(fd_days), max(fd_days)] if fd_days else None,
        "median_full_donor_chimerism_day": med("full_donor_chimerism_day"),
        "full_donor_chimerism_sustained_patients": sum(1 for v in col("full_donor_chimerism_sustained") if v),
        "complications": {
            "engraftment_syndrome": comp_n.get("engraftment_syndrome", 0),
            "cmv_reactivation": comp_n.get("cmv_reactivation", 0),
            "ebv_reactivation": comp_n.get("ebv_reactivation", 0),
            "infection": comp_n.get("infection", 0),
            "clostridioides_difficile_enterocolitis": cdiff,
            "agvhd": comp_n.get("agvhd", 0),
            "agvhd_2_4": comp_n.get("agvhd_2_4", 0),
            "agvhd_3_4": comp_n.get("agvhd_3_4", 0),
            "sr_agvhd": comp_n.get("sr_agvhd", 0),
            "cgvhd": comp_n.get("cgvhd", 0),
            "graft_failure": comp_n.get("graft_failure", 0),
        },
        "deaths": sum(1 for v in col("vital_status") if v == "dead"),
        "transplant_related_mortality": ends.get("nrm", {}).get("events", 0),
        "nrm_cumulative_incidence_1y": None if nrm_1y is None else nrm_1y[0],
        "relapses_after_hsct": ends.get("relapse", {}).get("events", 0),
        "graft_failures": sum(1 for v in col("graft_failure") if v is not None),
        "median_follow_up_days": None if fu is None else _plain(fu.median_all),
        "follow_up_range_days": None if fu is None else [_plain(fu.min_all), _plain(fu.max_all)],
        "reverse_km_median_follow_up_days": None if fu is None else _plain(fu.median_reverse_km),
        "alive_at_last_follow_up": alive,
        "continuous_complete_remission": sum(1 for v in col("continuous_cr") if v),
        "active_gvhd_at_last_follow_up": sum(1 for v in col("active_gvhd") if v),
        "os_at_last_follow_up": last_estimate("os"),
        "efs_at_last_follow_up": last_estimate("efs"),
    }

    outcomes = _outcomes(p, values, comp_table, infections, survival_summary, fu, nrm_1y)
    return Report(
        as_of=as_of_d, known_at=known_at_t, computed_at=computed_at, view=view_description, overrides=overrides,
        parameters=param_table,
        thresholds={"anc": float(flat.get("anc_threshold_e9_per_l", 0.5)),
                    "platelets": float(flat.get("platelet_threshold_e9_per_l", 20.0))},
        n_registered=n_registered, patients=p, table1=_table1(p), outcomes=outcomes, complications=comp_table,
        infections=infections, survival={k: (v.table if v is not None else None) for k, v in kms.items()},
        survival_summary=survival_summary, follow_up=fu, abstract=_abstract(values), values=values, **frames)


def _outcomes(p: pl.DataFrame, v: dict[str, Any], comp: pl.DataFrame, infections: pl.DataFrame,
              surv: pl.DataFrame, fu: FollowUp | None, nrm_1y: tuple[float, float, float] | None) -> pl.DataFrame:
    n = p.height
    col = lambda name: p[name].to_list()  # noqa: E731
    rows: list[tuple[str, str, str]] = []

    def add(section: str, what: str, value: str) -> None:
        rows.append((section, what, value))

    S = "Bridging"
    add(S, "MRD clearance (MRD-negative) before HSCT", n_of(v["mrd_negative_before_hsct"], n))
    add(S, "Interval last blinatumomab → HSCT, days, median (range)", median_range(col("days_blinatumomab_to_hsct")))
    S = "Engraftment and chimerism"
    add(S, "Neutrophil engraftment", n_of(v["neutrophil_engrafted"], n))
    add(S, "Neutrophil engraftment day, median (range)", median_range(col("neutrophil_day")))
    add(S, "Platelet engraftment", n_of(v["platelet_engrafted"], n))
    add(S, "Platelet engraftment day, median (range)", median_range(col("platelet_day")))
    add(S, "Graft failure", n_of(v["graft_failures"], n))
    add(S, "Full donor chimerism reached", n_of(v["full_donor_chimerism_patients"], n))
    add(S, "Full donor chimerism day, median (range)", median_range(col("full_donor_chimerism_day")))
    add(S, "Full donor chimerism sustained", n_of(v["full_donor_chimerism_sustained_patients"],
                                                   v["full_donor_chimerism_patients"]))
    S = "Complications after HSCT (patients)"
    c = v["complications"]
    for key in ("engraftment_syndrome", "cmv_reactivation", "ebv_reactivation"):
        add(S, COMPLICATION_LABELS[key], n_of(c[key], n))
    others = comp.filter(~pl.col("complication").is_in(
        ["engraftment_syndrome", "cmv_reactivation", "ebv_reactivation", "infection", "agvhd", "agvhd_2_4",
         "agvhd_3_4", "sr_agvhd", "cgvhd", "cgvhd_systemic", "graft_failure"]))
    for r in others.to_dicts():
        add(S, r["label"], n_of(r["patients"], n))
    add(S, "Infection (any)", n_of(c["infection"], n))
    for r in infections.to_dicts():
        site = f", {label(r['site'])}" if r["site"] else ""
        add(S, f"  {label(r['category'])}: {r['organism']}{site}", n_of(r["patients"], n))
    add(S, COMPLICATION_LABELS["clostridioides_difficile_enterocolitis"], n_of(c["clostridioides_difficile_enterocolitis"], n))
    for key in ("agvhd", "agvhd_2_4", "agvhd_3_4", "sr_agvhd", "cgvhd"):
        add(S, COMPLICATION_LABELS[key], n_of(c[key], n))
    S = "Mortality and survival (Kaplan–Meier, 95% CI log-log)"
    add(S, "Deaths", n_of(v["deaths"], n))
    nrm = n_of(v["transplant_related_mortality"], n)
    if nrm_1y is not None:
        nrm += f"; cumulative incidence at 1 year {100 * nrm_1y[0]:.1f}% (Aalen–Johansen)"
    add(S, "Transplant-related (non-relapse) mortality", nrm)
    add(S, "Relapse after HSCT", n_of(v["relapses_after_hsct"], n))
    for r in surv.to_dicts():
        add(S, f"{SURVIVAL_ENDPOINTS[r['endpoint']]} at {r['what']}",
            _pct_ci(r["estimate"], r["lower"], r["upper"]))
    S = "Follow-up"
    if fu is not None:
        add(S, "Follow-up, days, median (range)", f"{_num(fu.median_all)} ({_num(fu.min_all)}–{_num(fu.max_all)})")
        lim = f" (95% CI {_num(fu.lower_reverse_km)}–{_num(fu.upper_reverse_km)})"
        add(S, "Median follow-up, reverse Kaplan–Meier, days", _num(fu.median_reverse_km).replace("inf", "not reached") + lim.replace("inf", "not reached"))
    else:
        add(S, "Follow-up", "–")
    S = "Status at last follow-up"
    add(S, "Alive", n_of(v["alive_at_last_follow_up"], n))
    add(S, "Alive in continuous complete remission", n_of(v["continuous_complete_remission"], n))
    add(S, "Active GVHD", n_of(v["active_gvhd_at_last_follow_up"], n))
    return pl.DataFrame(rows, schema=["section", "outcome", "value"], orient="row")


# ------------------------------------------------------------------------ the abstract vs the engine

def _within(rng: list[Any] | None, lo: Any, hi: Any) -> bool:
    return rng is not None and lo <= rng[0] and rng[1] <= hi


def _fmt_range(r: list[Any] | None, unit: str = "") -> str:
    if r is None:
        return "–"
    a, b = (str(x) if isinstance(x, date) else _num(x) for x in r)
    return f"{a}{unit}" if a == b else f"{a}{' to ' if isinstance(r[0], date) else '–'}{b}{unit}"


#: (item, the abstract's words, engine text from the values, does it agree)
_ABSTRACT: list[tuple[str, str, Callable[[dict], str], Callable[[dict], bool]]] = [
    ("Patients", "five pediatric patients with R/R B-ALL",
     lambda v: f"{v['n_patients']} transplanted; B-ALL {v['diagnosis'].get('b_all', 0)}; "
               f"relapsed before HSCT {v['relapsed_before_hsct']}; age {_fmt_range(v['age_at_hsct_years_range'], ' y')}",
     lambda v: v["n_patients"] == 5 and v["diagnosis"].get("b_all", 0) == 5 and v["relapsed_before_hsct"] == 5),
    ("HSCT dates", "between January 2020 and June 2025",
     lambda v: _fmt_range(v["hsct_on_range"]),
     lambda v: _within(v["hsct_on_range"], date(2020, 1, 1), date(2025, 6, 30))),
    ("Blinatumomab cycles", "one to two 28-day cycles, all completed",
     lambda v: f"{_fmt_range(v['blinatumomab_cycles_range'])} cycles of {_fmt_range(v['blinatumomab_cycle_days_range'])} "
               f"days; completed {v['blinatumomab_completed_all']}/{v['n_patients']}",
     lambda v: _within(v["blinatumomab_cycles_range"], 1, 2) and _within(v["blinatumomab_cycle_days_range"], 28, 28)
     and v["blinatumomab_completed_all"] == v["n_patients"]),
    ("MRD negativity (< 0.01%) before HSCT", "all five",
     lambda v: f"{v['mrd_negative_before_hsct']}/{v['n_patients']}",
     lambda v: v["mrd_negative_before_hsct"] == 5),
    ("Donors", "one matched sibling and four haploidentical",
     lambda v: ", ".join(f"{label(k)} {c}" for k, c in v["donor"].items()) or "–",
     lambda v: v["donor"] == {"haploidentical": 4, "matched_sibling": 1}),
    ("Median interval blinatumomab completion → HSCT", "32 days",
     lambda v: f"{_num(v['median_days_blinatumomab_to_hsct'])} days (range {_fmt_range(v['days_blinatumomab_to_hsct_range'])})",
     lambda v: v["median_days_blinatumomab_to_hsct"] == 32),
    ("Median neutrophil engraftment", "day +12",
     lambda v: f"day +{_num(v['median_neutrophil_engraftment_day'])} (range {_fmt_range(v['neutrophil_engraftment_day_range'])})",
     lambda v: v["median_neutrophil_engraftment_day"] == 12),
    ("Median platelet engraftment", "day +9",
     lambda v: f"day +{_num(v['median_platelet_engraftment_day'])} (range {_fmt_range(v['platelet_engraftment_day_range'])})",
     lambda v: v["median_platelet_engraftment_day"] == 9),
    ("Full donor chimerism", "achieved within 1–3 months",
     lambda v: f"{v['full_donor_chimerism_patients']}/{v['n_patients']}, days {_fmt_range(v['full_donor_chimerism_day_range'])}",
     lambda v: v["full_donor_chimerism_patients"] == v["n_patients"] and _within(v["full_donor_chimerism_day_range"], 30, 90)),
    ("Full donor chimerism sustained", "sustained throughout follow-up",
     lambda v: f"{v['full_donor_chimerism_sustained_patients']}/{v['full_donor_chimerism_patients']}",
     lambda v: v["full_donor_chimerism_sustained_patients"] == v["full_donor_chimerism_patients"] == v["n_patients"]),
    ("Engraftment syndrome", "n = 4", lambda v: f"n = {v['complications']['engraftment_syndrome']}",
     lambda v: v["complications"]["engraftment_syndrome"] == 4),
    ("CMV reactivation", "n = 4", lambda v: f"n = {v['complications']['cmv_reactivation']}",
     lambda v: v["complications"]["cmv_reactivation"] == 4),
    ("EBV reactivation", "n = 1", lambda v: f"n = {v['complications']['ebv_reactivation']}",
     lambda v: v["complications"]["ebv_reactivation"] == 1),
    ("Clostridioides difficile enterocolitis", "n = 1",
     lambda v: f"n = {v['complications']['clostridioides_difficile_enterocolitis']}",
     lambda v: v["complications"]["clostridioides_difficile_enterocolitis"] == 1),
    ("Steroid-refractory acute GVHD", "n = 2", lambda v: f"n = {v['complications']['sr_agvhd']}",
     lambda v: v["complications"]["sr_agvhd"] == 2),
    ("Transplant-related mortality", "none",
     lambda v: f"{v['transplant_related_mortality']} deaths without prior relapse ({v['deaths']} deaths)",
     lambda v: v["transplant_related_mortality"] == 0),
    ("Median follow-up", "173 days (range 52–1,015)",
     lambda v: f"{_num(v['median_follow_up_days'])} days (range {_fmt_range(v['follow_up_range_days'])}); "
               f"reverse KM {_num(v['reverse_km_median_follow_up_days'])}",
     lambda v: v["median_follow_up_days"] == 173 and v["follow_up_range_days"] == [52, 1015]),
    ("Alive", "all patients", lambda v: f"{v['alive_at_last_follow_up']}/{v['n_patients']}",
     lambda v: v["alive_at_last_follow_up"] == v["n_patients"] == 5),
    ("Continuous complete remission", "all patients",
     lambda v: f"{v['continuous_complete_remission']}/{v['n_patients']}",
     lambda v: v["continuous_complete_remission"] == v["n_patients"] == 5),
    ("Active GVHD at last follow-up", "none", lambda v: f"{v['active_gvhd_at_last_follow_up']}",
     lambda v: v["active_gvhd_at_last_follow_up"] == 0),
    ("Overall and failure-free survival at last follow-up", "all alive, none failed",
     lambda v: f"OS {_pct(v['os_at_last_follow_up'])}, EFS {_pct(v['efs_at_last_follow_up'])}",
     lambda v: v["os_at_last_follow_up"] == 1.0 and v["efs_at_last_follow_up"] == 1.0),
]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _abstract(values: dict[str, Any]) -> pl.DataFrame:
    rows = []
    for item, paper, engine, agrees in _ABSTRACT:
        try:
            text, ok = engine(values), bool(agrees(values))
        except (TypeError, ValueError, KeyError):
            text, ok = "–", False
        rows.append({"item": item, "paper": paper, "engine": text, "agrees": ok})
    return pl.DataFrame(rows, schema={"item": pl.String, "paper": pl.String, "engine": pl.String,
                                      "agrees": pl.Boolean})


# -------------------------------------------------------------------------------------- rendering

LISTING_COLUMNS = {
    "patient_id": "patient", "hsct_on": "HSCT", "age_at_hsct_years": "age", "donor": "donor",
    "blinatumomab_cycles": "cycles", "days_blinatumomab_to_hsct": "blina→HSCT",
    "mrd_negative_before_hsct": "MRD-neg", "neutrophil_day": "ANC day", "platelet_day": "PLT day",
    "full_donor_chimerism_day": "FDC day", "complications": "complications", "follow_up_days": "follow-up",
    "vital_status": "status", "continuous_cr": "CCR", "active_gvhd": "active GVHD",
}


def _listing_rows(r: Report) -> tuple[list[str], list[list[str]]]:
    heads = list(LISTING_COLUMNS.values())
    rows = []
    for rec in r.patients.head(LISTING_MAX_PATIENTS).iter_rows(named=True):
        row = []
        for k in LISTING_COLUMNS:
            x = rec.get(k)
            if k == "age_at_hsct_years" and x is not None:
                x = f"{x:.1f}"
            elif isinstance(x, bool):
                x = "yes" if x else "no"
            elif k == "donor":
                x = label(x)
            row.append("–" if x is None else str(x))
        rows.append(row)
    return heads, rows


def _when(r: Report) -> tuple[str, str]:
    as_of = str(r.as_of) if r.as_of else "no limit (every clinical date)"
    known = (r.known_at.isoformat() if r.known_at
             else f"now (latest knowledge; store clock {r.computed_at.isoformat(timespec='seconds')})")
    return as_of, known


def _parameter_lines(r: Report) -> list[str]:
    lines = []
    for p in r.parameters.iter_rows(named=True):
        tag = f"   <- override (default {p['default']})" if p["overridden"] else ""
        lines.append(f"{p['name']} = {p['value']}{tag}")
    return lines


def _md_table(heads: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return out


def _sectioned(df: pl.DataFrame) -> list[list[str]]:
    rows, last = [], None
    for sec, item, value in df.iter_rows():
        if sec != last:
            rows.append([f"**{sec}**", ""])
            last = sec
        rows.append([item, value])
    return rows


def render_markdown(r: Report, figures: Mapping[str, str] | None = None) -> str:
    """The report as Markdown; `figures` maps a figure stem to the (relative) PNG path to link."""
    as_of, known = _when(r)
    out = [f"# Outcomes report: {r.n_patients} patient{'s' if r.n_patients != 1 else ''} transplanted",
           "", f"- As of (clinical date): {as_of}", f"- Known at: {known}", f"- View: {r.view}",
           f"- Patients registered: {r.n_registered}; transplanted by the as-of date: {r.n_patients}",
           "- Every number below is computed from the projections (SQL and the engine's estimators).", ""]
    out += ["## Parameters", "",
            "Rule parameters used (defaults unless marked as an override):" if not r.overrides
            else f"Rule parameters used ({len(r.overrides)} override(s) marked):", "", "```"]
    out += _parameter_lines(r) + ["```", ""]
    out += [f"## Table 1. Patient, disease and transplant characteristics (N = {r.n_patients})", ""]
    out += _md_table(["Characteristic", "Value"], _sectioned(r.table1)) + [""]
    out += [f"## Table 2. Outcomes (N = {r.n_patients})", ""]
    out += _md_table(["Outcome", "Value"], _sectioned(r.outcomes)) + [""]
    out += ["## Patients", ""]
    out += _md_table(*_listing_rows(r)) + [""]
    if r.n_patients > LISTING_MAX_PATIENTS:
        out += [f"(the first {LISTING_MAX_PATIENTS} of {r.n_patients} patients by transplant date)", ""]
    if figures:
        out += ["## Figures", ""]
        for stem, path in figures.items():
            out += [f"![{FIGURES.get(stem, stem)}]({path})", "", f"*{FIGURES.get(stem, stem)}*", ""]
    out += ["## The paper's abstract vs the engine", "",
            "doi:10.14740/jh2132 (Tulsiyan et al., J Hematol 2025;14(6):307–313): each number of the abstract, "
            "and the value the engine computed from the events.", ""]
    out += _md_table(["Item", "Abstract", "Engine", "Agrees"],
                     [[a["item"], a["paper"], a["engine"], "yes" if a["agrees"] else "NO"]
                      for a in r.abstract.to_dicts()])
    agree = int(r.abstract["agrees"].sum())
    out += ["", f"{agree} of {r.abstract.height} abstract statements reproduced.", ""]
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 1em 0;font-size:.9em}
th,td{border-bottom:1px solid #e5e5e5;padding:.25em .7em;text-align:left;vertical-align:top}
th{background:#f4f6f8}tr.section td{font-weight:600;background:#fafafa;padding-top:.6em}
td.no{color:#b00020;font-weight:600}td.yes{color:#1b7f3b}
.meta{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.6em;font-size:.8em;overflow-x:auto}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.9em;color:#444}
"""


def _html_table(heads: list[str], rows: list[list[str]], sectioned: bool = False, agree_col: int | None = None) -> str:
    e = html.escape
    out = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr></thead><tbody>"]
    for row in rows:
        if sectioned and row[0].startswith("**"):
            out.append(f'<tr class="section"><td colspan="{len(heads)}">{e(row[0].strip("*"))}</td></tr>')
            continue
        cells = []
        for i, c in enumerate(row):
            cls = f' class="{"yes" if c == "yes" else "no"}"' if agree_col == i else ""
            cells.append(f"<td{cls}>{e(c)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def render_html(r: Report, svgs: Mapping[str, str] | None = None) -> str:
    """The report as one self-contained HTML page (inline CSS, figures as inline SVG)."""
    e = html.escape
    as_of, known = _when(r)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Outcomes report ({e(as_of)})</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>Outcomes report: {r.n_patients} patient{'s' if r.n_patients != 1 else ''} transplanted</h1>",
             '<p class="meta">',
             f"As of (clinical date): <b>{e(as_of)}</b><br>Known at: <b>{e(known)}</b><br>View: {e(r.view)}<br>"
             f"Patients registered: {r.n_registered}; transplanted by the as-of date: {r.n_patients}<br>"
             "Every number is computed from the projections (SQL and the engine's estimators).</p>",
             "<h2>Parameters</h2>", "<pre>" + e("\n".join(_parameter_lines(r))) + "</pre>",
             f"<h2>Table 1. Patient, disease and transplant characteristics (N = {r.n_patients})</h2>",
             _html_table(["Characteristic", "Value"], _sectioned(r.table1), sectioned=True),
             f"<h2>Table 2. Outcomes (N = {r.n_patients})</h2>",
             _html_table(["Outcome", "Value"], _sectioned(r.outcomes), sectioned=True),
             "<h2>Patients</h2>", _html_table(*_listing_rows(r))]
    if svgs:
        parts.append("<h2>Figures</h2>")
        for stem, svg in svgs.items():
            parts.append(f"<figure>{svg}<figcaption>{e(FIGURES.get(stem, stem))}</figcaption></figure>")
    parts += ["<h2>The paper's abstract vs the engine</h2>",
              "<p>doi:10.14740/jh2132 (Tulsiyan et al., J Hematol 2025;14(6):307–313): each number of the "
              "abstract, and the value the engine computed from the events.</p>",
              _html_table(["Item", "Abstract", "Engine", "Agrees"],
                          [[a["item"], a["paper"], a["engine"], "yes" if a["agrees"] else "NO"]
                           for a in r.abstract.to_dicts()], agree_col=3),
              f"<p>{int(r.abstract['agrees'].sum())} of {r.abstract.height} abstract statements reproduced.</p>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


#: most patients drawn one by one (swimmer lanes, count panels) and listed; a larger cohort shows the
#: first ones by transplant date and says so
SWIMMER_MAX_PATIENTS = 40
COUNTS_MAX_PATIENTS = 12
LISTING_MAX_PATIENTS = 60


def _first(df: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    return df.filter(pl.col("patient_id").is_in(ids)) if df.height else df


def render_figures(r: Report) -> dict[str, Any]:
    """The report's figures (matplotlib Figures), by file stem."""
    from . import figures as F

    ids = r.swimmer_lanes["patient_id"].to_list() if r.swimmer_lanes.height else []
    lanes = ids[:SWIMMER_MAX_PATIENTS]
    title = f"Patient timelines (N = {r.n_patients})" if len(lanes) == len(ids) else \
        f"Patient timelines: the first {len(lanes)} of {r.n_patients} patients by transplant date"
    panels = ids[:COUNTS_MAX_PATIENTS]
    km_titles = {k: f"{SURVIVAL_ENDPOINTS[k]} ({k.upper()})" for k in SURVIVAL_ENDPOINTS}
    return {
        "swimmer": F.swimmer_plot(_first(r.swimmer_lanes, lanes), _first(r.swimmer_spans, lanes),
                                  _first(r.swimmer_markers, lanes), title=title),
        "survival": F.km_plot(r.survival, titles=km_titles),
        "counts": F.count_trajectories(_first(r.counts, panels), _first(r.engraftment, panels),
                                       anc_threshold=r.thresholds["anc"], platelet_threshold=r.thresholds["platelets"],
                                       transfusions=_first(r.transfusions, panels)),
    }


def run_report(tl: Any, as_of: date | str | None = None, known_at: datetime | str | None = None,
               params: Mapping[str, Any] | None = None, out: str | Path | None = "report") -> int:
    """Build the report, print it (Markdown) and write report.md, report.html and the figures to `out`."""
    from . import figures as F

    report = build_report(tl, as_of=as_of, known_at=known_at, params=params)
    out_dir = Path(out if out is not None else "report")
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = render_figures(report)
    written: list[Path] = []
    svgs: dict[str, str] = {}
    for stem, fig in figs.items():
        saved = F.save_figure(fig, out_dir, stem)
        written += [saved["png"], saved["svg"]]
        svgs[stem] = saved["svg_markup"]
    md = render_markdown(report, {stem: f"{stem}.png" for stem in figs})
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, svgs), encoding="utf-8")
    sys.stdout.write(render_markdown(report) + "\n")
    print(f"written to {out_dir}/: report.md, report.html, " + ", ".join(p.name for p in written))
    return 0
