"""Performance by subgroup (sex, age band, race): does the model work as well for everyone?

Overall (AUROC, calibration in the large) and at the decision threshold (flag rate,
sensitivity, PPV with Wilson intervals; the equal-opportunity gap)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from evaluation.experiments import wilson_interval
from evaluation.metrics import Array, Estimate, calibration_intercept


@dataclass(frozen=True)
class SubgroupPerformance:
    attribute: str
    group: str
    n: int
    events: int
    observed_rate: float
    mean_predicted: float
    auroc: float | None
    """None when the group has only one outcome class (AUROC undefined)."""
    calibration_intercept: float | None


def _both_outcomes(y: Array) -> bool:
    return 0 < np.sum(y) < len(y)


def _auroc(y: Array, p: Array) -> float:
    return float(roc_auc_score(y, p)) if _both_outcomes(y) else math.nan


def _intercept(y: Array, p: Array) -> float:
    return calibration_intercept(np.asarray(y), np.asarray(p)) if _both_outcomes(y) else math.nan


_METRICS = {
    "n": lambda y, p: len(y),
    "events": lambda y, p: int(np.sum(y)),
    "observed_rate": lambda y, p: float(np.mean(y)),
    "mean_predicted": lambda y, p: float(np.mean(p)),
    "auroc": _auroc,
    "calibration_intercept": _intercept,
}


def subgroup_performance(
    attribute: str, groups: Sequence[str], y: Array, p: Array
) -> list[SubgroupPerformance]:
    """The metrics of each group of one attribute, computed by fairlearn's MetricFrame."""
    from fairlearn.metrics import MetricFrame

    frame = MetricFrame(
        metrics=_METRICS,
        y_true=np.asarray(y, dtype=float),
        y_pred=np.asarray(p, dtype=float),
        sensitive_features=np.asarray(groups, dtype=str),
    ).by_group
    return [
        SubgroupPerformance(
            attribute=attribute,
            group=str(group),
            n=int(row["n"]),
            events=int(row["events"]),
            observed_rate=float(row["observed_rate"]),
            mean_predicted=float(row["mean_predicted"]),
            auroc=None if math.isnan(row["auroc"]) else float(row["auroc"]),
            calibration_intercept=None
            if math.isnan(row["calibration_intercept"])
            else float(row["calibration_intercept"]),
        )
        for group, row in frame.sort_index().iterrows()
    ]


def fairness_gaps(
    rows: list[SubgroupPerformance], min_events: int = 5
) -> dict[str, dict[str, float]]:
    """Per attribute, the largest difference between its groups: in AUROC, and in calibration
    in the large (mean predicted minus observed rate). Groups with fewer than ``min_events``
    events are left out, as their estimates are noise."""
    gaps: dict[str, dict[str, float]] = {}
    for attribute in sorted({r.attribute for r in rows}):
        groups = [r for r in rows if r.attribute == attribute and r.events >= min_events]
        aurocs = [r.auroc for r in groups if r.auroc is not None]
        errors = [r.mean_predicted - r.observed_rate for r in groups]
        if len(groups) < 2:
            continue
        gaps[attribute] = {
            "groups": float(len(groups)),
            "calibration_in_the_large_gap": max(errors) - min(errors),
        }
        if len(aurocs) >= 2:
            gaps[attribute]["auroc_gap"] = max(aurocs) - min(aurocs)
    return gaps


@dataclass(frozen=True)
class ThresholdPerformance:
    """One group's performance at the decision threshold (the card or no card), with Wilson
    95% intervals: how often it is flagged, how many of its events are flagged (sensitivity,
    the quantity equal opportunity compares), how many flagged have the event (PPV) and how
    many must be flagged to reach one (number needed to evaluate, 1/PPV)."""

    attribute: str
    group: str
    n: int
    events: int
    flag_rate: Estimate
    sensitivity: Estimate | None
    """None without events."""
    ppv: Estimate | None
    """None when nobody in the group was flagged."""
    judged: bool
    """False when the group has fewer than the minimum of either outcome: listed, not judged."""

    @property
    def number_needed_to_evaluate(self) -> float | None:
        return 1 / self.ppv.value if self.ppv and self.ppv.value > 0 else None


def _proportion(hits: int, n: int) -> Estimate | None:
    if n == 0:
        return None
    low, high = wilson_interval(hits, n)
    return Estimate(hits / n, low, high)


def threshold_performance(
    attribute: str, groups: Sequence[str], y: Array, flagged: Sequence[bool], min_events: int = 5
) -> list[ThresholdPerformance]:
    """Per group of one attribute, flag rate, sensitivity and PPV at the threshold."""
    labels = np.asarray(groups, dtype=str)
    y = np.asarray(y, dtype=float)
    flags = np.asarray(flagged, dtype=bool)
    rows = []
    for group in sorted(set(labels.tolist())):
        mask = labels == group
        events = int(y[mask].sum())
        n = int(mask.sum())
        flagged_events = int((flags & mask & (y == 1)).sum())
        flagged_n = int((flags & mask).sum())
        rows.append(
            ThresholdPerformance(
                attribute=attribute,
                group=group,
                n=n,
                events=events,
                flag_rate=_proportion(flagged_n, n),  # type: ignore[arg-type]
                sensitivity=_proportion(flagged_events, events),
                ppv=_proportion(flagged_events, flagged_n),
                judged=min(events, n - events) >= min_events,
            )
        )
    return rows


def equal_opportunity_gap(rows: Sequence[ThresholdPerformance]) -> float | None:
    """The largest difference in sensitivity between the judged groups (Hardt et al. 2016:
    equal opportunity asks for equal true-positive rates); None with fewer than two."""
    sensitivities = [r.sensitivity.value for r in rows if r.judged and r.sensitivity]
    return max(sensitivities) - min(sensitivities) if len(sensitivities) >= 2 else None
