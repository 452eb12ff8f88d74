"""The HTTP API end to end through the real ASGI app and a real (SQLite) database."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hooks.cards import CDSResponse
from hooks.discovery import DiscoveryResponse
from hooks.feedback import MAX_FEEDBACK_ITEMS
from point_of_care.examples import EXAMPLES
from storage.tables import FeedbackRecord, Invocation, IssuedCard
from tests.service_app import app_factory
from tests.shared_data import example

TODAY = date.today()


def _now() -> str:
    return datetime.now(UTC).isoformat()


@pytest.fixture
def app(tmp_path):
    return app_factory(tmp_path)()


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def _session(app):
    return Session(app.state.lhs.store.engine)


def test_discovery_lists_every_service_with_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    discovery = DiscoveryResponse.model_validate(response.json())
    offered = {(s.id, s.hook) for s in discovery.services}
    assert {
        ("lhs-patient-view", "patient-view"),
        ("lhs-order-select", "order-select"),
        ("lhs-order-sign", "order-sign"),
    } <= offered
    # Only hooks with active rules are offered.
    assert all(client.app.state.lhs.services[service_id].recommenders for service_id, _ in offered)
    for service in response.json()["services"]:
        assert service["description"] and service["title"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "usageRequirements" in service
        # Observations are searched by what was measured, never by a LOINC answer code.
        assert "|LA" not in service["prefetch"].get("observations", "")


@pytest.mark.parametrize("service_id", sorted(EXAMPLES))
def test_examples_answer_with_valid_stored_cards(app, client, service_id):
    request = EXAMPLES[service_id](TODAY)
    response = client.post(f"/cds-services/{service_id}", json=request)
    assert response.status_code == 200, response.text
    cards = CDSResponse.model_validate(response.json()).cards
    assert cards, "each example is built so that one rule fires"
    for card in response.json()["cards"]:
        assert len(card["summary"]) < 140
        assert card["source"]["url"].startswith("http")
        assert "**Evidence**" in card["detail"]
        if card.get("suggestions"):
            assert card["selectionBehavior"] in ("at-most-one", "any")
            assert all(s["uuid"] for s in card["suggestions"])
    with _session(app) as session:
        invocation = session.exec(
            select(Invocation).where(Invocation.hook_instance == request["hookInstance"])
        ).one()
        assert invocation.status_code == 200
        assert invocation.card_count == len(cards)
        assert "example" not in invocation.patient_key  # a keyed pseudonym, not the patient id
        stored = session.exec(
            select(IssuedCard).where(IssuedCard.invocation_id == invocation.id)
        ).all()
        assert {c.uuid for c in stored} == {c.uuid for c in cards}
        assert all(c.rule_id and c.rule_version for c in stored)


def test_critical_cards_carry_a_delete_suggestion_for_the_draft(client):
    response = client.post("/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](TODAY))
    critical = [c for c in response.json()["cards"] if c["indicator"] == "critical"]
    assert critical
    actions = [a for s in critical[0]["suggestions"] for a in s["actions"]]
    assert {"type": "delete", "resourceId": "MedicationRequest/draft-metformin"}.items() <= actions[
        0
    ].items()


def test_unknown_service_is_404_with_json(client):
    response = client.post("/cds-services/nope", json=EXAMPLES["lhs-order-sign"](TODAY))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert client.post("/cds-services/nope/feedback", json={"feedback": []}).status_code == 404


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda r: r.pop("context"), "context"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r["context"].update(userId="Device/1"), "context.userId"),
        (lambda r: r["context"].update(draftOrders=[]), "context.draftOrders"),
        (lambda r: r.update(hook="patient-view"), "hook"),
        (
            lambda r: r.update(fhirAuthorization={"access_token": "x", "token_type": "Bearer"}),
            "fhirAuthorization.expires_in",
        ),
        (lambda r: r.update(fhirServer="not a url"), "fhirServer"),
    ],
)
def test_malformed_requests_get_400_naming_the_field(client, mutate, field):
    request = EXAMPLES["lhs-order-sign"](TODAY)
    mutate(request)
    response = client.post("/cds-services/lhs-order-sign", json=request)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_request"
    assert field in {d["field"] for d in body["details"]}, body


def test_order_select_requires_selections(client):
    request = EXAMPLES["lhs-order-select"](TODAY)
    request["context"]["selections"] = []
    response = client.post("/cds-services/lhs-order-select", json=request)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "context.selections"


def test_invalid_json_is_400(client):
    response = client.post(
        "/cds-services/lhs-order-sign",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_no_prefetch_and_no_fhir_server_is_412(app, client):
    request = EXAMPLES["lhs-patient-view"](TODAY)
    del request["prefetch"]["observations"]
    response = client.post("/cds-services/lhs-patient-view", json=request)
    assert response.status_code == 412
    assert {d["field"] for d in response.json()["details"]} == {"prefetch.observations"}
    with _session(app) as session:
        assert session.exec(select(Invocation)).one().status_code == 412


def test_null_prefetch_means_no_data_not_missing(client):
    request = EXAMPLES["lhs-patient-view"](TODAY)
    request["prefetch"] = {key: None for key in request["prefetch"]}
    response = client.post("/cds-services/lhs-patient-view", json=request)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


# --- the specification's examples (../shared/cds-hooks) -------------------------------------

HOOK_EXAMPLES = {
    "lhs-patient-view": ["hook-patient-view-example-1.json", "hook-patient-view-example-2.json"],
    "lhs-order-select": [f"hook-order-select-example-{n}.json" for n in (1, 2, 3)],
    "lhs-order-sign": [f"hook-order-sign-example-{n}.json" for n in (1, 2, 3)],
}


@pytest.mark.parametrize(
    ("service_id", "name"), [(s, n) for s, names in HOOK_EXAMPLES.items() for n in names]
)
def test_spec_hook_examples_are_accepted(app, client, service_id, name):
    service = app.state.lhs.services[service_id].definition
    base = {"hook": service.hook, "hookInstance": str(uuid.uuid4()), **example(name)}
    # Without data and without a FHIR server the spec's answer is 412 ...
    assert client.post(f"/cds-services/{service_id}", json=base).status_code == 412
    # ... and with every prefetch key answered "no data" it is 200 with valid cards.
    with_prefetch = {**base, "prefetch": {key: None for key in service.prefetch}}
    response = client.post(f"/cds-services/{service_id}", json=with_prefetch)
    assert response.status_code == 200, response.text
    CDSResponse.model_validate(response.json())


def test_spec_request_with_extension_and_prefetch_is_accepted(app, client):
    request = example("spec-example.json")
    # The spec's FHIR server does not exist here; its prefetch answers what it can and
    # the remaining keys are sent as "no data".
    request.pop("fhirServer")
    request.pop("fhirAuthorization")
    keys = app.state.lhs.services["lhs-patient-view"].definition.prefetch
    request["prefetch"] = {key: None for key in keys} | {
        "patient": request["prefetch"]["patientToGreet"]
    }
    request["extension"] = example("spec-extensions.json")["extension"]
    response = client.post("/cds-services/lhs-patient-view", json=request)
    assert response.status_code == 200, response.text


def test_spec_response_examples_validate():
    for name in ("spec-example-2.json", "spec-http-response.json"):
        CDSResponse.model_validate(example(name))


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        # The spec's own examples omit members its tables mark REQUIRED; our validation,
        # which guards what we emit, names exactly those members.
        ("spec-example-3.json", "cards.0.indicator"),
        ("spec-system-action.json", "systemActions.0.description"),
    ],
)
def test_nonconformant_spec_response_examples_are_named(name, missing):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        CDSResponse.model_validate(example(name))
    assert {".".join(map(str, e["loc"])) for e in caught.value.errors()} == {missing}


# --- feedback ----------------------------------------------------------------------------


def _issue_card(client, service_id="lhs-order-sign"):
    response = client.post(f"/cds-services/{service_id}", json=EXAMPLES[service_id](TODAY))
    return response.json()["cards"][0]


def test_feedback_on_an_issued_card_is_stored_linked_and_idempotent(app, client):
    card = _issue_card(client)
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": _now(),
    }
    first = client.post("/cds-services/lhs-order-sign/feedback", json={"feedback": [item]})
    assert first.status_code == 200
    assert first.json() == {
        "stored": 1,
        "duplicates": 0,
        "unknownCards": [],
        "adjustedTimestamps": [],
    }
    again = client.post("/cds-services/lhs-order-sign/feedback", json={"feedback": [item]})
    assert again.json() == {
        "stored": 0,
        "duplicates": 1,
        "unknownCards": [],
        "adjustedTimestamps": [],
    }
    with _session(app) as session:
        records = session.exec(select(FeedbackRecord)).all()
        assert len(records) == 1
        assert records[0].issued_card_uuid == card["uuid"]
        assert records[0].accepted_suggestions == [card["suggestions"][0]["uuid"]]


SPEC_FEEDBACK = (
    "spec-example-overridden-guidance-with-overridereason.json",
    "spec-example-suggestion-accepted.json",
)


def _on_issued_card(name: str, card: dict[str, Any]) -> dict[str, Any]:
    """The spec's feedback example, pointed at a card (and suggestion) this service issued."""
    item = copy.deepcopy(example(name)["feedback"][0])
    item["card"] = card["uuid"]
    item["outcomeTimestamp"] = _now()  # the spec's examples are dated years before our cards
    for accepted in item.get("acceptedSuggestions", ()):
        accepted["id"] = card["suggestions"][0]["uuid"]
    return item


@pytest.mark.parametrize("name", SPEC_FEEDBACK)
def test_spec_feedback_examples_are_stored(client, name):
    item = _on_issued_card(name, _issue_card(client))
    response = client.post("/cds-services/lhs-order-sign/feedback", json={"feedback": [item]})
    assert response.status_code == 200
    assert response.json() == {
        "stored": 1,
        "duplicates": 0,
        "unknownCards": [],
        "adjustedTimestamps": [],
    }


@pytest.mark.parametrize("name", SPEC_FEEDBACK)
def test_feedback_on_cards_never_issued_is_named_and_not_stored(app, client, name):
    response = client.post("/cds-services/lhs-patient-view/feedback", json=example(name))
    assert response.status_code == 200
    assert response.json() == {
        "stored": 0,
        "duplicates": 0,
        "unknownCards": [example(name)["feedback"][0]["card"]],
        "adjustedTimestamps": [],
    }
    with _session(app) as session:
        assert session.exec(select(FeedbackRecord)).all() == []


def test_feedback_on_another_services_card_is_not_stored(client):
    card = _issue_card(client)
    item = _on_issued_card(SPEC_FEEDBACK[1], card)
    response = client.post("/cds-services/lhs-patient-view/feedback", json={"feedback": [item]})
    assert response.json()["unknownCards"] == [card["uuid"]]


def test_spec_feedback_overridden_without_reason_is_stored(app, client):
    item = _on_issued_card(SPEC_FEEDBACK[0], _issue_card(client))
    del item["overrideReason"]
    response = client.post("/cds-services/lhs-order-sign/feedback", json={"feedback": [item]})
    assert response.json()["stored"] == 1


def test_more_feedback_items_than_allowed_are_refused_whole(client):
    item = example(SPEC_FEEDBACK[1])["feedback"][0]
    response = client.post(
        "/cds-services/lhs-patient-view/feedback",
        json={"feedback": [item] * (MAX_FEEDBACK_ITEMS + 1)},
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "feedback"


def test_malformed_feedback_items_are_named_and_valid_ones_kept(app, client):
    card = _issue_card(client)
    good = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-24T10:00:00Z",
        "overrideReason": {
            "reason": {"system": "urn:x", "code": "c", "display": "d"},
            "userComment": "ok",
        },
    }
    bad_outcome = {**good, "outcome": "ignored"}
    accepted_without_suggestions = {**good, "outcome": "accepted"}
    no_timestamp = {"card": card["uuid"], "outcome": "overridden"}
    response = client.post(
        "/cds-services/lhs-order-sign/feedback",
        json={"feedback": [bad_outcome, good, accepted_without_suggestions, no_timestamp, "junk"]},
    )
    assert response.status_code == 400
    body = response.json()
    fields = {d["field"] for d in body["details"]}
    assert {"feedback.0.outcome", "feedback.3.outcomeTimestamp"} <= fields
    assert any(f.startswith("feedback.2") for f in fields)
    assert any(f.startswith("feedback.4") for f in fields)
    assert not any(f.startswith("feedback.1") for f in fields)
    assert body["stored"] == 1
    with _session(app) as session:
        stored = session.exec(select(FeedbackRecord)).one()
        assert stored.user_comment == "ok" and stored.override_reason_code == "c"


def test_feedback_body_must_hold_a_feedback_array(client):
    response = client.post("/cds-services/lhs-order-sign/feedback", json={"items": []})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "feedback"


def test_openapi_documents_the_error_shapes(client):
    schema = client.get("/openapi.json").json()
    call = schema["paths"]["/cds-services/{service_id}"]["post"]["responses"]
    assert {"200", "400", "404", "412"} <= call.keys()
    assert "422" not in call


def test_an_impossible_feedback_time_is_stored_as_the_nearest_possible_one_and_said(app, client):
    card = _issue_card(client)
    with _session(app) as session:
        issued_at = session.exec(select(IssuedCard).where(IssuedCard.uuid == card["uuid"])).one()
    issued = issued_at.created_at
    early = {"card": card["uuid"], "outcome": "overridden"}
    early["outcomeTimestamp"] = (issued - timedelta(days=10)).isoformat()
    late = dict(early, outcome="accepted", acceptedSuggestions=[{"id": "x"}])
    late["outcomeTimestamp"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    malformed = {"card": card["uuid"], "outcome": "maybe"}
    response = client.post(
        "/cds-services/lhs-order-sign/feedback", json={"feedback": [malformed, early, late]}
    )
    assert response.status_code == 400  # the malformed item is named; the others are kept
    body = response.json()
    assert body["stored"] == 2
    assert [a["field"] for a in body["adjustedTimestamps"]] == [
        "feedback.1.outcomeTimestamp",
        "feedback.2.outcomeTimestamp",
    ]
    assert body["adjustedTimestamps"][0]["message"].startswith("before the card was issued")
    assert body["adjustedTimestamps"][1]["message"].startswith("after the feedback arrived")
    with _session(app) as session:
        stored = session.exec(select(FeedbackRecord).order_by(FeedbackRecord.id)).all()
    assert stored[0].outcome_timestamp == issued
    assert issued < stored[1].outcome_timestamp <= stored[1].received_at
    analytics = client.get("/analytics/feedback").json()
    assert analytics["overall"]["median_seconds_to_action"] >= 0


def test_feedback_in_whole_seconds_within_the_issue_second_is_not_before_the_card(app, client):
    card = _issue_card(client)
    with _session(app) as session:
        issued = session.exec(select(IssuedCard).where(IssuedCard.uuid == card["uuid"])).one()
    # An EHR sending whole seconds names the second in which the card was issued.
    second = issued.created_at.replace(microsecond=0)
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": second.isoformat()}
    response = client.post("/cds-services/lhs-order-sign/feedback", json={"feedback": [item]})
    assert response.status_code == 200
    assert response.json()["adjustedTimestamps"] == []
    with _session(app) as session:
        (stored,) = session.exec(select(FeedbackRecord)).all()
    assert stored.outcome_timestamp == issued.created_at  # never before the card
