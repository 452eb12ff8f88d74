"""Randomized experiments on rules: definitions checked against their rule, stable
assignment, holdouts that withhold (but never critical cards), every assignment stored, and
`lhs experiment analyze` reporting what happened, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from hooks.requests import HookRequest
from knowledge.experiment import (
    EXPERIMENTS_DIR,
    ExperimentalRule,
    ExperimentDefinition,
    load_experiment,
)
from knowledge.library import load_library
from point_of_care.catalogue import build_services
from point_of_care.examples import EXAMPLES
from point_of_care.invocation import run_service
from tests.service_app import app_factory
from tests.waiting import wait_for

runner = CliRunner()
TODAY = date.today()
EXAMPLE = EXPERIMENTS_DIR / "lace-follow-up-wording.yaml"
RULE = "lace-readmission-risk"


def _definition(**changes) -> dict:
    raw = load_experiment(EXAMPLE).model_dump(mode="json")
    return raw | changes


def test_definitions_are_checked_against_their_rule():
    library = load_library()
    with pytest.raises(ValueError, match="add up to 1"):
        ExperimentDefinition.model_validate(
            _definition(arms=[{**a, "share": 0.5} for a in _definition()["arms"]])
        )
    with pytest.raises(ValueError, match="control"):
        ExperimentDefinition.model_validate(_definition(control="holdout"))
    wrong_field = _definition()
    wrong_field["arms"][1]["cards"]["high_risk"]["summary"] = "LACE {lace_total}"
    with pytest.raises(ValueError, match="lace_total"):
        ExperimentDefinition.model_validate(wrong_field).check_against(library.rule(RULE).artifact)
    # A rule that can show critical cards cannot have a holdout.
    critical = next(r for r in library.rules if r.artifact.can_be_critical)
    on_critical = ExperimentDefinition.model_validate(_definition(rule=critical.id))
    with pytest.raises(ValueError, match="critical"):
        on_critical.check_against(critical.artifact)


def test_assignment_is_stable_and_follows_the_shares():
    definition = load_experiment(EXAMPLE)
    keys = [f"patient-{i}" for i in range(20_000)]
    arms = Counter(definition.assign(k).id for k in keys)
    assert arms["current"] / len(keys) == pytest.approx(0.45, abs=0.015)
    assert arms["holdout"] / len(keys) == pytest.approx(0.10, abs=0.01)
    assert all(definition.assign(k) == definition.assign(k) for k in keys[:100])
    # Another experiment id randomizes independently.
    other = ExperimentDefinition.model_validate(_definition(id="another"))
    same = sum(definition.assign(k).id == other.assign(k).id for k in keys)
    assert same / len(keys) == pytest.approx(0.45**2 * 2 + 0.1**2, abs=0.02)


def _discharge(patient: int) -> dict:
    request = json.dumps(EXAMPLES["lhs-encounter-discharge"](TODAY))
    return json.loads(request.replace("example-discharge", f"exp-patient-{patient}"))


def _env(app) -> dict[str, str]:
    settings = app.state.lhs.settings
    return {
        "LHS_DATA_DIR": str(settings.data_dir),
        "LHS_DATABASE_URL": settings.resolved_database_url,
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
    }


def _lace_card(response) -> dict | None:
    return next((c for c in response.json()["cards"] if c["source"]["topic"]["code"] == RULE), None)


def test_an_experiment_runs_end_to_end_and_is_analysed(tmp_path, database_url):
    app = app_factory(tmp_path)(database_url=database_url, spool_drain_interval=0.1)
    env = _env(app)
    started = runner.invoke(cli, ["experiment", "start", str(EXAMPLE), "--by", "QI board"], env=env)
    assert started.exit_code == 0, started.output
    again = runner.invoke(cli, ["experiment", "start", str(EXAMPLE), "--by", "QI board"], env=env)
    assert again.exit_code == 1 and "already" in again.output
    definition = load_experiment(EXAMPLE)
    patients = 60
    with TestClient(app) as client:
        wait_for(lambda: "lace-follow-up-wording" in app.state.lhs.experiments)
        assert client.get("/readyz").json()["experiments"] == ["lace-follow-up-wording"]
        arms: dict[int, str] = {}
        shown = Counter()
        accepted = Counter()
        for patient in range(patients):
            response = client.post(
                "/cds-services/lhs-encounter-discharge", json=_discharge(patient)
            )
            assert response.status_code == 200
            card = _lace_card(response)
            # The same patient gets the same arm on a second call.
            repeat = _lace_card(
                client.post("/cds-services/lhs-encounter-discharge", json=_discharge(patient))
            )
            assert (card is None) == (repeat is None)
            if card is None:
                arms[patient] = "holdout"
                continue
            arm = "action-first" if card["summary"].startswith("Book follow-up") else "current"
            arms[patient] = arm
            assert repeat["summary"] == card["summary"]
            shown[arm] += 1
            if patient % 2 == 0:  # every other patient's card is accepted
                accepted[arm] += 1
                feedback = {
                    "card": card["uuid"],
                    "outcome": "accepted",
                    "outcomeTimestamp": datetime.now(UTC).isoformat(),
                    "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                }
            else:
                feedback = {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": datetime.now(UTC).isoformat(),
                    "overrideReason": {"reason": card["overrideReasons"][1]},
                }
            stored = client.post(
                "/cds-services/lhs-encounter-discharge/feedback", json={"feedback": [feedback]}
            )
            assert stored.status_code == 200, stored.text
        assert set(arms.values()) == {"current", "action-first", "holdout"}

    store = app.state.lhs.store
    rows = store.assignments("lace-follow-up-wording")
    assert len(rows) == 2 * patients  # every card, shown or withheld, on every call
    withheld = [r for r in rows if not r.shown]
    assert {r.arm for r in withheld} == {"holdout"} and withheld[0].card["summary"]
    assert {r.arm for r in rows} == set(arms.values())

    analysed = runner.invoke(cli, ["experiment", "analyze", definition.id, "--json"], env=env)
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.output)
    by_arm = {a["arm"]: a for a in result["arms"]}
    expected = Counter(arms.values())
    for arm, summary in by_arm.items():
        assert summary["patients"] == expected[arm]
        assert summary["shown"] == shown[arm]
        assert summary["accepted"] == accepted[arm]
    assert by_arm["holdout"]["acceptance_rate"] is None
    comparison = result["acceptance"]["action-first"]
    difference = (
        accepted["action-first"] / shown["action-first"] - accepted["current"] / shown["current"]
    )
    assert comparison["difference"] == pytest.approx(difference)
    assert comparison["ci_low"] <= difference <= comparison["ci_high"]
    assert result["recommendation"].startswith("continue:")  # 60 patients are far too few
    assert result["outcome"] == {}  # the 30-day windows have not closed

    table = runner.invoke(cli, ["experiment", "analyze", definition.id], env=env)
    assert "recommendation: continue" in table.output and "action-first" in table.output
    stopped = runner.invoke(
        cli, ["experiment", "stop", definition.id, "--reason", "test over"], env=env
    )
    assert stopped.exit_code == 0
    listing = runner.invoke(cli, ["experiment", "list"], env=env)
    assert "stopped" in listing.output and "test over" in listing.output


def test_outcomes_are_counted_once_their_window_has_closed(tmp_path):
    """A patient discharged 40 days ago, readmitted 10 days later: an event in their arm."""
    app = app_factory(tmp_path)(spool_drain_interval=0.1)
    env = _env(app)
    assert (
        runner.invoke(
            cli, ["experiment", "start", str(EXAMPLE), "--by", "QI board"], env=env
        ).exit_code
        == 0
    )
    past = TODAY - timedelta(days=40)
    with TestClient(app) as client:
        wait_for(lambda: "lace-follow-up-wording" in app.state.lhs.experiments)
        for patient in range(6):
            request = json.loads(
                json.dumps(EXAMPLES["lhs-encounter-discharge"](past)).replace(
                    "example-discharge", f"old-patient-{patient}"
                )
            )
            assert (
                client.post("/cds-services/lhs-encounter-discharge", json=request).status_code
                == 200
            )
            if patient < 3:
                readmission = {
                    "resourceType": "Encounter",
                    "id": f"readmit-{patient}",
                    "status": "finished",
                    "class": {"code": "EMER"},
                    "subject": {"reference": f"Patient/old-patient-{patient}"},
                    "period": {
                        "start": f"{(past + timedelta(days=10)).isoformat()}T10:00:00Z",
                        "end": f"{(past + timedelta(days=10)).isoformat()}T14:00:00Z",
                    },
                }
                bundle = {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": readmission}],
                }
                assert client.post("/outcomes", json=bundle).status_code == 200
    result = json.loads(
        runner.invoke(
            cli, ["experiment", "analyze", "lace-follow-up-wording", "--json"], env=env
        ).output
    )
    assert sum(a["outcome_patients"] for a in result["arms"]) == 6
    assert sum(a["outcome_events"] for a in result["arms"]) == 3


def test_the_shipped_experiment_definitions_are_valid():
    library = load_library()
    for path in sorted(Path(EXPERIMENTS_DIR).glob("*.yaml")):
        definition = load_experiment(path)
        definition.check_against(library.rule(definition.rule).artifact)


def test_a_critical_card_is_never_withheld_even_by_a_holdout_arm():
    """Start-up checks forbid such an experiment; the arm itself refuses too (defence in depth)."""
    library = load_library()
    rule = library.rule("metformin-renal-contraindication")
    definition = ExperimentDefinition.model_validate(
        _definition(
            rule=rule.id,
            arms=[
                {"id": "current", "share": 0.5, "description": "as shipped"},
                {"id": "holdout", "share": 0.5, "description": "no card", "holdout": True},
            ],
        )
    )
    wrapped = ExperimentalRule(definition, {"current": rule, "holdout": rule})
    service = build_services(library)["lhs-order-sign"]
    service = dataclasses.replace(service, recommenders=(wrapped,))
    key = next(k for k in (f"k{i}" for i in range(100)) if definition.assign(k).id == "holdout")
    request = HookRequest.model_validate(EXAMPLES["lhs-order-sign"](TODAY))
    result = asyncio.run(run_service(service, request, subject_key=key))
    assert [(a.rule_id, a.card.indicator) for a in result.advice] == [(rule.id, "critical")]
    assert result.advice[0].assignment.arm == "holdout" and result.withheld == []


def test_a_threshold_arm_changes_who_gets_the_card():
    """An arm may move a threshold: with high risk from 16, the LACE 15 discharge gets no
    card in that arm, and the same card as shipped in the other."""
    library = load_library()
    definition = ExperimentDefinition.model_validate(
        _definition(
            arms=[
                {"id": "current", "share": 0.5, "description": "high risk from 10"},
                {
                    "id": "stricter",
                    "share": 0.5,
                    "description": "high risk from 16",
                    "thresholds": {"high_risk_min_score": 16},
                },
            ]
        )
    )
    unknown = _definition(arms=[*definition.model_dump(mode="json")["arms"]])
    unknown["arms"][1]["thresholds"] = {"no_such_threshold": 1}
    with pytest.raises(ValueError, match="unknown thresholds"):
        ExperimentDefinition.model_validate(unknown).check_against(library.rule(RULE).artifact)
    service = build_services(library, experiments={definition.id: definition})[
        "lhs-encounter-discharge"
    ]
    request = HookRequest.model_validate(EXAMPLES["lhs-encounter-discharge"](TODAY))
    seen = set()
    for key in (f"patient-{i}" for i in range(12)):
        result = asyncio.run(run_service(service, request, subject_key=key))
        lace = [a for a in result.advice if a.rule_id == RULE]
        arm = definition.assign(key).id
        seen.add(arm)
        assert bool(lace) == (arm == "current")
        if lace:
            assert (
                lace[0].assignment.arm == "current" and "high risk from 10" in lace[0].card.summary
            )
    assert seen == {"current", "stricter"}
