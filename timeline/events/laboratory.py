"""Laboratory: blood counts, transfusions, chimerism tests and viral loads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from timeline.events.envelope import EventBase, Flag, check_rules, measure

Virus = Literal["cmv", "ebv", "adenovirus", "bk", "hhv6", "other"]

_COUNTS = ("anc_e9_per_l", "platelets_e9_per_l", "wbc_e9_per_l", "hb_g_per_dl")


class BloodCount(EventBase):
    """A blood count on a sample drawn that day: at least one value."""

    RULES = ("at least one of anc_e9_per_l, platelets_e9_per_l, wbc_e9_per_l, hb_g_per_dl",)

    type: Literal["blood_count"] = "blood_count"
    anc_e9_per_l: float | None = measure("×10⁹/L", 0, 100, "absolute neutrophil count",
                                         other_units={"cells/µL": 1e-3})
    platelets_e9_per_l: float | None = measure("×10⁹/L", 0, 2000, "platelet count", other_units={"cells/µL": 1e-3})
    wbc_e9_per_l: float | None = measure("×10⁹/L", 0, 1000, "white cell count", other_units={"cells/µL": 1e-3})
    hb_g_per_dl: float | None = measure("g/dL", 0, 25, "haemoglobin", other_units={"g/L": 0.1})

    @model_validator(mode="after")
    def _at_least_one_value(self) -> BloodCount:
        if (self.anc_e9_per_l is None and self.platelets_e9_per_l is None
                and self.wbc_e9_per_l is None and self.hb_g_per_dl is None):
            check_rules(self, [(_COUNTS[0], None, "a blood count needs at least one of " + ", ".join(_COUNTS))])
        return self


class Transfusion(EventBase):
    """A blood product is transfused."""

    type: Literal["transfusion"] = "transfusion"
    product: Literal["platelets", "red_cells", "granulocytes"] = Field(description="the blood product")


class ChimerismTest(EventBase):
    """A donor chimerism test in one compartment."""

    type: Literal["chimerism_test"] = "chimerism_test"
    donor_percent: float = measure("% donor cells", 0, 100, "donor chimerism", default=...)
    compartment: Literal["whole_blood", "bone_marrow", "t_cell", "myeloid", "b_cell"] = Field(
        description="what was tested: unsorted blood or marrow, or a sorted lineage")
    method: Literal["str", "qpcr", "ngs", "fish"] | None = Field(None, description="the method")


class ViralLoad(EventBase):
    """A quantitative viral load (WHO IU/mL), or below detection."""

    RULES = ("iu_per_ml, or below_detection: true (not both)",)

    type: Literal["viral_load"] = "viral_load"
    virus: Virus = Field(description="the virus")
    specimen: Literal["plasma", "whole_blood", "urine", "other"] = Field(description="the sample")
    iu_per_ml: float | None = measure(
        "IU/mL", 0, 1e10, "the load in WHO international units (convert copies with your assay's own factor); "
        "give it or below_detection")
    below_detection: Flag | None = Field(None, description="true: no virus detected")

    @model_validator(mode="after")
    def _load_or_below_detection(self) -> ViralLoad:
        if self.below_detection:
            if self.iu_per_ml is not None:
                check_rules(self, [("iu_per_ml", self.iu_per_ml,
                                    "give either iu_per_ml or below_detection: true, not both")])
        elif self.iu_per_ml is None:
            check_rules(self, [("iu_per_ml", None, "required unless below_detection is true")])
        return self


EVENTS = (BloodCount, Transfusion, ChimerismTest, ViralLoad)
