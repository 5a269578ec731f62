"""The event vocabulary: one frozen pydantic model per clinical occurrence (docs/events.md).

Grouped by domain (patient, therapy, transplant, laboratory, complications, outcome, corrections).
This package is the edge of the engine: everything stored has been validated here.
"""

from __future__ import annotations

import importlib
from typing import Any

#: this package's modules and the public names each defines: a name's module is imported when the name is first
#: used, so a reader of stored events that needs only `basics` never loads pydantic and the models
_MODULES = {
    "basics": ("EVENT_ID_NAMESPACE", "Problem"),
    "catalogue": ("EVENT_ADAPTER", "EVENT_TYPES", "Event", "canonical_json", "content_event_id", "json_schema",
                  "list_fields", "parse_event", "parse_event_json", "to_json_dict"),
    "complications": ("EngraftmentSyndrome", "GvhdDiagnosed", "GvhdResolved", "GvhdResponse", "GvhdTreatmentStarted",
                      "Infection", "Toxicity", "ViralReactivation", "magic_overall_grade"),
    "corrections": ("EventCorrected", "EventRetracted"),
    "envelope": ("EventBase",),
    "laboratory": ("BloodCount", "ChimerismTest", "Transfusion", "ViralLoad"),
    "outcome": ("Death", "FollowUp"),
    "patient": ("DiseaseAssessment", "Diagnosis", "MrdTest", "PatientRegistered", "Relapse"),
    "problems": ("problems_from",),
    "therapy": ("BlinatumomabDoseChanged", "BlinatumomabStarted", "BlinatumomabStopped", "ChemotherapyStarted",
                "ChemotherapyStopped", "ConditioningStarted", "GvhdProphylaxisStarted"),
    "transplant": ("DonorLymphocyteInfusion", "Engraftment", "GraftFailure", "StemCellInfusion"),
}
_PUBLIC = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "EVENT_ADAPTER", "EVENT_ID_NAMESPACE", "EVENT_TYPES", "Event", "EventBase", "Problem", "canonical_json",
    "content_event_id", "json_schema", "list_fields", "magic_overall_grade", "parse_event",
    "parse_event_json", "problems_from", "to_json_dict",
    # patient and disease
    "PatientRegistered", "Diagnosis", "Relapse", "DiseaseAssessment", "MrdTest",
    # therapy
    "ChemotherapyStarted", "ChemotherapyStopped", "BlinatumomabStarted", "BlinatumomabDoseChanged",
    "BlinatumomabStopped", "ConditioningStarted", "GvhdProphylaxisStarted",
    # transplant
    "StemCellInfusion", "GraftFailure", "DonorLymphocyteInfusion", "Engraftment",
    # laboratory
    "BloodCount", "Transfusion", "ChimerismTest", "ViralLoad",
    # complications
    "ViralReactivation", "Infection", "EngraftmentSyndrome", "GvhdDiagnosed", "GvhdTreatmentStarted",
    "GvhdResponse", "GvhdResolved", "Toxicity",
    # outcome
    "FollowUp", "Death",
    # corrections
    "EventCorrected", "EventRetracted",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'timeline.events' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
