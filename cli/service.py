"""``lhs serve`` and ``lhs db``: run the service and keep its database at the code's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default LHS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LHS_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP service (migrating the embedded SQLite database first)."""
    import uvicorn

    settings = Settings()
    prepare_database(settings)
    uvicorn.run(
        "cds_service.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,  # our middleware logs each request as JSON, without PHI
        log_level=settings.log_level.lower(),
    )


def prepare_database(settings: Settings) -> None:
    """Migrate the embedded SQLite default; refuse to serve from a server database that is
    behind, which would answer every call while storing nothing."""
    from storage.db import create_db_engine
    from storage.migrate import schema_problem, upgrade_database

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        upgrade_database(url)
        return
    engine = create_db_engine(url)
    try:
        problem = schema_problem(engine)
    finally:
        engine.dispose()
    if problem is not None:
        fail(f"not serving: {problem}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the database to the latest schema."""
    from storage.migrate import current_revision, upgrade_database

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade_database(url, revision)
    typer.echo(f"database at revision {current_revision(url)}")
