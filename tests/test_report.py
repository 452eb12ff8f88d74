"""The learning community report: its numbers against hand-computed values, its plots embedded."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from cds_service.analytics_cli import gather_report
from cds_service.cli import app as cli
from cds_service.storage.repository import PredictionInput
from cds_service.storage.tables import Invocation
from evaluation.report import render_report
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
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["report.html"]
