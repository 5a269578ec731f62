"""Patient and disease: registration, diagnosis, relapse, response assessments and MRD tests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from timeline.events.envelope import EventBase, Flag, IsoDate, LIST_MAX_ITEMS, Text, check_rules, measure


class PatientRegistered(EventBase):
    """The patient enters the registry, with birth date and sex."""

    type: Literal["patient_registered"] = "patient_registered"
    birth_date: IsoDate = Field(description="date of birth, YYYY-MM-DD")
    sex: Literal["female", "male", "other", "unknown"] = Field(description="sex")


class Diagnosis(EventBase):
    """The disease that leads to transplant is diagnosed."""

    type: Literal["diagnosis"] = "diagnosis"
    disease: Literal["b_all", "t_all", "aml", "mpal", "cml", "mds", "other"] = Field(
        description="the disease (b_all: B-cell acute lymphoblastic leukaemia)")
    risk_group: Text | None = Field(None, description="risk group, as the protocol names it")
    genetics: list[Text] | None = Field(None, min_length=1, max_length=LIST_MAX_ITEMS, description="genetic findings, e.g. ETV6::RUNX1")


class Relapse(EventBase):
    """The disease relapses, at a site."""

    type: Literal["relapse"] = "relapse"
    site: Literal["bone_marrow", "cns", "testicular", "combined", "other"] = Field(description="site of the relapse")
    marrow_blasts_percent: float | None = measure("% of marrow cells", 0, 100, "marrow blasts")


class DiseaseAssessment(EventBase):
    """A response assessment of the disease (e.g. marrow after a course of therapy)."""

    type: Literal["disease_assessment"] = "disease_assessment"
    response: Literal["complete_remission", "cri", "partial_response", "refractory", "progression"] = Field(
        description="the response (cri: complete remission with incomplete count recovery)")
    marrow_blasts_percent: float | None = measure("% of marrow cells", 0, 100, "marrow blasts")


class MrdTest(EventBase):
    """A measurable residual disease test: a result, or below detection at a stated sensitivity."""

    RULES = ("result_percent, or below_detection: true with sensitivity_percent (not both)",)

    type: Literal["mrd_test"] = "mrd_test"
    method: Literal["flow", "pcr", "ngs"] = Field(description="flow cytometry, PCR or next-generation sequencing")
    specimen: Literal["bone_marrow", "peripheral_blood"] = Field(description="the sample")
    result_percent: float | None = measure(
        "% of nucleated cells", 0, 100, "the MRD level (0.01 % = 10⁻⁴); give it or below_detection")
    below_detection: Flag | None = Field(None, description="true: no MRD detected (then give sensitivity_percent)")
    sensitivity_percent: float | None = measure(
        "% of nucleated cells", 0, 100, "the assay's sensitivity for this sample (0.01 % = 10⁻⁴)", above=True)

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
