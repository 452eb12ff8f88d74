"""How much of a drug a MedicationRequest orders per day, from its ``dosageInstruction``.

FHIR R4 Dosage: ``doseAndRate[].doseQuantity`` is the amount per administration (a mass such
as "40 mg", or a count of units such as "1 {tbl}"), and ``timing`` says how often, either as
``repeat`` (frequency per period of periodUnit) or as a ``code`` (BID, TID, ...). Nothing is
guessed: a part that is absent or unreadable is None, and callers say what they assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Periods converted to days; months and years are left out (a monthly dose is not daily).
_DAYS_PER_UNIT = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0}

# HL7 v3 GTSAbbreviation timing codes (the FHIR timing-abbreviation value set), as
# administrations per day. Codes whose count per day is not fixed (e.g. "as needed") are absent.
_PER_DAY_BY_CODE = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "QOD": 0.5,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
}

# Units that count dose units (tablets, capsules) rather than measure a mass.
_COUNT_UNITS = frozenset({"1", "{tbl}", "{tablet}", "{capsule}", "tab", "tablet", "capsule", "cap"})


@dataclass(frozen=True, slots=True)
class Dosage:
    """One dosage instruction: the dose per administration and administrations per day."""

    dose: float | None
    dose_unit: str | None
    per_day: float | None

    @property
    def counts_units(self) -> bool:
        """Whether the dose is a number of tablets or capsules (or carries no unit)."""
        return self.dose_unit is None or self.dose_unit.lower() in _COUNT_UNITS

    @property
    def in_mg(self) -> bool:
        return self.dose_unit is not None and self.dose_unit.lower() == "mg"


def dosages(request: Mapping[str, Any]) -> tuple[Dosage, ...]:
    """The readable dosage instructions of a MedicationRequest, in order."""
    return tuple(
        _dosage(instruction)
        for instruction in _listed(request.get("dosageInstruction"))
        if isinstance(instruction, Mapping)
    )


def _dosage(instruction: Mapping[str, Any]) -> Dosage:
    dose, unit = None, None
    for dose_and_rate in _listed(instruction.get("doseAndRate")):
        quantity = dose_and_rate.get("doseQuantity") if isinstance(dose_and_rate, Mapping) else None
        # A bound ("<= 2 tablets") is not a dose.
        readable = isinstance(quantity, Mapping) and _is_number(quantity.get("value"))
        if readable and quantity.get("comparator") is None:
            dose = float(quantity["value"])
            unit = quantity.get("code") or quantity.get("unit")
            break
    return Dosage(dose=dose, dose_unit=str(unit) if unit else None, per_day=_per_day(instruction))


def _per_day(instruction: Mapping[str, Any]) -> float | None:
    timing = instruction.get("timing")
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, Mapping) and _is_number(repeat.get("period")):
        days = _DAYS_PER_UNIT.get(str(repeat.get("periodUnit")))
        frequency = repeat.get("frequencyMax") or repeat.get("frequency") or 1
        if days is not None and _is_number(frequency) and float(repeat["period"]) > 0:
            return float(frequency) / (float(repeat["period"]) * days)
    code = timing.get("code")
    if isinstance(code, Mapping):
        for coding in _listed(code.get("coding")):
            if not isinstance(coding, Mapping):
                continue
            per_day = _PER_DAY_BY_CODE.get(str(coding.get("code", "")).upper())
            if per_day is not None:
                return per_day
    return None


def _listed(value: object) -> list[Any]:
    """A FHIR array as sent, or nothing when the sender put something else there."""
    return value if isinstance(value, list) else []


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
