"""The analysis of a randomized experiment on a rule: per arm, and each arm against control.

The unit is the patient (the unit of randomization), analysed in the arm assigned
(intention to treat). Per arm: patients, patients shown a card, acceptance among them,
median time from card to action, and the outcome of interest among patients whose outcome
window has closed. Each arm is compared with control on acceptance (arms that show cards)
and on the outcome (every arm, holdouts included), with the fixed-horizon and the
always-valid inferences of evaluation/experiments.py; alpha is split over the comparisons
of the primary metric (Bonferroni). The stopping recommendation follows the primary metric.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from evaluation.experiments import (
    Comparison,
    compare,
    cumulative_looks,
    sample_size_per_arm,
    stopping_recommendation,
)
from knowledge.experiment import ExperimentDefinition


@dataclass(frozen=True)
class ArmPatient:
    arm: str
    first_seen: datetime
    """When the patient was first assigned (the order of the sequential looks)."""
    shown: bool
    accepted: bool
    minutes_to_action: float | None
    outcome: int | None
    """1 or 0 once the outcome window has closed; None before (or without an outcome)."""


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    holdout: bool
    patients: int
    shown: int
    accepted: int
    acceptance_rate: float | None
    median_minutes_to_action: float | None
    outcome_patients: int
    outcome_events: int
    outcome_rate: float | None


@dataclass(frozen=True)
class ExperimentAnalysis:
    experiment_id: str
    rule: str
    primary_metric: str
    control: str
    alpha_per_comparison: float
    planned_per_arm: int
    arms: list[ArmSummary]
    acceptance: dict[str, Comparison] = field(default_factory=dict)
    outcome: dict[str, Comparison] = field(default_factory=dict)
    recommendation: str = ""


def _rate(events: int, n: int) -> float | None:
    return events / n if n else None


def _summary(arm: str, holdout: bool, patients: Sequence[ArmPatient]) -> ArmSummary:
    shown = [p for p in patients if p.shown]
    accepted = sum(p.accepted for p in shown)
    times = [p.minutes_to_action for p in shown if p.minutes_to_action is not None]
    outcomes = [p.outcome for p in patients if p.outcome is not None]
    return ArmSummary(
        arm=arm,
        holdout=holdout,
        patients=len(patients),
        shown=len(shown),
        accepted=accepted,
        acceptance_rate=_rate(accepted, len(shown)),
        median_minutes_to_action=statistics.median(times) if times else None,
        outcome_patients=len(outcomes),
        outcome_events=sum(outcomes),
        outcome_rate=_rate(sum(outcomes), len(outcomes)),
    )


def _comparison(
    patients: Sequence[ArmPatient],
    arm: str,
    control: str,
    value: str,
    tau: float,
    alpha: float,
) -> Comparison | None:
    ordered = sorted((p for p in patients if p.arm in (arm, control)), key=lambda p: p.first_seen)
    if value == "acceptance":
        ordered = [p for p in ordered if p.shown]
        values = [int(p.accepted) for p in ordered]
    else:
        ordered = [p for p in ordered if p.outcome is not None]
        values = [int(p.outcome or 0) for p in ordered]
    order = ["arm" if p.arm == arm else "control" for p in ordered]
    if "arm" not in order or "control" not in order:
        return None
    looks = cumulative_looks(
        [v for v, who in zip(values, order, strict=True) if who == "arm"],
        [v for v, who in zip(values, order, strict=True) if who == "control"],
        order,
    )
    return compare(looks, tau=tau, alpha=alpha)


def analyze(definition: ExperimentDefinition, patients: Sequence[ArmPatient]) -> ExperimentAnalysis:
    design = definition.design
    control = definition.control
    holdouts = {arm.id for arm in definition.arms if arm.holdout}
    others = [arm.id for arm in definition.arms if arm.id != control]
    acceptance_arms = [a for a in others if a not in holdouts]
    primary_family = acceptance_arms if design.primary_metric == "acceptance" else others
    alpha = design.alpha / max(1, len(primary_family))
    summaries = [
        _summary(arm.id, arm.holdout, [p for p in patients if p.arm == arm.id])
        for arm in definition.arms
    ]
    tau = design.min_detectable_difference
    acceptance = {
        arm: c
        for arm in acceptance_arms
        if (c := _comparison(patients, arm, control, "acceptance", tau, alpha)) is not None
    }
    outcome = (
        {
            arm: c
            for arm in others
            if (c := _comparison(patients, arm, control, "outcome", tau, alpha)) is not None
        }
        if definition.outcome is not None
        else {}
    )
    planned = sample_size_per_arm(
        design.baseline_rate, design.min_detectable_difference, alpha, design.power
    )
    primary = acceptance if design.primary_metric == "acceptance" else outcome
    recommendation = (
        stopping_recommendation(primary, planned, alpha)
        if primary
        else f"continue: no comparison possible yet (0 of {planned} planned patients per arm)"
    )
    return ExperimentAnalysis(
        experiment_id=definition.id,
        rule=definition.rule,
        primary_metric=design.primary_metric,
        control=control,
        alpha_per_comparison=alpha,
        planned_per_arm=planned,
        arms=summaries,
        acceptance=acceptance,
        outcome=outcome,
        recommendation=recommendation,
    )
