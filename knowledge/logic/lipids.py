"""The patient's current LDL cholesterol: as reported, or estimated from the lipid panel.

Most laboratories report LDL-C (measured, or calculated by Friedewald or Martin-Hopkins);
when the newest panel has total cholesterol, HDL-C and triglycerides but no LDL-C, it is
estimated with the Sampson/NIH equation 2 (knowledge/calculators/ldl.py) from those three
values of the same day. An older reported LDL-C does not override a newer panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_client.record import Measurement, PatientRecord
from knowledge.calculators.ldl import ldl_sampson
from knowledge.logic.common import threshold, value_set
from knowledge.rule import Knowledge


@dataclass(frozen=True)
class LdlReading:
    value: float
    """mg/dL"""
    measured: datetime | None
    triglycerides: float | None = None
    """mg/dL; set when the value was estimated from the panel rather than reported"""

    @property
    def text(self) -> str:
        """How the card states it, e.g. 'LDL-C 142 mg/dL (estimated ...)'."""
        if self.triglycerides is None:
            return f"LDL-C {self.value:.0f} mg/dL"
        return (
            f"LDL-C {self.value:.0f} mg/dL (none reported: estimated by the Sampson/NIH "
            f"equation from total cholesterol, HDL-C and triglycerides "
            f"{self.triglycerides:.0f} mg/dL of the same day)"
        )


@dataclass(frozen=True)
class LipidMolarMasses:
    """g/mol, to read results reported in mmol/L."""

    cholesterol: float
    triglycerides: float


def lipid_molar_masses(thresholds: Mapping[str, Any]) -> LipidMolarMasses:
    """The molar masses a lipid rule's artifact gives (and cites) for mmol/L results."""
    return LipidMolarMasses(
        cholesterol=threshold(thresholds, "cholesterol_molar_mass_g_per_mol"),
        triglycerides=threshold(thresholds, "triglyceride_molar_mass_g_per_mol"),
    )


def latest_ldl(
    record: PatientRecord,
    knowledge: Knowledge,
    *,
    as_of: datetime,
    max_age: timedelta,
    molar_masses: LipidMolarMasses,
) -> LdlReading | None:
    """The newest LDL-C within ``max_age``, reported or estimated; None if neither exists."""

    def latest(value_set_id: str, molar_mass: float) -> Measurement | None:
        return record.latest_value(
            value_set(knowledge, value_set_id),
            "mg/dL",
            as_of=as_of,
            max_age=max_age,
            molar_mass=molar_mass,
        )

    reported = latest("ldl-cholesterol", molar_masses.cholesterol)
    estimated = _estimate(
        latest("total-cholesterol", molar_masses.cholesterol),
        latest("hdl-cholesterol", molar_masses.cholesterol),
        latest("triglycerides", molar_masses.triglycerides),
    )
    if reported is not None and (
        estimated is None or _day(reported.effective) >= _day(estimated.measured)
    ):
        return LdlReading(reported.value, reported.effective)
    return estimated


def _estimate(
    total: Measurement | None, hdl: Measurement | None, triglycerides: Measurement | None
) -> LdlReading | None:
    if total is None or hdl is None or triglycerides is None:
        return None
    if len({_day(total.effective), _day(hdl.effective), _day(triglycerides.effective)}) != 1:
        return None  # the equation relates values of one sample, not of different days
    try:
        value = ldl_sampson(total.value, hdl.value, triglycerides.value)
    except ValueError:
        return None
    return LdlReading(value, total.effective, triglycerides=triglycerides.value)


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else ""
