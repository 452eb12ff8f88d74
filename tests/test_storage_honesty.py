"""Storage never claims what it did not do: an unmigrated or outdated database is refused
at start or reported by /readyz, instead of answering calls whose writes all go nowhere."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds_service.app import create_app
from cds_service.config import Settings
from cli.main import app as cli
from cli.service import prepare_database
from storage.migrate import current_revision, head_revision, upgrade_database


def test_serve_refuses_a_postgresql_database_that_is_behind(postgres_url, monkeypatch, tmp_path):
    monkeypatch.setenv("LHS_DATABASE_URL", postgres_url)
    monkeypatch.setenv("LHS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert "never migrated" in result.output
    upgrade_database(postgres_url, "0011")
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert f"at 0011, this code needs {head_revision()}" in result.output


def test_serve_migrates_the_embedded_sqlite_database(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    prepare_database(settings)
    assert current_revision(settings.resolved_database_url) == head_revision()


def test_readyz_says_not_ready_while_the_schema_is_behind(tmp_path):
    settings = Settings(data_dir=tmp_path, auth="off", pseudonym_key="k" * 32)
    upgrade_database(settings.resolved_database_url, "0011")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "needs" in response.json()["checks"]["schema"]
        upgrade_database(settings.resolved_database_url)
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] | {"knowledge": "ok"} == {
            "database": "ok",
            "schema": "ok",
            "spool": "ok",
            "knowledge": "ok",
        }


def test_readyz_says_not_ready_while_the_spool_is_over_its_limit(tmp_path):
    settings = Settings(data_dir=tmp_path, auth="off", pseudonym_key="k" * 32, spool_ready_limit=2)
    upgrade_database(settings.resolved_database_url)
    app = create_app(settings)
    for n in range(2):
        app.state.lhs.spool.spool_feedback("", "lhs-order-sign", [{"card": f"c{n}"}])
    # Without the lifespan nothing drains the spool: the backlog stays as written.
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503
    assert response.json()["spooled"] == 2
    assert response.json()["checks"]["spool"] == "2 records wait to be stored (limit 2)"
