"""The event vocabulary: one frozen pydantic model per clinical occurrence (docs/events.md).

Grouped by domain (patient, therapy, transplant, laboratory, complications, outcome, corrections).
This package is the edge of the engine: everything stored has been validated here.
"""

from timeline.events.catalogue import (
    EVENT_ADAPTER,
    EVENT_ID_NAMESPACE,
    canonical_json,
    EVENT_TYPES,
    Event,
    content_event_id,
    json_schema,
    list_fields,
    parse_event,
    parse_event_json,
    to_json_dict,
)
from timeline.events.complications import (
    EngraftmentSyndrome,
    GvhdDiagnosed,
    GvhdResolved,
    GvhdResponse,
    GvhdTreatmentStarted,
    Infection,
    Toxicity,
    ViralReactivation,
    magic_overall_grade,
)
from timeline.events.corrections import EventCorrected, EventRetracted
from timeline.events.envelope import EventBase
from timeline.events.laboratory import BloodCount, ChimerismTest, Transfusion, ViralLoad
from timeline.events.outcome import Death, FollowUp
from timeline.events.patient import DiseaseAssessment, Diagnosis, MrdTest, PatientRegistered, Relapse
from timeline.events.problems import Problem, problems_from
from timeline.events.therapy import (
    BlinatumomabDoseChanged,
    BlinatumomabStarted,
    BlinatumomabStopped,
    ChemotherapyStarted,
    ChemotherapyStopped,
    ConditioningStarted,
    GvhdProphylaxisStarted,
)
from timeline.events.transplant import DonorLymphocyteInfusion, Engraftment, GraftFailure, StemCellInfusion

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
