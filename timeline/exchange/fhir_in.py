"""FHIR R4 files → events: read Bundles and NDJSON, validate every resource with fhir.resources (R4B models),
map it by the table of `timeline.exchange.fhir`, and hand the events to the same path as `timeline ingest`.

A file is one unit: every resource is validated first; a resource that does not validate, or a mapped event
that the vocabulary refuses (a value out of its plausible range, …), refuses the whole file, naming the line
or entry, the resource, the field, the value and the rule. A valid resource the table does not map, or one
that lacks what its event needs, is listed (type, id, reason) and counted; `strict` refuses a file with any.
Each event's `source_record_id` is `<prefix>:<Type>/<id>`, so importing a changed resource again records a
correction of the event it gave before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..events import EVENT_ADAPTER, EVENT_TYPES, list_fields
from ..events.problems import Problem
from ..ingest import prepare_json_lines
from ..workers import ordered_map
from . import fhir as F

FHIR_SUFFIXES = (".json", ".ndjson")
BLOCK = 5_000  # resources per worker task
PARALLEL_MIN_RESOURCES = 20_000
MAP_AHEAD_BLOCKS = 8  # blocks mapped ahead of the writer (workers.ordered_map: memory bounded by it)
_DOSE_UNITS = {"ug/(m2.d)": "dose_ug_per_m2_day", "ug/d": "dose_ug_per_day"}
#: sub-elements shared by many resources (the same code, the same patient): validated once per resource type,
#: field and content, then given to the model as the validated instance (fhir.resources checks it is one)
_SHARED = ("code", "subject", "category", "medicationCodeableConcept", "method", "bodySite", "meta", "valueQuantity",
           "valueCodeableConcept", "extension", "dosage", "statusReason", "clinicalStatus", "severity")


@dataclass(frozen=True)
class Unmapped:
    resource_type: str
    id: str | None
    reason: str
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.resource_type}/{self.id or '(no id)'}: {self.reason}"


@dataclass
class Pending:
    """An event that needs the whole file: a registration without its date, a blinatumomab administration
    without its cycle, a Patient's deceased date (dropped if a cause-of-death Observation came)."""

    kind: str  # "registered", "cycle", "deceased"
    event: dict[str, Any]
    line: int


@dataclass
class Block:
    """What a block of resources gave: prepared events and problems (as `ingest` makes them), the unmapped,
    what waits for the whole file, each patient's earliest event date, the lines' resource names."""

    prepared: list[Any] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    earliest: dict[str, str] = field(default_factory=dict)
    deaths: set[str] = field(default_factory=set)
    names: dict[int, str] = field(default_factory=dict)


class _Validator:
    """fhir.resources validation of raw resources, each shared sub-element validated once."""

    def __init__(self) -> None:
        from fhir.resources.R4B import get_fhir_model_class

        self._model = get_fhir_model_class
        self._shared: dict[tuple[str, str, str], Any] = {}

    def __call__(self, obj: dict[str, Any]) -> Any:
        rt = obj.get("resourceType")
        if not isinstance(rt, str):
            raise ValueError("resourceType missing")
        cls = self._model(rt)
        given = dict(obj)
        if rt not in _REQUIRED:
            return cls.model_validate(given)
        for key in _SHARED:
            value = given.get(key)
            if isinstance(value, (dict, list)):
                given[key] = self._element(cls, rt, key, value)
        components = given.get("component")
        if rt == "Observation" and isinstance(components, list):
            given["component"] = [self._component(cls, c) for c in components]
        return cls.model_validate(given)

    def _element(self, cls: Any, rt: str, key: str, value: Any) -> Any:
        """One element of a resource, validated alone in the resource's context (once per content)."""
        k = (rt, key, repr(value))  # the same JSON text gives the same repr: a cache key, not a comparison
        done = self._shared.get(k)
        if done is None:
            alone = {**_required_for(rt, key), "resourceType": rt, key: value}
            done = getattr(cls.model_validate(alone), key)
            if len(self._shared) < 200_000:
                self._shared[k] = done
        return done

    def _component(self, cls: Any, component: Any) -> Any:
        """An Observation's component (a panel's analyte): validated once per content."""
        if not isinstance(component, dict):
            return component
        return self._element(cls, "Observation", "component", [component])[0]


#: the required elements of a resource, given (as placeholders) when a shared sub-element is validated alone
_REQUIRED: dict[str, dict[str, Any]] = {
    "Observation": {"status": "final", "code": {"text": "-"}},
    "Condition": {"subject": {"reference": "Patient/-"}},
    "Procedure": {"status": "completed", "subject": {"reference": "Patient/-"}},
    "MedicationAdministration": {"status": "completed", "subject": {"reference": "Patient/-"},
                                 "medicationCodeableConcept": {"text": "-"}, "effectiveDateTime": "2000-01-01"},
    "Encounter": {"status": "finished", "class": {"code": "AMB"}},
    "Patient": {},
}


def _required_for(rt: str, key: str) -> dict[str, Any]:
    return {k: v for k, v in _REQUIRED.get(rt, {}).items() if k != key}


def _validation_problems(exc: ValidationError, name: str, line: int) -> list[Problem]:
    out = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "(resource)"
        out.append(Problem(f"{name} {loc}", e.get("input"), f"FHIR: {e['msg']}", line))
    return out


# -- one resource ---------------------------------------------------------------------------------------------
def patient_of(ref: Any, fullurls: dict[str, str]) -> str | None:
    """The patient id a Reference names: Patient/<id>, an absolute URL ending so, or a Bundle's fullUrl."""
    text = getattr(ref, "reference", None)
    if not text:
        return None
    if text in fullurls:
        return fullurls[text]
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == "Patient" and parts[-2] == "_history":
        return parts[-3]
    return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def _fields_of(event: str) -> set[str]:
    return set(EVENT_TYPES[event].model_fields)


def _fill(route: F.Route, code: F.Code, res: Any, ev: dict[str, Any]) -> str | None:
    """The route's fields into `ev`; the reason the resource cannot be mapped, if any."""
    if route.sets_from_code:
        ev.update(code.sets)
    if route.event == "blood_count":
        return _blood_count(code, res, ev)
    value = route.value
    if isinstance(value, F.Quantity):
        q = getattr(res, "valueQuantity", None)
        if q is not None and route.below_detection and q.comparator == "<":
            flag, sensitivity = route.below_detection
            ev[flag] = True
            if sensitivity:
                v, why = F.quantity_value(q, F.quantity(sensitivity))
                if why:
                    return why
                ev[sensitivity] = v
        elif q is not None:
            v, why = F.quantity_value(q, value)
            if why:
                return why
            ev[value.field] = v
        elif route.below_detection and F.concept_value(
                getattr(res, "valueCodeableConcept", None), {"x": F.NOT_DETECTED}) == "x":
            ev[route.below_detection[0]] = True
    elif isinstance(value, F.Concept):
        cc = getattr(res, "valueCodeableConcept", None)
        got = F.concept_value(cc, value.values)
        if got is None and cc is not None:
            return f"{value.field}: value {F.describe(cc)} is not one of the codes in docs/fhir.md"
        if got is not None:
            ev[value.field] = got
    for c in route.concepts:
        cc = _first(getattr(res, c.element, None))
        got = F.concept_value(cc, c.values)
        if got is None and cc is not None:
            return f"{c.field}: {c.element} {F.describe(cc)} is not one of the codes in docs/fhir.md"
        if got is not None:
            ev[c.field] = got
    if route.text_field:
        text = getattr(getattr(res, F.CODE_ELEMENT[route.resource]), "text", None)
        if text:
            ev[route.text_field] = text
    if route.event in ("blinatumomab_started", "blinatumomab_dose_changed"):
        dosage = getattr(res, "dosage", None)
        q = dosage and (dosage.rateQuantity or dosage.dose)
        if q is not None:
            unit = q.code or q.unit
            name = _DOSE_UNITS.get(unit)
            if name is None:
                return f"dose in unit {unit!r}: accepted UCUM units are {', '.join(_DOSE_UNITS)}"
            ev[name] = float(q.value)
    if route.event == "blinatumomab_stopped" and "reason" not in ev:
        ev["reason"] = "completed" if res.status == "completed" else "other"
    return None


def _blood_count(code: F.Code, res: Any, ev: dict[str, Any]) -> str | None:
    pairs = [(code, res.valueQuantity)] if code.field else []
    for comp in res.component or ():
        c, _ = F.match("Observation", comp.code)
        if c is not None and c.field:
            pairs.append((c, comp.valueQuantity))
    for c, q in pairs:
        v, why = F.quantity_value(q, F.quantity(c.field))
        if why:
            return why
        if v is not None:
            ev[c.field] = v
    return None


def _required_missing(ev: dict[str, Any]) -> list[str]:
    """The required fields an event lacks (other problems are left to the ingest's validation)."""
    try:
        EVENT_ADAPTER.validate_python(ev)
    except ValidationError as e:
        return sorted({".".join(str(p) for p in err["loc"][1:]) for err in e.errors() if err["type"] == "missing"})
    return []


def _status_refused(res: Any, rt: str) -> str | None:
    accepted = F.IMPORTED_STATUS.get(rt)
    status = getattr(res, "status", None)
    if accepted and status not in accepted:
        return f"status {status!r} is not imported (imported: {', '.join(accepted)})"
    return None


def map_resource(res: Any, fullurls: dict[str, str]) -> F.Mapped | list[Pending]:
    """One validated resource → its events (or the reason it is not mapped)."""
    rt = res.get_resource_type()
    if rt == "Patient":
        return _patient(res)
    if rt == "Encounter":
        return _encounter(res, fullurls)
    element = F.CODE_ELEMENT.get(rt)
    if element is None:
        return F.Mapped(unmapped=f"{rt} resources are not imported (docs/fhir.md lists what is)")
    why = _status_refused(res, rt)
    if why:
        return F.Mapped(unmapped=why)
    verification = getattr(res, "verificationStatus", None)
    if verification is not None and any(c.code in ("entered-in-error", "refuted") for c in verification.coding or ()):
        return F.Mapped(unmapped="verificationStatus entered-in-error or refuted")
    cc = getattr(res, element, None)
    code, routes = F.match(rt, cc)
    if not routes:
        if cc is None:
            return F.Mapped(unmapped=f"no {element}" + (" (medicationReference is not followed)"
                                                        if getattr(res, "medicationReference", None) else ""))
        return F.Mapped(unmapped=f"no mapping for code {F.describe(cc)}")
    patient = patient_of(getattr(res, "subject", None), fullurls)
    if patient is None:
        return F.Mapped(unmapped="its subject is not a Patient")
    out = F.Mapped()
    reasons = []
    extras = F.extension_fields(res, set().union(*(list_fields(r.event) for r in routes)))
    for route in routes:
        if route.when is not None and not route.when(res):
            continue
        on, raw = F.date_of(res, route.date)
        if raw is None:
            continue
        if on is None:
            reasons.append(f"{route.event}: the date {raw!r} is not precise to the day")
            continue
        ev: dict[str, Any] = {"type": route.event, "patient_id": patient, "occurred_on": on}
        why = _fill(route, code, res, ev)
        if why:
            reasons.append(why)
            continue
        own = _fields_of(route.event)
        ev.update({k: v for k, v in extras.items() if k in own})
        missing = _required_missing(ev)
        if missing and not (route.event.startswith("blinatumomab_") and missing == ["cycle"]):
            reasons.append(f"{route.event} needs {', '.join(missing)}")
            continue
        out.events.append((route.suffix, ev))
    if out.events:
        stray = {k: v for k, v in extras.items() if not any(k in _fields_of(e["type"]) for _, e in out.events)}
        out.events[0][1].update(stray)  # an extension no event of it has: the ingest names it an unknown field
    if not out.events:
        out.unmapped = "; ".join(reasons) or f"no date to place it ({', '.join(sorted({r.date for r in routes}))})"
    return out


def _patient(res: Any) -> list[Pending] | F.Mapped:
    if not res.id:
        return F.Mapped(unmapped="a Patient without an id")
    missing = [name for name, v in (("birthDate", res.birthDate), ("gender", res.gender)) if v is None]
    birth = F.clinical_date(res.birthDate)
    if missing or birth is None:
        return F.Mapped(unmapped=f"patient_registered needs {' and '.join(missing) or 'a birthDate to the day'}")
    ev = {"type": "patient_registered", "patient_id": res.id, "birth_date": birth, "sex": res.gender}
    registered = next((F.extension_value(e) for e in res.extension or () if e.url == F.REGISTERED_ON), None)
    out = [Pending("registered", ev, 0)]
    if registered is not None:
        ev["occurred_on"] = registered
    deceased = F.clinical_date(res.deceasedDateTime)
    if deceased is not None:
        out.append(Pending("deceased", {"type": "death", "patient_id": res.id, "occurred_on": deceased,
                                        "cause": "unknown"}, 0))
    return out


def _encounter(res: Any, fullurls: dict[str, str]) -> F.Mapped:
    why = _status_refused(res, "Encounter")
    if why:
        return F.Mapped(unmapped=why)
    patient = patient_of(res.subject, fullurls)
    on = F.clinical_date(res.period.start) if res.period is not None else None
    if patient is None or on is None:
        return F.Mapped(unmapped="an Encounter needs a Patient subject and a period.start to the day")
    return F.Mapped(events=[("", {"type": "follow_up", "patient_id": patient, "occurred_on": on,
                                  "disease_status": "not_assessed"})])


# -- blocks of resources ----------------------------------------------------------------------------------------
def _resource_name(obj: Any) -> str:
    if isinstance(obj, dict):
        return f"{obj.get('resourceType', '?')}/{obj.get('id') or '(no id)'}"
    return "(not a JSON object)"


def map_block(items: list[tuple[int, Any]], fullurls: dict[str, str], prefix: str, latest: date,
              validator: _Validator | None = None) -> Block:
    """Validate and map (line, raw resource) pairs; prepare their events as `ingest` does."""
    validate = validator or _VALIDATOR()
    out = Block()
    lines: list[tuple[int, bytes]] = []
    for n, obj in items:
        name = _resource_name(obj)
        out.names[n] = name
        if not isinstance(obj, dict):
            out.prepared.append(Problem("(line)", str(obj)[:80], "is not a FHIR resource (a JSON object)", n))
            continue
        try:
            res = validate(obj)
        except ValidationError as e:
            out.prepared.extend(_validation_problems(e, name, n))
            continue
        except ValueError as e:
            out.prepared.append(Problem(f"{name} resourceType", obj.get("resourceType"), str(e), n))
            continue
        got = map_resource(res, fullurls)
        rt, rid = res.get_resource_type(), res.id
        record = f"{prefix}:{rt}/{rid}" if rid else None
        if isinstance(got, list):
            for p in got:
                p.line = n
                if record:
                    p.event["source_record_id"] = record + ("#deceased" if p.kind == "deceased" else "")
                p.event["source"] = prefix
                out.pending.append(p)
            continue
        if got.unmapped:
            out.unmapped.append(Unmapped(rt, rid, got.unmapped, n))
            continue
        for suffix, ev in got.events:
            ev["source"] = prefix
            if record:
                ev["source_record_id"] = record + suffix
            pid, on = ev["patient_id"], ev["occurred_on"]
            if on < out.earliest.get(pid, "9999"):
                out.earliest[pid] = on
            if ev["type"] == "death":
                out.deaths.add(pid)
            if ev["type"].startswith("blinatumomab_") and "cycle" not in ev:
                out.pending.append(Pending("cycle", ev, n))
                continue
            lines.append((n, json.dumps(ev, ensure_ascii=False).encode()))
    out.prepared.extend(prepare_json_lines(lines, latest))
    return out


_VALIDATOR_INSTANCE: _Validator | None = None


def _VALIDATOR() -> _Validator:
    global _VALIDATOR_INSTANCE
    if _VALIDATOR_INSTANCE is None:
        _VALIDATOR_INSTANCE = _Validator()
    return _VALIDATOR_INSTANCE


def finish(pending: list[Pending], earliest: dict[str, str], deaths: set[str], latest: date,
           unmapped: list[Unmapped], names: dict[int, str]) -> list[Any]:
    """The events that needed the whole file, prepared: registrations dated, cycles numbered, a Patient's
    deceased date kept when no cause-of-death Observation came for the patient."""
    lines = []
    cycles: dict[str, list[Pending]] = {}
    for p in pending:
        ev = p.event
        if p.kind == "registered" and "occurred_on" not in ev:
            first = earliest.get(ev["patient_id"])
            if first is None:
                name = names.get(p.line, "Patient/?")
                unmapped.append(Unmapped("Patient", name.split("/", 1)[-1], "no registration date: no "
                                         "registered-on extension and no other event of the patient in the file",
                                         p.line))
                continue
            ev["occurred_on"] = first
        if p.kind == "deceased" and ev["patient_id"] in deaths:
            continue
        if p.kind == "cycle":
            cycles.setdefault(ev["patient_id"], []).append(p)
            continue
        lines.append((p.line, json.dumps(ev, ensure_ascii=False).encode()))
    for items in cycles.values():
        starts = sorted({p.event["occurred_on"] for p in items if p.event["type"] == "blinatumomab_started"})
        for p in items:
            on = p.event["occurred_on"]
            before = [s for s in starts if s <= on]
            p.event["cycle"] = len(before) or 1
            lines.append((p.line, json.dumps(p.event, ensure_ascii=False).encode()))
    return prepare_json_lines(sorted(lines), latest)


# -- files ---------------------------------------------------------------------------------------------------------
def fhir_files(paths: list[Path]) -> list[Path]:
    """The files to import: the given ones, and every .json / .ndjson file under a given folder."""
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in FHIR_SUFFIXES)
        else:
            out.append(p)
    return out


def read_items(path: Path) -> tuple[list[tuple[int, Any]] | None, Iterator[list[tuple[int, Any]]] | None,
                                     dict[str, str], list[Problem]]:
    """A Bundle or single-resource JSON file (its entries numbered 1, 2, …) or an NDJSON file (numbered by
    line): the resources, the Bundle's fullUrl → patient id, and problems of the file itself."""
    if path.suffix.lower() == ".ndjson":
        return None, _ndjson_blocks(path), {}, []
    try:
        doc = json.loads(path.read_bytes())
    except ValueError as e:
        return [], None, {}, [Problem("(file)", path.name, f"is not JSON: {e}", 1)]
    if not isinstance(doc, dict) or "resourceType" not in doc:
        return [], None, {}, [Problem("(file)", path.name, "is not a FHIR resource or Bundle (no resourceType)", 1)]
    if doc["resourceType"] != "Bundle":
        return [(1, doc)], None, {}, []
    problems = _bundle_problems(doc)
    entries = doc.get("entry") or []
    items = [(i, e.get("resource") if isinstance(e, dict) else e) for i, e in enumerate(entries, start=1)]
    fullurls = {}
    for e in entries:
        r = e.get("resource") if isinstance(e, dict) else None
        if isinstance(r, dict) and r.get("resourceType") == "Patient" and e.get("fullUrl"):
            fullurls[e["fullUrl"]] = r.get("id") or e["fullUrl"].rsplit(":", 1)[-1]
    return items, None, fullurls, problems


def _bundle_problems(doc: dict[str, Any]) -> list[Problem]:
    """The Bundle itself (its entries' resources are validated one by one)."""
    from fhir.resources.R4B.bundle import Bundle

    shell = dict(doc, entry=[{k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
                             for e in doc.get("entry") or []] or None)
    if shell["entry"] is None:
        shell.pop("entry")
    try:
        Bundle.model_validate(shell)
    except ValidationError as e:
        return _validation_problems(e, "Bundle", 0)
    return []


def _ndjson_blocks(path: Path) -> Iterator[list[tuple[int, Any]]]:
    block: list[tuple[int, Any]] = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                block.append((n, json.loads(raw)))
            except ValueError as e:
                block.append((n, f"invalid JSON: {e}"))
            if len(block) >= BLOCK:
                yield block
                block = []
    if block:
        yield block


def _map_job(args: tuple[list[tuple[int, Any]], dict[str, str], str, date]) -> Block:
    items, fullurls, prefix, latest = args
    return map_block(items, fullurls, prefix, latest)


@dataclass
class FileImport:
    """One file's import: the source of prepared events for `EventStore.append` (replayable), and what it
    found (unmapped resources, names of lines for messages) once it has run."""

    path: Path
    prefix: str
    latest: date
    parallel: bool | None = None
    strict: bool = False
    unmapped: list[Unmapped] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    resources: int = 0

    def blocks(self) -> Iterator[Block]:
        items, blocks, fullurls, problems = read_items(self.path)
        if problems:
            yield Block(prepared=list(problems))
        if items is not None:
            for i in range(0, len(items), BLOCK):
                yield map_block(items[i:i + BLOCK], fullurls, self.prefix, self.latest)
            return
        assert blocks is not None
        parallel = self.parallel
        if parallel is None:
            parallel = (os.cpu_count() or 1) > 1 and self.path.stat().st_size >= PARALLEL_MIN_RESOURCES * 300
        if not parallel:
            for b in blocks:
                yield map_block(b, fullurls, self.prefix, self.latest)
            return
        yield from ordered_map(_map_job, ((b, fullurls, self.prefix, self.latest) for b in blocks), MAP_AHEAD_BLOCKS)

    def source(self) -> Iterator[list[Any]]:
        """Blocks of prepared events and problems, then the events that needed the whole file."""
        self.unmapped, self.names, self.resources = [], {}, 0
        pending: list[Pending] = []
        earliest: dict[str, str] = {}
        deaths: set[str] = set()
        for b in self.blocks():
            self.unmapped += b.unmapped
            if b.pending or any(type(x) is Problem for x in b.prepared):
                self.names.update(b.names)  # only where a message may need them (1.5M names cost memory)
            self.resources += len(b.names)
            pending += b.pending
            deaths |= b.deaths
            for pid, on in b.earliest.items():
                if on < earliest.get(pid, "9999"):
                    earliest[pid] = on
            yield b.prepared
        yield finish(pending, earliest, deaths, self.latest, self.unmapped, self.names)
        if self.strict and self.unmapped:
            yield unmapped_problems(self.unmapped)

    def located(self, problems: list[Problem]) -> list[Problem]:
        """Problems of the ingest named by the resource they came from."""
        out = []
        for p in problems:
            name = self.names.get(p.line or -1)
            if name and not p.field.startswith(name):
                p = Problem(f"{name} → {p.field}", p.value, p.rule, p.line)
            out.append(p)
        return out


def unmapped_problems(unmapped: list[Unmapped]) -> list[Problem]:
    """`--strict`: every unmapped resource as a problem refusing the file."""
    return [Problem(f"{u.resource_type}/{u.id or '(no id)'}", None, f"not mapped: {u.reason}", u.line)
            for u in unmapped]


def import_file(tl: Any, path: Path, prefix: str = "fhir", strict: bool = False, dry_run: bool = False,
                parallel: bool | None = None) -> tuple[Any, FileImport]:
    """Import one FHIR file into the Timeline's store, all or nothing, by the path of `timeline ingest`
    (same validation, idempotency, corrections of changed source records). Raises `RejectedError` naming
    each problem's resource; returns (the append report, the file's import with its unmapped list)."""
    from ..events.problems import RejectedError
    from ..ingest import source_corrector

    latest = tl._latest()
    job = FileImport(path, prefix, latest, parallel=parallel, strict=strict)
    try:
        report = tl.store.append(job.source, str(path), corrector=source_corrector(latest), dry_run=dry_run)
    except RejectedError as e:
        raise RejectedError(job.located(e.problems), e.what) from None
    return report, job
