"""``lhs train``, ``lhs models`` and ``lhs mlflow``: learn, review and promote predictive models."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail, fail_usage
from cli.store import open_store
from evaluation.gate import GatePolicy
from models.registry import CHALLENGER, CHAMPION, alias_version, set_alias, tag_version, versions
from models.tasks import TASKS, PredictionTask
from population.engines import Engine
from storage.repository import Store
from storage.tables import ModelDecision

if TYPE_CHECKING:
    from models.cohort import Cohort

_CHAMPION_MOVES = frozenset({"promoted", "approved", "manual", "rolled-back", "recalibrated"})

models_app = typer.Typer(help="Predictive models in the MLflow registry.", no_args_is_help=True)


def _task(name: str) -> PredictionTask:
    if name not in TASKS:
        fail_usage(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _progress() -> Callable[[str], None]:
    started = time.perf_counter()

    def say(message: str) -> None:
        typer.echo(f"[{time.perf_counter() - started:6.1f}s] {message}")

    return say


def _cohort(
    settings: Settings,
    prediction_task: PredictionTask,
    data: Path | None,
    say: Callable[[str], None],
    engine: Engine = Engine.PROCESS,
) -> Cohort:
    """The task's cohort from a folder of FHIR patient Bundles or Bulk Data NDJSON."""
    from fhir_client.pseudonym import site_pseudonym_key
    from knowledge.library import load_library
    from models.features import ReadmissionFeatures
    from population.cohorts import task_cohort
    from population.spark_session import SparkUnavailable

    folder = data or settings.training_data
    if not folder.is_dir():
        fail_usage(f"no such folder: {folder}")
    key = site_pseudonym_key(settings.pseudonym_key, settings.data_dir)

    def loaded(done: int) -> None:
        if done % 100 == 0:
            say(f"read {done} patient records")

    if engine is Engine.SPARK:
        say(f"building the cohort on Spark ({settings.spark_master})")
    try:
        return task_cohort(
            engine,
            folder,
            prediction_task,
            ReadmissionFeatures(load_library()),
            key,
            spark_master=settings.spark_master,
            progress=loaded,
        )
    except SparkUnavailable as error:
        fail(str(error))


ENGINE_HELP = (
    "Where the cohort and its features are computed: this process, or Apache Spark "
    "(LHS_SPARK_MASTER, default local[2]); both give the same examples."
)


def train(
    task: Annotated[str, typer.Argument(help=f"Task to train: {', '.join(TASKS)}.")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Folder of FHIR patient Bundles or Bulk Data NDJSON (default LHS_TRAINING_DATA)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for folds, trees and bootstrap.")] = 42,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make the new version @champion at once.")
    ] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 500,
    engine: Annotated[Engine, typer.Option(help=ENGINE_HELP)] = Engine.PROCESS,
) -> None:
    """Build the cohort, update the LACE index to it (closed test), log to MLflow, register."""
    from models.training import TrainingOptions, train_task

    settings = Settings()
    prediction_task = _task(task)
    say = _progress()
    cohort = _cohort(settings, prediction_task, data, say, engine)
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


def retrain(
    task: Annotated[str, typer.Argument(help=f"Task to retrain: {', '.join(TASKS)}.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Folder of the original training Bundles or Bulk Data NDJSON."),
    ] = None,
    require_approval: Annotated[
        bool,
        typer.Option(
            "--require-approval",
            help="A challenger that passes the gate waits for `lhs models promote TASK --approve`.",
        ),
    ] = False,
    margin: Annotated[
        float, typer.Option(help="Non-inferiority margin on AUROC for the gate.")
    ] = GatePolicy.auroc_margin,
    served_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.95,
            help="Share of the training weight carried by the served examples (0: weighted "
            "like the original records).",
        ),
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for folds, trees and bootstrap.")] = 42,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 500,
    engine: Annotated[Engine, typer.Option(help=ENGINE_HELP)] = Engine.PROCESS,
) -> None:
    """Train a challenger on the original data plus labelled served predictions; gate it."""
    from learning.retraining import retrain as run_retrain
    from models.training import TrainingOptions

    settings = Settings()
    prediction_task = _task(task)
    say = _progress()
    result = run_retrain(
        prediction_task,
        _cohort(settings, prediction_task, data, say, engine),
        open_store(settings),
        settings.mlflow,
        policy=GatePolicy(auroc_margin=margin, bootstrap_rounds=bootstrap, seed=seed),
        options=TrainingOptions(seed=seed, bootstrap_rounds=bootstrap),
        require_approval=require_approval,
        served_share=served_share,
        progress=say,
    )
    say(
        f"{result.decision}: challenger v{result.challenger_version}, champion before "
        f"v{result.champion_version}; {result.served_examples} served examples used"
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
    approve: Annotated[
        bool,
        typer.Option(
            "--approve", help="Approve a challenger that passed the gate and awaits approval."
        ),
    ] = False,
    by: Annotated[str, typer.Option(help="Who decides (recorded).")] = "operator",
) -> None:
    """Point @champion at a version; running services swap it in at their next check."""
    settings = Settings()
    name = _task(task).registered_model
    target = version or alias_version(settings.mlflow, name, CHALLENGER)
    if target is None:
        fail_usage(f"{name} has no @challenger; name a version")
    known = [v.version for v in versions(settings.mlflow, name)]
    if target not in known:
        fail(f"{name} has no version {target}; versions: {', '.join(known) or 'none registered'}")
    store = open_store(settings)
    pending = [d for d in store.decisions(name) if d.challenger_version == target]
    if approve and (not pending or pending[-1].decision != "awaiting-approval"):
        fail_usage(f"version {target} is not awaiting approval after the gate")
    before = alias_version(settings.mlflow, name, CHAMPION)
    # Tagged before the alias moves, so a service that loads it sees how it came to serve.
    tag_version(
        settings.mlflow,
        name,
        target,
        {
            "approval": f"approved by {by} after passing the gate"
            if approve
            else f"promoted by hand by {by}, without the gate"
        },
    )
    set_alias(settings.mlflow, name, CHAMPION, target)
    reasons = (
        ["approved after passing the gate", *pending[-1].reasons]
        if approve
        else ["promoted by hand, without the gate"]
    )
    store.record_decision(
        ModelDecision(
            model_name=name,
            decision="approved" if approve else "manual",
            champion_version=before,
            challenger_version=target,
            reasons=reasons,
            decided_by=by,
        )
    )
    typer.echo(f"{name} @champion -> version {target} (was {before})")


@models_app.command()
def rollback(
    task: Annotated[str, typer.Argument(help="Task whose last promotion to undo.")],
    by: Annotated[str, typer.Option(help="Who decides (recorded).")] = "operator",
) -> None:
    """Put @champion back on the version it had before the last promotion."""
    settings = Settings()
    name = _task(task).registered_model
    store = open_store(settings)
    moves = [
        d
        for d in store.decisions(name)
        if d.decision in _CHAMPION_MOVES and d.champion_version is not None
    ]
    current = alias_version(settings.mlflow, name, CHAMPION)
    last = next((d for d in reversed(moves) if d.challenger_version == current), None)
    if last is None:
        fail_usage(f"no recorded promotion of {name} v{current} to undo")
    set_alias(settings.mlflow, name, CHAMPION, last.champion_version)  # type: ignore[arg-type]
    store.record_decision(
        ModelDecision(
            model_name=name,
            decision="rolled-back",
            champion_version=current,
            challenger_version=last.champion_version,
            reasons=[
                f"rollback of the {last.decision} decision of {last.decided_at:%Y-%m-%d %H:%M}"
            ],
            decided_by=by,
        )
    )
    tag_version(
        settings.mlflow,
        name,
        str(current),
        {"rolled_back": f"by {by}; @champion back on v{last.champion_version}"},
    )
    typer.echo(f"{name} @champion -> version {last.champion_version} (rolled back from {current})")


@models_app.command()
def decisions(task: Annotated[str, typer.Argument(help="Task whose decisions to list.")]) -> None:
    """Every promotion, refusal, approval and rollback, with its reasons."""
    settings = Settings()
    found = open_store(settings).decisions(_task(task).registered_model)
    if not found:
        typer.echo("No gate decisions yet.")
    for d in found:
        typer.echo(
            f"{d.decided_at:%Y-%m-%d %H:%M} {d.decision:<17} v{d.champion_version} -> "
            f"v{d.challenger_version} by {d.decided_by}"
        )
        for reason in d.reasons:
            typer.echo(f"    {reason}")


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

    from learning.labels import label_predictions
    from storage.db import create_db_engine

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
