"""Authenticating CDS clients as CDS Hooks 2.0 requires ("Trusting CDS Clients").

Every request carries ``Authorization: Bearer <JWT>`` signed with the client's private
key. We accept a token only when its issuer is registered, its algorithm is asymmetric
and allowed for that client, its signature verifies with the client's key (found by
``kid`` in the client's JWKS: inline, at its registered URL, or at a ``jku`` URL that is
on the client's allow list), ``aud`` is the URL of the endpoint being called, it has not
expired, was not issued in the future, and its ``jti`` was not used before.

Failures raise ``AuthError`` with a reason code for metrics and logs; the HTTP layer
answers every failure with the same generic 401.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from sqlalchemy.exc import SQLAlchemyError

from cds_service.tenancy import Caller, normalize_base_url, owner_of
from storage.repository import Store
from storage.writer import InvocationWriter

# RFC 7518 asymmetric signature algorithms; the spec forbids "none" and every HMAC one.
AsymmetricAlgorithm = Literal[
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"
]
SPEC_RECOMMENDED: tuple[AsymmetricAlgorithm, ...] = ("ES384", "RS384")
MAX_TOKEN_LIFETIME_SECONDS = 3600  # bounds how long a jti must be remembered


class AuthError(Exception):
    """The token is not acceptable; ``reason`` is for metrics and logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the client registry ----------------------------------------------------------------------


class ClientRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iss: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    jku_allowlist: list[str] = Field(default_factory=list)
    tenant: str | None = None
    algorithms: list[AsymmetricAlgorithm] = Field(default_factory=lambda: list(SPEC_RECOMMENDED))
    fhir_servers: list[str] = Field(default_factory=list)
    """FHIR base URLs this client may name in ``fhirServer`` (exact, without trailing slash)."""
    informatician: bool = False
    """May read every client's explanations and analytics (a credential for people who
    evaluate the service, not for an EHR)."""

    _inline_keys: dict[str, PublicKey] | None = PrivateAttr(default=None)

    def inline_keys(self) -> dict[str, PublicKey]:
        """The inline JWKS parsed once (parsing keys costs more than verifying a signature)."""
        if self._inline_keys is None:
            self._inline_keys = keys_by_kid(self.jwks or {})
        return self._inline_keys


class _RegistryFile(BaseModel):
    clients: list[ClientRegistration] = Field(default_factory=list)


@dataclass
class ClientRegistry:
    """The EHR clients we trust, kept in a JSON file managed with ``lhs clients``."""

    path: Path
    clients: dict[str, ClientRegistration] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ClientRegistry:
        if not path.exists():
            return cls(path)
        data = _RegistryFile.model_validate_json(path.read_text(encoding="utf-8"))
        return cls(path, {c.iss: c for c in data.clients})

    def save(self) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a registry."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = _RegistryFile(clients=list(self.clients.values())).model_dump_json(
            indent=2, exclude_none=True
        )
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".clients-")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def get(self, iss: str) -> ClientRegistration | None:
        return self.clients.get(iss)


# --- JWKS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    jwk: jwt.PyJWK
    declared_alg: str | None
    """The JWK's own "alg", when it names one: a token must then use exactly that algorithm."""


@dataclass
class _Fetched:
    keys: dict[str, PublicKey]
    at: float


class JwksCache:
    """Fetches JWK Sets by URL, caches them, and refetches (rate-limited) on an unknown kid."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 300.0,
        refetch_interval_seconds: float = 30.0,
        timeout: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ttl = ttl_seconds
        self.refetch_interval = refetch_interval_seconds
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False
        )
        self._cache: dict[str, _Fetched] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def key(self, url: str, kid: str) -> PublicKey:
        fetched = self._cache.get(url)
        now = time.monotonic()
        stale = fetched is None or now - fetched.at > self.ttl
        rotated = (
            fetched is not None
            and kid not in fetched.keys
            and now - fetched.at > self.refetch_interval
        )
        if stale or rotated:
            async with self._locks.setdefault(url, asyncio.Lock()):
                current = self._cache.get(url)
                if current is fetched:  # nobody refreshed it while we waited
                    self._cache[url] = fetched = await self._fetch(url)
                else:
                    fetched = current
        assert fetched is not None
        if kid not in fetched.keys:
            raise AuthError("unknown_kid")
        return fetched.keys[kid]

    async def _fetch(self, url: str) -> _Fetched:
        self.fetches += 1
        try:
            response = await self._client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return _Fetched(keys_by_kid(response.json()), time.monotonic())
        except (httpx.HTTPError, ValueError) as error:
            raise AuthError("jwks_unavailable") from error


def keys_by_kid(jwks: dict[str, Any]) -> dict[str, PublicKey]:
    keys: dict[str, PublicKey] = {}
    for entry in jwks.get("keys", []):
        if (
            not isinstance(entry, dict)
            or "kid" not in entry
            or entry.get("kty") not in ("EC", "RSA", "OKP")
        ):
            continue  # symmetric ("oct") keys are never candidates
        try:
            keys[str(entry["kid"])] = PublicKey(jwt.PyJWK(entry), entry.get("alg"))
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
    return keys


# --- replay protection -------------------------------------------------------------------------


class ReplayCache(Protocol):
    async def check_and_store(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True the first time (iss, jti) is seen while unexpired; False on a replay."""
        ...


def _jti_key(iss: str, jti: str) -> str:
    return hashlib.sha256(f"{iss}\x1f{jti}".encode()).hexdigest()


class DatabaseReplayCache:
    """Replay cache in our database: atomic across worker processes via the primary key.

    With an embedded SQLite store, claims go through the process's single writer thread
    (which batches them), so they never wait on SQLite's write lock behind other writes.
    """

    def __init__(self, store: Store, writer: InvocationWriter | None = None) -> None:
        self.store = store
        self.writer = writer

    async def check_and_store(self, iss: str, jti: str, expires_at: datetime) -> bool:
        key = _jti_key(iss, jti)
        try:
            if self.writer is not None:
                return await self.writer.claim_jti(key, expires_at)
            (first,) = await anyio.to_thread.run_sync(self.store.claim_jtis, [(key, expires_at)])
            return first
        except SQLAlchemyError as error:
            # Without the replay cache a token cannot be checked for reuse: refuse it.
            raise AuthError("replay_cache_unavailable") from error


class RedisReplayCache:
    """Replay cache in Redis: SET NX with the token's expiry."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(url)

    async def check_and_store(self, iss: str, jti: str, expires_at: datetime) -> bool:
        stored = await self.redis.set(
            f"lhs:jti:{_jti_key(iss, jti)}", 1, nx=True, exat=int(expires_at.timestamp()) + 1
        )
        return bool(stored)


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedClient:
    iss: str
    tenant: str | None
    jti: str
    registration: ClientRegistration

    @property
    def caller(self) -> Caller:
        return Caller(
            owner=owner_of(self.iss, self.tenant),
            reads_all=self.registration.informatician,
            fhir_servers=frozenset(normalize_base_url(u) for u in self.registration.fhir_servers),
        )


async def verify(
    token: str,
    *,
    audiences: Sequence[str],
    registry: ClientRegistry,
    jwks: JwksCache,
    replay: ReplayCache,
    leeway_seconds: int = 60,
) -> VerifiedClient:
    """Verify a CDS client's JWT for an endpoint whose accepted ``aud`` values are ``audiences``."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise AuthError("malformed") from error
    algorithm = header.get("alg")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str):
        raise AuthError("missing_claim")
    client = registry.get(issuer)
    if client is None:
        raise AuthError("unknown_issuer")
    # Checked before any key is touched: "none", HMAC, or an algorithm this client does not use.
    if algorithm not in client.algorithms:
        raise AuthError("alg_not_allowed")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise AuthError("missing_kid")
    key = await _key_for(client, kid, header.get("jku"), jwks)
    if key.declared_alg is not None and key.declared_alg != algorithm:
        raise AuthError("alg_not_allowed")
    try:
        claims = jwt.decode(
            token,
            key=key.jwk.key,
            algorithms=[algorithm],
            audience=list(audiences),
            issuer=issuer,
            leeway=leeway_seconds,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise AuthError("expired") from error
    except jwt.ImmatureSignatureError as error:
        raise AuthError("iat_in_future") from error
    except jwt.InvalidAudienceError as error:
        raise AuthError("bad_audience") from error
    except jwt.MissingRequiredClaimError as error:
        raise AuthError("missing_claim") from error
    except jwt.InvalidSignatureError as error:
        raise AuthError("bad_signature") from error
    except jwt.PyJWTError as error:
        raise AuthError("invalid_token") from error
    if claims["exp"] - claims["iat"] > MAX_TOKEN_LIFETIME_SECONDS:
        raise AuthError("lifetime_too_long")
    if client.tenant is not None and claims.get("tenant") != client.tenant:
        raise AuthError("bad_tenant")
    expires_at = datetime.fromtimestamp(claims["exp"] + leeway_seconds, UTC)
    if not await replay.check_and_store(issuer, str(claims["jti"]), expires_at):
        raise AuthError("replayed")
    return VerifiedClient(issuer, claims.get("tenant"), str(claims["jti"]), client)


async def _key_for(client: ClientRegistration, kid: str, jku: object, jwks: JwksCache) -> PublicKey:
    if jku is not None:
        if not isinstance(jku, str) or jku not in client.jku_allowlist:
            raise AuthError("jku_not_allowed")
        return await jwks.key(jku, kid)
    if client.jwks is not None:
        keys = client.inline_keys()
        if kid in keys:
            return keys[kid]
        if client.jwks_url is None:
            raise AuthError("unknown_kid")
    if client.jwks_url is not None:
        return await jwks.key(client.jwks_url, kid)
    raise AuthError("unknown_kid")


def jwks_from_file(path: Path) -> dict[str, Any]:
    """Read a JWK Set (public keys only are kept: private members are refused)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("a JWK Set needs a non-empty 'keys' array")
    for key in keys:
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError(
                "the JWK Set holds private or symmetric key material; register public keys only"
            )
    return data
