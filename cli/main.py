"""The ``lhs`` command line: run the service, migrate the database, call a service."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from cds_service.config import Settings
from cli.analytics import analytics, report, sync
from cli.clients import clients_app
from cli.experiments import experiment_app
from cli.knowledge import knowledge_app
from cli.models import mlflow_ui, models_app, retrain, train
from cli.shadow import shadow_app
from cli.surveillance import surveillance_app

app = typer.Typer(help="Learning health system CDS Hooks service.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(clients_app, name="clients")
app.add_typer(models_app, name="models")
app.add_typer(experiment_app, name="experiment")
app.add_typer(shadow_app, name="shadow")
app.add_typer(surveillance_app, name="surveillance")
app.command()(train)
app.command()(retrain)
app.command()(analytics)
app.command()(report)
app.command()(sync)
app.command("mlflow")(mlflow_ui)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default LHS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default LHS_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP service (migrating the embedded SQLite database first)."""
    import uvicorn

    settings = Settings()
    _prepare_database(settings)
    uvicorn.run(
        "cds_service.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,  # our middleware logs each request as JSON, without PHI
        log_level=settings.log_level.lower(),
    )


def _prepare_database(settings: Settings) -> None:
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
        typer.echo(f"error: not serving: {problem}", err=True)
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the database to the latest schema."""
    from storage.migrate import current_revision, upgrade_database

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade_database(url, revision)
    typer.echo(f"database at revision {current_revision(url)}")


_INDICATOR_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}


def format_cards(response: dict[str, Any]) -> str:
    """A readable rendering of a CDS Hooks response for the terminal."""
    cards = response.get("cards", [])
    if not cards:
        return "No cards."
    lines: list[str] = []
    for card in cards:
        indicator = card["indicator"].upper()
        lines.append(
            typer.style(
                f"[{indicator}] {card['summary']}",
                fg=_INDICATOR_STYLE.get(card["indicator"]),
                bold=True,
            )
        )
        source = card["source"]
        lines.append(
            f"  source: {source['label']}" + (f" <{source['url']}>" if source.get("url") else "")
        )
        for suggestion in card.get("suggestions", []):
            actions = "; ".join(
                f"{a['type']}: {a['description']}" for a in suggestion.get("actions", [])
            )
            lines.append(
                f"  suggestion: {suggestion['label']}" + (f" ({actions})" if actions else "")
            )
        lines.append(f"  card uuid: {card.get('uuid', '-')}")
        lines.append("")
    return "\n".join(lines).rstrip()


@app.command()
def example(
    service_id: Annotated[str, typer.Argument(help="Service id, e.g. lhs-order-sign.")],
) -> None:
    """Print an example hook request (with prefetch, dated relative to today) for a service."""
    from datetime import date

    from point_of_care.examples import EXAMPLES

    if service_id not in EXAMPLES:
        raise typer.BadParameter(f"no example for {service_id}; known: {', '.join(EXAMPLES)}")
    typer.echo(json.dumps(EXAMPLES[service_id](date.today()), indent=2))


@app.command()
def call(
    service_id: Annotated[str, typer.Argument(help="Service id, e.g. lhs-patient-view.")],
    request_file: Annotated[
        str, typer.Argument(help="JSON hook request file, or - for standard input.")
    ],
    url: Annotated[
        str, typer.Option(envvar="LHS_SERVICE_URL", help="Base URL of the CDS service.")
    ] = "http://127.0.0.1:8000",
    raw: Annotated[bool, typer.Option(help="Print the JSON response instead.")] = False,
) -> None:
    """Send a hook request from a JSON file and print the cards.

    A file holding only ``context`` (like the spec's hook examples) is completed with the
    service's hook and a fresh hookInstance.
    """
    text = (
        sys.stdin.read() if request_file == "-" else Path(request_file).read_text(encoding="utf-8")
    )
    body = json.loads(text)
    with httpx.Client(base_url=url, timeout=30) as client:
        if "hook" not in body:
            services = client.get("/cds-services").raise_for_status().json()["services"]
            hooks = {s["id"]: s["hook"] for s in services}
            if service_id not in hooks:
                raise typer.BadParameter(f"unknown service {service_id}; known: {', '.join(hooks)}")
            body["hook"] = hooks[service_id]
        body.setdefault("hookInstance", str(uuid.uuid4()))
        response = client.post(f"/cds-services/{service_id}", json=body)
    if raw or response.status_code != 200:
        typer.echo(json.dumps(response.json(), indent=2))
        if response.status_code != 200:
            raise typer.Exit(1)
        return
    typer.echo(format_cards(response.json()))


@app.command()
def sweep(
    folder: Annotated[
        Path, typer.Argument(help="Folder of FHIR patient Bundles (.json or .json.gz).")
    ] = Path("../shared/fhir/synthea"),
    as_of: Annotated[
        str | None,
        typer.Option(help="Evaluate as of this date (default LHS_EVALUATION_TIME or now)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N patients.")] = None,
) -> None:
    """Run every service over every patient in FOLDER and print cards per rule (alert burden)."""
    import asyncio
    from datetime import UTC, datetime
    from itertools import islice

    from fhir_client.bundles import load_bundle, patient_bundles
    from hooks.requests import HookRequest
    from knowledge.library import load_library
    from point_of_care.catalogue import build_services
    from point_of_care.invocation import InvalidRequest, PrefetchUnavailable, run_service
    from point_of_care.sweep import SweepSummary, requests_for_patient

    settings = Settings()
    when = datetime.fromisoformat(as_of).replace(tzinfo=UTC) if as_of else settings.evaluation_time
    services = build_services(load_library())
    summary = SweepSummary()

    async def run_all() -> None:
        for path in islice(patient_bundles(folder), limit):
            cards: dict[str, list[tuple[str, str]]] = {}
            for service, request in requests_for_patient(load_bundle(path), services):
                try:
                    result = await run_service(
                        service, HookRequest.model_validate(request), as_of=when
                    )
                except (InvalidRequest, PrefetchUnavailable) as error:
                    summary.errors[type(error).__name__] += 1
                    continue
                cards[service.id] = [(a.rule_id, a.card.indicator) for a in result.advice]
            summary.add_patient(cards)

    asyncio.run(run_all())
    typer.echo(summary.table())


@app.command()
def explain(card_uuid: str) -> None:
    """Why a card was shown: rule version, citations, the patient's values, feedback."""
    from point_of_care.explain import explain_card
    from storage.db import create_db_engine
    from storage.repository import Store

    explained = explain_card(Store(create_db_engine(Settings().resolved_database_url)), card_uuid)
    if explained is None:
        typer.echo(f"no card with uuid {card_uuid}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(explained, indent=2))


if __name__ == "__main__":
    app()
