"""Outcomes fed in as FHIR data: what happened to patients after the cards."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError

from cds_service.dependencies import ERRORS, CurrentCaller, State
from cds_service.errors import ErrorResponse, error_response
from cds_service.fastjson import OrjsonRoute
from fhir_client.outcomes import NotABundle, parse_outcomes

logger = logging.getLogger(__name__)

router = APIRouter(tags=["learning"], route_class=OrjsonRoute)


class OutcomeBundle(BaseModel):
    """A FHIR Bundle of outcome resources; entries are validated one by one
    (fhir_client/outcomes.py), so one bad entry does not refuse the others."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    type: str
    entry: list[Any] = []


class OutcomeResponse(BaseModel):
    stored: int
    updated: int
    """Resources sent before whose content changed (corrections): the new version replaced them."""
    duplicates: int
    notifications: int
    """Subscription status entries acknowledged."""
    withoutResource: int
    """Entries that only reference a resource (id-only notifications); `lhs sync` fetches them."""


@router.post(
    "/outcomes",
    response_model=OutcomeResponse,
    responses={
        **ERRORS,
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
    body: OutcomeBundle, state: State, caller: CurrentCaller, fhirServer: str | None = None
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
