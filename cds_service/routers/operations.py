"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from cds_service.dependencies import State
from cds_service.fastjson import OrjsonRoute
from storage.migrate import schema_problem

router = APIRouter(tags=["operations"], route_class=OrjsonRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready."}})
async def readyz(state: State) -> JSONResponse:
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
    limit = state.settings.spool_ready_limit
    checks["spool"] = (
        "ok" if backlog < limit else f"{backlog} records wait to be stored (limit {limit})"
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


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> PlainTextResponse:
    """Prometheus metrics in the text exposition format."""
    return PlainTextResponse(
        generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
