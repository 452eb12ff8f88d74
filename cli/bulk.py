"""``lhs bulk``: FHIR Bulk Data in (a server's ``$export``, an export folder into the feed)
and population surveillance counted over an export, in this process or on Spark."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail, fail_usage
from population.engines import Engine

bulk_app = typer.Typer(
    help="FHIR Bulk Data: export from a FHIR server, import into the feed, count at scale.",
    no_args_is_help=True,
)


ExportFolder = Annotated[Path, typer.Argument(help="A Bulk Data export folder (NDJSON files).")]


def _types(value: str | None) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()] if value else []


@bulk_app.command("export")
def export_command(
    base_url: Annotated[str, typer.Argument(help="The FHIR server's base URL.")],
    out: Annotated[Path, typer.Option(help="Folder the NDJSON files are written to.")],
    type_: Annotated[
        str | None,
        typer.Option("--type", help="Resource types to export, comma-separated (_type)."),
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only resources changed since then (_since).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Export this Group's patients (Group/ID/$export).")
    ] = None,
    system: Annotated[
        bool, typer.Option("--system", help="A system-level export ([base]/$export).")
    ] = False,
    max_wait: Annotated[
        float, typer.Option(help="Seconds to wait at most for the export to complete.")
    ] = 6 * 3600.0,
) -> None:
    """Run a Bulk Data $export (kick-off, polling, download; token: LHS_FHIR_SYNC_TOKEN)."""
    from fhir_client.bulk_export import BulkExportClient, BulkExportError, ExportRequest

    if group is not None and system:
        fail_usage("--group and --system exclude each other")
    settings = Settings()
    token = settings.fhir_sync_token.get_secret_value() if settings.fhir_sync_token else None
    client = BulkExportClient(base_url, token, max_wait=max_wait, progress=typer.echo)
    try:
        manifest, files = client.export(
            ExportRequest(tuple(_types(type_)), since, group, system), out
        )
    except BulkExportError as error:
        fail(str(error))
    finally:
        client.close()
    for file in files:
        typer.echo(f"{file.path}  {file.lines} resources")
    errors = sum(f.lines for f in files if f.type == "OperationOutcome")
    typer.echo(
        f"export of {manifest.transaction_time}: {len(manifest.output)} files"
        + (f", {errors} error outcomes in {out / 'error'}" if errors else "")
    )


@bulk_app.command("import")
def import_command(
    folder: ExportFolder,
    fhir_server: Annotated[
        str,
        typer.Option(
            help="The FHIR base URL the export came from (as in its hook calls): patient "
            "pseudonyms are keyed by it."
        ),
    ],
) -> None:
    """Validate and store the export's outcome resources in the feed (labels, surveillance)."""
    from cli.store import open_store
    from fhir_client.ndjson import is_bulk_folder
    from fhir_client.pseudonym import site_pseudonym_key
    from learning.bulk_import import import_bulk

    if not is_bulk_folder(folder):
        fail_usage(f"no NDJSON files in {folder}")
    settings = Settings()
    store = open_store(settings)
    key = site_pseudonym_key(settings.pseudonym_key, settings.data_dir)
    result = import_bulk(store, folder, key, fhir_server.rstrip("/"))
    read = ", ".join(f"{kind} {n}" for kind, n in sorted(result.read.items()))
    typer.echo(
        f"read {read or 'no outcome resources'}; stored {result.stored}, updated "
        f"{result.updated}, duplicates {result.duplicates}, rejected {result.rejected}"
    )
    for error in result.errors:
        typer.echo(f"  rejected {error}", err=True)


@bulk_app.command("surveillance")
def surveillance_command(
    folder: ExportFolder,
    engine: Annotated[
        Engine,
        typer.Option(
            help="Where cases are classified and counted: this process, or Apache Spark "
            "(LHS_SPARK_MASTER, default local[2]); both give the same counts."
        ),
    ] = Engine.PROCESS,
    today: Annotated[
        str | None, typer.Option(help="The day to detect up to (default today).")
    ] = None,
    days: Annotated[int, typer.Option(help="Days of history the daily series cover.")] = 120,
) -> None:
    """Count syndrome cases per area and day over an export, then run EARS C1/C2/C3 on the
    daily series and Farrington on the weekly ones; print the recent alarms (not stored)."""
    from datetime import timedelta

    from cli.surveillance import day_or_today, signal_line
    from fhir_client.ndjson import is_bulk_folder
    from fhir_client.pseudonym import site_pseudonym_key
    from knowledge.syndromes import load_syndromes
    from learning.surveillance import daily_series, recent_signals, weekly_series
    from population.spark_session import SparkUnavailable
    from population.volumes import case_volumes

    if not is_bulk_folder(folder):
        fail_usage(f"no NDJSON files in {folder}")
    settings = Settings()
    syndromes = load_syndromes(settings.knowledge_dir)
    key = site_pseudonym_key(settings.pseudonym_key, settings.data_dir)
    try:
        counted = case_volumes(engine, folder, syndromes, key, spark_master=settings.spark_master)
    except SparkUnavailable as error:
        fail(str(error))
    last = day_or_today(today)
    series = daily_series(counted, list(syndromes), last - timedelta(days=days), last)
    weekly = weekly_series(counted, list(syndromes), last)
    raised = recent_signals(series + weekly, last)
    cases = sum(c.patients for c in counted.counts)
    typer.echo(
        f"{cases} cases counted on {engine}; {len(series)} daily and {len(weekly)} weekly "
        f"area series evaluated; {len(raised)} alarms in the last days"
    )
    for signal in raised:
        typer.echo(signal_line(signal))
