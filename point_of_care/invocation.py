"""One CDS service call, from a validated request to advice: the domain core behind the HTTP layer.

Steps: check the hook, validate its context, resolve prefetch (sent by the client, or
fetched from the EHR's FHIR server), build the patient record once, run the rules.
Errors are raised as typed exceptions that the HTTP layer maps to the spec's statuses.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from fhir_client.client import FetchObserver, FhirClient
from fhir_client.prefetch import prefetch_tokens
from fhir_client.record import DataIssue, MedicationEntry, PatientRecord, medication_entry
from fhir_client.resolve import PrefetchResult, resolve_prefetch
from hooks.cards import INDICATOR_ORDER, Card, Coding, Source
from hooks.context import HOOK_CONTEXTS, HookContext, OrderSelectContext
from hooks.requests import HookRequest
from knowledge.rule import (
    RULE_TOPIC_SYSTEM,
    Advice,
    EvaluationContext,
    Recommender,
    UncheckedCheck,
)
from knowledge.shadow import Shadow, ShadowComparison
from knowledge.signals import ActiveSignal
from knowledge.terminology import MedicationIndex
from models.serving import ModelRecommender, Prediction
from point_of_care import SERVICE_VERSION
from point_of_care.services import ServiceDefinition

logger = logging.getLogger(__name__)


class InvalidRequest(Exception):
    """The request does not satisfy the hook's definition (answered with 400)."""

    def __init__(self, message: str, errors: Sequence[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


class PrefetchUnavailable(Exception):
    """Required data could be had neither from prefetch nor from the FHIR server (412)."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(f"required data unavailable: {', '.join(keys)}")
        self.keys = list(keys)


@dataclass(frozen=True)
class Service:
    """A service definition together with the recommenders that answer it."""

    definition: ServiceDefinition
    recommenders: tuple[Recommender, ...]
    models: tuple[ModelRecommender, ...] = ()
    shadows: tuple[Shadow, ...] = ()
    """Candidates run silently beside the live recommenders (shadow mode)."""
    medications: MedicationIndex | None = None
    """The ingredient map, to report medication codes it does not know."""

    @property
    def id(self) -> str:
        return self.definition.id


@dataclass(frozen=True)
class CallResult:
    context: HookContext
    prefetch: PrefetchResult
    record: PatientRecord
    advice: list[Advice]
    failed_recommenders: list[str]
    predictions: list[Prediction] = field(default_factory=list)
    withheld: list[Advice] = field(default_factory=list)
    """Cards computed but not shown (experiment holdouts), kept for the experiment's analysis."""
    index_time: datetime | None = None
    """The clinical moment of the call (EvaluationContext.index_time)."""
    shadows: list[ShadowComparison] = field(default_factory=list)
    """What each shadow candidate would have shown, beside what the live side computed."""
    unknown_medication_codes: tuple[str, ...] = ()
    """RxNorm codes of active medications and draft orders that map to no known ingredient."""


DATA_AVAILABILITY_ID = "lhs-data-availability"
_SAFETY_HOOKS = frozenset({"order-select", "order-sign"})


def data_unavailable_advice(
    hook: str,
    keys: Sequence[str],
    failed: Sequence[str],
    issues: Sequence[DataIssue] = (),
    unchecked: Sequence[UncheckedCheck] = (),
) -> Advice:
    """Tell the clinician which checks ran on incomplete or unreadable data, instead of
    silently passing.

    For order hooks this is a warning: an interaction or contraindication may have gone
    unseen because the data to see it was missing.
    """
    parts = []
    if keys:
        parts.append(f"the EHR's FHIR server did not deliver: {', '.join(keys)}")
    if failed:
        parts.append(f"these checks failed to run: {', '.join(failed)}")
    if unchecked:
        named = sorted({f"{u.rule_id} (needs {', '.join(u.missing)})" for u in unchecked})
        parts.append(f"these checks could not be completed: {', '.join(named)}")
    if issues:
        parts.append("some values could not be read")
    detail = (
        "This advice is incomplete because "
        + "; and ".join(parts)
        + ". Cards that depend on this data may be missing; please check the record yourself."
    )
    if issues:
        detail += "\n\n**Values that could not be read**\n" + "\n".join(
            f"- {issue.item}: {issue.problem}" for issue in issues
        )
    card = Card(
        summary="Some checks could not run on complete data; review the record yourself",
        detail=detail,
        indicator="warning" if hook in _SAFETY_HOOKS else "info",
        source=Source(
            label="Learning Health System CDS service",
            topic=Coding(
                system=RULE_TOPIC_SYSTEM, code=DATA_AVAILABILITY_ID, display="Data availability"
            ),
        ),
    )
    return Advice(
        card,
        DATA_AVAILABILITY_ID,
        SERVICE_VERSION,
        {
            "unavailable": ", ".join(keys),
            "failed": ", ".join(failed),
            "unchecked": ", ".join(sorted({u.rule_id for u in unchecked})),
            "unreadable": "; ".join(f"{i.item}: {i.problem}" for i in issues),
        },
    )


def resource_types(templates: Mapping[str, str], keys: Sequence[str]) -> set[str]:
    """The resource types that prefetch ``keys`` query ("Observation?patient=..." -> Observation)."""
    return {templates[k].split("?", 1)[0].split("/", 1)[0] for k in keys if k in templates}


def validate_context(hook: str, raw: dict[str, Any]) -> HookContext:
    """Validate ``context`` against the hook's definition, naming each bad field."""
    model = HOOK_CONTEXTS[hook]
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        errors = [
            {
                "field": ".".join(["context", *(str(p) for p in e["loc"])]),
                "message": e["msg"],
            }
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest(f"context does not match the {hook} hook", errors) from None


def draft_medication_orders(context: HookContext) -> list[MedicationEntry]:
    """The medication orders this call is about: selected ones for order-select, all drafts else."""
    if isinstance(context, OrderSelectContext):
        resources = context.selected_resources()
    else:
        resources = getattr(context, "draft_resources", list)()
    entries = [
        medication_entry(r) for r in resources if r.get("resourceType") == "MedicationRequest"
    ]
    return [e for e in entries if e is not None]


async def run_service(
    service: Service,
    request: HookRequest,
    *,
    as_of: datetime | None = None,
    fhir_timeout: float = 5.0,
    fhir_max_pages: int = 20,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
    fetch_deadline: float | None = None,
    fetch_observer: FetchObserver | None = None,
    service_url: str | None = None,
    subject_key: str | None = None,
    signals: Sequence[ActiveSignal] = (),
) -> CallResult:
    hook = service.definition.hook
    if request.hook != hook:
        raise InvalidRequest(
            f"service {service.id} answers the {hook} hook, not {request.hook}",
            [{"field": "hook", "message": f"expected '{hook}'"}],
        )
    context = validate_context(hook, request.context)
    async with contextlib.AsyncExitStack() as stack:
        client = None
        if request.fhirServer is not None:
            token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
            client = await stack.enter_async_context(
                FhirClient(
                    str(request.fhirServer).rstrip("/"),
                    token,
                    timeout=fhir_timeout,
                    max_pages=fhir_max_pages,
                    transport=fhir_transport,
                    observer=fetch_observer,
                )
            )
        prefetch = await resolve_prefetch(
            service.definition.prefetch,
            request.prefetch,
            prefetch_tokens(context),
            client,
            deadline=fetch_deadline,
        )
    # Spec: without the means to get required data (no FHIR server, or nothing at all
    # obtainable), answer 412. With a FHIR server that failed for some keys, answer with
    # what can be computed and say what could not be checked.
    if prefetch.unavailable and (client is None or not prefetch.data):
        raise PrefetchUnavailable(prefetch.unavailable)

    record = PatientRecord.from_resources(
        context.patientId,
        prefetch.data.values(),
        unavailable=resource_types(service.definition.prefetch, prefetch.unavailable),
    )
    evaluation = EvaluationContext(
        hook=hook,
        context=context,
        record=record,
        as_of=as_of or datetime.now(UTC),
        draft_orders=draft_medication_orders(context),
        service_url=service_url,
        subject_key=subject_key,
        signals=signals,
    )
    advice: list[Advice] = []
    failed: list[str] = []
    for recommender in service.recommenders:
        try:
            advice.extend(recommender.evaluate(evaluation))
        except Exception:
            # One faulty rule must not take the others' (possibly critical) cards down with it.
            logger.exception("recommender %s failed", recommender.id)
            failed.append(recommender.id)
    predictions: list[Prediction] = []
    for model in service.models:
        try:
            prediction = model.predict(evaluation)
        except Exception:
            logger.exception("model %s failed", model.id)
            failed.append(model.id)
            continue
        if prediction is not None:
            predictions.append(prediction)
            if prediction.advice is not None:
                advice.append(prediction.advice)
    comparisons = _shadow_comparisons(service, evaluation, advice)
    if prefetch.unavailable or failed or record.issues or evaluation.unchecked:
        advice.append(
            data_unavailable_advice(
                hook, prefetch.unavailable, failed, record.issues, evaluation.unchecked
            )
        )
    advice.sort(key=lambda a: INDICATOR_ORDER[a.card.indicator])
    unknown = (
        service.medications.unknown_codes(
            m.codes for m in (*record.active_medications(), *evaluation.draft_orders)
        )
        if service.medications is not None
        else ()
    )
    shown = [a for a in advice if a.withheld is None]
    withheld = [a for a in advice if a.withheld is not None]
    return CallResult(
        context,
        prefetch,
        record,
        shown,
        failed,
        predictions,
        withheld,
        evaluation.index_time,
        comparisons,
        unknown,
    )


def _shadow_comparisons(
    service: Service, evaluation: EvaluationContext, computed: Sequence[Advice]
) -> list[ShadowComparison]:
    versions = {r.id: r.version for r in (*service.recommenders, *service.models)}
    comparisons = []
    for shadow in service.shadows:
        try:
            comparisons.append(
                shadow.compare(evaluation, computed, versions.get(shadow.subject, ""))
            )
        except Exception:
            # A faulty candidate is what shadow mode is there to find: logged, never shown.
            logger.exception("shadow %s failed", shadow.id)
    return comparisons
