"""Discrimination and calibration of a binary risk model, with bootstrap confidence intervals.

Calibration slope and intercept follow Van Calster et al., "Calibration: the Achilles heel of
predictive analytics", BMC Medicine 2019 (https://doi.org/10.1186/s12916-019-1466-7): the
slope is the coefficient of the logit of the predicted risk in a logistic regression of the
outcome on it; the intercept ("calibration in the large") is the intercept of that regression
with the slope fixed at 1 (the logit as an offset). Ideal values are 1 and 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

Array = NDArray[np.float64]

_EPS = 1e-6


def logit(p: Array) -> Array:
    clipped = np.clip(p, _EPS, 1 - _EPS)
    return np.log(clipped / (1 - clipped))


def _binomial_fit(y: Array, design: Array, offset: Array | None = None) -> Array:
    """Unpenalised logistic regression (statsmodels GLM, binomial family, logit link, fitted
    by iteratively reweighted least squares): the coefficients of ``design``'s columns."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    with warnings.catch_warnings():
        # A bootstrap resample may separate perfectly or converge slowly; the estimate is
        # still the fit's, and its interval shows how unstable it is.
        warnings.simplefilter("ignore", (ConvergenceWarning, PerfectSeparationWarning))
        fitted = sm.GLM(y, design, family=sm.families.Binomial(), offset=offset).fit()
    return np.asarray(fitted.params, dtype=float)


def calibration_slope(y: Array, p: Array) -> float:
    """The coefficient of logit(p) in a logistic regression of y on it (with an intercept)."""
    return float(_binomial_fit(y, np.column_stack([np.ones(len(y)), logit(p)]))[1])


def calibration_intercept(y: Array, p: Array) -> float:
    """Calibration in the large: the intercept of a logistic regression of y with logit(p)
    as offset (the slope fixed at 1)."""
    return float(_binomial_fit(y, np.ones((len(y), 1)), offset=logit(p))[0])


def _auroc(y: Array, p: Array) -> float:
    return float(roc_auc_score(y, p))


def _auprc(y: Array, p: Array) -> float:
    return float(average_precision_score(y, p))


def _brier(y: Array, p: Array) -> float:
    return float(brier_score_loss(y, p))


METRICS: Mapping[str, Callable[[Array, Array], float]] = {
    "auroc": _auroc,
    "auprc": _auprc,
    "brier": _brier,
    "calibration_slope": calibration_slope,
    "calibration_intercept": calibration_intercept,
}


@dataclass(frozen=True)
class Estimate:
    """A metric on the whole sample and its percentile bootstrap 95% interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} (95% CI {self.low:.3f} to {self.high:.3f})"


def bootstrap_indices(n: int, rounds: int, seed: int) -> list[NDArray[np.intp]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, n) for _ in range(rounds)]


def cluster_bootstrap_indices(
    groups: Sequence[str], rounds: int, seed: int
) -> list[NDArray[np.intp]]:
    """Bootstrap resamples of whole clusters (a patient's discharges stay together): row
    indices of ``len(set(groups))`` clusters drawn with replacement, per round."""
    members: dict[str, list[int]] = {}
    for row, group in enumerate(groups):
        members.setdefault(group, []).append(row)
    clusters = [np.array(rows, dtype=np.intp) for rows in members.values()]
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([clusters[c] for c in rng.integers(0, len(clusters), len(clusters))])
        for _ in range(rounds)
    ]


def interval(values: list[float], point: float) -> Estimate:
    if not values:
        return Estimate(point, float("nan"), float("nan"))
    low, high = np.percentile(values, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def evaluate_risks(
    y: Array,
    p: Array,
    *,
    rounds: int = 500,
    seed: int = 0,
    names: Sequence[str] = tuple(METRICS),
) -> dict[str, Estimate]:
    """Metrics of ``METRICS`` with bootstrap CIs (resamples with one class are skipped).

    For a score that is not a probability (such as the LACE index) ask only for the
    rank-based metrics, ``auroc`` and ``auprc``.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    samples = [i for i in bootstrap_indices(len(y), rounds, seed) if 0 < y[i].sum() < len(i)]
    return {
        name: interval([metric(y[i], p[i]) for i in samples], metric(y, p))
        for name, metric in METRICS.items()
        if name in names
    }


def auroc_difference(y: Array, p: Array, q: Array, *, rounds: int = 500, seed: int = 0) -> Estimate:
    """AUROC of ``p`` minus AUROC of ``q`` on the same patients, with a paired bootstrap CI."""
    y = np.asarray(y, dtype=float)
    samples = [i for i in bootstrap_indices(len(y), rounds, seed) if 0 < y[i].sum() < len(i)]
    return interval(
        [_auroc(y[i], p[i]) - _auroc(y[i], q[i]) for i in samples], _auroc(y, p) - _auroc(y, q)
    )


def net_benefit(y: Array, p: Array, threshold: float) -> float:
    """Net benefit of treating those with risk >= threshold (Vickers & Elkin 2006)."""
    n = len(y)
    treat = p >= threshold
    true_pos = float(np.sum(treat & (y == 1)))
    false_pos = float(np.sum(treat & (y == 0)))
    return true_pos / n - false_pos / n * threshold / (1 - threshold)


def net_benefit_treat_all(y: Array, threshold: float) -> float:
    prevalence = float(np.mean(y))
    return prevalence - (1 - prevalence) * threshold / (1 - threshold)


@dataclass(frozen=True)
class DecisionCurve:
    thresholds: Array
    model: Array
    treat_all: Array

    def advantage(self) -> Array:
        """Net benefit over the better of treating everyone and treating no one."""
        return self.model - np.maximum(self.treat_all, 0.0)


def decision_curve(y: Array, p: Array, thresholds: Array) -> DecisionCurve:
    y = np.asarray(y, dtype=float)
    return DecisionCurve(
        thresholds=thresholds,
        model=np.array([net_benefit(y, p, t) for t in thresholds]),
        treat_all=np.array([net_benefit_treat_all(y, t) for t in thresholds]),
    )


def choose_threshold(curve: DecisionCurve, low: float, high: float) -> float | None:
    """The threshold in [low, high] where the model adds most net benefit; None if it adds none.

    The range is the clinical judgement (how many patients one would offer the intervention
    to reach one who needs it); the data only pick the point within it.
    """
    inside = (curve.thresholds >= low) & (curve.thresholds <= high)
    advantage = np.where(inside, curve.advantage(), -np.inf)
    best = int(np.argmax(advantage))
    return float(curve.thresholds[best]) if advantage[best] > 0 else None
