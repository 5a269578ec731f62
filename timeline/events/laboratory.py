"""Laboratory: blood counts, transfusions, chimerism tests and viral loads."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from timeline.events.envelope import EventBase, Flag, NonNegative, Percent, check_rules

Virus = Literal["cmv", "ebv", "adenovirus", "bk", "hhv6", "other"]

_COUNTS = ("anc_e9_per_l", "platelets_e9_per_l", "wbc_e9_per_l", "hb_g_per_dl")


class BloodCount(EventBase):
    """A blood count on a sample drawn that day: at least one value."""

    type: Literal["blood_count"] = "blood_count"
    anc_e9_per_l: NonNegative | None = None
    platelets_e9_per_l: NonNegative | None = None
    wbc_e9_per_l: NonNegative | None = None
    hb_g_per_dl: NonNegative | None = None

    @model_validator(mode="after")
    def _at_least_one_value(self) -> BloodCount:
        if (self.anc_e9_per_l is None and self.platelets_e9_per_l is None
                and self.wbc_e9_per_l is None and self.hb_g_per_dl is None):
            check_rules(self, [(_COUNTS[0], None, "a blood count needs at least one of " + ", ".join(_COUNTS))])
        return self


class Transfusion(EventBase):
    """A blood product is transfused."""

    type: Literal["transfusion"] = "transfusion"
    product: Literal["platelets", "red_cells", "granulocytes"]


class ChimerismTest(EventBase):
    """A donor chimerism test in one compartment."""

    type: Literal["chimerism_test"] = "chimerism_test"
    donor_percent: Percent
    compartment: Literal["whole_blood", "bone_marrow", "t_cell", "myeloid", "b_cell"]
    method: Literal["str", "qpcr", "ngs", "fish"] | None = None


class ViralLoad(EventBase):
    """A quantitative viral load (WHO IU/mL), or below detection."""

    type: Literal["viral_load"] = "viral_load"
    virus: Virus
    specimen: Literal["plasma", "whole_blood", "urine", "other"]
    iu_per_ml: NonNegative | None = None
    below_detection: Flag | None = None

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
