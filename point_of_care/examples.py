"""Example hook requests for trying the service (``lhs example``), dated relative to a day.

Each is a complete CDS Hooks request with prefetch for a fictitious patient built so
that one rule fires; the dates are relative so that the examples never age out of a
rule's lookback window.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fhir_client.codes import LOINC, RXNORM, SNOMED

_USER = "Practitioner/example"


def _patient(patient_id: str, gender: str, birth: date) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "gender": gender,
        "birthDate": birth.isoformat(),
    }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _quantity(
    obs_id: str, patient_id: str, code: str, display: str, value: float, unit: str, day: date
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": day.isoformat(),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def _medication(
    request_id: str, patient_id: str, status: str, rxnorm: str, display: str
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": request_id,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": display}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def _years_before(day: date, years: int) -> date:
    return (
        day.replace(year=day.year - years)
        if (day.month, day.day) != (2, 29)
        else day - timedelta(days=365 * years)
    )


def patient_view(today: date) -> dict[str, Any]:
    """A 60-year-old man who smokes, with treated hypertension and high cholesterol, on no statin."""
    pid = "example-statin"
    measured = today - timedelta(days=60)
    blood_pressure = {
        "resourceType": "Observation",
        "id": "bp-1",
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]
        },
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": measured.isoformat(),
        "component": [
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
                    ]
                },
                "valueQuantity": {
                    "value": 150,
                    "unit": "mm[Hg]",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
                    ]
                },
                "valueQuantity": {
                    "value": 92,
                    "unit": "mm[Hg]",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }
    smoking = {
        "resourceType": "Observation",
        "id": "smoking-1",
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]
        },
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": measured.isoformat(),
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": "449868002", "display": "Smokes tobacco daily"}]
        },
    }
    hypertension = {
        "resourceType": "Condition",
        "id": "htn-1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": _years_before(today, 5).isoformat(),
    }
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": _USER, "patientId": pid},
        "prefetch": {
            "patient": _patient(pid, "male", _years_before(today, 60)),
            "conditions": _bundle([hypertension]),
            "medications": _bundle(
                [_medication("hctz-1", pid, "active", "316049", "Hydrochlorothiazide 25 MG")]
            ),
            "immunizations": _bundle([]),
            "procedures": _bundle([]),
            "observations": _bundle(
                [
                    _quantity("tc-1", pid, "2093-3", "Total cholesterol", 240, "mg/dL", measured),
                    _quantity("hdl-1", pid, "2085-9", "HDL cholesterol", 40, "mg/dL", measured),
                    _quantity("ldl-1", pid, "18262-6", "LDL cholesterol", 160, "mg/dL", measured),
                    blood_pressure,
                    smoking,
                ]
            ),
        },
    }


def order_select(today: date) -> dict[str, Any]:
    """Clarithromycin selected for a patient who takes simvastatin."""
    pid = "example-ddi"
    draft = _medication("draft-clarithromycin", pid, "draft", "21212", "clarithromycin")
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": _USER,
            "patientId": pid,
            "selections": ["MedicationRequest/draft-clarithromycin"],
            "draftOrders": _bundle([draft]),
        },
        "prefetch": {
            "patient": _patient(pid, "female", _years_before(today, 67)),
            "conditions": _bundle([]),
            "medications": _bundle(
                [_medication("simva-1", pid, "active", "312961", "Simvastatin 20 MG Oral Tablet")]
            ),
            "allergies": _bundle([]),
            "observations": _bundle([]),
        },
    }


def order_sign(today: date) -> dict[str, Any]:
    """Metformin about to be signed for a 72-year-old woman with a creatinine of 2.8 mg/dL."""
    pid = "example-renal"
    draft = _medication(
        "draft-metformin",
        pid,
        "draft",
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    )
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": _USER, "patientId": pid, "draftOrders": _bundle([draft])},
        "prefetch": {
            "patient": _patient(pid, "female", _years_before(today, 72)),
            "conditions": _bundle([]),
            "medications": _bundle([]),
            "allergies": _bundle([]),
            "observations": _bundle(
                [
                    _quantity(
                        "creat-1",
                        pid,
                        "2160-0",
                        "Creatinine",
                        2.8,
                        "mg/dL",
                        today - timedelta(days=20),
                    )
                ]
            ),
        },
    }


def _encounter(
    encounter_id: str, patient_id: str, klass: str, start: date, end: date
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {
            "start": f"{start.isoformat()}T09:00:00Z",
            "end": f"{end.isoformat()}T15:00:00Z",
        },
    }


def _condition(
    condition_id: str, patient_id: str, code: str, display: str, onset: date
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": condition_id,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": onset.isoformat(),
    }


def encounter_discharge(today: date) -> dict[str, Any]:
    """An 81-year-old man with heart failure and COPD, admitted through the emergency department
    5 days ago, with 3 emergency visits and 2 admissions in the past months: LACE 15 (and the
    readmission model's card, when its risk is above the model's threshold)."""
    pid = "example-discharge"
    admitted = today - timedelta(days=5)
    stay = _encounter("stay-1", pid, "IMP", admitted, today)
    history = [
        _encounter("ed-route", pid, "EMER", admitted, admitted),  # the admission route
        _encounter("ed-1", pid, "EMER", today - timedelta(days=40), today - timedelta(days=40)),
        _encounter("ed-2", pid, "EMER", today - timedelta(days=95), today - timedelta(days=95)),
        _encounter("ed-3", pid, "EMER", today - timedelta(days=150), today - timedelta(days=150)),
        _encounter("adm-1", pid, "IMP", today - timedelta(days=60), today - timedelta(days=55)),
        _encounter("adm-2", pid, "IMP", today - timedelta(days=200), today - timedelta(days=196)),
    ]
    return {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": _USER, "patientId": pid, "encounterId": "stay-1"},
        "prefetch": {
            "patient": _patient(pid, "male", _years_before(today, 81)),
            "encounter": stay,
            "encounters": _bundle([stay, *history]),
            "conditions": _bundle(
                [
                    _condition(
                        "hf",
                        pid,
                        "88805009",
                        "Chronic congestive heart failure (disorder)",
                        _years_before(today, 3),
                    ),
                    _condition(
                        "copd",
                        pid,
                        "185086009",
                        "Chronic obstructive bronchitis (disorder)",
                        _years_before(today, 6),
                    ),
                ]
            ),
            "medications": _bundle([]),
        },
    }


EXAMPLES: dict[str, Callable[[date], dict[str, Any]]] = {
    "lhs-patient-view": patient_view,
    "lhs-order-select": order_select,
    "lhs-order-sign": order_sign,
    "lhs-encounter-discharge": encounter_discharge,
}
