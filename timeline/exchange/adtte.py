"""CDISC ADaM ADTTE: one record per patient and endpoint of the `endpoints` table.

PARAMCD/PARAM name the endpoint; AVAL is `time_days` (AVALU DAYS); STARTDT the time origin (day 0), ADT the
date of the event, competing event or censoring; CNSR the censoring convention of ADaM (0 = the event), with
a positive integer per reason: 1 censored at the last contact, 2 a competing event (the `status` 2 of
`endpoints`). EVNTDESC says what ended the time; CNSDTDSC the same for a censored record. SRCDOM/SRCVAR/SRCSEQ
point at the source event where one exists: the patient's visible event on ADT (a death, a relapse, … first;
`events`), SRCSEQ its 1-based position in the patient's events ordered by date, recording time and id.

Written as SAS transport (XPORT version 5, pyreadstat; dates as SAS dates, DATE9.), Dataset-JSON v1.1
(dsjframe, which validates it), Parquet or CSV. Reads only projection tables, through the view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ..output import write_frame

#: endpoint → (PARAMCD, PARAM), in PARAMN order
PARAMS: dict[str, tuple[str, str]] = {
    "os": ("OS", "Overall Survival (days)"),
    "lfs": ("LFS", "Leukaemia-Free Survival (days)"),
    "efs": ("EFS", "Event-Free Survival (days)"),
    "grfs": ("GRFS", "GVHD-free Relapse-free Survival (days)"),
    "relapse": ("RELAPSE", "Time to Relapse (days)"),
    "nrm": ("NRM", "Time to Non-Relapse Mortality (days)"),
    "neutrophil_engraftment": ("NEUTENG", "Time to Neutrophil Engraftment (days)"),
    "platelet_engraftment": ("PLTENG", "Time to Platelet Engraftment (days)"),
    "agvhd_2_4": ("AGVHD24", "Time to Acute GVHD Grade II-IV (days)"),
    "agvhd_3_4": ("AGVHD34", "Time to Acute GVHD Grade III-IV (days)"),
    "cgvhd": ("CGVHD", "Time to Chronic GVHD (days)"),
    "cmv_reactivation": ("CMVREACT", "Time to CMV Reactivation (days)"),
    "ebv_reactivation": ("EBVREACT", "Time to EBV Reactivation (days)"),
}
#: CNSR: 0 the event; a positive integer per censoring reason (the endpoints table's status → CNSR)
CNSR = {1: 0, 0: 1, 2: 2}
CNSR_DOC = {0: "event", 1: "censored at the last contact", 2: "censored: a competing event"}
#: variable → label (at most 40 characters: XPORT version 5)
LABELS: dict[str, str] = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "SUBJID": "Subject Identifier for the Study",
    "PARAMCD": "Parameter Code",
    "PARAM": "Parameter",
    "PARAMN": "Parameter (N)",
    "AVAL": "Analysis Value",
    "AVALU": "Analysis Value Unit",
    "STARTDT": "Time-to-Event Origin Date for Subject",
    "ADT": "Analysis Date",
    "CNSR": "Censor",
    "EVNTDESC": "Event or Censoring Description",
    "CNSDTDSC": "Censor Date Description",
    "SRCDOM": "Source Data",
    "SRCVAR": "Source Variable",
    "SRCSEQ": "Source Sequence Number",
}
FORMATS = ("xpt", "dataset-json", "parquet", "csv")
_EXTENSIONS = {".xpt": "xpt", ".json": "dataset-json", ".parquet": "parquet", ".csv": "csv"}
#: which event on ADT is the source, first
_SOURCE_ORDER = ("death", "relapse", "graft_failure", "gvhd_diagnosed", "viral_reactivation", "viral_load",
                 "engraftment", "blood_count", "follow_up")

ENDPOINTS_SQL = """
WITH numbered AS (
    SELECT patient_id, occurred_on, type,
           ROW_NUMBER() OVER (PARTITION BY patient_id ORDER BY occurred_on, recorded_at, event_id) AS seq
    FROM events
), source AS (
    SELECT e.patient_id, e.endpoint, n.seq,
           ROW_NUMBER() OVER (PARTITION BY e.patient_id, e.endpoint
                              ORDER BY coalesce(list_position(?::VARCHAR[], n.type), 99), n.seq) AS pick
    FROM endpoints e JOIN numbered n ON n.patient_id = e.patient_id AND n.occurred_on = e.end_on
)
SELECT e.patient_id, e.endpoint, e.origin_on, e.end_on, e.time_days, e.status, e.event_desc, s.seq AS srcseq
FROM endpoints e LEFT JOIN source s ON s.patient_id = e.patient_id AND s.endpoint = e.endpoint AND s.pick = 1
ORDER BY e.patient_id, e.endpoint
"""


def adtte_frame(view: Any, study_id: str, pseudonymiser: Any = None) -> pl.DataFrame:
    """The ADTTE records (polars), from the view's `endpoints` (and `events` for the source sequence)."""
    frame = view.sql(ENDPOINTS_SQL, [list(_SOURCE_ORDER)])
    if pseudonymiser is not None:
        frame = pseudonymiser.frame(frame)
    unknown = set(frame["endpoint"].unique().to_list()) - set(PARAMS)
    if unknown:
        raise ValueError(f"endpoints without an ADTTE parameter code: {', '.join(sorted(unknown))}")
    codes = pl.DataFrame({"endpoint": list(PARAMS), "PARAMCD": [c for c, _ in PARAMS.values()],
                          "PARAM": [p for _, p in PARAMS.values()], "PARAMN": [float(i) for i in range(1, len(PARAMS) + 1)]})
    cnsr = pl.col("status").replace_strict(CNSR, return_dtype=pl.Float64)
    out = (frame.join(codes, on="endpoint", how="left")
           .select(pl.lit(study_id).alias("STUDYID"),
                   (pl.lit(study_id + "-") + pl.col("patient_id")).alias("USUBJID"),
                   pl.col("patient_id").alias("SUBJID"),
                   "PARAMCD", "PARAM", "PARAMN",
                   pl.col("time_days").cast(pl.Float64).alias("AVAL"),
                   pl.lit("DAYS").alias("AVALU"),
                   pl.col("origin_on").alias("STARTDT"),
                   pl.col("end_on").alias("ADT"),
                   cnsr.alias("CNSR"),
                   pl.col("event_desc").alias("EVNTDESC"),
                   pl.when(cnsr > 0).then(pl.col("event_desc")).alias("CNSDTDSC"),
                   pl.when(pl.col("srcseq").is_not_null()).then(pl.lit("EVENTS")).alias("SRCDOM"),
                   pl.when(pl.col("srcseq").is_not_null()).then(pl.lit("OCCURRED_ON")).alias("SRCVAR"),
                   pl.col("srcseq").cast(pl.Float64).alias("SRCSEQ"))
           .sort("USUBJID", "PARAMN"))
    return out


def format_of(path: Path, given: str | None) -> str:
    if given:
        return given
    return _EXTENSIONS.get(path.suffix.lower(), "xpt")


def write_adtte(view: Any, out: Path, study_id: str = "TIMELINE", fmt: str | None = None,
                pseudonymiser: Any = None) -> list[Path]:
    """`timeline export adtte`: the ADTTE file in the format asked for (or told by the extension)."""
    fmt = format_of(out, fmt)
    if len(study_id) > 200 or not study_id.strip():
        raise ValueError("--study-id: 1 to 200 characters")
    df = adtte_frame(view, study_id, pseudonymiser)
    if fmt == "xpt":
        write_xpt(df, out)
    elif fmt == "dataset-json":
        write_dataset_json(df, out, study_id)
    elif fmt in ("parquet", "csv"):
        write_frame(df, fmt, out)
    else:
        raise ValueError(f"unknown ADTTE format {fmt!r}; one of {', '.join(FORMATS)}")
    return [out]


def write_xpt(df: pl.DataFrame, out: Path) -> None:
    """SAS transport, XPORT version 5 (pyreadstat's default is 8): names ≤ 8, labels ≤ 40 characters."""
    import pyreadstat

    out.parent.mkdir(parents=True, exist_ok=True)
    pdf = df.to_pandas()
    for name in ("STARTDT", "ADT"):
        pdf[name] = df[name].to_list()  # datetime.date objects: written as SAS dates with the format below
    pyreadstat.write_xport(pdf, str(out), file_label="Time-to-Event Analysis Dataset", table_name="ADTTE",
                           column_labels=[LABELS[c] for c in df.columns], file_format_version=5,
                           variable_format={"STARTDT": "DATE9.", "ADT": "DATE9."})


def dataset_json_metadata(df: pl.DataFrame, study_id: str) -> dict[str, Any]:
    types = {pl.Float64: "double", pl.Date: "date", pl.Utf8: "string"}
    columns = []
    for name, dtype in df.schema.items():
        col: dict[str, Any] = {"itemOID": f"IT.ADTTE.{name}", "name": name, "label": LABELS[name],
                               "dataType": types.get(dtype, "string")}
        if dtype == pl.Utf8:
            col["length"] = max(1, int(df[name].str.len_bytes().max() or 1))
        if name in ("USUBJID", "PARAMCD"):
            col["keySequence"] = 1 if name == "USUBJID" else 2
        columns.append(col)
    return {"itemGroupOID": "IG.ADTTE", "name": "ADTTE", "label": "Time-to-Event Analysis Dataset",
            "studyOID": study_id, "metaDataVersionOID": "MDV.TIMELINE.1", "columns": columns}


def write_dataset_json(df: pl.DataFrame, out: Path, study_id: str) -> None:
    """CDISC Dataset-JSON v1.1 (dsjframe writes it; its validator checks the file written)."""
    import dsjframe

    out.parent.mkdir(parents=True, exist_ok=True)
    dsjframe.write_dataset(df.to_arrow(), str(out), dataset_json_metadata(df, study_id), output_format="json")
    report = dsjframe.validate_dataset(str(out))
    if not report["ok"]:
        out.unlink(missing_ok=True)
        raise ValueError(f"Dataset-JSON validation failed: {report['message']}")
