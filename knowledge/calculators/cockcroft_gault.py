"""Cockcroft-Gault estimate of creatinine clearance, the basis of drug-label renal dosing.

Source: Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine.
Nephron. 1976;16(1):31-41. PMID 1244564.

    CrCl (mL/min) = (140 - age) x weight (kg) / (72 x serum creatinine (mg/dL)),
                    x 0.85 for women

Actual body weight is used, as in the original derivation and in the dosing studies of
the direct oral anticoagulant labels. Unlike eGFR the result is not indexed to body
surface area. Creatinine may be given in mg/dL or umol/L, weight in kg, g or [lb_av].
"""

from __future__ import annotations

import math
from typing import Literal

from fhir_client.units import convert
from knowledge.calculators.ckd_epi import creatinine_mg_dl

Sex = Literal["female", "male"]

MIN_AGE_YEARS = 18.0
_FEMALE_FACTOR = 0.85


def creatinine_clearance(
    creatinine: float,
    creatinine_unit: str,
    *,
    age: float,
    weight: float,
    weight_unit: str,
    sex: Sex,
) -> float:
    """Estimated creatinine clearance in mL/min (adults)."""
    if sex not in ("female", "male"):
        raise ValueError(f"sex must be 'female' or 'male', not {sex!r}")
    if not math.isfinite(age) or not MIN_AGE_YEARS <= age < 140:
        raise ValueError(f"Cockcroft-Gault is defined for adults (18 to < 140 years), not {age}")
    scr = creatinine_mg_dl(creatinine, creatinine_unit)
    if not math.isfinite(scr) or scr <= 0:
        raise ValueError(f"serum creatinine must be positive, not {creatinine} {creatinine_unit}")
    kg = convert(weight, weight_unit, "kg")
    if not math.isfinite(kg) or kg <= 0:
        raise ValueError(f"body weight must be positive, not {weight} {weight_unit}")
    clearance = (140.0 - age) * kg / (72.0 * scr)
    return clearance * _FEMALE_FACTOR if sex == "female" else clearance
