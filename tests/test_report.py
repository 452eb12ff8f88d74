"""The learning community report: its numbers against hand-computed values, its plots embedded."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import update
from sqlmodel import col
from typer.testing import CliRunner

from cli.analytics import gather_report
from cli.main import app as cli
from evaluation.experiments import wilson_interval
from evaluation.feedback_analytics import week_of
from evaluation.html_parts import percent
from evaluation.report import render_report
from fhir_client.outcomes import OutcomeInput
from hooks.cards import Card, Source, Suggestion
from hooks.feedback import FeedbackItem
from storage.repository import IssuedCardInput, PredictionInput, ShadowInput
from storage.tables import ChangeProposal, Invocation, IssuedCard, ShadowRun
from tests.test_feedback_analytics import app  # noqa: F401  (the shared fixture)

RISKS = [0.1, 0.2, 0.6, 0.7]
LABELS = [0, 0, 1, 0]


def _labelled_predictions(store) -> None:
    for i, risk in enumerate(RISKS):
        store.record_invocation(
            Invocation(
                hook_instance=f"10000000-0000-4000-8000-{i:012d}",
                service_id="lhs-encounter-discharge",
                hook="encounter-discharge",
                patient_key="p" * 64,
                status_code=200,
            ),
            [],
            [
                PredictionInput(
                    "lhs-readmission-30d",
                    "1",
                    risk,
                    0.12,
                    {"age_years": 70.0 + i, "male": 1.0},
                    {},
                    datetime(2026, 1, 1, tzinfo=UTC),
                    30,
                )
            ],
        )
    predictions = store.predictions("lhs-readmission-30d")[::-1]
    store.set_labels({p.id: label for p, label in zip(predictions, LABELS, strict=True)})


def test_report_figures_match_hand_computed_values(app):  # noqa: F811
    store = app.state.lhs.store
    _labelled_predictions(store)
    now = datetime.now(UTC)
    page = render_report(gather_report(store, now - timedelta(days=30), now + timedelta(hours=1)))
    text = re.sub(r"<[^>]+>", " ", page)
    # 4 cards shown, 3 answered: 1 accepted (33%), 2 overridden (67%).
    assert "4 cards shown, 3 answered: 33% accepted and 67% overridden" in text
    # rule-a: shown 3, answered 2, accepted 50%, no previous period, overridden 50%.
    assert re.search(r"rule-a\s+3\s+2\s+50%\s+n/a\s+50%", text)
    assert "Not applicable to this patient" in text and "(no reason given)" in text
    # 4 labelled predictions: observed 1/4, mean predicted (0.1+0.2+0.6+0.7)/4 = 40%.
    assert "4 predictions with a known outcome: observed rate 25%, mean predicted risk 40%" in text
    assert re.search(r"sex\s+male\s+4\s+1\s+25%\s+40%\s+0\.67", text)  # AUROC 2/3
    assert page.count("data:image/png;base64,") == 2  # acceptance by week, calibration
    # At the threshold 0.12, three of four flagged, the one event among them; one event is
    # too few to judge.
    flagged, sensitivity, ppv = (
        f"{percent(k / n)} ({percent(wilson_interval(k, n)[0])}-{percent(wilson_interval(k, n)[1])})"
        for k, n in ((3, 4), (1, 1), (1, 3))
    )
    assert re.search(
        rf"sex\s+male\s+4\s+1\s+{re.escape(flagged)}\s+{re.escape(sensitivity)}\s+"
        rf"{re.escape(ppv)}\s+3\.0\s+too few to judge",
        text,
    )
    # One version, no card accepted: one row, its AUROC not judged on one event.
    assert re.search(r"v1\s+untreated\s+4\s+1\s+25%\s+40%\s+\S+\s+too few to judge", text)


def test_performance_is_split_by_model_version_and_treatment():
    from evaluation.report import LabelledPrediction, performance_by_version

    rng = np.random.default_rng(2)

    def predictions(version: str, treated: bool, n: int) -> list[LabelledPrediction]:
        risk = rng.uniform(0.05, 0.6, n)
        labels = (rng.uniform(size=n) < risk).astype(int)
        return [
            LabelledPrediction(float(r), int(y), "female", "65+", {}, version, treated)
            for r, y in zip(risk, labels, strict=True)
        ]

    v1, v2, v2_treated = (
        predictions("1", False, 200),
        predictions("2", False, 150),
        predictions("2", True, 6),
    )
    rows = performance_by_version(v2_treated + v1 + v2)
    assert [row[:3] for row in rows] == [
        ["v1", "untreated", 200],
        ["v2", "untreated", 150],
        ["v2", "treated", 6],
    ]
    for row, group in zip(rows, (v1, v2, v2_treated), strict=True):
        assert row[3] == sum(p.label for p in group)
        assert row[6] == f"{sum(p.label for p in group) / sum(p.risk for p in group):.2f}"
    assert "95% CI" in rows[0][7] and "95% CI" in rows[1][7]
    assert rows[2][7] == "too few to judge"


def test_lhs_report_writes_the_file_and_logs_it_to_mlflow(app, tmp_path, database_url):  # noqa: F811
    out = tmp_path / "report.html"
    env = {
        "LHS_DATA_DIR": str(tmp_path),
        "LHS_DATABASE_URL": database_url,
        "LHS_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    result = CliRunner().invoke(
        cli, ["report", "--days", "7", "--out", str(out), "--mlflow"], env=env
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")
    from mlflow import MlflowClient

    client = MlflowClient(env["LHS_MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("learning-reports").experiment_id])
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [
        "improvements",
        "report.html",
    ]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "improvements")}
    assert logged == {
        f"improvements/{name}.json"
        for name in ("charts", "voices", "shadows", "experiments", "changes")
    }


RULE = "lace-readmission-risk"


def _week_of_cards(store, weeks_ago: int, version: str, accepted: int, n: int, now) -> None:
    """n answered LACE cards shown ``weeks_ago`` weeks before ``now``, ``accepted`` of them
    accepted, the others overridden with a comment."""
    shown_at = now - timedelta(weeks=weeks_ago)
    cards = [
        Card(
            summary=f"LACE {version}",
            indicator="warning",
            source=Source(label="t"),
            suggestions=[Suggestion(label="Book follow-up")],
            selectionBehavior="any",
        )
        for _ in range(n)
    ]
    store.record_invocation(
        Invocation(
            hook_instance=f"20000000-0000-4000-8000-{weeks_ago:012d}",
            service_id="lhs-encounter-discharge",
            hook="encounter-discharge",
            patient_key="q" * 64,
            status_code=200,
        ),
        [IssuedCardInput(card, RULE, version) for card in cards],
    )
    items = [
        FeedbackItem.model_validate(
            {
                "card": card.uuid,
                "outcome": "accepted",
                "outcomeTimestamp": shown_at.isoformat(),
                "acceptedSuggestions": [{"id": card.suggestions[0].uuid}],
            }
            if i < accepted
            else {
                "card": card.uuid,
                "outcome": "overridden",
                "outcomeTimestamp": shown_at.isoformat(),
                "overrideReason": {"userComment": f"already booked ({version})"},
            }
        )
        for i, card in enumerate(cards)
    ]
    store.record_feedback(
        "", "lhs-encounter-discharge", items, [i.model_dump(mode="json") for i in items]
    )
    with store.engine.begin() as connection:  # the cards were shown back then
        connection.execute(
            update(IssuedCard)
            .where(col(IssuedCard.uuid).in_([c.uuid for c in cards]))
            .values(created_at=shown_at)
        )


def test_the_report_charts_rules_over_time_and_shows_voices_shadow_runs_and_changes(
    tmp_path, database_url
):
    from tests.service_app import app_factory

    store = app_factory(tmp_path)(database_url=database_url).state.lhs.store
    now = datetime.now(UTC)
    # 1.1.0 for weeks 12 to 7 ago, 6 of 30 accepted a week; 1.2.0 since, 21 of 30.
    for weeks_ago in range(12, 0, -1):
        old = weeks_ago >= 7
        _week_of_cards(store, weeks_ago, "1.1.0" if old else "1.2.0", 6 if old else 21, 30, now)
    store.start_shadow(
        ShadowRun(
            id="lace-12",
            kind="rule",
            subject=RULE,
            candidate_version="1.3.0",
            definition={},
            status="active",
            started_by="QI",
        )
    )
    store.record_invocation(
        Invocation(
            hook_instance="30000000-0000-4000-8000-000000000001",
            service_id="lhs-encounter-discharge",
            hook="encounter-discharge",
            patient_key="r" * 64,
            status_code=200,
        ),
        [],
        shadows=[
            ShadowInput(
                "lace-12",
                "1.2.0",
                "1.3.0",
                "missed",
                False,
                [{"indicator": "warning", "summary": "LACE 10"}],
                [],
            )
        ],
    )
    # One readmission, 9 weeks ago plus a day: within 30 days of the cards of weeks 12 to 9.
    readmitted = now - timedelta(weeks=9) + timedelta(days=1)
    store.record_outcomes(
        [
            OutcomeInput(
                "Encounter/readmission",
                "q" * 64,
                "Encounter",
                "finished",
                "IMP",
                [],
                readmitted,
                readmitted + timedelta(days=2),
                None,
                None,
                "h",
            )
        ]
    )
    proposal = store.add_proposal(
        ChangeProposal(
            rule_id=RULE,
            from_version="1.1.0",
            to_version="1.2.0",
            artifact_text="",
            rationale="lead with the action",
            source="experiment:lace-follow-up-wording",
            proposed_by="Dr Author",
            status="proposed",
        )
    )
    store.decide_proposal(proposal, "approved", "Dr Reviewer", "effect established")

    page = render_report(gather_report(store, now - timedelta(days=30), now + timedelta(hours=1)))
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    # The chart: center (6 * 6 + 6 * 21) / 360 = 0.45, sigma sqrt(.45 * .55 / 30) = 0.091, so
    # 0.2 and 0.7 are beyond 2 sigma (0.268 to 0.632) on either side: signals on both sides.
    first_new = week_of(now - timedelta(weeks=6))
    assert "lace-readmission-risk: acceptance of answered cards" in text
    assert f"Versions: v1.2.0 from {first_new}" in text
    assert "2 of 3 beyond 2 sigma" in text
    # Outcomes of closed 30-day windows (weeks 12 to 5): 4 weeks at 30 of 30, 4 at 0 of 30;
    # center 0.5, limits 0.5 -/+ 3 * sqrt(0.25 / 30) = 0.226 to 0.774: all 8 beyond them.
    outcome = text.split("admission or emergency visit within 30 days of the card")[-1]
    assert outcome.split("Signals:")[1].count("beyond 3-sigma limits") == 8
    # Clinicians' voice over the last 30 days (1.2.0: 9 of 30 overridden a week).
    assert "already booked (1.2.0)" in text
    # The shadow run: 1 call, missed.
    assert re.search(
        r"lace-12 lace-readmission-risk 1\.3\.0 \(live 1\.2\.0\) 1 0% 0\.00 0 0 0 1 0", text
    )
    # The approved change with acceptance measured since: 126 of 180, +50% against 1.1.0.
    assert "1.1.0 -> 1.2.0 approved Dr Author, experiment:lace-follow-up-wording" in text
    assert "70% accepted of 180; +50% vs before" in text
    # Acceptance by week and the rule's two control charts (no predictions: no calibration).
    assert page.count("data:image/png;base64,") == 3


def test_threshold_tables_audit_race_and_ethnicity_as_recorded():
    from evaluation.report import LabelledPrediction, threshold_sections

    rng = np.random.default_rng(3)
    races = ["White"] * 120 + ["Black or African American"] * 60 + ["Asian"] * 4
    predictions = [
        LabelledPrediction(
            float(r),
            int(rng.uniform() < r),
            "female",
            "65+",
            {},
            "1",
            threshold=0.3,
            race=race,
            ethnicity="Not Hispanic or Latino",
        )
        for r, race in zip(rng.uniform(0.05, 0.7, len(races)), races, strict=True)
    ]
    html = "".join(threshold_sections(predictions))
    for group in ("White", "Black or African American", "Asian", "Not Hispanic or Latino"):
        assert f"<td>{group}</td>" in html
    assert "race:" in html and "ethnicity:" in html  # an equal-opportunity gap for each
