"""Why a card was shown and what a served model is: card explanations and model cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from cds_service.dependencies import UNAUTHORIZED, CurrentCaller, State
from cds_service.errors import ErrorResponse, error_response
from cds_service.fastjson import OrjsonRoute
from point_of_care.explain import explain_card

router = APIRouter(tags=["transparency"], route_class=OrjsonRoute)


@router.get(
    "/cards/{card_uuid}/explanation",
    responses={
        401: UNAUTHORIZED,
        404: {"model": ErrorResponse, "description": "No such card."},
    },
)
async def explanation(card_uuid: str, state: State, caller: CurrentCaller) -> dict[str, Any]:
    """Trace a card we issued to its rule version, citations, inputs and feedback. A
    client finds only the cards it was shown; an informatician credential finds any."""
    explained = await run_in_threadpool(explain_card, state.store, card_uuid, caller.scope)
    if explained is None:
        return error_response(404, f"no card with uuid '{card_uuid}'")  # type: ignore[return-value]
    return explained


@router.get(
    "/models/{name}/versions/{version}/card",
    responses={404: {"model": ErrorResponse, "description": "No such model version served."}},
)
async def model_card(name: str, version: str, state: State) -> dict[str, Any]:
    """The model card (HTI-1 source attributes) of the model version this service serves."""
    for model in state.models:
        served = model.slot.current
        if model.id == name and served is not None and served.version == version:
            return {"name": name, "version": version, **served.model_card}
    return error_response(404, f"model {name} version {version} is not served here")  # type: ignore[return-value]
