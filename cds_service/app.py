"""The FastAPI application: the routers composed over one instance's state."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cds_service.config import Settings
from cds_service.errors import install_error_handlers
from cds_service.jobs import lifespan
from cds_service.limits import RequestLimitsMiddleware
from cds_service.observability import RequestContextMiddleware
from cds_service.routers import analytics, feedback, hooks, operations, outcomes, transparency
from cds_service.state import build_state
from knowledge.library import KnowledgeLibrary
from point_of_care import SERVICE_VERSION


def create_app(
    settings: Settings | None = None,
    *,
    library: KnowledgeLibrary | None = None,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. The database must already be migrated (``lhs db upgrade``)."""
    state = build_state(settings or Settings(), library, fhir_transport)
    app = FastAPI(
        lifespan=lifespan(state),
        # A redirect to the slash-less path would be built from the Host header, which the
        # caller controls: an unknown path is a plain 404 instead.
        redirect_slashes=False,
        title="Learning Health System CDS Service",
        version=SERVICE_VERSION,
        description="HL7 CDS Hooks 2.0 services with cited, versioned evidence rules; "
        "every card and every piece of feedback is stored for learning.",
    )
    app.state.lhs = state
    for module in (hooks, feedback, outcomes, analytics, transparency, operations):
        app.include_router(module.router)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=state.settings.max_body_bytes)
    # Added last, so outermost: even refused requests are logged, counted and given an id.
    app.add_middleware(
        RequestContextMiddleware, metrics=state.metrics, known_services=frozenset(state.services)
    )
    install_error_handlers(app)
    _document_400_instead_of_422(app)
    return app


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
