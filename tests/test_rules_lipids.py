"""LDL-C that labs do not report, and LDL-C at the severe level.

Rules: statin-primary-prevention (LDL-C estimated or not needed),
statin-severe-hypercholesterolemia (ACC/AHA 2018, LDL-C >= 190 mg/dL).
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_client.record import PatientRecord
from hooks.context import PatientViewContext
from knowledge.calculators.ldl import ldl_sampson
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, EvaluationContext
from tests.test_rules import (
    AS_OF,
    NEVER_SMOKER,
    PID,
    USER,
    _assert_valid,
    condition,
    lipids,
    medication,
    patient,
    patient_view,
    quantity,
    smoking,
    statin_patient,
)

SEVERE = "statin-severe-hypercholesterolemia"
SIMVASTATIN_20 = "312961"
PREGNANCY = "72892002"


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


def panel_without_ldl(tc: float, hdl: float, tg: float | None) -> list[dict[str, Any]]:
    panel = [r for r in lipids(tc, hdl, 0) if r["id"] != "ldl"]
    if tg is not None:
        panel.append(quantity("tg", "2571-8", tg, "mg/dL"))
    return panel


def severe(
    library: KnowledgeLibrary, resources: list[dict[str, Any]], unavailable: tuple[str, ...] = ()
) -> tuple[list[Advice], EvaluationContext]:
    ctx = EvaluationContext(
        hook="patient-view",
        context=PatientViewContext(userId=USER, patientId=PID),
        record=PatientRecord.from_resources(PID, resources, unavailable=unavailable),
        as_of=AS_OF,
    )
    return library.rule(SEVERE).evaluate(ctx), ctx


# --- the Sampson/NIH equation 2 --------------------------------------------------------------
# No worked example is published with the equation (JAMA Cardiol 2020;5:540); the expected
# values are the equation evaluated term by term:
#   TC 200, HDL 50, TG 150: 200/0.948 = 210.970; 50/0.971 = 51.493;
#     150/8.56 + 150*150/2140 - 150^2/16100 = 17.523 + 10.514 - 1.398 = 26.640;
#     210.970 - 51.493 - 26.640 - 9.44 = 123.40
#   TC 250, HDL 35, TG 500: 263.713 - 36.045 - (58.411 + 50.234 - 15.528) - 9.44 = 125.11


@pytest.mark.parametrize(
    ("tc", "hdl", "tg", "expected"), [(200, 50, 150, 123.40), (250, 35, 500, 125.11)]
)
def test_sampson_equation_term_by_term(tc, hdl, tg, expected):
    assert ldl_sampson(tc, hdl, tg) == pytest.approx(expected, abs=0.01)


def test_sampson_is_not_used_above_800_mg_dl_triglycerides():
    assert ldl_sampson(250, 35, 800) > 0
    with pytest.raises(ValueError, match="validated range"):
        ldl_sampson(250, 35, 801)
    with pytest.raises(ValueError):
        ldl_sampson(150, 160, 100)


# --- statin-primary-prevention without a reported LDL-C --------------------------------------


def test_a_panel_without_ldl_gets_an_estimate_on_the_card(library):
    (advice,) = patient_view(library, statin_patient(lipids=panel_without_ldl(240, 40, 150)))
    expected = round(ldl_sampson(240, 40, 150))
    assert f"LDL-C {expected} mg/dL (none reported: estimated" in advice.inputs["ldl"]
    assert "estimated by the Sampson/NIH equation" in (advice.card.detail or "")
    _assert_valid(advice.card)


def test_triglycerides_in_mmol_per_litre_give_the_same_estimate(library):
    si = [*panel_without_ldl(240, 40, None), quantity("tg", "14927-8", 150 / 88.54, "mmol/L")]
    (us,) = patient_view(library, statin_patient(lipids=panel_without_ldl(240, 40, 150)))
    (advice,) = patient_view(library, statin_patient(lipids=si))
    assert advice.inputs["ldl"] == us.inputs["ldl"]


def test_a_newer_panel_without_ldl_is_preferred_to_an_older_reported_ldl(library):
    older = quantity("ldl-old", "18262-6", 100, "mg/dL", "2020-06-01")
    (advice,) = patient_view(
        library, statin_patient(lipids=[*panel_without_ldl(240, 40, 150), older])
    )
    assert "estimated" in advice.inputs["ldl"]


def test_without_any_ldl_another_risk_factor_still_gives_the_card(library):
    # The standard patient smokes and has hypertension: dyslipidemia is not needed.
    (advice,) = patient_view(library, statin_patient(lipids=panel_without_ldl(240, 50, None)))
    assert "not on record" in advice.inputs["ldl"]
    assert "dyslipidemia" not in advice.inputs["risk_factors"]
    _assert_valid(advice.card)


def test_without_any_ldl_or_other_risk_factor_there_is_no_card(library):
    resources = statin_patient(
        lipids=panel_without_ldl(240, 50, None),
        smoking=[smoking(NEVER_SMOKER)],
        conditions=[],
        meds=[],
    )
    assert patient_view(library, resources) == []


def test_an_estimated_ldl_at_the_severe_level_leaves_the_primary_prevention_rule(library):
    # TC 300, HDL 45, TG 140 estimates LDL-C 229 mg/dL.
    resources = statin_patient(lipids=panel_without_ldl(300, 45, 140))
    assert patient_view(library, resources) == []
    (advice,), _ = severe(library, resources)
    assert advice.inputs["ldl_value"] == "229"


# --- statin-severe-hypercholesterolemia ------------------------------------------------------


def severe_patient(ldl: float, *, age: int = 45, **extra: list[dict[str, Any]]) -> list[dict]:
    return [patient("female", age), *lipids(290, 50, ldl), *[r for v in extra.values() for r in v]]


def test_ldl_190_without_a_statin_gets_the_card(library):
    (advice,), _ = severe(library, severe_patient(190))
    assert advice.card.indicator == "warning"
    assert advice.inputs["ldl_value"] == "190"
    assert "maximally tolerated statin" in advice.card.summary
    _assert_valid(advice.card)


@pytest.mark.parametrize(
    "resources",
    [
        severe_patient(189),
        severe_patient(250, age=19),
        severe_patient(250, age=76),
        severe_patient(250, meds=[medication("simva", SIMVASTATIN_20)]),
        severe_patient(250, conditions=[condition(PREGNANCY)]),
    ],
    ids=["ldl-189", "age-19", "age-76", "on-a-statin", "pregnant"],
)
def test_no_severe_card_outside_the_recommendation(library, resources):
    assert severe(library, resources)[0] == []


def test_ldl_in_mmol_per_litre_is_converted(library):
    resources = [patient("male", 50), quantity("ldl", "22748-8", 5.2, "mmol/L")]
    (advice,), _ = severe(library, resources)
    assert advice.inputs["ldl_value"] == str(round(5.2 * 38.665))


def test_the_severe_card_is_held_back_when_medications_could_not_be_fetched(library):
    advice, ctx = severe(library, severe_patient(250), unavailable=("MedicationRequest",))
    assert advice == []
    assert [check.rule_id for check in ctx.unchecked] == [SEVERE]
