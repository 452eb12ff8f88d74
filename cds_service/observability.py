"""Structured JSON logs with request correlation, and Prometheus metrics.

Logs never carry patient data: records hold ids of requests, hook instances and
services, and exception *types and frames* but not exception messages (a library's
message may quote the input it rejected).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
hook_instance_var: ContextVar[str | None] = ContextVar("hook_instance", default=None)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (hook_instance := hook_instance_var.get()) is not None:
            entry["hook_instance"] = hook_instance
        for key in ("service", "status", "duration_ms", "method", "path", "reason"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["exc_frames"] = [
                f"{frame.filename}:{frame.lineno}:{frame.name}"
                for frame in traceback.extract_tb(tb)
            ]
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send all logs as JSON lines to stderr (called once per process, at start-up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = name != "uvicorn.access"


@dataclass
class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.request_latency = Histogram(
            "lhs_request_duration_seconds",
            "HTTP request latency by route and service.",
            ["route", "service", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.cards = Counter(
            "lhs_cards_total",
            "Cards returned, by indicator and rule.",
            ["service", "indicator", "rule"],
            registry=r,
        )
        self.feedback = Counter(
            "lhs_feedback_total",
            "Feedback items stored, by outcome.",
            ["service", "outcome"],
            registry=r,
        )
        self.fhir_fetch_latency = Histogram(
            "lhs_fhir_fetch_duration_seconds",
            "Latency of prefetch queries to EHR FHIR servers.",
            registry=r,
        )
        self.fhir_fetch_errors = Counter(
            "lhs_fhir_fetch_errors_total", "Prefetch queries that failed.", ["reason"], registry=r
        )
        self.auth_failures = Counter(
            "lhs_auth_failures_total",
            "Rejected CDS client tokens, by reason.",
            ["reason"],
            registry=r,
        )
        self.suppressed_cards = Counter(
            "lhs_cards_suppressed_total",
            "Cards not shown again after an override (same patient, rule and triggering data).",
            ["service", "rule"],
            registry=r,
        )
        self.unknown_medication_codes = Counter(
            "lhs_unknown_medication_codes_total",
            "RxNorm codes of the patient's medications or draft orders that map to no known "
            "ingredient (so medication rules cannot see them).",
            ["service"],
            registry=r,
        )
        self.fhir_server_refused = Counter(
            "lhs_fhir_server_refused_total",
            "Hook calls refused (412) because fhirServer is not registered for the calling client.",
            registry=r,
        )
        self.unknown_feedback_cards = Counter(
            "lhs_feedback_unknown_cards_total",
            "Feedback items naming cards this service never showed the sending client (not stored).",
            registry=r,
        )
        self.recommender_failures = Counter(
            "lhs_recommender_failures_total",
            "Rules or models that raised.",
            ["recommender"],
            registry=r,
        )
        self.predictions = Counter(
            "lhs_model_predictions_total",
            "Predictions made, by model and version.",
            ["model", "version"],
            registry=r,
        )
        self.outcomes = Counter(
            "lhs_outcome_resources_total",
            "Outcome resources received, stored or rejected.",
            ["result"],
            registry=r,
        )
        self.model_swaps = Counter(
            "lhs_model_swaps_total",
            "Times a new @champion version was loaded and swapped in.",
            ["model"],
            registry=r,
        )
        self.spooled_feedback = Gauge(
            "lhs_feedback_spooled", "Feedback items waiting in the durable spool.", registry=r
        )

    def observe_fhir_fetch(self, seconds: float, error: str | None) -> None:
        """Record one prefetch query to an EHR's FHIR server (the client's observer hook)."""
        if error is None:
            self.fhir_fetch_latency.observe(seconds)
        else:
            self.fhir_fetch_errors.labels(error).inc()


class RequestContextMiddleware:
    """Assign each request an id (or keep a sane incoming X-Request-ID), log and time it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known_services: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        # Label values come only from this set, so that arbitrary paths cannot blow up
        # the metrics' cardinality.
        self.known_services = known_services
        self.logger = logging.getLogger("cds_service.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        hook_token = hook_instance_var.set(None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            service = (scope.get("path_params") or {}).get("service_id", "")
            if service and service not in self.known_services:
                service = "unknown"
            self.metrics.request_latency.labels(template, service, str(status)).observe(elapsed)
            self.logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": template,
                    "service": service,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            hook_instance_var.reset(hook_token)
            request_id_var.reset(token)
