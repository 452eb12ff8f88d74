"""Feedback analytics against hand-computed values, on SQLite and PostgreSQL, via the store,
the API and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from evaluation.feedback_analytics import (
    DELAY_BIN_GROWTH,
    delay_bin,
    feedback_analytics,
    histogram_median,
    tally,
)
from hooks.cards import Card, Source, Suggestion
from hooks.feedback import FeedbackItem
from storage.repository import IssuedCardInput
from storage.tables import Invocation
from tests.service_app import app_factory


def _card(summary: str) -> Card:
    return Card(
        summary=summary,
        indicator="warning",
        source=Source(label="test"),
        suggestions=[Suggestion(label="Do it")],
        selectionBehavior="at-most-one",
    )


def _call(n: int, hook: str, user: str, cards: list[IssuedCardInput]) -> Invocation:
    return Invocation(
        hook_instance=f"00000000-0000-4000-8000-{n:012d}",
        service_id=f"lhs-{hook}",
        hook=hook,
        patient_key="k" * 64,
        user_reference=user,
        status_code=200,
        card_count=len(cards),
    )


@pytest.fixture
def app(tmp_path, database_url):
    app = app_factory(tmp_path)(database_url=database_url)
    store = app.state.lhs.store
    a1, a2, a3, b1 = _card("A1"), _card("A2"), _card("A3"), _card("B1")
    calls = [
        (
            "order-sign",
            "Practitioner/1",
            [IssuedCardInput(a1, "rule-a", "1.0.0"), IssuedCardInput(a2, "rule-a", "1.0.0")],
        ),
        (
            "patient-view",
            "PractitionerRole/9",
            [IssuedCardInput(b1, "rule-b", "2.0.0"), IssuedCardInput(a3, "rule-a", "1.1.0")],
        ),
        ("patient-view", "PractitionerRole/9", []),
    ]
    for n, (hook, user, cards) in enumerate(calls):
        store.record_invocation(_call(n, hook, user, cards), cards)
    shown = {c.summary: store.card(c.uuid) for c in (a1, a2, b1)}

    def answer(card: Card, outcome: str, seconds: int, reason: dict | None = None) -> None:
        raw = {
            "card": card.uuid,
            "outcome": outcome,
            "outcomeTimestamp": (
                shown[card.summary].created_at + timedelta(seconds=seconds)
            ).isoformat(),
        }
        if outcome == "accepted":
            raw["acceptedSuggestions"] = [{"id": card.suggestions[0].uuid}]
        if reason:
            raw["overrideReason"] = {"reason": reason}
        service = shown[card.summary].service_id  # feedback goes to the service that showed it
        store.record_feedback("", service, [FeedbackItem.model_validate(raw)], [raw])

    answer(a1, "accepted", 30)
    answer(
        a2,
        "overridden",
        90,
        {
            "system": "urn:lhs:codesystem:override-reason",
            "code": "not-applicable",
            "display": "Not applicable to this patient",
        },
    )
    answer(b1, "overridden", 10)
    return app


def test_rates_reasons_and_burden_match_hand_computed_values(app):
    store = app.state.lhs.store
    now = datetime.now(UTC)
    window = (now - timedelta(days=1), now + timedelta(hours=1))
    result = feedback_analytics(store.card_tallies(*window), store.cards_per_call(*window))
    overall = result.overall
    assert (overall.shown, overall.answered, overall.accepted, overall.overridden) == (4, 3, 1, 2)
    a, b = result.by_rule["rule-a"], result.by_rule["rule-b"]
    assert (a.shown, a.answered, a.acceptance_rate, a.override_rate) == (3, 2, 0.5, 0.5)
    # Answered after 30 and 90 s: the histogram's median splits them (it is not the midpoint).
    assert 30 <= a.median_seconds_to_action <= 90
    assert (b.shown, b.answered, b.acceptance_rate, b.override_rate) == (1, 1, 0.0, 1.0)
    assert b.median_seconds_to_action == pytest.approx(10, rel=DELAY_BIN_GROWTH - 1)
    assert result.by_rule_version["rule-a@1.1.0"].answered == 0
    assert result.by_rule_version["rule-a@1.1.0"].acceptance_rate is None
    assert result.by_hook["order-sign"].acceptance_rate == 0.5
    assert result.by_hook["patient-view"].override_rate == 1.0
    assert {k: v.shown for k, v in result.by_role.items()} == {
        "Practitioner": 2,
        "PractitionerRole": 2,
    }
    assert result.override_reasons == {"Not applicable to this patient": 1, "(no reason given)": 1}
    assert result.cards_per_call == {"order-sign": 2.0, "patient-view": 1.0}


def test_the_api_and_the_cli_give_the_same_numbers(app, tmp_path, database_url):
    with TestClient(app) as client:
        body = client.get("/analytics/feedback").json()
    assert body["by_rule"]["rule-a"]["acceptance_rate"] == 0.5
    assert body["override_reasons"]["(no reason given)"] == 1
    env = {
        "LHS_DATA_DIR": str(tmp_path),
        "LHS_DATABASE_URL": database_url,
        "LHS_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    result = CliRunner().invoke(cli, ["analytics", "--json", "--mlflow"], env=env)
    assert result.exit_code == 0, result.output
    printed, _ = json.JSONDecoder().raw_decode(result.output)
    assert printed["by_rule"] == body["by_rule"]
    assert "logged to MLflow experiment feedback-analytics" in result.output
    from mlflow import MlflowClient

    client = MlflowClient(env["LHS_MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("feedback-analytics")
    # Artifacts stay beside the SQLite store, not in ./mlruns of whatever folder ran the command.
    assert experiment.artifact_location.startswith(tmp_path.resolve().as_uri())
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["acceptance_rate.rule-a"] == 0.5
    table = CliRunner().invoke(cli, ["analytics"], env=env)
    assert "rule-a" in table.output and "Not applicable to this patient" in table.output


def test_the_database_counts_what_the_rows_count(app):
    store = app.state.lhs.store
    now = datetime.now(UTC)
    window = (now - timedelta(days=1), now + timedelta(hours=1))
    per_call = store.cards_per_call(*window)
    in_sql = feedback_analytics(store.card_tallies(*window), per_call)
    in_python = feedback_analytics(tally(store.card_feedback_rows(*window)), per_call)

    def counts(result):
        groups = {"overall": result.overall, **result.by_rule_version, **result.by_role}
        return {k: (r.shown, r.answered, r.accepted, r.overridden) for k, r in groups.items()}

    assert counts(in_sql) == counts(in_python)
    assert in_sql.override_reasons == in_python.override_reasons
    assert in_sql.by_week.keys() == in_python.by_week.keys()
    # The same histogram bins, but SQL times count in (fractional) days: a time on a bin's
    # edge may fall in the next bin, so the medians agree to within one bin.
    for name, rates in in_python.by_rule.items():
        assert in_sql.by_rule[name].median_seconds_to_action == pytest.approx(
            rates.median_seconds_to_action, rel=DELAY_BIN_GROWTH - 1
        )


def test_times_to_action_are_counted_in_geometric_bins_and_their_median_read_back():
    times = [0.2, 4.0, 45.0, 45.0, 600.0, 7200.0, 90 * 86400.0]
    histogram: dict[int, int] = {}
    for seconds in times:
        histogram[delay_bin(seconds)] = histogram.get(delay_bin(seconds), 0) + 1
    # Seven times: the fourth (45 s) is the median; the histogram gives it to within its bin.
    assert histogram_median(histogram) == pytest.approx(45.0, rel=DELAY_BIN_GROWTH - 1)
    assert delay_bin(0.2) == 0 and delay_bin(90 * 86400.0) == delay_bin(10**9)  # open ends
    assert histogram_median({}) is None
