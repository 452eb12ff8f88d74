"""LACE index for early death or unplanned readmission within 30 days of discharge.

Source: van Walraven C, Dhalla IA, Bell C, et al. Derivation and validation of an index to
predict early death or unplanned readmission after discharge from hospital to the
community. CMAJ. 2010;182(6):551-557. doi:10.1503/cmaj.091117.

    L  length of stay, days: <1 -> 0, 1 -> 1, 2 -> 2, 3 -> 3, 4-6 -> 4, 7-13 -> 5, >=14 -> 7
    A  acute (emergent) admission -> 3
    C  Charlson comorbidity index score: 0-3 -> same, >=4 -> 5
    E  emergency department visits in the 6 months before admission: 0-3 -> same, >=4 -> 4

The index ranges from 0 to 19. The Charlson score here is the LACE paper's weighting of
comorbid conditions (``CHARLSON_WEIGHTS``, as tabulated with the index): 1 for previous
myocardial infarction, cerebrovascular disease, peripheral vascular disease, peptic ulcer
disease and diabetes without complications; 2 for congestive heart failure, chronic
pulmonary disease, mild liver disease, diabetes with end-organ damage, moderate or severe
renal disease and any tumour (including leukaemia and lymphoma); 3 for dementia and
connective tissue disease; 4 for moderate or severe liver disease and HIV/AIDS; 6 for
metastatic solid tumour. Within a hierarchy only the more severe form counts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

CHARLSON_WEIGHTS: dict[str, int] = {
    "myocardial-infarction": 1,
    "cerebrovascular-disease": 1,
    "peripheral-vascular-disease": 1,
    "peptic-ulcer-disease": 1,
    "diabetes-uncomplicated": 1,
    "congestive-heart-failure": 2,
    "chronic-pulmonary-disease": 2,
    "mild-liver-disease": 2,
    "diabetes-end-organ-damage": 2,
    "moderate-severe-renal-disease": 2,
    "any-tumour": 2,
    "dementia": 3,
    "connective-tissue-disease": 3,
    "moderate-severe-liver-disease": 4,
    "hiv-aids": 4,
    "metastatic-solid-tumour": 6,
}

# (milder form, more severe form): a patient with both counts only the severe one.
_HIERARCHY: tuple[tuple[str, str], ...] = (
    ("diabetes-uncomplicated", "diabetes-end-organ-damage"),
    ("mild-liver-disease", "moderate-severe-liver-disease"),
    ("any-tumour", "metastatic-solid-tumour"),
)


@dataclass(frozen=True)
class LaceResult:
    score: int
    length_of_stay_points: int
    acuity_points: int
    comorbidity_points: int
    ed_visit_points: int


def charlson_score(categories: Collection[str]) -> int:
    """The LACE paper's Charlson score for a set of comorbidity categories."""
    unknown = set(categories) - CHARLSON_WEIGHTS.keys()
    if unknown:
        raise ValueError(f"unknown Charlson categories: {sorted(unknown)}")
    present = set(categories)
    for milder, severe in _HIERARCHY:
        if severe in present:
            present.discard(milder)
    return sum(CHARLSON_WEIGHTS[c] for c in present)


def _length_of_stay_points(days: int) -> int:
    if days < 1:
        return 0
    if days <= 3:
        return days
    if days <= 6:
        return 4
    if days <= 13:
        return 5
    return 7


def lace_index(
    *, length_of_stay_days: int, acute_admission: bool, charlson: int, ed_visits_6_months: int
) -> LaceResult:
    """The LACE index from its four components (stay in whole days, counts >= 0)."""
    if min(length_of_stay_days, charlson, ed_visits_6_months) < 0:
        raise ValueError("length of stay, Charlson score and ED visits must not be negative")
    length = _length_of_stay_points(length_of_stay_days)
    acuity = 3 if acute_admission else 0
    comorbidity = charlson if charlson <= 3 else 5
    ed = min(ed_visits_6_months, 4)
    return LaceResult(length + acuity + comorbidity + ed, length, acuity, comorbidity, ed)
