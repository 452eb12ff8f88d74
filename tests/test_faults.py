"""Faults of the EHR's FHIR server and hostile input: answer in time, never a 500, never hang."""

from __future__ import annotations

import json
import socket
import time
from datetime import date

import pytest
from fastapi.testclient import TestClient

from fhir_client.local_store import LocalFhirStore
from point_of_care.examples import EXAMPLES
from tests.live_server import serve
from tests.service_app import app_factory
from tests.simulated_ehr import Faults, SimulatedEhr

TODAY = date.today()
TOKEN = "ehr-access-token"
AUTHORIZATION = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/*.read",
    "subject": "lhs",
}


def _example_store(service_id: str) -> LocalFhirStore:
    """The example patient's prefetch, served by the simulated EHR instead."""
    request = EXAMPLES[service_id](TODAY)
    resources = []
    for value in request["prefetch"].values():
        if value["resourceType"] == "Bundle":
            resources.extend(e["resource"] for e in value["entry"])
        else:
            resources.append(value)
    store = LocalFhirStore()
    for resource in resources:
        store.add(resource)
    return store


@pytest.fixture(scope="module")
def ehr_server():
    ehr = SimulatedEhr(_example_store("lhs-order-sign"), token=TOKEN)
    with serve(ehr.app()) as base:
        yield ehr, f"{base}/fhir"


@pytest.fixture
def ehr(ehr_server):
    ehr, base = ehr_server
    ehr.faults = Faults()
    return ehr, base


@pytest.fixture
def client(tmp_path):
    app = app_factory(tmp_path)(fetch_deadline=0.5, fhir_timeout=0.3)
    with TestClient(app) as test_client:
        yield test_client


def _order_sign_fetching(base, keep=("patient", "observations")):
    """The order-sign example, with only some keys prefetched and the rest left to fetch."""
    request = EXAMPLES["lhs-order-sign"](TODAY)
    request["prefetch"] = {k: v for k, v in request["prefetch"].items() if k in keep}
    return request | {"fhirServer": base, "fhirAuthorization": AUTHORIZATION}


def _availability_card(body):
    return next(
        (
            c
            for c in body["cards"]
            if c["source"].get("topic", {}).get("code") == "lhs-data-availability"
        ),
        None,
    )


@pytest.mark.parametrize(
    "fault",
    [
        {"always_status": 500},
        {"always_status": 503},
        {"always_status": 401},
        {"malformed_json": True},
        {"delay_seconds": 2.0},
    ],
    ids=["500", "503", "401", "malformed", "slow"],
)
def test_server_faults_still_answer_in_time_with_what_can_be_computed(ehr, client, fault):
    server, base = ehr
    for key, value in fault.items():
        setattr(server.faults, key, value)
    started = time.monotonic()
    response = client.post("/cds-services/lhs-order-sign", json=_order_sign_fetching(base))
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed < 1.5  # deadline 0.5 s plus rule evaluation, far below the 2 s delay
    body = response.json()
    # The critical card needs only prefetched data, so it is still shown ...
    assert any(c["indicator"] == "critical" for c in body["cards"])
    # ... and the clinician is told what could not be checked.
    notice = _availability_card(body)
    assert notice["indicator"] == "warning"
    assert "medications" in notice["detail"] and "allergies" in notice["detail"]


def test_one_failing_resource_type_is_named(ehr, client):
    server, base = ehr
    server.faults.fail_types = frozenset({"AllergyIntolerance"})
    response = client.post("/cds-services/lhs-order-sign", json=_order_sign_fetching(base))
    notice = _availability_card(response.json())
    assert "allergies" in notice["detail"] and "medications" not in notice["detail"]


def test_healthy_server_gives_no_availability_notice(ehr, client):
    _, base = ehr
    response = client.post("/cds-services/lhs-order-sign", json=_order_sign_fetching(base))
    assert response.status_code == 200
    assert _availability_card(response.json()) is None


def test_unreachable_server_with_partial_prefetch_answers(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    response = client.post(
        "/cds-services/lhs-order-sign",
        json=_order_sign_fetching(f"http://127.0.0.1:{closed_port}/fhir"),
    )
    assert response.status_code == 200
    assert _availability_card(response.json()) is not None


def test_unreachable_server_and_no_prefetch_is_412(client):
    request = _order_sign_fetching("http://127.0.0.1:9/fhir", keep=())
    response = client.post("/cds-services/lhs-order-sign", json=request)
    assert response.status_code == 412


# --- hostile and malformed input ---------------------------------------------------------------


def test_oversized_bodies_are_413(tmp_path):
    app = app_factory(tmp_path)(max_body_bytes=20_000)
    request = EXAMPLES["lhs-order-sign"](TODAY)
    request["extension"] = {"padding": "x" * 30_000}
    with TestClient(app) as client:
        response = client.post("/cds-services/lhs-order-sign", json=request)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"

        def chunks():
            yield b'{"feedback": ['
            for _ in range(2000):
                yield b'{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"},'
            yield b"]}"

        chunked = client.post(
            "/cds-services/lhs-order-sign/feedback",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        assert app.state.lhs.store.counts()["feedback"] == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_types_are_415(tmp_path, content_type):
    with TestClient(app_factory(tmp_path)()) as client:
        response = client.post(
            "/cds-services/lhs-order-sign", content=b"{}", headers={"Content-Type": content_type}
        )
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"


def test_json_with_charset_and_fhir_json_are_accepted(tmp_path):
    with TestClient(app_factory(tmp_path)()) as client:
        body = EXAMPLES["lhs-order-sign"](TODAY)
        for content_type in ("application/json; charset=utf-8", "application/fhir+json"):
            response = client.post(
                "/cds-services/lhs-order-sign",
                content=json.dumps(body),
                headers={"Content-Type": content_type},
            )
            assert response.status_code == 200, content_type


@pytest.mark.parametrize("depth", [200, 5_000, 200_000])
def test_deeply_nested_json_is_a_400(tmp_path, depth):
    nested = '{"a":' * depth + "1" + "}" * depth
    body = (
        '{"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "context": '
        + nested
        + "}"
    )
    with TestClient(app_factory(tmp_path)(), raise_server_exceptions=False) as client:
        response = client.post(
            "/cds-services/lhs-order-sign",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_unicode_everywhere_is_handled(tmp_path):
    request = EXAMPLES["lhs-order-sign"](TODAY)
    request["prefetch"]["patient"]["name"] = [
        {"family": "Łódź-Ñúñez", "given": ["李", "\u200bAnna"]}
    ]
    request["extension"] = {"note": "🩺 ünïcödé \u0000 \ud7ff"}
    with TestClient(app_factory(tmp_path)()) as client:
        assert client.post("/cds-services/lhs-order-sign", json=request).status_code == 200
        weird_service = client.post("/cds-services/%F0%9F%A9%BA", json=request)
        assert weird_service.status_code == 404


def test_hostile_prefetch_cannot_put_another_patients_data_on_the_cards(tmp_path):
    """Prefetch resources naming another patient are dropped: no card from their data."""
    request = EXAMPLES["lhs-order-sign"](TODAY)
    pid = request["context"]["patientId"]
    creatinine = request["prefetch"]["observations"]["entry"][0]["resource"]
    creatinine["subject"] = {"reference": "Patient/someone-else"}
    request["prefetch"]["patient"] = request["prefetch"]["patient"] | {"id": "someone-else"}
    with TestClient(app_factory(tmp_path)()) as client:
        response = client.post("/cds-services/lhs-order-sign", json=request)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert not any(c["indicator"] == "critical" for c in cards), (
        "the low eGFR belongs to someone else"
    )
    assert all(pid not in c["detail"] for c in cards)


def test_huge_bundles_are_cut_off_at_the_deadline_not_waited_for(client):
    """A patient with 30,000 observations: paging stops at the deadline; the call still answers."""
    request = EXAMPLES["lhs-order-sign"](TODAY)
    pid = request["context"]["patientId"]
    store = _example_store("lhs-order-sign")
    for n in range(30_000):
        store.add(
            {
                "resourceType": "Observation",
                "id": f"bulk-{n}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": "2001-01-01",
                "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
            }
        )
    ehr = SimulatedEhr(store, token=TOKEN)
    with serve(ehr.app()) as base:
        fetching = _order_sign_fetching(
            f"{base}/fhir", keep=("patient", "medications", "allergies", "conditions")
        )
        started = time.monotonic()
        response = client.post("/cds-services/lhs-order-sign", json=fetching)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 2.0
    notice = _availability_card(response.json())
    assert notice is not None and "observations" in notice["detail"]
