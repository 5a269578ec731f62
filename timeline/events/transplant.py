"""Transplant: stem-cell infusion, graft failure, donor lymphocytes, engraftment as recorded."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import StringConstraints

from timeline.events.envelope import HLA_MATCH_PATTERN, Count, EventBase, Positive


class StemCellInfusion(EventBase):
    """Stem cells are infused (day 0 of the first one). Here `source` is the graft source, not provenance."""

    type: Literal["stem_cell_infusion"] = "stem_cell_infusion"
    donor: Literal["matched_sibling", "matched_unrelated", "mismatched_unrelated", "haploidentical",
                   "cord_blood", "autologous"]
    # The contract names the graft source `source`; it takes the envelope field's place.
    source: Literal["bone_marrow", "peripheral_blood", "cord_blood"]  # type: ignore[assignment]
    hla_match: Annotated[str, StringConstraints(pattern=HLA_MATCH_PATTERN)] | None = None
    cd34_e6_per_kg: Positive | None = None
    transplant_number: Count = 1


class GraftFailure(EventBase):
    """Graft failure, primary or secondary, as diagnosed by the clinician."""

    type: Literal["graft_failure"] = "graft_failure"
    kind: Literal["primary", "secondary"]


class DonorLymphocyteInfusion(EventBase):
    """Donor lymphocytes are infused."""

    type: Literal["donor_lymphocyte_infusion"] = "donor_lymphocyte_infusion"
    cd3_e6_per_kg: Positive | None = None


class Engraftment(EventBase):
    """Neutrophil or platelet engraftment as recorded by the clinician (centres without daily counts)."""

    type: Literal["engraftment"] = "engraftment"
    lineage: Literal["neutrophil", "platelet"]


EVENTS = (StemCellInfusion, GraftFailure, DonorLymphocyteInfusion, Engraftment)
