"""CDS Hooks discovery and service calls."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

from cds_service.dependencies import ERRORS, PROTECTED, UNAUTHORIZED, CurrentCaller, State
from cds_service.errors import ErrorResponse, error_response
from cds_service.fastjson import OrjsonRoute
from cds_service.observability import hook_instance_var
from cds_service.state import AppState
from fhir_client.pseudonym import patient_key
from hooks.cards import CDSResponse
from hooks.discovery import DiscoveryResponse, ServiceDescription
from hooks.requests import HookRequest
from knowledge.rule import Advice
from point_of_care.invocation import CallResult, InvalidRequest, PrefetchUnavailable, run_service
from point_of_care.recording import invocation_record
from point_of_care.suppression import (
    split_overridden_repeats,
    suppressible_rules,
    suppression_window,
)

logger = logging.getLogger(__name__)

router = APIRouter(route_class=OrjsonRoute)


@router.get(
    "/cds-services",
    response_model=DiscoveryResponse,
    response_model_exclude_none=True,
    dependencies=PROTECTED,
    responses={401: UNAUTHORIZED},
)
def discovery(state: State) -> DiscoveryResponse:
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


@router.post(
    "/cds-services/{service_id}",
    response_model=CDSResponse,
    response_model_exclude_none=True,
    responses={
        **ERRORS,
        412: {
            "model": ErrorResponse,
            "description": "Required FHIR data unavailable, or fhirServer not registered for this client.",
        },
    },
)
async def call_service(
    service_id: str, request: HookRequest, http: Request, state: State, caller: CurrentCaller
) -> Any:
    """Call a CDS service: answers with cards (possibly none)."""
    service = state.services.get(service_id)
    if service is None:
        return error_response(404, f"no CDS service with id '{service_id}'")
    if request.fhirServer is not None and not caller.may_use_fhir_server(str(request.fhirServer)):
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
    subject = _patient_key(state, request)

    async def store(status: int, result: CallResult | None) -> None:
        record = invocation_record(
            owner=caller.owner,
            service=service,
            request=request,
            patient_key=subject,
            received_at=received_at,
            started=started,
            status=status,
            result=result,
        )
        await state.writer.write(*record)

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
            subject_key=subject,
            signals=state.signals,
        )
    except InvalidRequest as error:
        return error_response(400, error.message, error.errors)
    except PrefetchUnavailable as error:
        await store(412, None)
        return error_response(
            412,
            "required FHIR data could not be obtained from prefetch or the FHIR server",
            [{"field": f"prefetch.{key}", "message": "unavailable"} for key in error.keys],
        )
    kept = await _without_overridden_repeats(
        state, service.id, caller.owner, subject, result.advice
    )
    result = dataclasses.replace(result, advice=kept)
    await store(200, result)
    _count(state, service.id, result)
    return CDSResponse(cards=[a.card for a in result.advice])


def _patient_key(state: AppState, request: HookRequest) -> str:
    fhir_server = str(request.fhirServer) if request.fhirServer else None
    return patient_key(state.pseudonym_key, fhir_server, str(request.context.get("patientId", "")))


async def _without_overridden_repeats(
    state: AppState, service_id: str, owner: str, subject: str, advice: list[Advice]
) -> list[Advice]:
    """The advice less repeats of cards this client's clinicians overrode for the patient."""
    window = suppression_window(state.rule_settings, state.settings.override_suppression_days)
    candidates = suppressible_rules(advice, window)
    if not candidates:
        return advice
    now = datetime.now(UTC)
    since = now - timedelta(days=max(window(rule) for rule in candidates))
    lookup = (state.store.overridden_since, owner, subject, candidates, since)
    try:
        # WAL readers never wait for the writer, so an embedded read stays on the event loop.
        history = (
            lookup[0](*lookup[1:]) if state.store.is_embedded else await run_in_threadpool(*lookup)
        )
    except SQLAlchemyError:
        return advice  # never hide advice because the history cannot be read
    kept, suppressed = split_overridden_repeats(advice, history, window, now)
    for item in suppressed:
        state.metrics.suppressed_cards.labels(service_id, item.rule_id).inc()
    return kept


def _count(state: AppState, service_id: str, result: CallResult) -> None:
    metrics = state.metrics
    for advice in result.advice:
        metrics.cards.labels(service_id, advice.card.indicator, advice.rule_id).inc()
    for failed in result.failed_recommenders:
        metrics.recommender_failures.labels(failed).inc()
    if result.unknown_medication_codes:
        # RxCUIs only: they name a drug product, never the patient.
        metrics.unknown_medication_codes.labels(service_id).inc(
            len(result.unknown_medication_codes)
        )
        logger.info(
            "medication codes without a known ingredient: %s",
            ", ".join(result.unknown_medication_codes),
        )
    for prediction in result.predictions:
        metrics.predictions.labels(prediction.model_name, prediction.model_version).inc()
