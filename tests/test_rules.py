"""The three rules on small FHIR resource dicts and on real synthetic (Synthea) patients."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from fhir_client.codes import LOINC, OMB_RACE, RXNORM, SNOMED, US_CORE_RACE
from fhir_client.record import MedicationEntry, PatientRecord, medication_entry
from hooks.cards import Card
from hooks.context import OrderSelectContext, OrderSignContext, PatientViewContext
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, EvaluationContext, render_card
from tests.shared_data import SYNTHEA, load_bundle, patient_id

AS_OF = datetime(2021, 4, 1, tzinfo=UTC)
TODAY = AS_OF.date()
RECENT = (TODAY - timedelta(days=30)).isoformat()
USER = "Practitioner/test"
PID = "p1"


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


# --- resource builders ---------------------------------------------------------------------


def _years_ago(years: int, day: date = TODAY) -> str:
    return day.replace(year=day.year - years).isoformat()


def patient(gender: str = "male", age: int = 60, *, race: str | None = None, **extra: Any) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": PID,
        "gender": gender,
        "birthDate": _years_ago(age, TODAY - timedelta(days=10)),
        **extra,
    }
    if race:
        resource["extension"] = [
            {
                "url": US_CORE_RACE,
                "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": OMB_RACE, "code": race}}
                ],
            }
        ]
    return resource


def quantity(obs_id: str, code: str, value: float, unit: str, when: str = RECENT) -> dict:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


def blood_pressure(systolic: float, when: str = RECENT) -> dict:
    return {
        "resourceType": "Observation",
        "id": "bp",
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
                "valueQuantity": {"value": 80, "unit": "mm[Hg]"},
            },
        ],
    }


def smoking(code: str, when: str = RECENT) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"smoking-{code}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code}]},
    }


NEVER_SMOKER, CURRENT_SMOKER, EX_SMOKER = "266919005", "449868002", "8517006"


def condition(code: str, *, status: str = "active", onset: str | None = None) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"cond-{code}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "onsetDateTime": onset or _years_ago(3),
    }


def medication(request_id: str | None, rxnorm: str, status: str = "active") -> dict:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm}],
            "text": f"RxNorm {rxnorm}",
        },
    }
    if request_id:
        resource["id"] = request_id
    return resource


def lipids(tc: float, hdl: float, ldl: float, when: str = RECENT) -> list[dict]:
    return [
        quantity("tc", "2093-3", tc, "mg/dL", when),
        quantity("hdl", "2085-9", hdl, "mg/dL", when),
        quantity("ldl", "18262-6", ldl, "mg/dL", when),
    ]


def creatinine(value: float, unit: str = "mg/dL", when: str = RECENT) -> dict:
    return quantity("creat", "2160-0", value, unit, when)


def bundle(resources: Iterable[dict]) -> dict:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


# --- evaluation helpers --------------------------------------------------------------------


def _drafts(resources: Iterable[dict]) -> list[MedicationEntry]:
    entries = (
        medication_entry(r) for r in resources if r.get("resourceType") == "MedicationRequest"
    )
    return [e for e in entries if e is not None]


def patient_view(
    library: KnowledgeLibrary, resources: list[dict], *, pid: str = PID
) -> list[Advice]:
    record = PatientRecord.from_resources(pid, resources)
    ctx = EvaluationContext(
        hook="patient-view",
        context=PatientViewContext(userId=USER, patientId=pid),
        record=record,
        as_of=AS_OF,
    )
    return library.rule("statin-primary-prevention").evaluate(ctx)


def order_sign(
    library: KnowledgeLibrary, rule_id: str, resources: list[dict], drafts: list[dict], *, pid=PID
) -> list[Advice]:
    context = OrderSignContext(userId=USER, patientId=pid, draftOrders=bundle(drafts))
    ctx = EvaluationContext(
        hook="order-sign",
        context=context,
        record=PatientRecord.from_resources(pid, resources),
        as_of=AS_OF,
        draft_orders=_drafts(context.draft_resources()),
    )
    return library.rule(rule_id).evaluate(ctx)


def order_select(
    library: KnowledgeLibrary,
    resources: list[dict],
    drafts: list[dict],
    selections: list[str],
    *,
    pid: str = PID,
) -> list[Advice]:
    context = OrderSelectContext(
        userId=USER, patientId=pid, draftOrders=bundle(drafts), selections=selections
    )
    ctx = EvaluationContext(
        hook="order-select",
        context=context,
        record=PatientRecord.from_resources(pid, resources),
        as_of=AS_OF,
        draft_orders=_drafts(context.selected_resources()),
    )
    return library.rule("ddi-statin-cyp3a4").evaluate(ctx)


def _assert_valid(card: Card) -> None:
    Card.model_validate(card.model_dump())
    assert len(card.summary) <= 139
    assert "**Evidence**" in (card.detail or "")
    assert "{" not in card.summary and "{" not in (card.detail or "")


def _delete_targets(card: Card) -> list[str]:
    return [
        a.resourceId for s in card.suggestions or () for a in s.actions or () if a.type == "delete"
    ]


# --- statin-primary-prevention -------------------------------------------------------------


def statin_patient(**changes: Any) -> list[dict]:
    """A 60-year-old man who smokes, with treated hypertension and dyslipidemia: ~27% risk."""
    base = {
        "patient": patient("male", 60),
        "lipids": lipids(240, 40, 160),
        "bp": [blood_pressure(150)],
        "smoking": [smoking(CURRENT_SMOKER)],
        "conditions": [condition("38341003")],
        "meds": [medication("hctz", "316049")],
    }
    base.update(changes)
    resources: list[dict] = []
    for value in base.values():
        resources.extend(value if isinstance(value, list) else [value])
    return resources


def test_statin_grade_b_card_with_a_valid_medication_request_suggestion(library):
    advice = patient_view(library, statin_patient())
    assert len(advice) == 1
    card = advice[0].card
    _assert_valid(card)
    assert card.indicator == "warning"
    assert "USPSTF grade B" in card.summary
    assert "27.5%" in card.summary  # 60 M white, TC 240, HDL 40, treated SBP 150, smoker
    assert "dyslipidemia, hypertension, current smoking" in card.detail
    assert "treated" in card.detail and "white/other" in card.detail
    (suggestion,) = card.suggestions
    (action,) = suggestion.actions
    assert action.type == "create" and suggestion.isRecommended
    request = MedicationRequest.model_validate(action.resource)
    assert (request.status, request.intent) == ("draft", "proposal")
    assert request.subject.reference == f"Patient/{PID}"
    coding = request.medicationCodeableConcept.coding[0]
    assert (coding.system, coding.code) == (RXNORM, "312961")
    assert advice[0].rule_id == "statin-primary-prevention"


def test_statin_grade_c_card_is_informational_without_suggestion(library):
    # 50 M, TC 213, HDL 45, untreated SBP 130, non-smoker, diabetes: 8.2%.
    resources = statin_patient(
        patient=patient("male", 50),
        lipids=lipids(213, 45, 120),
        bp=[blood_pressure(130)],
        smoking=[smoking(NEVER_SMOKER)],
        conditions=[condition("44054006")],
        meds=[],
    )
    (advice,) = patient_view(library, resources)
    _assert_valid(advice.card)
    assert advice.card.indicator == "info"
    assert "8.2%" in advice.card.summary and "grade C" in advice.card.summary
    assert "diabetes" in advice.card.detail
    assert not advice.card.suggestions


def test_statin_no_card_below_the_risk_threshold(library):
    resources = statin_patient(
        patient=patient("male", 50),
        lipids=lipids(200, 50, 120),
        bp=[blood_pressure(125)],
        smoking=[smoking(NEVER_SMOKER)],
        meds=[],
    )  # hypertension diagnosis is a risk factor, but the risk is 3.3%
    assert patient_view(library, resources) == []


def test_statin_no_card_without_a_uspstf_risk_factor(library):
    resources = statin_patient(
        patient=patient("male", 70),
        lipids=lipids(200, 50, 120),
        bp=[blood_pressure(130)],
        smoking=[smoking(EX_SMOKER)],
        conditions=[],
        meds=[],
    )  # 18.5% risk, but no dyslipidemia, diabetes, hypertension or smoking
    assert patient_view(library, resources) == []


@pytest.mark.parametrize(
    ("description", "changes"),
    [
        ("LDL-C at the exclusion threshold", {"lipids": lipids(280, 40, 190)}),
        ("aged 76", {"patient": patient("male", 76)}),
        ("aged 39", {"patient": patient("male", 39)}),
        ("deceased", {"patient": patient("male", 60, deceasedDateTime="2021-01-01")}),
        ("sex unknown", {"patient": patient("unknown", 60)}),
        ("active statin", {"meds": [medication("hctz", "316049"), medication("s", "316672")]}),
        (
            "resolved myocardial infarction",
            {"conditions": [condition("38341003"), condition("22298006", status="resolved")]},
        ),
        ("stroke", {"conditions": [condition("38341003"), condition("230690007")]}),
        ("no lipid panel", {"lipids": []}),
        ("lipids older than 5 years", {"lipids": lipids(240, 40, 160, when=_years_ago(6))}),
        ("no blood pressure", {"bp": []}),
        ("no smoking status", {"smoking": []}),
        ("out-of-range total cholesterol", {"lipids": lipids(340, 40, 160)}),
    ],
)
def test_statin_exclusions_and_missing_inputs_give_no_card(library, description, changes):
    assert patient_view(library, statin_patient(**changes)) == [], description


def test_statin_boundary_ages_40_and_75_are_included(library):
    for age in (40, 75):
        advice = patient_view(library, statin_patient(patient=patient("male", age)))
        assert len(advice) == 1, age


def test_statin_ldl_just_below_exclusion_still_gets_a_card(library):
    assert len(patient_view(library, statin_patient(lipids=lipids(280, 40, 189)))) == 1


def test_statin_stopped_statin_does_not_exclude(library):
    meds = [medication("hctz", "316049"), medication("s", "316672", status="stopped")]
    assert len(patient_view(library, statin_patient(meds=meds))) == 1


def test_statin_refuted_ascvd_does_not_exclude(library):
    refuted = condition("22298006")
    refuted["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    assert len(patient_view(library, statin_patient(conditions=[condition("38341003"), refuted])))


def test_statin_african_american_equations_follow_omb_race(library):
    black = statin_patient(patient=patient("female", 60, race="2054-5"), meds=[])
    white = statin_patient(patient=patient("female", 60, race="2106-3"), meds=[])
    (aa,) = patient_view(library, black)
    (wo,) = patient_view(library, white)
    assert "African American" in aa.card.detail and "white/other" in wo.card.detail
    assert aa.card.summary != wo.card.summary


def test_statin_treated_flag_from_antihypertensive_product_code(library):
    # Amlodipine is recognised through the product code in antihypertensive-medications.
    amlodipine = statin_patient(meds=[medication("aml", "197361")])
    untreated = statin_patient(meds=[])
    (treated_card,) = patient_view(library, amlodipine)
    (untreated_card,) = patient_view(library, untreated)
    assert ", treated (" in treated_card.card.detail
    assert ", untreated (" in untreated_card.card.detail


def test_statin_smoking_from_condition_when_no_observation(library):
    resources = statin_patient(
        smoking=[],
        conditions=[condition("449868002")],  # coded as a Condition in some records
        lipids=lipids(200, 50, 120),
    )
    (advice,) = patient_view(library, resources)
    assert "current smoking" in advice.card.detail


def test_statin_suggestion_withheld_with_verapamil(library):
    meds = [medication("hctz", "316049"), medication("vera", "897718")]
    (advice,) = patient_view(library, statin_patient(meds=meds))
    _assert_valid(advice.card)
    assert advice.card.indicator == "warning"
    assert not advice.card.suggestions
    # Named as the value set names the product (the order text is only "RxNorm 897718").
    assert "Verapamil Hydrochloride 40 MG" in advice.card.detail


# --- metformin-renal-contraindication ------------------------------------------------------

METFORMIN_DRAFT = medication("draft-metformin", "860975", status="draft")
RULE_METFORMIN = "metformin-renal-contraindication"


def _egfr_patient(*extra: dict, gender: str = "female", age: int = 72) -> list[dict]:
    return [patient(gender, age), *extra]


def test_metformin_critical_below_30_with_delete_suggestion(library):
    (advice,) = order_sign(
        library, RULE_METFORMIN, _egfr_patient(creatinine(2.8)), [METFORMIN_DRAFT]
    )
    card = advice.card
    _assert_valid(card)
    assert card.indicator == "critical"
    assert "eGFR 18" in card.summary  # 72 F, creatinine 2.8 mg/dL
    assert _delete_targets(card) == ["MedicationRequest/draft-metformin"]
    assert card.selectionBehavior == "at-most-one"


def test_metformin_accepts_creatinine_in_micromoles(library):
    (advice,) = order_sign(
        library, RULE_METFORMIN, _egfr_patient(creatinine(247.5, "umol/L")), [METFORMIN_DRAFT]
    )
    assert "eGFR 18" in advice.card.summary


def test_metformin_warning_30_to_45_for_initiation(library):
    (advice,) = order_sign(
        library, RULE_METFORMIN, _egfr_patient(creatinine(1.4)), [METFORMIN_DRAFT]
    )
    _assert_valid(advice.card)
    assert advice.card.indicator == "warning"
    assert "not recommended" in advice.card.summary
    assert not advice.card.suggestions


def test_metformin_warning_30_to_45_when_already_taking_it(library):
    resources = _egfr_patient(creatinine(1.4), medication("met", "860975"))
    (advice,) = order_sign(library, RULE_METFORMIN, resources, [METFORMIN_DRAFT])
    assert advice.card.indicator == "warning"
    assert "continuing" in advice.card.summary


def _creatinine_for(target: int, *, gender: str = "female", age: int = 72) -> float:
    """A creatinine (mg/dL, 0.001 steps) whose eGFR rounds to ``target``."""
    from knowledge.calculators.ckd_epi import egfr_ckd_epi_2021

    for step in range(500, 5000):
        value = step / 1000
        if round(egfr_ckd_epi_2021(value, "mg/dL", age=age, sex=gender)) == target:  # type: ignore[arg-type]
            return value
    raise AssertionError(target)


@pytest.mark.parametrize(
    ("egfr", "indicator"), [(29, "critical"), (30, "warning"), (45, "warning"), (46, None)]
)
def test_metformin_band_boundaries(library, egfr, indicator):
    # Measured after the 72nd birthday (10 days ago), so the rule uses age 72 as well.
    measured = (TODAY - timedelta(days=5)).isoformat()
    resources = _egfr_patient(creatinine(_creatinine_for(egfr), when=measured))
    advice = order_sign(library, RULE_METFORMIN, resources, [METFORMIN_DRAFT])
    assert [a.card.indicator for a in advice] == ([indicator] if indicator else [])
    if advice:
        assert f"eGFR {egfr} " in advice[0].card.summary


@pytest.mark.parametrize(
    "resources",
    [
        _egfr_patient(),
        _egfr_patient(creatinine(2.8, when=_years_ago(2))),
        _egfr_patient(creatinine(2.8), gender="unknown"),
    ],
    ids=["no creatinine", "creatinine older than a year", "sex not recorded"],
)
def test_metformin_info_card_without_a_usable_recent_creatinine(library, resources):
    (advice,) = order_sign(library, RULE_METFORMIN, resources, [METFORMIN_DRAFT])
    _assert_valid(advice.card)
    assert advice.card.indicator == "info"
    assert "before starting metformin" in advice.card.summary


def test_metformin_matches_an_ingredient_coded_order(library):
    draft = medication("draft-met-in", "6809", status="draft")
    (advice,) = order_sign(library, RULE_METFORMIN, _egfr_patient(creatinine(2.8)), [draft])
    assert _delete_targets(advice.card) == ["MedicationRequest/draft-met-in"]


def test_metformin_no_card_for_other_orders_or_normal_egfr(library):
    other = medication("draft-hctz", "316049", status="draft")
    assert order_sign(library, RULE_METFORMIN, _egfr_patient(creatinine(2.8)), [other]) == []
    assert (
        order_sign(library, RULE_METFORMIN, _egfr_patient(creatinine(0.8)), [METFORMIN_DRAFT]) == []
    )


def test_metformin_order_without_id_gets_no_delete_suggestion(library):
    draft = medication(None, "860975", status="draft")
    (advice,) = order_sign(library, RULE_METFORMIN, _egfr_patient(creatinine(2.8)), [draft])
    assert advice.card.indicator == "critical" and not advice.card.suggestions


# --- ddi-statin-cyp3a4 ---------------------------------------------------------------------

RULE_DDI = "ddi-statin-cyp3a4"


def test_ddi_selected_clarithromycin_against_active_simvastatin(library):
    draft = medication("draft-clari", "197517", status="draft")
    resources = [patient(), medication("simva", "316672")]
    (advice,) = order_select(library, resources, [draft], ["MedicationRequest/draft-clari"])
    card = advice.card
    _assert_valid(card)
    assert card.indicator == "critical"
    assert "simvastatin" in card.summary and "clarithromycin" in card.summary
    assert "Simvistatin" not in card.detail  # names come from the ingredient map
    assert _delete_targets(card) == ["MedicationRequest/draft-clari"]


def test_ddi_in_the_other_direction(library):
    draft = medication("draft-simva", "312961", status="draft")
    resources = [patient(), medication("keto", "6135")]
    (advice,) = order_select(library, resources, [draft], ["MedicationRequest/draft-simva"])
    assert "simvastatin with ketoconazole" in advice.card.summary
    assert _delete_targets(advice.card) == ["MedicationRequest/draft-simva"]


@pytest.mark.parametrize("status", ["stopped", "completed", "cancelled", "entered-in-error"])
def test_ddi_never_fires_on_inactive_medications(library, status):
    draft = medication("draft-clari", "197517", status="draft")
    resources = [patient(), medication("simva", "316672", status=status)]
    assert order_select(library, resources, [draft], ["MedicationRequest/draft-clari"]) == []


def test_ddi_no_card_for_a_statin_outside_the_list(library):
    draft = medication("draft-clari", "197517", status="draft")
    resources = [patient(), medication("atorva", "259255")]
    assert order_select(library, resources, [draft], ["MedicationRequest/draft-clari"]) == []


def test_ddi_between_draft_orders_at_signing_gives_one_card(library):
    drafts = [
        medication("draft-lova", "6472", status="draft"),
        medication("draft-itra", "28031", status="draft"),
    ]
    (advice,) = order_sign(library, RULE_DDI, [patient()], drafts)
    card = advice.card
    _assert_valid(card)
    assert "lovastatin with itraconazole" in card.summary
    assert sorted(_delete_targets(card)) == [
        "MedicationRequest/draft-itra",
        "MedicationRequest/draft-lova",
    ]
    assert [s.isRecommended for s in card.suggestions] == [True, False]


def test_ddi_selected_order_against_an_unselected_draft(library):
    drafts = [
        medication("draft-clari", "197517", status="draft"),
        medication("draft-simva", "312961", status="draft"),
    ]
    (advice,) = order_select(library, [patient()], drafts, ["MedicationRequest/draft-clari"])
    assert "another draft order" in advice.card.detail
    assert _delete_targets(advice.card)[0] == "MedicationRequest/draft-clari"


def test_ddi_unselected_drafts_alone_do_not_fire(library):
    drafts = [
        medication("draft-hctz", "316049", status="draft"),
        medication("draft-clari", "197517", status="draft"),
        medication("draft-simva", "312961", status="draft"),
    ]
    assert order_select(library, [patient()], drafts, ["MedicationRequest/draft-hctz"]) == []


# --- real synthetic patients ---------------------------------------------------------------


def synthea_record_resources(name: str) -> tuple[str, list[dict]]:
    (path,) = sorted(SYNTHEA.glob(f"{name}*.json.gz"))
    bundle_ = load_bundle(path)
    return patient_id(bundle_), [bundle_]


def test_synthea_statin_grade_b(library):
    # Emery Purdy: 53-year-old man, LDL-C 143 mg/dL (dyslipidemia), no CVD, no statin.
    pid, resources = synthea_record_resources("Emery_Purdy_298c62e6")
    (advice,) = patient_view(library, resources, pid=pid)
    _assert_valid(advice.card)
    assert advice.card.indicator == "warning" and "16.8%" in advice.card.summary
    assert "dyslipidemia" in advice.card.detail


def test_synthea_statin_grade_c(library):
    pid, resources = synthea_record_resources("Leonardo_Heaney_3a01d46f")
    (advice,) = patient_view(library, resources, pid=pid)
    assert advice.card.indicator == "info" and "8.4%" in advice.card.summary


def test_synthea_statin_no_card_without_risk_factor(library):
    # Abdul Koepp: 9.7% estimated risk but none of the four USPSTF risk factors.
    pid, resources = synthea_record_resources("Abdul_Koepp_e925b0f3")
    assert patient_view(library, resources, pid=pid) == []


def test_synthea_metformin_draft_with_low_egfr_is_critical(library):
    pid, resources = synthea_record_resources("Carin_Schowalter_a57d5ea7")
    draft = medication("draft-metformin", "860975", status="draft")
    draft["subject"] = {"reference": f"Patient/{pid}"}
    (advice,) = order_sign(library, RULE_METFORMIN, resources, [draft], pid=pid)
    assert advice.card.indicator == "critical"
    assert _delete_targets(advice.card) == ["MedicationRequest/draft-metformin"]


def test_synthea_metformin_continuing_with_moderate_egfr(library):
    pid, resources = synthea_record_resources("Clarine_OKeefe_e8c2a98e")
    draft = medication("draft-metformin", "860975", status="draft")
    draft["subject"] = {"reference": f"Patient/{pid}"}
    (advice,) = order_sign(library, RULE_METFORMIN, resources, [draft], pid=pid)
    assert advice.card.indicator == "warning" and "continuing" in advice.card.summary


def test_synthea_clarithromycin_for_a_patient_on_simvastatin(library):
    pid, resources = synthea_record_resources("Chung_Haley_e792af79")
    draft = medication("draft-clari", "197517", status="draft")
    draft["subject"] = {"reference": f"Patient/{pid}"}
    (advice,) = order_select(
        library, resources, [draft], ["MedicationRequest/draft-clari"], pid=pid
    )
    assert advice.card.indicator == "critical"
    assert "simvastatin with clarithromycin" in advice.card.summary


# --- the library ----------------------------------------------------------------------------


def test_library_loads_the_first_three_rules(library):
    assert {r.id for r in library.rules} >= {
        "statin-primary-prevention",
        "metformin-renal-contraindication",
        "ddi-statin-cyp3a4",
    }
    for rule in library.rules:
        assert set(rule.artifact.value_sets) <= set(library.knowledge.value_sets)


def test_every_card_template_renders_a_valid_card(library):
    from knowledge.rule import Finding

    sample = {
        "risk_percent": "100.0",
        "egfr": 150,
        "contraindicated_below": 30,
        "initiation_max": 45,
        "statin": "simvastatin",
        "inhibitor": "clarithromycin",
    }
    for rule in library.rules:
        for key, template in rule.artifact.cards.items():
            values = {name: sample.get(name, "x" * 12) for name in template.fields()}
            card = render_card(rule.artifact, Finding(card=key, values=values))
            _assert_valid(card)
            assert card.source.url is not None and card.source.topic.code == rule.id
        for label in rule.artifact.suggestion_labels.values():
            assert 0 < len(label.format(drug="clarithromycin")) <= 80
