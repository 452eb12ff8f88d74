"""Building the real application for tests, on a migrated database in a temp folder."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from cds_service.app import create_app
from cds_service.config import Settings
from knowledge.library import KnowledgeLibrary, load_library
from storage.migrate import upgrade_database

AppFactory = Callable[..., FastAPI]


@cache
def shipped_library() -> KnowledgeLibrary:
    """The shipped knowledge library, loaded once for the session (it is never modified)."""
    return load_library()


def app_factory(data_dir: Path) -> AppFactory:
    def make(database_url: str | None = None, **settings: Any) -> FastAPI:
        # Authentication has its own tests (test_auth.py); elsewhere it is off unless asked for.
        settings.setdefault("auth", "off")
        config = Settings(
            data_dir=data_dir,
            database_url=database_url,
            pseudonym_key="test-pseudonym-key-of-32-characters",
            **settings,
        )
        upgrade_database(config.resolved_database_url)
        shipped = "knowledge_dir" not in settings
        return create_app(config, library=shipped_library() if shipped else None)

    return make
