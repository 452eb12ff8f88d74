"""CHA2DS2-VASc score for stroke risk in atrial fibrillation.

Source: Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Refining clinical risk
stratification for predicting stroke and thromboembolism in atrial fibrillation using a
novel risk factor-based approach: the Euro Heart Survey on Atrial Fibrillation. Chest.
2010;137(2):263-272. PMID 19762550.

    C  congestive heart failure / LV dysfunction          1
    H  hypertension                                       1
    A2 age >= 75 years                                    2
    D  diabetes mellitus                                  1
    S2 prior stroke, TIA or thromboembolism               2
    V  vascular disease (prior MI, PAD, aortic plaque)     1
    A  age 65-74 years                                    1
    Sc sex category (female)                              1

The maximum is 9. The 2023 ACC/AHA/ACCP/HRS atrial fibrillation guideline uses it to
estimate annual thromboembolic risk (thresholds live in the rule artifact, not here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Sex = Literal["female", "male"]


@dataclass(frozen=True)
class Cha2ds2VascInputs:
    age: int
    sex: Sex
    congestive_heart_failure: bool
    hypertension: bool
    diabetes: bool
    stroke_tia_or_thromboembolism: bool
    vascular_disease: bool


def cha2ds2_vasc_points(inputs: Cha2ds2VascInputs) -> dict[str, int]:
    """Points per component (only those that score), keyed by the component's letter(s)."""
    if inputs.age < 0:
        raise ValueError(f"age must not be negative, not {inputs.age}")
    if inputs.sex not in ("female", "male"):
        raise ValueError(f"sex must be 'female' or 'male', not {inputs.sex!r}")
    points = {
        "C": 1 if inputs.congestive_heart_failure else 0,
        "H": 1 if inputs.hypertension else 0,
        "A2": 2 if inputs.age >= 75 else 0,
        "D": 1 if inputs.diabetes else 0,
        "S2": 2 if inputs.stroke_tia_or_thromboembolism else 0,
        "V": 1 if inputs.vascular_disease else 0,
        "A": 1 if 65 <= inputs.age < 75 else 0,
        "Sc": 1 if inputs.sex == "female" else 0,
    }
    return {letter: value for letter, value in points.items() if value}


def cha2ds2_vasc(inputs: Cha2ds2VascInputs) -> int:
    """The CHA2DS2-VASc score, 0-9."""
    return sum(cha2ds2_vasc_points(inputs).values())
