"""Laboratory series: every MRD test and every viral load, one row each, with its post-transplant day.

An MRD test's `mrd_negative` follows the MRD rule (`mrd`, parameters there). A result below detection has no
level: `mrd_tests.result_percent` and `viral_loads.iu_per_ml` are then NULL and `below_detection` is true.
These are the series a timeline viewer draws (`timeline export cbioportal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import PATIENT_ID, Column, Model
from . import mrd


@dataclass(frozen=True)
class Parameters(mrd.Parameters):
    pass


#: the columns both series begin with: whose sample, when, which post-transplant day
_SAMPLE = (PATIENT_ID, Column("occurred_on", "DATE", "sample date", not_null=True),
           Column("day", "INTEGER", "post-transplant day of the sample"))
_BELOW = Column("below_detection", "BOOLEAN", "no MRD / no virus detected", not_null=True)

MRD_TESTS = Model(
    name="mrd_tests",
    grain="MRD test",
    key=("event_id",),
    columns=(
        *_SAMPLE,
        Column("method", "VARCHAR", "flow, pcr or ngs", not_null=True, values=("flow", "pcr", "ngs")),
        Column("specimen", "VARCHAR", "bone_marrow or peripheral_blood", not_null=True,
               values=("bone_marrow", "peripheral_blood")),
        Column("result_percent", "DOUBLE", "MRD level, % of nucleated cells (NULL below detection)"),
        _BELOW,
        Column("sensitivity_percent", "DOUBLE", "the assay's sensitivity, % of nucleated cells"),
        Column("mrd_negative", "BOOLEAN", "MRD-negative by the MRD rule", not_null=True),
        Column("event_id", "VARCHAR", "the test's event id", not_null=True),
    ),
    sql=f"""
SELECT patient_id, occurred_on, day, payload->>'method' AS method, payload->>'specimen' AS specimen,
       {mrd.result_percent()} AS result_percent, {mrd.below_detection()} AS below_detection,
       {mrd.sensitivity_percent()} AS sensitivity_percent, {mrd.negative()} AS mrd_negative, event_id
FROM ref('events') WHERE type = 'mrd_test'
""")

VIRAL_LOADS = Model(
    name="viral_loads",
    grain="viral load",
    key=("event_id",),
    columns=(
        *_SAMPLE,
        Column("virus", "VARCHAR", "cmv, ebv, adenovirus, bk, hhv6 or other", not_null=True),
        Column("specimen", "VARCHAR", "plasma, whole_blood, urine or other", not_null=True),
        Column("iu_per_ml", "DOUBLE", "the load, IU/mL (NULL below detection)"),
        _BELOW,
        Column("event_id", "VARCHAR", "the load's event id", not_null=True),
    ),
    sql="""
SELECT patient_id, occurred_on, day, payload->>'virus' AS virus, payload->>'specimen' AS specimen,
       TRY_CAST(payload->>'iu_per_ml' AS DOUBLE) AS iu_per_ml,
       coalesce(TRY_CAST(payload->>'below_detection' AS BOOLEAN), false) AS below_detection, event_id
FROM ref('events') WHERE type = 'viral_load'
""")

MODELS = (MRD_TESTS, VIRAL_LOADS)
