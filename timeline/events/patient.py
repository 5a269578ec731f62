"""Patient and disease: registration, diagnosis, relapse, response assessments and MRD tests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from timeline.events.envelope import EventBase, Flag, IsoDate, Percent, Text, check_rules


class PatientRegistered(EventBase):
    """The patient enters the registry, with birth date and sex."""

    type: Literal["patient_registered"] = "patient_registered"
    birth_date: IsoDate
    sex: Literal["female", "male", "other", "unknown"]


class Diagnosis(EventBase):
    """The disease that leads to transplant is diagnosed."""

    type: Literal["diagnosis"] = "diagnosis"
    disease: Literal["b_all", "t_all", "aml", "mpal", "cml", "mds", "other"]
    risk_group: Text | None = None
    genetics: list[Text] | None = Field(None, min_length=1)


class Relapse(EventBase):
    """The disease relapses, at a site."""

    type: Literal["relapse"] = "relapse"
    site: Literal["bone_marrow", "cns", "testicular", "combined", "other"]
    marrow_blasts_percent: Percent | None = None


class DiseaseAssessment(EventBase):
    """A response assessment of the disease (e.g. marrow after a course of therapy)."""

    type: Literal["disease_assessment"] = "disease_assessment"
    response: Literal["complete_remission", "cri", "partial_response", "refractory", "progression"]
    marrow_blasts_percent: Percent | None = None


class MrdTest(EventBase):
    """A measurable residual disease test: a result, or below detection at a stated sensitivity."""

    type: Literal["mrd_test"] = "mrd_test"
    method: Literal["flow", "pcr", "ngs"]
    specimen: Literal["bone_marrow", "peripheral_blood"]
    result_percent: Percent | None = None
    below_detection: Flag | None = None
    sensitivity_percent: Percent | None = None

    @model_validator(mode="after")
    def _result_or_below_detection(self) -> MrdTest:
        broken = []
        if self.below_detection:
            if self.result_percent is not None:
                broken.append(("result_percent", self.result_percent,
                               "give either result_percent or below_detection: true, not both"))
            if self.sensitivity_percent is None:
                broken.append(("sensitivity_percent", None, "required when below_detection is true"))
        elif self.result_percent is None:
            broken.append(("result_percent", None,
                           "required unless below_detection is true (with sensitivity_percent)"))
        check_rules(self, broken)
        return self


EVENTS = (PatientRegistered, Diagnosis, Relapse, DiseaseAssessment, MrdTest)
