"""The prediction tasks the service learns and serves: what is predicted, when, and for whom."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PredictionTask:
    name: str
    registered_model: str
    """The model's name in the MLflow Model Registry."""
    hook: str
    title: str
    outcome: str
    prediction_time: str
    horizon_days: int
    outcome_encounter_classes: frozenset[str]
    """An encounter of one of these classes starting within the horizon is the outcome."""
    decision_range: tuple[float, float]
    """Risk thresholds at which acting is clinically reasonable; the decision curve picks one."""
    decision_range_rationale: str


READMISSION_30D = PredictionTask(
    name="readmission-30d",
    registered_model="lhs-readmission-30d",
    hook="encounter-discharge",
    title="30-day readmission or emergency revisit after discharge",
    outcome="An inpatient admission or emergency department visit starting within 30 days "
    "after discharge from a hospital stay or an emergency department visit.",
    prediction_time="At discharge (the end of the index encounter); only data recorded by then.",
    horizon_days=30,
    outcome_encounter_classes=frozenset({"IMP", "EMER"}),
    decision_range=(0.10, 0.30),
    decision_range_rationale="Transitional care (medication reconciliation, early follow-up, "
    "a call after discharge) is low-harm: offering it to between about 3 and 10 patients to "
    "reach one who would return is reasonable. Within that range the decision curve on the "
    "validation period picks the threshold with the largest net benefit.",
)

TASKS: dict[str, PredictionTask] = {READMISSION_30D.name: READMISSION_30D}
