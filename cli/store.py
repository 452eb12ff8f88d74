"""The service's store as the commands open it: only once it is migrated."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from cds_service.config import Settings
from cli.errors import fail
from storage.repository import Store


def open_store(settings: Settings) -> Store:
    """The service's store, which records model decisions; it must be migrated."""
    from storage.db import create_db_engine
    from storage.migrate import current_revision, head_revision

    url = settings.resolved_database_url
    database = make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).is_file():
        # Opening it would create an empty file that later looks like a database.
        fail(f"no database at {database}: run `lhs db upgrade` (or `make db`) first", exit_code=2)
    if current_revision(url) != head_revision():
        fail("the database is not migrated: run `lhs db upgrade` (or `make db`) first", exit_code=2)
    return Store(create_db_engine(url))
