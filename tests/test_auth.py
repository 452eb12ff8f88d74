"""CDS client authentication (CDS Hooks 2.0 'Trusting CDS Clients'): the rejection matrix and more."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from cds_service.auth import (
    AuthError,
    ClientRegistration,
    ClientRegistry,
    DatabaseReplayCache,
    JwksCache,
    RedisReplayCache,
    verify,
)
from cli.main import app as cli
from point_of_care.examples import EXAMPLES
from storage.db import create_db_engine
from storage.migrate import upgrade_database
from storage.repository import Store
from storage.spool import Spool
from storage.writer import InvocationWriter
from tests.live_server import serve
from tests.service_app import app_factory

ISS = "https://ehr.example.org"
BASE = "http://testserver"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
EC_OTHER = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key, kid: str, alg: str | None = None) -> dict:
    algorithm = (
        jwt.algorithms.ECAlgorithm
        if isinstance(key, ec.EllipticCurvePrivateKey)
        else jwt.algorithms.RSAAlgorithm
    )
    jwk = algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "use": "sig"}
    return jwk | ({"alg": alg} if alg else {})


def token(
    key=EC_KEY,
    alg="ES384",
    kid="ec-1",
    aud=f"{BASE}/cds-services",
    iss=ISS,
    headers=None,
    **claims,
) -> str:
    now = int(time.time())
    payload = {
        "iss": iss,
        "aud": aud,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    } | claims
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(
        payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"} | (headers or {})
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key() -> str:
    """The key-confusion attack: HMAC 'signed' with the client's public key as the secret."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = _b64(
        json.dumps(
            {"iss": ISS, "aud": f"{BASE}/cds-services", "iat": now, "exp": now + 300, "jti": "x"}
        ).encode()
    )
    signature = _b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def unsigned() -> str:
    now = int(time.time())
    return jwt.encode(
        {"iss": ISS, "aud": f"{BASE}/cds-services", "iat": now, "exp": now + 300, "jti": "n"},
        None,
        algorithm="none",
        headers={"kid": "ec-1"},
    )


@pytest.fixture(scope="module")
def jwks_server():
    """The client's JWK Set served over real HTTP, as a jku URL would be."""
    keys = {"keys": [public_jwk(EC_OTHER, "jku-1", "ES384")]}
    app = Starlette(routes=[Route("/jwks.json", lambda _: JSONResponse(keys))])
    with serve(app) as url:
        yield f"{url}/jwks.json"


@pytest.fixture
def app(tmp_path, jwks_server):
    registry = ClientRegistry(tmp_path / "clients.json")
    registry.clients[ISS] = ClientRegistration(
        iss=ISS,
        jwks={"keys": [public_jwk(EC_KEY, "ec-1", "ES384"), public_jwk(RSA_KEY, "rsa-1")]},
        jku_allowlist=[jwks_server],
        tenant="tenant-a",
    )
    registry.save()
    return app_factory(tmp_path)(auth="on", public_base_url=BASE)


@pytest.fixture
def client(app):
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def _discovery(client, bearer):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return client.get("/cds-services", headers=headers)


def _failures(client) -> str:
    return client.get("/metrics").text


REJECTED = {
    "no token": (lambda: None, "missing_token"),
    "bad signature": (lambda: token(key=EC_OTHER, tenant="tenant-a"), "bad_signature"),
    "alg none": (unsigned, "alg_not_allowed"),
    "HS256 with the public key": (hs256_with_public_key, "alg_not_allowed"),
    "alg not allowed for client": (
        lambda: token(key=P256_KEY, alg="ES256", tenant="tenant-a"),
        "alg_not_allowed",
    ),
    "wrong aud": (
        lambda: token(aud=f"{BASE}/cds-services/lhs-order-sign", tenant="tenant-a"),
        "bad_audience",
    ),
    "other host aud": (
        lambda: token(aud="https://evil.example/cds-services", tenant="tenant-a"),
        "bad_audience",
    ),
    "expired": (
        lambda: token(iat=int(time.time()) - 900, exp=int(time.time()) - 300, tenant="tenant-a"),
        "expired",
    ),
    "iat in the future": (
        lambda: token(iat=int(time.time()) + 600, exp=int(time.time()) + 900, tenant="tenant-a"),
        "iat_in_future",
    ),
    "unknown iss": (
        lambda: token(iss="https://stranger.example", tenant="tenant-a"),
        "unknown_issuer",
    ),
    "jku not allow-listed": (
        lambda: token(headers={"jku": "https://evil.example/jwks"}, tenant="tenant-a"),
        "jku_not_allowed",
    ),
    "tenant mismatch": (lambda: token(tenant="tenant-b"), "bad_tenant"),
    "no jti": (lambda: token(jti=None, tenant="tenant-a"), "missing_claim"),
    "no exp": (lambda: token(exp=None, tenant="tenant-a"), "missing_claim"),
    "unknown kid": (lambda: token(kid="nope", tenant="tenant-a"), "unknown_kid"),
    "garbage": (lambda: "not.a.jwt", "malformed"),
    "lifetime too long": (
        lambda: token(exp=int(time.time()) + 86400, tenant="tenant-a"),
        "lifetime_too_long",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejection_matrix(client, case):
    make, reason = REJECTED[case]
    response = _discovery(client, make())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "unauthorized",
        "message": "a valid CDS client bearer token is required",
        "details": [],
    }
    assert f'lhs_auth_failures_total{{reason="{reason}"}} 1.0' in _failures(client)


def test_valid_es384_and_rs384_tokens_pass_on_every_endpoint(client):
    assert _discovery(client, token(tenant="tenant-a")).status_code == 200
    assert (
        _discovery(
            client, token(key=RSA_KEY, alg="RS384", kid="rsa-1", tenant="tenant-a")
        ).status_code
        == 200
    )
    service = f"{BASE}/cds-services/lhs-order-sign"
    call = client.post(
        "/cds-services/lhs-order-sign",
        json=EXAMPLES["lhs-order-sign"](date.today()),
        headers={"Authorization": f"Bearer {token(aud=service, tenant='tenant-a')}"},
    )
    assert call.status_code == 200
    feedback = client.post(
        "/cds-services/lhs-order-sign/feedback",
        json={
            "feedback": [
                {
                    "card": call.json()["cards"][0]["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-24T10:00:00Z",
                }
            ]
        },
        headers={"Authorization": f"Bearer {token(aud=service + '/feedback', tenant='tenant-a')}"},
    )
    assert feedback.status_code == 200
    # aud as an array is accepted too (RFC 7519)
    assert (
        _discovery(client, token(aud=[f"{BASE}/cds-services"], tenant="tenant-a")).status_code
        == 200
    )


def test_a_replayed_token_is_refused(client):
    once = token(tenant="tenant-a")
    assert _discovery(client, once).status_code == 200
    assert _discovery(client, once).status_code == 401
    assert 'lhs_auth_failures_total{reason="replayed"} 1.0' in _failures(client)


def test_allow_listed_jku_is_fetched_over_http(client, jwks_server):
    signed = token(key=EC_OTHER, kid="jku-1", headers={"jku": jwks_server}, tenant="tenant-a")
    assert _discovery(client, signed).status_code == 200


def test_health_and_metrics_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_registry_changes_apply_without_restart(app, client, tmp_path):
    assert _discovery(client, token(tenant="tenant-a")).status_code == 200
    registry = ClientRegistry.load(tmp_path / "clients.json")
    del registry.clients[ISS]
    time.sleep(0.01)  # a distinct mtime
    registry.save()
    os.utime(tmp_path / "clients.json", (time.time() + 1, time.time() + 1))
    assert _discovery(client, token(tenant="tenant-a")).status_code == 401


def test_openapi_declares_bearer_security(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "401" in schema["paths"]["/cds-services"]["get"]["responses"]


# --- units: JWKS by URL with caching and rotation; replay caches ----------------------------------


def test_jwks_url_is_cached_and_refetched_once_on_rotation():
    keys = {"keys": [public_jwk(EC_KEY, "k1", "ES384")]}
    app = Starlette(routes=[Route("/jwks", lambda _: JSONResponse(keys))])
    registry = ClientRegistry(path=None)  # type: ignore[arg-type]

    async def run(url):
        registry.clients[ISS] = ClientRegistration(iss=ISS, jwks_url=url)
        cache = JwksCache(refetch_interval_seconds=0)
        replay = _MemoryReplay()
        for _ in range(3):
            await verify(
                token(kid="k1", aud="a"),
                audiences=["a"],
                registry=registry,
                jwks=cache,
                replay=replay,
            )
        assert cache.fetches == 1
        keys["keys"].append(public_jwk(EC_OTHER, "k2", "ES384"))  # the client rotates its keys
        await verify(
            token(key=EC_OTHER, kid="k2", aud="a"),
            audiences=["a"],
            registry=registry,
            jwks=cache,
            replay=replay,
        )
        assert cache.fetches == 2
        with pytest.raises(AuthError, match="unknown_kid"):
            await verify(
                token(kid="k9", aud="a"),
                audiences=["a"],
                registry=registry,
                jwks=cache,
                replay=replay,
            )
        await cache.aclose()

    with serve(app) as url:
        asyncio.run(run(f"{url}/jwks"))


class _MemoryReplay:
    def __init__(self):
        self.seen = set()

    async def check_and_store(self, iss, jti, expires_at):
        if (iss, jti) in self.seen:
            return False
        self.seen.add((iss, jti))
        return True


def test_database_replay_cache(database_url, tmp_path):
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    store = Store(engine)
    writer = InvocationWriter(store, Spool(tmp_path / "spool"))
    expires = datetime.now(UTC) + timedelta(minutes=5)

    async def run(cache, jti):
        assert await cache.check_and_store(ISS, jti, expires)
        assert not await cache.check_and_store(ISS, jti, expires)
        assert await cache.check_and_store("https://other.example", jti, expires)
        # concurrent claims of one jti: exactly one wins
        results = await asyncio.gather(
            *(cache.check_and_store(ISS, jti + "-race", expires) for _ in range(10))
        )
        assert sum(results) == 1

    asyncio.run(run(DatabaseReplayCache(store), "j1"))
    asyncio.run(run(DatabaseReplayCache(store, writer), "j2"))
    engine.dispose()


def test_redis_replay_cache():
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at 127.0.0.1:6379 unreachable: {error}")
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {error}")
    cache = RedisReplayCache("redis://127.0.0.1:6379/0")
    jti = str(uuid.uuid4())
    expires = datetime.now(UTC) + timedelta(seconds=30)

    async def run():
        assert await cache.check_and_store(ISS, jti, expires)
        assert not await cache.check_and_store(ISS, jti, expires)
        await cache.redis.aclose()

    asyncio.run(run())


# --- the clients CLI --------------------------------------------------------------------------------


def test_clients_cli_round_trip(tmp_path):
    runner = CliRunner()
    registry = tmp_path / "clients.json"
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public_jwk(EC_KEY, "ec-1", "ES384")]}))
    added = runner.invoke(
        cli,
        [
            "clients",
            "add",
            ISS,
            "--jwks-file",
            str(jwks_file),
            "--tenant",
            "t",
            "--registry",
            str(registry),
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["clients", "list", "--registry", str(registry)])
    assert ISS in listed.output and "1 inline key(s)" in listed.output
    rotated_file = tmp_path / "rotated.json"
    rotated_file.write_text(
        json.dumps(
            {"keys": [public_jwk(EC_KEY, "ec-1", "ES384"), public_jwk(EC_OTHER, "ec-2", "ES384")]}
        )
    )
    assert (
        runner.invoke(
            cli,
            [
                "clients",
                "rotate",
                ISS,
                "--jwks-file",
                str(rotated_file),
                "--registry",
                str(registry),
            ],
        ).exit_code
        == 0
    )
    assert len(ClientRegistry.load(registry).get(ISS).jwks["keys"]) == 2
    private = tmp_path / "private.json"
    private.write_text(
        json.dumps(
            {"keys": [jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY, as_dict=True) | {"kid": "p"}]}
        )
    )
    refused = runner.invoke(
        cli, ["clients", "add", "x", "--jwks-file", str(private), "--registry", str(registry)]
    )
    assert refused.exit_code == 2 and "private" in refused.output
    bad_alg = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "y",
            "--jku-allow",
            "https://a",
            "--alg",
            "HS256",
            "--registry",
            str(registry),
        ],
    )
    assert bad_alg.exit_code == 2
    assert (
        runner.invoke(cli, ["clients", "remove", ISS, "--registry", str(registry)]).exit_code == 0
    )
    assert ClientRegistry.load(registry).get(ISS) is None
