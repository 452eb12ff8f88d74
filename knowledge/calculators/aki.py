"""NHS England algorithm for detecting acute kidney injury (AKI) from serum creatinine changes.

Source: NHS England Patient Safety Alert NHS/PSA/D/2014/010, "Standardising the early
identification of Acute Kidney Injury" (9 June 2014), and its "Algorithm for detecting Acute
Kidney Injury (AKI) based on serum creatinine changes with time"
(https://www.england.nhs.uk/wp-content/uploads/2014/06/psa-aki-alg.pdf); described in Selby NM,
Hill R, Fluck RJ. Standardizing the early identification of acute kidney injury: the NHS England
national patient safety alert. Nephron. 2015;131:113-117.

For the current creatinine C1 (umol/L):

    RV1 = the lowest result 0-7 days before C1
    RV2 = the median of the results 8-365 days before C1
    RV ratio = C1 / RV1 or C1 / RV2; when both exist, the higher of the two
    RV ratio >= 1.5 -> AKI: stage 3 if RV ratio >= 3 or C1 > 354 umol/L,
                            stage 2 if RV ratio >= 2, else stage 1
    RV ratio < 1.5  -> D = C1 - the lowest result within the 48 hours before C1;
                       D > 26 umol/L -> AKI stage 1, else no AKI
    no result in the 365 days before C1 -> no stage (the algorithm then only compares C1
                                           with the laboratory's reference interval)

The PDF itself could not be read here; the steps and numbers were checked against independent
implementations that cite it: a Stata implementation by R. Aylward (first author of the UK
Renal Registry study of laboratory AKI alerts, J Nephrol. 2024, doi:10.1007/s40620-024-02030-6),
an R package citing Selby 2015 and a Python one citing the PDF. All use RV1, RV2 and the
ratios 1.5 / 2 / 3; the Stata and Python ones take the higher ratio when both RVs exist. The
R and Python ones test C1 > 354 umol/L (4 mg/dL) for stage 3, the Stata one C1 - RV; the R
one tests the rise over the lowest 48-hour result, the Stata one C1 - RV, against 26 umol/L.
Days are whole days elapsed since the earlier result, so "0-7" and "8-365" leave no gap;
"within 48 hours" includes 48 hours.

Under 18 the same reference values, ratios and 48-hour rise apply; the adult criterion C1 >
354 umol/L is replaced by C1 > 3 x the upper limit of the laboratory's age- and sex-specific
reference interval (ULRI). The ULRI is taken from the result itself (FHIR
``referenceRange.high``, as the laboratory reported it); without one, a child reaches stage 3
only by the ratio. Children without a baseline are compared with the reference interval by
the algorithm, which is not done here (no card, as for adults without a baseline).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from fhir_client.units import convert
from knowledge.calculators.ckd_epi import CREATININE_MOLAR_MASS_G_PER_MOL

Stage = Literal[0, 1, 2, 3]
Criterion = Literal["ratio", "creatinine_above_354", "creatinine_above_3x_ulri", "rise_48h"]

ADULT_AGE_YEARS = 18
PAEDIATRIC_STAGE_3_ULRI_MULTIPLE = 3.0
AKI_RATIO = 1.5
STAGE_2_RATIO = 2.0
STAGE_3_RATIO = 3.0
STAGE_3_CREATININE_UMOL_L = 354.0
RISE_48H_UMOL_L = 26.0
RV1_MAX_DAYS = 7
RV2_MAX_DAYS = 365
RISE_WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class CreatinineResult:
    value: float
    """umol/L"""
    when: datetime


@dataclass(frozen=True)
class AkiResult:
    """The algorithm's result for C1, with the reference values it was decided on."""

    stage: Stage
    criterion: Criterion | None
    """What decided the stage: the RV ratio, C1 above 354 umol/L (adults) or above 3 x the
    upper limit of the reference interval (under 18), or the 48-hour rise."""
    c1: CreatinineResult
    rv1: float | None
    rv2: float | None
    ratio: float | None
    """C1 / RV, with RV the reference value that gives the higher ratio."""
    basis: Literal["RV1", "RV2"] | None
    rise_48h: float | None
    """D: C1 minus the lowest result within 48 hours before it (None without such a result)."""

    @property
    def has_baseline(self) -> bool:
        return self.ratio is not None

    @property
    def reference_value(self) -> float | None:
        return self.rv1 if self.basis == "RV1" else self.rv2


def creatinine_umol_l(value: float, unit: str) -> float:
    """Serum creatinine in umol/L from ``unit`` (umol/L, mg/dL or another mass/amount unit)."""
    return convert(value, unit, "umol/L", CREATININE_MOLAR_MASS_G_PER_MOL)


def nhs_aki_stage(
    c1: CreatinineResult,
    earlier: Sequence[CreatinineResult],
    *,
    age: float,
    upper_reference_limit: float | None = None,
) -> AkiResult:
    """Stage C1 against the results before it (results at or after C1 are ignored).

    ``upper_reference_limit`` (umol/L) is C1's laboratory reference interval upper limit; it is
    used only under 18 (the paediatric stage 3 criterion).
    """
    if not math.isfinite(age) or age < 0:
        raise ValueError(f"age must be a non-negative number of years, not {age}")
    if not math.isfinite(c1.value) or c1.value <= 0:
        raise ValueError(f"creatinine must be a positive number, not {c1.value} umol/L")
    before = [r for r in earlier if r.when < c1.when]
    rv1_values = [r.value for r in before if _days_before(c1, r) <= RV1_MAX_DAYS]
    rv2_values = [r.value for r in before if RV1_MAX_DAYS < _days_before(c1, r) <= RV2_MAX_DAYS]
    rv1 = min(rv1_values) if rv1_values else None
    rv2 = statistics.median(rv2_values) if rv2_values else None
    ratios = {name: c1.value / rv for name, rv in (("RV1", rv1), ("RV2", rv2)) if rv}
    basis = max(ratios, key=ratios.__getitem__) if ratios else None
    ratio = ratios[basis] if basis else None
    recent = [r.value for r in before if c1.when - r.when <= RISE_WINDOW]
    rise = c1.value - min(recent) if recent else None
    if age >= ADULT_AGE_YEARS:
        stage_3_above: tuple[float, Criterion] | None = (
            STAGE_3_CREATININE_UMOL_L,
            "creatinine_above_354",
        )
    elif upper_reference_limit is not None and upper_reference_limit > 0:
        stage_3_above = (
            PAEDIATRIC_STAGE_3_ULRI_MULTIPLE * upper_reference_limit,
            "creatinine_above_3x_ulri",
        )
    else:
        stage_3_above = None
    stage, criterion = _stage(c1.value, ratio, rise, stage_3_above)
    return AkiResult(stage, criterion, c1, rv1, rv2, ratio, basis, rise)


def _days_before(c1: CreatinineResult, result: CreatinineResult) -> int:
    return (c1.when - result.when) // timedelta(days=1)


def _stage(
    c1: float,
    ratio: float | None,
    rise: float | None,
    stage_3_above: tuple[float, Criterion] | None,
) -> tuple[Stage, Criterion | None]:
    if ratio is None:
        return 0, None
    if _at_least(ratio, AKI_RATIO):
        if _at_least(ratio, STAGE_3_RATIO):
            return 3, "ratio"
        if stage_3_above is not None and c1 > stage_3_above[0]:
            return 3, stage_3_above[1]
        return (2 if _at_least(ratio, STAGE_2_RATIO) else 1), "ratio"
    if rise is not None and rise > RISE_48H_UMOL_L:
        return 1, "rise_48h"
    return 0, None


def _at_least(ratio: float, bound: float) -> bool:
    # Converting mg/dL to umol/L leaves float noise: 1.5 mg/dL over 1.0 mg/dL is exactly 1.5.
    return ratio >= bound or math.isclose(ratio, bound, rel_tol=1e-9)
