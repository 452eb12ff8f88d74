"""Drift and performance over time: is today's population still the one the model learnt on?

Population stability index (PSI), as used for scorecard monitoring (Siddiqi, *Credit Risk
Scorecards*, Wiley 2006; Yurdakul & Naranjo, "Statistical properties of the population
stability index", J Risk Model Validation 2020): with bins fixed on the reference sample,
PSI = sum over bins of (actual share - expected share) x ln(actual share / expected share).
Conventional reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sklearn.metrics import roc_auc_score

from evaluation.metrics import Array

_FLOOR = 1e-4
"""Share given to an empty bin, so that ln() stays finite (a common convention)."""


def _shares(values: Array, edges: Array | None, categories: Array | None) -> Array:
    if categories is not None:
        counts = np.array([np.sum(values == c) for c in categories], dtype=float)
    else:
        counts = np.histogram(values, bins=edges)[0].astype(float)  # type: ignore[arg-type]
    shares = counts / max(counts.sum(), 1.0)
    return np.maximum(shares, _FLOOR)


def population_stability_index(expected: Array, actual: Array, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected``; discrete values with few levels are their own bins."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    levels = np.unique(expected)
    if len(levels) <= bins:
        categories = np.union1d(levels, np.unique(actual))
        e, a = _shares(expected, None, categories), _shares(actual, None, categories)
    else:
        inner = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
        e, a = _shares(expected, edges, None), _shares(actual, edges, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class PeriodPerformance:
    period: str
    n: int
    events: int
    observed_rate: float
    mean_predicted: float
    auroc: float | None


def performance_by_year(y: Array, p: Array, times: Sequence[datetime]) -> list[PeriodPerformance]:
    """Discrimination and calibration-in-the-large per calendar year of the prediction time."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    years = np.array([t.year for t in times])
    found = []
    for year in sorted(set(years.tolist())):
        mask = years == year
        yy, pp = y[mask], p[mask]
        both = 0 < yy.sum() < len(yy)
        found.append(
            PeriodPerformance(
                period=str(year),
                n=int(mask.sum()),
                events=int(yy.sum()),
                observed_rate=float(yy.mean()),
                mean_predicted=float(pp.mean()),
                auroc=float(roc_auc_score(yy, pp)) if both else None,
            )
        )
    return found
