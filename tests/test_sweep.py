"""Every synthetic patient through every service over HTTP, with prefetch built from their record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from hooks.cards import CDSResponse
from point_of_care.sweep import SweepSummary, requests_for_patient
from tests.service_app import app_factory
from tests.shared_data import load_bundle, patient_files

SWEEP_TABLE = pytest.StashKey[str]()


def test_every_patient_through_every_service(tmp_path, request):
    app = app_factory(tmp_path)(evaluation_time=datetime(2021, 4, 1, tzinfo=UTC))
    services = app.state.lhs.services
    summary = SweepSummary()
    calls = 0
    with TestClient(app) as client:
        for path in patient_files():
            cards: dict[str, list[tuple[str, str]]] = {}
            for service, body in requests_for_patient(load_bundle(path), services):
                response = client.post(f"/cds-services/{service.id}", json=body)
                calls += 1
                assert response.status_code == 200, (path.name, service.id, response.text)
                parsed = CDSResponse.model_validate(response.json())
                cards[service.id] = [
                    (card.source.topic.code, card.indicator)
                    for card in parsed.cards
                    if card.source.topic
                ]
                assert len(cards[service.id]) == len(parsed.cards)
            summary.add_patient(cards)
    request.config.stash[SWEEP_TABLE] = summary.table()

    assert summary.patients == len(patient_files())
    assert calls >= 3 * summary.patients
    counts = app.state.lhs.store.counts()
    assert counts["invocation"] == calls
    assert counts["issued_card"] == sum(summary.cards.values())
    rules_fired = {rule for (_, rule, _) in summary.cards}
    # Real records trigger the preventive rule; safety rules fire when their drugs are ordered.
    assert "statin-primary-prevention" in rules_fired
