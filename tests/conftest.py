"""Shared fixtures: a migrated database on SQLite and on PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from storage.db import create_db_engine
from storage.migrate import upgrade_database
from storage.repository import Store

POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_ADMIN).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at 127.0.0.1:5432 is unreachable: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    _postgres_or_skip()
    name = f"lhs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One small local Spark session for the whole test run (starting one takes seconds)."""
    from population.spark_session import spark_session

    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="session")
def bulk_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's sample patients as a Bulk Data export (NDJSON per resource type)."""
    from bench.bulk_sample import write_bulk_export
    from cds_service.config import SAMPLE_PATIENTS
    from fhir_client.bundles import patient_bundles

    folder = tmp_path_factory.mktemp("bulk-sample")
    write_bulk_export(patient_bundles(SAMPLE_PATIENTS), folder)
    return folder


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database of each kind the service supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'lhs.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The service's store on a migrated database of each kind."""
    upgrade_database(database_url)
    engine = create_db_engine(database_url)
    yield Store(engine)
    engine.dispose()


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Print the sweep's cards-per-rule table, so alert burden is visible in every run."""
    from tests.test_sweep import SWEEP_TABLE

    table = config.stash.get(SWEEP_TABLE, None)
    if table:
        terminalreporter.section("cards per rule over all synthetic patients")
        terminalreporter.write_line(table)
