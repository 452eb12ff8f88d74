"""Outcome labels for served predictions, computed once each outcome window has closed.

A prediction made at a discharge is labelled 1 when an encounter of the task's outcome
classes, fed in through the outcomes endpoint or ``lhs sync``, started within the horizon
after its prediction time, else 0. Labels are recomputed when outcome data for the patient
arrive after labelling (late data), so a late-reported readmission turns a 0 into a 1.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.storage.repository import Store
from cds_service.storage.tables import OutcomeEvent
from models.tasks import TASKS

VOID_STATUSES = frozenset({"entered-in-error", "cancelled"})
"""Encounter statuses that mean it did not happen."""


@dataclass(frozen=True)
class LabelCounts:
    labelled: int
    positive: int


def label_predictions(store: Store, now: datetime) -> LabelCounts:
    """Label what can be labelled at ``now`` (the clinical clock: windows close against it)."""
    tasks = {task.registered_model: task for task in TASKS.values()}
    pending = [p for p in store.predictions_to_label(now) if p.model_name in tasks]
    if not pending:
        return LabelCounts(0, 0)
    events: dict[str, list[OutcomeEvent]] = defaultdict(list)
    for event in store.outcome_events(sorted({p.patient_key for p in pending})):
        if (
            event.resource_type == "Encounter"
            and event.status not in VOID_STATUSES
            and event.started_at
        ):
            events[event.patient_key].append(event)
    labels = {}
    for prediction in pending:
        task = tasks[prediction.model_name]
        end = prediction.prediction_time + timedelta(days=prediction.horizon_days)
        labels[prediction.id] = int(
            any(
                e.class_code in task.outcome_encounter_classes
                and prediction.prediction_time < e.started_at <= end  # type: ignore[operator]
                for e in events[prediction.patient_key]
            )
        )
    store.set_labels(labels)  # type: ignore[arg-type]
    return LabelCounts(len(labels), sum(labels.values()))
