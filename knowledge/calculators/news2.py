"""National Early Warning Score 2 (NEWS2) from a set of vital signs.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising
the assessment of acute-illness severity in the NHS. Updated report of a working party.
London: RCP, 2017. Chart 1 (the NEWS2 scoring system) and Chart 2 (thresholds and triggers).

SpO2 scale 2 is for patients with a prescribed target of 88-92% (e.g. hypercapnic
respiratory failure), as documented by a clinician; scale 1 otherwise. On scale 2, a
saturation of 93% or more scores 0 on air and rises with oxygen (Chart 1).

A set with parameters missing can still be scored (``partial_news2``): every parameter
scores 0 or more, so the points of the recorded ones are a lower bound of the full score,
and the risk band of that lower bound is a lower bound of the risk. An unknown air-or-oxygen
status counts as air for the same reason (oxygen only ever adds points).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

ClinicalRisk = Literal["low", "low-medium", "medium", "high"]

PARAMETERS: tuple[str, ...] = (
    "respiration_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
)
"""The seven parameters of Chart 1, in the chart's order."""


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
class RecordedVitals:
    """A set of vital signs in which any parameter may be missing (None); units as VitalSigns."""

    respiration_rate: float | None = None
    spo2: float | None = None
    on_oxygen: bool | None = None
    systolic_bp: float | None = None
    pulse: float | None = None
    alert: bool | None = None
    temperature: float | None = None
    spo2_scale_2: bool = False


@dataclass(frozen=True)
class News2Result:
    score: int
    points: dict[str, int]
    """Points of each recorded parameter (missing parameters are absent)."""
    clinical_risk: ClinicalRisk
    missing: tuple[str, ...] = ()
    """Parameters not recorded: when any is, ``score`` and ``clinical_risk`` are lower bounds."""


def _band(value: float, bands: tuple[tuple[float, int], ...], top: int) -> int:
    """Points for ``value``: the first band whose upper limit (inclusive) holds it, else ``top``."""
    for upper, points in bands:
        if value <= upper:
            return points
    return top


def as_charted(value: float, places: int = 0) -> float:
    """``value`` rounded half up to the precision Chart 1 is written in (whole numbers, and
    one decimal for temperature), as it would be written on the chart: 20.5 breaths/min
    scores as 21, 38.05 degrees as 38.1. Python's round() would go half to even."""
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP))


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


def _clinical_risk(score: int, points: dict[str, int]) -> ClinicalRisk:
    """Chart 2: aggregate 7+ high, 5-6 medium, a 3 in any single parameter low-medium."""
    if score >= 7:
        return "high"
    if score >= 5:
        return "medium"
    if any(p == 3 for p in points.values()):
        return "low-medium"
    return "low"


def partial_news2(vitals: RecordedVitals) -> News2Result:
    """NEWS2 of the recorded parameters; with any missing, score and risk are lower bounds."""
    numbers = (
        vitals.respiration_rate,
        vitals.spo2,
        vitals.systolic_bp,
        vitals.pulse,
        vitals.temperature,
    )
    if not all(n is None or (math.isfinite(n) and n >= 0) for n in numbers):
        raise ValueError("vital signs must be finite, non-negative numbers")
    on_oxygen = bool(vitals.on_oxygen)  # unknown counts as air: a lower bound (see above)

    def spo2(value: float) -> int:
        return _spo2_scale_2(value, on_oxygen) if vitals.spo2_scale_2 else _spo2_scale_1(value)

    scored = {
        "respiration_rate": _scored(vitals.respiration_rate, _respiration),
        "spo2": _scored(vitals.spo2, spo2),
        "air_or_oxygen": None if vitals.on_oxygen is None else (2 if on_oxygen else 0),
        "systolic_bp": _scored(vitals.systolic_bp, _systolic),
        "pulse": _scored(vitals.pulse, _pulse),
        "consciousness": None if vitals.alert is None else (0 if vitals.alert else 3),
        "temperature": _scored(vitals.temperature, _temperature, places=1),
    }
    points = {name: p for name, p in scored.items() if p is not None}
    missing = tuple(name for name in PARAMETERS if scored[name] is None)
    score = sum(points.values())
    return News2Result(score, points, _clinical_risk(score, points), missing)


def _scored(value: float | None, band: Callable[[float], int], places: int = 0) -> int | None:
    return None if value is None else band(as_charted(value, places))


def news2(vitals: VitalSigns) -> News2Result:
    """NEWS2 aggregate score, points per parameter and the clinical risk band (Chart 2)."""
    result = partial_news2(RecordedVitals(**asdict(vitals)))
    if result.missing:
        raise ValueError(f"a full NEWS2 needs every parameter; missing {list(result.missing)}")
    return result
