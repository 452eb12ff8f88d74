"""Sex, race and ethnicity read from US Core Patient extensions (OMB categories)."""

from __future__ import annotations

from typing import Any

from fhir_client.demographics import US_CORE_ETHNICITY, US_CORE_RACE, Demographics, demographics

OMB = "urn:oid:2.16.840.1.113883.6.238"


def _extension(url: str, *categories: tuple[str, str], text: str | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "ombCategory", "valueCoding": {"system": OMB, "code": code, "display": display}}
        for code, display in categories
    ]
    if text:
        parts.append({"url": "text", "valueString": text})
    return {"url": url, "extension": parts}


def test_the_omb_categories_of_us_core() -> None:
    patient = {
        "resourceType": "Patient",
        "gender": "female",
        "extension": [
            _extension(US_CORE_RACE, ("2054-5", "Black or African American"), text="Black"),
            _extension(US_CORE_ETHNICITY, ("2135-2", "Hispanic or Latino")),
        ],
    }
    assert demographics(patient) == Demographics(
        "female", "Black or African American", "Hispanic or Latino"
    )


def test_several_races_one_group_text_when_no_category_and_unknown_when_unstated() -> None:
    several = _extension(US_CORE_RACE, ("2106-3", "White"), ("2028-9", "Asian"))
    assert demographics({"extension": [several]}).race == "Multiple races"
    only_text = _extension(US_CORE_RACE, text="Declined to answer")
    assert demographics({"extension": [only_text]}).race == "Declined to answer"
    assert demographics({"gender": "male"}) == Demographics("male", "unknown", "unknown")
    assert demographics(None) == Demographics("unknown", "unknown", "unknown")


def test_a_category_is_named_by_its_code_whatever_the_site_displays() -> None:
    """Two sites' display texts for one OMB code are one group in the fairness checks, and
    the training cohort names groups as the served predictions do."""
    lower = _extension(US_CORE_RACE, ("2106-3", "white"))
    none = {
        "url": US_CORE_RACE,
        "extension": [{"url": "ombCategory", "valueCoding": {"system": OMB, "code": "2106-3"}}],
    }
    assert demographics({"extension": [lower]}).race == "White"
    assert demographics({"extension": [none]}).race == "White"
    unlisted = _extension(US_CORE_ETHNICITY, ("9999-9", "Site category"))
    assert demographics({"extension": [unlisted]}).ethnicity == "Site category"
    # An ethnicity code in the race extension (as Synthea writes it) is no race category.
    misplaced = _extension(US_CORE_RACE, ("2135-2", "Other"))
    assert demographics({"extension": [misplaced]}).race == "Other"
