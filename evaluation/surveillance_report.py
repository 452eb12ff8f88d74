"""The report's population surveillance section: the signals of the period, and for each
area with one, its daily cases against the EARS C2 baseline and threshold. Days with 1 to
MIN_CELL - 1 cases are drawn as suppressed, never at their value."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.figure import Figure

from evaluation.html_parts import png, table
from evaluation.outbreak_detection import Alarm
from evaluation.syndromic import MIN_CELL, suppress

PLOTTED_SERIES = 6


@dataclass(frozen=True)
class SignalRow:
    syndrome: str
    area: str
    day: date
    methods: list[str]


@dataclass(frozen=True)
class SignalSeries:
    syndrome: str
    area: str
    first: date
    counts: list[int]
    baseline: list[Alarm]
    """EARS C2 per evaluated day: expected count and threshold."""
    signal_days: list[date]


@dataclass(frozen=True)
class SurveillanceData:
    signals: Sequence[SignalRow] = ()
    series: Sequence[SignalSeries] = ()


def series_plot(series: SignalSeries) -> Figure:
    figure = Figure(figsize=(6.5, 3.5), dpi=100)
    axes = figure.add_subplot()
    days = [series.first + timedelta(days=i) for i in range(len(series.counts))]
    shown = [suppress(n) for n in series.counts]
    axes.bar(
        [d for d, n in zip(days, shown, strict=True) if n is not None],
        [n for n in shown if n is not None],
        color="tab:blue",
        label="cases",
    )
    hidden = [d for d, n in zip(days, shown, strict=True) if n is None]
    if hidden:
        axes.scatter(
            hidden, [MIN_CELL / 2] * len(hidden), marker="s", color="lightgrey",
            label=f"1 to {MIN_CELL - 1} (suppressed)",
        )  # fmt: skip
    evaluated = [days[a.index] for a in series.baseline]
    axes.plot(evaluated, [a.expected for a in series.baseline], color="black", label="baseline")
    axes.plot(
        evaluated,
        [a.threshold for a in series.baseline],
        color="tab:red",
        linestyle="--",
        label="EARS C2 threshold",
    )
    for day in series.signal_days:
        axes.axvline(day, color="tab:red", alpha=0.3)
    axes.set_title(f"{series.syndrome}, area {series.area}")
    axes.set_ylabel("cases per day")
    axes.tick_params(axis="x", labelrotation=45)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def render_surveillance(data: SurveillanceData) -> list[str]:
    parts = ["<h2>Population surveillance</h2>"]
    if not data.signals:
        return [*parts, "<p>No outbreak signal in this period.</p>"]
    parts.append(
        table(
            ["day", "syndrome", "area (ZIP3)", "methods"],
            [[s.day.isoformat(), s.syndrome, s.area, ", ".join(s.methods)] for s in data.signals],
        )
    )
    for series in data.series[:PLOTTED_SERIES]:
        parts += [
            f"<h3>{html.escape(series.syndrome)}, area {html.escape(series.area)}</h3>",
            png(series_plot(series)),
        ]
    return parts
