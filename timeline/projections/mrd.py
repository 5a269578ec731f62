"""The MRD-negativity rule for an `mrd_test` (one definition, used by bridging and disease_status).

Not a table: its `Parameters` are inherited by the Parameters of the tables that use the rule, so the
names are registered once (pipeline.all_parameters) and an override changes every use at once.

Rule (ENDPOINTS.md §Disease status; clinical-definitions §11, EWALL / Gökbuget MRD response criteria):
- default (as in the seed paper): negative if `result_percent` < 0.01 %, or `below_detection` with
  `sensitivity_percent` <= 0.01 % (an assay at least 10^-4 sensitive);
- strict: negative only if below detection with sensitivity <= 0.01 %.
A below-detection result with a worse (larger) or missing sensitivity is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timeline.projections.pipeline import check_choice, check_number, num

MRD_NEGATIVITY_RULES = ("default", "strict")


@dataclass(frozen=True)
class Parameters:
    mrd_negative_below_percent: float = field(
        default=0.01,
        metadata={
            "doc": "Rule 'default': a quantified MRD result below this percent is MRD-negative.",
            "source": "ENDPOINTS.md §Disease status (seed paper; COG <0.01%); clinical-definitions §11",
        },
    )
    mrd_sensitivity_at_most_percent: float = field(
        default=0.01,
        metadata={
            "doc": "A below-detection MRD result is negative only if the assay sensitivity is at most this percent.",
            "source": "EWALL/Gökbuget MRD response criteria (10^-4); clinical-definitions §11; ENDPOINTS.md §Disease status",
        },
    )
    mrd_negativity_rule: str = field(
        default="default",
        metadata={
            "doc": "'default': result < mrd_negative_below_percent or below detection with adequate sensitivity; "
            "'strict': only below detection with adequate sensitivity.",
            "source": "ENDPOINTS.md §Disease status; clinical-definitions §11, §19 (MRD negative)",
        },
    )

    def __post_init__(self) -> None:
        check_number("mrd_negative_below_percent", self.mrd_negative_below_percent, 0, 100)
        check_number("mrd_sensitivity_at_most_percent", self.mrd_sensitivity_at_most_percent, 0, 100)
        check_choice("mrd_negativity_rule", self.mrd_negativity_rule, MRD_NEGATIVITY_RULES)


def result_percent_sql(payload: str = "payload") -> str:
    """The quantified MRD level (DOUBLE, NULL when below detection)."""
    return f"TRY_CAST({payload}->>'result_percent' AS DOUBLE)"


def below_detection_sql(payload: str = "payload") -> str:
    """True when the test reports no detectable MRD (never NULL)."""
    return f"coalesce(TRY_CAST({payload}->>'below_detection' AS BOOLEAN), false)"


def sensitivity_percent_sql(payload: str = "payload") -> str:
    return f"TRY_CAST({payload}->>'sensitivity_percent' AS DOUBLE)"


def negative_sql(p: Parameters, payload: str = "payload") -> str:
    """SQL boolean (never NULL): is this `mrd_test` payload MRD-negative under rule `p`?"""
    adequate = (f"({below_detection_sql(payload)} AND "
                f"{sensitivity_percent_sql(payload)} <= {num(p.mrd_sensitivity_at_most_percent)})")
    if p.mrd_negativity_rule == "strict":
        return f"coalesce({adequate}, false)"
    quantified = f"({result_percent_sql(payload)} < {num(p.mrd_negative_below_percent)})"
    return f"(coalesce({adequate}, false) OR coalesce({quantified}, false))"
