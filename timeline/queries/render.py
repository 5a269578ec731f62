"""The report as text: Markdown and one self-contained HTML page (inline CSS, inline SVG figures)."""

from __future__ import annotations

import html
from collections.abc import Mapping

import polars as pl

from .labels import label
from .tables import Report

#: the figures of the report (file stem -> caption)
FIGURES = {
    "swimmer": "Figure 1. Each patient's course from the start of blinatumomab bridging to the last follow-up.",
    "survival": "Figure 2. Overall, leukaemia-free, event-free and GVHD-free relapse-free survival (Kaplan–Meier, "
                "95% log-log band where it has a width, numbers at risk under each axis).",
    "incidence": "Figure 3. Cumulative incidence with competing risks (Aalen–Johansen, 95% log-log band): relapse "
                 "against non-relapse mortality, acute GVHD grade II–IV, chronic GVHD, CMV reactivation.",
    "counts": "Figure 4. Neutrophil and platelet recovery after the infusion (lowest value of each day; a count of "
              "0 on the line marked 0).",
}
#: most patients listed one by one; a larger cohort lists the first ones by transplant date and says so
LISTING_MAX_PATIENTS = 60

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
           "- Every number below is computed from the projections (SQL and the engine's estimators).",
           *(f"- Note: {n}" for n in r.notes), ""]
    out += ["## Parameters", "",
            "Rule parameters used (defaults unless marked as an override):" if not r.parameters["overridden"].any()
            else f"Rule parameters used ({int(r.parameters['overridden'].sum())} override(s) marked):", "", "```"]
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
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 1em 0;font-size:.9em}
th,td{border-bottom:1px solid #e5e5e5;padding:.25em .7em;text-align:left;vertical-align:top}
th{background:#f4f6f8}tr.section td{font-weight:600;background:#fafafa;padding-top:.6em}
.meta{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.6em;font-size:.8em;overflow-x:auto}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.9em;color:#444}
"""


def _html_table(heads: list[str], rows: list[list[str]], sectioned: bool = False) -> str:
    e = html.escape
    out = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr></thead><tbody>"]
    for row in rows:
        if sectioned and row[0].startswith("**"):
            out.append(f'<tr class="section"><td colspan="{len(heads)}">{e(row[0].strip("*"))}</td></tr>')
            continue
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
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
             "Every number is computed from the projections (SQL and the engine's estimators)."
             + "".join(f"<br>Note: {e(n)}" for n in r.notes) + "</p>",
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
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
