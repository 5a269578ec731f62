"""Data queries: what a data manager resolves before a data lock.

A rule module declares its checks (`CHECKS`) beside its rules: wherever a rule sets an event aside, or the
data leave it a choice, or a value is implausible though inside its range, a check says so. Each `Check`
is one SELECT giving, per finding and in this order, the patient, the event (NULL when about the patient),
the date, the message and the suggestion; the `data_queries` table is all of them, with the check's name and severity
(`error`: a result is wrong or left out until it is resolved; `warning`: a result rests on a choice or an
implausible value). A message speaks of its own patient only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

from .model import PATIENT_ID, Column, Model, ModelError

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Check:
    """One check: its name, severity, what it finds and why it matters, and its SELECT."""

    name: str
    severity: str
    doc: str
    sql: str
    module: ModuleType | None = None


COLUMNS = (
    PATIENT_ID,
    Column("event_id", "VARCHAR", "the event the finding is about (NULL: about the patient)"),
    Column("occurred_on", "DATE", "the date the finding is about"),
    Column("check", "VARCHAR", "the check that found it (docs/rules.md)", not_null=True),
    Column("severity", "VARCHAR", "error: a result is wrong or left out until resolved; warning: a result rests on "
           "a choice or an implausible value", not_null=True, values=SEVERITIES),
    Column("message", "VARCHAR", "what is wrong, with the values concerned", not_null=True),
    Column("suggestion", "VARCHAR", "how to resolve it", not_null=True),
)


def model(checks: Iterable[Check]) -> Model:
    """The `data_queries` model: every check's findings."""
    checks = list(checks)
    names = [c.name for c in checks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelError(f"check(s) defined twice: {', '.join(twice)}")
    bad = [c.name for c in checks if c.severity not in SEVERITIES]
    if bad:
        raise ModelError(f"check(s) with a severity other than error or warning: {', '.join(bad)}")
    parts = [f"""
SELECT patient_id, CAST(event_id AS VARCHAR) AS event_id, CAST(occurred_on AS DATE) AS occurred_on,
       '{c.name}' AS "check", '{c.severity}' AS severity, CAST(message AS VARCHAR) AS message,
       CAST(suggestion AS VARCHAR) AS suggestion
FROM ({c.sql.strip()}) AS q(patient_id, event_id, occurred_on, message, suggestion)""" for c in checks]
    return Model(name="data_queries", grain="finding (a check's finding about a patient or one of their events)",
                 sql="\nUNION ALL".join(parts), columns=COLUMNS)
