"""What is stored of one hook call: the invocation, the cards shown, the predictions, the
experiment assignments and the shadow comparisons, as rows for the invocation writer."""

from __future__ import annotations

import time
from datetime import datetime
from typing import NamedTuple

from hooks.requests import HookRequest
from point_of_care.invocation import CallResult, Service
from storage.repository import AssignmentInput, IssuedCardInput, PredictionInput, ShadowInput
from storage.tables import Invocation


class InvocationRecord(NamedTuple):
    invocation: Invocation
    cards: list[IssuedCardInput]
    predictions: list[PredictionInput]
    assignments: list[AssignmentInput]
    shadows: list[ShadowInput]


def invocation_record(
    *,
    owner: str,
    service: Service,
    request: HookRequest,
    patient_key: str,
    received_at: datetime,
    started: float,
    status: int,
    result: CallResult | None,
) -> InvocationRecord:
    """The rows of one call; ``result`` is None when it was answered 412 (``started`` is a
    ``time.perf_counter()`` reading taken when the call arrived)."""
    user = request.context.get("userId")
    invocation = Invocation(
        hook_instance=str(request.hookInstance),
        service_id=service.id,
        hook=service.definition.hook,
        patient_key=patient_key,
        user_reference=user if isinstance(user, str) else None,
        fhir_server=str(request.fhirServer) if request.fhirServer else None,
        received_at=received_at,
        duration_ms=(time.perf_counter() - started) * 1000,
        status_code=status,
        card_count=len(result.advice) if result else 0,
        prefetch_provided=sorted((request.prefetch or {}).keys()),
        prefetch_fetched=list(result.prefetch.fetched) if result else [],
        prefetch_unavailable=list(result.prefetch.unavailable) if result else [],
        records_skipped=result.record.skipped if result else 0,
        owner=owner,
    )
    if result is None:
        return InvocationRecord(invocation, [], [], [], [])
    cards = [
        IssuedCardInput(a.card, a.rule_id, a.rule_version, a.inputs, a.fingerprint)
        for a in result.advice
    ]
    shown = {a.card.uuid for a in result.advice}
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
            sex=p.audit.sex if p.audit else None,
            race=p.audit.race if p.audit else None,
            ethnicity=p.audit.ethnicity if p.audit else None,
        )
        for p in result.predictions
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
        for a in result.advice + result.withheld
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
        for c in result.shadows
    ]
    return InvocationRecord(invocation, cards, predictions, assignments, shadows)
