"""Transplant: stem-cell infusion, graft failure, donor lymphocytes, engraftment as recorded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from timeline.events.envelope import HLA_MATCH_PATTERN, EventBase, measure, whole


GraftSource = Literal["bone_marrow", "peripheral_blood", "cord_blood"]
GRAFT_SOURCES: tuple[str, ...] = GraftSource.__args__  # type: ignore[attr-defined]


class StemCellInfusion(EventBase):
    """Stem cells are infused (day 0 of the first one).

    The graft source is `graft_source`; `source`, as on every event, says where the record came from.
    (Stored events of the first format named the graft source `source`: they are read as `graft_source`,
    and their ids are unchanged, see `catalogue.content_id_bytes`.)"""

    type: Literal["stem_cell_infusion"] = "stem_cell_infusion"
    donor: Literal["matched_sibling", "matched_unrelated", "mismatched_unrelated", "haploidentical",
                   "cord_blood", "autologous"] = Field(description="the donor")
    graft_source: GraftSource = Field(description="the graft source")
    hla_match: Annotated[str, StringConstraints(pattern=HLA_MATCH_PATTERN)] | None = Field(
        None, description="HLA match as matched/typed alleles, e.g. 10/10")
    cd34_e6_per_kg: float | None = measure(
        "×10⁶/kg", 0, 100, "CD34+ cells infused per kg of the recipient's weight", above=True,
        other_units={"cells/kg": 1e-6})
    transplant_number: int = whole(1, 10, "which transplant this infusion belongs to (a split graft shares it)", 1)


class GraftFailure(EventBase):
    """Graft failure, primary or secondary, as diagnosed by the clinician."""

    type: Literal["graft_failure"] = "graft_failure"
    kind: Literal["primary", "secondary"] = Field(description="primary (never engrafted) or secondary")


class DonorLymphocyteInfusion(EventBase):
    """Donor lymphocytes are infused."""

    type: Literal["donor_lymphocyte_infusion"] = "donor_lymphocyte_infusion"
    cd3_e6_per_kg: float | None = measure(
        "×10⁶/kg", 0, 1000, "CD3+ cells infused per kg", above=True, other_units={"cells/kg": 1e-6})


class Engraftment(EventBase):
    """Neutrophil or platelet engraftment as recorded by the clinician (centres without daily counts)."""

    type: Literal["engraftment"] = "engraftment"
    lineage: Literal["neutrophil", "platelet"] = Field(description="the lineage that engrafted")


EVENTS = (StemCellInfusion, GraftFailure, DonorLymphocyteInfusion, Engraftment)
