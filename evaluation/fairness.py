"""Performance by subgroup (sex, age band, race): does the model work as well for everyone?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from evaluation.metrics import Array, calibration_intercept


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


def subgroup_performance(
    attribute: str, groups: Sequence[str], y: Array, p: Array
) -> list[SubgroupPerformance]:
    labels = np.asarray(groups)
    rows = []
    for group in sorted(set(groups)):
        mask = labels == group
        yg, pg = y[mask], p[mask]
        both = 0 < yg.sum() < len(yg)
        rows.append(
            SubgroupPerformance(
                attribute=attribute,
                group=group,
                n=int(mask.sum()),
                events=int(yg.sum()),
                observed_rate=float(yg.mean()),
                mean_predicted=float(pg.mean()),
                auroc=float(roc_auc_score(yg, pg)) if both else None,
                calibration_intercept=calibration_intercept(yg, pg) if both else None,
            )
        )
    return rows


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
