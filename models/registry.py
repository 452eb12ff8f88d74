"""The MLflow tracking store and Model Registry, as the training CLI and the service use them.

The embedded default is a SQLite tracking database and an artifact folder under the data
folder; a tracking server (e.g. MLflow backed by PostgreSQL) is a URI setting. MLflow is
imported lazily: it takes seconds, and a service without models must not pay for it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
"""The experiment kind the MLflow UI (3.x) reads to open an experiment on its runs (the
classic ML view) instead of the GenAI traces page."""
METRIC_DECIMALS = 4


def rounded_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Finite metrics rounded to METRIC_DECIMALS: what a reader compares, not float noise."""
    return {k: round(float(v), METRIC_DECIMALS) for k, v in metrics.items() if math.isfinite(v)}


def tag_version(
    location: MlflowLocation,
    name: str,
    version: str,
    tags: Mapping[str, str],
    description: str | None = None,
) -> None:
    """Tags (and optionally the description) on a registered version, where the registry's
    reader sees them."""
    client = location.client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if description is not None:
        client.update_model_version(name, version, description=description)


@dataclass(frozen=True)
class MlflowLocation:
    tracking_uri: str
    artifact_root: Path | None = None
    """Where new experiments keep artifacts (embedded store); None: the server decides."""

    @property
    def embedded_database(self) -> Path | None:
        """The SQLite file of an embedded store, None for a tracking server."""
        prefix = "sqlite:///"
        return (
            Path(self.tracking_uri.removeprefix(prefix))
            if self.tracking_uri.startswith(prefix)
            else None
        )

    def exists(self) -> bool:
        """False for an embedded store not created yet (nothing registered, nothing to load)."""
        database = self.embedded_database
        return database is None or database.exists()

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Point MLflow's process-wide fluent API (runs, log_model) here for a block."""
        import mlflow

        database = self.embedded_database
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created if need be, marked as classic model development so
        the MLflow UI opens on its runs rather than on GenAI traces."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_DEVELOPMENT:
                client.set_experiment_tag(
                    experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT
                )
            return str(experiment.experiment_id)
        location = None
        if self.artifact_root is not None:
            self.artifact_root.mkdir(parents=True, exist_ok=True)
            location = (self.artifact_root / name).resolve().as_uri()
        return str(
            client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT}
            )
        )


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]


def alias_version(location: MlflowLocation, name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None (no store, no model, no such alias)."""
    if not location.exists():
        return None
    from mlflow.exceptions import MlflowException

    try:
        return str(location.client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(location: MlflowLocation, name: str, alias: str, version: str) -> None:
    location.client().set_registered_model_alias(name, alias, version)


def version_tags(location: MlflowLocation, name: str, version: str) -> dict[str, str]:
    return dict(location.client().get_model_version(name, version).tags or {})


def versions(location: MlflowLocation, name: str) -> list[RegisteredVersion]:
    if not location.exists():
        return []
    from mlflow.exceptions import MlflowException

    client = location.client()
    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(
        (
            RegisteredVersion(
                name, str(v.version), v.run_id, tuple(sorted(by_version.get(str(v.version), ())))
            )
            for v in found
        ),
        key=lambda v: int(v.version),
    )


def download_model(location: MlflowLocation, name: str, version: str) -> Path:
    """The model version's files, local (a copy for a remote artifact store)."""
    import mlflow

    client = location.client()
    uri = client.get_model_version_download_uri(name, version)
    return Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=location.tracking_uri)
    )


def model_metadata(path: Path) -> dict[str, Any]:
    from mlflow.models import Model

    return dict(Model.load(str(path)).metadata or {})
