"""The report's tables, computed from one view of the projections: the patient listing behind Table 1,
Table 1, the outcomes table, survival and follow-up, and the frames the figures draw.

Every clinical fact comes from the projection tables (the rules live there, once); this module only
selects, counts and formats them, and runs the estimators (Kaplan–Meier, Aalen–Johansen, reverse
Kaplan–Meier). It does no I/O. The cohort is the patients transplanted by the as-of date (a `patients` row
with `hsct_on`); patients registered but not transplanted are counted separately. Complications after the
transplant are those with onset on day 0 or later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from ..projections.parameters import Params, registry
from .cumulative_incidence import AalenJohansen
from .follow_up import FollowUp, follow_up_summary
from .kaplan_meier import KaplanMeier
from .labels import COMPLICATION_LABELS, complication_label, label
from .survival import endpoint_frame, left_out
from .views import ProjectionView

SURVIVAL_ENDPOINTS = {"os": "Overall survival", "efs": "Event-free (failure-free) survival"}
#: the survival curves of the report's figure and the cohort page
FIGURE_SURVIVAL = {"os": "Overall survival (OS)", "lfs": "Leukaemia-free survival (LFS)",
                   "efs": "Event-free survival (EFS)", "grfs": "GVHD-free, relapse-free survival (GRFS)"}
#: the cumulative incidences (competing risks) of the report's figure and the cohort page
FIGURE_INCIDENCE = {"relapse": "Relapse", "nrm": "Non-relapse mortality", "agvhd_2_4": "Acute GVHD grade II–IV",
                    "cgvhd": "Chronic GVHD", "cmv_reactivation": "CMV reactivation"}


@dataclass
class Report:
    """Everything the report shows, as computed values and polars tables."""

    as_of: date | None
    known_at: datetime | None
    computed_at: datetime  # the store clock when the report was made (the "now" of known_at=None)
    view: str
    parameters: pl.DataFrame  # name, value, default, unit, overridden, module, doc
    thresholds: dict[str, float]
    n_registered: int
    patients: pl.DataFrame  # one row per transplanted patient (the listing behind Table 1 and outcomes)
    table1: pl.DataFrame  # section, characteristic, value
    outcomes: pl.DataFrame  # section, outcome, value
    complications: pl.DataFrame  # complication, label, patients, episodes
    infections: pl.DataFrame  # category, organism, site, patients, episodes, c_difficile_enterocolitis
    survival: dict[str, pl.DataFrame | None]  # endpoint -> KaplanMeier.table
    survival_summary: pl.DataFrame  # endpoint, what, time, estimate, lower, upper, longest_follow_up
    follow_up: FollowUp | None
    curves: dict[str, pl.DataFrame | None] = field(default_factory=dict)  # os, lfs, efs, grfs: KaplanMeier.table
    incidence: dict[str, pl.DataFrame | None] = field(default_factory=dict)  # relapse, nrm, …: AalenJohansen.table
    values: dict[str, Any] = field(default_factory=dict)  # named numbers of the cohort
    notes: list[str] = field(default_factory=list)
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


# ------------------------------------------------------------------------------------------ formatting

def _num(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and x.is_integer() and digits <= 1:
        return str(int(x))
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


def plain(x: Any) -> Any:
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


def counts_text(values: Sequence[Any], n: int | None = None) -> str:
    """'haploidentical 4 (80%), matched sibling 1 (20%)', most frequent first."""
    n = n if n is not None else len(values)
    tally: dict[Any, int] = {}
    for v in values:
        tally[v] = tally.get(v, 0) + 1
    order = sorted(tally.items(), key=lambda kv: (-kv[1], label(kv[0])))
    return ", ".join(f"{label(k)} {c} ({100.0 * c / n:.0f}%)" for k, c in order) if n else "–"


def fmt_range(r: Sequence[Any] | None, unit: str = "") -> str:
    if r is None:
        return "–"
    a, b = (str(x) if isinstance(x, date) else _num(x) for x in r)
    return f"{a}{unit}" if a == b else f"{a}{' to ' if isinstance(r[0], date) else '–'}{b}{unit}"


def _pct_ci(est: float | None, lo: float | None, hi: float | None) -> str:
    if est is None:
        return "–"
    return f"{100 * est:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%)"


# ----------------------------------------------------------------------------------------- the queries

_COHORT = "cohort AS (SELECT patient_id, hsct_on FROM patients WHERE hsct_on IS NOT NULL)"
_COHORT_IN = ("cohort AS (SELECT patient_id, hsct_on FROM patients WHERE hsct_on IS NOT NULL "
              "AND list_contains($ids, patient_id))")

#: The listing behind Table 1 and the outcomes: one row per transplanted patient, every column a
#: projection column (or a count over one).
LISTING_SQL = f"""
WITH {_COHORT},
cycles AS (
    SELECT patient_id, bool_and(completed) FILTER (WHERE started_on IS NOT NULL) AS blinatumomab_all_completed,
           min(infusion_days) FILTER (WHERE started_on IS NOT NULL) AS cycle_days_min,
           max(infusion_days) FILTER (WHERE started_on IS NOT NULL) AS cycle_days_max,
           min(start_day) AS blinatumomab_start_day
    FROM blinatumomab_cycles GROUP BY patient_id),
comp AS (
    SELECT c.patient_id, string_agg(DISTINCT c.complication, ', ' ORDER BY c.complication) AS complications
    FROM complications c WHERE c.day >= 0 GROUP BY c.patient_id),
os AS (SELECT patient_id, time_days AS follow_up_days FROM endpoints WHERE endpoint = 'os')
SELECT p.patient_id, p.sex, p.birth_date, p.age_at_hsct_years, p.disease, p.diagnosis_on, p.genetics,
       p.risk_group, p.relapse_count_before_hsct AS relapses_before_hsct,
       p.first_relapse_before_hsct_on AS first_relapse_on, p.relapse_sites_before_hsct AS relapse_sites,
       p.months_diagnosis_to_first_relapse AS months_diagnosis_to_relapse,
       t.frontline_chemotherapy AS frontline_therapy, t.salvage_chemotherapy AS salvage_therapy,
       coalesce(t.salvage_blocks, 0) AS salvage_blocks,
       b.blinatumomab_cycles, cycles.blinatumomab_all_completed, cycles.cycle_days_min, cycles.cycle_days_max,
       cycles.blinatumomab_start_day, b.blinatumomab_last_stopped_on, b.days_blinatumomab_to_hsct,
       b.mrd_before_hsct_on, b.mrd_before_hsct_method, b.mrd_before_hsct_specimen, b.mrd_before_hsct_percent,
       b.mrd_before_hsct_below_detection, b.mrd_negative_before_hsct,
       p.hsct_on, p.donor, p.graft_source, p.hla_match, p.cd34_e6_per_kg, p.conditioning_intensity,
       p.conditioning_regimen, p.conditioning_day, p.tbi_gy, p.serotherapy, p.gvhd_prophylaxis,
       g.neutrophil_day, g.platelet_day, g.graft_failure,
       p.full_donor_chimerism_day, p.full_donor_chimerism_sustained,
       comp.complications, s.relapses_after_hsct,
       p.last_contact_on, os.follow_up_days, p.vital_status, p.death_on, p.death_cause,
       s.disease_status AS disease_status_at_last_contact, s.continuous_complete_remission AS continuous_cr,
       s.active_gvhd AS active_gvhd_kinds, s.active_gvhd IS NOT NULL AS active_gvhd
FROM patients p JOIN cohort USING (patient_id)
LEFT JOIN bridging b USING (patient_id) LEFT JOIN engraftment g USING (patient_id)
LEFT JOIN prior_therapy t USING (patient_id) LEFT JOIN cycles USING (patient_id)
LEFT JOIN comp USING (patient_id) LEFT JOIN status_at_last_contact s USING (patient_id)
LEFT JOIN os USING (patient_id)
ORDER BY p.hsct_on, p.patient_id
"""


def _complication_counts(view: ProjectionView) -> pl.DataFrame:
    return view.sql(f"""
WITH {_COHORT}
SELECT c.complication, count(DISTINCT c.patient_id) AS patients, count(*) AS episodes
FROM complications c JOIN cohort USING (patient_id) WHERE c.day >= 0
GROUP BY c.complication ORDER BY c.complication""")


def _infections(view: ProjectionView) -> pl.DataFrame:
    return view.sql(f"""
WITH {_COHORT}
SELECT category, coalesce(organism, 'organism not recorded') AS organism, site,
       count(DISTINCT i.patient_id) AS patients, count(*) AS episodes, c_difficile_enterocolitis
FROM infections i JOIN cohort USING (patient_id) WHERE i.day >= 0
GROUP BY ALL ORDER BY patients DESC, category, organism, site""")


def _endpoint_counts(view: ProjectionView) -> dict[str, dict[str, int]]:
    df = view.sql(f"""
WITH {_COHORT}
SELECT endpoint, count(*) AS n, count(*) FILTER (WHERE status = 1) AS events,
       count(*) FILTER (WHERE status = 2) AS competing
FROM endpoints JOIN cohort USING (patient_id) GROUP BY endpoint""")
    return {r["endpoint"]: r for r in df.to_dicts()}


def _frame(view: ProjectionView, endpoint: str) -> pl.DataFrame | None:
    """The endpoint's rows, None if no patient has them in this view."""
    try:
        df = endpoint_frame(view, endpoint)
    except ValueError:
        return None
    return None if df.is_empty() else df


def _km(view: ProjectionView, endpoint: str) -> KaplanMeier | None:
    df = _frame(view, endpoint)
    return None if df is None else KaplanMeier().fit(df, duration="time_days", event="status")


#: the fixed times of the survival headline (days, label): estimates there, never "at the last observed time"
HEADLINE_TIMES = ((365.0, "1 year"), (730.0, "2 years"))


def _survival_rows(name: str, km: KaplanMeier | None) -> list[dict[str, Any]]:
    """The estimate with its 95% CI at each headline time; None where the follow-up does not reach it
    (the curve is not defined beyond the last observed time)."""
    if km is None:
        return []
    t_max = float(km.table["time"].max())
    rows = []
    for t, what in HEADLINE_TIMES:
        r = km.at(t).row(0, named=True) if t <= t_max else {"estimate": None, "lower": None, "upper": None}
        rows.append({"endpoint": name, "what": what, "time": t, "estimate": r["estimate"], "lower": r["lower"],
                     "upper": r["upper"], "longest_follow_up": t_max})
    return rows


def _aj(view: ProjectionView, endpoint: str) -> pl.DataFrame | None:
    df = _frame(view, endpoint)
    return None if df is None else AalenJohansen().fit(df, duration="time_days", status="status").table


def _cif_at(view: ProjectionView, endpoint: str, t: float) -> tuple[float, float, float] | None:
    df = _frame(view, endpoint)
    if df is None:
        return None
    r = AalenJohansen().fit(df, duration="time_days", status="status").at(t).row(0, named=True)
    return r["estimate"], r["lower"], r["upper"]


def figure_frames(view: ProjectionView, ids: Sequence[str] | None = None,
                  counts: bool = True) -> dict[str, pl.DataFrame]:
    """The rows the figures draw (swimmer lanes, spans and markers; counts, transfusions and engraftment days
    unless `counts` is false), for the transplanted patients, or those of them in `ids`."""
    cohort = _COHORT if ids is None else _COHORT_IN
    bound = None if ids is None else {"ids": list(ids)}

    def q(sql: str) -> pl.DataFrame:
        return view.sql(sql.replace("{cohort}", cohort), bound)

    lanes = q("""
WITH {cohort},
starts AS (SELECT patient_id, min(start_day) AS first_day FROM blinatumomab_cycles GROUP BY patient_id)
SELECT p.patient_id, least(coalesce(s.first_day, 0), coalesce(p.conditioning_day, 0), 0) AS start_day,
       date_diff('day', p.hsct_on, coalesce(p.death_on, p.last_contact_on)) AS end_day,
       p.patient_id AS label
FROM patients p JOIN cohort USING (patient_id) LEFT JOIN starts s USING (patient_id)
ORDER BY p.hsct_on, p.patient_id""")
    spans = q("""
WITH {cohort},
last AS (SELECT p.patient_id, date_diff('day', p.hsct_on, p.last_contact_on) AS last_day
         FROM patients p JOIN cohort USING (patient_id))
SELECT c.patient_id, 'blinatumomab' AS kind, c.start_day, coalesce(c.stop_day, least(0, last.last_day)) AS end_day
FROM blinatumomab_cycles c JOIN last USING (patient_id) WHERE c.start_day IS NOT NULL
UNION ALL
SELECT p.patient_id, 'conditioning', p.conditioning_day, 0
FROM patients p JOIN cohort USING (patient_id) WHERE p.conditioning_day IS NOT NULL
UNION ALL
SELECT g.patient_id, CASE WHEN g.kind = 'chronic' THEN 'cgvhd' ELSE 'agvhd' END, g.diagnosed_day,
       coalesce(g.resolved_day, last.last_day)
FROM gvhd_episodes g JOIN last USING (patient_id)
ORDER BY 1, 3""")
    markers = q("""
WITH {cohort},
m AS (
    SELECT patient_id, complication AS kind, day FROM complications
    WHERE day >= 0 AND complication NOT IN ('agvhd_2_4', 'agvhd_3_4', 'cgvhd_systemic')
    UNION ALL SELECT patient_id, 'neutrophil_engraftment', neutrophil_day FROM engraftment
              WHERE neutrophil_day IS NOT NULL
    UNION ALL SELECT patient_id, 'platelet_engraftment', platelet_day FROM engraftment WHERE platelet_day IS NOT NULL
    UNION ALL SELECT patient_id, 'full_donor_chimerism', full_donor_chimerism_day FROM patients
              WHERE full_donor_chimerism_day IS NOT NULL
    UNION ALL SELECT patient_id, 'relapse', day FROM events WHERE type = 'relapse' AND day > 0
    UNION ALL SELECT patient_id, CASE WHEN vital_status = 'dead' THEN 'death' ELSE 'last_contact' END,
                     date_diff('day', hsct_on, coalesce(death_on, last_contact_on))
              FROM patients WHERE hsct_on IS NOT NULL)
SELECT m.patient_id, m.kind, m.day FROM m JOIN cohort USING (patient_id) ORDER BY m.patient_id, m.day, m.kind""")
    frames = {"swimmer_lanes": lanes, "swimmer_spans": spans, "swimmer_markers": markers}
    if not counts:
        return frames
    count_rows = q("""
WITH {cohort}
SELECT b.patient_id, b.day, b.anc_e9_per_l AS anc, b.platelets_e9_per_l AS platelets
FROM blood_counts b JOIN cohort c USING (patient_id)
WHERE b.day BETWEEN -14 AND 120 AND (b.anc_e9_per_l IS NOT NULL OR b.platelets_e9_per_l IS NOT NULL)
ORDER BY c.hsct_on, b.patient_id, b.day""")
    transfusions = q("""
WITH {cohort}
SELECT b.patient_id, b.day FROM blood_counts b JOIN cohort USING (patient_id)
WHERE b.platelets_transfused AND b.day BETWEEN -14 AND 120 ORDER BY b.patient_id, b.day""")
    engraftment = q("""
WITH {cohort}
SELECT g.patient_id, g.neutrophil_day, g.platelet_day FROM engraftment g JOIN cohort USING (patient_id)
ORDER BY g.patient_id""")
    return frames | {"counts": count_rows, "transfusions": transfusions, "engraftment": engraftment}


# --------------------------------------------------------------------------------------------- tables

def parameter_table(params: Params) -> pl.DataFrame:
    rows = [{"name": p.name, "value": str(params[p.name]), "default": str(p.default), "unit": p.unit,
             "overridden": p.name in params.overridden, "module": p.module.__name__.rsplit(".", 1)[-1],
             "doc": p.doc} for p in registry().values()]
    return pl.DataFrame(rows, schema={"name": pl.String, "value": pl.String, "default": pl.String,
                                      "unit": pl.String, "overridden": pl.Boolean, "module": pl.String,
                                      "doc": pl.String})


def _table1(p: pl.DataFrame) -> pl.DataFrame:
    n = p.height
    col = p.get_column
    rows: list[tuple[str, str, str]] = []

    def add(section: str, what: str, value: str) -> None:
        rows.append((section, what, value))

    S = "Patients and disease"
    add(S, "Patients transplanted", str(n))
    add(S, "Age at HSCT, years, median (range)", median_range(col("age_at_hsct_years").to_list()))
    add(S, "Sex", counts_text(col("sex").to_list()))
    add(S, "Diagnosis", counts_text(col("disease").to_list()))
    add(S, "Diagnosis date (range)", fmt_range([col("diagnosis_on").min(), col("diagnosis_on").max()])
        if col("diagnosis_on").drop_nulls().len() else "–")
    genetics = [g for g in col("genetics").to_list() if g]
    add(S, "Genetics at diagnosis", counts_text(genetics, n) + (f"; not recorded {n - len(genetics)}"
                                                                 if len(genetics) < n else "") if n else "–")
    add(S, "Relapses before HSCT", counts_text([f"{k} relapse{'s' if k != 1 else ''}"
                                                for k in col("relapses_before_hsct").to_list()]))
    sites = [s for v in col("relapse_sites").to_list() if v for s in v.split(", ")]
    add(S, "Relapse site", counts_text(sites, n) if sites else "–")
    add(S, "Months from diagnosis to relapse, median (range)", median_range(col("months_diagnosis_to_relapse").to_list()))
    S = "Prior therapy"
    add(S, "Front-line chemotherapy", counts_text([v for v in col("frontline_therapy").to_list() if v], n))
    blocks = [r for v in col("salvage_therapy").to_list() if v for r in dict.fromkeys(v.split(" → "))]
    add(S, "Salvage chemotherapy after relapse (patients)", counts_text(blocks, n) if blocks else "–")
    add(S, "Salvage blocks before blinatumomab, median (range)", median_range(col("salvage_blocks").to_list()))
    S = "Blinatumomab bridging"
    add(S, "Blinatumomab cycles", counts_text([f"{k} cycle{'s' if k != 1 else ''}"
                                               for k in col("blinatumomab_cycles").to_list()]))
    lens = [x for x in col("cycle_days_min").to_list() + col("cycle_days_max").to_list() if x is not None]
    add(S, "Cycle length, days" + (" (range)" if lens and min(lens) != max(lens) else ""),
        fmt_range([min(lens), max(lens)]) if lens else "–")
    add(S, "All cycles completed", n_of(sum(1 for v in col("blinatumomab_all_completed").to_list() if v), n))
    add(S, "Days from last blinatumomab to HSCT, median (range)", median_range(col("days_blinatumomab_to_hsct").to_list()))
    add(S, "MRD-negative before HSCT", n_of(sum(1 for v in col("mrd_negative_before_hsct").to_list() if v), n))
    mrd = []
    for r in p.iter_rows(named=True):
        if r["mrd_before_hsct_percent"] is None:
            continue
        val = (f"< LOD (sensitivity {r['mrd_before_hsct_percent']:g}%)" if r["mrd_before_hsct_below_detection"]
               else f"{r['mrd_before_hsct_percent']:g}%")
        mrd.append(f"{r['patient_id']} {val}" + (f" {r['mrd_before_hsct_method']}" if r["mrd_before_hsct_method"] else "")
                   + (f" {label(r['mrd_before_hsct_specimen'])}" if r["mrd_before_hsct_specimen"] else ""))
    add(S, "Last MRD before HSCT", "; ".join(mrd) or "–")
    S = "Donor and graft"
    add(S, "Donor", counts_text(col("donor").to_list()))
    add(S, "Graft source", counts_text(col("graft_source").to_list()))
    add(S, "HLA match", counts_text(col("hla_match").to_list()))
    add(S, "CD34+ cells ×10⁶/kg, median (range)", median_range(col("cd34_e6_per_kg").to_list()))
    S = "Conditioning and GVHD prophylaxis"
    add(S, "Conditioning intensity", counts_text(col("conditioning_intensity").to_list()))
    add(S, "Conditioning regimen", counts_text(col("conditioning_regimen").to_list()))
    tbi = [t for t in col("tbi_gy").to_list() if t]
    add(S, "TBI", f"{n_of(len(tbi), n)}; dose {counts_text([f'{t:g} Gy' for t in tbi], len(tbi))}" if tbi else n_of(0, n))
    add(S, "Serotherapy", counts_text(col("serotherapy").to_list()))
    add(S, "GVHD prophylaxis", counts_text(col("gvhd_prophylaxis").to_list()))
    return pl.DataFrame(rows, schema=["section", "characteristic", "value"], orient="row")


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
            _pct_ci(r["estimate"], r["lower"], r["upper"]) if r["estimate"] is not None
            else f"not estimable: the longest follow-up is day {r['longest_follow_up']:g}")
    S = "Follow-up"
    if fu is not None:
        add(S, "Follow-up, days, median (range)", f"{_num(fu.median_all)} ({_num(fu.min_all)}–{_num(fu.max_all)})")
        lim = f" (95% CI {_num(fu.lower_reverse_km)}–{_num(fu.upper_reverse_km)})"
        add(S, "Median follow-up, reverse Kaplan–Meier, days",
            _num(fu.median_reverse_km).replace("inf", "not reached") + lim.replace("inf", "not reached"))
    else:
        add(S, "Follow-up", "–")
    S = "Status at last follow-up"
    add(S, "Alive", n_of(v["alive_at_last_follow_up"], n))
    add(S, "Alive in continuous complete remission", n_of(v["continuous_complete_remission"], n))
    add(S, "Active GVHD", n_of(v["active_gvhd_at_last_follow_up"], n))
    return pl.DataFrame(rows, schema=["section", "outcome", "value"], orient="row")


def _values(p: pl.DataFrame, comp: pl.DataFrame, infections: pl.DataFrame, ends: dict[str, dict[str, int]],
            kms: dict[str, KaplanMeier | None], fu: FollowUp | None, nrm_1y: tuple[float, float, float] | None,
            n_registered: int) -> dict[str, Any]:
    """The cohort's named numbers (what a data lock or a paper quotes)."""
    def vals(name: str) -> list[Any]:
        return [v for v in p[name].to_list() if v is not None]

    def med(name: str) -> Any:
        got = vals(name)
        return plain(pl.Series(got, dtype=pl.Float64).median()) if got else None

    def rng(name: str) -> list[Any] | None:
        got = vals(name)
        return [min(got), max(got)] if got else None

    def tally(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in vals(name):
            out[v] = out.get(v, 0) + 1
        return dict(sorted(out.items()))

    def last_estimate(name: str) -> float | None:
        km = kms.get(name)
        return None if km is None else float(km.table["estimate"][-1])

    comp_n = {r["complication"]: r["patients"] for r in comp.to_dicts()}
    cdiff = int(infections.filter(pl.col("c_difficile_enterocolitis"))["patients"].sum()) if infections.height else 0
    lens = vals("cycle_days_min") + vals("cycle_days_max")
    return {
        "n_registered": n_registered,
        "n_patients": p.height,
        "diagnosis": tally("disease"),
        "hsct_on_range": rng("hsct_on"),
        "age_at_hsct_years_range": rng("age_at_hsct_years"),
        "relapsed_before_hsct": sum(1 for v in vals("relapses_before_hsct") if v),
        "blinatumomab_cycles_range": rng("blinatumomab_cycles"),
        "blinatumomab_cycles": tally("blinatumomab_cycles"),
        "blinatumomab_cycle_days_range": [min(lens), max(lens)] if lens else None,
        "blinatumomab_completed_all": sum(1 for v in vals("blinatumomab_all_completed") if v),
        "mrd_negative_before_hsct": sum(1 for v in vals("mrd_negative_before_hsct") if v),
        "donor": tally("donor"),
        "graft_source": tally("graft_source"),
        "median_days_blinatumomab_to_hsct": med("days_blinatumomab_to_hsct"),
        "days_blinatumomab_to_hsct_range": rng("days_blinatumomab_to_hsct"),
        "median_cd34_e6_per_kg": med("cd34_e6_per_kg"),
        "neutrophil_engrafted": len(vals("neutrophil_day")),
        "platelet_engrafted": len(vals("platelet_day")),
        "median_neutrophil_engraftment_day": med("neutrophil_day"),
        "neutrophil_engraftment_day_range": rng("neutrophil_day"),
        "median_platelet_engraftment_day": med("platelet_day"),
        "platelet_engraftment_day_range": rng("platelet_day"),
        "full_donor_chimerism_patients": len(vals("full_donor_chimerism_day")),
        "full_donor_chimerism_day_range": rng("full_donor_chimerism_day"),
        "median_full_donor_chimerism_day": med("full_donor_chimerism_day"),
        "full_donor_chimerism_sustained_patients": sum(1 for v in vals("full_donor_chimerism_sustained") if v),
        "complications": {
            key: comp_n.get(key, 0)
            for key in ("engraftment_syndrome", "cmv_reactivation", "ebv_reactivation", "infection", "agvhd",
                        "agvhd_2_4", "agvhd_3_4", "sr_agvhd", "cgvhd", "graft_failure")
        } | {"clostridioides_difficile_enterocolitis": cdiff},
        "deaths": sum(1 for v in vals("vital_status") if v == "dead"),
        "transplant_related_mortality": ends.get("nrm", {}).get("events", 0),
        "nrm_cumulative_incidence_1y": None if nrm_1y is None else nrm_1y[0],
        "relapses_after_hsct": ends.get("relapse", {}).get("events", 0),
        "graft_failures": len(vals("graft_failure")),
        "median_follow_up_days": None if fu is None else plain(fu.median_all),
        "follow_up_range_days": None if fu is None else [plain(fu.min_all), plain(fu.max_all)],
        "reverse_km_median_follow_up_days": None if fu is None else plain(fu.median_reverse_km),
        "alive_at_last_follow_up": sum(1 for v in vals("vital_status") if v == "alive"),
        "continuous_complete_remission": sum(1 for v in vals("continuous_cr") if v),
        "active_gvhd_at_last_follow_up": sum(1 for v in vals("active_gvhd") if v),
        "os_at_last_follow_up": last_estimate("os"),
        "efs_at_last_follow_up": last_estimate("efs"),
    }


def compute(view: ProjectionView, params: Params, *, as_of: date | None = None,
                 known_at: datetime | None = None, computed_at: datetime) -> Report:
    """Compute the report from one view of the projections (made with `params`)."""
    n_registered = int(view.sql("SELECT count(*) AS n FROM patients")["n"][0])
    p = view.sql(LISTING_SQL)
    comp = _complication_counts(view)
    infections = _infections(view)
    ends = _endpoint_counts(view)
    kms = {name: _km(view, name) for name in SURVIVAL_ENDPOINTS}
    curves = {name: kms[name] if name in kms else _km(view, name) for name in FIGURE_SURVIVAL}
    incidence = {name: _aj(view, name) for name in FIGURE_INCIDENCE}
    nrm_1y = _cif_at(view, "nrm", 365.0)
    frames = figure_frames(view)
    fu = None
    os_df = p.select("follow_up_days", (pl.col("vital_status") == "dead").cast(pl.Int64).alias("status")) \
        .filter(pl.col("follow_up_days").is_not_null())
    if os_df.height:
        fu = follow_up_summary(os_df, duration="follow_up_days", died="status")
    comp_table = pl.DataFrame(
        [{"complication": r["complication"], "label": complication_label(r["complication"]),
          "patients": int(r["patients"]), "episodes": int(r["episodes"])} for r in comp.to_dicts()],
        schema={"complication": pl.String, "label": pl.String, "patients": pl.Int64, "episodes": pl.Int64})
    survival_summary = pl.DataFrame(
        [row for name, km in kms.items() for row in _survival_rows(name, km)],
        schema={"endpoint": pl.String, "what": pl.String, "time": pl.Float64, "estimate": pl.Float64,
                "lower": pl.Float64, "upper": pl.Float64, "longest_follow_up": pl.Float64})
    values = _values(p, comp, infections, ends, kms, fu, nrm_1y, n_registered)
    return Report(
        as_of=as_of, known_at=known_at, computed_at=computed_at, view=view.description,
        parameters=parameter_table(params),
        thresholds={"anc": float(params["anc_threshold_e9_per_l"]),
                    "platelets": float(params["platelet_threshold_e9_per_l"])},
        n_registered=n_registered, patients=p, table1=_table1(p),
        outcomes=_outcomes(p, values, comp_table, infections, survival_summary, fu, nrm_1y),
        complications=comp_table, infections=infections,
        survival={k: (v.table if v is not None else None) for k, v in kms.items()},
        curves={k: (v.table if v is not None else None) for k, v in curves.items()}, incidence=incidence,
        survival_summary=survival_summary, follow_up=fu, values=values, notes=[*view.notes, *left_out(view)],
        **frames)
