"""`lhs shadow`: run a candidate rule or model silently beside the live one and compare."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail
from cli.store import open_store
from evaluation.shadow_analysis import ShadowSummary, render
from learning.shadow_registry import shadow_summary, start_model_shadow, start_rule_shadow

shadow_app = typer.Typer(
    help="Shadow mode: a candidate rule version or challenger model runs silently beside the "
    "live one; what it would have shown is compared with what was shown.",
    no_args_is_help=True,
)


@shadow_app.command("start")
def start(
    shadow_id: Annotated[str, typer.Argument(help="A new id for this shadow run.")],
    by: Annotated[str, typer.Option(help="Who starts it (recorded).")],
    rule_file: Annotated[
        Path | None,
        typer.Option(help="A candidate rule artifact (YAML): a new rule or a new version."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="A prediction task whose registered version runs.")
    ] = None,
    version: Annotated[str | None, typer.Option(help="With --model: the version.")] = None,
) -> None:
    """Start a shadow run; the service picks it up within seconds, no card reaches anyone."""
    from knowledge.library import load_library

    settings = Settings()
    store = open_store(settings)
    try:
        if rule_file is not None and model is None:
            run = start_rule_shadow(
                store, shadow_id, rule_file, load_library(settings.knowledge_dir), by
            )
        elif model is not None and version is not None and rule_file is None:
            run = start_model_shadow(store, shadow_id, model, version, settings.mlflow, by)
        else:
            raise ValueError("give either --rule-file, or --model with --version")
    except ValueError as error:
        fail(f"not started: {error}")
    typer.echo(f"started shadow {run.id}: {run.subject} {run.candidate_version} ({run.kind})")


@shadow_app.command("stop")
def stop(shadow_id: Annotated[str, typer.Argument()]) -> None:
    """Stop a shadow run; its comparisons stay for the report."""
    if not open_store(Settings()).stop_shadow(shadow_id):
        fail(f"no active shadow run {shadow_id}")
    typer.echo(f"stopped {shadow_id}")


@shadow_app.command("list")
def list_runs() -> None:
    """Every shadow run ever started."""
    runs = open_store(Settings()).shadow_runs()
    if not runs:
        typer.echo("No shadow runs yet (start one with `lhs shadow start`).")
    for run in runs:
        stopped = f", stopped {run.stopped_at:%Y-%m-%d}" if run.stopped_at else ""
        typer.echo(
            f"{run.id}  {run.status}  {run.kind} {run.subject} {run.candidate_version}  "
            f"started {run.started_at:%Y-%m-%d} by {run.started_by}{stopped}"
        )


@shadow_app.command("report")
def report(
    shadow_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    to_mlflow: Annotated[
        bool, typer.Option("--mlflow", help="Also log it to MLflow (experiment shadow-runs).")
    ] = False,
) -> None:
    """Agreement, extra and missed cards, and any critical card the candidate would miss."""
    settings = Settings()
    store = open_store(settings)
    run = next((r for r in store.shadow_runs() if r.id == shadow_id), None)
    if run is None:
        fail(f"no shadow run {shadow_id}")
    summary = shadow_summary(store, run)
    typer.echo(json.dumps(dataclasses.asdict(summary), indent=2) if as_json else render(summary))
    if to_mlflow:
        log_summary(settings, summary)


def log_summary(settings: Settings, summary: ShadowSummary) -> None:
    import mlflow

    with settings.mlflow.active():
        experiment = settings.mlflow.experiment_id("shadow-runs")
        with mlflow.start_run(experiment_id=experiment, run_name=summary.shadow_id):
            mlflow.set_tags(
                {
                    "shadow": summary.shadow_id,
                    "subject": summary.subject,
                    "candidate_version": summary.candidate_version,
                }
            )
            counts = ("calls", "patients", "both", "neither", "extra", "missed", "changed")
            metrics = {name: float(getattr(summary, name)) for name in counts}
            metrics["missed_critical"] = float(summary.missed_critical)
            if summary.agreement_rate is not None:
                metrics["agreement_rate"] = summary.agreement_rate
            if summary.kappa is not None:
                metrics["kappa"] = summary.kappa
            mlflow.log_metrics(metrics)
            mlflow.log_dict(dataclasses.asdict(summary), "shadow_summary.json")
            mlflow.log_text(render(summary) + "\n", "shadow_summary.txt")
    typer.echo("logged to MLflow experiment shadow-runs")
