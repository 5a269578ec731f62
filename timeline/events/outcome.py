"""Outcome: follow-up contacts and death."""

from __future__ import annotations

from typing import Literal

from timeline.events.envelope import EventBase


class FollowUp(EventBase):
    """A contact at which the patient was alive, with the disease status."""

    type: Literal["follow_up"] = "follow_up"
    disease_status: Literal["remission", "relapse", "not_assessed"]


class Death(EventBase):
    """The patient died, with the main cause."""

    type: Literal["death"] = "death"
    cause: Literal["relapse", "transplant_related", "infection", "gvhd", "toxicity", "other", "unknown"]


EVENTS = (FollowUp, Death)
