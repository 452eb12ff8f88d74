"""CDS Hooks feedback: what clinicians did with the cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cds_service.dependencies import ERRORS, CurrentCaller, State
from cds_service.errors import ErrorDetail, ErrorResponse, error_response
from cds_service.fastjson import OrjsonRoute
from hooks.feedback import FeedbackRequest, validate_feedback_items
from storage.feedback_intake import keep_feedback

router = APIRouter(route_class=OrjsonRoute)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: int
    unknownCards: list[str] = Field(
        description="Cards this service never showed the calling client: their items were not stored."
    )
    adjustedTimestamps: list[ErrorDetail] = Field(
        default_factory=list,
        description="Items stored with another outcomeTimestamp than sent, and why: before the "
        "card was issued (stored as the issue time) or after the item arrived (stored as the "
        "arrival time).",
    )


class FeedbackSpooledResponse(FeedbackResponse):
    spooled: int


class FeedbackErrorResponse(ErrorResponse):
    """A 400 on feedback: when items were read, how many valid ones were kept."""

    stored: int | None = None
    duplicates: int | None = None
    spooled: int | None = None
    unknownCards: list[str] | None = None
    adjustedTimestamps: list[ErrorDetail] | None = None


@router.post(
    "/cds-services/{service_id}/feedback",
    response_model=FeedbackResponse,
    responses={
        **ERRORS,
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
async def feedback(
    service_id: str, body: FeedbackRequest, state: State, caller: CurrentCaller
) -> Any:
    """Receive feedback on cards; each item is stored once, however often it is re-sent."""
    if service_id not in state.services:
        return error_response(404, f"no CDS service with id '{service_id}'")
    validated = validate_feedback_items(body.feedback)
    receipt = await run_in_threadpool(
        keep_feedback,
        state.store,
        state.spool,
        caller.owner,
        service_id,
        validated.items,
        validated.raw_items,
    )
    unknown = set(receipt.unknown_cards)
    for item in validated.items:
        if item.card not in unknown:
            state.metrics.feedback.labels(service_id, item.outcome).inc()
    state.metrics.unknown_feedback_cards.inc(sum(item.card in unknown for item in validated.items))
    counts: dict[str, Any] = {"stored": receipt.stored, "duplicates": receipt.duplicates}
    if receipt.spooled:
        state.metrics.spooled_feedback.inc(receipt.spooled)
        counts["spooled"] = receipt.spooled
    adjusted = [
        {"field": f"feedback.{validated.indexes[position]}.outcomeTimestamp", "message": why}
        for position, why in receipt.adjusted
    ]
    if validated.problems:
        return error_response(
            400,
            f"{len(body.feedback) - len(validated.items)} feedback item(s) are malformed; "
            "the others were kept",
            validated.problems,
            **counts,
            unknownCards=receipt.unknown_cards,
            adjustedTimestamps=adjusted,
        )
    if receipt.spooled:
        return JSONResponse(
            {**counts, "unknownCards": [], "adjustedTimestamps": []}, status_code=202
        )
    return FeedbackResponse(
        **counts, unknownCards=receipt.unknown_cards, adjustedTimestamps=adjusted
    )
