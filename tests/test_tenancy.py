"""Clients kept apart: two EHRs and an informatician against one service, on SQLite and
PostgreSQL. Each client reads and answers only what it was shown; fhirServer is reached only
when it is registered for the caller; requests cannot steer redirects or exhaust the parser."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from cds_service.auth import ClientRegistration, ClientRegistry
from cli.main import app as cli
from fhir_client.outcomes import OutcomeInput
from learning.labels import label_predictions
from point_of_care.examples import EXAMPLES
from storage.repository import PredictionInput, Store
from storage.tables import FeedbackRecord, Invocation, IssuedCard, OutcomeEvent
from tests.live_server import serve
from tests.service_app import app_factory
from tests.test_auth import public_jwk

BASE = "http://testserver"
TODAY = date.today()
EHR_A, EHR_B, INFORMATICIAN = (
    "https://ehr-a.example.org",
    "https://ehr-b.example.org",
    "https://quality.example.org",
)
KEYS = {iss: ec.generate_private_key(ec.SECP384R1()) for iss in (EHR_A, EHR_B, INFORMATICIAN)}


class FhirServer:
    """A FHIR server outside us, over real HTTP, counting every request it gets."""

    def __init__(self) -> None:
        self.requests = 0

    async def answer(self, request: Request) -> JSONResponse:
        self.requests += 1
        if request.url.path.endswith("/Patient/example"):
            return JSONResponse({"resourceType": "Patient", "id": "example", "gender": "male"})
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "entry": []})


@pytest.fixture
def fhir() -> Iterator[tuple[FhirServer, str]]:
    server = FhirServer()
    app = Starlette(routes=[Route("/fhir/{path:path}", server.answer)])
    with serve(app) as url:
        yield server, f"{url}/fhir"


@pytest.fixture
def client(tmp_path, database_url, fhir) -> Iterator[TestClient]:
    _, fhir_url = fhir
    registry = ClientRegistry(tmp_path / "clients.json")
    for iss in KEYS:
        registry.clients[iss] = ClientRegistration(
            iss=iss,
            jwks={"keys": [public_jwk(KEYS[iss], "k1", "ES384")]},
            fhir_servers=[fhir_url] if iss == EHR_A else [],
            informatician=iss == INFORMATICIAN,
        )
    registry.save()
    app = app_factory(tmp_path)(database_url, auth="on", public_base_url=BASE)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def as_client(iss: str, path: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": iss, "aud": BASE + path, "iat": now, "exp": now + 300}
    signed = jwt.encode(
        claims | {"jti": str(uuid.uuid4())}, KEYS[iss], algorithm="ES384", headers={"kid": "k1"}
    )
    return {"Authorization": f"Bearer {signed}"}


def call(client: TestClient, iss: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.request(method, path, headers=as_client(iss, path.split("?")[0]), **kwargs)


def issue_card(client: TestClient, iss: str) -> dict[str, Any]:
    path = "/cds-services/lhs-order-sign"
    response = call(client, iss, "POST", path, json=EXAMPLES["lhs-order-sign"](TODAY))
    assert response.status_code == 200, response.text
    return response.json()["cards"][0]


def overridden(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": datetime.now(UTC).isoformat(),
            }
        ]
    }


def test_every_row_of_a_call_is_owned_by_the_client_that_made_it(client):
    card = issue_card(client, EHR_A)
    call(client, EHR_A, "POST", "/cds-services/lhs-order-sign/feedback", json=overridden(card))
    with Session(client.app.state.lhs.store.engine) as session:
        assert {i.owner for i in session.exec(select(Invocation))} == {EHR_A}
        assert {c.owner for c in session.exec(select(IssuedCard))} == {EHR_A}
        assert [f.owner for f in session.exec(select(FeedbackRecord))] == [EHR_A]


def test_explanations_are_read_by_their_owner_and_informaticians_only(client):
    card = issue_card(client, EHR_A)
    path = f"/cards/{card['uuid']}/explanation"
    assert call(client, EHR_A, "GET", path).json()["card"] == card["uuid"]
    other = call(client, EHR_B, "GET", path)
    assert other.status_code == 404  # the same answer as for a card that does not exist
    assert "inputs" not in other.json()
    assert call(client, INFORMATICIAN, "GET", path).json()["inputs"]


def test_feedback_on_another_clients_card_is_not_stored(client):
    card = issue_card(client, EHR_A)
    path = "/cds-services/lhs-order-sign/feedback"
    response = call(client, EHR_B, "POST", path, json=overridden(card))
    assert response.status_code == 200
    assert response.json() == {
        "stored": 0,
        "duplicates": 0,
        "unknownCards": [card["uuid"]],
        "adjustedTimestamps": [],
    }
    with Session(client.app.state.lhs.store.engine) as session:
        assert session.exec(select(FeedbackRecord)).all() == []
    mine = call(client, EHR_A, "POST", path, json=overridden(card))
    assert mine.json() == {
        "stored": 1,
        "duplicates": 0,
        "unknownCards": [],
        "adjustedTimestamps": [],
    }
    assert "lhs_feedback_unknown_cards_total 1.0" in client.get("/metrics").text


def test_analytics_count_only_the_callers_cards_unless_informatician(client):
    issue_card(client, EHR_A)
    issue_card(client, EHR_A)
    issue_card(client, EHR_B)

    def shown(iss: str) -> int:
        return call(client, iss, "GET", "/analytics/feedback").json()["overall"]["shown"]

    a, b, everyone = shown(EHR_A), shown(EHR_B), shown(INFORMATICIAN)
    assert a > b > 0
    assert everyone == a + b


def test_surveillance_signals_are_read_by_informaticians_only(client):
    refused = call(client, EHR_A, "GET", "/surveillance/signals")
    assert refused.status_code == 403
    assert "informatician" in refused.json()["message"]
    assert call(client, INFORMATICIAN, "GET", "/surveillance/signals").status_code == 200


def test_outcomes_of_one_client_never_replace_another_clients(client, fhir):
    _, fhir_url = fhir
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/example"},
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": encounter}]}
    assert call(client, EHR_A, "POST", "/outcomes", json=bundle).json()["stored"] == 1
    assert call(client, EHR_B, "POST", "/outcomes", json=bundle).json()["stored"] == 1
    with Session(client.app.state.lhs.store.engine) as session:
        owners = sorted(e.owner for e in session.exec(select(OutcomeEvent)))
    assert owners == [EHR_A, EHR_B]
    # Outcomes link to the patients of the FHIR server named: only the client's own.
    refused = call(client, EHR_B, "POST", f"/outcomes?fhirServer={fhir_url}", json=bundle)
    assert refused.status_code == 403
    assert refused.json()["details"] == [
        {"field": "fhirServer", "message": "not registered for this client"}
    ]
    mine = call(client, EHR_A, "POST", f"/outcomes?fhirServer={fhir_url}", json=bundle)
    assert mine.status_code == 200


def hook_call(fhir_url: str) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_url,
        "fhirAuthorization": {
            "access_token": "the-ehrs-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "lhs",
        },
        "context": {"userId": "Practitioner/1", "patientId": "example"},
    }


def test_an_unregistered_fhir_server_is_412_without_any_connection(client, fhir):
    server, fhir_url = fhir
    path = "/cds-services/lhs-patient-view"
    refused = call(client, EHR_B, "POST", path, json=hook_call(fhir_url))
    assert refused.status_code == 412
    assert refused.json()["details"] == [
        {"field": "fhirServer", "message": "not registered for this client"}
    ]
    assert server.requests == 0
    # The same URL with a trailing slash is the same registered server.
    allowed = call(client, EHR_A, "POST", path, json=hook_call(fhir_url + "/"))
    assert allowed.status_code == 200, allowed.text
    assert server.requests > 0


def test_no_redirect_is_built_from_the_host_header(client):
    path = "/cds-services/lhs-order-sign/"
    response = client.post(
        path,
        headers=as_client(EHR_A, path) | {"Host": "evil.example"},
        json=EXAMPLES["lhs-order-sign"](TODAY),
        follow_redirects=False,
    )
    assert response.status_code in (401, 404)
    assert "location" not in response.headers


def test_oversized_headers_are_refused_before_the_token_is_read(client):
    huge = {"Authorization": "Bearer " + "a" * 1_000_000}
    response = client.get("/cds-services", headers=huge)
    assert response.status_code == 431
    assert response.json()["error"] == "request_header_fields_too_large"
    long_token = {"Authorization": "Bearer " + "a" * 10_000}
    assert client.get("/cds-services", headers=long_token).status_code == 401
    assert 'reason="token_too_large"' in client.get("/metrics").text


def test_clients_are_registered_with_their_fhir_servers_and_role(tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(KEYS[EHR_A], "k1", "ES384")]}))
    registry = tmp_path / "clients.json"
    common = ["--jwks-file", str(jwks), "--registry", str(registry)]
    runner = CliRunner()
    added = runner.invoke(
        cli, ["clients", "add", EHR_A, *common, "--fhir-server", "https://ehr-a.example.org/fhir/"]
    )
    assert added.exit_code == 0, added.output
    assert (
        runner.invoke(cli, ["clients", "add", INFORMATICIAN, *common, "--informatician"]).exit_code
        == 0
    )
    loaded = ClientRegistry.load(registry)
    assert loaded.clients[EHR_A].fhir_servers == ["https://ehr-a.example.org/fhir"]
    assert not loaded.clients[EHR_A].informatician
    assert loaded.clients[INFORMATICIAN].informatician
    listed = runner.invoke(cli, ["clients", "list", "--registry", str(registry)]).output
    assert "fhir_servers=https://ehr-a.example.org/fhir" in listed and "informatician" in listed


def test_a_missing_public_base_url_is_warned_about_when_auth_is_on(tmp_path, caplog):
    app_factory(tmp_path)(auth="on")
    assert "LHS_PUBLIC_BASE_URL IS NOT SET" in caplog.text
    caplog.clear()
    app_factory(tmp_path)(auth="on", public_base_url=BASE)
    assert "LHS_PUBLIC_BASE_URL" not in caplog.text


DISCHARGE = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _prediction_for(store: Store, owner: str, key: str) -> None:
    invocation = Invocation(
        hook_instance=str(uuid.uuid4()),
        service_id="lhs-encounter-discharge",
        hook="encounter-discharge",
        patient_key=key,
        status_code=200,
        owner=owner,
    )
    prediction = PredictionInput(
        "lhs-readmission-30d", "1", 0.2, 0.12, {"age_years": 70.0}, {}, DISCHARGE, 30
    )
    store.record_invocation(invocation, [], [prediction])


def _admission(owner: str, key: str, resource_key: str) -> OutcomeInput:
    start = DISCHARGE + timedelta(days=10)
    return OutcomeInput(
        resource_key=resource_key,
        patient_key=key,
        resource_type="Encounter",
        status="finished",
        class_code="IMP",
        codes=[],
        started_at=start,
        ended_at=start + timedelta(days=2),
        value=None,
        unit=None,
        content_hash=resource_key,
        owner=owner,
    )


def test_predictions_are_labelled_only_by_their_clients_outcomes_and_the_operators(store):
    # One pseudonym (one patient of a FHIR server both clients use) seen by three clients.
    key = "pseudonym-of-one-patient"
    for owner in (EHR_A, EHR_B, INFORMATICIAN):
        _prediction_for(store, owner, key)
    # EHR A reports a readmission; EHR B and the informatician report nothing.
    store.record_outcomes([_admission(EHR_A, key, "a-enc")])
    counts = label_predictions(store, DISCHARGE + timedelta(days=31))
    labels = {p.owner: p.label for p in store.predictions("lhs-readmission-30d")}
    assert labels == {EHR_A: 1, EHR_B: 0, INFORMATICIAN: 0}
    assert (counts.labelled, counts.positive) == (3, 1)
    # The operator's `lhs sync` (owner "") reports one: it is every client's patient's.
    store.record_outcomes([_admission("", key, "operator-enc")])
    label_predictions(store, DISCHARGE + timedelta(days=32))
    labels = {p.owner: p.label for p in store.predictions("lhs-readmission-30d")}
    assert labels == {EHR_A: 1, EHR_B: 1, INFORMATICIAN: 1}
