"""FHIR R4 ↔ events: the one table saying which resource, with which code, becomes which event.

Each `Route` reads one kind of resource (`resource`, identified by a code of `codes`) into one event type:
the date from one element (`date`), the event's fields from standard elements where FHIR has one (an
Observation's value, a body site, a method, a severity, a dose) and from the extension
`{EXT}<field>` for the rest. The same table turns events back into resources (`timeline.exchange.fhir_out`)
and writes docs/fhir.md (`fhir_md`). Resources are parsed and validated by fhir.resources (its R4B models
read R4 data) before they get here; this module only reads the validated models.

Codes: LOINC for the laboratory, SNOMED CT for procedures, disorders, sites and severities, ICD-O-3 and
ICD-10 for the disease, ATC or the medication's text for blinatumomab; concepts the standard terminologies do
not name (MRD, chimerism, conditioning, …) use the local code system `{CS}<name>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

BASE = "https://timeline.example.org/fhir"
EXT = f"{BASE}/StructureDefinition/"   # + event field name: a field without a standard element
CS = f"{BASE}/CodeSystem/"             # + value-set name: local codes
#: extension marking a blinatumomab administration that changes the dose within a cycle
DOSE_CHANGE = EXT + "blinatumomab-dose-change"
#: extension holding the registration date on a Patient
REGISTERED_ON = EXT + "registered-on"

LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
TEXT = "text"  # a pseudo-system: the code matches the CodeableConcept's text or a coding's display

SYSTEM_NAMES = {LOINC: "LOINC", SCT: "SNOMED CT", UCUM: "UCUM", ATC: "ATC", ICDO3: "ICD-O-3", ICD10: "ICD-10",
                TEXT: "text"}

#: the statuses whose resources are imported (a Condition has none: its verificationStatus must not say
#: entered-in-error or refuted)
IMPORTED_STATUS = {"Observation": ("final", "amended", "corrected"), "Procedure": ("completed", "in-progress"),
                   "MedicationAdministration": ("completed", "in-progress", "stopped"),
                   "Encounter": ("finished", "in-progress", "arrived", "triaged", "onleave")}
RELAPSE_STATUS = {"relapse", "recurrence"}
# Events a FHIR resource does not give: corrections and retractions come from re-importing a changed or
# entered-in-error resource, and a consent withdrawal is the data manager's act, recorded with `timeline ingest`.
NOT_FROM_FHIR = ("event_corrected", "event_retracted", "consent_withdrawn")


@dataclass(frozen=True)
class Code:
    """A coding: `sets` are the event fields this code implies (a disease, a virus, a product)."""

    system: str
    code: str
    display: str
    sets: tuple[tuple[str, Any], ...] = ()
    field: str | None = None  # a laboratory code: the event field its value goes to

    def coding(self) -> dict[str, str]:
        return {"text": self.code} if self.system == TEXT else \
            {"system": self.system, "code": self.code, "display": self.display}

    def __str__(self) -> str:
        return f"{SYSTEM_NAMES.get(self.system, self.system)} `{self.code}` {self.display}"


def local(name: str, values: Iterable[str]) -> dict[str, Code]:
    """A local value set: each value its own code in `{CS}<name>`."""
    return {v: Code(CS + name, v, v.replace("_", " ")) for v in values}


def _with(standard: Mapping[str, Code], name: str, values: Iterable[str]) -> dict[str, Code]:
    """Standard codes where a terminology has one, local codes for the rest."""
    return {v: standard.get(v) or Code(CS + name, v, v.replace("_", " ")) for v in values}


@dataclass(frozen=True)
class Quantity:
    """A numeric field held in a Quantity: the UCUM units accepted and the factor into the field's unit
    (the first is written)."""

    field: str
    units: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Concept:
    """An enumerated field held in a CodeableConcept element (`bodySite`, `method`, `severity`, …)."""

    element: str
    field: str
    values: Mapping[str, Code]


@dataclass(frozen=True)
class Route:
    """One kind of resource → one event type."""

    event: str
    resource: str
    codes: tuple[Code, ...]
    date: str  # the element that dates the event: see DATES
    value: Quantity | Concept | None = None  # Observation.value[x] (a Concept's element is "value")
    concepts: tuple[Concept, ...] = ()
    text_field: str | None = None  # a field held in the code's text (a regimen)
    when: Callable[[Any], bool] | None = None  # a further condition on the resource
    when_doc: str = ""
    sets_from_code: bool = True
    below_detection: tuple[str, str | None] | None = None  # (flag field, sensitivity field): a "<" or "not detected"
    suffix: str = ""  # appended to the source_record_id (a resource giving two events)
    note: str = ""


# -- units -------------------------------------------------------------------------------------------------
COUNT_UNITS = (("10*9/L", 1.0), ("10*3/uL", 1.0), ("10*3/mm3", 1.0), ("/nL", 1.0), ("/uL", 1e-3), ("/mm3", 1e-3))
HB_UNITS = (("g/dL", 1.0), ("g/L", 0.1), ("mmol/L", 1.6114))
PERCENT = (("%", 1.0),)
UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    "anc_e9_per_l": COUNT_UNITS, "platelets_e9_per_l": COUNT_UNITS, "wbc_e9_per_l": COUNT_UNITS,
    "hb_g_per_dl": HB_UNITS, "result_percent": PERCENT, "sensitivity_percent": PERCENT,
    "donor_percent": PERCENT, "marrow_blasts_percent": PERCENT, "iu_per_ml": (("[IU]/mL", 1.0),),
    "tbi_gy": (("Gy", 1.0), ("cGy", 0.01)), "cd34_e6_per_kg": (("10*6/kg", 1.0),),
    "cd3_e6_per_kg": (("10*6/kg", 1.0),), "dose_ug_per_m2_day": (("ug/(m2.d)", 1.0),),
    "dose_ug_per_day": (("ug/d", 1.0),), "steroid_mg_per_kg_day": (("mg/kg/d", 1.0),),
}


def quantity(name: str) -> Quantity:
    return Quantity(name, UNITS[name])


# -- codes ---------------------------------------------------------------------------------------------------
ANALYTES = (
    Code(LOINC, "751-8", "Neutrophils [#/volume] in Blood by Automated count", field="anc_e9_per_l"),
    Code(LOINC, "753-4", "Neutrophils [#/volume] in Blood by Manual count", field="anc_e9_per_l"),
    Code(LOINC, "26499-4", "Neutrophils [#/volume] in Blood", field="anc_e9_per_l"),
    Code(LOINC, "777-3", "Platelets [#/volume] in Blood by Automated count", field="platelets_e9_per_l"),
    Code(LOINC, "26515-7", "Platelets [#/volume] in Blood", field="platelets_e9_per_l"),
    Code(LOINC, "6690-2", "Leukocytes [#/volume] in Blood by Automated count", field="wbc_e9_per_l"),
    Code(LOINC, "26464-8", "Leukocytes [#/volume] in Blood", field="wbc_e9_per_l"),
    Code(LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", field="hb_g_per_dl"),
)
BLOOD_COUNT_PANELS = (
    Code(LOINC, "58410-2", "CBC panel - Blood by Automated count"),
    Code(LOINC, "57021-8", "CBC W Auto Differential panel - Blood"),
)
DISEASES = (
    Code(ICDO3, "9811/3", "B lymphoblastic leukaemia/lymphoma, NOS", (("disease", "b_all"),)),
    Code(ICDO3, "9837/3", "T lymphoblastic leukaemia/lymphoma", (("disease", "t_all"),)),
    Code(ICDO3, "9861/3", "Acute myeloid leukaemia, NOS", (("disease", "aml"),)),
    Code(ICDO3, "9806/3", "Mixed phenotype acute leukaemia with t(9;22)", (("disease", "mpal"),)),
    Code(ICDO3, "9807/3", "Mixed phenotype acute leukaemia with t(v;11q23)", (("disease", "mpal"),)),
    Code(ICDO3, "9808/3", "Mixed phenotype acute leukaemia, B/myeloid, NOS", (("disease", "mpal"),)),
    Code(ICDO3, "9809/3", "Mixed phenotype acute leukaemia, T/myeloid, NOS", (("disease", "mpal"),)),
    Code(ICDO3, "9875/3", "Chronic myelogenous leukaemia, BCR-ABL1 positive", (("disease", "cml"),)),
    Code(ICDO3, "9989/3", "Myelodysplastic syndrome, NOS", (("disease", "mds"),)),
    Code(SCT, "91861009", "Acute myeloid leukemia", (("disease", "aml"),)),
    Code(ICD10, "C92.0", "Acute myeloblastic leukaemia", (("disease", "aml"),)),
    Code(ICD10, "C92.1", "Chronic myeloid leukaemia", (("disease", "cml"),)),
    Code(ICD10, "D46.9", "Myelodysplastic syndrome, unspecified", (("disease", "mds"),)),
    Code(CS + "disease", "other", "other disease leading to transplant", (("disease", "other"),)),
)
GVHD = (
    Code(SCT, "402355000", "Acute graft-versus-host disease", (("kind", "acute"),)),
    Code(SCT, "402356004", "Chronic graft-versus-host disease", (("kind", "chronic"),)),
)
INFECTIONS = (
    Code(SCT, "87628006", "Bacterial infectious disease", (("category", "bacterial"),)),
    Code(SCT, "34014006", "Viral disease", (("category", "viral"),)),
    Code(SCT, "3218000", "Mycosis", (("category", "fungal"),)),
    Code(SCT, "17322007", "Disease caused by parasite", (("category", "parasitic"),)),
)
TRANSFUSIONS = (
    Code(SCT, "180207008", "Intravenous blood transfusion of platelets", (("product", "platelets"),)),
    Code(SCT, "116863004", "Transfusion of red blood cells", (("product", "red_cells"),)),
    Code(CS + "transfusion", "granulocytes", "granulocyte transfusion", (("product", "granulocytes"),)),
)
HSCT = (Code(SCT, "234336002", "Hemopoietic stem cell transplant"),
        Code(SCT, "1269349006", "Transplantation of stem cell"))
BLINATUMOMAB = (Code(ATC, "L01FX07", "blinatumomab"), Code(ATC, "L01XC19", "blinatumomab (ATC until 2022)"),
                Code(TEXT, "blinatumomab", "the medication's text or display names blinatumomab"),
                Code(TEXT, "blincyto", "the medication's text or display names Blincyto"))
CHEMOTHERAPY = (Code(SCT, "367336001", "Chemotherapy"),)
VIRUSES = ("cmv", "ebv", "adenovirus", "bk", "hhv6", "other")
VIRAL_LOADS = tuple(Code(CS + "viral-load", v, f"{v} viral load", (("virus", v),)) for v in VIRUSES)
TOXICITIES = tuple(Code(CS + "toxicity", k, k.replace("_", "/"), (("kind", k),))
                   for k in ("crs", "icans", "vod_sos", "tma", "mucositis", "other"))
NOT_DETECTED = Code(SCT, "260415000", "Not detected")
CAUSE_OF_DEATH = Code(LOINC, "69453-9", "Cause of death [US Standard Certificate of Death]")


def _code(name: str, display: str) -> tuple[Code, ...]:
    return (Code(CS + "event", name, display),)


BONE_MARROW = Code(SCT, "14016003", "Bone marrow structure")
RELAPSE_SITES = _with({"bone_marrow": BONE_MARROW, "cns": Code(SCT, "21483005", "Structure of central nervous system"),
                       "testicular": Code(SCT, "40689003", "Testis structure")},
                      "relapse-site", ("bone_marrow", "cns", "testicular", "combined", "other"))
MRD_SPECIMENS = {"bone_marrow": BONE_MARROW, "peripheral_blood": Code(SCT, "87612001", "Blood")}
SEVERITIES = {"mild": Code(SCT, "255604002", "Mild"), "moderate": Code(SCT, "6736007", "Moderate"),
              "severe": Code(SCT, "24484000", "Severe")}
INFECTION_SITES = _with({"cns": RELAPSE_SITES["cns"], "skin": Code(SCT, "39937001", "Skin structure")},
                        "infection-site", ("bloodstream", "gastrointestinal", "respiratory", "urinary", "skin",
                                           "cns", "other"))


def _status(resource: Any) -> str | None:
    cc = getattr(resource, "clinicalStatus", None)
    return next((c.code for c in (cc.coding or []) if c.code), None) if cc is not None else None


def _relapse_status(resource: Any) -> bool:
    return _status(resource) in RELAPSE_STATUS


def _not_relapse_status(resource: Any) -> bool:
    return _status(resource) not in RELAPSE_STATUS


def _dose_change(resource: Any) -> bool:
    return any(e.url == DOSE_CHANGE and e.valueBoolean for e in resource.extension or ())


def _no_dose_change(resource: Any) -> bool:
    return not _dose_change(resource)


# -- the table ------------------------------------------------------------------------------------------------
ROUTES: tuple[Route, ...] = (
    Route("diagnosis", "Condition", DISEASES, "onset", when=_not_relapse_status,
          when_doc="clinicalStatus is not relapse/recurrence"),
    Route("relapse", "Condition", _code("relapse", "relapse of the disease"), "onset",
          concepts=(Concept("bodySite", "site", RELAPSE_SITES),)),
    Route("relapse", "Condition", DISEASES, "onset", when=_relapse_status, sets_from_code=False,
          when_doc="clinicalStatus relapse or recurrence", concepts=(Concept("bodySite", "site", RELAPSE_SITES),)),
    Route("disease_assessment", "Observation", _code("disease-assessment", "disease response assessment"),
          "effective", value=Concept("value", "response", local("response", (
              "complete_remission", "cri", "partial_response", "refractory", "progression")))),
    Route("mrd_test", "Observation", _code("mrd", "measurable residual disease"), "effective",
          value=quantity("result_percent"), below_detection=("below_detection", "sensitivity_percent"),
          concepts=(Concept("method", "method", local("mrd-method", ("flow", "pcr", "ngs"))),
                    Concept("bodySite", "specimen", MRD_SPECIMENS))),
    Route("chemotherapy_started", "Procedure", CHEMOTHERAPY, "performed", text_field="regimen",
          note="the regimen is the code's text"),
    Route("chemotherapy_stopped", "Procedure", CHEMOTHERAPY, "performed.end", text_field="regimen", suffix="#end",
          note="the same Procedure gives both events when its performedPeriod has a start and an end"),
    Route("blinatumomab_started", "MedicationAdministration", BLINATUMOMAB, "effective", when=_no_dose_change,
          when_doc="no dose-change extension",
          note="dose: dosage.rate (or dose) in ug/(m2.d) or ug/d; cycle: extension `cycle`, else numbered by start "
               "among the patient's blinatumomab administrations in the file"),
    Route("blinatumomab_dose_changed", "MedicationAdministration", BLINATUMOMAB, "effective", when=_dose_change,
          when_doc=f"extension {DOSE_CHANGE} = true"),
    Route("blinatumomab_stopped", "MedicationAdministration", BLINATUMOMAB, "effective.end", suffix="#end",
          concepts=(Concept("statusReason", "reason", local("blinatumomab-stop", (
              "completed", "toxicity", "progression", "transplant", "other"))),),
          note="reason: statusReason, else `completed` when status is completed, else `other`"),
    Route("conditioning_started", "Procedure", _code("conditioning", "conditioning before stem-cell infusion"),
          "performed", text_field="regimen"),
    Route("gvhd_prophylaxis_started", "Procedure", _code("gvhd-prophylaxis", "GVHD prophylaxis"), "performed"),
    Route("stem_cell_infusion", "Procedure", HSCT, "performed"),
    Route("graft_failure", "Condition", _code("graft-failure", "graft failure"), "onset"),
    Route("donor_lymphocyte_infusion", "Procedure", _code("dli", "donor lymphocyte infusion"), "performed"),
    Route("engraftment", "Observation", _code("engraftment", "engraftment as recorded by the clinician"),
          "effective", value=Concept("value", "lineage", local("lineage", ("neutrophil", "platelet")))),
    Route("blood_count", "Observation", ANALYTES + BLOOD_COUNT_PANELS, "effective",
          note="one analyte: valueQuantity; a panel: its components with the analyte codes"),
    Route("transfusion", "Procedure", TRANSFUSIONS, "performed"),
    Route("chimerism_test", "Observation", _code("chimerism", "donor chimerism"), "effective",
          value=quantity("donor_percent"),
          concepts=(Concept("method", "method", local("chimerism-method", ("str", "qpcr", "ngs", "fish"))),)),
    Route("viral_load", "Observation", VIRAL_LOADS, "effective", value=quantity("iu_per_ml"),
          below_detection=("below_detection", None),
          note=f"below detection: valueCodeableConcept {NOT_DETECTED} or a valueQuantity with comparator <"),
    Route("viral_reactivation", "Condition", _code("viral-reactivation", "viral reactivation"), "onset"),
    Route("infection", "Condition", INFECTIONS, "onset", concepts=(Concept("bodySite", "site", INFECTION_SITES),)),
    Route("engraftment_syndrome", "Condition", _code("engraftment-syndrome", "engraftment syndrome"), "onset"),
    Route("gvhd_diagnosed", "Condition", GVHD, "onset", concepts=(Concept("severity", "severity", SEVERITIES),)),
    Route("gvhd_resolved", "Condition", GVHD, "abatement", suffix="#abatement",
          note="the same Condition gives both events when it has an onset and an abatement"),
    Route("gvhd_treatment_started", "Procedure", _code("gvhd-treatment", "GVHD treatment line"), "performed"),
    Route("gvhd_response", "Observation", _code("gvhd-response", "GVHD response"), "effective",
          value=Concept("value", "response", local("gvhd-response", (
              "complete", "partial", "no_response", "progression")))),
    Route("toxicity", "Condition", TOXICITIES, "onset"),
    Route("follow_up", "Observation", _code("follow-up", "disease status at a contact"), "effective",
          value=Concept("value", "disease_status", local("disease-status", (
              "remission", "relapse", "not_assessed")))),
    Route("death", "Observation", (CAUSE_OF_DEATH,), "effective", value=Concept("value", "cause", local("death-cause", (
        "relapse", "transplant_related", "infection", "gvhd", "toxicity", "other", "unknown")))),
)

#: Resources read without a code (special cases, documented in docs/fhir.md)
SPECIAL = {
    "Patient": "patient_registered on the extension `registered-on` (valueDate), else on the earliest date of "
               "the patient's other events in the file; birth_date = birthDate, sex = gender. deceasedDateTime: "
               "a death (cause `unknown`) unless the file holds a cause-of-death Observation for the patient",
    "Encounter": "follow_up (disease_status `not_assessed`) on period.start: a contact at which the patient was "
                 "alive",
}

#: date element → the attributes read, in order
DATES: dict[str, tuple[str, ...]] = {
    "effective": ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
    "effective.end": ("effectivePeriod.end",),
    "onset": ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    "abatement": ("abatementDateTime", "abatementPeriod.start"),
    "performed": ("performedDateTime", "performedPeriod.start"),
    "performed.end": ("performedPeriod.end",),
}
#: the element written for each date (events → resources)
DATE_WRITTEN = {"effective": ("effectiveDateTime",), "effective.end": ("effectivePeriod", "end"),
                "onset": ("onsetDateTime",), "abatement": ("abatementDateTime",),
                "performed": ("performedDateTime",), "performed.end": ("performedPeriod", "end")}
#: the element of a route's code, by resource type
CODE_ELEMENT = {"Observation": "code", "Condition": "code", "Procedure": "code",
                "MedicationAdministration": "medicationCodeableConcept"}


# -- reading -----------------------------------------------------------------------------------------------------
def _attr(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def clinical_date(value: Any) -> str | None:
    """The clinical date of a FHIR date/dateTime/instant: the calendar date as written (its own time zone);
    None for a partial date (a year, a month)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def date_of(resource: Any, kind: str) -> tuple[str | None, Any]:
    """(the clinical date, the raw value) of a route's date element."""
    for path in DATES[kind]:
        raw = _attr(resource, path)
        if raw is not None:
            return clinical_date(raw), raw
    return None, None


def _codings(cc: Any) -> list[Any]:
    return list(getattr(cc, "coding", None) or [])


def _index(routes: Iterable[Route]) -> dict[tuple[str, str, str], list[Route]]:
    out: dict[tuple[str, str, str], list[Route]] = {}
    for r in routes:
        for c in r.codes:
            out.setdefault((r.resource, c.system, c.code.casefold() if c.system == TEXT else c.code), []).append(r)
    return out


INDEX = _index(ROUTES)
CODES = {(r.resource, c.system, c.code): c for r in ROUTES for c in r.codes}
_TEXT_CODES = sorted({(r.resource, c.code) for r in ROUTES for c in r.codes if c.system == TEXT})


def match(resource_type: str, cc: Any) -> tuple[Code | None, list[Route]]:
    """The code of the table a CodeableConcept carries, and its routes."""
    for c in _codings(cc):
        routes = INDEX.get((resource_type, c.system or "", c.code or ""))
        if routes:
            return CODES[(resource_type, c.system, c.code)], routes
    texts = [t.casefold() for t in [getattr(cc, "text", None), *(c.display for c in _codings(cc))] if t]
    for rt, word in _TEXT_CODES:
        if rt == resource_type and any(word in t for t in texts):
            return CODES[(rt, TEXT, word)], INDEX[(rt, TEXT, word)]
    return None, []


def describe(cc: Any) -> str:
    """A CodeableConcept in words, for an unmapped resource's reason."""
    parts = [f"{c.system}|{c.code}" + (f" ({c.display})" if c.display else "") for c in _codings(cc)]
    if getattr(cc, "text", None):
        parts.append(repr(cc.text))
    return ", ".join(parts) or "no code"


def concept_value(cc: Any, values: Mapping[str, Code]) -> str | None:
    """The enumerated value a CodeableConcept codes (by any of its codings, or its text equal to a value)."""
    if cc is None:
        return None
    for c in _codings(cc):
        for value, code in values.items():
            if c.system == code.system and c.code == code.code:
                return value
    text = getattr(cc, "text", None)
    return text if text in values else None


def quantity_value(q: Any, spec: Quantity) -> tuple[float | None, str | None]:
    """(value in the field's unit, None) or (None, why not)."""
    if q is None or q.value is None:
        return None, None
    unit = q.code or q.unit
    for ucum, factor in spec.units:
        if unit == ucum:
            v = float(q.value)
            return (v if factor == 1.0 else round(v * factor, 9)), None
    accepted = ", ".join(u for u, _ in spec.units)
    return None, f"{spec.field} in unit {unit!r}: accepted UCUM units are {accepted}"


def extension_value(ext: Any) -> Any:
    for name in ("valueDecimal", "valueInteger", "valueBoolean", "valueDate", "valueCode", "valueString"):
        v = getattr(ext, name, None)
        if v is not None:
            if isinstance(v, Decimal):
                return float(v)
            if isinstance(v, date):
                return v.isoformat()
            return v
    return None


def extension_fields(resource: Any, list_fields: set[str]) -> dict[str, Any]:
    """The event fields carried in `{EXT}<field>` extensions (a list field: one extension per item)."""
    out: dict[str, Any] = {}
    for ext in resource.extension or ():
        url = ext.url or ""
        if not url.startswith(EXT) or url in (DOSE_CHANGE, REGISTERED_ON):
            continue
        name, value = url[len(EXT):], extension_value(ext)
        if name in list_fields:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


@dataclass
class Mapped:
    """What one resource gave: events (dicts in the public format, without the envelope's provenance),
    each with its source_record_id suffix, or the reason it was not mapped."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    unmapped: str | None = None


__all__ = ["ROUTES", "Route", "Code", "Concept", "Quantity", "match", "date_of", "EXT", "CS", "BASE"]


# -- docs/fhir.md ---------------------------------------------------------------------------------------------------
def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _codes_md(codes: Iterable[Code]) -> str:
    return "; ".join(f"{SYSTEM_NAMES.get(c.system, 'local ' + c.system.removeprefix(CS))} `{c.code}` {c.display}"
                     + (" → " + ", ".join(f"{k}={v}" for k, v in c.sets) if c.sets else "")
                     + (f" → {c.field}" if c.field else "") for c in codes)


def _fields_md(route: Route) -> str:
    from ..events import EVENT_TYPES

    parts = []
    if isinstance(route.value, Quantity):
        units = ", ".join(f"`{u}`" + (f" ×{f:g}" if f != 1 else "") for u, f in route.value.units)
        parts.append(f"{route.value.field} = valueQuantity ({units})")
    elif isinstance(route.value, Concept):
        parts.append(f"{route.value.field} = valueCodeableConcept")
    if route.below_detection:
        parts.append(f"{route.below_detection[0]} = a `<` comparator" + (
            f" (its value: {route.below_detection[1]})" if route.below_detection[1] else "") + " or Not detected")
    parts += [f"{c.field} = {c.element}" for c in route.concepts]
    if route.text_field:
        parts.append(f"{route.text_field} = the code's text")
    shown = {p.split(" ", 1)[0] for p in parts} | {k for c in route.codes for k, _ in c.sets} | \
        {c.field for c in route.codes if c.field}
    rest = [n for n in EVENT_TYPES[route.event].model_fields
            if n not in shown and n not in ("type", "patient_id", "occurred_on", "event_id", "source",
                                            "source_record_id", "recorded_by", "note")]
    if route.event.startswith("blinatumomab_") and route.event != "blinatumomab_stopped":
        rest = [n for n in rest if not n.startswith("dose_")]
        parts.append("dose = dosage.rate (`ug/(m2.d)` or `ug/d`)")
    if rest:
        parts.append("extension: " + ", ".join(rest))
    return "; ".join(parts)


def _values_md() -> list[str]:
    out = []
    seen: set[str] = set()
    for r in ROUTES:
        for c in ([r.value] if isinstance(r.value, Concept) else []) + list(r.concepts):
            key = f"{r.event}.{c.field}"
            if key in seen:
                continue
            seen.add(key)
            out.append(f"| {r.event} | {c.field} | " + _cell(_codes_md(
                Code(v.system, v.code, v.display, (("", k),)) for k, v in c.values.items()).replace(" → =", " →")) + " |")
    return out


def fhir_md() -> str:
    """docs/fhir.md: the mapping table in words."""
    out = ["# FHIR R4: which resource becomes which event", "",
           "`timeline import fhir FILE_OR_DIR…` reads FHIR R4 Bundles (`.json`, any Bundle type), single resources "
           "(`.json`) and bulk-data NDJSON (`.ndjson`). Every resource is validated with fhir.resources (its R4B "
           "models read R4 data); the table below maps it to an event, which then goes through the checks of "
           "`timeline ingest` (docs/events.md: types, units, plausible ranges), all or nothing per file. "
           "`timeline export fhir OUT` writes the visible event log back as NDJSON by the same table.", "",
           "- **Identity.** An event's `source_record_id` is `fhir:<Type>/<id>` (`--prefix` names another system); "
           "importing a changed resource again records a correction of the event it gave. A resource giving two "
           "events adds `#end` / `#abatement` to the second.",
           "- **Patient.** The subject reference `Patient/<id>` (or a Bundle entry's fullUrl) gives `patient_id`: "
           "FHIR ids (A–Z a–z 0–9 - .) are valid patient ids.",
           "- **Dates.** The clinical date is the calendar date of the dateTime as written, in its own time zone; "
           "a date not precise to the day is not mapped.",
           "- **Statuses imported.** " + "; ".join(f"{rt}: {', '.join(s)}" for rt, s in IMPORTED_STATUS.items())
           + ". A Condition whose verificationStatus is entered-in-error or refuted is not imported.",
           "- **Not mapped** (listed with its type, id and reason, and counted; `--strict` refuses the file): "
           "another resource type, a code not in the table, a status not imported, a unit not accepted, a "
           "resource lacking what its event requires.",
           "- **Not from FHIR:** " + ", ".join(f"`{t}`" for t in NOT_FROM_FHIR) + ". Corrections and "
           "retractions come from importing a changed or entered-in-error resource again; a consent withdrawal "
           "is recorded by the data manager with `timeline ingest` (a FHIR Consent resource is not read).",
           f"- **Fields without a standard element** go to the extension `{EXT}<field>` (valueDecimal, "
           "valueInteger, valueBoolean, valueDate, valueCode or valueString; a list field: one extension per "
           "item). Local codes: the code system `" + CS + "<name>`, code = the event's value.",
           "- **Codes.** The standard codes below were chosen from LOINC, SNOMED CT, ICD-O-3, ICD-10 and ATC; "
           "a centre adds its own (a LOINC code of its viral-load assay, say) as one line of "
           "`timeline/exchange/fhir.py`.", "",
           "## Resources without a code", "", "| resource | event(s) |", "|---|---|"]
    out += [f"| {rt} | {_cell(text)} |" for rt, text in SPECIAL.items()]
    out += ["", "## Resources by code", "",
            "| event | resource | code(s) | date | condition | fields |", "|---|---|---|---|---|---|"]
    for r in ROUTES:
        date_doc = " or ".join(DATES[r.date])
        cond = r.when_doc + ("; " if r.when_doc and r.note else "") + r.note
        codes = r.codes if r.sets_from_code else tuple(Code(c.system, c.code, c.display) for c in r.codes)
        out.append(f"| {r.event} | {r.resource} | {_cell(_codes_md(codes))} | {_cell(date_doc)} | {_cell(cond)} | "
                   f"{_cell(_fields_md(r))} |")
    out += ["", "## Coded values", "", "| event | field | codes |", "|---|---|---|"] + _values_md()
    out += ["", "## Units", "", "| field | UCUM units accepted (factor into the field's unit) |", "|---|---|"]
    out += [f"| {name} | " + ", ".join(f"`{u}`" + (f" ×{f:g}" if f != 1 else "") for u, f in units) + " |"
            for name, units in UNITS.items()]
    return "\n".join(out) + "\n"
