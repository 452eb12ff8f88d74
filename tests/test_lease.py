"""Background jobs run in one process per deployment: the lease is held by one holder at a
time, on SQLite (a file lock) and PostgreSQL (an advisory lock), and passes on release."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from storage.db import create_db_engine
from storage.lease import FileLease, job_lease
from tests.waiting import wait_for


def test_one_holder_at_a_time_and_the_lease_passes_on(database_url, tmp_path):
    engines = [create_db_engine(database_url) for _ in range(2)]
    first, second = (job_lease(engine, tmp_path) for engine in engines)
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # the holder keeps it
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        for engine in engines:
            engine.dispose()


def test_serve_with_two_workers_becomes_ready_and_one_holds_the_jobs(tmp_path):
    port = _free_port()
    env = os.environ | {
        "LHS_AUTH": "off",
        "LHS_DATA_DIR": str(tmp_path / "data"),
        "LHS_PORT": str(port),
        "LHS_PSEUDONYM_KEY": "test-pseudonym-key-of-32-characters",
        "LHS_SPOOL_DRAIN_INTERVAL": "0.2",
    }
    lhs = Path(sys.executable).parent / "lhs"
    server = subprocess.Popen(
        [str(lhs), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _ready(port), timeout=90)
        # Both workers answer, and the job lease is taken (by exactly one of them).
        assert all(_ready(port) for _ in range(10))
        lock = FileLease(tmp_path / "data" / "background-jobs.lock")
        wait_for(lambda: not lock.try_acquire(), timeout=10)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    stderr = server.stderr.read() if server.stderr else ""
    # No worker died and was respawned (as when every worker raced to migrate the database).
    assert "died" not in stderr
    assert 1 <= stderr.count("Started server process") <= 2
    # Once the deployment is down, the lease is free again.
    assert FileLease(tmp_path / "data" / "background-jobs.lock").try_acquire()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
