"""``lhs analytics`` and ``lhs report``: what clinicians did with the cards and how the models did."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cds_service.config import Settings
from evaluation.feedback_analytics import FeedbackAnalytics, Rates, feedback_analytics
from evaluation.improvement_report import ImprovementData
from evaluation.report import Decision, LabelledPrediction, ReportData, render_report
from knowledge.library import KNOWLEDGE_DIR
from storage.repository import Store


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
    if not analytics.overall.shown and not analytics.cards_per_call:
        return "No hook calls and no cards in this period."
    lines = _table("rule", analytics.by_rule)
    lines += _table("rule@version", analytics.by_rule_version)
    lines += _table("hook", analytics.by_hook)
    lines += _table("user role", analytics.by_role)
    lines += _table("week", analytics.by_week)
    lines.append("override reasons:")
    lines += [
        f"  {count:>5}  {reason}" for reason, count in analytics.override_reasons.items()
    ] or ["  none"]
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
    from cli.store import open_store

    settings = Settings()
    store = open_store(settings)
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    result = feedback_analytics(
        store.card_tallies(since, until), store.cards_per_call(since, until)
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


def gather_report(
    store: Store, since: datetime, until: datetime, knowledge_dir: Path = KNOWLEDGE_DIR
) -> ReportData:
    """The report's data for [since, until) and the period of the same length before it."""
    from knowledge.syndromes import load_syndromes
    from learning.improvements import gather_improvements
    from learning.retraining import TREATED, feedback_group
    from learning.surveillance import surveillance_report
    from models.cohort import age_band
    from models.tasks import TASKS

    before = since - (until - since)

    def labelled(start: datetime, end: datetime) -> list[LabelledPrediction]:
        found = []
        for task in TASKS.values():
            predictions = [
                p
                for p in store.labelled_predictions(task.registered_model)
                if start <= p.predicted_at < end
            ]
            feedback = store.latest_feedback([p.card_uuid for p in predictions if p.card_uuid])
            acted_on = store.accepted_invocations(sorted({p.invocation_id for p in predictions}))
            found += [
                LabelledPrediction(
                    risk=p.risk,
                    label=int(p.label or 0),
                    # As the Patient stated it; predictions stored before it was recorded fall
                    # back on the model's own sex feature.
                    sex=p.sex or ("male" if p.features.get("male") else "female"),
                    age_band=age_band(int(p.features.get("age_years", 0))),
                    race=p.race or "not recorded",
                    ethnicity=p.ethnicity or "not recorded",
                    features={k: float(v) for k, v in p.features.items()},
                    model_version=p.model_version,
                    treated=feedback_group(p, feedback, acted_on) in TREATED,
                    threshold=p.threshold,
                )
                for p in predictions
            ]
        return found

    decisions = [
        Decision(
            d.decided_at,
            d.model_name,
            d.decision,
            f"v{d.champion_version} -> v{d.challenger_version}",
            d.reasons,
        )
        for task in TASKS.values()
        for d in store.decisions(task.registered_model)
        if since <= d.decided_at < until
    ]
    return ReportData(
        since=since,
        until=until,
        feedback=feedback_analytics(
            store.card_tallies(since, until), store.cards_per_call(since, until)
        ),
        previous_feedback=feedback_analytics(
            store.card_tallies(before, since), store.cards_per_call(before, since)
        ),
        predictions=labelled(since, until),
        previous_predictions=labelled(before, since),
        decisions=decisions,
        improvements=gather_improvements(store, since, until),
        surveillance=surveillance_report(
            store, load_syndromes(knowledge_dir), since.date(), until.date()
        ),
    )


def report(
    days: Annotated[
        int, typer.Option(help="Period: the last DAYS days (compared with the DAYS before).")
    ] = 30,
    out: Annotated[Path, typer.Option(help="Where to write the HTML file.")] = Path(
        "learning-report.html"
    ),
    to_mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow", help="Also log the report to MLflow (experiment learning-reports)."
        ),
    ] = False,
) -> None:
    """Write the learning community report: one self-contained HTML page with its plots."""
    from cli.store import open_store

    settings = Settings()
    until = datetime.now(UTC)
    data = gather_report(
        open_store(settings), until - timedelta(days=days), until, settings.knowledge_dir
    )
    out.write_text(render_report(data), encoding="utf-8")
    typer.echo(f"report written to {out}")
    if to_mlflow:
        import mlflow

        location = settings.mlflow
        with location.active():
            experiment_id = location.experiment_id("learning-reports")
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"report to {until:%Y-%m-%d}"
            ):
                mlflow.log_artifact(str(out))
                log_improvements(data.improvements)
        typer.echo("logged to MLflow experiment learning-reports")


def sync(
    fhir_server: Annotated[
        str, typer.Option(help="The EHR's FHIR base URL (as in its hook calls).")
    ],
    since: Annotated[
        datetime, typer.Option(help="Start of the window (resources updated from then).")
    ],
    until: Annotated[
        datetime | None, typer.Option(help="End of the window (default: now).")
    ] = None,
) -> None:
    """Pull outcome resources updated in [since, until) from a FHIR server (token: LHS_FHIR_SYNC_TOKEN)."""
    import asyncio

    from cli.store import open_store
    from fhir_client.client import FhirClient
    from fhir_client.fhirdates import as_utc
    from fhir_client.pseudonym import site_pseudonym_key
    from learning.outcome_sync import sync_outcomes

    settings = Settings()
    store = open_store(settings)
    key = site_pseudonym_key(settings.pseudonym_key, settings.data_dir)
    token = settings.fhir_sync_token.get_secret_value() if settings.fhir_sync_token else None
    start = as_utc(since)
    end = as_utc(until) if until else datetime.now(UTC)

    async def run():  # type: ignore[no-untyped-def]
        base = fhir_server.rstrip("/")
        async with FhirClient(base, token, timeout=30.0, max_pages=1000) as client:
            return await sync_outcomes(client, store, key, base, start, end)

    result = asyncio.run(run())
    fetched = ", ".join(f"{kind} {n}" for kind, n in result.fetched.items())
    typer.echo(
        f"fetched {fetched}; stored {result.counts.stored}, updated {result.counts.updated}, "
        f"duplicates {result.counts.duplicates}, rejected {len(result.errors)}"
    )
    for error in result.errors:
        typer.echo(f"  rejected {error['field']}: {error['message']}", err=True)


def log_improvements(improvements: ImprovementData) -> None:
    """Into the active MLflow run: each control chart as a PNG, and the shadow runs,
    experiments and knowledge changes as JSON, beside the report."""
    import mlflow

    from evaluation.plots import p_chart_plot

    for chart in improvements.charts:
        title = f"{chart.subject}: {chart.metric}"
        mlflow.log_figure(
            p_chart_plot(chart.chart, title, chart.changes), f"control-charts/{chart.subject}.png"
        )
    for name in ("charts", "voices", "shadows", "experiments", "changes"):
        records = [dataclasses.asdict(item) for item in getattr(improvements, name)]
        mlflow.log_text(json.dumps(records, indent=2, default=str), f"improvements/{name}.json")
    signals = sum(len(chart.chart.signals) for chart in improvements.charts)
    mlflow.log_metrics(
        {
            "control_chart_signals": float(signals),
            "rules_needing_review": float(sum(v.needs_review for v in improvements.voices)),
            "shadow_runs": float(len(improvements.shadows)),
            "knowledge_changes": float(len(improvements.changes)),
        }
    )
