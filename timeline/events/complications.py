"""Complications: viral reactivation, infection, engraftment syndrome, GVHD and toxicities.

The MAGIC acute GVHD overall grade is computed here, once, for the whole engine.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from timeline.events.envelope import EventBase, Flag, LIST_MAX_ITEMS, Text, check_rules, measure, whole
from timeline.events.laboratory import Virus

GvhdKind = Literal["acute", "chronic"]
Stage = Annotated[int, Field(ge=0, le=4)]
_KIND = "acute or chronic GVHD"


def magic_overall_grade(skin: int, liver: int, upper_gi: int, lower_gi: int) -> int:
    """Overall acute GVHD grade (0–4) from the MAGIC organ stages.

    Harris et al., Biol Blood Marrow Transplant 2016;22:4–10 (MAGIC). Evaluated top-down, it is
    NOT the maximum organ stage (skin 3 alone is grade II, lower GI 2 alone is grade III):
    IV if skin, liver or lower GI is 4; else III if liver or lower GI is 2–3; else II if skin is 3
    or liver, upper GI or lower GI is 1; else I if skin is 1–2; else 0.
    """
    if skin == 4 or liver == 4 or lower_gi == 4:
        return 4
    if liver in (2, 3) or lower_gi in (2, 3):
        return 3
    if skin == 3 or liver == 1 or upper_gi == 1 or lower_gi == 1:
        return 2
    if skin in (1, 2):
        return 1
    return 0


class ViralReactivation(EventBase):
    """A viral reactivation as diagnosed by the clinician."""

    type: Literal["viral_reactivation"] = "viral_reactivation"
    virus: Virus = Field(description="the virus")
    treated: Flag | None = Field(None, description="pre-emptive or curative treatment was started")


class Infection(EventBase):
    """A documented infection."""

    type: Literal["infection"] = "infection"
    category: Literal["bacterial", "viral", "fungal", "parasitic"] = Field(description="the kind of pathogen")
    organism: Text | None = Field(None, description="the organism, e.g. Clostridioides difficile")
    site: Literal["bloodstream", "gastrointestinal", "respiratory", "urinary", "skin", "cns", "other"] | None = Field(
        None, description="the site")


class EngraftmentSyndrome(EventBase):
    """Engraftment syndrome is diagnosed."""

    type: Literal["engraftment_syndrome"] = "engraftment_syndrome"


_ACUTE_FIELDS = ("grade", "skin_stage", "liver_stage", "upper_gi_stage", "lower_gi_stage")


class GvhdDiagnosed(EventBase):
    """GVHD is diagnosed: acute with MAGIC grade and/or organ stages, or chronic with NIH severity.

    For acute GVHD with stages the overall grade is derived (and stored); a given grade must agree.
    """

    RULES = (
        "acute: grade and/or MAGIC organ stages; with stages the grade is derived from them (a missing stage "
        "counts as 0) and a given grade must agree; stages that are all 0 are refused; no severity",
        "chronic: severity required; no grade or stages",
    )

    type: Literal["gvhd_diagnosed"] = "gvhd_diagnosed"
    kind: GvhdKind = Field(description=_KIND)
    grade: Annotated[int, Field(ge=1, le=4)] | None = Field(
        None, description="acute: MAGIC overall grade 1–4 (derived from the stages when they are given)")
    skin_stage: Stage | None = Field(None, description="acute: MAGIC skin stage 0–4")
    liver_stage: Stage | None = Field(None, description="acute: MAGIC liver stage 0–4")
    upper_gi_stage: Annotated[int, Field(ge=0, le=1)] | None = Field(None, description="acute: MAGIC upper GI stage 0–1")
    lower_gi_stage: Stage | None = Field(None, description="acute: MAGIC lower GI stage 0–4")
    severity: Literal["mild", "moderate", "severe"] | None = Field(None, description="chronic: NIH global severity")

    @model_validator(mode="after")
    def _grade_from_stages(self) -> GvhdDiagnosed:
        if self.kind == "chronic":
            broken = [(name, getattr(self, name), "only for acute GVHD (chronic GVHD takes severity)")
                      for name in _ACUTE_FIELDS if getattr(self, name) is not None]
            if self.severity is None:
                broken.append(("severity", None, "required for chronic GVHD (mild, moderate or severe)"))
            check_rules(self, broken)
            return self

        broken = []
        if self.severity is not None:
            broken.append(("severity", self.severity, "only for chronic GVHD"))
        stages = (self.skin_stage, self.liver_stage, self.upper_gi_stage, self.lower_gi_stage)
        if stages == (None, None, None, None):
            if self.grade is None:
                broken.append(("grade", None, "acute GVHD needs grade and/or MAGIC organ stages"))
            check_rules(self, broken)
            return self

        skin, liver, upper_gi, lower_gi = (s or 0 for s in stages)  # missing stages count as 0
        derived = magic_overall_grade(skin, liver, upper_gi, lower_gi)
        described = f"skin {skin}, liver {liver}, upper GI {upper_gi}, lower GI {lower_gi}"
        if derived == 0:
            broken.append(("grade", self.grade,
                           f"all MAGIC organ stages are 0 ({described}): no acute GVHD to diagnose"))
        elif self.grade is not None and self.grade != derived:
            broken.append(("grade", self.grade,
                           f"grade {self.grade} contradicts the MAGIC grade {derived} derived from the "
                           f"stages ({described})"))
        check_rules(self, broken)
        if self.grade is None:
            # Filled in during validation, before anyone sees the instance: stored JSON carries it.
            self.__dict__["grade"] = derived
            self.__pydantic_fields_set__.add("grade")
        return self


class GvhdTreatmentStarted(EventBase):
    """A line of GVHD treatment starts (steroid dose as prednisone equivalent)."""

    type: Literal["gvhd_treatment_started"] = "gvhd_treatment_started"
    kind: GvhdKind = Field(description=_KIND)
    line: int = whole(1, 20, "the line of treatment (1 = first)")
    agents: list[Text] = Field(min_length=1, max_length=LIST_MAX_ITEMS, description="the agents, e.g. methylprednisolone, ruxolitinib")
    steroid_mg_per_kg_day: float | None = measure(
        "mg/kg/day prednisone equivalent", 0, 30, "steroid dose at the start of this line")


class GvhdResponse(EventBase):
    """A GVHD response assessment."""

    type: Literal["gvhd_response"] = "gvhd_response"
    kind: GvhdKind = Field(description=_KIND)
    response: Literal["complete", "partial", "no_response", "progression"] = Field(description="the response")
    steroid_refractory: Flag | None = Field(None, description="judged steroid-refractory by the clinician")


class GvhdResolved(EventBase):
    """GVHD has resolved."""

    type: Literal["gvhd_resolved"] = "gvhd_resolved"
    kind: GvhdKind = Field(description=_KIND)


class Toxicity(EventBase):
    """A graded toxicity (CRS, ICANS, VOD/SOS, TMA, mucositis, …)."""

    type: Literal["toxicity"] = "toxicity"
    kind: Literal["crs", "icans", "vod_sos", "tma", "mucositis", "other"] = Field(
        description="crs: cytokine release syndrome, icans: neurotoxicity, vod_sos: veno-occlusive disease, "
        "tma: thrombotic microangiopathy")
    grade: int = whole(1, 5, "the grade (CTCAE or the consensus scale of the toxicity)")


EVENTS = (ViralReactivation, Infection, EngraftmentSyndrome, GvhdDiagnosed, GvhdTreatmentStarted,
          GvhdResponse, GvhdResolved, Toxicity)
