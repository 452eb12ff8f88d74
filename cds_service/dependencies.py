"""FastAPI dependencies shared by the routers: the app's state, the authenticated caller, and
the error responses the OpenAPI schema documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from cds_service.client_auth import bearer_scheme
from cds_service.errors import ErrorResponse
from cds_service.state import AppState
from cds_service.tenancy import Caller


def app_state(request: Request) -> AppState:
    return request.app.state.lhs  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(app_state)]


async def authenticated_caller(
    request: Request,
    state: State,
    # Declared for the OpenAPI schema (and its "Authorize" button); the check is the authenticator's.
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The client whose JWT verified, or the local caller when authentication is off."""
    if state.authenticator is None:
        return state.local_caller
    await state.authenticator(request)
    return request.state.caller  # type: ignore[no-any-return]


CurrentCaller = Annotated[Caller, Depends(authenticated_caller)]
PROTECTED = [Depends(authenticated_caller)]
"""For routes that need an authenticated client but not its identity."""

UNAUTHORIZED: dict[str, Any] = {
    "model": ErrorResponse,
    "description": "Missing or invalid CDS client JWT (the reason is logged, not returned).",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request; `details` names the fields."},
    404: {"model": ErrorResponse, "description": "No such service."},
    401: UNAUTHORIZED,
    403: {"model": ErrorResponse, "description": "This credential may not read or write this."},
    413: {"model": ErrorResponse, "description": "The body is larger than LHS_MAX_BODY_BYTES."},
    415: {"model": ErrorResponse, "description": "The body is not JSON."},
    431: {"model": ErrorResponse, "description": "The request headers exceed 16 KB."},
}
