"""`timeline export cbioportal`: a cBioPortal study folder (the file formats of cBioPortal's importer and
validator).

- `meta_study.txt`; `data_clinical_patient.txt` and `data_clinical_sample.txt` with their meta files: four
  header rows (display names, descriptions, datatypes, priorities), then the attribute ids; survival as
  `OS_STATUS` (`0:LIVING` / `1:DECEASED`, from the `os` endpoint) and `DFS_STATUS` (`0:DiseaseFree` /
  `1:Recurred/Progressed`, from the `lfs` endpoint: relapse or death), with `OS_MONTHS` / `DFS_MONTHS`
  (days / 30.4375). One sample per patient: `<patient>-HSCT`.
- timelines, each with its meta file: `data_timeline_treatment.txt` (blinatumomab cycles, conditioning,
  transplants, GVHD treatment lines), `data_timeline_labs.txt` (ANC, platelets, MRD, chimerism, viral loads:
  numeric `RESULT`, so cBioPortal draws lines; below detection is 0 with `BELOW_DETECTION` = yes),
  `data_timeline_status.txt` (relapse, remission, GVHD, death). Columns PATIENT_ID, START_DATE, STOP_DATE,
  EVENT_TYPE first; dates are whole days from the anchor: day 0 of the index transplant, or for a patient
  without one the date of their first event.

Reads only projection tables, through the view.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
DAYS_PER_MONTH = 30.4375
TIMELINE_HEAD = ("PATIENT_ID", "START_DATE", "STOP_DATE", "EVENT_TYPE")

#: patient attributes: id → (display name, description, datatype, priority)
PATIENT_ATTRIBUTES: dict[str, tuple[str, str, str, int]] = {
    "PATIENT_ID": ("Patient Identifier", "Patient identifier", "STRING", 1),
    "SEX": ("Sex", "Sex", "STRING", 1),
    "AGE": ("Age at HSCT", "Age at the index transplant, years", "NUMBER", 1),
    "DISEASE": ("Disease", "Disease leading to transplant", "STRING", 1),
    "DONOR": ("Donor", "Donor of the index transplant", "STRING", 1),
    "GRAFT_SOURCE": ("Graft Source", "Graft source of the index transplant", "STRING", 1),
    "CONDITIONING_INTENSITY": ("Conditioning Intensity", "Intensity of the conditioning", "STRING", 1),
    "OS_STATUS": ("Overall Survival Status", "Overall survival status", "STRING", 1),
    "OS_MONTHS": ("Overall Survival (Months)", "Overall survival in months from day 0", "NUMBER", 1),
    "DFS_STATUS": ("Disease Free Status", "Leukaemia-free survival status (relapse or death)", "STRING", 1),
    "DFS_MONTHS": ("Disease Free (Months)", "Leukaemia-free survival in months from day 0", "NUMBER", 1),
}
SAMPLE_ATTRIBUTES: dict[str, tuple[str, str, str, int]] = {
    "PATIENT_ID": ("Patient Identifier", "Patient identifier", "STRING", 1),
    "SAMPLE_ID": ("Sample Identifier", "Sample identifier (one per patient)", "STRING", 1),
    "CANCER_TYPE": ("Cancer Type", "Cancer type", "STRING", 1),
    "CANCER_TYPE_DETAILED": ("Cancer Type Detailed", "The disease leading to transplant", "STRING", 1),
}

ANCHOR = "SELECT patient_id, coalesce(hsct_on, first_event_on) AS anchor_on FROM patients"

PATIENTS_SQL = f"""
SELECT p.patient_id AS PATIENT_ID, p.sex AS SEX, round(p.age_at_hsct_years, 1) AS AGE, p.disease AS DISEASE,
       p.donor AS DONOR, p.graft_source AS GRAFT_SOURCE, p.conditioning_intensity AS CONDITIONING_INTENSITY,
       CASE os.status WHEN 1 THEN '1:DECEASED' WHEN 0 THEN '0:LIVING' END AS OS_STATUS,
       round(os.time_days / {DAYS_PER_MONTH}, 2) AS OS_MONTHS,
       CASE lfs.status WHEN 1 THEN '1:Recurred/Progressed' WHEN 0 THEN '0:DiseaseFree' END AS DFS_STATUS,
       round(lfs.time_days / {DAYS_PER_MONTH}, 2) AS DFS_MONTHS
FROM patients p
LEFT JOIN endpoints os ON os.patient_id = p.patient_id AND os.endpoint = 'os'
LEFT JOIN endpoints lfs ON lfs.patient_id = p.patient_id AND lfs.endpoint = 'lfs'
ORDER BY p.patient_id
"""

TREATMENT_SQL = f"""
WITH a AS ({ANCHOR})
SELECT c.patient_id, c.started_on AS start_on, c.stopped_on AS stop_on, 'Immunotherapy' AS TREATMENT_TYPE,
       'Blinatumomab' AS AGENT, CAST(c.cycle AS VARCHAR) AS CYCLE FROM blinatumomab_cycles c WHERE c.started_on IS NOT NULL
UNION ALL
SELECT patient_id, conditioning_on, NULL, 'Conditioning', conditioning_regimen, NULL FROM patients
WHERE conditioning_on IS NOT NULL
UNION ALL
SELECT patient_id, day0_on, NULL, 'Transplant', 'HSCT ' || transplant_number, NULL FROM transplants
UNION ALL
SELECT patient_id, occurred_on, NULL, 'GVHD treatment', 'GVHD treatment line', NULL FROM events
WHERE type = 'gvhd_treatment_started'
"""

LABS_SQL = """
SELECT patient_id, occurred_on AS start_on, 'ANC' AS TEST, anc_e9_per_l AS RESULT, '10^9/L' AS UNIT,
       NULL AS BELOW_DETECTION FROM blood_counts WHERE anc_e9_per_l IS NOT NULL
UNION ALL
SELECT patient_id, occurred_on, 'PLT', platelets_e9_per_l, '10^9/L', NULL FROM blood_counts
WHERE platelets_e9_per_l IS NOT NULL
UNION ALL
SELECT patient_id, occurred_on, 'MRD', coalesce(result_percent, 0), '%',
       CASE WHEN below_detection THEN 'yes' END FROM mrd_tests
UNION ALL
SELECT patient_id, occurred_on, 'CHIMERISM_' || upper(compartment), donor_percent, '% donor', NULL FROM chimerism
UNION ALL
SELECT patient_id, occurred_on, upper(virus) || '_LOAD', coalesce(iu_per_ml, 0), 'IU/mL',
       CASE WHEN below_detection THEN 'yes' END FROM viral_loads
"""

STATUS_SQL = """
SELECT patient_id, occurred_on AS start_on, NULL AS stop_on, 'Relapse' AS STATUS FROM events WHERE type = 'relapse'
UNION ALL
SELECT patient_id, from_on, to_on, CASE status WHEN 'remission_mrd_negative' THEN 'Remission (MRD-negative)'
                                               ELSE 'Remission (MRD-positive)' END
FROM disease_status WHERE status <> 'active_disease'
UNION ALL
SELECT patient_id, diagnosed_on, resolved_on, CASE kind WHEN 'acute' THEN 'Acute GVHD' ELSE 'Chronic GVHD' END
FROM gvhd_episodes
UNION ALL
SELECT patient_id, death_on, NULL, 'Death' FROM patients WHERE death_on IS NOT NULL
"""

TIMELINES = {"treatment": ("Treatment", TREATMENT_SQL), "labs": ("LAB_TEST", LABS_SQL), "status": ("STATUS", STATUS_SQL)}


def _timeline(view: Any, sql: str, event_type: str, pseudonymiser: Any) -> pl.DataFrame:
    """Rows of one timeline: days from the patient's anchor (the anchor shifted with the dates)."""
    rows = view.sql(f"WITH t AS ({sql}), a AS ({ANCHOR}) SELECT t.*, a.anchor_on FROM t JOIN a USING (patient_id)")
    if "stop_on" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.Date).alias("stop_on"))
    if pseudonymiser is not None:
        rows = pseudonymiser.frame(rows)
    rest = [c for c in rows.columns if c not in ("patient_id", "start_on", "stop_on", "anchor_on")]
    return (rows.select(pl.col("patient_id").alias("PATIENT_ID"),
                        (pl.col("start_on") - pl.col("anchor_on")).dt.total_days().cast(pl.Int64).alias("START_DATE"),
                        (pl.col("stop_on") - pl.col("anchor_on")).dt.total_days().cast(pl.Int64).alias("STOP_DATE"),
                        pl.lit(event_type).alias("EVENT_TYPE"), *rest)
            .sort("PATIENT_ID", "START_DATE", *rest[:1]))


def _clinical(df: pl.DataFrame, attributes: dict[str, tuple[str, str, str, int]]) -> str:
    cols = list(attributes)
    head = ["#" + "\t".join(attributes[c][i] if i < 3 else str(attributes[c][3]) for c in cols) for i in range(4)]
    return "\n".join(head + ["\t".join(cols), _tsv(df.select(cols))]) + "\n"


def _tsv(df: pl.DataFrame) -> str:
    return df.write_csv(separator="\t", include_header=False, null_value="").rstrip("\n")


def _meta(**fields: str) -> str:
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


def write_study(view: Any, out: Path, study_id: str, name: str | None = None, pseudonymiser: Any = None) -> list[Path]:
    """Write the study folder; the paths written."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", study_id):
        raise ValueError(f"--study-id {study_id!r}: cBioPortal study ids are letters, digits, _ and -")
    patients = view.sql(PATIENTS_SQL)
    if pseudonymiser is not None:
        patients = pseudonymiser.frame(patients.rename({"PATIENT_ID": "patient_id"})).rename({"patient_id": "PATIENT_ID"})
    bad = [p for p in patients["PATIENT_ID"].to_list() if not ID_PATTERN.match(p)]
    if bad:
        raise ValueError(f"{len(bad)} patient id(s) use characters cBioPortal refuses (letters, digits, . _ - only)")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {
        "meta_study.txt": _meta(type_of_cancer="mixed", cancer_study_identifier=study_id, name=name or study_id,
                                description=f"{name or study_id}: transplant timelines exported by timeline",
                                short_name=(name or study_id)[:40], add_global_case_list="true"),
        "meta_clinical_patient.txt": _meta(cancer_study_identifier=study_id, genetic_alteration_type="CLINICAL",
                                           datatype="PATIENT_ATTRIBUTES", data_filename="data_clinical_patient.txt"),
        "data_clinical_patient.txt": _clinical(patients, PATIENT_ATTRIBUTES),
        "meta_clinical_sample.txt": _meta(cancer_study_identifier=study_id, genetic_alteration_type="CLINICAL",
                                          datatype="SAMPLE_ATTRIBUTES", data_filename="data_clinical_sample.txt"),
        "data_clinical_sample.txt": _clinical(patients.select(
            "PATIENT_ID", (pl.col("PATIENT_ID") + "-HSCT").alias("SAMPLE_ID"), pl.lit("Leukemia").alias("CANCER_TYPE"),
            pl.col("DISEASE").alias("CANCER_TYPE_DETAILED")), SAMPLE_ATTRIBUTES),
    }
    for kind, (event_type, sql) in TIMELINES.items():
        rows = _timeline(view, sql, event_type, pseudonymiser)
        data = f"data_timeline_{kind}.txt"
        files[f"meta_timeline_{kind}.txt"] = _meta(cancer_study_identifier=study_id, genetic_alteration_type="CLINICAL",
                                                  datatype="TIMELINE", data_filename=data)
        files[data] = "\t".join(rows.columns) + "\n" + (_tsv(rows) + "\n" if rows.height else "")
    written = []
    for file, text in files.items():
        path = out / file
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
