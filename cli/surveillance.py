"""``lhs surveillance``: daily syndrome counts (suppressed), outbreak detection, signals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from cds_service.config import Settings
from cli.errors import fail_usage
from cli.store import open_store
from evaluation.syndromic import MIN_CELL, area_series, suppress
from knowledge.syndromes import load_syndromes
from learning.surveillance import LOOKBACK_DAYS, detect
from storage.tables import SurveillanceSignal

surveillance_app = typer.Typer(
    help="Population surveillance over the live feed: counts, EARS and Farrington detection, "
    "signals.",
    no_args_is_help=True,
)


def day_or_today(value: str | None) -> date:
    return date.fromisoformat(value) if value else datetime.now(UTC).date()


def shown(count: float) -> str:
    """A count as it may be shown (small numbers suppressed)."""
    kept = suppress(round(count))
    return f"<{MIN_CELL}" if kept is None else str(kept)


def signal_line(s: SurveillanceSignal) -> str:
    return (
        f"{s.day}  {s.syndrome:<26} area {s.area:<8} {s.method:<19} observed {shown(s.observed):>5}"
        f"  expected {s.expected:6.1f}  threshold {s.threshold:6.1f}  strength {s.strength:.1f}"
    )


@surveillance_app.command("detect")
def detect_command(
    today: Annotated[
        str | None, typer.Option(help="The day to detect up to (default today).")
    ] = None,
    days: Annotated[int, typer.Option(help="Days of history each run looks at.")] = LOOKBACK_DAYS,
    incremental: Annotated[
        bool,
        typer.Option(
            help="Re-evaluate only the series with data that arrived since the last run "
            "(as the service does); by default every series."
        ),
    ] = False,
) -> None:
    """Classify the feed that arrived into cases, run EARS C1/C2/C3 on each area's daily
    cases and Farrington on its weekly ones (with 5 years of history); store signals for
    recent alarms."""
    settings = Settings()
    run = detect(
        open_store(settings),
        load_syndromes(settings.knowledge_dir),
        day_or_today(today),
        days,
        incremental=incremental,
    )
    typer.echo(
        f"{run.classified} feed resources classified; {len(run.series)} daily and "
        f"{len(run.weekly)} weekly area series evaluated"
        f"{' (incremental)' if run.incremental else ''}; {len(run.raised)} alarms in the "
        f"last days, {run.stored} new signals"
    )
    for signal in run.raised:
        typer.echo(signal_line(signal))


@surveillance_app.command("signals")
def signals_command(
    days: Annotated[int, typer.Option(help="Signals of the last DAYS days.")] = 30,
) -> None:
    """The signals raised, newest first."""
    since = datetime.now(UTC).date() - timedelta(days=days)
    found = open_store(Settings()).surveillance.signals(since)
    for signal in found:
        typer.echo(signal_line(signal))
    if not found:
        typer.echo(f"no signal in the last {days} days")


@surveillance_app.command("counts")
def counts_command(
    syndrome: Annotated[str, typer.Argument(help="A syndrome id (knowledge/data/syndromes).")],
    days: Annotated[int, typer.Option(help="The last DAYS days.")] = 28,
    today: Annotated[str | None, typer.Option(help="The last day (default today).")] = None,
) -> None:
    """Daily cases per area; counts of 1 to 10 are shown as <11."""
    settings = Settings()
    syndromes = load_syndromes(settings.knowledge_dir)
    if syndrome not in syndromes:
        fail_usage(f"no syndrome {syndrome!r}; known: {', '.join(syndromes)}")
    last = day_or_today(today)
    first = last - timedelta(days=days - 1)
    store = open_store(settings)
    series = area_series(
        store.surveillance.case_counts(first, last, syndromes=[syndrome]), first, last
    )
    last_run = store.surveillance.last_run()
    typer.echo(
        "as classified by the detection run of "
        + (f"{last_run.started_at:%Y-%m-%d %H:%M} UTC" if last_run else "- (none yet)")
    )
    if not series:
        typer.echo(f"no {syndrome} cases from {first} to {last}")
        return
    typer.echo(f"{'day':<12}" + "".join(f"{area:>8}" for _, area in series))
    for i in range(days):
        typer.echo(
            f"{first + timedelta(days=i)!s:<12}"
            + "".join(f"{shown(counts[i]):>8}" for counts in series.values())
        )
