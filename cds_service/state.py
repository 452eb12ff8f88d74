"""What one app instance holds: settings, knowledge, services, store, caches and metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from sqlalchemy.exc import SQLAlchemyError

from cds_service.auth import (
    ClientRegistry,
    DatabaseReplayCache,
    JwksCache,
    RedisReplayCache,
    ReplayCache,
)
from cds_service.client_auth import ClientAuthenticator
from cds_service.config import Settings
from cds_service.observability import Metrics
from cds_service.tenancy import Caller, local_caller
from fhir_client.pseudonym import site_pseudonym_key
from knowledge.experiment import ExperimentDefinition
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.shadow import Shadow
from knowledge.signals import ActiveSignal
from learning.experiment_registry import active_experiments
from learning.shadow_registry import active_shadow_runs, build_shadow
from models.features import ReadmissionFeatures
from models.serving import ModelRecommender, ModelSlot
from models.tasks import TASKS
from point_of_care.catalogue import build_services
from point_of_care.invocation import Service
from point_of_care.site_settings import EffectiveSetting, apply_settings, load_settings
from storage.db import create_db_engine
from storage.repository import Store
from storage.spool import Spool
from storage.tables import ShadowRun
from storage.writer import InvocationWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppState:
    settings: Settings
    library: KnowledgeLibrary
    """The knowledge library as shipped; `services` run it with this site's rule settings."""
    rule_settings: dict[str, EffectiveSetting]
    experiments: dict[str, ExperimentDefinition]
    """Active experiments (from the store), by id."""
    services: dict[str, Service]
    store: Store
    pseudonym_key: bytes
    metrics: Metrics
    spool: Spool
    writer: InvocationWriter
    authenticator: ClientAuthenticator | None
    local_caller: Caller
    """Every caller when authentication is off (the settings' fhirServer allow list applies)."""
    fhir_transport: httpx.AsyncBaseTransport | None
    models: tuple[ModelRecommender, ...]
    """One per prediction task; each serves its registry @champion once one is loaded."""
    shadows: dict[str, Shadow]
    """Candidates running in shadow mode (from the store), by id."""
    signals: list[ActiveSignal]
    """Outbreak signals of the last weeks (from the store), for patient-view cards."""


def build_state(
    settings: Settings,
    library: KnowledgeLibrary | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
) -> AppState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(
        create_db_engine(
            settings.resolved_database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )
    )
    spool = Spool(settings.data_dir / "spool")
    writer = InvocationWriter(store, spool)
    metrics = Metrics()
    library = library or load_library(settings.knowledge_dir)
    try:
        rule_settings = load_settings(store.engine)
        experiments = active_experiments(store)
    except SQLAlchemyError:
        logger.warning("site rule settings unavailable; running the library as shipped")
        rule_settings, experiments = {}, {}
    features = ReadmissionFeatures(library)
    models = tuple(
        ModelRecommender(task, ModelSlot(settings.mlflow, task), features)
        for task in TASKS.values()
    )
    try:
        shadow_runs = active_shadow_runs(store)
    except SQLAlchemyError:
        shadow_runs = {}
    shadows = built_shadows(shadow_runs.values(), library, settings, models)
    return AppState(
        settings=settings,
        library=library,
        rule_settings=rule_settings,
        experiments=experiments,
        services=build_services(
            apply_settings(library, rule_settings), models, experiments, tuple(shadows.values())
        ),
        store=store,
        pseudonym_key=site_pseudonym_key(settings.pseudonym_key, settings.data_dir),
        metrics=metrics,
        spool=spool,
        writer=writer,
        authenticator=_authenticator(settings, store, writer, metrics),
        local_caller=local_caller(settings.fhir_servers),
        fhir_transport=fhir_transport,
        models=models,
        shadows=shadows,
        signals=[],
    )


def _authenticator(
    settings: Settings, store: Store, writer: InvocationWriter, metrics: Metrics
) -> ClientAuthenticator | None:
    if settings.auth == "off":
        logger.warning(
            "AUTHENTICATION IS OFF (LHS_AUTH=off): any caller can use this service. "
            "Use this only for a local trial, never with real patient data."
        )
        return None
    replay: ReplayCache = (
        RedisReplayCache(settings.redis_url)
        if settings.redis_url
        else DatabaseReplayCache(store, writer if store.engine.dialect.name == "sqlite" else None)
    )
    if settings.public_base_url is None:
        logger.warning(
            "LHS_PUBLIC_BASE_URL IS NOT SET: the JWT audience is taken from each request's "
            "Host header. Set it to the service's external URL in production."
        )
    if not ClientRegistry.load(settings.resolved_clients_file).clients:
        logger.warning(
            "NO CDS CLIENT IS REGISTERED: every call is answered 401 until one is. Register the "
            "EHR with `lhs clients add ISSUER --jwks-url URL` (in a container: docker exec "
            "CONTAINER lhs clients add ...), or try the service locally with LHS_AUTH=off."
        )
    return ClientAuthenticator(
        settings.resolved_clients_file,
        JwksCache(),
        replay,
        metrics,
        public_base_url=settings.public_base_url,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


def built_shadows(
    runs: Iterable[ShadowRun],
    library: KnowledgeLibrary,
    settings: Settings,
    models: tuple[ModelRecommender, ...],
) -> dict[str, Shadow]:
    shadows = {}
    for run in runs:
        try:
            shadows[run.id] = build_shadow(run, library, settings.mlflow, models)
        except Exception:
            # A candidate that cannot run any more must not stop the live side from answering.
            logger.exception("shadow run %s cannot run", run.id)
    return shadows
