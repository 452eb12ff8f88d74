from datetime import UTC, datetime, timedelta

import pytest

from fhir_client.codes import LOINC, RXNORM, SNOMED
from fhir_client.record import PatientRecord, medication_entry
from tests.shared_data import load_bundle, patient_files, patient_id

SYSTOLIC = (LOINC, "8480-6")
CREATININE = [(LOINC, "2160-0"), (LOINC, "38483-4")]


def _obs(obs_id, code, value, unit, when, patient="p1", status="final"):
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


def test_latest_value_converts_units_and_prefers_newest():
    record = PatientRecord.from_resources(
        "p1",
        [
            _obs("a", "2160-0", 1.0, "mg/dL", "2020-01-01"),
            _obs("b", "38483-4", 176.8, "umol/L", "2021-01-01"),
        ],
    )
    latest = record.latest_value(CREATININE, "mg/dL", molar_mass=113.12)
    assert latest is not None
    assert latest.reference == "Observation/b"
    assert latest.value == pytest.approx(2.0, abs=0.01)


def test_latest_value_respects_as_of_and_max_age():
    record = PatientRecord.from_resources(
        "p1",
        [
            _obs("a", "2160-0", 1.0, "mg/dL", "2020-01-01"),
            _obs("b", "2160-0", 2.0, "mg/dL", "2022-01-01"),
        ],
    )
    as_of = datetime(2021, 1, 1, tzinfo=UTC)
    assert record.latest_value(CREATININE, "mg/dL", as_of=as_of).reference == "Observation/a"
    assert (
        record.latest_value(CREATININE, "mg/dL", as_of=as_of, max_age=timedelta(days=100)) is None
    )


def test_unconvertible_and_invalid_values_are_passed_over():
    record = PatientRecord.from_resources(
        "p1",
        [
            _obs("old", "2160-0", 1.1, "mg/dL", "2019-01-01"),
            _obs("odd", "2160-0", 5.0, "furlongs", "2020-01-01"),
            _obs("err", "2160-0", 9.9, "mg/dL", "2021-01-01", status="entered-in-error"),
        ],
    )
    assert record.latest_value(CREATININE, "mg/dL").reference == "Observation/old"


def test_components_are_indexed_under_their_own_code():
    panel = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "55284-4"}]},
        "subject": {"reference": "urn:uuid:p1"},
        "effectiveDateTime": "2021-03-01T10:00:00+01:00",
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 141, "unit": "mm[Hg]"},
            }
        ],
    }
    record = PatientRecord.from_resources(
        "p1", [{"resourceType": "Bundle", "entry": [{"resource": panel}]}]
    )
    assert record.latest_value([SYSTOLIC], "mm[Hg]").value == 141


def test_foreign_and_malformed_resources_are_dropped_and_counted():
    record = PatientRecord.from_resources(
        "p1",
        [
            {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-05-02"},
            {"resourceType": "Patient", "id": "someone-else", "gender": "male"},
            _obs("theirs", "2160-0", 9.0, "mg/dL", "2021-01-01", patient="someone-else"),
            "not a resource",
            {"no": "resourceType"},
            {
                "resourceType": "Condition",
                "subject": {"reference": "Patient/p1"},
                "code": "not a concept",
            },
        ],
    )
    assert record.gender == "female"
    assert record.foreign == 2
    assert record.skipped == 2
    assert record.latest_value(CREATININE, "mg/dL") is None
    assert record.age(datetime(2021, 5, 1).date()) == 60
    assert record.age(datetime(2021, 5, 2).date()) == 61


def test_condition_status():
    def condition(cid, status=None, verification=None):
        resource = {
            "resourceType": "Condition",
            "id": cid,
            "code": {"coding": [{"system": SNOMED, "code": cid}]},
            "subject": {"reference": "Patient/p1"},
        }
        if status:
            resource["clinicalStatus"] = {"coding": [{"code": status}]}
        if verification:
            resource["verificationStatus"] = {"coding": [{"code": verification}]}
        return resource

    record = PatientRecord.from_resources(
        "p1",
        [
            condition("1", "active"),
            condition("2", "resolved"),
            condition("3"),
            condition("4", "active", "refuted"),
            condition("5", "recurrence"),
        ],
    )
    active = {code for c in record.active_conditions() for _, code in c.codes}
    assert active == {"1", "3", "5"}
    assert record.has_active_condition([(SNOMED, "5")])
    assert not record.has_active_condition([(SNOMED, "2")])


def test_medication_reference_to_contained_and_recorded_medications():
    contained = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"coding": [{"system": RXNORM, "code": "36567"}]},
            }
        ],
        "medicationReference": {"reference": "#med"},
    }
    assert medication_entry(contained).codes == frozenset({(RXNORM, "36567")})
    record = PatientRecord.from_resources(
        "p1",
        [
            {
                "resourceType": "Medication",
                "id": "x",
                "code": {"coding": [{"system": RXNORM, "code": "6809"}]},
            },
            {
                "resourceType": "MedicationRequest",
                "id": "m2",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "medicationReference": {"reference": "Medication/x"},
            },
            {
                "resourceType": "MedicationRequest",
                "id": "m3",
                "status": "stopped",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "36567"}]},
            },
        ],
    )
    assert [m.reference for m in record.active_medications()] == ["MedicationRequest/m2"]
    assert record.active_medications()[0].codes == frozenset({(RXNORM, "6809")})


def test_every_synthetic_patient_builds_without_skips():
    """Real Synthea records (urn:uuid references, old LOINC codes, odd displays) index cleanly."""
    files = patient_files()
    assert len(files) >= 100  # the full set (528) or the repository's sample
    with_systolic = 0
    for path in files:
        bundle = load_bundle(path)
        record = PatientRecord.from_resources(patient_id(bundle), [bundle])
        assert record.patient is not None
        assert record.skipped == 0 and record.foreign == 0
        with_systolic += record.latest_value([SYSTOLIC], "mm[Hg]") is not None
    # Adults have yearly blood pressure panels (55284-4 with component 8480-6) in this set.
    assert with_systolic > 0.75 * len(files)


def test_events_allergies_and_encounters_are_indexed():
    from fhir_client.codes import CVX

    resources = [
        {
            "resourceType": "Immunization",
            "id": "i1",
            "status": "completed",
            "patient": {"reference": "Patient/p1"},
            "vaccineCode": {"coding": [{"system": CVX, "code": "140"}]},
            "occurrenceDateTime": "2020-10-01",
        },
        {
            "resourceType": "Immunization",
            "id": "i2",
            "status": "not-done",
            "patient": {"reference": "Patient/p1"},
            "vaccineCode": {"coding": [{"system": CVX, "code": "140"}]},
            "occurrenceDateTime": "2021-10-01",
        },
        {
            "resourceType": "Procedure",
            "id": "x1",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": SNOMED, "code": "73761001"}]},
            "performedPeriod": {"start": "2019-01-01T10:00:00Z", "end": "2019-01-01T11:00:00Z"},
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "patient": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "category": ["medication"],
            "criticality": "high",
            "code": {"coding": [{"system": RXNORM, "code": "7980"}]},
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "a2",
            "patient": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"coding": [{"system": RXNORM, "code": "1"}]},
        },
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "EMER"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2021-01-01T00:00:00Z", "end": "2021-01-02T00:00:00Z"},
        },
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {"code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2021-02-01T00:00:00Z"},
        },
    ]
    record = PatientRecord.from_resources("p1", resources)
    assert [i.reference for i in record.immunizations([(CVX, "140")])] == ["Immunization/i1"]
    assert record.procedures()[0].when == datetime(2019, 1, 1, 11, tzinfo=UTC)
    assert [(a.reference, a.criticality) for a in record.active_allergies()] == [
        ("AllergyIntolerance/a1", "high")
    ]
    assert [e.class_code for e in record.encounters()] == ["IMP", "EMER"]
    assert [e.class_code for e in record.encounters(as_of=datetime(2021, 1, 15, tzinfo=UTC))] == [
        "EMER"
    ]
