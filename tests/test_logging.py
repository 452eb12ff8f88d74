"""Logs are JSON lines with request ids, and carry no patient data whatever happens."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from datetime import date

import pytest
from fastapi.testclient import TestClient

from cds_service.observability import JsonFormatter
from point_of_care.examples import EXAMPLES
from tests.service_app import app_factory

NAME, GIVEN, BIRTH, MRN, SSN = "Zebulon", "Quixotic", "1950-07-14", "MRN-7733991", "999-12-3456"


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def _patient_with_phi(request: dict) -> dict:
    request["prefetch"]["patient"] |= {
        "name": [{"family": NAME, "given": [GIVEN]}],
        "birthDate": BIRTH,
        "identifier": [
            {"system": "urn:mrn", "value": MRN},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": SSN},
        ],
    }
    return request


def test_no_phi_in_logs_on_success_errors_and_faults(tmp_path, captured_logs):
    app = app_factory(tmp_path)(sqlite_busy_timeout_ms=10)
    with TestClient(app) as client:
        ok = _patient_with_phi(EXAMPLES["lhs-order-sign"](date.today()))
        assert client.post("/cds-services/lhs-order-sign", json=ok).status_code == 200
        bad = _patient_with_phi(EXAMPLES["lhs-order-sign"](date.today()))
        bad["context"]["patientId"] = f"{NAME} {MRN}"
        assert client.post("/cds-services/lhs-order-sign", json=bad).status_code == 400
        missing = _patient_with_phi(EXAMPLES["lhs-order-sign"](date.today()))
        del missing["prefetch"]["medications"]
        assert client.post("/cds-services/lhs-order-sign", json=missing).status_code == 412
        failing_server = _patient_with_phi(EXAMPLES["lhs-order-sign"](date.today()))
        del failing_server["prefetch"]["medications"]
        failing_server["fhirServer"] = f"http://127.0.0.1:9/fhir/{MRN}"
        assert client.post("/cds-services/lhs-order-sign", json=failing_server).status_code == 200
        feedback = {
            "card": MRN,
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-24T10:00:00Z",
            "overrideReason": {"userComment": f"{NAME} born {BIRTH}"},
        }
        assert (
            client.post(
                "/cds-services/lhs-order-sign/feedback",
                json={"feedback": [feedback, {"card": SSN}]},
            ).status_code
            == 400
        )
    logs = captured_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]
    assert any(line.get("message") == "request" and "request_id" in line for line in lines)
    assert any(line.get("hook_instance") for line in lines)
    for secret in (NAME, GIVEN, BIRTH, MRN, SSN, "example-renal"):
        assert secret not in logs, secret


def test_request_ids_are_returned_and_propagated(tmp_path):
    with TestClient(app_factory(tmp_path)()) as client:
        response = client.get("/cds-services", headers={"X-Request-ID": "ehr-abc.123"})
        assert response.headers["x-request-id"] == "ehr-abc.123"
        hostile = client.get("/cds-services", headers={"X-Request-ID": "bad id\nwith newline"})
        assert hostile.headers["x-request-id"] != "bad id\nwith newline"
        assert len(hostile.headers["x-request-id"]) == 32


def test_metrics_count_cards_feedback_and_fetch_errors(tmp_path):
    with TestClient(app_factory(tmp_path)()) as client:
        shown = client.post(
            "/cds-services/lhs-order-sign", json=EXAMPLES["lhs-order-sign"](date.today())
        ).json()["cards"][0]
        failing = EXAMPLES["lhs-order-sign"](date.today())
        del failing["prefetch"]["allergies"]
        failing["fhirServer"] = "http://127.0.0.1:9/fhir"
        client.post("/cds-services/lhs-order-sign", json=failing)
        client.post(
            "/cds-services/lhs-order-sign/feedback",
            json={
                "feedback": [
                    {
                        "card": shown["uuid"],
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-11-24T10:00:00Z",
                    },
                    {
                        "card": "never-shown",
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-11-24T10:00:00Z",
                    },
                ]
            },
        )
        client.post("/cds-services/%2e%2e/secret", json={})
        metrics = client.get("/metrics").text
    assert (
        'lhs_cards_total{indicator="critical",rule="metformin-renal-contraindication",service="lhs-order-sign"} 2.0'
        in metrics
    )
    assert 'lhs_feedback_total{outcome="overridden",service="lhs-order-sign"} 1.0' in metrics
    assert "lhs_feedback_unknown_cards_total 1.0" in metrics
    assert 'lhs_fhir_fetch_errors_total{reason="transport"} 1.0' in metrics
    assert (
        'lhs_request_duration_seconds_count{route="/cds-services/{service_id}",service="lhs-order-sign",status="200"} 2.0'
        in metrics
    )
    assert "secret" not in metrics


def test_readiness_reports_the_database(tmp_path):
    app = app_factory(tmp_path)()
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "checks": {"database": "ok", "schema": "ok", "spool": "ok", "knowledge": "ok"},
            "spooled": 0,
            # No model is registered in this data folder: reported, and the rules still serve.
            "models": {
                "lhs-readmission-30d": {
                    "status": "missing: no @champion registered",
                    "version": None,
                }
            },
            "experiments": [],
            "shadows": [],
        }
        # The database file is gone and cannot be recreated (a directory takes its place);
        # background tasks may reopen it in between, so until the directory is in place.
        database = tmp_path / "lhs.db"
        for _ in range(100):
            app.state.lhs.store.engine.dispose()
            database.unlink(missing_ok=True)
            with contextlib.suppress(FileExistsError):
                database.mkdir()
                break
        assert database.is_dir()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "unreachable"
