"""Words for codes in the report: 'haploidentical', 'B-ALL', 'Acute GVHD grade II–IV'."""

from __future__ import annotations

from typing import Any

LABELS = {
    "matched_sibling": "matched sibling", "matched_unrelated": "matched unrelated",
    "mismatched_unrelated": "mismatched unrelated", "haploidentical": "haploidentical",
    "cord_blood": "cord blood", "autologous": "autologous", "bone_marrow": "bone marrow",
    "peripheral_blood": "peripheral blood", "myeloablative": "myeloablative (MAC)",
    "reduced_intensity": "reduced intensity (RIC)", "non_myeloablative": "non-myeloablative (NMA)",
    "b_all": "B-ALL", "t_all": "T-ALL", "aml": "AML", "mpal": "MPAL", "cml": "CML", "mds": "MDS",
    "atg": "ATG", "alemtuzumab": "alemtuzumab", "none": "none", "ptcy": "PTCy", "mmf": "MMF",
    "cyclosporine": "cyclosporine", "tacrolimus": "tacrolimus", "methotrexate": "methotrexate",
    "sirolimus": "sirolimus", "abatacept": "abatacept", "female": "female", "male": "male",
    "combined": "combined", "cns": "CNS", "testicular": "testicular",
}

COMPLICATION_LABELS = {
    "engraftment_syndrome": "Engraftment syndrome",
    "cmv_reactivation": "CMV reactivation",
    "ebv_reactivation": "EBV reactivation",
    "infection": "Infection (any)",
    "clostridioides_difficile_enterocolitis": "C. difficile enterocolitis",
    "agvhd": "Acute GVHD (any grade)",
    "agvhd_2_4": "Acute GVHD grade II–IV",
    "agvhd_3_4": "Acute GVHD grade III–IV",
    "sr_agvhd": "Steroid-refractory acute GVHD",
    "cgvhd": "Chronic GVHD",
    "cgvhd_systemic": "Chronic GVHD needing systemic treatment",
    "graft_failure": "Graft failure",
    "toxicity": "Toxicity",
}


def complication_label(name: str) -> str:
    if name in COMPLICATION_LABELS:
        return COMPLICATION_LABELS[name]
    if name.endswith("_reactivation"):
        virus = name.removesuffix("_reactivation")
        return f"{virus.upper() if len(virus) <= 4 else virus} reactivation"
    return name.replace("_", " ").capitalize()


def label(value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, str):
        if "+" in value and value not in LABELS:
            return " + ".join(label(v) for v in value.split("+"))
        return LABELS.get(value, value.replace("_", " "))
    return str(value)
