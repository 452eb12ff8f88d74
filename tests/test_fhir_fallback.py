"""Prefetch tokens, and fetching what the EHR did not prefetch from its FHIR server over HTTP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from fhir_client.client import FhirClient, FhirError
from fhir_client.local_store import LocalFhirStore
from fhir_client.prefetch import UnresolvedTokenError, prefetch_tokens, render_template, user_tokens
from fhir_client.resolve import resolve_prefetch
from hooks.context import PatientViewContext
from point_of_care.sweep import requests_for_patient
from tests.live_server import serve
from tests.service_app import app_factory
from tests.shared_data import SYNTHEA, load_bundle
from tests.simulated_ehr import Faults, SimulatedEhr

PATIENT_FILES = [
    "Chung_Haley_e792af79-5fe0-4ed8-bf91-ad9e0b24603e.json.gz",
    "Carin_Schowalter_a57d5ea7-934e-4de7-8886-0fb8bec50356.json.gz",
    "Emery_Purdy_298c62e6-b204-4a14-8e21-73d5be0ce22e.json.gz",
]
CHUNG = "010fd829-1ef3-49c9-98c4-df7561709bc7"  # the Patient id in that file
TOKEN = "ehr-access-token"


# --- prefetch tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "token"),
    [
        ("Practitioner/p1", "userPractitionerId"),
        ("PractitionerRole/r1", "userPractitionerRoleId"),
        ("Patient/u1", "userPatientId"),
        ("RelatedPerson/rp1", "userRelatedPersonId"),
    ],
)
def test_each_user_token_comes_from_user_id(user, token):
    assert user_tokens(user) == {token: user.split("/")[1]}
    context = PatientViewContext(userId=user, patientId="123", encounterId="456")
    assert (
        render_template(f"X?u={{{{{token}}}}}", prefetch_tokens(context))
        == f"X?u={user.split('/')[1]}"
    )


def test_context_tokens_render_as_in_the_spec():
    context = PatientViewContext(
        userId="Practitioner/example", patientId="1288992", encounterId="89284"
    )
    tokens = prefetch_tokens(context)
    assert render_template("Patient/{{context.patientId}}", tokens) == "Patient/1288992"
    assert render_template("{{context.userId}}", tokens) == "Practitioner/example"
    assert render_template("Encounter/{{ context.encounterId }}", tokens) == "Encounter/89284"
    assert (
        render_template(
            "Observation?patient={{context.patientId}}&code=4548-4&_count=1&sort:desc=date", tokens
        )
        == "Observation?patient=1288992&code=4548-4&_count=1&sort:desc=date"
    )


def test_unavailable_tokens_are_reported():
    tokens = prefetch_tokens(PatientViewContext(userId="Practitioner/example", patientId="1"))
    with pytest.raises(UnresolvedTokenError) as caught:
        render_template("PractitionerRole?_id={{userPractitionerRoleId}}", tokens)
    assert caught.value.token == "userPractitionerRoleId"
    with pytest.raises(UnresolvedTokenError):
        render_template("Encounter/{{context.encounterId}}", tokens)


# --- the client against a simulated EHR over real HTTP -----------------------------------------


@pytest.fixture(scope="module")
def store():
    return LocalFhirStore.from_bundles(load_bundle(SYNTHEA / name) for name in PATIENT_FILES)


@pytest.fixture(scope="module")
def ehr_server(store):
    ehr = SimulatedEhr(store, token=TOKEN)
    with serve(ehr.app()) as base_url:
        yield ehr, f"{base_url}/fhir"


@pytest.fixture
def ehr(ehr_server):
    ehr, base = ehr_server
    ehr.faults = Faults()
    ehr.requests.clear()
    return ehr, base


def _get(base, url, token=TOKEN, **options):
    async def run():
        async with FhirClient(base, token, **options) as client:
            return await client.get(url)

    return asyncio.run(run())


def test_read_and_missing_read(ehr):
    _, base = ehr
    assert _get(base, f"Patient/{CHUNG}")["id"] == CHUNG
    assert _get(base, "Patient/does-not-exist") is None


def test_search_follows_every_page(ehr, store):
    server, base = ehr
    expected = store.search("Observation", {"patient": [CHUNG]})
    bundle = _get(base, f"Observation?patient={CHUNG}&_count=40")
    assert len(bundle["entry"]) == len(expected) > 80
    assert {e["resource"]["id"] for e in bundle["entry"]} == {r["id"] for r in expected}
    assert len(server.requests) == -(-len(expected) // 40)


def test_results_beyond_the_page_limit_are_an_error_not_a_silent_truncation(ehr):
    server, base = ehr
    with pytest.raises(FhirError, match="more than 3 pages"):
        _get(base, f"Observation?patient={CHUNG}&_count=10", max_pages=3)
    assert len(server.requests) == 3


def test_next_links_to_other_hosts_are_not_followed(ehr):
    server, base = ehr
    server.faults.foreign_next_link = True
    bundle = _get(base, f"Observation?patient={CHUNG}&_count=10")
    assert len(bundle["entry"]) == 10
    assert len(server.requests) == 1


def test_bearer_token_is_sent(ehr):
    _, base = ehr
    with pytest.raises(FhirError) as caught:
        _get(base, f"Patient/{CHUNG}", token="wrong")
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("status", "retry_after"), [(503, None), (429, "1"), (500, None), (502, None)]
)
def test_one_transient_failure_is_retried(ehr, status, retry_after):
    server, base = ehr
    server.faults.fail_next, server.faults.fail_status, server.faults.retry_after = (
        1,
        status,
        retry_after,
    )
    started = time.monotonic()
    assert _get(base, f"Patient/{CHUNG}", retry_backoff=0.05)["id"] == CHUNG
    assert len(server.requests) == 2
    if retry_after:
        assert time.monotonic() - started >= 0.9  # Retry-After honoured


def test_two_failures_give_up(ehr):
    server, base = ehr
    server.faults.fail_next, server.faults.fail_status = 2, 503
    with pytest.raises(FhirError) as caught:
        _get(base, f"Patient/{CHUNG}", retry_backoff=0.01)
    assert caught.value.status == 503
    assert len(server.requests) == 2


def test_timeouts_and_bad_json_are_errors(ehr):
    server, base = ehr
    server.faults.delay_seconds = 0.5
    with pytest.raises(FhirError):
        _get(base, f"Patient/{CHUNG}", timeout=0.1, retry_backoff=0.01)
    server.faults.delay_seconds = 0
    server.faults.malformed_json = True
    with pytest.raises(FhirError):
        _get(base, f"Patient/{CHUNG}")


def test_resolve_prefetch_uses_sent_data_then_fetches_the_rest(ehr):
    server, base = ehr
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
        "role": "PractitionerRole?_id={{userPractitionerRoleId}}",
        "odd": "Observation?patient={{context.patientId}}&code=2160-0",
    }
    tokens = prefetch_tokens(PatientViewContext(userId="Practitioner/x", patientId=CHUNG))
    sent_patient = {"resourceType": "Patient", "id": CHUNG}
    provided = {"patient": sent_patient, "conditions": None, "odd": "not a resource"}

    async def run(client):
        return await resolve_prefetch(templates, provided, tokens, client)

    async def with_client():
        async with FhirClient(base, TOKEN) as client:
            return await run(client)

    result = asyncio.run(with_client())
    assert result.data["patient"] is sent_patient
    assert result.data["conditions"] is None
    assert set(result.fetched) == {"medications", "odd"}
    assert result.unavailable == ("role",)
    assert all("Condition" not in url for url in server.requests)

    without_client = asyncio.run(run(None))
    assert set(without_client.unavailable) == {"medications", "odd", "role"}


# --- end to end: the service fetching from the EHR --------------------------------------------


@pytest.fixture
def service(tmp_path):
    app = app_factory(tmp_path)(evaluation_time=datetime(2021, 4, 1, tzinfo=UTC), fhir_timeout=2.0)
    with TestClient(app) as client:
        yield app, client


def _requests(app, store, patient_id):
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": r}
            for rs in store.resources.values()
            for r in rs.values()
            if _belongs(r, patient_id)
        ],
    }
    return dict(((s.id, r) for s, r in requests_for_patient(bundle, app.state.lhs.services)))


def _belongs(resource, patient_id):
    if resource["resourceType"] == "Patient":
        return resource["id"] == patient_id
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return reference.endswith(patient_id)


def test_fetched_data_gives_the_same_cards_as_prefetch(ehr, store, service):
    _, base = ehr
    app, client = service
    compared = 0
    for patient_id in store.patient_ids():
        for service_id, request in _requests(app, store, patient_id).items():
            with_prefetch = client.post(f"/cds-services/{service_id}", json=request)
            fetched = {k: v for k, v in request.items() if k != "prefetch"} | {
                "fhirServer": base,
                "fhirAuthorization": {
                    "access_token": TOKEN,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "user/*.read",
                    "subject": "lhs",
                },
            }
            from_server = client.post(f"/cds-services/{service_id}", json=fetched)
            assert with_prefetch.status_code == from_server.status_code == 200, from_server.text
            cards = sorted((c["summary"], c["indicator"]) for c in with_prefetch.json()["cards"])
            assert (
                sorted((c["summary"], c["indicator"]) for c in from_server.json()["cards"]) == cards
            )
            compared += len(cards)
            latest = app.state.lhs.store.invocations(limit=1)[0]
            assert set(latest.prefetch_fetched) == set(
                app.state.lhs.services[service_id].definition.prefetch
            )
    assert compared > 0, "these patients were chosen because rules fire for them"


def test_a_failing_fhir_server_gives_412(ehr, store, service):
    server, base = ehr
    app, client = service
    server.faults.always_status = 500
    request = _requests(app, store, CHUNG)["lhs-patient-view"]
    request.pop("prefetch")
    request |= {"fhirServer": base}
    response = client.post("/cds-services/lhs-patient-view", json=request)
    assert response.status_code == 412
    assert response.json()["error"] == "precondition_failed"
