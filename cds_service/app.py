"""The FastAPI application: a thin HTTP layer over the invocation and storage modules."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cds_service import __version__
from cds_service.auth import DatabaseReplayCache, JwksCache, RedisReplayCache, ReplayCache
from cds_service.client_auth import ClientAuthenticator, bearer_scheme
from cds_service.config import Settings
from cds_service.errors import ErrorResponse, error_response, install_error_handlers
from cds_service.experiment_registry import active_experiments
from cds_service.explain import explain_card
from cds_service.fastjson import OrjsonRoute
from cds_service.invocation import (
    CallResult,
    InvalidRequest,
    PrefetchUnavailable,
    Service,
    run_service,
)
from cds_service.lease import job_lease
from cds_service.limits import RequestLimitsMiddleware
from cds_service.observability import Metrics, RequestContextMiddleware, hook_instance_var
from cds_service.outcomes import NotABundle, parse_outcomes
from cds_service.pseudonym import patient_key, site_pseudonym_key
from cds_service.schemas import (
    CDSResponse,
    DiscoveryResponse,
    FeedbackItem,
    FeedbackRequest,
    HookRequest,
    OutcomeBundle,
    OutcomeResponse,
    ServiceDescription,
)
from cds_service.shadow_registry import active_shadow_runs, build_shadow
from cds_service.site_settings import EffectiveSetting, apply_settings, load_settings
from cds_service.spool import Spool
from cds_service.storage.db import create_db_engine
from cds_service.storage.migrate import schema_problem
from cds_service.storage.repository import (
    AssignmentInput,
    FeedbackOutcome,
    IssuedCardInput,
    PredictionInput,
    ShadowInput,
    Store,
)
from cds_service.storage.tables import Invocation, ShadowRun
from cds_service.storage.writer import InvocationWriter
from cds_service.surveillance import detect
from cds_service.tenancy import Caller, local_caller
from evaluation.feedback_analytics import feedback_analytics
from evaluation.syndromic import MIN_CELL, suppress
from fhir_client.fhirdates import as_utc
from hooks.services import SERVICE_SPECS, service_definition
from knowledge.experiment import ExperimentalRule, ExperimentDefinition
from knowledge.library import KnowledgeLibrary, load_library
from knowledge.rule import Advice, Recommender, Rule
from knowledge.shadow import Shadow
from knowledge.signals import ActiveSignal
from models.features import ReadmissionFeatures
from models.labels import label_predictions
from models.serving import ModelRecommender, ModelSlot
from models.tasks import TASKS

logger = logging.getLogger(__name__)

SIGNAL_HORIZON_DAYS = 28
"""Signals this recent are handed to rules (the longest activity a site may configure)."""


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: int
    unknownCards: list[str] = Field(
        description="Cards this service never showed the calling client: their items were not stored."
    )


class FeedbackSpooledResponse(FeedbackResponse):
    spooled: int


class FeedbackErrorResponse(ErrorResponse):
    """A 400 on feedback: when items were read, how many valid ones were kept."""

    stored: int | None = None
    duplicates: int | None = None
    spooled: int | None = None
    unknownCards: list[str] | None = None


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


def build_services(
    library: KnowledgeLibrary,
    models: Sequence[ModelRecommender] = (),
    experiments: Mapping[str, ExperimentDefinition] | None = None,
    shadows: Sequence[Shadow] = (),
) -> dict[str, Service]:
    """One service per spec, answered by the library's rules and the models for its hook;
    a rule under an active experiment answers through its arms; shadow candidates for the
    hook run silently beside them."""
    by_rule = {e.rule: e for e in (experiments or {}).values()}
    services: dict[str, Service] = {}
    for spec in SERVICE_SPECS:
        rules = tuple(rule for rule in library.rules if spec.hook in rule.hooks)
        hook_models = tuple(model for model in models if spec.hook in model.hooks)
        codes = {
            code
            for rule in rules
            for value_set in rule.artifact.value_sets
            for code in library.knowledge.value_sets[value_set].codes
        }
        # A hook without rules or models is not offered: discovery lists only services that act.
        if rules or hook_models:
            recommenders = tuple(_under_experiment(rule, by_rule.get(rule.id)) for rule in rules)
            services[spec.id] = Service(
                service_definition(spec, codes),
                recommenders,
                hook_models,
                tuple(s for s in shadows if spec.hook in s.hooks),
                library.knowledge.medications,
            )
    return services


def _under_experiment(rule: Rule, experiment: ExperimentDefinition | None) -> Recommender:
    if experiment is None:
        return rule
    try:
        return ExperimentalRule.of(experiment, rule)
    except ValueError:
        # Checked when started; if the rule changed since, the rule runs as shipped.
        logger.exception("experiment %s no longer fits rule %s", experiment.id, rule.id)
        return rule


def create_app(
    settings: Settings | None = None,
    *,
    library: KnowledgeLibrary | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. The database must already be migrated (``lhs db upgrade``)."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = site_pseudonym_key(settings.pseudonym_key, settings.data_dir)
    store = Store(
        create_db_engine(
            settings.resolved_database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )
    )
    spool = Spool(settings.data_dir / "spool")
    writer = InvocationWriter(store, spool)
    metrics = Metrics()
    authenticator = None
    if settings.auth == "on":
        replay: ReplayCache = (
            RedisReplayCache(settings.redis_url)
            if settings.redis_url
            else DatabaseReplayCache(
                store, writer if store.engine.dialect.name == "sqlite" else None
            )
        )
        if settings.public_base_url is None:
            logger.warning(
                "LHS_PUBLIC_BASE_URL IS NOT SET: the JWT audience is taken from each request's "
                "Host header. Set it to the service's external URL in production."
            )
        authenticator = ClientAuthenticator(
            settings.resolved_clients_file,
            JwksCache(),
            replay,
            metrics,
            public_base_url=settings.public_base_url,
            leeway_seconds=settings.jwt_leeway_seconds,
        )
    else:
        logger.warning(
            "AUTHENTICATION IS OFF (LHS_AUTH=off): any caller can use this service. "
            "Use this only for a local trial, never with real patient data."
        )
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
    shadows = _built_shadows(shadow_runs.values(), library, settings, models)
    state = AppState(
        settings=settings,
        library=library,
        rule_settings=rule_settings,
        experiments=experiments,
        services=build_services(
            apply_settings(library, rule_settings), models, experiments, tuple(shadows.values())
        ),
        store=store,
        pseudonym_key=key,
        metrics=metrics,
        spool=spool,
        writer=writer,
        authenticator=authenticator,
        local_caller=local_caller(settings.fhir_servers),
        fhir_transport=fhir_transport,
        models=models,
        shadows=shadows,
        signals=[],
    )
    app = FastAPI(
        lifespan=_lifespan(state),
        # A redirect to the slash-less path would be built from the Host header, which the
        # caller controls: an unknown path is a plain 404 instead.
        redirect_slashes=False,
        title="Learning Health System CDS Service",
        version=__version__,
        description="HL7 CDS Hooks 2.0 services with cited, versioned evidence rules; "
        "every card and every piece of feedback is stored for learning.",
    )
    app.state.lhs = state
    app.router.route_class = OrjsonRoute
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    # Added last, so outermost: even refused requests are logged, counted and given an id.
    app.add_middleware(
        RequestContextMiddleware, metrics=state.metrics, known_services=frozenset(state.services)
    )
    install_error_handlers(app)
    _add_routes(app, state)
    _document_400_instead_of_422(app)
    return app


def _lifespan(state: AppState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Replay the spool while the app runs (at start, then every few seconds)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Jobs over the shared store run in one process of the deployment at a time.
        lease = job_lease(state.store.engine, state.settings.data_dir)

        async def holds_lease() -> bool:
            return await run_in_threadpool(lease.try_acquire)

        async def drain_forever() -> None:
            while True:
                await _refresh_knowledge(state)
                if await holds_lease():
                    replayed = await run_in_threadpool(state.spool.drain, state.store)
                    if replayed:
                        logger.info("replayed %d spooled records", replayed)
                state.metrics.spooled_feedback.set(await run_in_threadpool(state.spool.pending))
                await asyncio.sleep(state.settings.spool_drain_interval)

        # Everything built at start-up (knowledge, models, imported FHIR classes) lives as long
        # as the process: keep it out of the garbage collector's full passes, which otherwise
        # walk it again and again while requests allocate large JSON documents.
        gc.freeze()
        # A request allocates tens of thousands of short-lived containers (the parsed
        # prefetch); collecting every 700 allocations spends more time than it frees.
        gc.set_threshold(50_000, 20, 20)

        async def refresh_models() -> None:
            for model in state.models:
                if await run_in_threadpool(model.slot.refresh):
                    state.metrics.model_swaps.labels(model.id).inc()

        async def follow_champions() -> None:
            while True:
                await asyncio.sleep(state.settings.model_refresh_seconds)
                await refresh_models()

        async def detect_outbreaks() -> None:
            syndromes = state.library.knowledge.syndromes
            while True:
                await asyncio.sleep(state.settings.surveillance_interval_seconds)
                if not await holds_lease():
                    continue
                try:
                    run = await run_in_threadpool(
                        lambda: detect(
                            state.store, syndromes, datetime.now(UTC).date(), incremental=True
                        )
                    )
                    if run.stored:
                        logger.info("%d new outbreak signals", run.stored)
                except SQLAlchemyError:
                    logger.warning("outbreak detection postponed: database unavailable")

        async def label_closed_windows() -> None:
            while True:
                if not await holds_lease():
                    await asyncio.sleep(state.settings.label_interval_seconds)
                    continue
                try:
                    counts = await run_in_threadpool(
                        label_predictions, state.store, datetime.now(UTC)
                    )
                    if counts.labelled:
                        logger.info("labelled %d predictions", counts.labelled)
                except SQLAlchemyError:
                    logger.warning("labelling postponed: database unavailable")
                await asyncio.sleep(state.settings.label_interval_seconds)

        # The champions are loaded before the first request is taken.
        await refresh_models()

        tasks = [
            asyncio.create_task(drain_forever()),
            asyncio.create_task(follow_champions()),
            asyncio.create_task(label_closed_windows()),
            asyncio.create_task(detect_outbreaks()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await run_in_threadpool(lease.release)

    return lifespan


def _document_400_instead_of_422(app: FastAPI) -> None:
    """Drop FastAPI's generated 422 responses: our handler answers malformed bodies with 400."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_UNAUTHORIZED_RESPONSE: dict[str, Any] = {
    "model": ErrorResponse,
    "description": "Missing or invalid CDS client JWT (the reason is logged, not returned).",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request; `details` names the fields."},
    404: {"model": ErrorResponse, "description": "No such service."},
    401: _UNAUTHORIZED_RESPONSE,
    413: {"model": ErrorResponse, "description": "The body is larger than LHS_MAX_BODY_BYTES."},
    415: {"model": ErrorResponse, "description": "The body is not JSON."},
    431: {"model": ErrorResponse, "description": "The request headers exceed 16 KB."},
}


def _current_caller(http: Request) -> Caller:
    """The authenticated client (set by the authenticator), or the local caller with auth off."""
    state: AppState = http.app.state.lhs
    if state.authenticator is None:
        return state.local_caller
    return http.state.caller  # type: ignore[no-any-return]


CurrentCaller = Annotated[Caller, Depends(_current_caller)]


def _add_routes(app: FastAPI, state: AppState) -> None:
    protected = [Depends(bearer_scheme)]
    if state.authenticator is not None:
        protected.append(Depends(state.authenticator))

    @app.get(
        "/cds-services",
        response_model=DiscoveryResponse,
        response_model_exclude_none=True,
        dependencies=protected,
        responses={401: _UNAUTHORIZED_RESPONSE},
    )
    def discovery() -> DiscoveryResponse:
        """CDS Hooks discovery: every service with its hook, prefetch templates and requirements."""
        return DiscoveryResponse(
            services=[
                ServiceDescription(
                    hook=s.definition.hook,
                    id=s.id,
                    title=s.definition.title,
                    description=s.definition.description,
                    prefetch=s.definition.prefetch,
                    usageRequirements=s.definition.usage_requirements,
                )
                for s in state.services.values()
            ]
        )

    @app.post(
        "/cds-services/{service_id}",
        response_model=CDSResponse,
        response_model_exclude_none=True,
        dependencies=protected,
        responses={
            **_ERRORS,
            412: {
                "model": ErrorResponse,
                "description": "Required FHIR data unavailable, or fhirServer not registered for this client.",
            },
        },
    )
    async def call_service(
        service_id: str, request: HookRequest, http: Request, caller: CurrentCaller
    ) -> Any:
        """Call a CDS service: answers with cards (possibly none)."""
        service = state.services.get(service_id)
        if service is None:
            return error_response(404, f"no CDS service with id '{service_id}'")
        if request.fhirServer is not None and not caller.may_use_fhir_server(
            str(request.fhirServer)
        ):
            # Refused before any connection: the EHR's token must reach only its own server.
            state.metrics.fhir_server_refused.inc()
            return error_response(
                412,
                "fhirServer is not a FHIR server registered for this client; the service "
                "fetches only from registered servers",
                [{"field": "fhirServer", "message": "not registered for this client"}],
            )
        hook_instance_var.set(str(request.hookInstance))
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        try:
            result = await run_service(
                service,
                request,
                as_of=state.settings.evaluation_time,
                fhir_timeout=state.settings.fhir_timeout,
                fhir_max_pages=state.settings.fhir_max_pages,
                fhir_transport=state.fhir_transport,
                fetch_deadline=state.settings.fetch_deadline,
                fetch_observer=state.metrics.observe_fhir_fetch,
                service_url=state.settings.public_base_url or str(http.base_url),
                subject_key=_patient_key(state, request),
                signals=state.signals,
            )
        except InvalidRequest as error:
            return error_response(400, error.message, error.errors)
        except PrefetchUnavailable as error:
            await _store_invocation(
                state, caller, service, request, received_at, started, 412, None
            )
            return error_response(
                412,
                "required FHIR data could not be obtained from prefetch or the FHIR server",
                [{"field": f"prefetch.{key}", "message": "unavailable"} for key in error.keys],
            )
        result = dataclasses.replace(
            result, advice=await _without_overridden_repeats(state, service, request, result.advice)
        )
        await _store_invocation(state, caller, service, request, received_at, started, 200, result)
        for advice in result.advice:
            state.metrics.cards.labels(service.id, advice.card.indicator, advice.rule_id).inc()
        for failed in result.failed_recommenders:
            state.metrics.recommender_failures.labels(failed).inc()
        if result.unknown_medication_codes:
            # RxCUIs only: they name a drug product, never the patient.
            state.metrics.unknown_medication_codes.labels(service.id).inc(
                len(result.unknown_medication_codes)
            )
            logger.info(
                "medication codes without a known ingredient: %s",
                ", ".join(result.unknown_medication_codes),
            )
        for prediction in result.predictions:
            state.metrics.predictions.labels(prediction.model_name, prediction.model_version).inc()
        return CDSResponse(cards=[a.card for a in result.advice])

    @app.post(
        "/cds-services/{service_id}/feedback",
        response_model=FeedbackResponse,
        dependencies=protected,
        responses={
            **_ERRORS,
            400: {
                "model": FeedbackErrorResponse,
                "description": "Some items are malformed; the valid ones were stored.",
            },
            202: {
                "model": FeedbackSpooledResponse,
                "description": "The database is unavailable; the items are kept durably and stored later.",
            },
        },
    )
    async def feedback(service_id: str, body: FeedbackRequest, caller: CurrentCaller) -> Any:
        """Receive feedback on cards; each item is stored once, however often it is re-sent."""
        if service_id not in state.services:
            return error_response(404, f"no CDS service with id '{service_id}'")
        valid: list[FeedbackItem] = []
        raw_valid: list[dict[str, Any]] = []
        problems: list[dict[str, str]] = []
        for index, raw in enumerate(body.feedback):
            try:
                valid.append(FeedbackItem.model_validate(raw))
                raw_valid.append(raw)
            except ValidationError as error:
                problems.extend(
                    {
                        "field": ".".join(["feedback", str(index), *(str(p) for p in e["loc"])]),
                        "message": e["msg"],
                    }
                    for e in error.errors(include_url=False, include_input=False)
                )
        spooled = 0
        try:
            outcome = await run_in_threadpool(
                state.store.record_feedback, caller.owner, service_id, valid, raw_valid
            )
        except SQLAlchemyError:
            # The database is down or locked: keep the items durably, acknowledge them as spooled.
            logger.warning("feedback spooled: database unavailable")
            await run_in_threadpool(state.spool.spool_feedback, caller.owner, service_id, raw_valid)
            state.metrics.spooled_feedback.inc(len(raw_valid))
            outcome = FeedbackOutcome(stored=0, duplicates=0)
            spooled = len(raw_valid)
        if outcome.unknown_cards and await run_in_threadpool(state.spool.pending):
            # Cards shown while the database was down wait in the spool: their feedback waits
            # behind them, and is matched to them when both are replayed.
            waiting = set(outcome.unknown_cards)
            late = [raw for item, raw in zip(valid, raw_valid, strict=True) if item.card in waiting]
            await run_in_threadpool(state.spool.spool_feedback, caller.owner, service_id, late)
            outcome = dataclasses.replace(outcome, unknown_cards=[])
            spooled = len(late)
        unknown = set(outcome.unknown_cards)
        for item in valid:
            if item.card not in unknown:
                state.metrics.feedback.labels(service_id, item.outcome).inc()
        state.metrics.unknown_feedback_cards.inc(sum(item.card in unknown for item in valid))
        counts: dict[str, Any] = {"stored": outcome.stored, "duplicates": outcome.duplicates}
        if spooled:
            counts["spooled"] = spooled
        if problems:
            return error_response(
                400,
                f"{len(body.feedback) - len(valid)} feedback item(s) are malformed; the others were kept",
                problems,
                **counts,
                unknownCards=outcome.unknown_cards,
            )
        if spooled:
            return JSONResponse({**counts, "unknownCards": []}, status_code=202)
        return FeedbackResponse(**counts, unknownCards=outcome.unknown_cards)

    @app.post(
        "/outcomes",
        response_model=OutcomeResponse,
        tags=["learning"],
        dependencies=protected,
        responses={
            **_ERRORS,
            400: {
                "model": ErrorResponse,
                "description": "Not a Bundle, or some entries are invalid; the valid ones were stored "
                "(counts in the body).",
            },
            403: {
                "model": ErrorResponse,
                "description": "fhirServer is not registered for this client.",
            },
        },
    )
    async def outcomes(
        body: OutcomeBundle, caller: CurrentCaller, fhirServer: str | None = None
    ) -> Any:
        """Feed in what happened to patients (Encounter, Condition, Observation, Procedure).

        Send a Bundle (transaction, batch, collection, history or a Subscription
        notification). `fhirServer` is the EHR's FHIR base URL as sent in its hook calls, so
        outcomes link to the same pseudonymous patients. Re-sending is harmless.
        """
        if fhirServer is not None and not caller.may_use_fhir_server(fhirServer):
            # Outcomes link to the patients of the FHIR server named: only the client's own.
            return error_response(
                403,
                "fhirServer is not a FHIR server registered for this client",
                [{"field": "fhirServer", "message": "not registered for this client"}],
            )
        try:
            parsed = parse_outcomes(
                body.model_dump(mode="json"), state.pseudonym_key, fhirServer, caller.owner
            )
        except NotABundle as error:
            return error_response(400, str(error))
        try:
            counts = await run_in_threadpool(state.store.record_outcomes, parsed.items)
        except SQLAlchemyError:
            logger.warning("outcomes not stored: database unavailable")
            return error_response(503, "the store is unavailable; send the Bundle again later")
        state.metrics.outcomes.labels("stored").inc(counts.stored)
        state.metrics.outcomes.labels("rejected").inc(len(parsed.errors))
        result = {
            "stored": counts.stored,
            "updated": counts.updated,
            "duplicates": counts.duplicates,
            "notifications": parsed.notifications,
            "withoutResource": parsed.without_resource,
        }
        if parsed.errors:
            return error_response(
                400,
                f"{len(parsed.errors)} entr{'y is' if len(parsed.errors) == 1 else 'ies are'} "
                "invalid; the others were stored",
                parsed.errors,
                **result,
            )
        return result

    @app.get(
        "/surveillance/signals",
        tags=["surveillance"],
        dependencies=protected,
        responses={401: _UNAUTHORIZED_RESPONSE},
    )
    async def surveillance_signals(
        days: Annotated[int, Query(ge=1, le=3650)] = 30,
    ) -> dict[str, Any]:
        """Outbreak signals of the last ``days`` days, newest first: syndrome, area (ZIP3),
        day, method, expected count, threshold and strength; an observed count below the
        small-number limit is given as null with ``observed_suppressed`` true."""
        since = datetime.now(UTC).date() - timedelta(days=days)
        found = await run_in_threadpool(state.store.surveillance.signals, since)
        return {
            "since": since.isoformat(),
            "signals": [
                {
                    "syndrome": s.syndrome,
                    "area": s.area,
                    "day": s.day.isoformat(),
                    "method": s.method,
                    "observed": suppress(round(s.observed)),
                    "observed_suppressed": suppress(round(s.observed)) is None,
                    # Not finite (said as null): EARS over a silent baseline has infinitely
                    # many SDs; an EARS C3 whose last days already alarm alarms at any count.
                    "expected": _finite(s.expected, 2),
                    "threshold": _finite(s.threshold, 2),
                    "strength": _finite(s.strength),
                }
                for s in found
            ],
        }

    @app.get(
        "/analytics/feedback",
        tags=["learning"],
        dependencies=protected,
        responses={400: _ERRORS[400], 401: _UNAUTHORIZED_RESPONSE},
    )
    async def analytics(
        caller: CurrentCaller, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        """Acceptance and override rates per rule, version, hook, user role and week; override
        reasons; cards per call. Default period: the last 90 days. A client sees its own
        cards; an informatician credential sees every client's."""
        end = as_utc(until) if until else datetime.now(UTC)
        try:
            start = as_utc(since) if since else end - timedelta(days=90)
        except OverflowError:
            start = datetime.min.replace(tzinfo=UTC)
        if start >= end:
            return error_response(  # type: ignore[return-value]
                400,
                "the period is empty: since must be before until",
                [{"field": "since", "message": "not before until"}],
            )
        rows, burden = await run_in_threadpool(
            lambda: (
                state.store.card_feedback_rows(start, end, owner=caller.scope),
                state.store.cards_per_call(start, end, owner=caller.scope),
            )
        )
        return {
            "since": start.isoformat(),
            "until": end.isoformat(),
            **feedback_analytics(rows, burden).as_dict(),
        }

    @app.get(
        "/cards/{card_uuid}/explanation",
        tags=["transparency"],
        dependencies=protected,
        responses={
            401: _UNAUTHORIZED_RESPONSE,
            404: {"model": ErrorResponse, "description": "No such card."},
        },
    )
    async def explanation(card_uuid: str, caller: CurrentCaller) -> dict[str, Any]:
        """Trace a card we issued to its rule version, citations, inputs and feedback. A
        client finds only the cards it was shown; an informatician credential finds any."""
        explained = await run_in_threadpool(explain_card, state.store, card_uuid, caller.scope)
        if explained is None:
            return error_response(404, f"no card with uuid '{card_uuid}'")  # type: ignore[return-value]
        return explained

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready."}})
    async def readyz() -> JSONResponse:
        """Readiness: the database answers at this code's schema revision, the spool of
        writes the database could not take is below its limit, and the knowledge library is
        loaded; also the models served, the experiments and the shadow runs."""
        checks: dict[str, str] = {}
        try:
            problem = await run_in_threadpool(schema_problem, state.store.engine)
            checks["database"] = "ok"
            # Answering while the schema is behind would take calls and store nothing.
            checks["schema"] = problem or "ok"
        except SQLAlchemyError:
            checks["database"] = "unreachable"
        backlog = await run_in_threadpool(state.spool.pending)
        checks["spool"] = (
            "ok"
            if backlog < state.settings.spool_ready_limit
            else f"{backlog} records wait to be stored (limit {state.settings.spool_ready_limit})"
        )
        rules = sum(len(s.recommenders) for s in state.services.values())
        checks["knowledge"] = "ok" if rules else "no rules loaded"
        ready = all(value == "ok" for value in checks.values())
        # Models are reported, not required: without one the rules (and every safety card)
        # still answer, so the instance must stay in rotation.
        models = {
            model.id: {
                "status": model.slot.status,
                "version": model.slot.current.version if model.slot.current else None,
            }
            for model in state.models
        }
        return JSONResponse(
            {
                "status": "ready" if ready else "not ready",
                "checks": checks,
                "spooled": backlog,
                "models": models,
                "experiments": sorted(state.experiments),
                "shadows": sorted(state.shadows),
            },
            status_code=200 if ready else 503,
        )

    @app.get(
        "/models/{name}/versions/{version}/card",
        tags=["transparency"],
        responses={404: {"model": ErrorResponse, "description": "No such model version served."}},
    )
    async def model_card(name: str, version: str) -> dict[str, Any]:
        """The model card (HTI-1 source attributes) of the model version this service serves."""
        for model in state.models:
            served = model.slot.current
            if model.id == name and served is not None and served.version == version:
                return {"name": name, "version": version, **served.model_card}
        return error_response(404, f"model {name} version {version} is not served here")  # type: ignore[return-value]

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics in the text exposition format."""
        return PlainTextResponse(
            generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )


def _finite(value: float, digits: int | None = None) -> float | None:
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def _built_shadows(
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


async def _refresh_knowledge(state: AppState) -> None:
    """Pick up `lhs knowledge configure`, `lhs experiment start|stop` and `lhs shadow
    start|stop` changes (from any process) without a restart."""
    try:
        current = await run_in_threadpool(load_settings, state.store.engine)
        experiments = await run_in_threadpool(active_experiments, state.store)
        shadow_runs = await run_in_threadpool(active_shadow_runs, state.store)
        now = state.settings.evaluation_time or datetime.now(UTC)
        signals = await run_in_threadpool(
            state.store.surveillance.signals, now.date() - timedelta(days=SIGNAL_HORIZON_DAYS)
        )
    except SQLAlchemyError:
        return
    # Rules run without yielding to the event loop: no call sees a half-updated list. A
    # signal on fewer cases than may be shown reaches no card: the card would say that a
    # handful of people nearby were ill, and such small exceedances are where EARS raises
    # most of its false alarms.
    state.signals[:] = [
        ActiveSignal(s.syndrome, s.area, s.day, s.method) for s in signals if s.observed >= MIN_CELL
    ]
    new_runs = [run for run in shadow_runs.values() if run.id not in state.shadows]
    shadows = {i: shadow for i, shadow in state.shadows.items() if i in shadow_runs}
    if new_runs:
        shadows |= await run_in_threadpool(
            _built_shadows, new_runs, state.library, state.settings, state.models
        )
    if (
        current != state.rule_settings
        or experiments != state.experiments
        or shadows.keys() != state.shadows.keys()
    ):
        # Built before the swap: another thread (a test, a metrics scrape) must never see the
        # services half-replaced while value sets are walked.
        services = build_services(
            apply_settings(state.library, current),
            state.models,
            experiments,
            tuple(shadows.values()),
        )
        state.services.clear()
        state.services.update(services)
        state.rule_settings.clear()
        state.rule_settings.update(current)
        state.experiments.clear()
        state.experiments.update(experiments)
        state.shadows.clear()
        state.shadows.update(shadows)
        logger.info("site rule settings, experiments and shadow runs applied")


def _patient_key(state: AppState, request: HookRequest) -> str:
    fhir_server = str(request.fhirServer) if request.fhirServer else None
    return patient_key(state.pseudonym_key, fhir_server, str(request.context.get("patientId", "")))


async def _without_overridden_repeats(
    state: AppState, service: Service, request: HookRequest, advice: list[Advice]
) -> list[Advice]:
    """Alert-burden control: drop a card the clinician overrode recently for this patient,
    unless its triggering data changed. Critical cards are never dropped."""

    def window(rule_id: str) -> int:
        setting = state.rule_settings.get(rule_id)
        if setting is not None and setting.suppression_days is not None:
            return setting.suppression_days
        return state.settings.override_suppression_days

    candidates = sorted(
        {a.rule_id for a in advice if a.card.indicator != "critical" and window(a.rule_id)}
    )
    if not candidates:
        return advice
    now = datetime.now(UTC)
    since = now - timedelta(days=max(window(rule) for rule in candidates))
    try:
        lookup = (state.store.overridden_since, _patient_key(state, request), candidates, since)
        # WAL readers never wait for the writer, so an embedded read stays on the event loop.
        history = (
            lookup[0](*lookup[1:]) if state.store.is_embedded else await run_in_threadpool(*lookup)
        )
    except SQLAlchemyError:
        return advice  # never hide advice because the history cannot be read
    overridden = {
        (rule, fingerprint)
        for rule, fingerprint, when in history
        if when >= now - timedelta(days=window(rule))
    }
    kept = []
    for item in advice:
        if item.card.indicator != "critical" and (item.rule_id, item.fingerprint) in overridden:
            state.metrics.suppressed_cards.labels(service.id, item.rule_id).inc()
        else:
            kept.append(item)
    return kept


async def _store_invocation(
    state: AppState,
    caller: Caller,
    service: Service,
    request: HookRequest,
    received_at: datetime,
    started: float,
    status: int,
    result: CallResult | None,
) -> None:
    fhir_server = str(request.fhirServer) if request.fhirServer else None
    invocation = Invocation(
        hook_instance=str(request.hookInstance),
        service_id=service.id,
        hook=service.definition.hook,
        patient_key=_patient_key(state, request),
        user_reference=request.context.get("userId")
        if isinstance(request.context.get("userId"), str)
        else None,
        fhir_server=fhir_server,
        received_at=received_at,
        duration_ms=(time.perf_counter() - started) * 1000,
        status_code=status,
        card_count=len(result.advice) if result else 0,
        prefetch_provided=sorted((request.prefetch or {}).keys()),
        prefetch_fetched=list(result.prefetch.fetched) if result else [],
        prefetch_unavailable=list(result.prefetch.unavailable) if result else [],
        records_skipped=result.record.skipped if result else 0,
        owner=caller.owner,
    )
    cards = [
        IssuedCardInput(a.card, a.rule_id, a.rule_version, a.inputs, a.fingerprint)
        for a in (result.advice if result else [])
    ]
    shown = {a.card.uuid for a in result.advice} if result else set()
    predictions = [
        PredictionInput(
            p.model_name,
            p.model_version,
            p.risk,
            p.threshold,
            p.features,
            p.contributions,
            p.prediction_time,
            p.horizon_days,
            # A card suppressed as an overridden repeat was not shown: no uuid to link.
            p.advice.card.uuid if p.advice and p.advice.card.uuid in shown else None,
        )
        for p in (result.predictions if result else [])
    ]
    assignments = [
        AssignmentInput(
            a.assignment.experiment_id,
            a.assignment.arm,
            a.card,
            a.rule_id,
            a.rule_version,
            shown=a.withheld is None,
            index_time=result.index_time or received_at,
        )
        for a in (result.advice + result.withheld if result else [])
        if a.assignment is not None
    ]
    shadows = [
        ShadowInput(
            c.shadow_id,
            c.live_version,
            c.candidate_version,
            c.agreement,
            c.changed,
            [{"indicator": card.indicator, "summary": card.summary} for card in c.live],
            [card.model_dump(mode="json", exclude_none=True) for card in c.shadow],
        )
        for c in (result.shadows if result else [])
    ]
    await state.writer.write(invocation, cards, predictions, assignments, shadows)
