"""Alembic migrations run from code: no alembic.ini, the URL is passed in."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from storage.db import create_db_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Percent signs in URLs (encoded passwords) must be escaped for ConfigParser.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: never migrated).

    Read from Alembic's table directly: /readyz asks often, and a MigrationContext logs
    itself at every configuration."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def schema_problem(engine: Engine) -> str | None:
    """Why this code cannot store into the database, or None when its schema is current."""
    current, head = schema_revision(engine), head_revision()
    if current == head:
        return None
    if current is None:
        return f"the database was never migrated (run `lhs db upgrade` to reach {head})"
    return f"the database schema is at {current}, this code needs {head} (run `lhs db upgrade`)"


def current_revision(url: str) -> str | None:
    engine = create_db_engine(url)
    try:
        return schema_revision(engine)
    finally:
        engine.dispose()
