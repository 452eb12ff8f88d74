"""National Early Warning Score 2 (NEWS2) from a set of vital signs.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising
the assessment of acute-illness severity in the NHS. Updated report of a working party.
London: RCP, 2017. Chart 1 (the NEWS2 scoring system) and Chart 2 (thresholds and triggers).

SpO2 scale 2 is for patients with a prescribed target of 88-92% (e.g. hypercapnic
respiratory failure), as documented by a clinician; scale 1 otherwise. On scale 2, a
saturation of 93% or more scores 0 on air and rises with oxygen (Chart 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ClinicalRisk = Literal["low", "low-medium", "medium", "high"]


@dataclass(frozen=True)
class VitalSigns:
    respiration_rate: float
    """breaths per minute"""
    spo2: float
    """oxygen saturation, %"""
    on_oxygen: bool
    systolic_bp: float
    """mm Hg"""
    pulse: float
    """beats per minute"""
    alert: bool
    """False for new confusion or a response only to voice or pain, or none (the CVPU of ACVPU)"""
    temperature: float
    """degrees Celsius"""
    spo2_scale_2: bool = False


@dataclass(frozen=True)
class News2Result:
    score: int
    points: dict[str, int]
    clinical_risk: ClinicalRisk


def _band(value: float, bands: tuple[tuple[float, int], ...], top: int) -> int:
    """Points for ``value``: the first band whose upper limit (inclusive) holds it, else ``top``."""
    for upper, points in bands:
        if value <= upper:
            return points
    return top


def _respiration(rate: float) -> int:
    return _band(rate, ((8, 3), (11, 1), (20, 0), (24, 2)), 3)


def _spo2_scale_1(spo2: float) -> int:
    return _band(spo2, ((91, 3), (93, 2), (95, 1)), 0)


def _spo2_scale_2(spo2: float, on_oxygen: bool) -> int:
    if spo2 <= 87:
        return _band(spo2, ((83, 3), (85, 2)), 1)
    if spo2 <= 92 or not on_oxygen:
        return 0
    return _band(spo2, ((94, 1), (96, 2)), 3)


def _systolic(pressure: float) -> int:
    return _band(pressure, ((90, 3), (100, 2), (110, 1), (219, 0)), 3)


def _pulse(rate: float) -> int:
    return _band(rate, ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2)), 3)


def _temperature(celsius: float) -> int:
    return _band(celsius, ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)), 2)


def news2(vitals: VitalSigns) -> News2Result:
    """NEWS2 aggregate score, points per parameter and the clinical risk band (Chart 2)."""
    numbers = (
        vitals.respiration_rate,
        vitals.spo2,
        vitals.systolic_bp,
        vitals.pulse,
        vitals.temperature,
    )
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        raise ValueError("vital signs must be finite, non-negative numbers")
    # Chart 1 bands are whole numbers (temperature one decimal); values are rounded to the
    # precision the chart is written in before banding, so 20.4 breaths/min scores as 20.
    points = {
        "respiration_rate": _respiration(round(vitals.respiration_rate)),
        "spo2": (
            _spo2_scale_2(round(vitals.spo2), vitals.on_oxygen)
            if vitals.spo2_scale_2
            else _spo2_scale_1(round(vitals.spo2))
        ),
        "air_or_oxygen": 2 if vitals.on_oxygen else 0,
        "systolic_bp": _systolic(round(vitals.systolic_bp)),
        "pulse": _pulse(round(vitals.pulse)),
        "consciousness": 0 if vitals.alert else 3,
        "temperature": _temperature(round(vitals.temperature, 1)),
    }
    score = sum(points.values())
    if score >= 7:
        risk: ClinicalRisk = "high"
    elif score >= 5:
        risk = "medium"
    elif any(p == 3 for p in points.values()):
        risk = "low-medium"
    else:
        risk = "low"
    return News2Result(score, points, risk)
