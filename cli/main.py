"""The ``lhs`` command line: the commands grouped by who uses them, and one error path."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.analytics import analytics, report, sync
from cli.bulk import bulk_app
from cli.calls import call, example, explain, sweep
from cli.clients import clients_app
from cli.errors import FORESEEN, one_line
from cli.experiments import experiment_app
from cli.knowledge import knowledge_app
from cli.models import mlflow_ui, models_app, retrain, train
from cli.service import db_app, serve
from cli.shadow import shadow_app
from cli.surveillance import surveillance_app
from point_of_care import SERVICE_VERSION

RUN = "Run and connect the service"
KNOW = "Knowledge and its effect"
LEARN = "Learning from practice"

app = typer.Typer(
    help="Learning health system: a CDS Hooks 2.0 service that learns from what clinicians do.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"lhs {SERVICE_VERSION}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="LHS_DATA_DIR",
            help="The data folder (database, MLflow store, spool, clients, key); default: data/ "
            "in the checkout, else ~/.local/share/lhs.",
        ),
    ] = None,
) -> None:
    """Learning health system: a CDS Hooks 2.0 service that learns from what clinicians do."""
    if data_dir is not None:
        # Every command reads its settings from the environment: the flag is one more way to set it.
        os.environ["LHS_DATA_DIR"] = str(data_dir.resolve())


app.command(rich_help_panel=RUN)(serve)
app.add_typer(db_app, name="db", rich_help_panel=RUN)
app.add_typer(clients_app, name="clients", rich_help_panel=RUN)
app.command(rich_help_panel=RUN)(example)
app.command(rich_help_panel=RUN)(call)
app.add_typer(knowledge_app, name="knowledge", rich_help_panel=KNOW)
app.command(rich_help_panel=KNOW)(sweep)
app.command(rich_help_panel=KNOW)(explain)
app.add_typer(experiment_app, name="experiment", rich_help_panel=KNOW)
app.add_typer(shadow_app, name="shadow", rich_help_panel=KNOW)
app.command(rich_help_panel=KNOW)(analytics)
app.command(rich_help_panel=LEARN)(train)
app.command(rich_help_panel=LEARN)(retrain)
app.add_typer(models_app, name="models", rich_help_panel=LEARN)
app.command(rich_help_panel=LEARN)(report)
app.command(rich_help_panel=LEARN)(sync)
app.command("mlflow", rich_help_panel=LEARN)(mlflow_ui)
app.add_typer(surveillance_app, name="surveillance", rich_help_panel=LEARN)
app.add_typer(bulk_app, name="bulk", rich_help_panel=LEARN)


def main(argv: list[str] | None = None) -> None:
    """The ``lhs`` entry point: a failure is one line on stderr and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("LHS_DEBUG") == "1"
    try:
        app(args=args, prog_name="lhs")
    except SystemExit:
        raise
    except Exception as error:
        if debug:
            raise
        hint = "" if isinstance(error, FORESEEN) else " (lhs --debug shows the traceback)"
        typer.echo(f"error: {one_line(error)}{hint}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
