"""Knowledge governance: validation catches broken artifacts, versions diff, FHIR export validates."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app as cli
from knowledge import governance
from knowledge.library import KNOWLEDGE_DIR, load_library

runner = CliRunner()
RULE = "metformin-renal-contraindication"


@pytest.fixture
def knowledge_copy(tmp_path):
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def _edit(folder, rule_id, change):
    path = folder / "rules" / f"{rule_id}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_shipped_library_is_valid():
    assert governance.validate() == []
    result = runner.invoke(cli, ["knowledge", "validate"])
    assert result.exit_code == 0 and "valid" in result.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(citations=[]), "citations"),
        (lambda d: d["citations"][0].pop("url"), "url"),
        (
            lambda d: d.update(value_sets=[*d["value_sets"], "no-such-set"]),
            "unknown value set 'no-such-set'",
        ),
        (lambda d: d.update(surprise="field"), "surprise"),
        (lambda d: d.update(logic="no_such_function"), "unknown logic"),
        (lambda d: d.update(version="2.0.0"), "changelog has no entry for version 2.0.0"),
        (lambda d: [c.update(evidence_grade=None) for c in d["citations"]], "evidence grade"),
    ],
    ids=[
        "no-citation",
        "citation-without-url",
        "broken-value-set",
        "unknown-field",
        "unknown-logic",
        "version-not-in-changelog",
        "no-evidence-grade",
    ],
)
def test_validate_names_each_problem(knowledge_copy, change, expected):
    _edit(knowledge_copy, RULE, change)
    problems = governance.validate(knowledge_copy)
    assert any(expected in p for p in problems), problems


def test_versions_are_kept_and_diffed(knowledge_copy):
    rules = knowledge_copy / "rules"
    shutil.copy(rules / f"{RULE}.yaml", rules / "archive" / f"{RULE}@1.1.0.yaml")

    def new_version(data):
        data["version"] = "1.2.0"
        data["thresholds"]["creatinine_lookback_days"] = 180
        data["changelog"].append(
            {
                "date": "2026-11-25",
                "version": "1.2.0",
                "change": "Creatinine lookback 180 days",
                "reason": "Local nephrology review",
            }
        )

    _edit(knowledge_copy, RULE, new_version)
    assert governance.validate(knowledge_copy) == []
    assert set(governance.archived_versions(RULE, knowledge_copy)) == {"1.0.0", "1.1.0"}
    text = governance.diff(RULE, "1.1.0", "1.2.0", knowledge_copy)
    assert "-version: 1.1.0" in text and "+version: 1.2.0" in text
    assert "+  creatinine_lookback_days: 180" in text
    with pytest.raises(KeyError):
        governance.diff(RULE, "0.9.0", "1.2.0", knowledge_copy)


def test_history_and_show_and_list(tmp_path):
    listed = runner.invoke(cli, ["knowledge", "list"])
    assert all(rule.id in listed.output for rule in load_library().rules)
    shown = runner.invoke(cli, ["knowledge", "show", RULE])
    assert "citations:" in shown.output and "changelog:" in shown.output
    # Without a database the change log alone is shown.
    history = runner.invoke(
        cli, ["knowledge", "history", RULE], env={"LHS_DATA_DIR": str(tmp_path)}
    )
    assert "v1.0.0" in history.output and "archived" in history.output and "why:" in history.output
    assert "no migrated database" in history.output
    assert runner.invoke(cli, ["knowledge", "show", "nope"]).exit_code == 2


def test_plan_definition_export_validates(tmp_path):
    result = runner.invoke(cli, ["knowledge", "export", "--out", str(tmp_path / "fhir")])
    assert result.exit_code == 0, result.output
    from fhir.resources.R4B import get_fhir_model_class

    files = sorted((tmp_path / "fhir").glob("*.json"))
    kinds = {path.name.split("-", 1)[0] for path in files}
    assert kinds == {"PlanDefinition", "Library", "ValueSet"}
    for path in files:
        resource = json.loads(path.read_text())
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    plan = json.loads((tmp_path / "fhir" / f"PlanDefinition-{RULE}.json").read_text())
    assert plan["type"]["coding"][0]["code"] == "eca-rule"
    assert {t["name"] for a in plan["action"] for t in a["trigger"]} == {"order-sign"}
    assert all(r["url"].startswith("http") for r in plan["relatedArtifact"])
