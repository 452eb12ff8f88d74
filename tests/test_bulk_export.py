"""The Bulk Data $export client against a fake Bulk Data server over real HTTP: kick-off,
polling with Retry-After and X-Progress, transient and fatal errors as OperationOutcomes,
the bearer token where (and only where) it belongs, and the download; then the export
imported into the feed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from cli.main import app as cli
from fhir_client.bulk_export import BulkExportClient, BulkExportError, ExportRequest
from fhir_client.bulk_patients import bulk_patient_records
from tests.live_server import serve

TOKEN = "backend-services-token"
FILES = ("Patient.000.ndjson", "Encounter.000.ndjson", "Condition.000.ndjson")


def _outcome(status: int, code: str, diagnostics: str) -> JSONResponse:
    return JSONResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
        },
        status_code=status,
    )


@dataclass
class FakeBulkServer:
    """A Bulk Data server whose exports answer a scripted sequence of status responses."""

    source: Path
    status_script: list[str]
    requires_token: bool = True
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next):  # type: ignore[no-untyped-def]
            self.requests.append(
                (request.url.path, dict(request.headers), dict(request.query_params))
            )
            return await call_next(request)

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {TOKEN}"

        @app.get("/fhir/Patient/$export")
        def kick_off(request: Request) -> Response:
            if not authorised(request):
                return _outcome(401, "login", "a valid bearer token is required")
            if request.headers.get("prefer") != "respond-async":
                return _outcome(400, "invalid", "Prefer: respond-async is required")
            if "Unknown" in request.query_params.get("_type", ""):
                return _outcome(400, "not-supported", "resource type Unknown is not supported")
            return Response(status_code=202, headers={"Content-Location": "/fhir/status/job-1"})

        @app.get("/fhir/status/job-1")
        def status(request: Request) -> Response:
            if not authorised(request):
                return _outcome(401, "login", "a valid bearer token is required")
            step = self.status_script.pop(0) if self.status_script else "done"
            if step == "progress":
                return Response(
                    status_code=202, headers={"X-Progress": "50% exported", "Retry-After": "3"}
                )
            if step == "busy":
                return Response(status_code=429, headers={"Retry-After": "5"})
            if step == "transient":
                return _outcome(503, "transient", "the export database is restarting")
            if step == "fail":
                return _outcome(500, "exception", "the export ran out of disk space")
            base = str(request.base_url).rstrip("/")
            return JSONResponse(
                {
                    "transactionTime": "2026-12-05T06:00:00Z",
                    "request": f"{base}/fhir/Patient/$export",
                    "requiresAccessToken": self.requires_token,
                    "output": [
                        {"type": name.split(".")[0], "url": f"{base}/files/{name}"}
                        for name in FILES
                    ],
                    "error": [{"type": "OperationOutcome", "url": f"{base}/files/errors.ndjson"}],
                }
            )

        @app.get("/files/{name}")
        def download(name: str, request: Request) -> Response:
            if self.requires_token and not authorised(request):
                return _outcome(401, "login", "a valid bearer token is required")
            if not self.requires_token and "authorization" in request.headers:
                return _outcome(400, "security", "this file server must not see the token")
            if name == "errors.ndjson":
                body = b'{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"processing"}]}\n'
            else:
                body = (self.source / name).read_bytes()
            return Response(body, media_type="application/fhir+ndjson")

        return app


@pytest.fixture
def server(bulk_sample: Path) -> Iterator[tuple[FakeBulkServer, str]]:
    fake = FakeBulkServer(bulk_sample, ["progress", "transient", "busy", "progress"])
    with serve(fake.app()) as url:
        yield fake, f"{url}/fhir"


def test_an_export_is_polled_as_told_and_downloaded_with_the_token(server, bulk_sample, tmp_path):
    fake, base = server
    waits: list[float] = []
    said: list[str] = []
    client = BulkExportClient(base, TOKEN, sleep=waits.append, progress=said.append)
    manifest, files = client.export(
        ExportRequest(types=("Patient", "Encounter", "Condition"), since=datetime(2026, 1, 1)),
        tmp_path / "export",
    )
    client.close()

    path, headers, params = fake.requests[0]
    assert path == "/fhir/Patient/$export"
    assert headers["prefer"] == "respond-async"
    assert headers["accept"] == "application/fhir+json"
    assert params == {
        "_outputFormat": "application/fhir+ndjson",
        "_type": "Patient,Encounter,Condition",
        "_since": "2026-01-01T00:00:00+00:00",
    }
    # Retry-After of each 202 and 429, the default for a transient error without one.
    assert waits == [3.0, 2.0, 5.0, 3.0]
    assert said == ["in progress: 50% exported", "in progress: 50% exported"]
    assert manifest.requires_access_token
    assert [f.path.name for f in files] == [*FILES, "OperationOutcome.000.ndjson"]
    assert files[-1].path.parent.name == "error"
    for name in FILES:
        assert (tmp_path / "export" / name).read_bytes() == (bulk_sample / name).read_bytes()
    downloads = [h for p, h, _ in fake.requests if p.startswith("/files/")]
    assert all(h["authorization"] == f"Bearer {TOKEN}" for h in downloads)
    assert all(h["accept"] == "application/fhir+ndjson" for h in downloads)
    records = list(bulk_patient_records(tmp_path / "export"))
    assert len(records) == 138 and all(r.encounters() for r in records)


def test_files_that_need_no_token_are_fetched_without_it(bulk_sample, tmp_path):
    fake = FakeBulkServer(bulk_sample, [], requires_token=False)
    with serve(fake.app()) as url:
        client = BulkExportClient(f"{url}/fhir", TOKEN, sleep=lambda _: None)
        _, files = client.export(ExportRequest(), tmp_path)
        client.close()
    assert len(files) == 4
    assert all("authorization" not in h for p, h, _ in fake.requests if p.startswith("/files/"))


def test_a_failed_export_is_reported_with_the_servers_outcome(bulk_sample, tmp_path):
    fake = FakeBulkServer(bulk_sample, ["progress", "fail"])
    with serve(fake.app()) as url:
        client = BulkExportClient(f"{url}/fhir", TOKEN, sleep=lambda _: None)
        with pytest.raises(BulkExportError, match="out of disk space"):
            client.export(ExportRequest(), tmp_path)
        client.close()


def test_an_export_that_does_not_finish_in_time_is_given_up(bulk_sample, tmp_path):
    fake = FakeBulkServer(bulk_sample, ["progress"] * 10)
    with serve(fake.app()) as url:
        client = BulkExportClient(f"{url}/fhir", TOKEN, sleep=lambda _: None, max_wait=10)
        with pytest.raises(BulkExportError, match="not complete after 9 s"):
            client.export(ExportRequest(), tmp_path)
        client.close()


def test_the_cli_exports_with_the_configured_token_and_fails_in_one_line(
    server, tmp_path, monkeypatch
):
    fake, base = server
    fake.status_script.clear()
    runner = CliRunner()
    out = tmp_path / "export"
    refused = runner.invoke(cli, ["bulk", "export", base, "--out", str(out)], env={})
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "error: export kick-off refused: HTTP 401: a valid bearer token is required"
    )
    env = {"LHS_FHIR_SYNC_TOKEN": TOKEN}
    unknown = runner.invoke(
        cli, ["bulk", "export", base, "--out", str(out), "--type", "Patient,Unknown"], env=env
    )
    assert "resource type Unknown is not supported" in unknown.output
    done = runner.invoke(
        cli,
        ["bulk", "export", base, "--out", str(out), "--type", "Patient,Encounter,Condition"],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "Patient.000.ndjson  138 resources" in done.output
    assert "1 error outcomes" in done.output


def test_an_export_is_imported_into_the_feed_once(bulk_sample, tmp_path):
    data = tmp_path / "data"
    env = {"LHS_DATA_DIR": str(data), "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters"}
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "Condition.ndjson").write_text(
        '{"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p"}, '
        '"clinicalStatus": "active"}\nnot json\n'
    )
    arguments = ["bulk", "import", "--fhir-server", "https://ehr.example.org/fhir"]
    first = runner.invoke(cli, [*arguments, str(bulk_sample)], env=env)
    assert first.exit_code == 0, first.output
    assert "Patient 138" in first.output and "rejected 0" in first.output
    again = runner.invoke(cli, [*arguments, str(bulk_sample)], env=env)
    assert "stored 0, updated 0" in again.output
    bad = runner.invoke(cli, [*arguments, str(tmp_path / "bad")], env=env)
    assert "rejected 2" in bad.output
    assert "Condition.ndjson line 1 clinicalStatus" in bad.output
    assert "Condition.ndjson line 2: no resource" in bad.output
    empty = runner.invoke(cli, [*arguments, str(tmp_path)], env=env)
    assert empty.exit_code == 2
    assert "no NDJSON files" in empty.output
