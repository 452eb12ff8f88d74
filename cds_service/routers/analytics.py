"""What the informaticians read: feedback analytics and outbreak signals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from cds_service.dependencies import ERRORS, UNAUTHORIZED, CurrentCaller, State
from cds_service.errors import error_response
from cds_service.fastjson import OrjsonRoute
from evaluation.feedback_analytics import feedback_analytics
from evaluation.syndromic import suppress
from fhir_client.fhirdates import as_utc

router = APIRouter(route_class=OrjsonRoute)


@router.get(
    "/analytics/feedback", tags=["learning"], responses={400: ERRORS[400], 401: UNAUTHORIZED}
)
async def analytics(
    state: State,
    caller: CurrentCaller,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Acceptance and override rates per rule, version, hook, user role and week; override
    reasons; cards per call. Default period: the last 90 days. A client sees its own
    cards; an informatician credential sees every client's."""
    end = as_utc(until) if until else datetime.now(UTC)
    try:
        start = as_utc(since) if since else end - timedelta(days=90)
    except OverflowError:
        start = datetime.min.replace(tzinfo=UTC)
    if start >= end:
        return error_response(  # type: ignore[return-value]
            400,
            "the period is empty: since must be before until",
            [{"field": "since", "message": "not before until"}],
        )
    rows, burden = await run_in_threadpool(
        lambda: (
            state.store.card_tallies(start, end, owner=caller.scope),
            state.store.cards_per_call(start, end, owner=caller.scope),
        )
    )
    return {
        "since": start.isoformat(),
        "until": end.isoformat(),
        **feedback_analytics(rows, burden).as_dict(),
    }


@router.get(
    "/surveillance/signals",
    tags=["surveillance"],
    responses={401: UNAUTHORIZED, 403: ERRORS[403]},
)
async def surveillance_signals(
    state: State, caller: CurrentCaller, days: Annotated[int, Query(ge=1, le=3650)] = 30
) -> dict[str, Any]:
    """Outbreak signals of the last ``days`` days, newest first: syndrome, area (ZIP3),
    day, method, expected count, threshold and strength; an observed count below the
    small-number limit is given as null with ``observed_suppressed`` true. The signals are
    counted over every client's data, so only an informatician credential reads them."""
    if not caller.reads_all:
        return error_response(  # type: ignore[return-value]
            403, "surveillance signals are read with an informatician credential"
        )
    since = datetime.now(UTC).date() - timedelta(days=days)
    found = await run_in_threadpool(state.store.surveillance.signals, since)
    return {
        "since": since.isoformat(),
        "signals": [
            {
                "syndrome": s.syndrome,
                "area": s.area,
                "day": s.day.isoformat(),
                "method": s.method,
                "observed": suppress(round(s.observed)),
                "observed_suppressed": suppress(round(s.observed)) is None,
                # Not finite (said as null): EARS over a silent baseline has infinitely
                # many SDs; an EARS C3 whose last days already alarm alarms at any count.
                "expected": _finite(s.expected, 2),
                "threshold": _finite(s.threshold, 2),
                "strength": _finite(s.strength),
            }
            for s in found
        ],
    }


def _finite(value: float, digits: int | None = None) -> float | None:
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value
