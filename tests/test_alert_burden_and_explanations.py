"""Alert burden: an overridden card is not repeated for the same data; critical ones always are.
Transparency: every card traces to its rule version, citations, inputs and feedback."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from point_of_care.examples import EXAMPLES
from tests.service_app import app_factory

TODAY = date.today()


def _override(client, service_id, card):
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
        "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "known"},
    }
    assert (
        client.post(f"/cds-services/{service_id}/feedback", json={"feedback": [item]}).status_code
        == 200
    )


def _by_rule(response):
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


@pytest.fixture
def client(tmp_path):
    with TestClient(app_factory(tmp_path)()) as test_client:
        yield test_client


def test_an_overridden_card_is_not_repeated_for_the_same_data(client):
    request = EXAMPLES["lhs-patient-view"](TODAY)
    first = _by_rule(client.post("/cds-services/lhs-patient-view", json=request))
    statin = first["statin-primary-prevention"]
    assert statin["indicator"] != "critical"
    _override(client, "lhs-patient-view", statin)

    again = _by_rule(
        client.post("/cds-services/lhs-patient-view", json=EXAMPLES["lhs-patient-view"](TODAY))
    )
    assert "statin-primary-prevention" not in again
    assert set(first) - {"statin-primary-prevention"} <= set(again), (
        "other rules' cards are unaffected"
    )
    assert (
        'lhs_cards_suppressed_total{rule="statin-primary-prevention",service="lhs-patient-view"} 1.0'
        in client.get("/metrics").text
    )

    changed = EXAMPLES["lhs-patient-view"](TODAY)
    observations = changed["prefetch"]["observations"]["entry"]
    next(o for o in observations if o["resource"]["id"] == "tc-1")["resource"]["valueQuantity"][
        "value"
    ] = 280
    after_new_data = _by_rule(client.post("/cds-services/lhs-patient-view", json=changed))
    assert "statin-primary-prevention" in after_new_data, "new triggering data brings the card back"


def test_critical_cards_are_never_suppressed(client):
    card = next(
        c
        for c in client.post(
            "/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](TODAY)
        ).json()["cards"]
        if c["indicator"] == "critical"
    )
    _override(client, "lhs-order-sign", card)
    again = client.post(
        "/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](TODAY)
    ).json()["cards"]
    assert any(c["indicator"] == "critical" and c["summary"] == card["summary"] for c in again)


def test_suppression_can_be_turned_off(tmp_path):
    with TestClient(app_factory(tmp_path)(override_suppression_days=0)) as client:
        statin = _by_rule(
            client.post("/cds-services/lhs-patient-view", json=EXAMPLES["lhs-patient-view"](TODAY))
        )["statin-primary-prevention"]
        _override(client, "lhs-patient-view", statin)
        again = _by_rule(
            client.post("/cds-services/lhs-patient-view", json=EXAMPLES["lhs-patient-view"](TODAY))
        )
        assert "statin-primary-prevention" in again


def test_each_card_explains_itself(tmp_path, monkeypatch):
    app = app_factory(tmp_path)()
    with TestClient(app) as client:
        card = next(
            c
            for c in client.post(
                "/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](TODAY)
            ).json()["cards"]
            if c["indicator"] == "critical"
        )
        _override(client, "lhs-order-sign", card)
        explained = client.get(f"/cards/{card['uuid']}/explanation").json()
        assert (
            explained["rule"]["id"]
            == card["source"]["topic"]["code"]
            == "metformin-renal-contraindication"
        )
        assert explained["rule"]["version"] and explained["rule"]["title"]
        assert explained["citations"] and all(
            c["url"].startswith("http") for c in explained["citations"]
        )
        assert explained["inputs"], "the patient's values that triggered the card"
        assert any("17" in value or "2.8" in value for value in explained["inputs"].values())
        assert explained["feedback"][0]["outcome"] == "overridden"
        assert client.get("/cards/no-such-card/explanation").status_code == 404
    monkeypatch.setenv("LHS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["explain", card["uuid"]])
    assert result.exit_code == 0, result.output
    assert "metformin-renal-contraindication" in result.output
