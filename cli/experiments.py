"""`lhs experiment`: start, stop, list and analyze randomized experiments on rules."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail
from cli.store import open_store
from evaluation.experiment_analysis import ExperimentAnalysis, analyze
from knowledge.experiment import ExperimentDefinition, load_experiment
from learning.experiment_registry import experiment_patients, start_experiment

experiment_app = typer.Typer(help="Randomized experiments on rules: arms, holdouts, analysis.")


@experiment_app.command("start")
def start(
    path: Annotated[Path, typer.Argument(help="The experiment's YAML definition.")],
    by: Annotated[str, typer.Option(help="Who approved the start (recorded).")],
) -> None:
    """Check a definition against its rule and start it; the service applies it within seconds."""
    from knowledge.library import load_library

    try:
        definition = load_experiment(path)
        settings = Settings()
        start_experiment(open_store(settings), definition, load_library(settings.knowledge_dir), by)
    except ValueError as error:
        fail(f"not started: {error}")
    arms = ", ".join(
        f"{a.id} {a.share:.0%}" + (" (holdout)" if a.holdout else "") for a in definition.arms
    )
    typer.echo(f"started {definition.id} on {definition.rule}: {arms}")


@experiment_app.command("stop")
def stop(
    experiment_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why it stops (recorded).")],
) -> None:
    """Stop an experiment: its rule shows the control's cards to everyone again."""
    if not open_store(Settings()).stop_experiment(experiment_id, reason):
        fail(f"no active experiment {experiment_id}")
    typer.echo(f"stopped {experiment_id}")


@experiment_app.command("list")
def list_experiments() -> None:
    """Every experiment ever started, with its status."""
    experiments = open_store(Settings()).experiments()
    if not experiments:
        typer.echo("No experiments yet (start one with `lhs experiment start`).")
    for e in experiments:
        stopped = f", stopped {e.stopped_at:%Y-%m-%d}: {e.stop_reason}" if e.stopped_at else ""
        typer.echo(
            f"{e.id}  {e.status}  rule {e.rule_id}  started {e.started_at:%Y-%m-%d} "
            f"by {e.started_by}{stopped}"
        )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(analysis: ExperimentAnalysis) -> str:
    lines = [
        f"experiment {analysis.experiment_id} on {analysis.rule}; primary metric "
        f"{analysis.primary_metric}; control {analysis.control}; alpha per comparison "
        f"{analysis.alpha_per_comparison:.3g}; planned {analysis.planned_per_arm} patients per arm",
        f"{'arm':<20}{'patients':>9}{'shown':>7}{'accepted':>10}{'median min':>11}"
        f"{'outcome n':>10}{'outcome rate':>13}",
    ]
    for a in analysis.arms:
        minutes = "-" if a.median_minutes_to_action is None else f"{a.median_minutes_to_action:.1f}"
        name = a.arm + (" (holdout)" if a.holdout else "")
        lines.append(
            f"{name:<20}{a.patients:>9}{a.shown:>7}{_percent(a.acceptance_rate):>10}"
            f"{minutes:>11}{a.outcome_patients:>10}{_percent(a.outcome_rate):>13}"
        )
    for metric, comparisons in (("acceptance", analysis.acceptance), ("outcome", analysis.outcome)):
        for arm, c in comparisons.items():
            lines.append(
                f"{metric} {arm} - {analysis.control}: {c.difference:+.3f} "
                f"(95% CI {c.ci_low:+.3f} to {c.ci_high:+.3f}, p {c.p_value:.3g}; "
                f"always valid: {c.always_valid_low:+.3f} to {c.always_valid_high:+.3f}, "
                f"p {c.always_valid_p:.3g})"
            )
    lines.append(f"recommendation: {analysis.recommendation}")
    return "\n".join(lines)


@experiment_app.command("analyze")
def analyze_experiment(
    experiment_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    to_mlflow: Annotated[
        bool,
        typer.Option(
            "--mlflow", help="Also log the analysis to MLflow (experiment rule-experiments)."
        ),
    ] = False,
) -> None:
    """Per arm: cards shown, acceptance, time to action, outcome; differences with CIs and
    always-valid p-values; whether to stop."""
    settings = Settings()
    store = open_store(settings)
    found = store.experiment(experiment_id)
    if found is None:
        fail(f"no experiment {experiment_id}")
    definition = ExperimentDefinition.model_validate(found.definition)
    result = analyze(definition, experiment_patients(store, definition, datetime.now(UTC)))
    typer.echo(json.dumps(dataclasses.asdict(result), indent=2) if as_json else render(result))
    if to_mlflow:
        log_analysis(settings, result)


def log_analysis(settings: Settings, result: ExperimentAnalysis) -> None:
    import mlflow

    location = settings.mlflow
    with location.active():
        experiment = location.experiment_id("rule-experiments")
        with mlflow.start_run(experiment_id=experiment, run_name=result.experiment_id):
            mlflow.set_tags(
                {
                    "experiment": result.experiment_id,
                    "rule": result.rule,
                    "recommendation": result.recommendation,
                }
            )
            metrics: dict[str, float] = {}
            for arm in result.arms:
                metrics[f"{arm.arm}.patients"] = float(arm.patients)
                if arm.acceptance_rate is not None:
                    metrics[f"{arm.arm}.acceptance_rate"] = arm.acceptance_rate
                if arm.outcome_rate is not None:
                    metrics[f"{arm.arm}.outcome_rate"] = arm.outcome_rate
            for metric, comparisons in (
                ("acceptance", result.acceptance),
                ("outcome", result.outcome),
            ):
                for arm, c in comparisons.items():
                    metrics[f"{metric}.{arm}.difference"] = c.difference
                    metrics[f"{metric}.{arm}.always_valid_p"] = c.always_valid_p
            mlflow.log_metrics(metrics)
            mlflow.log_dict(dataclasses.asdict(result), "experiment_analysis.json")
            mlflow.log_text(render(result) + "\n", "experiment_analysis.txt")
    typer.echo("logged to MLflow experiment rule-experiments")
