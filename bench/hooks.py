"""Every hook against a bare FastAPI+orjson app, driven by wrk (an external load generator).

Four bodies: patient-view with a prefetch of ~200 FHIR resources of a synthetic patient,
order-select, order-sign and encounter-discharge (with the readmission model serving, so
the call includes features, risk and explanation). For each hook the service (one uvicorn
worker, authentication off: a JWT check costs ~0.8 ms and is measured by bench.bench) and
the bare app are driven alternately over several rounds; medians of requests/s and p99 are
compared. Targets: throughput >= 0.7x the bare app, p99 <= 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from bench.bench import ROOT, Server, build_request, count_resources, lhs, service_env

THROUGHPUT_TARGET, P99_TARGET = 0.7, 3.0
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, body_file: Path, seconds: int, connections: int) -> dict[str, float]:
    """requests/s and p99 (ms) of one wrk run; exits if any answer was not 200."""
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "post.lua"),
            url,
        ],
        env=os.environ | {"BENCH_BODY": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
    )
    out = completed.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{url}: not every answer was 200:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return {"rps": rps, "p99": float(value) * _UNITS[unit]}


def bodies(folder: Path) -> dict[str, Path]:
    from point_of_care.examples import EXAMPLES

    requests = {"lhs-patient-view": build_request()}
    print(f"patient-view: {count_resources(requests['lhs-patient-view'])} prefetched resources")
    for service_id in ("lhs-order-select", "lhs-order-sign", "lhs-encounter-discharge"):
        requests[service_id] = EXAMPLES[service_id](date.today())
    files = {}
    for service_id, request in requests.items():
        files[service_id] = folder / f"{service_id}.json"
        files[service_id].write_text(json.dumps(request))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="Length of each measured run.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as data_dir:
        env = service_env(data_dir, LHS_EVALUATION_TIME="2021-04-01T00:00:00+00:00")
        lhs(env, "db", "upgrade")
        # The discharge call is measured with a model serving, as in production.
        lhs(env, "models", "ensure")
        files = bodies(Path(data_dir))
        service = Server("cds_service.asgi:app", env)
        bare = Server("bench.bare_orjson:app", {})
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        try:
            service.wait_ready("/readyz")
            bare.wait_ready("/docs")
            for service_id, body in files.items():
                path = f"/cds-services/{service_id}"
                runs = results[service_id] = {"service": [], "bare": []}
                for server in (service, bare):  # warm-up
                    wrk(server.url + path, body, 2, args.connections)
                # Alternating rounds, medians: this machine's speed drifts within a minute.
                for _ in range(args.rounds):
                    for name, server in (("service", service), ("bare", bare)):
                        runs[name].append(
                            wrk(server.url + path, body, args.seconds, args.connections)
                        )
        finally:
            service.stop()
            bare.stop()
    print(
        "\n| hook | service req/s | bare req/s | throughput ratio | service p99 ms | bare p99 ms | p99 ratio |"
        "\n|---|---|---|---|---|---|---|"
    )
    below = []
    for service_id, runs in results.items():
        ours, base = (
            {key: statistics.median(r[key] for r in runs[name]) for key in ("rps", "p99")}
            for name in ("service", "bare")
        )
        throughput, p99 = ours["rps"] / base["rps"], ours["p99"] / base["p99"]
        if throughput < THROUGHPUT_TARGET or p99 > P99_TARGET:
            below.append(service_id)
        print(
            f"| {service_id.removeprefix('lhs-')} | {ours['rps']:.0f} | {base['rps']:.0f} | "
            f"**{throughput:.2f}** | {ours['p99']:.1f} | {base['p99']:.1f} | {p99:.2f}x |"
        )
    print(
        f"\ntargets: throughput >= {THROUGHPUT_TARGET}x, p99 <= {P99_TARGET}x: "
        + ("met for every hook" if not below else f"NOT met for {', '.join(below)}")
    )


if __name__ == "__main__":
    main()
