"""The soak harness itself, for a few seconds (the 10-minute soak is `make soak`): a real
uvicorn on 127.0.0.1 under mixed calls at a fixed rate, measured per period from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_short_soak_prints_every_period_without_errors():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--minutes",
            "0.3",
            "--period-seconds",
            "6",
            "--rate",
            "8",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    rows = [line.split("|")[1:-1] for line in run.stdout.splitlines() if line.startswith("| ")]
    periods = [[cell.strip() for cell in row] for row in rows if row[0].strip().isdigit()]
    assert [row[0] for row in periods] == ["1", "2", "3"], run.stdout + run.stderr
    for _, requests, errors, p50, p99, _analytics_p99, rss, fds in periods:
        assert int(requests) >= 30 and errors == "0"
        assert 0 < float(p50) <= float(p99)
        assert float(rss) > 50 and int(fds) > 3
    assert "last period against the second: RSS" in run.stdout
