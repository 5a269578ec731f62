"""Therapy before transplant: chemotherapy, blinatumomab, conditioning and GVHD prophylaxis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from timeline.events.envelope import EventBase, LIST_MAX_ITEMS, Text, check_rules, measure, whole


class ChemotherapyStarted(EventBase):
    """A chemotherapy regimen starts, with its intent."""

    type: Literal["chemotherapy_started"] = "chemotherapy_started"
    regimen: Text = Field(description="the regimen, as the protocol names it (e.g. ALL-REZ BFM F1)")
    intent: Literal["induction", "consolidation", "salvage", "maintenance"] = Field(description="its intent")


class ChemotherapyStopped(EventBase):
    """A chemotherapy regimen stops."""

    type: Literal["chemotherapy_stopped"] = "chemotherapy_stopped"
    regimen: Text = Field(description="the regimen that stops")


class _BlinatumomabDose(EventBase):
    """A blinatumomab cycle at a dose, per m² of body surface or flat: exactly one of the two."""

    RULES = ("exactly one of dose_ug_per_m2_day or dose_ug_per_day",)

    cycle: int = whole(1, 20, "the cycle number (1, 2, …)")
    dose_ug_per_m2_day: float | None = measure(
        "µg/m²/day", 0, 60, "dose per m² of body surface (below 45 kg); give this or dose_ug_per_day", above=True)
    dose_ug_per_day: float | None = measure(
        "µg/day", 0, 120, "flat dose (45 kg and more); give this or dose_ug_per_m2_day", above=True)

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
    cycle: int = whole(1, 20, "the cycle that stops")
    reason: Literal["completed", "toxicity", "progression", "transplant", "other"] = Field(description="why it stops")


class ConditioningStarted(EventBase):
    """The conditioning regimen before stem-cell infusion starts."""

    type: Literal["conditioning_started"] = "conditioning_started"
    regimen: Text = Field(description="the conditioning regimen (e.g. TBI-etoposide)")
    intensity: Literal["myeloablative", "reduced_intensity", "non_myeloablative"] = Field(description="its intensity")
    tbi_gy: float | None = measure("Gy", 0, 20, "total body irradiation dose", other_units={"cGy": 0.01})
    serotherapy: Literal["atg", "alemtuzumab", "none"] | None = Field(None, description="serotherapy given with it")


class GvhdProphylaxisStarted(EventBase):
    """GVHD prophylaxis starts, with its agents."""

    type: Literal["gvhd_prophylaxis_started"] = "gvhd_prophylaxis_started"
    agents: list[
        Literal["ptcy", "cyclosporine", "tacrolimus", "methotrexate", "mmf", "sirolimus", "atg",
                "abatacept", "other"]
    ] = Field(min_length=1, max_length=LIST_MAX_ITEMS, description="the agents (ptcy: post-transplant cyclophosphamide)")


EVENTS = (ChemotherapyStarted, ChemotherapyStopped, BlinatumomabStarted, BlinatumomabDoseChanged,
          BlinatumomabStopped, ConditioningStarted, GvhdProphylaxisStarted)
