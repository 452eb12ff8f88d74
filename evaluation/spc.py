"""Statistical process control: a p-chart of a proportion per period.

A p-chart follows one proportion over time, e.g. a rule's weekly acceptance rate
(accepted cards / answered cards). The center line is p-bar = sum(events) / sum(n) over
the baseline periods (phase I); every period gets its own 3-sigma limits

    p-bar +/- 3 * sqrt(p-bar * (1 - p-bar) / n_i), clipped to [0, 1],

so weeks with few answered cards get wide limits and busy weeks narrow ones (Montgomery,
section 7.2). A point is a "special cause" signal -- something changed, worth a look --
when it triggers one of the usual rules (Western Electric handbook; Benneyan et al.
recommend the same set for healthcare data):

- BEYOND_LIMITS: the proportion is above the upper or below the lower limit.
- RUN_OF_EIGHT: 8 or more consecutive points strictly on the same side of the center
  (the 8th and every further point of the run are flagged).
- TREND_OF_SIX: 6 or more consecutive points strictly increasing or strictly decreasing
  (the 6th and every further point are flagged).
- TWO_OF_THREE: 2 out of 3 consecutive points beyond 2 sigma on the same side (the
  point that completes the pair is flagged; it must itself be beyond 2 sigma).

Because n varies, the sigma-based rules use standardized values
z_i = (p_i - p-bar) / sqrt(p-bar * (1 - p-bar) / n_i), i.e. sigma for each point's own n.

Periods with n == 0 have no proportion: they are drawn as gaps, carry no limits or
signals, and the sequence rules skip them (they neither break nor extend a run or trend).
A point exactly on the center breaks a run; a tie breaks a trend. Comparisons use exact
fractions, so "exactly on the center" is decided without floating-point noise.

When p-bar is 0 or 1 the binomial sigma is 0 and the limits collapse onto the center:
every other proportion would be "beyond the limits" by an infinite number of sigmas,
which says nothing about special causes (the baseline simply never saw the other
outcome). So the limits-based rules (BEYOND_LIMITS, TWO_OF_THREE) are not applied then;
the run and trend rules, which do not use sigma, still are.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

CITATIONS: tuple[str, ...] = (
    "Montgomery DC. Introduction to Statistical Quality Control, 7th ed. Wiley, 2012, "
    "section 7.2 (control chart for fraction nonconforming, p-chart).",
    "Benneyan JC, Lloyd RC, Plsek PE. Statistical process control as a tool for research "
    "and healthcare improvement. Qual Saf Health Care 2003;12:458-464. "
    "https://doi.org/10.1136/qhc.12.6.458",
    "Western Electric Company. Statistical Quality Control Handbook. 1956 (run rules).",
)

BEYOND_LIMITS = "beyond 3-sigma limits"
RUN_OF_EIGHT = "8 in a row on one side of the center"
TREND_OF_SIX = "6 in a row increasing or decreasing"
TWO_OF_THREE = "2 of 3 beyond 2 sigma"

_RUN_LENGTH = 8
_TREND_LENGTH = 6


@dataclass(frozen=True)
class Period:
    label: str  # e.g. "2026-W14"
    events: int  # e.g. accepted cards
    n: int  # e.g. answered cards

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"period {self.label!r}: n must be >= 0, got {self.n}")
        if self.events < 0:
            raise ValueError(f"period {self.label!r}: events must be >= 0, got {self.events}")
        if self.events > self.n:
            raise ValueError(
                f"period {self.label!r}: events ({self.events}) cannot exceed n ({self.n})"
            )


@dataclass(frozen=True)
class ChartPoint:
    label: str
    events: int
    n: int
    proportion: float | None  # None when n == 0
    lower: float | None  # 3-sigma limits for this n, clipped to [0, 1]; None when n == 0
    upper: float | None  # (or when there is no center line)
    signals: tuple[str, ...]  # names of the rules this point triggers


@dataclass(frozen=True)
class PChart:
    center: float | None  # p-bar over the baseline periods; None if they have no data
    points: tuple[ChartPoint, ...]

    @property
    def signals(self) -> list[ChartPoint]:
        """The points that trigger any rule, in period order."""
        return [point for point in self.points if point.signals]


def _sign(x: Fraction | float) -> int:
    return (x > 0) - (x < 0)


def p_chart(periods: Sequence[Period], baseline: int | None = None) -> PChart:
    """The p-chart of `periods`, its center estimated from the first `baseline` (None: all).

    If the baseline periods have no data (sum of n is 0) there is no center line: the
    points carry their proportions but no limits and no signals.
    """
    if baseline is not None and not 1 <= baseline <= len(periods):
        raise ValueError(f"baseline must be between 1 and {len(periods)}, got {baseline}")
    phase_one = periods if baseline is None else periods[:baseline]
    total_n = sum(p.n for p in phase_one)
    # Exact proportions of the non-empty points; `order` is what the sequence rules walk.
    proportions = {i: Fraction(p.events, p.n) for i, p in enumerate(periods) if p.n}
    order = list(proportions)
    signals: dict[int, list[str]] = {i: [] for i in order}
    limits: dict[int, tuple[float, float]] = {}
    center = Fraction(sum(p.events for p in phase_one), total_n) if total_n else None

    if center is not None:
        pbar = float(center)
        variance = pbar * (1.0 - pbar)  # divided by n_i: that point's sigma squared
        z: dict[int, float] = {}
        for i in order:
            sigma = math.sqrt(variance / periods[i].n)
            limits[i] = (max(0.0, pbar - 3.0 * sigma), min(1.0, pbar + 3.0 * sigma))
            if sigma > 0:  # p-bar is 0 or 1: no limits-based rules (module docstring)
                z[i] = (float(proportions[i]) - pbar) / sigma
                p = float(proportions[i])
                if p > limits[i][1] or p < limits[i][0]:
                    signals[i].append(BEYOND_LIMITS)

        run_side, run_length = 0, 0
        for i in order:
            side = _sign(proportions[i] - center)  # 0: exactly on the center, breaks the run
            run_length = run_length + 1 if side != 0 and side == run_side else abs(side)
            run_side = side
            if run_length >= _RUN_LENGTH:
                signals[i].append(RUN_OF_EIGHT)

        trend_direction, trend_length = 0, 1
        for previous, i in itertools.pairwise(order):
            direction = _sign(proportions[i] - proportions[previous])  # 0: a tie, breaks it
            if direction == 0:
                trend_length = 1
            elif direction == trend_direction:
                trend_length += 1
            else:
                trend_length = 2
            trend_direction = direction
            if trend_length >= _TREND_LENGTH:
                signals[i].append(TREND_OF_SIX)

        for k, i in enumerate(order):
            if i not in z or abs(z[i]) <= 2.0:
                continue
            side = _sign(z[i])
            if any(abs(z[j]) > 2.0 and _sign(z[j]) == side for j in order[max(0, k - 2) : k]):
                signals[i].append(TWO_OF_THREE)

    points = tuple(
        ChartPoint(
            label=p.label,
            events=p.events,
            n=p.n,
            proportion=float(proportions[i]) if i in proportions else None,
            lower=limits[i][0] if i in limits else None,
            upper=limits[i][1] if i in limits else None,
            signals=tuple(signals.get(i, ())),
        )
        for i, p in enumerate(periods)
    )
    return PChart(center=None if center is None else float(center), points=points)


def version_changes(periods_versions: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(label, new version) of each period whose version differs from the period before."""
    return [
        (label, version)
        for (_, before), (label, version) in itertools.pairwise(periods_versions)
        if version != before
    ]
