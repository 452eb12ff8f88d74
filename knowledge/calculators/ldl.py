"""LDL cholesterol estimated from a standard lipid panel: the Sampson/NIH equation 2.

Source: Sampson M, Ling C, Sun Q, et al. A New Equation for Calculation of Low-Density
Lipoprotein Cholesterol in Patients With Normolipidemia and/or Hypertriglyceridemia.
JAMA Cardiol. 2020;5(5):540-548. doi:10.1001/jamacardio.2020.0013

    LDL-C = TC/0.948 - HDL-C/0.971
            - (TG/8.56 + TG x non-HDL-C/2140 - TG^2/16100) - 9.44      (all in mg/dL)

The equation was derived and validated for triglycerides up to 800 mg/dL; above that the
authors advise a direct LDL-C measurement, so no estimate is given.
"""

from __future__ import annotations

MAX_TRIGLYCERIDES_MG_DL = 800.0


def ldl_sampson(
    total_cholesterol_mg_dl: float, hdl_mg_dl: float, triglycerides_mg_dl: float
) -> float:
    """LDL-C in mg/dL by the Sampson/NIH equation 2.

    Raises ValueError for triglycerides above 800 mg/dL (outside the validated range) and
    for values no laboratory reports (non-positive, or HDL-C above total cholesterol).
    """
    if min(total_cholesterol_mg_dl, hdl_mg_dl, triglycerides_mg_dl) <= 0:
        raise ValueError("lipid values must be positive")
    if hdl_mg_dl >= total_cholesterol_mg_dl:
        raise ValueError("HDL-C must be below total cholesterol")
    if triglycerides_mg_dl > MAX_TRIGLYCERIDES_MG_DL:
        raise ValueError(
            f"triglycerides {triglycerides_mg_dl:g} mg/dL are above the equation's validated "
            f"range (<= {MAX_TRIGLYCERIDES_MG_DL:g} mg/dL)"
        )
    non_hdl = total_cholesterol_mg_dl - hdl_mg_dl
    tg = triglycerides_mg_dl
    vldl = tg / 8.56 + tg * non_hdl / 2140 - tg * tg / 16100
    return total_cholesterol_mg_dl / 0.948 - hdl_mg_dl / 0.971 - vldl - 9.44
