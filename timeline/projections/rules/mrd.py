"""MRD negativity of an `mrd_test`: one definition, used by `bridging`, `disease_status` and the table
`mrd_tests` (one row per test, with its negativity by this rule).

Its `Parameters` are inherited by the Parameters of the tables that use the rule, so the names are
registered once and an override changes every use at once.

- default (as in the seed paper): negative if `result_percent` is below 0.01 %, or `below_detection` with
  an assay sensitivity of 0.01 % or better (`sensitivity_percent` ≤ 0.01: at least 10⁻⁴);
- strict: negative only if below detection with that sensitivity.
A below-detection result with a worse (larger) or missing sensitivity is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..model import DAY, EVENT_ID, PATIENT_ID, Column, Model
from ..parameters import check_choice, check_number, parameter
from ..references import cite

MRD_NEGATIVITY_RULES = ("default", "strict")


@dataclass(frozen=True)
class Parameters:
    mrd_negative_below_percent: float = parameter(
        0.01, "Rule 'default': a quantified MRD result below this is MRD-negative.", "% of nucleated cells",
        cite("JH2132", "VAN-DONGEN-2015") + " (COG < 0.01 %)")
    mrd_sensitivity_at_most_percent: float = parameter(
        0.01, "A below-detection MRD result is negative only if the assay sensitivity is at most this.",
        "% of nucleated cells", cite("VAN-DONGEN-2015") + " (10⁻⁴)")
    mrd_negativity_rule: str = parameter(
        "default", "'default': result below mrd_negative_below_percent, or below detection with adequate "
        "sensitivity; 'strict': only below detection with adequate sensitivity.", "",
        cite("JH2132", "VAN-DONGEN-2015"))

    def __post_init__(self) -> None:
        check_number("mrd_negative_below_percent", self.mrd_negative_below_percent, 0, 100)
        check_number("mrd_sensitivity_at_most_percent", self.mrd_sensitivity_at_most_percent, 0, 100)
        check_choice("mrd_negativity_rule", self.mrd_negativity_rule, MRD_NEGATIVITY_RULES)


def result_percent(payload: str = "payload") -> str:
    """SQL: the quantified MRD level (DOUBLE, NULL when below detection)."""
    return f"TRY_CAST({payload}->>'result_percent' AS DOUBLE)"


def below_detection(payload: str = "payload") -> str:
    """SQL: true when the test reports no detectable MRD (never NULL)."""
    return f"coalesce(TRY_CAST({payload}->>'below_detection' AS BOOLEAN), false)"


def sensitivity_percent(payload: str = "payload") -> str:
    return f"TRY_CAST({payload}->>'sensitivity_percent' AS DOUBLE)"


def negative(payload: str = "payload") -> str:
    """SQL boolean (never NULL): is this `mrd_test` payload MRD-negative under the parameters in force?"""
    adequate = f"coalesce({below_detection(payload)} AND {sensitivity_percent(payload)} <= $mrd_sensitivity_at_most_percent, false)"
    quantified = f"coalesce({result_percent(payload)} < $mrd_negative_below_percent, false)"
    return f"({adequate} OR ($mrd_negativity_rule <> 'strict' AND {quantified}))"


MRD_TESTS = Model(
    name="mrd_tests",
    grain="MRD test",
    key=("event_id",),
    columns=(
        PATIENT_ID,
        Column("occurred_on", "DATE", "sample date", not_null=True),
        DAY,
        Column("method", "VARCHAR", "flow, pcr or ngs", values=("flow", "pcr", "ngs")),
        Column("specimen", "VARCHAR", "bone_marrow or peripheral_blood", values=("bone_marrow", "peripheral_blood")),
        Column("result_percent", "DOUBLE", "the quantified MRD level, % (NULL when below detection)"),
        Column("below_detection", "BOOLEAN", "no detectable MRD", not_null=True),
        Column("sensitivity_percent", "DOUBLE", "the assay's sensitivity, %"),
        Column("negative", "BOOLEAN", "MRD-negative by the MRD rule", not_null=True),
        EVENT_ID,
    ),
    sql=f"""
SELECT patient_id, occurred_on, day, payload->>'method' AS method, payload->>'specimen' AS specimen,
       {result_percent()} AS result_percent, {below_detection()} AS below_detection,
       {sensitivity_percent()} AS sensitivity_percent, {negative()} AS negative, event_id
FROM ref('events') WHERE type = 'mrd_test'
""",
)

MODELS = (MRD_TESTS,)

CHECKS = (
    Check("mrd_negative_at_insufficient_sensitivity", "warning",
          "An MRD test below detection with an assay less sensitive than `mrd_sensitivity_at_most_percent` (or "
          "without a sensitivity): it is not counted as MRD-negative.",
          """SELECT patient_id, event_id, occurred_on,
                    'MRD below detection on ' || occurred_on || ' at a sensitivity of '
                        || coalesce(CAST(sensitivity_percent AS VARCHAR) || ' %', 'unknown')
                        || ': not MRD-negative (needs ' || $mrd_sensitivity_at_most_percent || ' % or better)',
                    'check the sensitivity the laboratory reported'
             FROM ref('mrd_tests')   -- each test's values as the rule reads them
             WHERE below_detection AND NOT coalesce(sensitivity_percent <= $mrd_sensitivity_at_most_percent, false)"""),
)
