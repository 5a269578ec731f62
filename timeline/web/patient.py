"""The patient page's content: one patient's projection tables (as of a date, as known at a moment) and
their history of corrections and retractions.

Everything drawn comes from the projection tables of one view (`Timeline.as_of`): the file as it is when no
as-of or known-at is given, else the patient replayed from the store by the same models (the path of
`timeline sql --as-of` restricted to one patient). Nothing here derives a clinical fact; who corrected or
retracted what, when and why comes from the history API (`timeline.history.lines`), the event's type and
source from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from ..history import SHORT_ID, Line, lines
from ..queries.views import ProjectionView
from .charts import Axis, Lanes, rule_x, rule_y, values_layer

#: the tables of the page and their query (one patient: `?` is the patient id), in lane order
TABLES: dict[str, str] = {
    "patient": "SELECT * FROM patients WHERE patient_id = ?",
    "transplants": "SELECT transplant_number, day0_on, ordinal, is_index FROM transplants WHERE patient_id = ? "
                   "ORDER BY day0_on",
    "cycles": "SELECT cycle, started_on, start_day, stopped_on, stop_day, stop_reason, completed FROM "
              "blinatumomab_cycles WHERE patient_id = ? ORDER BY cycle",
    "engraftment": "SELECT * FROM engraftment WHERE patient_id = ?",
    "counts": "SELECT occurred_on, day, anc_e9_per_l, platelets_e9_per_l, platelets_transfused, red_cells_transfused "
              "FROM blood_counts WHERE patient_id = ? ORDER BY occurred_on",
    "chimerism": "SELECT occurred_on, day, compartment, donor_percent, category, method, event_id FROM chimerism "
                 "WHERE patient_id = ? ORDER BY occurred_on, compartment",
    "mrd": "SELECT occurred_on, day, method, specimen, result_percent, below_detection, sensitivity_percent, negative, "
           "event_id FROM mrd_tests WHERE patient_id = ? ORDER BY occurred_on",
    "viral_loads": "SELECT occurred_on, day, virus, iu_per_ml, below_detection, load_iu_per_ml, at_or_above_threshold, "
                   "event_id FROM viral_loads WHERE patient_id = ? ORDER BY virus, occurred_on",
    "viral_episodes": "SELECT virus, episode, onset_on, onset_day, last_positive_on, last_positive_day, "
                      "peak_iu_per_ml, detail FROM viral_episodes WHERE patient_id = ? ORDER BY virus, episode",
    "gvhd_episodes": "SELECT kind, episode, diagnosed_on, diagnosed_day, resolved_on, resolved_day FROM gvhd_episodes "
                     "WHERE patient_id = ? ORDER BY kind, episode",
    "gvhd_course": "SELECT occurred_on, day, type, kind, grade, severity, response, steroid_mg_per_kg_day, line, "
                   "agents, event_id FROM gvhd_course WHERE patient_id = ? ORDER BY occurred_on",
    "complications": "SELECT complication, onset_on, day, detail, grade, episode FROM complications "
                     "WHERE patient_id = ? ORDER BY onset_on, complication",
    "infections": "SELECT onset_on, day, category, organism, site, event_id FROM infections WHERE patient_id = ? "
                  "ORDER BY onset_on",
    "disease_status": "SELECT interval_number, status, from_on, to_on FROM disease_status WHERE patient_id = ? "
                      "ORDER BY interval_number",
    "events": "SELECT event_id, type, occurred_on, day FROM events WHERE patient_id = ? ORDER BY occurred_on, type",
    "queries": 'SELECT event_id, occurred_on, "check", severity, message, suggestion FROM data_queries '
               'WHERE patient_id = ? ORDER BY severity, occurred_on NULLS FIRST, "check"',
}


@dataclass
class PatientPage:
    """One patient's page: the tables (polars frames, one patient), the history lines, and what the view is."""

    patient_id: str
    as_of: date | None
    known_at: datetime | None
    view: str
    tables: dict[str, pl.DataFrame]
    history: list[Line]
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> type, source, marks for hovering

    @property
    def registered(self) -> bool:
        return self.tables["patient"].height == 1

    def row(self, name: str) -> dict[str, Any]:
        t = self.tables[name]
        return t.row(0, named=True) if t.height else {}


def read_patient(view: ProjectionView, patient_id: str) -> dict[str, pl.DataFrame]:
    """The page's tables for one patient, read from one view."""
    return {name: view.sql(query, [patient_id]) for name, query in TABLES.items()}


def _source(content: dict[str, Any]) -> str:
    """'form, record lab-17, recorded by dm.seed'."""
    parts = [str(content["source"])] if content.get("source") else []
    if content.get("source_record_id"):
        parts.append(f"record {content['source_record_id']}")
    if content.get("recorded_by"):
        parts.append(f"recorded by {content['recorded_by']}")
    return ", ".join(parts) or "not recorded"


def patient_page(view: ProjectionView, facts: list, patient_id: str, as_of: date | None,
                 known_at: datetime | None) -> PatientPage:
    """The page of `patient_id` from `view` and the patient's facts as known at `known_at` (the history API):
    the history is limited to events occurred by `as_of`, as the tables are."""
    tables = read_patient(view, patient_id)
    day_of = dict(zip(tables["events"]["event_id"].to_list(), tables["events"]["day"].to_list()))
    history = [x for x in lines(facts, day_of) if as_of is None or x.occurred_on <= as_of]
    by_id = {f.original.event_id: f for f in facts}
    info = {}
    for x in history:
        fact = by_id[x.event_id]
        info[x.event_id] = {"id": x.event_id[:SHORT_ID], "event": x.type, "source": _source(fact.content),
                            "amended": " | ".join(x.marks)}
    return PatientPage(patient_id, as_of, known_at, view.description, tables, history, info)


def _fmt(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:g}{unit}"


#: days before day 0 always shown in the transplant window (conditioning, the last counts before infusion)
WINDOW_BEFORE_DAYS = 30


def transplant_window(page: PatientPage, axis: Axis) -> tuple[Any, Any] | None:
    """The axis range of the transplant course: from the first blinatumomab cycle or conditioning before day
    0 (at least 30 days before it) to the last contact; None without a transplant (the whole history)."""
    pat = page.row("patient")
    if pat.get("hsct_on") is None:
        return None
    starts = [d for d in (*page.tables["cycles"]["start_day"].to_list(), pat.get("conditioning_day")) if d is not None]
    first = min([*starts, -WINDOW_BEFORE_DAYS])
    last = (pat["last_contact_on"] - pat["hsct_on"]).days if pat.get("last_contact_on") else None
    return axis.x(first, None), axis.x(last, None) if last is not None else None


def lanes_spec(page: PatientPage, params: Mapping[str, Any], mode: str = "day",
               whole: bool = False) -> dict[str, Any]:
    """The patient's course as a Vega-Lite spec: one lane per kind of data, on a shared axis of days from
    day 0 (`mode="day"`) or of dates, over the transplant course (`whole`: the whole history); thresholds
    are the rule parameters in force (`params`)."""
    t = page.tables
    pat = page.row("patient")
    day0 = pat.get("hsct_on")
    axis = Axis(mode, day0)
    lanes = Lanes(axis, page.info)
    y_row = {"field": "row", "type": "nominal", "title": None, "axis": {"labelLimit": 140}}

    # therapy and transplant
    rows = [lanes.span((c["started_on"], c["start_day"]), (c["stopped_on"], c["stop_day"]),
                       f"blinatumomab cycle {c['cycle']}", f"stopped: {c['stop_reason'] or 'not recorded'}",
                       row="blinatumomab") for c in t["cycles"].iter_rows(named=True) if c["started_on"] is not None]
    if pat.get("conditioning_on") is not None:
        rows.append(lanes.span((pat["conditioning_on"], pat["conditioning_day"]), (day0, 0),
                               "conditioning", f"{pat.get('conditioning_regimen') or ''} "
                               f"{pat.get('conditioning_intensity') or ''}".strip(), row="conditioning"))
    points = [lanes.point(r["day0_on"], None, f"transplant {r['transplant_number']}" + (" (index)" if r["is_index"] else ""),
                          f"{pat.get('donor') or ''} {pat.get('graft_source') or ''}".strip() if r["is_index"] else "",
                          row="transplant") for r in t["transplants"].iter_rows(named=True)]
    points += [lanes.point(g["occurred_on"], g["day"], f"{g['kind']} GVHD treatment line {g['line']}",
                           f"{g['agents'] or ''}" + (f", steroid {g['steroid_mg_per_kg_day']:g} mg/kg/day"
                                                     if g["steroid_mg_per_kg_day"] is not None else ""),
                           g["event_id"], row="GVHD treatment")
               for g in t["gvhd_course"].iter_rows(named=True) if g["type"] == "gvhd_treatment_started"]
    lanes.add("Therapy and transplant", [
        values_layer(rows, {"type": "bar", "height": 10, "cornerRadius": 2},
                     {"x2": None, "y": y_row, "color": {"field": "row", "type": "nominal", "legend": None,
                                                        "scale": {"range": ["#3b6fb6", "#b0b0b0"]}}}),
        values_layer(points, {"type": "point", "filled": True, "size": 70, "shape": "diamond"},
                     {"y": y_row, "color": {"value": "#222"},
                      "stroke": {"condition": {"test": "datum.corrected", "value": "#d62728"}, "value": None}})],
        height=20 * max(len({r["row"] for r in rows + points}), 1))

    # counts, each with its engraftment threshold and day
    eng = page.row("engraftment")
    for col, title, thr, eng_day, eng_on, colour in (
            ("anc_e9_per_l", "ANC ×10⁹/L", params["anc_threshold_e9_per_l"], "neutrophil_day", "neutrophil_on",
             "#2a9d2a"),
            ("platelets_e9_per_l", "Platelets ×10⁹/L", params["platelet_threshold_e9_per_l"], "platelet_day",
             "platelet_on", "#8e44ad")):
        vals = [lanes.point(r["occurred_on"], r["day"], title, _fmt(r[col]), y=r[col])
                for r in t["counts"].iter_rows(named=True) if r[col] is not None]
        kind = "platelets_transfused" if col.startswith("platelets") else "red_cells_transfused"
        ticks = [lanes.point(r["occurred_on"], r["day"], kind.replace("_", " "), "") for r in
                 t["counts"].iter_rows(named=True) if r[kind]]
        engrafted = ([lanes.point(eng.get(eng_on), eng.get(eng_day), f"{title.split()[0]} engraftment",
                                  f"day +{eng.get(eng_day)}", label=f"engraftment day +{eng.get(eng_day)}")]
                     if eng.get(eng_day) is not None else [])
        y = {"field": "y", "type": "quantitative", "title": None,
             "scale": {"type": "symlog", "constant": 0.01 if col.startswith("anc") else 1}}
        lanes.add(f"{title} (symlog scale: 0 drawn as 0) — threshold {thr:g}; "
                  f"{'transfusions' if ticks else 'no transfusion'} as ticks", [
            values_layer(vals, {"type": "line", "point": True, "color": colour}, {"y": y}),
            rule_y(thr, f"{thr:g}"),
            values_layer(ticks, {"type": "tick", "color": "#c0392b", "thickness": 2},
                         {"y": {"value": 95 if col.startswith("anc") else 110}}),
            *([rule_x(engrafted, colour)] if engrafted else [])], height=100)

    # chimerism with the full-donor line
    full = params["full_donor_chimerism_above_percent"]
    vals = [lanes.point(r["occurred_on"], r["day"], f"chimerism ({r['compartment']})",
                        f"{r['donor_percent']:g}% donor: {r['category'].replace('_', ' ')}", r["event_id"],
                        y=r["donor_percent"], compartment=r["compartment"]) for r in t["chimerism"].iter_rows(named=True)]
    lanes.add(f"Donor chimerism (%) — full donor above {full:g}%", [
        values_layer(vals, {"type": "line", "point": True},
                     {"y": {"field": "y", "type": "quantitative", "title": None, "scale": {"domain": [0, 100]}},
                      "color": {"field": "compartment", "type": "nominal", "legend": {"orient": "right"}}}),
        rule_y(full, f"{full:g}%")], height=90)

    # MRD: quantified results, below-detection results at their sensitivity (open marks)
    vals = [lanes.point(r["occurred_on"], r["day"], f"MRD {r['method']} {r['specimen'].replace('_', ' ')}",
                        (f"below detection (sensitivity {_fmt(r['sensitivity_percent'], '%')})" if r["below_detection"]
                         else _fmt(r["result_percent"], "%")) + (", MRD-negative" if r["negative"] else ", MRD-positive"),
                        r["event_id"], y=r["sensitivity_percent"] if r["below_detection"] else r["result_percent"],
                        result="negative" if r["negative"] else "positive")
            for r in t["mrd"].iter_rows(named=True)
            if (r["sensitivity_percent"] if r["below_detection"] else r["result_percent"]) is not None]
    lanes.add(f"MRD (% of nucleated cells, log scale) — negative below {params['mrd_negative_below_percent']:g}%", [
        values_layer(vals, {"type": "point", "size": 60},
                     {"y": {"field": "y", "type": "quantitative", "title": None, "scale": {"type": "log"}},
                      "color": {"field": "result", "type": "nominal", "legend": {"orient": "right"},
                                "scale": {"domain": ["positive", "negative"], "range": ["#d62728", "#2a9d2a"]}},
                      "fill": {"condition": {"test": "datum.result === 'positive'", "value": "#d62728"},
                               "value": "white"}}),
        rule_y(params["mrd_negative_below_percent"], f"{params['mrd_negative_below_percent']:g}%")], height=80)

    # viral loads with the reactivation threshold and the episodes shaded
    thr = params["viral_reactivation_iu_per_ml"]
    vals = [lanes.point(r["occurred_on"], r["day"], f"{r['virus'].upper()} load",
                        "below detection" if r["below_detection"] else f"{_fmt(r['iu_per_ml'])} IU/mL",
                        r["event_id"], y=r["load_iu_per_ml"], virus=r["virus"].upper())
            for r in t["viral_loads"].iter_rows(named=True) if r["load_iu_per_ml"] is not None]
    episodes = [lanes.span((r["onset_on"], r["onset_day"]), (r["last_positive_on"], r["last_positive_day"]),
                           f"{r['virus'].upper()} reactivation, episode {r['episode']}", r["detail"])
                for r in t["viral_episodes"].iter_rows(named=True)]
    lanes.add(f"Viral load (IU/mL, symlog scale) — reactivation at {thr:g} IU/mL; episodes shaded", [
        values_layer(episodes, {"type": "rect", "color": "#d62728", "opacity": 0.12}, {"x2": None}),
        values_layer(vals, {"type": "line", "point": True},
                     {"y": {"field": "y", "type": "quantitative", "title": None,
                            "scale": {"type": "symlog", "constant": 10}},
                      "color": {"field": "virus", "type": "nominal", "legend": {"orient": "right"}}}),
        rule_y(thr, f"{thr:g}")], height=90)

    # GVHD: episodes (diagnosis to resolution), diagnoses with grade or severity, responses
    spans = [lanes.span((g["diagnosed_on"], g["diagnosed_day"]), (g["resolved_on"], g["resolved_day"])
                        if g["resolved_on"] is not None else (pat.get("last_contact_on"), None),
                        f"{g['kind']} GVHD episode {g['episode']}", "resolved" if g["resolved_on"] else "active",
                        row=f"{g['kind']} GVHD") for g in t["gvhd_episodes"].iter_rows(named=True)]
    grades = {1: "I", 2: "II", 3: "III", 4: "IV"}
    marks = [lanes.point(g["occurred_on"], g["day"], f"{g['kind']} GVHD {g['type'].removeprefix('gvhd_')}",
                         f"grade {grades[g['grade']]}" if g["grade"] else (g["severity"] or g["response"] or ""),
                         g["event_id"], row=f"{g['kind']} GVHD",
                         label=(grades.get(g["grade"]) or g["severity"] or "") if g["type"] == "gvhd_diagnosed" else "")
             for g in t["gvhd_course"].iter_rows(named=True) if g["type"] != "gvhd_treatment_started"]
    lanes.add("GVHD — episodes, diagnoses with MAGIC grade or NIH severity, responses", [
        values_layer(spans, {"type": "bar", "height": 12, "color": "#f4b6d8"}, {"x2": None, "y": y_row}),
        values_layer(marks, {"type": "point", "filled": True, "color": "#9b1d20"}, {"y": y_row}),
        values_layer(marks, {"type": "text", "dy": -10, "fontSize": 10}, {"y": y_row, "text": {"field": "label"}})],
        height=50)

    # infections and complications (the rule's onsets)
    vals = [lanes.point(r["onset_on"], r["day"], f"{r['category']} infection",
                        f"{r['organism'] or 'organism not recorded'}" + (f", {r['site']}" if r["site"] else ""),
                        r["event_id"], row="infection") for r in t["infections"].iter_rows(named=True)]
    vals += [lanes.point(r["onset_on"], r["day"], r["complication"].replace("_", " "), r["detail"] or "",
                         row="complication") for r in t["complications"].iter_rows(named=True)
             if r["complication"] != "infection"]
    lanes.add("Infections and complications (onsets by the complications rule)", [
        values_layer(vals, {"type": "point", "filled": True, "size": 60},
                     {"y": y_row, "shape": {"field": "row", "type": "nominal", "legend": None},
                      "color": {"field": "row", "type": "nominal", "legend": None}})], height=40)

    # disease status, relapse, death
    status = [lanes.span((r["from_on"], None), (r["to_on"] or pat.get("last_contact_on"), None),
                         r["status"].replace("_", " "), "", row="disease status", status=r["status"])
              for r in t["disease_status"].iter_rows(named=True)]
    events = [lanes.point(r["occurred_on"], r["day"], r["type"], "", r["event_id"], row="relapse / death")
              for r in t["events"].iter_rows(named=True) if r["type"] in ("relapse", "death")]
    lanes.add("Disease status, relapse, death", [
        values_layer(status, {"type": "bar", "height": 10},
                     {"x2": None, "y": y_row, "color": {"field": "status", "type": "nominal",
                                                        "legend": {"orient": "right", "title": None},
                                                        "scale": {"domain": ["active_disease", "remission_mrd_positive",
                                                                             "remission_mrd_negative"],
                                                                  "range": ["#d62728", "#f39c12", "#2a9d2a"]}}}),
        values_layer(events, {"type": "point", "shape": "cross", "filled": True, "size": 120, "color": "#000"},
                     {"y": y_row})], height=40)

    # amendments: corrected and retracted events, with who, when and why
    amended = [lanes.point(x.occurred_on, x.day, x.type, "retracted" if not x.visible else "corrected", x.event_id,
                           row="retracted" if not x.visible else "corrected") for x in page.history if x.marks]
    lanes.add("Corrections and retractions (hover for who, when and why)", [
        values_layer(amended, {"type": "point", "shape": "triangle-down", "filled": True, "size": 80},
                     {"y": y_row, "color": {"field": "row", "type": "nominal", "legend": None,
                                            "scale": {"domain": ["corrected", "retracted"],
                                                      "range": ["#e67e22", "#7f0000"]}}})], height=40)
    return lanes.spec(0 if axis.mode == "day" else (day0.isoformat() if day0 else None),
                      None if whole else transplant_window(page, axis))
