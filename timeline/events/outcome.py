"""Outcome: follow-up contacts and death."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from timeline.events.envelope import EventBase


class FollowUp(EventBase):
    """A contact at which the patient was alive, with the disease status."""

    type: Literal["follow_up"] = "follow_up"
    disease_status: Literal["remission", "relapse", "not_assessed"] = Field(description="disease status at the contact")


class Death(EventBase):
    """The patient died, with the main cause."""

    type: Literal["death"] = "death"
    cause: Literal["relapse", "transplant_related", "infection", "gvhd", "toxicity", "other", "unknown"] = Field(
        description="the main cause")


EVENTS = (FollowUp, Death)
