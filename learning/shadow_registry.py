"""Shadow runs as the service runs them: started from a candidate rule file or a registered
model version, kept in the store, turned into silent candidates beside the live side."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from evaluation.shadow_analysis import ShadowRow, ShadowSummary, summarize
from knowledge.artifact import RuleArtifact, load_artifact
from knowledge.library import KnowledgeLibrary
from knowledge.logic import LOGIC
from knowledge.rule import Rule
from knowledge.shadow import Shadow
from models.registry import MlflowLocation
from models.serving import ModelRecommender, ModelSlot, load_served_model
from models.tasks import TASKS
from storage.repository import Store
from storage.tables import ShadowRun


def candidate_rule(library: KnowledgeLibrary, artifact: RuleArtifact) -> Rule:
    """The candidate as a rule of the library; ValueError unless it can run here and differs
    from the live version of the same rule."""
    if artifact.logic not in LOGIC:
        raise ValueError(f"unknown logic {artifact.logic!r}")
    missing = set(artifact.value_sets) - library.knowledge.value_sets.keys()
    if missing:
        raise ValueError(f"unknown value sets {sorted(missing)}")
    live = next((r for r in library.rules if r.id == artifact.id), None)
    if live is not None and live.version == artifact.version:
        raise ValueError(f"{artifact.id} {artifact.version} is the live version; give it a new one")
    return Rule(artifact, LOGIC[artifact.logic], library.knowledge)


def start_rule_shadow(
    store: Store, shadow_id: str, path: Path, library: KnowledgeLibrary, started_by: str
) -> ShadowRun:
    artifact = load_artifact(path)
    candidate_rule(library, artifact)
    run = ShadowRun(
        id=shadow_id,
        kind="rule",
        subject=artifact.id,
        candidate_version=artifact.version,
        definition={"artifact": artifact.model_dump(mode="json")},
        status="active",
        started_by=started_by,
    )
    store.start_shadow(run)
    return run


def start_model_shadow(
    store: Store,
    shadow_id: str,
    task_name: str,
    version: str,
    location: MlflowLocation,
    started_by: str,
) -> ShadowRun:
    task = TASKS.get(task_name)
    if task is None:
        raise ValueError(f"no prediction task {task_name!r}; known: {', '.join(TASKS)}")
    try:
        load_served_model(location, task.registered_model, version)
    except Exception as error:  # not found, incompatible features, unreadable artifact
        raise ValueError(f"{task.registered_model} v{version} cannot be served: {error}") from error
    run = ShadowRun(
        id=shadow_id,
        kind="model",
        subject=task.registered_model,
        candidate_version=version,
        definition={"task": task.name, "version": version},
        status="active",
        started_by=started_by,
    )
    store.start_shadow(run)
    return run


def active_shadow_runs(store: Store) -> dict[str, ShadowRun]:
    return {run.id: run for run in store.shadow_runs(active_only=True)}


def build_shadow(
    run: ShadowRun,
    library: KnowledgeLibrary,
    location: MlflowLocation,
    live_models: tuple[ModelRecommender, ...],
) -> Shadow:
    """The run's candidate, ready to evaluate. Raises when it cannot run any more (its
    logic or model is gone): the caller logs that and runs without it."""
    if run.kind == "rule":
        artifact = RuleArtifact.model_validate(run.definition["artifact"])
        return Shadow(run.id, run.subject, candidate_rule(library, artifact))
    live = next(m for m in live_models if m.task.name == run.definition["task"])
    slot = ModelSlot.pinned(location, live.task, run.definition["version"])
    return Shadow(run.id, run.subject, ModelRecommender(live.task, slot, live.features))


def shadow_summary(
    store: Store, run: ShadowRun, since: datetime | None = None, until: datetime | None = None
) -> ShadowSummary:
    records = store.shadow_comparisons(run.id, since, until)
    rows = [ShadowRow(r.agreement, r.changed, r.live, r.shadow, r.patient_key) for r in records]
    return summarize(
        run.id, run.subject, run.candidate_version, rows, [r.live_version for r in records]
    )
