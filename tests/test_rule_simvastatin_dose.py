"""simvastatin-dose-limit: the simvastatin label's daily limits (section 2.3) with verapamil,
diltiazem, dronedarone (10 mg) and amiodarone, amlodipine (20 mg), and the dosage reading
behind them (fhir_client/dosage.py, knowledge/logic/statin_dose.py).

Products are RxNorm clinical drugs of the library's published expansions; each test's dose
is worked out in its comment from the product strength, dose and frequency.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_client.dosage import Dosage, dosages
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.logic.statin_dose import strength_mg
from tests.test_rules import medication, patient
from tests.test_rules_safety import draft, evaluate

RULE = "simvastatin-dose-limit"
SIMVASTATIN_10 = "314231"  # simvastatin 10 MG Oral Tablet
SIMVASTATIN_20 = "312961"  # simvastatin 20 MG Oral Tablet
SIMVASTATIN_40 = "198211"  # simvastatin 40 MG Oral Tablet
EZETIMIBE_SIMVASTATIN_10_40 = "476350"  # ezetimibe 10 MG / simvastatin 40 MG Oral Tablet
DILTIAZEM_120_ER = "830872"  # 12 HR diltiazem hydrochloride 120 MG Extended Release Oral Capsule
AMLODIPINE_5 = "197361"  # amlodipine 5 MG Oral Tablet
AMIODARONE_200 = "833528"  # amiodarone hydrochloride 200 MG Oral Tablet


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


def dosed(
    request_id: str, rxnorm: str, *, dose: float | None, unit: str = "{tbl}", per_day: int = 1
) -> dict[str, Any]:
    order = draft(request_id, rxnorm)
    instruction: dict[str, Any] = {
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
    }
    if dose is not None:
        instruction["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": unit}}]
    order["dosageInstruction"] = [instruction]
    return order


def test_simvastatin_40_with_diltiazem_is_above_the_10_mg_limit(library):
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    # 1 tablet of 40 mg once a day = 40 mg > 10 mg.
    (advice,) = evaluate(library, RULE, resources, [dosed("sim", SIMVASTATIN_40, dose=1)])
    card = advice.card
    assert card.indicator == "warning"
    assert card.summary == (
        "simvastatin 40 mg daily exceeds the 10 mg limit with diltiazem (FDA label)"
    )
    assert "an active medication" in card.detail
    (suggestion,) = card.suggestions
    assert suggestion.actions[0].resourceId == "MedicationRequest/sim"


def test_simvastatin_10_with_diltiazem_is_within_the_limit(library):
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    assert evaluate(library, RULE, resources, [dosed("sim", SIMVASTATIN_10, dose=1)]) == []


def test_tablets_times_frequency_make_the_daily_dose(library):
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    # 10 mg tablets, 1 tablet twice a day = 20 mg > 10 mg.
    order = dosed("sim", SIMVASTATIN_10, dose=1, per_day=2)
    (advice,) = evaluate(library, RULE, resources, [order])
    assert "simvastatin 20 mg daily" in advice.card.summary


def test_a_dose_in_mg_is_used_as_stated(library):
    resources = [patient(), medication("aml", AMLODIPINE_5)]
    # 20 mg tablets, dose stated as 40 mg once a day = 40 mg > 20 mg (amlodipine).
    order = dosed("sim", SIMVASTATIN_20, dose=40, unit="mg")
    (advice,) = evaluate(library, RULE, resources, [order])
    assert advice.card.summary == (
        "simvastatin 40 mg daily exceeds the 20 mg limit with amlodipine (FDA label)"
    )


def test_simvastatin_20_with_amlodipine_is_within_the_limit(library):
    resources = [patient(), medication("aml", AMLODIPINE_5)]
    assert evaluate(library, RULE, resources, [dosed("sim", SIMVASTATIN_20, dose=1)]) == []


def test_an_order_without_dosage_is_at_least_one_tablet_a_day(library):
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    (advice,) = evaluate(library, RULE, resources, [draft("sim", SIMVASTATIN_20)])
    assert "simvastatin at least 20 mg daily" in advice.card.summary


def test_the_simvastatin_part_of_a_combination_product_counts(library):
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    order = dosed("sim", EZETIMIBE_SIMVASTATIN_10_40, dose=1)
    (advice,) = evaluate(library, RULE, resources, [order])
    assert "simvastatin 40 mg daily" in advice.card.summary  # not ezetimibe's 10 mg


def test_a_draft_amiodarone_order_with_active_simvastatin_above_20_mg(library):
    resources = [patient(), medication("sim", SIMVASTATIN_40)]
    (advice,) = evaluate(library, RULE, resources, [draft("amio", AMIODARONE_200)])
    assert "exceeds the 20 mg limit with amiodarone" in advice.card.summary
    (suggestion,) = advice.card.suggestions
    assert suggestion.label == "Remove the draft amiodarone order"
    assert suggestion.actions[0].resourceId == "MedicationRequest/amio"


def test_ranolazine_is_matched_by_its_name_in_the_product_name(library):
    ranolazine = medication("ran", "990000002")  # no RxCUI for ranolazine in the library
    ranolazine["medicationCodeableConcept"]["coding"][0]["display"] = (
        "12 HR ranolazine 500 MG Extended Release Oral Tablet"
    )
    (advice,) = evaluate(library, RULE, [patient(), ranolazine], [draft("sim", SIMVASTATIN_40)])
    assert "exceeds the 20 mg limit with ranolazine" in advice.card.summary


def test_no_card_without_a_listed_drug_or_with_an_unreadable_strength(library):
    assert evaluate(library, RULE, [patient()], [dosed("sim", SIMVASTATIN_40, dose=1)]) == []
    # The ingredient code alone states no strength: the dose cannot be known, no card.
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    assert evaluate(library, RULE, resources, [draft("sim", "36567")]) == []


# --- reading the order ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["simvastatin 40 MG Oral Tablet"], 40.0),
        (["ezetimibe 10 MG / simvastatin 80 MG Oral Tablet"], 80.0),
        (["niacin 500 MG / simvastatin 20 MG Extended Release Oral Tablet"], 20.0),
        (["simvastatin 4 MG/ML Oral Suspension"], None),  # a concentration, not a unit's mass
        (["atorvastatin 40 MG Oral Tablet"], None),
    ],
)
def test_strength_from_the_product_name(names, expected):
    assert strength_mg(names, "simvastatin") == expected


@pytest.mark.parametrize(
    ("timing", "per_day"),
    [
        ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, 2.0),
        ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, 3.0),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, 1 / 7),
        ({"code": {"coding": [{"code": "BID"}]}}, 2.0),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}}, None),
        ({}, None),
    ],
)
def test_administrations_per_day_from_the_timing(timing, per_day):
    (dosage,) = dosages({"dosageInstruction": [{"timing": timing}]})
    assert dosage.per_day == (pytest.approx(per_day) if per_day is not None else None)


def test_a_dose_with_a_comparator_is_not_a_dose():
    quantity = {"value": 2, "comparator": "<=", "unit": "{tbl}"}
    (dosage,) = dosages({"dosageInstruction": [{"doseAndRate": [{"doseQuantity": quantity}]}]})
    assert dosage == Dosage(dose=None, dose_unit=None, per_day=None)


@pytest.mark.parametrize(
    "malformed",
    [7, {"timing": "daily"}, [{"doseAndRate": 3}], [{"timing": {"code": {"coding": ["BID"]}}}]],
)
def test_a_malformed_dosage_is_read_as_unstated(library, malformed):
    # Whatever an EHR puts there, the order counts as one tablet once a day: "at least".
    order = draft("sim", SIMVASTATIN_20)
    order["dosageInstruction"] = malformed
    resources = [patient(), medication("dil", DILTIAZEM_120_ER)]
    (advice,) = evaluate(library, RULE, resources, [order])
    assert "simvastatin at least 20 mg daily" in advice.card.summary
