"""Preventive and chronic-care rules on small FHIR resource dicts and real synthetic patients.

Rules: diabetes-hba1c-monitoring, blood-pressure-not-at-goal, ckd-not-on-problem-list,
colorectal-cancer-screening, immunization-influenza, immunization-pneumococcal.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition

from fhir_client.codes import CVX, LOINC, RXNORM, SNOMED
from fhir_client.record import PatientRecord
from hooks.cards import Card
from hooks.context import PatientViewContext
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, EvaluationContext
from tests.shared_data import SYNTHEA, load_bundle, patient_id

AS_OF = datetime(2021, 4, 1, tzinfo=UTC)
TODAY = AS_OF.date()
USER = "Practitioner/test"
PID = "p1"


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


# --- resource builders ---------------------------------------------------------------------


def days_ago(days: int) -> str:
    return (AS_OF - timedelta(days=days)).isoformat()


def years_ago(years: float) -> str:
    return days_ago(round(years * 365.25))


def patient(age: int = 60, gender: str = "female", *, months: int | None = None, **extra) -> dict:
    if months is not None:
        total = TODAY.year * 12 + TODAY.month - 1 - months
        birth = date(total // 12, total % 12 + 1, min(TODAY.day, 28))
    else:
        birth = (TODAY - timedelta(days=10)).replace(year=TODAY.year - age)
    return {
        "resourceType": "Patient",
        "id": PID,
        "gender": gender,
        "birthDate": birth.isoformat(),
        **extra,
    }


_counter = iter(range(1, 1_000_000))


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def observation(code: str, value: float, unit: str, when: str, **extra: Any) -> dict:
    return {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
        **extra,
    }


def blood_pressure(systolic: float, diastolic: float, when: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": _id("bp"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": when,
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "unit": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"},
            },
        ],
    }


def condition(
    code: str, *, status: str = "active", onset: str | None = None, system: str = SNOMED
) -> dict:
    return {
        "resourceType": "Condition",
        "id": _id("cond"),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}], "text": f"Condition {code}"},
        "subject": {"reference": f"Patient/{PID}"},
        "onsetDateTime": onset or years_ago(3),
    }


def procedure(code: str, when: str, status: str = "completed") -> dict:
    return {
        "resourceType": "Procedure",
        "id": _id("proc"),
        "status": status,
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "performedDateTime": when,
    }


def immunization(cvx: str, when: str, status: str = "completed") -> dict:
    return {
        "resourceType": "Immunization",
        "id": _id("imm"),
        "status": status,
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
        "patient": {"reference": f"Patient/{PID}"},
        "occurrenceDateTime": when,
    }


def medication(rxnorm: str, authored: str, status: str = "active") -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": _id("med"),
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": authored,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm}]},
    }


def smoking(code: str, when: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": _id("smoking"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code}]},
    }


DIABETES, PREDIABETES, HYPERTENSION, PREGNANCY = "44054006", "15777000", "38341003", "72892002"


# --- evaluation helpers --------------------------------------------------------------------


def evaluate(
    library: KnowledgeLibrary,
    rule_id: str,
    resources: list[dict],
    *,
    pid: str = PID,
    as_of: datetime = AS_OF,
) -> list[Advice]:
    ctx = EvaluationContext(
        hook="patient-view",
        context=PatientViewContext(userId=USER, patientId=pid),
        record=PatientRecord.from_resources(pid, resources),
        as_of=as_of,
    )
    advice = library.rule(rule_id).evaluate(ctx)
    for item in advice:
        _assert_valid(item.card)
        assert item.rule_id == rule_id
    return advice


def one(advice: list[Advice]) -> Card:
    assert len(advice) == 1, [a.card.summary for a in advice]
    return advice[0].card


def _assert_valid(card: Card) -> None:
    Card.model_validate(card.model_dump())
    assert len(card.summary) <= 139
    assert "**Evidence**" in (card.detail or "")
    assert "{" not in card.summary and "{" not in (card.detail or "")


def real_patient(name_prefix: str) -> tuple[str, dict]:
    matches = sorted(SYNTHEA.glob(f"{name_prefix}*.json.gz"))
    assert len(matches) == 1, name_prefix
    bundle = load_bundle(matches[0])
    return patient_id(bundle), bundle


def evaluate_real(library: KnowledgeLibrary, rule_id: str, name_prefix: str) -> list[Advice]:
    pid, bundle = real_patient(name_prefix)
    return evaluate(library, rule_id, [bundle], pid=pid)


# --- diabetes-hba1c-monitoring -------------------------------------------------------------

RULE_DM = "diabetes-hba1c-monitoring"


def a1c(value: float, days: int, unit: str = "%") -> dict:
    return observation("4548-4", value, unit, days_ago(days))


def dm_patient(*extra: dict, age: int = 60) -> list[dict]:
    return [patient(age), condition(DIABETES), *extra]


def test_dm_recent_a1c_above_goal_is_a_warning_with_value_and_date(library):
    card = one(evaluate(library, RULE_DM, dm_patient(a1c(8.24, 30))))
    assert card.indicator == "warning"
    assert "HbA1c 8.2%" in card.summary and days_ago(30)[:10] in card.summary
    assert "<7.0%" in card.summary
    assert f"Next HbA1c due by {(AS_OF - timedelta(days=30 - 92)).date()}" in card.detail


def test_dm_above_goal_and_overdue_says_so(library):
    card = one(evaluate(library, RULE_DM, dm_patient(a1c(7.6, 120))))
    assert card.indicator == "warning" and "**overdue**" in card.detail


@pytest.mark.parametrize(
    ("value", "warning"), [(7.0, True), (6.96, True), (6.94, False), (6.5, False)]
)
def test_dm_goal_boundary_is_decided_on_the_reported_decimal(library, value, warning):
    advice = evaluate(library, RULE_DM, dm_patient(a1c(value, 30)))
    assert bool(advice) is warning
    if warning:
        assert "HbA1c 7.0%" in one(advice).summary


@pytest.mark.parametrize(("days", "overdue"), [(182, False), (183, True), (300, True)])
def test_dm_at_goal_is_due_every_183_days(library, days, overdue):
    advice = evaluate(library, RULE_DM, dm_patient(a1c(6.5, days)))
    assert bool(advice) is overdue
    if overdue:
        card = one(advice)
        assert card.indicator == "info" and "HbA1c overdue since" in card.summary
        assert "every 6 months" in card.detail and "at goal" in card.detail


def test_dm_stale_above_goal_value_is_only_an_overdue_reminder(library):
    card = one(evaluate(library, RULE_DM, dm_patient(a1c(9.1, 400))))
    assert card.indicator == "info" and "last 9.1%" in card.summary
    assert "every 3 months" in card.detail


def test_dm_new_glucose_lowering_order_shortens_the_interval(library):
    # At goal 100 days ago (due at 183 days), but metformin was ordered 95 days ago:
    # ADA asks for a quarterly check after a therapy change.
    resources = dm_patient(a1c(6.5, 100), medication("860975", days_ago(95)))
    card = one(evaluate(library, RULE_DM, resources))
    assert card.indicator == "info"
    assert "glucose-lowering therapy changed" in card.detail
    assert "every 3 months" in card.detail
    # Without the order the same value is not yet due.
    assert evaluate(library, RULE_DM, dm_patient(a1c(6.5, 100))) == []


def test_dm_without_any_a1c_asks_for_one(library):
    card = one(evaluate(library, RULE_DM, dm_patient()))
    assert card.indicator == "info" and "No HbA1c on record" in card.summary


@pytest.mark.parametrize(
    ("description", "resources"),
    [
        ("no diabetes", [patient(60), a1c(9.0, 30)]),
        ("prediabetes only", [patient(60), condition(PREDIABETES), a1c(6.0, 400)]),
        ("resolved diabetes", [patient(60), condition(DIABETES, status="resolved")]),
        ("pregnant", dm_patient(a1c(8.0, 30), condition(PREGNANCY, onset=days_ago(100)))),
        ("child", dm_patient(a1c(8.0, 30), age=15)),
        ("deceased", [patient(60, deceasedDateTime=days_ago(5)), condition(DIABETES)]),
        ("only an IFCC value that cannot be read", dm_patient(a1c(64, 30, unit="mmol/mol"))),
    ],
)
def test_dm_out_of_scope_or_unreadable_gives_no_card(library, description, resources):
    assert evaluate(library, RULE_DM, resources) == [], description


def test_dm_real_patients(library):
    warning = one(evaluate_real(library, RULE_DM, "Leonel_Hand"))
    assert warning.indicator == "warning" and "HbA1c 7.1% (2021-01-12)" in warning.summary
    boundary = one(evaluate_real(library, RULE_DM, "Leonor_Trujillo"))  # 7.0197% -> 7.0%
    assert boundary.indicator == "warning" and "HbA1c 7.0%" in boundary.summary
    overdue = one(evaluate_real(library, RULE_DM, "303201ngela_Guzm"))
    assert overdue.indicator == "info" and "last 6.6% on 2020-08-14" in overdue.summary
    assert evaluate_real(library, RULE_DM, "Clarine_OKeefe") == []  # 5.4% three days ago


# --- blood-pressure-not-at-goal ------------------------------------------------------------

RULE_BP = "blood-pressure-not-at-goal"


def htn_patient(*readings: dict, age: int = 60, extra: tuple[dict, ...] = ()) -> list[dict]:
    return [patient(age), condition(HYPERTENSION), *readings, *extra]


def test_bp_mean_of_two_visits_above_goal_is_a_warning(library):
    resources = htn_patient(
        blood_pressure(140, 85, days_ago(10)),
        blood_pressure(136, 82, days_ago(40)),
        blood_pressure(190, 120, days_ago(300)),  # older occasions are not averaged
        extra=(medication("316049", years_ago(2)),),
    )
    card = one(evaluate(library, RULE_BP, resources))
    assert card.indicator == "warning"
    assert card.summary.startswith("BP 138/83.5 mm Hg (mean of 2 visits)")
    assert "<130/80" in card.summary
    assert "140/85" in card.detail and "136/82" in card.detail and "190/120" not in card.detail
    assert "hydrochlorothiazide" in card.detail


@pytest.mark.parametrize(
    ("first", "second", "fires"),
    [
        ((130, 79), (130, 79), True),  # systolic exactly at 130 is not below the goal
        ((129, 79), (130, 80), False),  # mean 129.5/79.5 is at goal
        ((120, 80), (120, 80), True),  # diastolic 80 alone
        ((125, 75), (128, 78), False),
        ((129.5, 79.4), (129.5, 79.4), True),  # each visit rounds half up to 130/79
    ],
)
def test_bp_goal_boundaries(library, first, second, fires):
    resources = htn_patient(
        blood_pressure(*first, days_ago(5)), blood_pressure(*second, days_ago(50))
    )
    assert bool(evaluate(library, RULE_BP, resources)) is fires


def test_bp_single_visit_is_used_and_asks_for_confirmation(library):
    card = one(evaluate(library, RULE_BP, htn_patient(blood_pressure(152, 96, days_ago(20)))))
    assert card.indicator == "warning"
    assert f"BP 152/96 mm Hg on {days_ago(20)[:10]}" in card.summary
    assert "repeat the measurement" in card.detail
    assert "no active antihypertensive medication" in card.detail


def test_bp_readings_of_one_day_are_one_visit(library):
    resources = htn_patient(
        blood_pressure(150, 90, days_ago(3)), blood_pressure(130, 80, days_ago(3))
    )
    card = one(evaluate(library, RULE_BP, resources))
    assert "BP 140/85 mm Hg on" in card.summary  # averaged within the day, single visit


@pytest.mark.parametrize(
    ("description", "resources"),
    [
        ("no reading within a year", htn_patient(blood_pressure(170, 100, days_ago(366)))),
        ("no hypertension", [patient(60), blood_pressure(170, 100, days_ago(5))]),
        ("aged 17", htn_patient(blood_pressure(170, 100, days_ago(5)), age=17)),
        (
            "pregnant",
            htn_patient(
                blood_pressure(150, 95, days_ago(5)),
                extra=(condition(PREGNANCY, onset=days_ago(90)),),
            ),
        ),
    ],
)
def test_bp_no_card(library, description, resources):
    assert evaluate(library, RULE_BP, resources) == [], description


def test_bp_real_patients(library):
    card = one(evaluate_real(library, RULE_BP, "Brant_Jacobson"))
    assert card.summary.startswith("BP 161.5/106 mm Hg (mean of 2 visits)")
    single = one(evaluate_real(library, RULE_BP, "303201ngela_Guzm"))
    assert "BP 148/112 mm Hg on 2020-08-14" in single.summary
    # Hypertension on the problem list, but no reading in the last year: no card.
    assert evaluate_real(library, RULE_BP, "Angelique_Ritchie") == []


# --- ckd-not-on-problem-list ---------------------------------------------------------------

RULE_CKD = "ckd-not-on-problem-list"


def egfr(value: float, days: int, unit: str = "mL/min/{1.73_m2}", code: str = "33914-3") -> dict:
    return observation(code, value, unit, days_ago(days))


def test_ckd_persistent_low_egfr_suggests_a_problem_list_condition(library):
    resources = [patient(70), egfr(52, 200), egfr(55, 120), egfr(48, 30)]
    card = one(evaluate(library, RULE_CKD, resources))
    assert card.indicator == "warning"
    assert "eGFR below 60 for 170 days (latest 48" in card.summary
    assert "stage G3a" in card.summary
    assert "as reported by the laboratory" in card.detail
    (suggestion,) = card.suggestions
    (action,) = suggestion.actions
    assert action.type == "create" and suggestion.isRecommended
    assert suggestion.label == (
        "Add to the problem list: Chronic kidney disease stage 3A (disorder)"
    )
    condition_resource = Condition.model_validate(action.resource)
    coding = condition_resource.code.coding[0]
    assert (coding.system, coding.code) == (SNOMED, "700378005")
    assert condition_resource.subject.reference == f"Patient/{PID}"
    assert condition_resource.clinicalStatus.coding[0].code == "active"
    assert condition_resource.category[0].coding[0].code == "problem-list-item"
    assert len(condition_resource.evidence[0].detail) == 3
    assert str(condition_resource.onsetDateTime)[:10] == days_ago(200)[:10]


@pytest.mark.parametrize(
    ("latest", "stage", "snomed"),
    [
        (59, "G3a", "700378005"),
        (45, "G3a", "700378005"),
        (44.6, "G3a", "700378005"),  # reported as 45
        (44.5, "G3a", "700378005"),  # half up, as laboratories round
        (44.4, "G3b", "700379002"),
        (44, "G3b", "700379002"),
        (30, "G3b", "700379002"),
        (29, "G4", "431857002"),
        (15, "G4", "431857002"),
        (14, "G5", "433146000"),
    ],
)
def test_ckd_stage_follows_the_kdigo_category_of_the_latest_egfr(library, latest, stage, snomed):
    card = one(evaluate(library, RULE_CKD, [patient(70), egfr(50, 150), egfr(latest, 10)]))
    assert f"stage {stage}" in card.summary
    assert card.suggestions[0].actions[0].resource["code"]["coding"][0]["code"] == snomed


@pytest.mark.parametrize(("first_days", "fires"), [(99, False), (100, True)])
def test_ckd_needs_at_least_90_days_below_60(library, first_days, fires):
    resources = [patient(70), egfr(50, first_days), egfr(50, 10)]  # 89 or 90 days apart
    assert bool(evaluate(library, RULE_CKD, resources)) is fires


@pytest.mark.parametrize(
    ("description", "resources"),
    [
        ("latest rounds to 60", [patient(70), egfr(50, 200), egfr(59.6, 10)]),
        (
            "run interrupted by a normal value",
            [patient(70), egfr(50, 300), egfr(65, 200), egfr(50, 30)],
        ),
        ("latest older than a year", [patient(70), egfr(40, 700), egfr(40, 400)]),
        ("CKD already active", [patient(70), egfr(40, 200), egfr(40, 10), condition("431857002")]),
        (
            "diabetic kidney disease active",
            [patient(70), egfr(40, 200), egfr(40, 10), condition("127013003")],
        ),
        ("aged 17", [patient(17), egfr(40, 200), egfr(40, 10)]),
        ("a single value", [patient(70), egfr(40, 10)]),
        (
            "eGFR in an unreadable unit",
            [patient(70), egfr(0.7, 200, "mL/s"), egfr(0.7, 10, "mL/s")],
        ),
        ("no kidney data", [patient(70)]),
    ],
)
def test_ckd_no_card(library, description, resources):
    assert evaluate(library, RULE_CKD, resources) == [], description


def test_ckd_resolved_ckd_condition_does_not_suppress(library):
    resources = [
        patient(70),
        egfr(40, 200),
        egfr(40, 10),
        condition("431857002", status="resolved"),
    ]
    assert len(evaluate(library, RULE_CKD, resources)) == 1


def test_ckd_accepts_egfr_labelled_ml_min_and_other_egfr_codes(library):
    resources = [patient(70), egfr(40, 200, "mL/min"), egfr(41, 10, code="98979-8")]
    card = one(evaluate(library, RULE_CKD, resources))
    assert "latest 41" in card.summary and "stage G3b" in card.summary


def test_ckd_computes_egfr_from_creatinine_only_without_reported_egfr(library):
    # 70-year-old woman, creatinine 1.5 mg/dL: CKD-EPI 2021 gives 37 mL/min/1.73 m2.
    creatinine = [
        observation("2160-0", 1.5, "mg/dL", days_ago(200)),
        observation("2160-0", 1.5, "mg/dL", days_ago(10)),
    ]
    card = one(evaluate(library, RULE_CKD, [patient(70, "female"), *creatinine]))
    assert "latest 37" in card.summary and "stage G3b" in card.summary
    assert "computed with the CKD-EPI 2021" in card.detail
    # A reported eGFR wins over the creatinine-based estimate.
    reported = [patient(70, "female"), *creatinine, egfr(75, 200), egfr(72, 10)]
    assert evaluate(library, RULE_CKD, reported) == []


def test_ckd_real_patients(library):
    card = one(evaluate_real(library, RULE_CKD, "Clarine_OKeefe"))
    assert "latest 41, 2021-03-28" in card.summary and "stage G3b" in card.summary
    Condition.model_validate(card.suggestions[0].actions[0].resource)
    # Persistently low eGFR, but CKD is already on the problem list.
    assert evaluate_real(library, RULE_CKD, "Isaiah_Schaden") == []
    # High creatinine, but the reported eGFR (>= 60) is used.
    assert evaluate_real(library, RULE_CKD, "Juan_Stracke") == []


# --- colorectal-cancer-screening -----------------------------------------------------------

RULE_CRC = "colorectal-cancer-screening"
COLONOSCOPY, SIGMOIDOSCOPY, TOTAL_COLECTOMY = "73761001", "44441009", "26390003"


@pytest.mark.parametrize(("age", "grade"), [(45, "B"), (49, "B"), (50, "A"), (75, "A")])
def test_crc_due_in_the_screening_ages(library, age, grade):
    card = one(evaluate(library, RULE_CRC, [patient(age)]))
    assert card.indicator == "info"
    assert f"(age {age}, USPSTF grade {grade})" in card.summary
    assert "Colonoscopy (every 10 years): none recorded" in card.detail


@pytest.mark.parametrize("age", [44, 76])
def test_crc_not_outside_45_to_75(library, age):
    assert evaluate(library, RULE_CRC, [patient(age)]) == []


@pytest.mark.parametrize(
    ("description", "test_resource", "up_to_date"),
    [
        ("colonoscopy 9 years ago", procedure(COLONOSCOPY, years_ago(9)), True),
        ("colonoscopy 11 years ago", procedure(COLONOSCOPY, years_ago(11)), False),
        ("planned colonoscopy", procedure(COLONOSCOPY, days_ago(30), status="preparation"), False),
        ("FIT 11 months ago", observation("57905-2", 20, "ng/mL", days_ago(330)), True),
        ("FIT 13 months ago", observation("57905-2", 20, "ng/mL", days_ago(395)), False),
        (
            "FIT entered in error",
            observation("57905-2", 20, "ng/mL", days_ago(30), status="entered-in-error"),
            False,
        ),
        ("sDNA-FIT 2 years ago", observation("77354-9", 0, "1", years_ago(2)), True),
        ("sDNA-FIT 4 years ago", observation("77354-9", 0, "1", years_ago(4)), False),
        ("sigmoidoscopy 4 years ago", procedure(SIGMOIDOSCOPY, years_ago(4)), True),
        ("sigmoidoscopy 6 years ago", procedure(SIGMOIDOSCOPY, years_ago(6)), False),
        (
            "CT colonography report 4 years ago",
            {
                "resourceType": "DiagnosticReport",
                "id": "ctc",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "79101-2"}]},
                "subject": {"reference": f"Patient/{PID}"},
                "effectiveDateTime": years_ago(4),
            },
            True,
        ),
    ],
)
def test_crc_each_test_counts_within_its_interval(library, description, test_resource, up_to_date):
    advice = evaluate(library, RULE_CRC, [patient(60), test_resource])
    assert (advice == []) is up_to_date, description


def test_crc_interval_boundary_is_inclusive(library):
    on_the_day = procedure(COLONOSCOPY, AS_OF.replace(year=AS_OF.year - 10).isoformat())
    assert evaluate(library, RULE_CRC, [patient(60), on_the_day]) == []
    day_before = procedure(
        COLONOSCOPY, (AS_OF.replace(year=AS_OF.year - 10) - timedelta(days=1)).isoformat()
    )
    card = one(evaluate(library, RULE_CRC, [patient(60), day_before]))
    assert "Colonoscopy (every 10 years): last 2011-03-31" in card.detail


@pytest.mark.parametrize(
    ("description", "resources"),
    [
        ("colon cancer, resolved", [condition("363406005", status="resolved")]),
        (
            "history of rectal cancer (ICD-10-CM)",
            [condition("Z85.048", system="http://hl7.org/fhir/sid/icd-10-cm")],
        ),
        ("total colectomy", [procedure(TOTAL_COLECTOMY, years_ago(12))]),
        ("deceased", [patient(60, deceasedDateTime=days_ago(3))]),
    ],
)
def test_crc_exclusions(library, description, resources):
    base = [] if resources[0]["resourceType"] == "Patient" else [patient(60)]
    assert evaluate(library, RULE_CRC, base + resources) == [], description


def test_crc_real_patients(library):
    card = one(evaluate_real(library, RULE_CRC, "Barrett_Cummings"))
    assert "(age 48, USPSTF grade B)" in card.summary
    # Colonoscopies in 2012 and 2017: up to date.
    assert evaluate_real(library, RULE_CRC, "Abdul_Koepp") == []


# --- immunization-influenza ----------------------------------------------------------------

RULE_FLU = "immunization-influenza"


def test_flu_no_dose_this_season_is_a_reminder(library):
    resources = [patient(40), immunization("140", "2020-06-08T10:00:00+00:00")]
    card = one(evaluate(library, RULE_FLU, resources))
    assert card.indicator == "info"
    assert "for the 2020-21 season" in card.summary
    assert "(2020-07-01)" in card.detail and "last recorded dose was 2020-06-08" in card.detail
    assert "high-dose" not in card.detail and "2 doses" not in card.detail


@pytest.mark.parametrize(
    ("when", "status", "reminded"),
    [
        ("2020-09-15", "completed", False),
        ("2020-07-01T00:00:00+00:00", "completed", False),  # first instant of the season
        ("2020-06-30T23:59:00+00:00", "completed", True),
        ("2020-10-01", "not-done", True),
    ],
)
def test_flu_season_boundary(library, when, status, reminded):
    resources = [patient(40), immunization("150", when, status=status)]
    assert bool(evaluate(library, RULE_FLU, resources)) is reminded


@pytest.mark.parametrize(
    ("as_of", "season"),
    [
        (datetime(2021, 8, 31, 23, 0, tzinfo=UTC), None),  # July-August: no reminders
        (datetime(2021, 9, 1, tzinfo=UTC), "2021-22"),
        (datetime(2021, 6, 30, tzinfo=UTC), "2020-21"),
    ],
)
def test_flu_reminder_window(library, as_of, season):
    resources = [patient(40), immunization("140", "2020-06-08")]
    advice = evaluate(library, RULE_FLU, resources, as_of=as_of)
    if season is None:
        assert advice == []
    else:
        assert f"the {season} season" in one(advice).summary


def test_flu_age_limits_and_notes(library):
    assert evaluate(library, RULE_FLU, [patient(months=5)]) == []
    infant = one(evaluate(library, RULE_FLU, [patient(months=6)]))
    assert "may need 2 doses" in infant.detail and "none recorded" in infant.detail
    older = one(evaluate(library, RULE_FLU, [patient(70)]))
    assert "high-dose" in older.detail and "2 doses" not in older.detail
    assert evaluate(library, RULE_FLU, [patient(70, deceasedDateTime=days_ago(1))]) == []


def test_flu_real_patients(library):
    card = one(evaluate_real(library, RULE_FLU, "Addie_Tremblay"))
    assert "2020-21 season" in card.summary and "2020-06-08" in card.detail
    assert evaluate_real(library, RULE_FLU, "Abdul_Koepp") == []  # vaccinated 2020-12-04


# --- immunization-pneumococcal -------------------------------------------------------------

RULE_PNEUMO = "immunization-pneumococcal"
PCV13, PPSV23, PCV15, PCV20, PCV21 = "133", "33", "215", "216", "327"


@pytest.mark.parametrize(("age", "fires"), [(49, False), (50, True), (80, True)])
def test_pneumo_age_based_for_pcv_naive_adults(library, age, fires):
    advice = evaluate(library, RULE_PNEUMO, [patient(age)])
    assert bool(advice) is fires
    if fires:
        card = one(advice)
        assert card.indicator == "info" and "give PCV20 or PCV21" in card.summary
        assert f"age {age} (ACIP: all adults aged 50 and over)" in card.detail


def test_pneumo_risk_based_from_19_to_49(library):
    card = one(evaluate(library, RULE_PNEUMO, [patient(35), condition(DIABETES)]))
    assert "age 35 with a risk condition: Condition 44054006" in card.detail
    smoker = one(evaluate(library, RULE_PNEUMO, [patient(30), smoking("449868002", days_ago(40))]))
    assert "current smoking" in smoker.detail
    assert evaluate(library, RULE_PNEUMO, [patient(30), smoking("8517006", days_ago(40))]) == []
    assert evaluate(library, RULE_PNEUMO, [patient(18), condition("195967001")]) == []
    assert evaluate(library, RULE_PNEUMO, [patient(40), condition(HYPERTENSION)]) == []


@pytest.mark.parametrize(
    ("history", "card_key"),
    [
        ([(PCV20, 3)], None),
        ([(PCV21, 0.1)], None),
        ([(PCV13, 5), (PPSV23, 4)], None),
        ([(PCV15, 2), (PPSV23, 1)], None),
        ([(PPSV23, 4), (PCV15, 2)], None),
        ([(PCV13, 2)], "after PCV13"),
        ([(PCV13, 0.5)], None),  # not yet a year after PCV13
        ([(PPSV23, 2)], "Only PPSV23"),
        ([(PPSV23, 0.5)], None),
        ([(PCV15, 2)], "complete the pneumococcal series with PPSV23"),
        ([(PCV15, 0.5)], None),
    ],
)
def test_pneumo_by_vaccination_history(library, history, card_key):
    resources = [patient(70), *(immunization(cvx, years_ago(y)) for cvx, y in history)]
    advice = evaluate(library, RULE_PNEUMO, resources)
    if card_key is None:
        assert advice == []
    else:
        assert card_key in one(advice).summary


def test_pneumo_interval_boundary_is_365_days(library):
    due = evaluate(library, RULE_PNEUMO, [patient(70), immunization(PCV13, days_ago(365))])
    assert "after PCV13" in one(due).summary
    assert evaluate(library, RULE_PNEUMO, [patient(70), immunization(PCV13, days_ago(364))]) == []


def test_pneumo_real_patients(library):
    after_pcv13 = one(evaluate_real(library, RULE_PNEUMO, "Annetta_Hoppe"))
    assert "after PCV13 (2011-12-28)" in after_pcv13.summary
    naive = one(evaluate_real(library, RULE_PNEUMO, "303201ngela_Guzm"))  # aged 31, diabetes
    assert "with a risk condition: Diabetes" in naive.detail
    assert evaluate_real(library, RULE_PNEUMO, "Adalberto_Hartmann") == []  # PCV13 + PPSV23
    assert evaluate_real(library, RULE_PNEUMO, "Austin_Spencer") == []  # PCV13 on 2020-07-07
