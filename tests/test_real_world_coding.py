"""Patients coded as real EHRs code them, not as the synthetic sample records do.

ICD-10-CM problem lists (with and without the dot, systems named by OID), LOINC codes other
than the sample data's, product RxCUIs from published value sets, SI units, FHIR servers that
fail for one query, unreadable values. Each case names the card a clinician should get.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli
from fhir_client.codes import ICD9CM, ICD10CM, LOINC, RXNORM, normalize_system
from fhir_client.record import codes_of
from hooks.requests import HookRequest
from knowledge.coverage import coverage
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.terminology import ValueSetFile
from point_of_care.catalogue import build_services
from point_of_care.invocation import DATA_AVAILABILITY_ID, run_service
from tests.test_rules import PID, lipids, patient, patient_view, quantity, statin_patient
from tests.test_rules_safety import (
    AS_OF,
    _creatinine_for_crcl,
    af_patient,
    days_ago,
    draft,
    evaluate,
    medication,
    renal_patient,
)


@pytest.fixture(scope="module")
def library() -> KnowledgeLibrary:
    return load_library()


def icd10(code: str, system: str = ICD10CM) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"icd-{code}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "onsetDateTime": days_ago(400),
    }


# --- terminology ------------------------------------------------------------------------------


def test_icd10cm_codes_are_normalised_and_fall_under_their_categories():
    codes = codes_of({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.90", "code": "i5022"}]})
    assert (ICD10CM, "I50.22") in codes
    assert {(ICD10CM, "I50"), (ICD10CM, "I50.2")} <= codes


@pytest.mark.parametrize(
    ("af", "htn", "system"),
    [
        ("I48.0", "I10", ICD10CM),
        ("I480", "I10", ICD10CM),  # sent without the dot
        ("I48.0", "I10", "urn:oid:2.16.840.1.113883.6.90"),  # system as its OID
    ],
)
def test_af_and_hypertension_in_icd10cm_give_cha2ds2_vasc_3(library, af, htn, system):
    resources = [*af_patient("female", 70), icd10(af, system), icd10(htn, system)]
    (advice,) = evaluate(library, "af-anticoagulation", resources, hook="patient-view")
    assert advice.inputs["score"] == "3"
    assert "recommended" in advice.card.summary.lower() or advice.card.indicator == "warning"


def test_af_and_hypertension_in_other_snomed_codes_give_cha2ds2_vasc_3(library):
    # 440059007 persistent atrial fibrillation, 59621000 essential hypertension.
    resources = [*af_patient("female", 70, "440059007", "59621000")]
    (advice,) = evaluate(library, "af-anticoagulation", resources, hook="patient-view")
    assert advice.inputs["score"] == "3"


def test_calculated_ldl_gives_the_statin_card(library):
    panel = [
        quantity("ldl-calc", "13457-7", 160, "mg/dL") if r["id"] == "ldl" else r
        for r in lipids(240, 40, 160)
    ]
    (advice,) = patient_view(library, statin_patient(lipids=panel))
    assert advice.rule_id == "statin-primary-prevention"


def test_lipids_in_mmol_per_litre_give_the_same_risk(library):
    (us,) = patient_view(library, statin_patient())
    si = [
        quantity("tc", "14647-2", 240 / 38.67, "mmol/L"),
        quantity("hdl", "14646-4", 40 / 38.67, "mmol/L"),
        quantity("ldl", "22748-8", 160 / 38.67, "mmol/L"),
    ]
    (advice,) = patient_view(library, statin_patient(lipids=si))
    assert advice.inputs["risk_percent"] == us.inputs["risk_percent"]


def test_every_value_set_records_where_its_codes_come_from(library):
    for value_set in library.knowledge.value_sets.values():
        assert value_set.includes, value_set.id
        for include in value_set.includes:
            assert include.published is not None or include.local is not None
        assert "ynthea records" not in value_set.description


def test_a_value_set_without_a_source_is_refused():
    with pytest.raises(ValueError):
        ValueSetFile.model_validate(
            {
                "id": "x",
                "title": "x",
                "purpose": "a value set with no source",
                "includes": [{"codes": [{"system": LOINC, "code": "1-8"}]}],
            }
        )


# --- medications by product code ---------------------------------------------------------------

DABIGATRAN_150_CAPSULE = "1037045"  # dabigatran etexilate 150 MG Oral Capsule (VSAC 1248.22)


def test_dabigatran_product_code_gets_the_renal_card(library):
    resources = renal_patient(_creatinine_for_crcl(20))
    (advice,) = evaluate(
        library, "renal-dosing-crcl", resources, [draft("d1", DABIGATRAN_150_CAPSULE)]
    )
    assert "dabigatran" in advice.card.summary


def test_edoxaban_above_crcl_95_is_flagged(library):
    resources = renal_patient(_creatinine_for_crcl(120))
    (advice,) = evaluate(library, "renal-dosing-crcl", resources, [draft("d1", "1599538")])
    assert advice.card.indicator == "warning"
    assert "above 95" in advice.card.summary


SIMVASTATIN_20 = "312961"


def _code_in(library: KnowledgeLibrary, value_set_id: str, word: str) -> str:
    value_set = library.knowledge.value_sets[value_set_id]
    return next(
        code
        for system, code in sorted(value_set.codes)
        if system == RXNORM and word in (value_set.display((system, code)) or "").lower()
    )


@pytest.mark.parametrize(
    "drug",
    ["voriconazole", "nefazodone", "ritonavir", "cyclosporine", "erythromycin", "cobicistat"],
)
def test_simvastatin_with_a_label_contraindicated_drug_is_critical(library, drug):
    code = _code_in(library, "statin-label-contraindicated-drugs", drug)
    (advice,) = evaluate(
        library,
        "ddi-statin-cyp3a4",
        [patient(), medication("m1", code)],
        [draft("d1", SIMVASTATIN_20)],
    )
    assert advice.card.indicator == "critical"


def _named_product(request_id: str, display: str) -> dict:
    """An active order whose RxNorm product code this library does not know, named as RxNorm
    names its clinical drugs (the codes are deliberately not real RxCUIs)."""
    resource = medication(request_id, "990000001")
    resource["medicationCodeableConcept"]["coding"][0]["display"] = display
    return resource


@pytest.mark.parametrize(
    ("display", "drug"),
    [
        ("gemfibrozil 600 MG Oral Tablet", "gemfibrozil"),
        ("danazol 200 MG Oral Capsule", "danazol"),
        ("posaconazole 100 MG Delayed Release Oral Tablet", "posaconazole"),
    ],
)
def test_label_contraindicated_drugs_without_a_code_are_matched_by_name(library, display, drug):
    (advice,) = evaluate(
        library,
        "ddi-statin-cyp3a4",
        [patient(), _named_product("m1", display)],
        [draft("d1", SIMVASTATIN_20)],
    )
    assert advice.card.indicator == "critical"
    assert advice.card.summary.startswith(f"Contraindicated: simvastatin with {drug}")
    (advice,) = patient_view(library, statin_patient(meds=[_named_product("m1", display)]))
    assert not advice.card.suggestions


def test_a_name_inside_another_word_is_not_a_match(library):
    # "danazol" must be a word of the name, not a part of one.
    resources = [patient(), _named_product("m1", "xdanazolx 1 MG Oral Tablet")]
    assert evaluate(library, "ddi-statin-cyp3a4", resources, [draft("d1", SIMVASTATIN_20)]) == []


@pytest.mark.parametrize(
    ("value_set", "drug"),
    [
        ("statin-label-contraindicated-drugs", "ritonavir"),
        ("statin-label-contraindicated-drugs", "nefazodone"),
        ("simvastatin-10mg-dose-cap-drugs", "diltiazem"),
        ("simvastatin-10mg-dose-cap-drugs", "verapamil"),
    ],
)
def test_the_statin_card_does_not_offer_simvastatin_with_precluding_drugs(library, value_set, drug):
    code = _code_in(library, value_set, drug)
    meds = [medication("hctz", "316049"), medication("other", code)]
    (advice,) = patient_view(library, statin_patient(meds=meds))
    assert not advice.card.suggestions


def test_unknown_product_codes_are_reported(library):
    assert library.knowledge.medications.unknown_codes(
        [[(RXNORM, "999999999")], [(RXNORM, DABIGATRAN_150_CAPSULE)]]
    ) == ("999999999",)


# --- "could not fetch" is not "not recorded"; unreadable values reach the card --------------------


def _patient_view(prefetch: dict[str, Any], transport: httpx.MockTransport | None) -> list[Any]:
    services = build_services(load_library())
    request = HookRequest.model_validate(
        {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": PID},
            "fhirServer": "https://ehr.example.org/fhir" if transport else None,
            "prefetch": prefetch,
        }
    )
    result = asyncio.run(
        run_service(services["lhs-patient-view"], request, as_of=AS_OF, fhir_transport=transport)
    )
    return result.advice


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def test_hba1c_is_not_said_to_be_missing_when_observations_could_not_be_fetched():
    def fhir_server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Observation"):
            raise httpx.ReadTimeout("too slow", request=request)
        return httpx.Response(200, json=_searchset())

    prefetch = {
        "patient": patient("female", 60),
        "conditions": _searchset(icd10("E11.9")),
        "medications": _searchset(),
        "immunizations": _searchset(),
        "procedures": _searchset(),
    }
    advice = _patient_view(prefetch, httpx.MockTransport(fhir_server))
    assert not any("No HbA1c" in a.card.summary for a in advice)
    (availability,) = [a for a in advice if a.rule_id == DATA_AVAILABILITY_ID]
    assert "observations" in availability.inputs["unavailable"]
    assert "diabetes-hba1c-monitoring" in availability.inputs["unchecked"]

    # With the Observation query answered (and empty), the absence is real: the card shows.
    prefetch["observations"] = _searchset()
    advice = _patient_view(prefetch, None)
    assert any("No HbA1c" in a.card.summary for a in advice)


def test_an_unreadable_birth_date_is_said_on_a_card():
    prefetch = {
        "patient": {**patient("female", 60), "birthDate": "19x0-01-01"},
        "conditions": _searchset(icd10("E11.9")),
        "medications": _searchset(),
        "immunizations": _searchset(),
        "procedures": _searchset(),
        "observations": _searchset(),
    }
    advice = _patient_view(prefetch, None)
    (availability,) = [a for a in advice if a.rule_id == DATA_AVAILABILITY_ID]
    assert "birth date" in availability.card.detail
    assert "19x0-01-01" in availability.card.detail


def test_a_creatinine_reported_as_a_bound_is_not_read_as_a_value(library):
    resources = renal_patient(1.0)
    resources[1] = {
        **resources[1],
        "valueQuantity": {"value": 10.0, "comparator": ">", "unit": "mg/dL"},
    }
    from fhir_client.record import PatientRecord

    record = PatientRecord.from_resources(PID, resources)
    codes = library.knowledge.value_sets["serum-creatinine"].codes
    assert record.latest_value(codes, "mg/dL", as_of=AS_OF) is None
    (issue,) = record.issues
    assert ">10 mg/dL" in issue.problem


def test_refresh_takes_in_a_new_published_expansion_and_keeps_local_parts(tmp_path):
    import json

    from knowledge.terminology import (
        ExcludedCode,
        LocalSource,
        ValueSetCode,
        ValueSetInclude,
        read_value_set_file,
    )
    from knowledge.value_set_import import dump_value_set_file, published_include, refresh

    def expansion(version: str, *codes: str) -> dict[str, Any]:
        return {
            "resourceType": "ValueSet",
            "id": "1.2.3",
            "url": "http://cts.nlm.nih.gov/fhir/ValueSet/1.2.3",
            "version": version,
            "title": "Test set",
            "meta": {"source": "https://example.org/valueset-1.2.3.json"},
            "expansion": {
                "timestamp": version,
                "total": len(codes) + 1,
                "contains": [
                    *({"system": LOINC, "code": c, "display": c} for c in codes),
                    {"system": "http://www.ama-assn.org/go/cpt", "code": "99999"},
                ],
            },
        }

    goal = ExcludedCode(system=LOINC, code="3-3", reason="a goal, not a measured result")
    local = ValueSetInclude(
        local=LocalSource(kind="extension", method="a code the published set lacks, kept locally"),
        codes=[ValueSetCode(system=LOINC, code="9-9")],
    )
    published = published_include(expansion("1", "1-1", "3-3"), [goal])
    assert [c.code for c in published.codes] == ["1-1"]  # CPT and the excluded code left out
    folder, terminology = tmp_path / "value_sets", tmp_path / "terminology"
    folder.mkdir()
    terminology.mkdir()
    path = folder / "test-set.yaml"
    path.write_text(
        dump_value_set_file(
            ValueSetFile(
                id="test-set", title="t", purpose="a test value set", includes=[published, local]
            )
        )
    )
    (terminology / "1.2.3.json").write_text(json.dumps(expansion("2", "1-1", "2-2", "3-3")))

    (change,) = refresh(folder, terminology)
    assert (change.old_version, change.new_version, change.added, change.removed) == (
        "1",
        "2",
        1,
        0,
    )
    data = read_value_set_file(path)
    assert [c.code for c in data.includes[0].codes] == ["1-1", "2-2"]
    assert data.includes[0].excluded == [goal]
    assert data.includes[1] == local
    assert refresh(folder, terminology) == []


def test_the_service_counts_and_logs_unknown_medication_codes(tmp_path, caplog):
    import logging

    from fastapi.testclient import TestClient

    from point_of_care.examples import EXAMPLES
    from tests.service_app import app_factory

    request = EXAMPLES["lhs-order-sign"](AS_OF.date())
    request["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                **draft("unknown-1", "999999999"),
                "subject": {"reference": f"Patient/{request['context']['patientId']}"},
            }
        }
    )
    with TestClient(app_factory(tmp_path)()) as client, caplog.at_level(logging.INFO):
        assert client.post("/cds-services/lhs-order-sign", json=request).status_code == 200
        metrics = client.get("/metrics").text
    assert 'lhs_unknown_medication_codes_total{service="lhs-order-sign"} 1.0' in metrics
    assert any("999999999" in r.getMessage() for r in caplog.records)


def test_coverage_lists_every_value_set_of_every_rule_with_its_code_systems(library):
    rows = coverage(library)
    used = {(rule.id, vs) for rule in library.rules for vs in rule.artifact.value_sets}
    assert {(row.rule_id, row.value_set_id) for row in rows} == used
    by_key = {(row.rule_id, row.value_set_id): row for row in rows}
    af = by_key["af-anticoagulation", "atrial-fibrillation-conditions"]
    assert af.codes_by_system["ICD-10-CM"] > 0 and af.codes_by_system["SNOMED CT"] > 0
    assert af.published == ("2.16.840.1.113883.3.117.1.7.1.202",)
    anticoagulants = by_key["af-anticoagulation", "oral-anticoagulants"]
    assert anticoagulants.rxnorm_products >= 1
    assert all(row.published or row.local_parts for row in rows)


def test_coverage_cli_prints_a_table_and_json():
    table = CliRunner().invoke(cli, ["knowledge", "coverage"])
    assert table.exit_code == 0, table.output
    assert "af-anticoagulation" in table.output and "ICD-10-CM" in table.output
    printed = CliRunner().invoke(cli, ["knowledge", "coverage", "--json"])
    rows = json.loads(printed.output)
    assert {"rule_id", "value_set_id", "codes_by_system", "rxnorm_products"} <= rows[0].keys()


def test_icd9cm_as_vsac_names_it_matches_the_fhir_system():
    assert normalize_system("http://terminology.hl7.org/CodeSystem/icd9cm") == ICD9CM
