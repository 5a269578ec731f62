"""Therapy before transplant: chemotherapy, blinatumomab, conditioning and GVHD prophylaxis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from timeline.events.envelope import Count, EventBase, NonNegative, Positive, Text, check_rules


class ChemotherapyStarted(EventBase):
    """A chemotherapy regimen starts, with its intent."""

    type: Literal["chemotherapy_started"] = "chemotherapy_started"
    regimen: Text
    intent: Literal["induction", "consolidation", "salvage", "maintenance"]


class ChemotherapyStopped(EventBase):
    """A chemotherapy regimen stops."""

    type: Literal["chemotherapy_stopped"] = "chemotherapy_stopped"
    regimen: Text


class _BlinatumomabDose(EventBase):
    """A blinatumomab cycle at a dose, per m² of body surface or flat: exactly one of the two."""

    cycle: Count
    dose_ug_per_m2_day: Positive | None = None
    dose_ug_per_day: Positive | None = None

    @model_validator(mode="after")
    def _exactly_one_dose(self) -> _BlinatumomabDose:
        if (self.dose_ug_per_m2_day is None) == (self.dose_ug_per_day is None):
            given = self.dose_ug_per_m2_day is not None
            check_rules(self, [(
                "dose_ug_per_day" if given else "dose_ug_per_m2_day",
                self.dose_ug_per_day if given else None,
                "give exactly one of dose_ug_per_m2_day or dose_ug_per_day",
            )])
        return self


class BlinatumomabStarted(_BlinatumomabDose):
    """A blinatumomab cycle starts."""

    type: Literal["blinatumomab_started"] = "blinatumomab_started"


class BlinatumomabDoseChanged(_BlinatumomabDose):
    """The blinatumomab dose changes within a cycle (the new dose)."""

    type: Literal["blinatumomab_dose_changed"] = "blinatumomab_dose_changed"


class BlinatumomabStopped(EventBase):
    """A blinatumomab cycle ends, with the reason."""

    type: Literal["blinatumomab_stopped"] = "blinatumomab_stopped"
    cycle: Count
    reason: Literal["completed", "toxicity", "progression", "transplant", "other"]


class ConditioningStarted(EventBase):
    """The conditioning regimen before stem-cell infusion starts."""

    type: Literal["conditioning_started"] = "conditioning_started"
    regimen: Text
    intensity: Literal["myeloablative", "reduced_intensity", "non_myeloablative"]
    tbi_gy: NonNegative | None = None
    serotherapy: Literal["atg", "alemtuzumab", "none"] | None = None


class GvhdProphylaxisStarted(EventBase):
    """GVHD prophylaxis starts, with its agents."""

    type: Literal["gvhd_prophylaxis_started"] = "gvhd_prophylaxis_started"
    agents: list[
        Literal["ptcy", "cyclosporine", "tacrolimus", "methotrexate", "mmf", "sirolimus", "atg",
                "abatacept", "other"]
    ] = Field(min_length=1)


EVENTS = (ChemotherapyStarted, ChemotherapyStopped, BlinatumomabStarted, BlinatumomabDoseChanged,
          BlinatumomabStopped, ConditioningStarted, GvhdProphylaxisStarted)
