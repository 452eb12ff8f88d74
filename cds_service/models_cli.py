"""``lhs train``, ``lhs models`` and ``lhs mlflow``: learn, review and promote predictive models."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cds_service.config import Settings
from models.registry import CHALLENGER, CHAMPION, alias_version, set_alias, versions
from models.tasks import TASKS

models_app = typer.Typer(help="Predictive models in the MLflow registry.", no_args_is_help=True)


def _task(name: str):  # type: ignore[no-untyped-def]
    if name not in TASKS:
        raise typer.BadParameter(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def train(
    task: Annotated[str, typer.Argument(help=f"Task to train: {', '.join(TASKS)}.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Folder of FHIR patient Bundles (default LHS_TRAINING_DATA)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for folds, trees and bootstrap.")] = 42,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make the new version @champion at once.")
    ] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 500,
) -> None:
    """Build the cohort, train and evaluate the candidates, log to MLflow and register the best."""
    from cds_service.pseudonym import load_or_create_key
    from cds_service.sweep import patient_bundles
    from knowledge.library import load_library
    from models.cohort import build_cohort
    from models.features import ReadmissionFeatures
    from models.training import TrainingOptions, train_task

    settings = Settings()
    prediction_task = _task(task)
    folder = data or settings.training_data
    if not folder.is_dir():
        raise typer.BadParameter(f"no such folder: {folder}", param_hint="--data")
    started = time.perf_counter()

    def say(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {message}")

    paths = list(patient_bundles(folder))
    key = (
        settings.pseudonym_key.get_secret_value().encode()
        if settings.pseudonym_key
        else load_or_create_key(settings.data_dir / "pseudonym.key")
    )

    def loaded(done: int) -> None:
        if done % 100 == 0 or done == len(paths):
            say(f"read {done}/{len(paths)} patient records")

    cohort = build_cohort(
        paths, prediction_task, ReadmissionFeatures(load_library()), key, progress=loaded
    )
    result = train_task(
        prediction_task,
        cohort,
        settings.mlflow,
        TrainingOptions(seed=seed, promote=promote, bootstrap_rounds=bootstrap),
        progress=say,
    )
    verdict = "beats" if result.auroc_gain_over_lace.value > 0 else "does not beat"
    say(
        f"done: {result.selected} {verdict} LACE on the test period "
        f"(AUROC difference {result.auroc_gain_over_lace}); threshold {result.threshold}"
    )


@models_app.command("list")
def list_models() -> None:
    """Registered versions of every task's model, with their aliases."""
    settings = Settings()
    for task in TASKS.values():
        found = versions(settings.mlflow, task.registered_model)
        if not found:
            typer.echo(f"{task.registered_model}: no versions")
        for version in found:
            aliases = " ".join(f"@{a}" for a in version.aliases)
            typer.echo(f"{task.registered_model} v{version.version} run {version.run_id} {aliases}")


@models_app.command()
def promote(
    task: Annotated[str, typer.Argument(help="Task whose model to promote.")],
    version: Annotated[
        str | None, typer.Argument(help="Version to make champion (default: the @challenger).")
    ] = None,
) -> None:
    """Point @champion at a version; running services swap it in at their next check."""
    settings = Settings()
    name = _task(task).registered_model
    target = version or alias_version(settings.mlflow, name, CHALLENGER)
    if target is None:
        raise typer.BadParameter(f"{name} has no @challenger; name a version")
    set_alias(settings.mlflow, name, CHAMPION, target)
    typer.echo(f"{name} @champion -> version {target}")


@models_app.command()
def ensure(
    data: Annotated[Path | None, typer.Option(help="Folder of FHIR patient Bundles.")] = None,
) -> None:
    """Train and register a first model for each task that has no @champion (used by make run)."""
    settings = Settings()
    for task in TASKS.values():
        if alias_version(settings.mlflow, task.registered_model, CHAMPION) is not None:
            typer.echo(f"{task.registered_model}: @champion present")
            continue
        folder = data or settings.training_data
        if not folder.is_dir():
            typer.echo(
                f"{task.registered_model}: no @champion and no training data at {folder}; "
                "the service will run its rules without this model"
            )
            continue
        train(task.name, data=folder, promote=True)


@models_app.command()
def label() -> None:
    """Label served predictions whose outcome window has closed (the service does this too)."""
    from datetime import UTC, datetime

    from cds_service.storage.db import create_db_engine
    from cds_service.storage.repository import Store
    from models.labels import label_predictions

    settings = Settings()
    store = Store(create_db_engine(settings.resolved_database_url))
    counts = label_predictions(store, datetime.now(UTC))
    typer.echo(f"labelled {counts.labelled} predictions ({counts.positive} with the outcome)")


def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on 127.0.0.1 over this service's tracking store."""
    settings = Settings()
    location = settings.mlflow
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", location.tracking_uri]
    if location.artifact_root is not None:
        location.artifact_root.mkdir(parents=True, exist_ok=True)
        command += ["--default-artifact-root", location.artifact_root.resolve().as_uri()]
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (store {location.tracking_uri})")
    raise typer.Exit(subprocess.call(command))
