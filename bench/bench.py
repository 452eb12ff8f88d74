"""Throughput and latency of a patient-view call, against a bare FastAPI app in the same run.

Both servers run under uvicorn with one worker on 127.0.0.1 and are driven by the same
async httpx load generator for the same time, with the same body: a patient-view request
whose prefetch holds about 200 FHIR resources of a synthetic patient. Printed: requests/s,
p50 and p99 for each, and the ratios service/bare (targets: throughput >= 0.5, p99 < 4x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cds_service.config import default_patients

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_request(target_resources: int = 200) -> dict:
    """A patient-view request for a real synthetic patient, prefetch trimmed to ~200 resources."""
    from fhir_client.bundles import load_bundle, patient_bundles
    from knowledge.library import load_library
    from point_of_care.catalogue import build_services
    from point_of_care.sweep import requests_for_patient

    services = build_services(load_library())
    for path in patient_bundles(default_patients()):
        for service, request in requests_for_patient(load_bundle(path), services):
            if service.id != "lhs-patient-view":
                continue
            sizes = {
                k: len(v.get("entry", []))
                for k, v in request["prefetch"].items()
                if v and v["resourceType"] == "Bundle"
            }
            if sum(sizes.values()) >= target_resources:
                budget = target_resources - 1  # the Patient resource
                for key, size in sorted(sizes.items(), key=lambda kv: kv[1]):
                    keep = min(size, budget // max(len([k for k in sizes if sizes[k] >= size]), 1))
                    request["prefetch"][key]["entry"] = (
                        request["prefetch"][key]["entry"][-keep:] if keep else []
                    )
                    budget -= keep
                return request
    raise SystemExit(f"no synthetic patient with enough data found in {default_patients()}")


def count_resources(request: dict) -> int:
    return sum(
        1 if v.get("resourceType") != "Bundle" else len(v["entry"])
        for v in request["prefetch"].values()
        if v
    )


def service_env(data_dir: str, **settings: str) -> dict[str, str]:
    """The environment of a service under measurement: its own data folder, quiet logs, auth
    off unless ``settings`` say otherwise."""
    return {
        "LHS_DATA_DIR": data_dir,
        "LHS_PSEUDONYM_KEY": "bench-pseudonym-key-of-32-characters",
        "LHS_AUTH": "off",
        "LHS_LOG_LEVEL": "ERROR",
        **settings,
    }


def lhs(env: dict[str, str], *arguments: str) -> None:
    """Run an `lhs` command (e.g. `db upgrade`) against the service's environment."""
    subprocess.run(
        [sys.executable, "-m", "cli.main", *arguments],
        cwd=ROOT,
        env=os.environ | env,
        check=True,
        capture_output=True,
    )


class Server:
    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=os.environ | env,
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"server at {self.url} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class TokenMinter:
    """Signs CDS client JWTs with unique jtis, as a real EHR does: one per request.

    Tokens are signed before the timed run (``prepare``) so that signing does not load the
    generator during the measurement; both apps receive them.
    """

    def __init__(self, algorithm: str = "ES384", issuer: str = "https://bench-ehr.example") -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.issuer = issuer
        self.algorithm = algorithm
        if algorithm == "ES384":
            self.key = ec.generate_private_key(ec.SECP384R1())
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        import jwt

        kind = (
            jwt.algorithms.ECAlgorithm if self.algorithm == "ES384" else jwt.algorithms.RSAAlgorithm
        )
        jwk = kind.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [jwk | {"kid": "bench", "alg": self.algorithm}]}

    def prepare(self, audience: str, count: int) -> None:
        self._pool = [self.mint(audience) for _ in range(count)]

    def __call__(self, audience: str) -> str:
        return self._pool.pop() if getattr(self, "_pool", None) else self.mint(audience)

    def mint(self, audience: str) -> str:
        import uuid

        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims, self.key, algorithm=self.algorithm, headers={"kid": "bench", "typ": "JWT"}
        )


async def load(
    url: str, body: bytes, seconds: float, concurrency: int, minter: TokenMinter | None = None
) -> list[float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    base_headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                # Both apps get the same Authorization header; only ours checks it.
                headers = base_headers | (
                    {"Authorization": f"Bearer {minter(url)}"} if minter else {}
                )
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(
                        f"{url} answered {response.status_code}: {response.text[:300]}"
                    )
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def measure(
    name: str, url: str, body: bytes, seconds: float, concurrency: int, minter: TokenMinter | None
) -> dict[str, float]:
    if minter is not None:
        minter.prepare(url, int(seconds * 800) + 2000)
    asyncio.run(load(url, body, min(2.0, seconds / 4), concurrency, minter))  # warm-up
    latencies = asyncio.run(load(url, body, seconds, concurrency, minter))
    quantiles = statistics.quantiles(latencies, n=100)
    result = {
        "rps": len(latencies) / seconds,
        "p50": quantiles[49] * 1000,
        "p99": quantiles[98] * 1000,
    }
    print(
        f"{name:<8} {result['rps']:>9.1f} req/s   p50 {result['p50']:>7.2f} ms   p99 {result['p99']:>7.2f} ms"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="Length of each measured round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-auth", action="store_true", help="Run the service with LHS_AUTH=off.")
    parser.add_argument(
        "--alg", choices=["ES384", "RS384"], default="ES384", help="The client's JWT algorithm."
    )
    args = parser.parse_args()
    minter = None if args.no_auth else TokenMinter(args.alg)

    request = build_request()
    body = json.dumps(request).encode()
    auth = "off" if minter is None else f"on (an {args.alg} JWT per request)"
    print(
        f"body: patient-view, {count_resources(request)} prefetched resources, {len(body) / 1024:.0f} KiB; auth {auth}"
    )
    with tempfile.TemporaryDirectory() as data_dir:
        env = service_env(
            data_dir,
            LHS_AUTH="off" if minter is None else "on",
            LHS_EVALUATION_TIME="2021-04-01T00:00:00+00:00",
        )
        if minter is not None:
            from cds_service.auth import ClientRegistration, ClientRegistry

            registry = ClientRegistry(Path(data_dir) / "clients.json")
            registry.clients[minter.issuer] = ClientRegistration(
                iss=minter.issuer, jwks=minter.jwks()
            )
            registry.save()
        lhs(env, "db", "upgrade")
        service = Server("cds_service.asgi:app", env)
        bare = Server("bench.bare_app:app", {})
        try:
            service.wait_ready("/healthz")
            bare.wait_ready("/docs")
            path = "/cds-services/lhs-patient-view"
            # Alternate the two apps over several rounds and take medians: this machine's speed
            # drifts by 10-20% within a minute, which would otherwise favour one side.
            rounds: dict[str, list[dict[str, float]]] = {"service": [], "bare": []}
            for _ in range(args.rounds):
                for name, server in (("service", service), ("bare", bare)):
                    rounds[name].append(
                        measure(
                            name, server.url + path, body, args.seconds, args.concurrency, minter
                        )
                    )
        finally:
            service.stop()
            bare.stop()
    ours, base = (
        {key: statistics.median(r[key] for r in rounds[name]) for key in ("rps", "p50", "p99")}
        for name in ("service", "bare")
    )
    print(
        f"median   service {ours['rps']:.1f} req/s, p99 {ours['p99']:.2f} ms; bare {base['rps']:.1f} req/s, p99 {base['p99']:.2f} ms"
    )
    throughput, p99 = ours["rps"] / base["rps"], ours["p99"] / base["p99"]
    verdict = "OK" if throughput >= 0.5 and p99 < 4 else "BELOW TARGET"
    print(
        f"ratio service/bare: throughput {throughput:.2f} (target >= 0.5), p99 {p99:.2f}x (target < 4x): {verdict}"
    )


if __name__ == "__main__":
    main()
