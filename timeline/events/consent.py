"""Consent: a patient withdraws consent to the use of their data.

From the moment a `consent_withdrawn` is recorded, the patient is left out of every projection, and so of
every estimate, report and export made from them (the loader's visibility rule, `timeline.projections.
loader`); read as known at a moment before it, the patient is still there, so a past data lock reproduces.
The events stay in the log (nothing is ever deleted). Making them unreadable for good (crypto-shredding a
per-patient key) needs encryption at rest, which has not landed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from timeline.events.envelope import EventBase


class ConsentWithdrawn(EventBase):
    """The patient (or their guardian) withdrew consent to the use of their data."""

    type: Literal["consent_withdrawn"] = "consent_withdrawn"
    scope: Literal["all_use", "research"] = Field(
        "all_use", description="what the withdrawal covers: all use of the data, or research use (the "
                               "registry's analyses); either way the patient leaves every projection")


EVENTS = (ConsentWithdrawn,)
