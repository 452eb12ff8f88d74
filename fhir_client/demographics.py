"""Sex, race and ethnicity as the Patient states them, for auditing a model's fairness.

Recorded beside each served prediction and in training cohorts, and never used as a model
feature. Race and ethnicity come from the US Core extensions (OMB categories,
https://hl7.org/fhir/us/core/StructureDefinition-us-core-race.html and -ethnicity.html): one
OMB category gives its name (by code, so that a site's own display text cannot split a group),
several give "Multiple races", none gives the extension's text or "unknown".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
UNKNOWN = "unknown"
OMB_RACE_CATEGORIES = {
    "1002-5": "American Indian or Alaska Native",
    "2028-9": "Asian",
    "2054-5": "Black or African American",
    "2076-8": "Native Hawaiian or Other Pacific Islander",
    "2106-3": "White",
}
OMB_ETHNICITY_CATEGORIES = {
    "2135-2": "Hispanic or Latino",
    "2186-5": "Not Hispanic or Latino",
}
"""The OMB categories of the CDC Race & Ethnicity code set that US Core binds each extension's
ombCategory to. A code outside its extension's list (Synthea, for one, puts 2135-2 in the race
extension, displayed "Other") is named by its display, never by the other list."""


@dataclass(frozen=True)
class Demographics:
    sex: str
    """The Patient's administrative gender (male, female, other, unknown)."""
    race: str
    ethnicity: str


def _omb_category(
    patient: Mapping[str, Any], url: str, names: Mapping[str, str], several: str
) -> str:
    for extension in patient.get("extension") or ():
        if not isinstance(extension, Mapping) or extension.get("url") != url:
            continue
        parts = [p for p in extension.get("extension") or () if isinstance(p, Mapping)]
        categories = sorted(
            {
                names.get(str(p["valueCoding"].get("code")))
                or str(p["valueCoding"].get("display") or p["valueCoding"].get("code"))
                for p in parts
                if p.get("url") == "ombCategory" and isinstance(p.get("valueCoding"), Mapping)
            }
        )
        if len(categories) == 1:
            return categories[0]
        if categories:
            return several
        text = next((p.get("valueString") for p in parts if p.get("url") == "text"), None)
        return str(text) if text else UNKNOWN
    return UNKNOWN


def demographics(patient: Mapping[str, Any] | None) -> Demographics:
    if not patient:
        return Demographics(UNKNOWN, UNKNOWN, UNKNOWN)
    return Demographics(
        sex=str(patient.get("gender") or UNKNOWN),
        race=_omb_category(patient, US_CORE_RACE, OMB_RACE_CATEGORIES, "Multiple races"),
        ethnicity=_omb_category(
            patient, US_CORE_ETHNICITY, OMB_ETHNICITY_CATEGORIES, "Multiple ethnicities"
        ),
    )
