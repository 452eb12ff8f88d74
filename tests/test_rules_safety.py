"""The medication-safety, atrial fibrillation and discharge rules on small FHIR resource
dicts and on real synthetic (Synthea) patients.

Rules: opioid-benzodiazepine, warfarin-nsaid, nsaid-duplication, pregnancy-teratogen,
af-anticoagulation, lace-readmission-risk, beers-potentially-inappropriate,
renal-dosing-crcl, drug-allergy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fhir_client.codes import RXNORM, SNOMED
from fhir_client.record import PatientRecord, medication_entry
from hooks.context import (
    EncounterDischargeContext,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, EvaluationContext
from tests.test_rules import (
    AS_OF,
    PID,
    TODAY,
    USER,
    _assert_valid,
    _delete_targets,
    bundle,
    condition,
    creatinine,
    medication,
    patient,
    quantity,
    synthea_record_resources,
)

# Product codes of the synthetic data (see knowledge/data/rxnorm/core.yaml).
OXYCODONE_APAP = "1049221"
HYDROCODONE_APAP = "857005"
CLONAZEPAM = "1153378"
DIAZEPAM = "563026"
WARFARIN = "855332"
NAPROXEN = "849574"
IBUPROFEN = "310965"
ASPIRIN = "243670"
CAPTOPRIL = "308962"  # captopril 100 MG Oral Tablet (VSAC 2.16.840.1.113883.3.526.3.1139)
METHOTREXATE = "105586"
DIPHENHYDRAMINE = "1049630"
MEPERIDINE = "861467"
AMOXICILLIN = "308182"
AMOX_CLAV = "562251"
PENICILLIN_V = "834102"
# Ingredient codes, for drugs that do not occur as products in the synthetic data.
DABIGATRAN, RIVAROXABAN, APIXABAN = "1546356", "1114195", "1364430"
AF, CHF, HYPERTENSION, DIABETES, STROKE, MI = (
    "49436004",
    "88805009",
    "38341003",
    "44054006",
    "230690007",
    "22298006",
)
PREGNANCY = "72892002"


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


def draft(request_id: str, rxnorm: str) -> dict:
    return medication(request_id, rxnorm, status="draft")


def evaluate(
    library: KnowledgeLibrary,
    rule_id: str,
    resources: list[dict],
    drafts: list[dict] = (),  # type: ignore[assignment]
    *,
    hook: str = "order-sign",
    pid: str = PID,
    encounter_id: str | None = None,
) -> list[Advice]:
    """Run one rule as the service would for ``hook``; order-select selects every draft."""
    drafts = [{**d, "subject": {"reference": f"Patient/{pid}"}} for d in drafts]
    if hook == "order-sign":
        context: Any = OrderSignContext(userId=USER, patientId=pid, draftOrders=bundle(drafts))
    elif hook == "order-select":
        context = OrderSelectContext(
            userId=USER,
            patientId=pid,
            draftOrders=bundle(drafts),
            selections=[f"MedicationRequest/{d['id']}" for d in drafts],
        )
    elif hook == "encounter-discharge":
        context = EncounterDischargeContext(userId=USER, patientId=pid, encounterId=encounter_id)
    else:
        context = PatientViewContext(userId=USER, patientId=pid)
    entries = (medication_entry(d) for d in drafts)
    ctx = EvaluationContext(
        hook=hook,
        context=context,
        record=PatientRecord.from_resources(pid, resources),
        as_of=AS_OF,
        draft_orders=[e for e in entries if e is not None],
    )
    advice = library.rule(rule_id).evaluate(ctx)
    for item in advice:
        _assert_valid(item.card)
    return advice


def days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


# --- opioid-benzodiazepine -------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_opioid_order_for_a_patient_on_a_benzodiazepine(library, hook):
    resources = [patient(), medication("benzo", CLONAZEPAM)]
    (advice,) = evaluate(
        library, "opioid-benzodiazepine", resources, [draft("d1", OXYCODONE_APAP)], hook=hook
    )
    assert advice.card.indicator == "warning"
    assert "oxycodone with clonazepam" in advice.card.summary
    assert _delete_targets(advice.card) == ["MedicationRequest/d1"]


def test_benzodiazepine_order_for_a_patient_on_an_opioid(library):
    resources = [patient(), medication("opioid", HYDROCODONE_APAP)]
    (advice,) = evaluate(library, "opioid-benzodiazepine", resources, [draft("d1", DIAZEPAM)])
    assert "hydrocodone with diazepam" in advice.card.summary
    assert advice.inputs["ordered_drug"] == "diazepam"


@pytest.mark.parametrize("status", ["stopped", "completed", "entered-in-error"])
def test_opioid_benzodiazepine_ignores_inactive_medications(library, status):
    resources = [patient(), medication("benzo", CLONAZEPAM, status=status)]
    assert (
        evaluate(library, "opioid-benzodiazepine", resources, [draft("d1", OXYCODONE_APAP)]) == []
    )


def test_opioid_benzodiazepine_between_two_drafts_offers_both_removals(library):
    drafts = [draft("d1", OXYCODONE_APAP), draft("d2", DIAZEPAM)]
    (advice,) = evaluate(library, "opioid-benzodiazepine", [patient()], drafts)
    assert sorted(_delete_targets(advice.card)) == [
        "MedicationRequest/d1",
        "MedicationRequest/d2",
    ]


def test_opioid_benzodiazepine_no_card_without_the_pair(library):
    resources = [patient(), medication("nsaid", NAPROXEN)]
    assert (
        evaluate(library, "opioid-benzodiazepine", resources, [draft("d1", OXYCODONE_APAP)]) == []
    )
    # missing data: no medication list at all
    assert (
        evaluate(library, "opioid-benzodiazepine", [patient()], [draft("d1", OXYCODONE_APAP)]) == []
    )


def test_synthea_opioid_draft_for_a_patient_taking_a_benzodiazepine(library):
    pid, resources = synthea_record_resources("Adalberto_Hartmann_44ec4447")
    advice = evaluate(
        library, "opioid-benzodiazepine", resources, [draft("d1", HYDROCODONE_APAP)], pid=pid
    )
    assert advice and all("hydrocodone" in a.card.summary for a in advice)


# --- warfarin-nsaid and nsaid-duplication ----------------------------------------------------


def test_warfarin_with_an_nsaid_order(library):
    resources = [patient(), medication("w", WARFARIN)]
    (advice,) = evaluate(library, "warfarin-nsaid", resources, [draft("d1", NAPROXEN)])
    assert advice.card.indicator == "warning"
    assert "warfarin with naproxen" in advice.card.summary


def test_warfarin_with_low_dose_aspirin_is_not_this_rule(library):
    resources = [patient(), medication("w", WARFARIN)]
    assert evaluate(library, "warfarin-nsaid", resources, [draft("d1", ASPIRIN)]) == []


def test_nsaid_duplication_across_ingredients_and_the_same_ingredient(library):
    resources = [patient(), medication("n", NAPROXEN)]
    (advice,) = evaluate(library, "nsaid-duplication", resources, [draft("d1", IBUPROFEN)])
    assert "ibuprofen with naproxen" in advice.card.summary
    (same,) = evaluate(library, "nsaid-duplication", resources, [draft("d2", "198014")])
    assert "naproxen with naproxen" in same.card.summary


def test_nsaid_duplication_not_for_a_single_nsaid_or_aspirin(library):
    assert evaluate(library, "nsaid-duplication", [patient()], [draft("d1", IBUPROFEN)]) == []
    resources = [patient(), medication("a", ASPIRIN)]
    assert evaluate(library, "nsaid-duplication", resources, [draft("d1", IBUPROFEN)]) == []


def test_nsaid_duplication_two_drafts_give_one_card(library):
    drafts = [draft("d1", IBUPROFEN), draft("d2", NAPROXEN)]
    assert len(evaluate(library, "nsaid-duplication", [patient()], drafts)) == 1


def test_synthea_nsaid_for_a_patient_on_warfarin(library):
    pid, resources = synthea_record_resources("Clarine_OKeefe_e8c2a98e")
    (advice,) = evaluate(library, "warfarin-nsaid", resources, [draft("d1", IBUPROFEN)], pid=pid)
    assert "warfarin with ibuprofen" in advice.card.summary


# --- pregnancy-teratogen ---------------------------------------------------------------------


def pregnant(onset_days_ago: int = 60) -> list[dict]:
    return [patient("female", 30), condition(PREGNANCY, onset=days_ago(onset_days_ago))]


@pytest.mark.parametrize("product", [WARFARIN, CAPTOPRIL, METHOTREXATE])
def test_teratogen_ordered_in_pregnancy_is_critical(library, product):
    (advice,) = evaluate(library, "pregnancy-teratogen", pregnant(), [draft("d1", product)])
    assert advice.card.indicator == "critical"
    assert _delete_targets(advice.card) == ["MedicationRequest/d1"]


def test_teratogen_no_card_without_current_pregnancy(library):
    assert (
        evaluate(library, "pregnancy-teratogen", [patient("female", 30)], [draft("d1", WARFARIN)])
        == []
    )
    resolved = [patient("female", 30), condition(PREGNANCY, status="resolved", onset=days_ago(60))]
    assert evaluate(library, "pregnancy-teratogen", resolved, [draft("d1", WARFARIN)]) == []


def test_teratogen_pregnancy_window_boundary(library):
    assert evaluate(library, "pregnancy-teratogen", pregnant(294), [draft("d1", WARFARIN)])
    assert evaluate(library, "pregnancy-teratogen", pregnant(295), [draft("d1", WARFARIN)]) == []


def test_teratogen_not_for_safe_drugs(library):
    assert evaluate(library, "pregnancy-teratogen", pregnant(), [draft("d1", AMOXICILLIN)]) == []


def test_synthea_pregnant_patient_gets_a_critical_card_for_warfarin(library):
    pid, resources = synthea_record_resources("Alix_Reilly_b5598b1a")
    record = PatientRecord.from_resources(pid, resources)
    onset = max(
        c.onset for c in record.active_conditions() if (SNOMED, PREGNANCY) in c.codes and c.onset
    )
    advice = evaluate(library, "pregnancy-teratogen", resources, [draft("d1", WARFARIN)], pid=pid)
    expected = 1 if (AS_OF - onset).days <= 294 else 0
    assert len(advice) == expected
    # evaluated during the recorded pregnancy, the card always appears
    ctx_as_of = onset + timedelta(days=30)
    context = OrderSignContext(
        userId=USER, patientId=pid, draftOrders=bundle([draft("d1", WARFARIN)])
    )
    ctx = EvaluationContext(
        hook="order-sign",
        context=context,
        record=record,
        as_of=ctx_as_of,
        draft_orders=[medication_entry(draft("d1", WARFARIN))],  # type: ignore[list-item]
    )
    (card,) = library.rule("pregnancy-teratogen").evaluate(ctx)
    assert card.card.indicator == "critical" and "warfarin" in card.card.summary


# --- af-anticoagulation ----------------------------------------------------------------------


def af_patient(gender: str, age: int, *codes: str, meds: tuple[str, ...] = ()) -> list[dict]:
    resources = [patient(gender, age), condition(AF)]
    resources += [condition(code) for code in codes]
    resources += [medication(f"m{i}", rx) for i, rx in enumerate(meds)]
    return resources


def test_af_anticoagulation_recommended_for_a_man_with_score_2(library):
    (advice,) = evaluate(
        library,
        "af-anticoagulation",
        af_patient("male", 60, HYPERTENSION, DIABETES),
        hook="patient-view",
    )
    assert advice.card.indicator == "warning" and "CHA2DS2-VASc 2" in advice.card.summary
    assert "hypertension (+1)" in advice.card.detail


@pytest.mark.parametrize(
    ("gender", "age", "codes", "expected"),
    [
        ("female", 60, (HYPERTENSION, DIABETES), "warning"),  # 1 (sex) + 2 = 3
        ("male", 60, (HYPERTENSION,), "info"),  # score 1, class 2a
        ("female", 60, (), None),  # sex alone: score 1, below the female thresholds
        ("male", 60, (), None),
        ("female", 75, (), "warning"),  # 2 (age) + 1 (sex) = 3
        ("male", 65, (), "info"),  # boundary of the age band
        ("male", 60, (STROKE,), "warning"),
        ("male", 60, (MI,), "info"),
        ("male", 60, (CHF,), "info"),
    ],
)
def test_af_anticoagulation_thresholds_by_sex(library, gender, age, codes, expected):
    advice = evaluate(
        library, "af-anticoagulation", af_patient(gender, age, *codes), hook="patient-view"
    )
    assert [a.card.indicator for a in advice] == ([expected] if expected else [])


@pytest.mark.parametrize("anticoagulant", [WARFARIN, APIXABAN, RIVAROXABAN, DABIGATRAN])
def test_af_anticoagulation_no_card_when_anticoagulated(library, anticoagulant):
    resources = af_patient("male", 80, STROKE, meds=(anticoagulant,))
    assert evaluate(library, "af-anticoagulation", resources, hook="patient-view") == []


def test_af_anticoagulation_missing_data(library):
    no_af = [patient("male", 80), condition(STROKE)]
    assert evaluate(library, "af-anticoagulation", no_af, hook="patient-view") == []
    unknown_sex = [patient("unknown", 80), condition(AF)]
    assert evaluate(library, "af-anticoagulation", unknown_sex, hook="patient-view") == []


def test_synthea_af_patient_on_warfarin_and_without_it(library):
    pid, resources = synthea_record_resources("Clarine_OKeefe_e8c2a98e")
    assert evaluate(library, "af-anticoagulation", resources, hook="patient-view", pid=pid) == []
    bundle_ = resources[0]
    without_warfarin = {
        **bundle_,
        "entry": [
            e
            for e in bundle_["entry"]
            if not (
                e["resource"]["resourceType"] == "MedicationRequest"
                and e["resource"]
                .get("medicationCodeableConcept", {})
                .get("coding", [{}])[0]
                .get("code")
                == WARFARIN
            )
        ],
    }
    (advice,) = evaluate(
        library, "af-anticoagulation", [without_warfarin], hook="patient-view", pid=pid
    )
    assert advice.card.indicator in ("warning", "info")
    assert int(advice.inputs["score"]) >= 1


# --- lace-readmission-risk -------------------------------------------------------------------


def encounter(enc_id: str, klass: str, start_days_ago: float, end_days_ago: float | None) -> dict:
    start = AS_OF - timedelta(days=start_days_ago)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "subject": {"reference": f"Patient/{PID}"},
        "period": {"start": start.isoformat()},
    }
    if end_days_ago is not None:
        resource["period"]["end"] = (AS_OF - timedelta(days=end_days_ago)).isoformat()
    return resource


def lace_patient(
    stay_days: int, *, via_ed: bool, prior_ed: int, codes: tuple[str, ...]
) -> list[dict]:
    resources = [patient("male", 70), encounter("stay", "IMP", stay_days, 0)]
    if via_ed:
        resources.append(encounter("ed-route", "EMER", stay_days + 0.2, stay_days + 0.1))
    resources += [encounter(f"ed{i}", "EMER", 30 + 20 * i, 30 + 20 * i) for i in range(prior_ed)]
    resources += [condition(code) for code in codes]
    return resources


def lace(library, resources):
    return evaluate(
        library, "lace-readmission-risk", resources, hook="encounter-discharge", encounter_id="stay"
    )


def test_lace_high_risk_card_shows_each_component(library):
    # L: 5 days -> 4; A: via ED -> 3; C: CHF (2) + stroke (1) -> 3; E: 2 prior visits -> 2 = 12.
    (advice,) = lace(library, lace_patient(5, via_ed=True, prior_ed=2, codes=(CHF, STROKE)))
    assert advice.card.indicator == "warning" and "LACE index 12" in advice.card.summary
    assert advice.inputs["ed_visits"] == "2" and advice.inputs["acute"] == "yes"


def test_lace_boundary_nine_and_ten(library):
    # 4 (5 days) + 3 (acute) + 2 (CHF) + 0 = 9: no card; one prior ED visit makes 10.
    assert lace(library, lace_patient(5, via_ed=True, prior_ed=0, codes=(CHF,))) == []
    (advice,) = lace(library, lace_patient(5, via_ed=True, prior_ed=1, codes=(CHF,)))
    assert "LACE index 10" in advice.card.summary


def test_lace_elective_short_stay_is_low_risk(library):
    assert lace(library, lace_patient(1, via_ed=False, prior_ed=0, codes=())) == []


def test_lace_ed_visits_older_than_six_months_do_not_count(library):
    resources = lace_patient(5, via_ed=True, prior_ed=0, codes=(CHF,))
    resources.append(encounter("old-ed", "EMER", 200, 200))
    assert lace(library, resources) == []


def test_lace_missing_encounter_gives_no_card(library):
    resources = [patient("male", 70)]
    assert lace(library, resources) == []


def test_synthea_lace_high_risk_discharge(library):
    pid, resources = synthea_record_resources("Buddy_MacGyver_c96ab841")
    (advice,) = evaluate(
        library,
        "lace-readmission-risk",
        resources,
        hook="encounter-discharge",
        pid=pid,
        encounter_id="0abace92-56a1-4617-ada8-8983c39c8d15",
    )
    assert advice.inputs["acute"] == "yes" and int(advice.inputs["score"]) >= 10


# --- beers-potentially-inappropriate ---------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "card_word"),
    [(DIPHENHYDRAMINE, "anticholinergic"), (DIAZEPAM, "falls"), (MEPERIDINE, "meperidine")],
)
def test_beers_categories_for_a_70_year_old(library, product, card_word):
    (advice,) = evaluate(
        library, "beers-potentially-inappropriate", [patient("female", 70)], [draft("d1", product)]
    )
    assert card_word in advice.card.summary.lower() and advice.card.indicator == "warning"


def test_beers_age_boundary_and_missing_birth_date(library):
    assert (
        evaluate(
            library,
            "beers-potentially-inappropriate",
            [patient("female", 64)],
            [draft("d1", DIAZEPAM)],
        )
        == []
    )
    assert evaluate(
        library, "beers-potentially-inappropriate", [patient("female", 65)], [draft("d1", DIAZEPAM)]
    )
    no_birth = {k: v for k, v in patient("female", 70).items() if k != "birthDate"}
    assert (
        evaluate(library, "beers-potentially-inappropriate", [no_birth], [draft("d1", DIAZEPAM)])
        == []
    )


def test_beers_combination_product_with_an_antihistamine(library):
    (advice,) = evaluate(
        library, "beers-potentially-inappropriate", [patient("male", 80)], [draft("d1", "1043400")]
    )
    assert advice.inputs["drug"] == "doxylamine"


def test_synthea_older_patient_ordered_diphenhydramine(library):
    pid, resources = synthea_record_resources("Clarine_OKeefe_e8c2a98e")
    record = PatientRecord.from_resources(pid, resources)
    advice = evaluate(
        library,
        "beers-potentially-inappropriate",
        resources,
        [draft("d1", DIPHENHYDRAMINE)],
        pid=pid,
    )
    assert len(advice) == (1 if (record.age(TODAY) or 0) >= 65 else 0)
    assert record.age(TODAY) and record.age(TODAY) >= 65


# --- renal-dosing-crcl -----------------------------------------------------------------------


def renal_patient(
    creatinine_mg_dl: float, weight_kg: float = 70, *, age: int = 80, gender: str = "male"
) -> list[dict]:
    return [
        patient(gender, age),
        creatinine(creatinine_mg_dl),
        quantity("weight", "29463-7", weight_kg, "kg"),
    ]


def _creatinine_for_crcl(crcl: float, *, age: int = 79, weight: float = 70) -> float:
    """The creatinine giving ``crcl`` for renal_patient(): 79 on the day of the result."""
    return (140 - age) * weight / (72 * crcl)


def test_nsaid_avoided_below_crcl_30(library):
    (advice,) = evaluate(
        library,
        "renal-dosing-crcl",
        renal_patient(_creatinine_for_crcl(25)),
        [draft("d1", NAPROXEN)],
    )
    assert (
        advice.card.indicator == "warning"
        and "creatinine clearance 25 mL/min" in advice.card.summary
    )
    assert _delete_targets(advice.card) == ["MedicationRequest/d1"]


def test_nsaid_boundary_at_crcl_30(library):
    assert (
        evaluate(
            library,
            "renal-dosing-crcl",
            renal_patient(_creatinine_for_crcl(30)),
            [draft("d1", NAPROXEN)],
        )
        == []
    )
    assert evaluate(
        library,
        "renal-dosing-crcl",
        renal_patient(_creatinine_for_crcl(29)),
        [draft("d1", NAPROXEN)],
    )


@pytest.mark.parametrize(
    ("ingredient", "crcl", "card"),
    [
        (DABIGATRAN, 40, None),
        (DABIGATRAN, 30, "adjust"),
        (DABIGATRAN, 14, "avoid"),
        (RIVAROXABAN, 51, None),
        (RIVAROXABAN, 50, "adjust"),
        (RIVAROXABAN, 10, "adjust"),
    ],
)
def test_doac_label_dosing_bands(library, ingredient, crcl, card):
    advice = evaluate(
        library,
        "renal-dosing-crcl",
        renal_patient(_creatinine_for_crcl(crcl)),
        [draft("d1", ingredient)],
    )
    if card is None:
        assert advice == []
    else:
        (only,) = advice
        assert only.card.summary.lower().startswith("avoid" if card == "avoid" else "check")


def test_renal_dosing_missing_weight_or_creatinine(library):
    no_weight = [patient("male", 80), creatinine(3.0)]
    assert evaluate(library, "renal-dosing-crcl", no_weight, [draft("d1", NAPROXEN)]) == []
    old = [
        patient("male", 80),
        creatinine(3.0, when=days_ago(400)),
        quantity("weight", "29463-7", 70, "kg"),
    ]
    assert evaluate(library, "renal-dosing-crcl", old, [draft("d1", NAPROXEN)]) == []


def test_synthea_patient_with_low_clearance_ordered_naproxen(library):
    pid, resources = synthea_record_resources("Catina_Sawayn_282fcdae")
    (advice,) = evaluate(library, "renal-dosing-crcl", resources, [draft("d1", NAPROXEN)], pid=pid)
    assert int(advice.inputs["crcl"]) < 30


# --- drug-allergy ----------------------------------------------------------------------------


def allergy(code: str, system: str = RXNORM, *, status: str = "active") -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "id": f"allergy-{code}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": status,
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "patient": {"reference": f"Patient/{PID}"},
    }


def test_allergy_to_the_ordered_ingredient_is_critical(library):
    resources = [patient(), allergy("723")]  # amoxicillin
    (advice,) = evaluate(
        library, "drug-allergy", resources, [draft("d1", AMOX_CLAV)], hook="order-select"
    )
    assert advice.card.indicator == "critical" and "amoxicillin" in advice.card.summary


def test_allergy_within_the_penicillin_class_is_a_warning(library):
    resources = [patient(), allergy("7984")]  # penicillin V
    (advice,) = evaluate(library, "drug-allergy", resources, [draft("d1", AMOXICILLIN)])
    assert advice.card.indicator == "warning" and "penicillin" in advice.card.summary


def test_snomed_penicillin_allergy_finding_matches_the_class(library):
    resources = [patient(), allergy("91936005", SNOMED)]
    (advice,) = evaluate(library, "drug-allergy", resources, [draft("d1", PENICILLIN_V)])
    assert advice.card.indicator == "warning"


def test_allergy_no_card_for_unrelated_drugs_or_inactive_allergies(library):
    assert (
        evaluate(library, "drug-allergy", [patient(), allergy("723")], [draft("d1", NAPROXEN)])
        == []
    )
    inactive = [patient(), allergy("723", status="resolved")]
    assert evaluate(library, "drug-allergy", inactive, [draft("d1", AMOXICILLIN)]) == []
    # beta-lactamase inhibitors are not penicillins: no class match on clavulanate alone
    assert evaluate(library, "drug-allergy", [patient()], [draft("d1", AMOXICILLIN)]) == []


def test_synthea_food_and_environmental_allergies_do_not_block_antibiotics(library):
    pid, resources = synthea_record_resources("Alexis_Toy_68cd1181")
    assert PatientRecord.from_resources(pid, resources).active_allergies()
    for product in (AMOXICILLIN, PENICILLIN_V, NAPROXEN):
        assert evaluate(library, "drug-allergy", resources, [draft("d1", product)], pid=pid) == []
