"""The pure functions rule artifacts name, registered by name."""

from __future__ import annotations

from knowledge.logic import blood_pressure, ckd, diabetes, immunization, screening
from knowledge.logic.aki import aki_nhs_england
from knowledge.logic.allergy import drug_allergy
from knowledge.logic.atrial_fibrillation import af_anticoagulation
from knowledge.logic.beers import beers_potentially_inappropriate
from knowledge.logic.ddi import drug_pair_interaction
from knowledge.logic.metformin import metformin_renal
from knowledge.logic.news2 import news2_early_warning
from knowledge.logic.outbreak import outbreak_signal
from knowledge.logic.pregnancy import pregnancy_teratogen
from knowledge.logic.readmission import lace_readmission
from knowledge.logic.renal_dosing import renal_dosing_crcl
from knowledge.logic.severe_hypercholesterolemia import severe_hypercholesterolemia
from knowledge.logic.statin import statin_primary_prevention
from knowledge.logic.statin_dose import statin_dose_limit
from knowledge.rule import RuleLogic

LOGIC: dict[str, RuleLogic] = {
    "statin_primary_prevention": statin_primary_prevention,
    "severe_hypercholesterolemia": severe_hypercholesterolemia,
    "metformin_renal": metformin_renal,
    "drug_pair_interaction": drug_pair_interaction,
    "statin_dose_limit": statin_dose_limit,
    "diabetes_hba1c_monitoring": diabetes.diabetes_hba1c_monitoring,
    "blood_pressure_not_at_goal": blood_pressure.blood_pressure_not_at_goal,
    "ckd_not_on_problem_list": ckd.ckd_not_on_problem_list,
    "colorectal_cancer_screening": screening.colorectal_cancer_screening,
    "immunization_influenza": immunization.immunization_influenza,
    "immunization_pneumococcal": immunization.immunization_pneumococcal,
    "pregnancy_teratogen": pregnancy_teratogen,
    "af_anticoagulation": af_anticoagulation,
    "lace_readmission": lace_readmission,
    "outbreak_signal": outbreak_signal,
    "beers_potentially_inappropriate": beers_potentially_inappropriate,
    "renal_dosing_crcl": renal_dosing_crcl,
    "drug_allergy": drug_allergy,
    "news2_early_warning": news2_early_warning,
    "aki_nhs_england": aki_nhs_england,
}
