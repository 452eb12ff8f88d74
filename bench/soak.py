"""Soak: mixed hook calls, feedback and analytics at a fixed rate for minutes on end.

One uvicorn worker on 127.0.0.1 (embedded SQLite, authentication off) gets, open-loop at
``--rate`` requests per second: patient-view, order-select, order-sign and
encounter-discharge calls in turn, feedback on every card shown, and a feedback-analytics
read every fifty requests. Every period (a minute by default) the server's resident memory
and open file descriptors are read from /proc and the period's latencies summarised, the
clinical calls (hooks and feedback) apart from the analytics reads, whose work grows with
the cards of their window. The table ends with the last period against the second (the
first holds start-up and warm-up): memory, descriptors and the calls' p99 should stay
within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx

from bench.bench import Server, lhs, service_env

TOLERANCE = 0.10


@dataclass
class Period:
    latencies: list[float] = field(default_factory=list)
    """hook calls and feedback"""
    analytics: list[float] = field(default_factory=list)
    errors: int = 0
    rss_mb: float = 0.0
    fds: int = 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def drive(
    url: str, pid: int, rate: float, periods: int, period_seconds: float
) -> list[Period]:
    from point_of_care.examples import EXAMPLES

    calls = itertools.cycle(
        [
            ("lhs-patient-view", EXAMPLES["lhs-patient-view"]),
            ("lhs-order-select", EXAMPLES["lhs-order-select"]),
            ("lhs-order-sign", EXAMPLES["lhs-order-sign"]),
            ("lhs-encounter-discharge", EXAMPLES["lhs-encounter-discharge"]),
        ]
    )
    results = [Period() for _ in range(periods)]
    started = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def timed(
            period: Period, method: str, path: str, **kwargs: object
        ) -> httpx.Response | None:
            begun = time.perf_counter()
            try:
                response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError:
                period.errors += 1
                return None
            kind = period.analytics if path.startswith("/analytics") else period.latencies
            kind.append(time.perf_counter() - begun)
            if response.status_code >= 300:
                period.errors += 1
            return response

        async def hook_then_feedback(period: Period, service_id: str, body: dict) -> None:
            response = await timed(period, "POST", f"/cds-services/{service_id}", json=body)
            if response is None or response.status_code != 200:
                return
            items = [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-12-04T10:00:00Z",
                }
                for card in response.json()["cards"]
            ]
            if items:
                await timed(
                    period, "POST", f"/cds-services/{service_id}/feedback", json={"feedback": items}
                )

        per_period = round(rate * period_seconds)
        for n in itertools.count():
            due = started + n / rate
            index = n // per_period
            if index >= periods:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            period = results[index]
            if n % 50 == 49:
                task = asyncio.create_task(timed(period, "GET", "/analytics/feedback"))
            else:
                service_id, example = next(calls)
                task = asyncio.create_task(
                    hook_then_feedback(period, service_id, example(date.today()))
                )
            pending.add(task)
            task.add_done_callback(pending.discard)
            if (n + 1) % per_period == 0:  # the period's last request
                period.rss_mb, period.fds = rss_mb(pid), open_fds(pid)
        await asyncio.gather(*pending)
    return results


def _quantile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100)[percent - 1] if len(values) > 1 else 0.0


def report(results: list[Period], period_seconds: float) -> bool:
    unit = "min" if period_seconds == 60 else f"x{period_seconds:g}s"
    print(
        f"| period ({unit}) | requests | errors | p50 ms | p99 ms | analytics p99 ms | RSS MB | open fds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for number, period in enumerate(results, start=1):
        print(
            f"| {number} | {len(period.latencies) + len(period.analytics)} | {period.errors} | "
            f"{_quantile(period.latencies, 50) * 1000:.1f} | {_quantile(period.latencies, 99) * 1000:.1f} | "
            f"{_quantile(period.analytics, 99) * 1000:.1f} | {period.rss_mb:.0f} | {period.fds} |"
        )
    second, last = results[1], results[-1]
    changes = {
        "RSS": last.rss_mb / second.rss_mb - 1,
        "open fds": last.fds / second.fds - 1,
        "p99": _quantile(last.latencies, 99) / _quantile(second.latencies, 99) - 1,
    }
    analytics = (_quantile(second.analytics, 99), _quantile(last.analytics, 99))
    print(
        "\nlast period against the second: "
        + ", ".join(f"{name} {change:+.1%}" for name, change in changes.items())
        + (f"; analytics p99 {analytics[1] / analytics[0] - 1:+.1%}" if all(analytics) else "")
    )
    level = all(change <= TOLERANCE for change in changes.values())
    print(f"memory, descriptors and p99 within {TOLERANCE:.0%}: {'yes' if level else 'NO'}")
    return level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="Requests started per second.")
    parser.add_argument("--period-seconds", type=float, default=60.0)
    args = parser.parse_args()
    periods = max(2, round(args.minutes * 60 / args.period_seconds))
    with tempfile.TemporaryDirectory() as data_dir:
        env = service_env(data_dir)
        lhs(env, "db", "upgrade")
        server = Server("cds_service.asgi:app", env)
        try:
            server.wait_ready("/readyz")
            print(
                f"soak: {periods} periods of {args.period_seconds:g} s at {args.rate:g} requests/s "
                f"against {server.url} (pid {server.process.pid})\n"
            )
            results = asyncio.run(
                drive(server.url, server.process.pid, args.rate, periods, args.period_seconds)
            )
        finally:
            server.stop()
    if not report(results, args.period_seconds):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
