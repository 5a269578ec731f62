"""timeline: an event-sourced patient timeline engine for stem-cell transplant outcomes research.

    from timeline import Timeline, KaplanMeier, AalenJohansen, BloodCount

The public names are imported when first used, so `import timeline` (and every command's start-up) stays
cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "Timeline": "timeline.app",
    "VisibleEvent": "timeline.app",
    "KaplanMeier": "timeline.queries.kaplan_meier",
    "AalenJohansen": "timeline.queries.cumulative_incidence",
    "follow_up_summary": "timeline.queries.follow_up",
    "reverse_km_median_follow_up": "timeline.queries.follow_up",
    "ProjectionView": "timeline.queries.views",
    "RejectedError": "timeline.events.problems",
    "Problem": "timeline.events.problems",
    "ParameterError": "timeline.projections.parameters",
    "Event": "timeline.events",
    "EVENT_TYPES": "timeline.events",
    "parse_event": "timeline.events",
    "json_schema": "timeline.events",
}
_EVENT_MODELS = (
    "PatientRegistered", "Diagnosis", "Relapse", "DiseaseAssessment", "MrdTest", "ChemotherapyStarted",
    "ChemotherapyStopped", "BlinatumomabStarted", "BlinatumomabDoseChanged", "BlinatumomabStopped",
    "ConditioningStarted", "GvhdProphylaxisStarted", "StemCellInfusion", "GraftFailure", "DonorLymphocyteInfusion",
    "Engraftment", "BloodCount", "Transfusion", "ChimerismTest", "ViralLoad", "ViralReactivation", "Infection",
    "EngraftmentSyndrome", "GvhdDiagnosed", "GvhdTreatmentStarted", "GvhdResponse", "GvhdResolved", "Toxicity",
    "FollowUp", "Death", "EventCorrected", "EventRetracted",
)
_PUBLIC |= {name: "timeline.events" for name in _EVENT_MODELS}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from .app import Timeline, VisibleEvent  # noqa: F401
    from .queries.cumulative_incidence import AalenJohansen  # noqa: F401
    from .queries.kaplan_meier import KaplanMeier  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'timeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
