"""``lhs analytics``: what clinicians did with the cards, in the terminal, as JSON or in MLflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from cds_service.config import Settings
from evaluation.feedback_analytics import FeedbackAnalytics, Rates, feedback_analytics


def _percent(value: float | None) -> str:
    return "   -" if value is None else f"{value:4.0%}"


def _table(title: str, groups: dict[str, Rates]) -> list[str]:
    lines = [
        f"{title:<48} {'shown':>6} {'answered':>8} {'accept':>6} {'override':>8} {'median s':>9}"
    ]
    for name, r in groups.items():
        delay = "-" if r.median_seconds_to_action is None else f"{r.median_seconds_to_action:.0f}"
        lines.append(
            f"{name:<48} {r.shown:>6} {r.answered:>8} {_percent(r.acceptance_rate):>6} "
            f"{_percent(r.override_rate):>8} {delay:>9}"
        )
    return [*lines, ""]


def render(analytics: FeedbackAnalytics) -> str:
    lines = _table("rule", analytics.by_rule)
    lines += _table("rule@version", analytics.by_rule_version)
    lines += _table("hook", analytics.by_hook)
    lines += _table("user role", analytics.by_role)
    lines += _table("week", analytics.by_week)
    lines.append("override reasons:")
    lines += [f"  {count:>5}  {reason}" for reason, count in analytics.override_reasons.items()]
    lines.append("cards per call (alert burden):")
    lines += [f"  {hook:<24} {mean:.2f}" for hook, mean in analytics.cards_per_call.items()]
    return "\n".join(lines)


def analytics(
    days: Annotated[int, typer.Option(help="Period: the last DAYS days.")] = 90,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    to_mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow", help="Also log the numbers to MLflow (experiment feedback-analytics)."
        ),
    ] = False,
) -> None:
    """Acceptance, overrides and reasons per rule, version, hook, role and week; alert burden."""
    from cds_service.models_cli import open_store

    settings = Settings()
    store = open_store(settings)
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    result = feedback_analytics(
        store.card_feedback_rows(since, until), store.cards_per_call(since, until)
    )
    typer.echo(json.dumps(result.as_dict(), indent=2) if as_json else render(result))
    if to_mlflow:
        _log_to_mlflow(settings, result, since, until)


def _log_to_mlflow(
    settings: Settings, result: FeedbackAnalytics, since: datetime, until: datetime
) -> None:
    import mlflow

    location = settings.mlflow
    with location.active():
        experiment_id = location.experiment_id("feedback-analytics")
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{since:%Y-%m-%d} to {until:%Y-%m-%d}"
        ):
            mlflow.set_tags({"since": since.isoformat(), "until": until.isoformat()})
            metrics = {"cards_shown": float(result.overall.shown)}
            for rule, rates in result.by_rule.items():
                metrics[f"shown.{rule}"] = float(rates.shown)
                if rates.acceptance_rate is not None:
                    metrics[f"acceptance_rate.{rule}"] = rates.acceptance_rate
                    metrics[f"override_rate.{rule}"] = rates.override_rate or 0.0
            for hook, mean in result.cards_per_call.items():
                metrics[f"cards_per_call.{hook}"] = mean
            mlflow.log_metrics(metrics)
            mlflow.log_dict(result.as_dict(), "feedback_analytics.json")
    typer.echo("logged to MLflow experiment feedback-analytics")
