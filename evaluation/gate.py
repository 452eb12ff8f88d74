"""The promotion gate: a challenger replaces the champion only when the evidence says so.

Both models are scored on the same recent, untreated patients, and every comparison is a
paired difference (challenger minus champion) with a percentile 95% interval from one
bootstrap that resamples *patients* (all of a patient's discharges together, since they
are not independent), seeded, so the same data give the same decision. The measures:

- discrimination: the AUROC difference;
- calibration: the difference in miscalibration, |calibration intercept| + |slope - 1|
  (Van Calster et al., BMC Med 2019, https://doi.org/10.1186/s12916-019-1466-7: ideal 0
  and 1), champion's minus challenger's, so that positive favours the challenger.

The challenger is promoted when it is **better** on at least one measure (the interval's
lower bound above zero) and **not worse** on any (its point estimate not below zero and its
lower bound above minus the measure's margin), and no subgroup (sex, age band, race where
recorded) with at least ``subgroup_min_events`` events and non-events loses AUROC: a
subgroup fails when the interval of its AUROC change (from the same patient resamples,
restricted to the subgroup) lies wholly below zero, a loss established, or when the point
estimate loses more than ``subgroup_tolerance``, a loss too large to accept while the
interval cannot rule it out. Smaller subgroups are listed as not judged, never dropped
silently. The rule is symmetric: the same models with their roles swapped see every
difference negated under the same resamples, and a model that is promoted over another is
never also promoted under it.

The champion is watched on its own too: when its calibration interval on the window
excludes the ideal (slope 1, intercept 0), the decision carries an alert, and retraining
registers a recalibrated champion (learning/retraining.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from evaluation.metrics import (
    Array,
    Estimate,
    calibration_intercept,
    calibration_slope,
    cluster_bootstrap_indices,
    interval,
)


@dataclass(frozen=True)
class GatePolicy:
    auroc_margin: float = 0.02
    """How much AUROC the lower bound may lose when the challenger wins on calibration."""
    calibration_margin: float = 0.05
    """How much miscalibration the lower bound may add when the challenger wins on AUROC."""
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
    calibration_gain: Estimate
    """Champion's miscalibration minus the challenger's (positive: the challenger is better)."""
    subgroup_gains: Mapping[str, Estimate] = field(default_factory=dict)
    """Per judged subgroup, the challenger's AUROC minus the champion's, with its interval."""
    unjudged_subgroups: list[str] = field(default_factory=list)
    """Subgroups with too few events or non-events to judge, with their counts."""
    champion_alerts: list[str] = field(default_factory=list)
    """Why the champion's own calibration on the window cannot be trusted (empty: it can)."""

    @property
    def reasons(self) -> list[str]:
        judged = [f"{'pass' if c.passed else 'FAIL'}: {c.name}: {c.detail}" for c in self.checks]
        return judged + [f"not judged: subgroup {group}" for group in self.unjudged_subgroups]


def miscalibration(intercept: float, slope: float) -> float:
    """|calibration intercept| + |calibration slope - 1|: 0 for a perfectly calibrated model."""
    return abs(intercept) + abs(slope - 1)


def _auroc(y: Array, p: Array) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _measures(y: Array, p: Array) -> dict[str, float]:
    found = {
        "auroc": _auroc(y, p),
        "calibration_slope": calibration_slope(y, p),
        "calibration_intercept": calibration_intercept(y, p),
    }
    found["miscalibration"] = miscalibration(
        found["calibration_intercept"], found["calibration_slope"]
    )
    return found


def _estimates(
    y: Array, p: Array, samples: list[NDArray[np.intp]]
) -> tuple[dict[str, Estimate], dict[str, list[float]]]:
    resampled = [_measures(y[i], p[i]) for i in samples]
    whole = _measures(y, p)
    draws = {name: [found[name] for found in resampled] for name in whole}
    return {name: interval(draws[name], value) for name, value in whole.items()}, draws


def _difference(
    ours: Estimate, draws: list[float], theirs: Estimate, other: list[float]
) -> Estimate:
    return interval([a - b for a, b in zip(draws, other, strict=True)], ours.value - theirs.value)


def _subgroup_auroc_gain(
    y: Array,
    champion: Array,
    challenger: Array,
    mask: NDArray[np.bool_],
    samples: list[NDArray[np.intp]],
) -> Estimate:
    """The challenger's AUROC minus the champion's within the subgroup, with its interval
    from the gate's patient resamples restricted to the subgroup (resamples holding one
    outcome only there are skipped)."""
    draws = []
    for i in samples:
        rows = i[mask[i]]
        if 0 < y[rows].sum() < len(rows):
            draws.append(_auroc(y[rows], challenger[rows]) - _auroc(y[rows], champion[rows]))
    return interval(draws, _auroc(y[mask], challenger[mask]) - _auroc(y[mask], champion[mask]))


def decide(
    y: Array,
    champion: Array,
    challenger: Array,
    subgroups: Mapping[str, Sequence[str]],
    policy: GatePolicy = GatePolicy(),
    *,
    patients: Sequence[str] | None = None,
) -> GateDecision:
    """Apply the policy to both models' risks for the same discharges (see module docstring);
    ``patients`` names each discharge's patient for the clustered bootstrap (None: each
    discharge its own patient)."""
    y = np.asarray(y, dtype=float)
    champion = np.asarray(champion, dtype=float)
    challenger = np.asarray(challenger, dtype=float)
    groups = list(patients) if patients is not None else [str(i) for i in range(len(y))]
    samples = [
        i
        for i in cluster_bootstrap_indices(groups, policy.bootstrap_rounds, policy.seed)
        if 0 < y[i].sum() < len(i)
    ]
    old, old_draws = _estimates(y, champion, samples)
    new, new_draws = _estimates(y, challenger, samples)
    auroc_gain = _difference(new["auroc"], new_draws["auroc"], old["auroc"], old_draws["auroc"])
    calibration_gain = _difference(
        old["miscalibration"],
        old_draws["miscalibration"],
        new["miscalibration"],
        new_draws["miscalibration"],
    )
    better = auroc_gain.low > 0 or calibration_gain.low > 0
    checks = [
        GateCheck(
            "better than the champion",
            better,
            f"AUROC difference {auroc_gain} or miscalibration reduction {calibration_gain} "
            "must have its lower bound above 0",
        ),
        GateCheck(
            "AUROC not worse than the champion's",
            auroc_gain.value >= 0 and auroc_gain.low > -policy.auroc_margin,
            f"difference {auroc_gain} must be >= 0 with its lower bound above "
            f"-{policy.auroc_margin}",
        ),
        GateCheck(
            "calibration not worse than the champion's",
            calibration_gain.value >= 0 and calibration_gain.low > -policy.calibration_margin,
            f"miscalibration reduction {calibration_gain} (challenger slope "
            f"{new['calibration_slope']}, intercept {new['calibration_intercept']}) must be >= 0 "
            f"with its lower bound above -{policy.calibration_margin}",
        ),
    ]
    gains: dict[str, Estimate] = {}
    unjudged: list[str] = []
    for attribute, labels in subgroups.items():
        values = np.asarray(labels)
        for group in sorted(set(labels)):
            mask = values == group
            name = f"{attribute}={group}"
            events = int(y[mask].sum())
            non_events = int(mask.sum()) - events
            if min(events, non_events) < policy.subgroup_min_events:
                unjudged.append(f"{name} ({events} events, {non_events} non-events)")
                continue
            gain = gains[name] = _subgroup_auroc_gain(y, champion, challenger, mask, samples)
            checks.append(
                GateCheck(
                    f"no loss in subgroup {name}",
                    gain.high >= 0 and gain.value >= -policy.subgroup_tolerance,
                    f"AUROC change {gain} must not lie wholly below 0 nor lose more than "
                    f"{policy.subgroup_tolerance}",
                )
            )
    return GateDecision(
        promote=all(c.passed for c in checks),
        checks=checks,
        champion=old,
        challenger=new,
        auroc_gain=auroc_gain,
        calibration_gain=calibration_gain,
        subgroup_gains=gains,
        unjudged_subgroups=unjudged,
        champion_alerts=calibration_alerts(old),
    )


def calibration_alerts(estimates: Mapping[str, Estimate]) -> list[str]:
    """Why a model's calibration on the window is off: an interval excluding the ideal."""
    alerts = []
    slope, intercept = estimates["calibration_slope"], estimates["calibration_intercept"]
    if not slope.low <= 1 <= slope.high:
        alerts.append(f"calibration slope {slope} excludes 1")
    if not intercept.low <= 0 <= intercept.high:
        alerts.append(f"calibration intercept {intercept} excludes 0")
    return alerts
