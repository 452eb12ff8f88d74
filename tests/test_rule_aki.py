"""The NHS England AKI algorithm (knowledge/calculators/aki.py) at its decision boundaries, and
the rule aki-nhs-england-algorithm end to end on small FHIR resource dicts.

The algorithm document has no worked examples that could be read here, so the calculator is
tested at its stated boundaries: ratios 1.5, 2 and 3, C1 above 354 umol/L, the 48-hour rise
of more than 26 umol/L, the 0-7 / 8-365 day windows, RV1 against RV2, the median, and units.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from fhir_client.codes import LOINC
from fhir_client.record import PatientRecord
from hooks.context import PatientViewContext
from knowledge.calculators.aki import CreatinineResult, creatinine_umol_l, nhs_aki_stage
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import EvaluationContext
from tests.test_rules import AS_OF, PID, USER, patient, quantity
from tests.test_rules_safety import CAPTOPRIL, IBUPROFEN, METHOTREXATE, draft, evaluate

RULE = "aki-nhs-england-algorithm"
C1_TIME = AS_OF - timedelta(hours=6)


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


# --- the calculator ---------------------------------------------------------------------------


def result(value: float, days: float = 0, hours: float = 0) -> CreatinineResult:
    return CreatinineResult(value, C1_TIME - timedelta(days=days, hours=hours))


def stage(c1: float, *earlier: CreatinineResult) -> int:
    return nhs_aki_stage(result(c1), earlier, age=60).stage


@pytest.mark.parametrize(
    ("c1", "rv1", "expected"),
    [
        (119, 80, 0),  # 1.49
        (120, 80, 1),  # exactly 1.5
        (159, 80, 1),  # 1.99
        (160, 80, 2),  # exactly 2
        (239, 80, 2),  # 2.99
        (240, 80, 3),  # exactly 3
    ],
)
def test_stage_at_the_ratio_boundaries(c1, rv1, expected):
    assert stage(c1, result(rv1, days=3)) == expected


def test_c1_above_354_is_stage_3_only_with_a_ratio_of_at_least_1_5():
    high = nhs_aki_stage(result(355), [result(230, days=3)], age=60)  # ratio 1.54
    assert (high.stage, high.criterion) == (3, "creatinine_above_354")
    assert stage(354, result(230, days=3)) == 1  # not above 354
    assert stage(400, result(300, days=3)) == 0  # above 354, but the ratio is 1.33


def test_rise_within_48_hours_is_stage_1_when_the_ratio_is_below_1_5():
    rv1 = result(100, days=5)
    just_over = nhs_aki_stage(result(133), [rv1, result(106.5, hours=47)], age=60)  # D 26.5
    assert (just_over.stage, just_over.criterion, just_over.rise_48h) == (1, "rise_48h", 26.5)
    assert stage(132, rv1, result(106, hours=47)) == 0  # D exactly 26 is not more than 26
    assert stage(133, rv1, result(106, hours=48)) == 1  # 48 hours is within 48 hours
    assert stage(133, rv1, result(106, hours=49)) == 0  # older than 48 hours: no D


def test_the_higher_of_the_two_ratios_decides():
    median_lower = nhs_aki_stage(
        result(150), [result(100, days=3), *(result(v, days=30) for v in (60, 70, 200))], age=60
    )
    assert (median_lower.rv1, median_lower.rv2, median_lower.basis) == (100, 70, "RV2")
    assert median_lower.stage == 2  # 150 / 70 = 2.14; by RV1 it would be 1.5
    lowest_lower = nhs_aki_stage(result(150), [result(70, days=3), result(100, days=30)], age=60)
    assert (lowest_lower.basis, lowest_lower.stage) == ("RV1", 2)


def test_rv1_is_the_lowest_and_rv2_the_median_of_their_windows():
    earlier = [result(90, days=1), result(80, days=6), result(120, days=7, hours=23)]
    earlier += [result(v, days=d) for v, d in ((60, 8), (80, 100), (100, 200), (120, 365))]
    assessed = nhs_aki_stage(result(150), earlier, age=60)
    assert assessed.rv1 == 80
    assert assessed.rv2 == 90  # median of 60, 80, 100, 120
    assert nhs_aki_stage(result(150), [result(50, days=366)], age=60).has_baseline is False
    assert stage(150, result(50, days=366)) == 0  # no result within 365 days: no stage


def test_results_at_or_after_c1_are_not_a_baseline():
    later = CreatinineResult(50, C1_TIME + timedelta(hours=1))
    assert nhs_aki_stage(result(150), [later, result(50)], age=60).has_baseline is False


def test_units_mg_dl_and_umol_l():
    assert creatinine_umol_l(1.0, "mg/dL") == pytest.approx(88.4, abs=0.01)
    assert creatinine_umol_l(354, "µmol/L") == 354
    # 1.5 and 1.0 mg/dL are a ratio of exactly 1.5 after conversion (float noise aside).
    assert stage(creatinine_umol_l(1.5, "mg/dL"), result(creatinine_umol_l(1.0, "mg/dL"), 2)) == 1
    # 4.0 mg/dL is 353.6 umol/L: not above 354.
    assert stage(creatinine_umol_l(4.0, "mg/dL"), result(creatinine_umol_l(2.5, "mg/dL"), 2)) == 1


def test_children_have_the_adult_ratios_and_no_354_limit():
    # Ratio 1.6 and C1 above 354: stage 3 for an adult, stage 1 for a child without a ULRI.
    earlier = [result(225, days=2)]
    assert nhs_aki_stage(result(360), earlier, age=60).stage == 3
    child = nhs_aki_stage(result(360), earlier, age=12)
    assert (child.stage, child.criterion) == (1, "ratio")
    assert nhs_aki_stage(result(150), [result(50, days=2)], age=12).stage == 3  # ratio 3


@pytest.mark.parametrize(("c1", "expected"), [(105, 1), (106, 3)])
def test_children_reach_stage_3_above_three_times_the_reference_upper_limit(c1, expected):
    # ULRI 35 umol/L: the limit is 105; both C1 have a ratio of at least 1.5 over RV1 70.
    child = nhs_aki_stage(result(c1), [result(70, days=2)], age=8, upper_reference_limit=35)
    assert child.stage == expected
    if expected == 3:
        assert child.criterion == "creatinine_above_3x_ulri"


def test_an_impossible_age_is_refused():
    with pytest.raises(ValueError, match="age"):
        nhs_aki_stage(result(150), [result(50, days=2)], age=-1)


# --- the rule, end to end ---------------------------------------------------------------------


def when(days: float = 0, hours: float = 0) -> str:
    return (C1_TIME - timedelta(days=days, hours=hours)).isoformat()


def creat(obs_id: str, value: float, at: str, unit: str = "umol/L") -> dict:
    code = "14682-9" if unit == "umol/L" else "2160-0"
    return quantity(obs_id, code, value, unit, at)


def aki_patient(c1: float, baseline: float, *, age: int = 60, c1_at: str | None = None) -> list:
    return [
        patient("female", age),
        creat("old", baseline, when(days=40)),
        creat("base", baseline, when(days=3)),
        creat("c1", c1, c1_at or when()),
    ]


def test_patient_view_stage_1_warning_with_values(library):
    (advice,) = evaluate(library, RULE, aki_patient(130, 80), hook="patient-view")
    card = advice.card
    assert card.indicator == "warning"
    assert "stage 1" in card.summary and "130 µmol/L (1.47 mg/dL)" in card.summary
    assert "the ratio C1/RV is 1.62 (at least 1.5)" in card.detail
    assert "80 µmol/L (0.90 mg/dL), RV1, the lowest result in the 7 days before" in card.detail
    assert "not a diagnosis" in card.detail and card.source.label == "NHS England 2014"


def test_patient_view_stage_2_and_3_are_critical(library):
    (stage_2,) = evaluate(library, RULE, aki_patient(170, 80), hook="patient-view")
    assert stage_2.card.indicator == "critical" and "stage 2" in stage_2.card.summary
    (stage_3,) = evaluate(library, RULE, aki_patient(360, 200), hook="patient-view")
    assert stage_3.card.indicator == "critical" and "stage 3" in stage_3.card.summary
    assert "C1 is above 354 µmol/L with a ratio C1/RV of 1.80" in stage_3.card.detail


def test_mg_dl_results_are_staged_like_umol_l(library):
    resources = [
        patient("male", 60),
        creat("base", 1.0, when(days=20), unit="mg/dL"),
        creat("c1", 3.0, when(), unit="mg/dL"),
    ]
    (advice,) = evaluate(library, RULE, resources, hook="patient-view")
    assert "stage 3" in advice.card.summary and "RV2, the median" in advice.card.detail
    assert "the ratio C1/RV is 3.00 (at least 3)" in advice.card.detail


@pytest.mark.parametrize(
    "resources",
    [
        [patient("female", 60), creat("c1", 300, when())],
        [patient("female", 60), creat("old", 80, when(days=400)), creat("c1", 300, when())],
        aki_patient(105, 80),
        [patient("female", 60), creat("old", 80, when(days=40)), creat("c1", 300, when(days=8))],
        aki_patient(300, 80, c1_at=(AS_OF + timedelta(days=1)).isoformat()),
    ],
    ids=[
        "no-baseline",
        "baseline-older-than-365-days",
        "ratio-below-1.5",
        "latest-result-older-than-7-days",
        "only-future-result-is-raised",
    ],
)
def test_no_card(library, resources):
    assert evaluate(library, RULE, resources, hook="patient-view") == []


def test_a_newest_result_that_cannot_be_read_is_not_replaced_by_an_older_one(library):
    bound = creat("c1-bound", 300, when(hours=-1))
    bound["valueQuantity"]["comparator"] = ">"
    resources = [*aki_patient(300, 80), bound]
    assert evaluate(library, RULE, resources, hook="patient-view") == []


def test_an_observation_with_two_creatinine_codes_counts_once(library):
    twice = creat("twice", 60, when(days=30))
    twice["code"]["coding"].append({"system": LOINC, "code": "77140-2"})
    resources = [
        patient("female", 60),
        twice,
        creat("b", 100, when(days=40)),
        creat("c", 110, when(days=50)),
        creat("c1", 250, when()),
    ]
    (advice,) = evaluate(library, RULE, resources, hook="patient-view")
    assert "stage 2" in advice.card.summary  # median 100; counted twice it would be 80: stage 3


def test_a_child_is_staged_with_the_reference_range_of_the_result(library):
    c1 = creat("c1", 110, when())
    c1["referenceRange"] = [{"high": {"value": 35, "unit": "umol/L"}}]
    resources = [patient("male", 9), creat("base", 70, when(days=3)), c1]
    (advice,) = evaluate(library, RULE, resources, hook="patient-view")
    assert advice.card.indicator == "critical"
    assert "stage 3" in advice.card.summary
    assert "3 times the upper limit of the laboratory's reference interval" in advice.card.detail


@pytest.mark.parametrize(
    "malformed", [5, [{"high": "35 umol/L"}], [{"high": {"value": 35, "unit": "mg/dL"}}]]
)
def test_a_reference_range_that_cannot_be_used_leaves_the_ratio_alone(library, malformed):
    # Ratio 110/70 = 1.57: stage 1 without a usable upper limit (355 is not above 3 x anything).
    c1 = creat("c1", 110, when())
    c1["referenceRange"] = malformed
    resources = [patient("male", 9), creat("base", 70, when(days=3)), c1]
    (advice,) = evaluate(library, RULE, resources, hook="patient-view")
    assert "stage 1" in advice.card.summary


def test_order_sign_nsaid_during_aki(library):
    (advice,) = evaluate(library, RULE, aki_patient(170, 80), [draft("nsaid", IBUPROFEN)])
    card = advice.card
    assert card.indicator == "critical"
    assert "Reconsider ibuprofen" in card.summary and "stage 2" in card.summary
    assert "nephrotoxic potential" in card.detail
    (suggestion,) = card.suggestions
    (action,) = suggestion.actions
    assert (action.type, action.resourceId) == ("delete", "MedicationRequest/nsaid")
    assert advice.inputs["drug"] == "ibuprofen"


# Products of the VSAC "ACE Inhibitor or ARB or ARNI" expansion (2.16.840.1.113883.3.526.3.1139):
# a single-ingredient ACE inhibitor and an ARB combined with a thiazide.
LOSARTAN_HCTZ = "979464"  # hydrochlorothiazide 12.5 MG / losartan potassium 100 MG Oral Tablet


@pytest.mark.parametrize(
    ("rxnorm", "drug"), [(CAPTOPRIL, "captopril"), (LOSARTAN_HCTZ, "losartan")]
)
def test_order_sign_ace_inhibitor_or_arb_during_aki(library, rxnorm, drug):
    (advice,) = evaluate(library, RULE, aki_patient(170, 80), [draft("raas", rxnorm)])
    assert advice.card.indicator == "critical"
    assert f"Reconsider {drug}" in advice.card.summary
    assert "ACE inhibitor or angiotensin II receptor blocker" in advice.card.detail
    assert advice.inputs["drug"] == drug


def test_order_sign_stage_1_is_a_warning(library):
    (advice,) = evaluate(library, RULE, aki_patient(130, 80), [draft("nsaid", IBUPROFEN)])
    assert advice.card.indicator == "warning"


@pytest.mark.parametrize(
    ("resources", "drafts"),
    [
        (aki_patient(105, 80), [draft("nsaid", IBUPROFEN)]),
        (aki_patient(170, 80), [draft("mtx", METHOTREXATE)]),
        ([patient("female", 60), creat("c1", 300, when())], [draft("nsaid", IBUPROFEN)]),
    ],
    ids=["no-aki", "not-a-listed-drug", "no-baseline"],
)
def test_order_sign_no_card(library, resources, drafts):
    assert evaluate(library, RULE, resources, drafts) == []


def _patient_view_without_observations(library, resources: list) -> tuple[list, EvaluationContext]:
    ctx = EvaluationContext(
        hook="patient-view",
        context=PatientViewContext(userId=USER, patientId=PID),
        record=PatientRecord.from_resources(PID, resources, unavailable={"Observation"}),
        as_of=AS_OF,
    )
    return library.rule(RULE).evaluate(ctx), ctx


def test_no_card_and_check_reported_undone_when_observations_could_not_be_fetched(library):
    # Only the prefetched results are here: C1 might not be the newest, RV1 not the lowest.
    advice, ctx = _patient_view_without_observations(library, aki_patient(170, 80))
    assert advice == []
    assert [(u.rule_id, u.missing) for u in ctx.unchecked] == [(RULE, ("Observation",))]


def test_nothing_claims_no_aki_when_observations_could_not_be_fetched(library):
    # No card at all; the service's data-availability card names the missing Observations.
    advice, _ = _patient_view_without_observations(library, [patient("female", 60)])
    assert advice == []


def test_card_fields_match_the_templates(library):
    artifact = library.rule(RULE).artifact
    fields = set().union(*(template.fields() for template in artifact.cards.values()))
    (advice,) = evaluate(library, RULE, aki_patient(170, 80), [draft("nsaid", IBUPROFEN)])
    assert set(advice.inputs) == fields
