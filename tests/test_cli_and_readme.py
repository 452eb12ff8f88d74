"""The `lhs` CLI and the README's examples, run against a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as cli
from storage.migrate import head_revision
from tests.live_server import serve
from tests.service_app import app_factory
from tests.shared_data import CDS_HOOKS_EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def live_service(tmp_path):
    with serve(app_factory(tmp_path)()) as url:
        yield url


def test_example_then_call_prints_the_cards(live_service, tmp_path):
    printed = runner.invoke(cli, ["example", "lhs-order-sign"])
    assert printed.exit_code == 0
    request_file = tmp_path / "order-sign.json"
    request_file.write_text(printed.output)
    result = runner.invoke(
        cli, ["call", "lhs-order-sign", str(request_file), "--url", live_service]
    )
    assert result.exit_code == 0, result.output
    assert "[CRITICAL]" in result.output
    assert "suggestion:" in result.output and "delete" in result.output


def test_call_completes_a_context_only_spec_example(live_service):
    example = CDS_HOOKS_EXAMPLES / "hook-patient-view-example-1.json"
    result = runner.invoke(cli, ["call", "lhs-patient-view", str(example), "--url", live_service])
    # The spec's example carries no data and no FHIR server: the spec's answer is 412,
    # said in one line with the prefetch keys that could not be obtained.
    assert result.exit_code == 1
    assert result.output.startswith("error: the service answered 412: required FHIR data")
    assert "prefetch.patient: unavailable" in result.output


def test_db_upgrade_creates_the_embedded_database(tmp_path):
    env = {"LHS_DATA_DIR": str(tmp_path / "data"), "LHS_DATABASE_URL": ""}
    result = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision()}" in result.output
    assert (tmp_path / "data" / "lhs.db").exists()


def _readme_try_it_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_readme_examples_run_as_printed(live_service, tmp_path):
    """The README's commands, with only the port changed to the test server's."""
    script = _readme_try_it_block().replace("http://127.0.0.1:8000", live_service)
    script = script.replace("/tmp/", f"{tmp_path}/")
    env = os.environ | {"LHS_SERVICE_URL": live_service}
    script = script.replace(".venv/bin/lhs", str(Path(sys.executable).parent / "lhs"))
    completed = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    outputs = [completed.stdout]
    joined = "\n".join(outputs)
    assert '"services"' in joined
    assert "[CRITICAL]" in joined
    # The feedback is on the card the README's call was shown, at a true time: stored as sent.
    assert '{"stored":1,"duplicates":0,"unknownCards":[],"adjustedTimestamps":[]}' in joined


def test_readme_outcomes_example_runs_as_printed(live_service):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Learning from practice", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    script = textwrap.dedent(block).replace("http://127.0.0.1:8000", live_service)
    completed = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["stored"] == 1


def test_the_docker_image_ships_every_package_the_project_installs():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
