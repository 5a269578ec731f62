"""FHIR R4 import (issue 12, point 1): Bundles and NDJSON through the path of `timeline ingest`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timeline import Timeline
from timeline.cli import main
from timeline.events import EVENT_TYPES
from timeline.events.catalogue import content_event_id, parse_event, to_json_dict
from timeline.events.problems import RejectedError
from timeline.exchange import fhir as F
from timeline.exchange.fhir_in import import_file
from timeline.exchange.fhir_out import bundle, to_resources
from timeline.testing.events import valid_event_json

FIXTURES = Path(__file__).parent / "fixtures" / "fhir"
BUNDLE = FIXTURES / "hsct-bundle.json"
EXAMPLES = FIXTURES / "hl7-r4-examples"
PROVENANCE = {"event_id", "source", "source_record_id", "recorded_by", "note"}


def _content(events) -> list[str]:
    return sorted(json.dumps({k: v for k, v in to_json_dict(e.event).items() if k not in PROVENANCE}, sort_keys=True)
                  for e in events)


def test_the_hsct_bundle_gives_every_mapped_event_type_with_units_converted(tmp_path):
    with Timeline.open("memory") as tl:
        report, job = import_file(tl, BUNDLE)
        events = {(e.event.type, str(e.event.occurred_on)): to_json_dict(e.event) for e in tl.events("HSCT-1")}
    mapped_types = {r.event for r in F.ROUTES} | {"patient_registered", "follow_up", "death"}
    assert {t for t, _ in events} == mapped_types
    assert mapped_types == set(EVENT_TYPES) - set(F.NOT_FROM_FHIR)
    assert set(F.NOT_FROM_FHIR) <= set(EVENT_TYPES)
    assert report.new == 37 and report.present == 0
    # the two resources it cannot map are listed with a reason, not dropped
    assert [(u.resource_type, u.id) for u in job.unmapped] == [("DiagnosticReport", "report-1"), ("Observation", "weight-1")]
    assert "29463-7" in job.unmapped[1].reason
    # units: 12,000 /uL platelets = 12 ×10⁹/L; 82 g/L haemoglobin = 8.2 g/dL; "<0.01 %" MRD = below detection
    counts = [v for (t, d), v in events.items() if t == "blood_count" and d == "2024-12-30"][0]
    assert counts == {**counts, "anc_e9_per_l": 0.9, "platelets_e9_per_l": 31.0, "wbc_e9_per_l": 1.8, "hb_g_per_dl": 9.1}
    mrd = events[("mrd_test", "2024-11-18")]
    assert mrd["below_detection"] is True and mrd["sensitivity_percent"] == 0.01 and "result_percent" not in mrd
    # a dateTime with a zone keeps its own calendar date; the transplant is day 0
    assert events[("stem_cell_infusion", "2024-12-10")]["donor"] == "matched_unrelated"
    assert events[("relapse", "2024-10-02")]["site"] == "bone_marrow"
    assert events[("gvhd_diagnosed", "2025-01-20")]["grade"] == 2  # derived from the MAGIC stages
    assert events[("gvhd_resolved", "2025-03-02")]["kind"] == "acute"  # the same Condition's abatement
    stop = events[("blinatumomab_stopped", "2024-11-17")]
    assert (stop["cycle"], stop["reason"]) == (1, "completed")
    assert events[("blinatumomab_dose_changed", "2024-10-27")]["dose_ug_per_m2_day"] == 15.0
    # the Patient's deceasedDateTime gives no second death: the cause-of-death Observation is there
    assert [t for t, _ in events].count("death") == 1 and events[("death", "2025-11-30")]["cause"] == "gvhd"
    # the registration is dated by the patient's first event in the file
    assert events[("patient_registered", "2023-01-09")]["birth_date"] == "2012-03-14"


def test_single_analyte_observations_are_converted_to_the_field_unit():
    with Timeline.open("memory") as tl:
        import_file(tl, BUNDLE)
        day = [to_json_dict(e.event) for e in tl.events("HSCT-1", as_of="2024-12-15")
               if e.event.type == "blood_count"]
    fields = {d["source_record_id"]: {k: v for k, v in d.items() if k.endswith(("_per_l", "_per_dl"))} for d in day}
    assert fields == {"fhir:Observation/anc-1": {"anc_e9_per_l": 0.1},
                      "fhir:Observation/plt-1": {"platelets_e9_per_l": 12.0},   # 12,000 /uL
                      "fhir:Observation/hb-1": {"hb_g_per_dl": 8.2}}            # 82 g/L


def test_importing_again_adds_nothing_and_a_changed_resource_is_a_correction(tmp_path):
    changed = json.loads(BUNDLE.read_text())
    plt = next(e["resource"] for e in changed["entry"] if e["resource"].get("id") == "plt-1")
    plt["valueQuantity"]["value"] = 21000
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    with Timeline.open(tmp_path / "store") as tl:
        import_file(tl, BUNDLE)
        again, _ = import_file(tl, BUNDLE)
        assert (again.new, again.present, again.corrected) == (0, 37, 0)
        fixed, _ = import_file(tl, path)
        assert (fixed.new, fixed.present, fixed.corrected) == (0, 36, 1)
        platelets = [e.event.platelets_e9_per_l for e in tl.events("HSCT-1", as_of="2024-12-15")
                     if e.event.type == "blood_count" and e.event.platelets_e9_per_l is not None]
        assert platelets == [21.0]
        fact = next(f for f in tl.facts("HSCT-1") if f.corrections)
        assert fact.original.data["source_record_id"] == "fhir:Observation/plt-1"


def test_an_implausible_value_refuses_the_whole_file_naming_line_resource_field_value_and_rule(tmp_path):
    doc = json.loads(BUNDLE.read_text())
    anc = next(e["resource"] for e in doc["entry"] if e["resource"].get("id") == "anc-1")
    anc["valueQuantity"]["value"] = 1500  # cells/µL sent as ×10⁹/L
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with Timeline.open("memory") as tl:
        with pytest.raises(RejectedError) as e:
            import_file(tl, path)
        assert tl.store.max_position() == 0  # nothing stored
    [problem] = e.value.problems
    assert problem.line == 14 and problem.field == "Observation/anc-1 → anc_e9_per_l" and problem.value == 1500
    assert "expected ×10⁹/L" in problem.rule and "as cells/µL this would be 1.5" in problem.rule


def test_a_resource_that_fhir_refuses_refuses_the_file(tmp_path, capsys):
    doc = json.loads(BUNDLE.read_text())
    doc["entry"][5]["resource"]["valueQuantity"]["value"] = "0,8"
    doc["entry"][6]["resource"]["effectivePeriod"]["start"] = "2024-13-45"
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(doc))
    store = str(tmp_path / "s")
    assert main(["--store", store, "import", "fhir", str(path)]) == 1
    err = capsys.readouterr().err
    assert "REFUSED, nothing stored" in err
    assert re.search(r"line 6: Observation/mrd-1 valueQuantity.value = \"0,8\": FHIR: ", err)
    assert re.search(r"line 7: MedicationAdministration/blina-1 effectivePeriod\.start = \"2024-13-45\": FHIR:", err)


def test_strict_refuses_a_file_with_unmapped_resources(tmp_path, capsys):
    store = str(tmp_path / "s")
    assert main(["--store", store, "import", "fhir", "--strict", str(BUNDLE)]) == 1
    err = capsys.readouterr().err
    assert "line 35: DiagnosticReport/report-1: not mapped: DiagnosticReport resources are not imported" in err
    assert main(["--store", store, "import", "fhir", str(BUNDLE)]) == 0
    out = capsys.readouterr().out
    assert "36 resource(s): 37 new, 0 already present, 0 corrected; 2 not mapped" in out
    assert "not mapped: hsct-bundle.json:line 36: Observation/weight-1: no mapping for code http://loinc.org|29463-7" in out


def test_the_official_hl7_examples_import_without_a_crash_and_the_unmapped_are_listed(tmp_path, capsys):
    assert main(["--store", str(tmp_path / "s"), "import", "fhir", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "Observation-f005.json: 1 resource(s): 1 new" in out  # haemoglobin, LOINC 718-7, g/dL
    listed = re.findall(r"not mapped: (\S+?):line \d+: (\w+)/(\S+): (.+)", out)
    assert len(listed) == 9 and all(reason for *_, reason in listed)
    assert ("Patient-pat1.json", "Patient", "pat1", "patient_registered needs birthDate") in listed
    with Timeline.open(tmp_path / "s") as tl:
        [hb] = tl.events("f001")
    assert hb.event.hb_g_per_dl == 7.2 and str(hb.event.occurred_on) == "2013-04-05"


def test_ndjson_bulk_files_import_in_worker_processes_with_line_numbers(tmp_path):
    doc = json.loads(BUNDLE.read_text())
    lines = [json.dumps(e["resource"]) for e in doc["entry"]]
    lines[13] = lines[13].replace('"value": 0.1', '"value": 150')
    path = tmp_path / "Observation.ndjson"
    path.write_text("\n".join(lines) + "\n")
    with Timeline.open("memory") as tl:
        with pytest.raises(RejectedError) as e:
            import_file(tl, path, parallel=True)
        assert [(p.line, p.field) for p in e.value.problems] == [(14, "Observation/anc-1 → anc_e9_per_l")]
        path.write_text("\n".join(lines[:13] + lines[14:]) + "\n")
        report, job = import_file(tl, path, parallel=True)
        # NDJSON has no fullUrl: the Condition whose subject is a Bundle's urn:uuid cannot name its patient
        assert report.new == 35 and [(u.id, u.reason) for u in job.unmapped][0] == (
            "dx-1", "its subject is not a Patient")


@st.composite
def _fhir_safe_events(draw):
    events = draw(st.lists(valid_event_json(
        types=[t for t in EVENT_TYPES if t not in F.NOT_FROM_FHIR],
        patient_id=st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True)), min_size=1, max_size=8))
    out, registered = [], set()
    for ev in events:
        if ev["type"] == "patient_registered":
            if ev["patient_id"] in registered:
                continue  # one Patient resource per patient: a second one is a correction of the first
            registered.add(ev["patient_id"])
        texts = [v for v in ev.values() if isinstance(v, str)] + [x for v in ev.values() if isinstance(v, list) for x in v]
        if any(t != t.strip() or not re.fullmatch(r"[ \r\n\t\S]+", t) for t in texts):
            continue  # FHIR strings: no leading or trailing white space (the HL7 regex)
        parsed = parse_event(ev)
        out.append(dict(to_json_dict(parsed), event_id=str(content_event_id(parsed))))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_fhir_safe_events())
def test_generated_events_to_fhir_and_back_are_the_same_events(events):
    path = Path(_tmp) / "roundtrip.json"
    path.write_text(json.dumps(bundle(to_resources(events))))
    with Timeline.open("memory") as tl:
        report, job = import_file(tl, path)
        assert job.unmapped == []
        got = tl.events()
    want = [e for e in events if e["type"] != "patient_registered"] + [
        e for e in events if e["type"] == "patient_registered"]
    assert _content(got) == sorted(json.dumps({k: v for k, v in to_json_dict(parse_event(e)).items()
                                               if k not in PROVENANCE}, sort_keys=True) for e in _unique(want))


def _unique(events):
    seen, out = set(), []
    for e in events:
        key = e["event_id"]  # the resource id: the same resource twice is one event
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


_tmp = None


@pytest.fixture(autouse=True, scope="module")
def _module_tmp(tmp_path_factory):
    global _tmp
    _tmp = tmp_path_factory.mktemp("fhir")
    yield
    shutil.rmtree(_tmp, ignore_errors=True)


def test_the_mapping_table_is_documented_in_docs_fhir_md():
    text = (Path(__file__).parent.parent / "docs" / "fhir.md").read_text(encoding="utf-8")
    for code in ("751-8", "777-3", "6690-2", "718-7", "234336002", "L01FX07", "69453-9", "9811/3"):
        assert f"`{code}`" in text
