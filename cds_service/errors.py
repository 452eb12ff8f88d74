"""The JSON error body every 4xx carries, and the handlers that produce it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    """What went wrong: a short code, a sentence, and the offending fields."""

    error: str
    message: str
    details: list[ErrorDetail] = []


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "request_header_fields_too_large",
    503: "service_unavailable",
}


def error_response(
    status: int, message: str, details: Sequence[dict[str, str]] = (), **extra: Any
) -> JSONResponse:
    """A JSON error body; ``extra`` members (e.g. counts of what was stored) are added to it."""
    body = ErrorResponse(
        error=_CODES.get(status, "error"),
        message=message,
        details=[ErrorDetail(**d) for d in details],
    )
    return JSONResponse({**body.model_dump(), **extra}, status_code=status)


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    # A JSON syntax error is located by character offset, which is no field name.
    if len(parts) == 1 and parts[0].isdigit():
        parts = []
    return ".".join(parts) or "body"


async def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        {"field": _location(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in error.errors()
    ]
    # The spec asks for 400 on malformed requests; FastAPI's default would be 422.
    return error_response(400, "the request body is malformed", details)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    response = error_response(error.status_code, str(error.detail))
    response.headers.update(error.headers or {})
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
