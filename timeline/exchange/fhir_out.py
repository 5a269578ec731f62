"""Events → FHIR R4 resources, by the same table as the import (`timeline.exchange.fhir`): what
`timeline export fhir` writes (the visible event log as bulk-data NDJSON), and how the tests and the benchmark
make FHIR input whose events are known.

Each event becomes one resource whose id is the event's id, so importing the resources gives the same events
(type, patient, date and every field; provenance becomes `source_record_id` = `fhir:<Type>/<event id>`).
A field without a standard element goes to the extension `{EXT}<field>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from . import fhir as F

_ENVELOPE = {"type", "patient_id", "occurred_on", "event_id", "source", "source_record_id", "recorded_by", "note"}
_STATUS = {"Observation": "final", "Procedure": "completed"}
_DOSES = {"dose_ug_per_m2_day": "ug/(m2.d)", "dose_ug_per_day": "ug/d"}
#: CodeableConcept elements that repeat (the others hold one)
_LISTS = {("Condition", "bodySite"), ("Procedure", "bodySite"), ("MedicationAdministration", "statusReason")}
_FIRST: dict[str, F.Route] = {}
for _r in F.ROUTES:
    _FIRST.setdefault(_r.event, _r)


def _ext(name: str, value: Any) -> list[dict[str, Any]]:
    url = F.EXT + name
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, bool):
            out.append({"url": url, "valueBoolean": v})
        elif isinstance(v, int):
            out.append({"url": url, "valueInteger": v})
        elif isinstance(v, float):
            out.append({"url": url, "valueDecimal": v})
        else:
            out.append({"url": url, "valueString": str(v)})
    return out


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": F.UCUM, "code": unit}


def _cc(code: F.Code) -> dict[str, Any]:
    c = code.coding()
    return c if "text" in c else {"coding": [c]}


def _code_for(route: F.Route, ev: dict[str, Any]) -> F.Code:
    for c in route.codes:
        if c.system != F.TEXT and all(ev.get(k) == v for k, v in c.sets):
            return c
    raise ValueError(f"no code of the FHIR table for {ev['type']} with {dict(route.codes[0].sets)}")


def _patient(ev: dict[str, Any]) -> dict[str, Any]:
    res = {"resourceType": "Patient", "id": ev["patient_id"], "gender": ev["sex"], "birthDate": ev["birth_date"],
           "extension": [{"url": F.REGISTERED_ON, "valueDate": ev["occurred_on"]}]}
    return res


def to_resource(ev: dict[str, Any]) -> dict[str, Any] | None:
    """One event (public JSON, with its event_id) → one FHIR resource (JSON); None for an amendment."""
    kind = ev["type"]
    if kind == "patient_registered":
        return _patient(ev)
    route = _FIRST.get(kind)
    if route is None:
        return None
    rest = {k: v for k, v in ev.items() if k not in _ENVELOPE}
    rt = route.resource
    res: dict[str, Any] = {"resourceType": rt, "id": ev["event_id"]}
    if rt in _STATUS:
        res["status"] = _STATUS[rt]
    res["subject"] = {"reference": f"Patient/{ev['patient_id']}"}
    if kind == "blood_count":
        _blood_count(res, rest)
    else:
        code = _code_for(route, ev) if route.sets_from_code else route.codes[0]
        for k, _ in code.sets:
            rest.pop(k, None)
        cc = _cc(code)
        if route.text_field and route.text_field in rest:
            cc = dict(cc, text=rest.pop(route.text_field))
        res[F.CODE_ELEMENT[rt]] = cc
        _value(route, res, rest)
    for c in route.concepts:
        if c.field in rest:
            cc = _cc(c.values[rest.pop(c.field)])
            res[c.element] = [cc] if (rt, c.element) in _LISTS else cc
    _date(route, res, ev["occurred_on"])
    if rt == "Condition":
        status = "resolved" if route.date == "abatement" else "active"
        res["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                             "code": status}]}
    if rt == "MedicationAdministration":
        _administration(kind, res, rest)
    extensions = [e for name, value in rest.items() for e in _ext(name, value)]
    if extensions:
        res["extension"] = res.get("extension", []) + extensions
    return res


def _blood_count(res: dict[str, Any], rest: dict[str, Any]) -> None:
    firsts: dict[str, F.Code] = {}
    for c in F.ANALYTES:
        if c.field in rest:
            firsts.setdefault(c.field, c)
    codes = list(firsts.values())
    if len(codes) == 1:
        c = codes[0]
        res["code"] = _cc(c)
        res["valueQuantity"] = _quantity(rest.pop(c.field), F.UNITS[c.field][0][0])
        return
    res["code"] = _cc(F.BLOOD_COUNT_PANELS[0])
    res["component"] = [{"code": _cc(c), "valueQuantity": _quantity(rest.pop(c.field), F.UNITS[c.field][0][0])}
                        for c in codes]


def _value(route: F.Route, res: dict[str, Any], rest: dict[str, Any]) -> None:
    value = route.value
    if isinstance(value, F.Concept) and value.field in rest:
        res["valueCodeableConcept"] = _cc(value.values[rest.pop(value.field)])
    elif isinstance(value, F.Quantity):
        unit = value.units[0][0]
        flag, sensitivity = route.below_detection or (None, None)
        if flag and rest.get(flag) is True and value.field not in rest:
            rest.pop(flag)
            if sensitivity and sensitivity in rest:
                res["valueQuantity"] = dict(_quantity(rest.pop(sensitivity), unit), comparator="<")
            else:
                res["valueCodeableConcept"] = _cc(F.NOT_DETECTED)
        elif value.field in rest:
            res["valueQuantity"] = _quantity(rest.pop(value.field), unit)


def _date(route: F.Route, res: dict[str, Any], on: str) -> None:
    element = F.DATE_WRITTEN[route.date]
    if len(element) == 1:
        res[element[0]] = on
    else:
        res[element[0]] = {element[1]: on}


def _administration(kind: str, res: dict[str, Any], rest: dict[str, Any]) -> None:
    res["status"] = "in-progress"
    if kind == "blinatumomab_stopped":
        res["status"] = "completed" if res.get("statusReason") and \
            res["statusReason"][0]["coding"][0]["code"] == "completed" else "stopped"
    else:
        res["effectivePeriod"] = {"start": res.pop("effectiveDateTime")}
    for name, unit in _DOSES.items():
        if name in rest:
            res["dosage"] = {"rateQuantity": _quantity(rest.pop(name), unit)}
    if kind == "blinatumomab_dose_changed":
        res["extension"] = [{"url": F.DOSE_CHANGE, "valueBoolean": True}]


def to_resources(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Events (public JSON with event_id) → FHIR resources (JSON), amendments left out."""
    for ev in events:
        res = to_resource(ev)
        if res is not None:
            yield res


def bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A collection Bundle of resources."""
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def write_ndjson(view: Any, out: Any, pseudonymiser: Any = None) -> list[Any]:
    """`timeline export fhir`: the visible event log (the `events` table) as bulk-data NDJSON, one file per
    resource type (`Patient.ndjson`, `Observation.ndjson`, …), by the table of docs/fhir.md."""
    import json
    from pathlib import Path

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    frame = view.sql("SELECT event_id, patient_id, type, strftime(occurred_on, '%Y-%m-%d') AS occurred_on, "
                     "CAST(payload AS VARCHAR) AS payload FROM events ORDER BY patient_id, occurred_on, event_id")
    files: dict[str, Any] = {}
    try:
        for event_id, patient, kind, on, payload in frame.iter_rows():
            ev = {"type": kind, "patient_id": patient, "occurred_on": on, "event_id": event_id, **json.loads(payload)}
            if pseudonymiser is not None:
                ev = pseudonymiser.event(ev)
            res = to_resource(ev)
            if res is None:
                continue
            f = files.get(res["resourceType"])
            if f is None:
                f = files[res["resourceType"]] = open(folder / f"{res['resourceType']}.ndjson", "w", encoding="utf-8")
            f.write(json.dumps(res, ensure_ascii=False) + "\n")
    finally:
        for f in files.values():
            f.close()
    return sorted(folder / f"{name}.ndjson" for name in files)
