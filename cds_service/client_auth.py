"""The HTTP side of client authentication: a FastAPI dependency around auth.verify."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer

from cds_service.auth import AuthError, ClientRegistry, JwksCache, ReplayCache, verify
from cds_service.observability import Metrics

logger = logging.getLogger(__name__)

# Declared for the OpenAPI schema (and its "Authorize" button); the check itself is ours.
bearer_scheme = HTTPBearer(
    auto_error=False, description="A JWT signed by the CDS client (CDS Hooks 2.0)."
)

# A CDS client JWT (header, a handful of claims, an RSA-4096 signature) is under 2 KB.
MAX_TOKEN_BYTES = 8192

_UNAUTHORIZED = HTTPException(
    status_code=401,
    detail="a valid CDS client bearer token is required",
    headers={"WWW-Authenticate": "Bearer"},
)


class ClientAuthenticator:
    def __init__(
        self,
        registry_path: Path,
        jwks: JwksCache,
        replay: ReplayCache,
        metrics: Metrics,
        *,
        public_base_url: str | None,
        leeway_seconds: int,
    ) -> None:
        self.registry_path = registry_path
        self.jwks = jwks
        self.replay = replay
        self.metrics = metrics
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.leeway_seconds = leeway_seconds
        self._registry = ClientRegistry(registry_path)
        self._registry_mtime: float | None = None

    def registry(self) -> ClientRegistry:
        """The registry file, re-read when it changes (`lhs clients` edits need no restart)."""
        try:
            mtime = self.registry_path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime != self._registry_mtime:
            self._registry = ClientRegistry.load(self.registry_path)
            self._registry_mtime = mtime
        return self._registry

    def audience(self, request: Request) -> str:
        """The URL of the endpoint being called, which the spec requires as ``aud``."""
        base = self.public_base_url or f"{request.url.scheme}://{request.url.netloc}"
        return base + request.url.path

    async def __call__(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("missing_token")
            if len(token) > MAX_TOKEN_BYTES:
                raise AuthError("token_too_large")  # refused before any decoding work
            verified = await verify(
                token.strip(),
                audiences=[self.audience(request)],
                registry=self.registry(),
                jwks=self.jwks,
                replay=self.replay,
                leeway_seconds=self.leeway_seconds,
            )
        except AuthError as error:
            self.metrics.auth_failures.labels(error.reason).inc()
            logger.warning("client authentication failed", extra={"reason": error.reason})
            raise _UNAUTHORIZED from None
        request.state.caller = verified.caller
