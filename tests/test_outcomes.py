"""Outcomes fed in as FHIR data: validated entry by entry, idempotent, pseudonymous; and the
labels of served predictions computed when their window closes, updated by late data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from fhir_client.pseudonym import patient_key
from learning.labels import label_predictions
from storage.repository import PredictionInput
from storage.tables import Invocation, OutcomeEvent
from tests.service_app import app_factory

EHR = "https://ehr.example.org/fhir"
DISCHARGE = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _encounter(eid: str, klass: str, start: datetime, status: str = "finished") -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "subject": {"reference": "Patient/pat-42"},
        "period": {"start": start.isoformat(), "end": (start + timedelta(hours=5)).isoformat()},
    }


def _bundle(*resources: dict, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "subject": {"reference": "Patient/pat-42"},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "84114007"}]},
    "onsetDateTime": "2026-03-05",
}
OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "subject": {"reference": "Patient/pat-42"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
    "effectiveDateTime": "2026-03-05T08:00:00Z",
    "valueQuantity": {"value": 1.9, "unit": "mg/dL"},
}
PROCEDURE = {
    "resourceType": "Procedure",
    "id": "p1",
    "status": "completed",
    "subject": {"reference": "Patient/pat-42"},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "232717009"}]},
    "performedDateTime": "2026-03-06T10:00:00Z",
}


@pytest.fixture
def client(tmp_path, database_url):
    with TestClient(app_factory(tmp_path)(database_url=database_url)) as client:
        yield client


def test_valid_entries_are_stored_and_bad_ones_named_without_blocking_them(client):
    bad_date = {**OBSERVATION, "id": "o2", "effectiveDateTime": "yesterday"}
    not_outcome = {"resourceType": "MedicationRequest", "id": "m1"}
    no_patient = {**PROCEDURE, "id": "p2", "subject": None}
    bundle = _bundle(
        _encounter("e1", "EMER", DISCHARGE + timedelta(days=9)),
        CONDITION,
        OBSERVATION,
        bad_date,
        PROCEDURE,
        not_outcome,
        no_patient,
    )
    response = client.post("/outcomes", params={"fhirServer": EHR}, json=bundle)
    assert response.status_code == 400
    body = response.json()
    assert (body["stored"], body["updated"], body["duplicates"]) == (4, 0, 0)
    fields = [d["field"] for d in body["details"]]
    assert fields[0].startswith("entry.3.resource.effectiveDateTime")
    assert fields[1:] == ["entry.5.resource.resourceType", "entry.6.resource"]

    # Re-sent: nothing twice. A corrected resource replaces its earlier version.
    again = client.post("/outcomes", params={"fhirServer": EHR}, json=_bundle(CONDITION, PROCEDURE))
    assert again.status_code == 200
    assert again.json() | {} == {
        "stored": 0,
        "updated": 0,
        "duplicates": 2,
        "notifications": 0,
        "withoutResource": 0,
    }
    corrected = {**CONDITION, "onsetDateTime": "2026-03-04"}
    assert (
        client.post("/outcomes", params={"fhirServer": EHR}, json=_bundle(corrected)).json()[
            "updated"
        ]
        == 1
    )

    store = client.app.state.lhs.store
    with Session(store.engine) as session:
        rows = list(session.exec(select(OutcomeEvent)))
    assert len(rows) == 4
    assert {r.patient_key for r in rows} == {
        patient_key(b"test-pseudonym-key-of-32-characters", EHR, "pat-42")
    }
    # Minimised and pseudonymous: no patient or resource id is kept.
    values = [str(v) for r in rows for v in r.model_dump().values()]
    assert not [
        v for v in values if "pat-42" in v or "Patient/" in v or v in {"e1", "c1", "o1", "p1"}
    ]
    condition = next(r for r in rows if r.resource_type == "Condition")
    assert condition.started_at == datetime(2026, 3, 4, tzinfo=UTC)


def test_subscription_notifications_are_acknowledged_and_their_resources_stored(client):
    notification = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "Parameters",
                    "parameter": [{"name": "type", "valueCode": "event-notification"}],
                }
            },
            {"fullUrl": f"{EHR}/Encounter/e7", "resource": _encounter("e7", "IMP", DISCHARGE)},
            {"fullUrl": f"{EHR}/Encounter/e8"},  # id-only: fetch it with lhs sync
        ],
    }
    response = client.post("/outcomes", params={"fhirServer": EHR}, json=notification)
    assert response.status_code == 200
    assert response.json() == {
        "stored": 1,
        "updated": 0,
        "duplicates": 0,
        "notifications": 1,
        "withoutResource": 1,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient", "id": "x"},
        {"resourceType": "Bundle", "type": "document", "entry": []},
        {"resourceType": "Bundle", "type": "collection", "entry": "nope"},
    ],
)
def test_what_is_not_an_outcome_bundle_gets_a_clear_400(client, body):
    response = client.post("/outcomes", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def _store_prediction(store, key: str, when: datetime) -> None:
    invocation = Invocation(
        hook_instance="3f1a2b4c-0000-4000-8000-000000000001",
        service_id="lhs-encounter-discharge",
        hook="encounter-discharge",
        patient_key=key,
        status_code=200,
    )
    prediction = PredictionInput(
        "lhs-readmission-30d", "1", 0.2, 0.12, {"age_years": 70.0}, {"age_years": 0.1}, when, 30
    )
    store.record_invocation(invocation, [], [prediction])


def test_labels_wait_for_the_window_to_close_and_late_outcomes_update_them(client):
    store = client.app.state.lhs.store
    key = patient_key(b"test-pseudonym-key-of-32-characters", EHR, "pat-42")
    _store_prediction(store, key, DISCHARGE)
    # The window is open: no label yet.
    assert label_predictions(store, DISCHARGE + timedelta(days=29)).labelled == 0
    closed = DISCHARGE + timedelta(days=31)
    # Closed with no outcome received: 0. An admission 40 days later does not count.
    client.post(
        "/outcomes",
        params={"fhirServer": EHR},
        json=_bundle(_encounter("late", "IMP", DISCHARGE + timedelta(days=40))),
    )
    assert label_predictions(store, closed).positive == 0
    (prediction,) = store.predictions("lhs-readmission-30d")
    assert prediction.label == 0
    # Nothing new arrived: nothing to relabel.
    assert label_predictions(store, closed + timedelta(days=1)).labelled == 0
    # A late-reported emergency visit 12 days after discharge turns the label into 1.
    client.post(
        "/outcomes",
        params={"fhirServer": EHR},
        json=_bundle(_encounter("ed", "EMER", DISCHARGE + timedelta(days=12))),
    )
    counts = label_predictions(store, closed + timedelta(days=2))
    assert (counts.labelled, counts.positive) == (1, 1)
    (prediction,) = store.predictions("lhs-readmission-30d")
    assert prediction.label == 1
    # The same visit entered in error is void: the label returns to 0.
    client.post(
        "/outcomes",
        params={"fhirServer": EHR},
        json=_bundle(_encounter("ed", "EMER", DISCHARGE + timedelta(days=12), "entered-in-error")),
    )
    label_predictions(store, closed + timedelta(days=3))
    (prediction,) = store.predictions("lhs-readmission-30d")
    assert prediction.label == 0


def test_lhs_sync_pulls_a_window_from_the_fhir_server_idempotently(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app as cli
    from fhir_client.local_store import LocalFhirStore
    from storage.migrate import upgrade_database
    from tests.live_server import serve
    from tests.simulated_ehr import SimulatedEhr

    def updated(resource: dict, when: str) -> dict:
        return {**resource, "meta": {"lastUpdated": when}}

    store = LocalFhirStore.from_bundles(
        [
            _bundle(
                {"resourceType": "Patient", "id": "pat-42"},
                updated(_encounter("in-window", "EMER", DISCHARGE), "2026-03-02T10:00:00Z"),
                updated(CONDITION, "2026-03-05T10:00:00Z"),
                updated(_encounter("too-late", "IMP", DISCHARGE), "2026-05-01T00:00:00Z"),
            )
        ]
    )
    database_url = f"sqlite:///{tmp_path / 'lhs.db'}"
    upgrade_database(database_url)
    with serve(SimulatedEhr(store, token="sync-token").app()) as base_url:
        env = {
            "LHS_DATA_DIR": str(tmp_path),
            "LHS_DATABASE_URL": database_url,
            "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
            "LHS_FHIR_SYNC_TOKEN": "sync-token",
        }
        args = [
            "sync",
            "--fhir-server",
            f"{base_url}/fhir",
            "--since",
            "2026-03-01",
            "--until",
            "2026-04-01",
        ]
        first = CliRunner().invoke(cli, args, env=env)
        assert first.exit_code == 0, first.output
        assert "Encounter 1, Condition 1, Observation 0, Procedure 0" in first.output
        assert "stored 2, updated 0, duplicates 0, rejected 0" in first.output
        again = CliRunner().invoke(cli, args, env=env)
        assert "stored 0, updated 0, duplicates 2" in again.output


def test_patients_arrive_as_birth_year_and_safe_harbor_area_and_lab_values_as_codes(client):
    patient = {
        "resourceType": "Patient",
        "id": "p-area",
        "name": [{"family": "Doe", "given": ["Jane"]}],
        "birthDate": "1961-07-04",
        "address": [
            {"use": "old", "postalCode": "99999", "period": {"end": "2019-01-01"}},
            {"use": "home", "postalCode": "02139-4307", "line": ["1 Main St"]},
        ],
    }
    remote = {**patient, "id": "p-small", "address": [{"use": "home", "postalCode": "05901"}]}
    test = {
        "resourceType": "Observation",
        "id": "flu-test",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "92142-9"}]},
        "subject": {"reference": "Patient/p-area"},
        "effectiveDateTime": "2026-01-10T09:00:00Z",
        "valueCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": "260373001"}]
        },
    }
    response = client.post("/outcomes", json=_bundle(patient, remote, test))
    assert response.status_code == 200, response.text
    with Session(client.app.state.lhs.store.engine) as session:
        rows = {r.resource_type: r for r in session.exec(select(OutcomeEvent))}
        people = list(
            session.exec(select(OutcomeEvent).where(OutcomeEvent.resource_type == "Patient"))
        )
    # Only the birth year and the first three ZIP digits of the current home address are
    # kept; ZIP3 059 covers 20,000 people or fewer, so it becomes 000.
    assert sorted((p.area, p.birth_year) for p in people) == [("000", 1961), ("021", 1961)]
    assert rows["Observation"].value_codes == ["http://snomed.info/sct|260373001"]
    assert rows["Observation"].codes == ["http://loinc.org|92142-9"]
    stored = json.dumps([p.model_dump(mode="json") for p in people])
    assert "Doe" not in stored and "Main St" not in stored and "1961-07-04" not in stored
