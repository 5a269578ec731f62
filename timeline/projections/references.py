"""The literature the rules rely on: one entry per source, cited by key from the rule modules and their
parameters, and listed with what the engine takes from it in `docs/rules.md`.

Summaries are in our own words; check the originals before locking a protocol.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    key: str
    citation: str
    url: str
    relied_on: str  # what the rules take from it


REFERENCES: dict[str, Reference] = {r.key: r for r in (
    Reference(
        "CIBMTR-FIM",
        "CIBMTR Forms Instruction Manual: HCT day numbering, initial ANC recovery, initial platelet recovery "
        "(Form 2100), chimerism studies, ALL response criteria.",
        "https://www.cibmtr.org/manuals/fim/1/en/",
        "Day 0 is the first infusion day and day N is the plain date difference (no +1); a graft infused over "
        "several days is one transplant. Neutrophil engraftment is the first of three consecutive values on "
        "different days at or above 0.5 ×10⁹/L, counted only after the post-transplant nadir; a patient whose ANC "
        "never falls below 0.5 is 'not applicable'. Platelet engraftment is the first of three consecutive values "
        "at or above 20 ×10⁹/L with no platelet transfusion in the 7 days before each (worked example: transfused "
        "on day 0, day 7 is eligible); a second milestone at 50. A platelet value below 20 or a platelet "
        "transfusion makes the lineage evaluable. Chimerism samples are dated at collection.",
    ),
    Reference(
        "SUREDA-2024",
        "Sureda A, et al. Harmonizing definitions for hematopoietic recovery, graft rejection, graft failure, poor "
        "graft function, and donor chimerism (EBMT, ASTCT, CIBMTR, APBMT). Bone Marrow Transplant 2024;59:832–837.",
        "https://www.nature.com/articles/s41409-024-02251-0",
        "The harmonised recovery thresholds (ANC ≥ 0.5, platelets ≥ 20 without transfusion for 7 days); primary "
        "graft failure as no neutrophil engraftment by day +30 for marrow and peripheral blood grafts and day +42 "
        "for cord blood; secondary graft failure after initial engraftment; full donor chimerism above 95 %.",
    ),
    Reference(
        "KHARFAN-DABAJA-2021",
        "Kharfan-Dabaja MA, et al. Standardizing definitions of hematopoietic recovery, graft rejection, graft "
        "failure, poor graft function, and donor chimerism (ASTCT). Transplant Cell Ther 2021;27:642–649.",
        "https://doi.org/10.1016/j.jtct.2021.04.007",
        "The ASTCT table that the 2024 harmonisation adopts: recovery thresholds and chimerism categories "
        "(full donor > 95 %, mixed 5–95 %).",
    ),
    Reference(
        "EBMT-HANDBOOK-2019",
        "Carreras E, et al. (eds). The EBMT Handbook, 7th ed., 2019, chapter 41: Graft failure.",
        "https://www.ncbi.nlm.nih.gov/books/NBK553969/",
        "Variants offered as parameters: ANC 'higher than' 0.5, primary graft failure by day +28.",
    ),
    Reference(
        "HARRIS-2016",
        "Harris AC, et al. International, multicenter standardization of acute GVHD clinical data collection "
        "(MAGIC). Biol Blood Marrow Transplant 2016;22:4–10.",
        "https://doi.org/10.1016/j.bbmt.2015.09.001",
        "Acute GVHD organ stages (skin, liver, lower GI 0–4; upper GI 0–1) and the overall grade by pattern, "
        "not by the highest stage: IV if skin, liver or lower GI is 4; III if liver or lower GI is 2–3; II if "
        "skin is 3 or liver, upper or lower GI is 1; I if skin is 1–2.",
    ),
    Reference(
        "SCHOEMANS-2018",
        "Schoemans HM, et al. EBMT–NIH–CIBMTR Task Force position statement on standardized terminology and "
        "guidance for GVHD assessment. Bone Marrow Transplant 2018;53:1401–1415.",
        "https://doi.org/10.1038/s41409-018-0204-7",
        "Steroid-refractory acute GVHD: progression after 3–5 days, or no improvement after 5–7 days, of "
        "systemic steroid at ≥ 2 mg/kg/day prednisone equivalent (trials of the REACH type use 3 and 7 days).",
    ),
    Reference(
        "JAGASIA-2015",
        "Jagasia MH, et al. NIH consensus development project on criteria for clinical trials in chronic GVHD: "
        "the 2014 Diagnosis and Staging Working Group report. Biol Blood Marrow Transplant 2015;21:389–401.",
        "https://doi.org/10.1016/j.bbmt.2014.12.001",
        "Chronic GVHD is a clinical diagnosis, independent of day 100, graded mild, moderate or severe; the event "
        "date of a time to chronic GVHD is the date of diagnosis.",
    ),
    Reference(
        "BUCHMANN-2022",
        "Buchmann S, et al. Remission, treatment failure, and relapse in pediatric ALL: an international "
        "consensus of the Ponte-di-Legno Consortium. Blood 2022;139:1785–1793.",
        "https://doi.org/10.1182/blood.2021012328",
        "Relapse can only follow a remission; MRD recurrence after negativity is not by itself a relapse.",
    ),
    Reference(
        "VAN-DONGEN-2015",
        "van Dongen JJM, et al. Minimal residual disease diagnostics in acute lymphoblastic leukemia: need for "
        "sensitive, fast, and standardized technologies. Blood 2015;125:3996–4009; with the EWALL/Gökbuget MRD "
        "response criteria.",
        "https://doi.org/10.1182/blood-2015-03-580027",
        "MRD-negative means no detectable MRD with an assay at least 10⁻⁴ (0.01 %) sensitive; a negative result "
        "from a less sensitive assay is not MRD-negative. Morphological remission below 5 % marrow blasts.",
    ),
    Reference(
        "BLINCYTO-LABEL",
        "BLINCYTO (blinatumomab) US Prescribing Information.",
        "https://dailymed.nlm.nih.gov/dailymed/search.cfm?labeltype=all&query=blinatumomab",
        "A cycle is 28 days of continuous infusion followed by a treatment-free interval; dosing per m² below "
        "45 kg, flat above. The engine counts cycles by their recorded numbers, never by a fixed length.",
    ),
    Reference(
        "LJUNGMAN-2017",
        "Ljungman P, et al. Definitions of cytomegalovirus infection and disease in transplant patients for use "
        "in clinical trials. Clin Infect Dis 2017;64:87–91; update Clin Infect Dis 2024.",
        "https://doi.org/10.1093/cid/ciw668",
        "No universal viral-load threshold defines a reactivation (1,000–10,000 IU/mL are common, in WHO "
        "international units); a new episode needs a period without detection (about 4 weeks).",
    ),
    Reference(
        "ECIL-6",
        "Styczynski J, et al. Management of Epstein-Barr virus infections and post-transplant lymphoproliferative "
        "disorders in patients after allogeneic HSCT: ECIL-6 guidelines. Haematologica 2016;101:803–811.",
        "https://doi.org/10.3324/haematol.2016.144428",
        "EBV DNAemia is monitored quantitatively; the threshold for action is set by each centre.",
    ),
    Reference(
        "HOLTAN-2015",
        "Holtan SG, et al. Composite end point of graft-versus-host disease-free, relapse-free survival after "
        "allogeneic hematopoietic cell transplantation. Blood 2015;125:1333–1338.",
        "https://doi.org/10.1182/blood-2014-10-609032",
        "GRFS: the first of grade III–IV acute GVHD, chronic GVHD needing systemic treatment (dated at its "
        "diagnosis), relapse or death.",
    ),
    Reference(
        "KANATE-2019",
        "Kanate AS, et al. Summary of scientific and statistical methods, study endpoints and definitions for "
        "observational and registry-based studies in hematopoietic cell transplantation. Clin Hematol Int "
        "2019;2:2–4.",
        "https://doi.org/10.2991/chi.d.191207.001",
        "Registry endpoint definitions: origin at the transplant, censoring at last contact, relapse and "
        "non-relapse mortality as competing risks, relapse first when relapse and death fall on one day.",
    ),
    Reference(
        "SCHEMPER-SMITH-1996",
        "Schemper M, Smith TL. A note on quantifying follow-up in studies of failure time. Control Clin Trials "
        "1996;17:343–346.",
        "https://doi.org/10.1016/0197-2456(96)00075-X",
        "Median follow-up by reverse Kaplan–Meier: patients alive are the events, deaths are censored.",
    ),
    Reference(
        "JH2132",
        "Tulsiyan A, et al. Outcomes of HSCT following blinatumomab in pediatric relapsed B-ALL: a single-center "
        "experience. J Hematol 2025;14(6):307–313.",
        "https://doi.org/10.14740/jh2132",
        "The first cohort the engine reproduces; its MRD-negativity threshold (< 0.01 %) is the default.",
    ),
)}


def cite(*keys: str) -> str:
    """`[KEY1; KEY2]`, checked against the registry (a typo fails at import)."""
    unknown = [k for k in keys if k not in REFERENCES]
    if unknown:
        raise KeyError(f"unknown reference(s): {', '.join(unknown)}")
    return "[" + "; ".join(keys) + "]"
