"""The promotion gate: a challenger replaces the champion only when the evidence says so.

Both models are scored on the same recent, untreated patients. The challenger passes when

- its AUROC is not worse than the champion's by more than ``auroc_margin``, with confidence:
  the lower bound of the paired bootstrap 95% CI of the difference lies above -margin
  (a non-inferiority test, as in clinical trials);
- its calibration stays within bounds: slope in ``slope_bounds``, intercept in
  ``intercept_bounds`` (Van Calster 2019: ideal 1 and 0);
- no subgroup (sex, age band, race where recorded) with enough patients of both outcomes loses more than
  ``subgroup_tolerance`` of AUROC against the champion.

Every check is reported with its numbers, whether it passed or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluation.metrics import Array, Estimate, auroc_difference, evaluate_risks


@dataclass(frozen=True)
class GatePolicy:
    auroc_margin: float = 0.02
    slope_bounds: tuple[float, float] = (0.7, 1.3)
    intercept_bounds: tuple[float, float] = (-0.3, 0.3)
    subgroup_tolerance: float = 0.05
    subgroup_min_events: int = 5
    bootstrap_rounds: int = 500
    seed: int = 42


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    checks: list[GateCheck]
    champion: Mapping[str, Estimate]
    challenger: Mapping[str, Estimate]
    auroc_gain: Estimate
    subgroup_gains: Mapping[str, float] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [f"{'pass' if c.passed else 'FAIL'}: {c.name}: {c.detail}" for c in self.checks]


def _subgroup_auroc_gain(y: Array, champion: Array, challenger: Array, mask: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y[mask], challenger[mask]) - roc_auc_score(y[mask], champion[mask]))


def decide(
    y: Array,
    champion: Array,
    challenger: Array,
    subgroups: Mapping[str, Sequence[str]],
    policy: GatePolicy = GatePolicy(),
) -> GateDecision:
    """Apply the policy to both models' risks for the same patients (see module docstring)."""
    y = np.asarray(y, dtype=float)
    rounds, seed = policy.bootstrap_rounds, policy.seed
    champion_metrics = evaluate_risks(y, champion, rounds=rounds, seed=seed)
    challenger_metrics = evaluate_risks(y, challenger, rounds=rounds, seed=seed)
    gain = auroc_difference(y, challenger, champion, rounds=rounds, seed=seed)
    checks = [
        GateCheck(
            "AUROC not worse than the champion's",
            gain.low > -policy.auroc_margin,
            f"difference {gain} must have its lower bound above -{policy.auroc_margin}",
        )
    ]
    slope = challenger_metrics["calibration_slope"].value
    intercept = challenger_metrics["calibration_intercept"].value
    low, high = policy.slope_bounds
    checks.append(
        GateCheck(
            "calibration slope within bounds",
            low <= slope <= high,
            f"{slope:.3f} must lie in [{low}, {high}]",
        )
    )
    low, high = policy.intercept_bounds
    checks.append(
        GateCheck(
            "calibration intercept within bounds",
            low <= intercept <= high,
            f"{intercept:.3f} must lie in [{low}, {high}]",
        )
    )
    gains: dict[str, float] = {}
    for attribute, groups in subgroups.items():
        labels = np.asarray(groups)
        for group in sorted(set(groups)):
            mask = labels == group
            events = int(y[mask].sum())
            if min(events, int(mask.sum()) - events) < policy.subgroup_min_events:
                continue  # too few of either outcome for a stable AUROC
            name = f"{attribute}={group}"
            gains[name] = _subgroup_auroc_gain(y, champion, challenger, mask)
            checks.append(
                GateCheck(
                    f"no loss in subgroup {name}",
                    gains[name] >= -policy.subgroup_tolerance,
                    f"AUROC change {gains[name]:+.3f} must be >= -{policy.subgroup_tolerance}",
                )
            )
    return GateDecision(
        promote=all(c.passed for c in checks),
        checks=checks,
        champion=champion_metrics,
        challenger=challenger_metrics,
        auroc_gain=gain,
        subgroup_gains=gains,
    )
