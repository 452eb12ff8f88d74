"""Outcome labels for served predictions, computed once each outcome window has closed.

A prediction made at a discharge is labelled 1 when an encounter of the task's outcome
classes, fed in through the outcomes endpoint or ``lhs sync``, started within the horizon
after its prediction time, else 0. Labels are recomputed when outcome data for the patient
arrive after labelling (late data), so a late-reported readmission turns a 0 into a 1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.tasks import TASKS
from storage.repository import Store

VOID_STATUSES = frozenset({"entered-in-error", "cancelled"})
"""Encounter statuses that mean it did not happen."""


@dataclass(frozen=True)
class LabelCounts:
    labelled: int
    positive: int


def encounter_starts(
    store: Store, patients: Iterable[tuple[str, str]], classes: frozenset[str]
) -> dict[tuple[str, str], list[datetime]]:
    """When each patient's encounters of these classes started (void ones left out), by
    (owner, patient key): a client's patients are linked to the outcomes it sent and to those
    the operator fed in (owner ""), never to another client's."""
    wanted = set(patients)
    owners_of: dict[str, list[str]] = defaultdict(list)
    for owner, key in wanted:
        owners_of[key].append(owner)
    starts: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event in store.outcome_events(sorted(wanted)):
        if (
            event.resource_type == "Encounter"
            and event.status not in VOID_STATUSES
            and event.class_code in classes
            and event.started_at is not None
        ):
            owners = owners_of[event.patient_key] if event.owner == "" else [event.owner]
            for owner in owners:
                if (owner, event.patient_key) in wanted:
                    starts[(owner, event.patient_key)].append(event.started_at)
    return starts


def event_within(starts: Sequence[datetime], index_time: datetime, days: int) -> int:
    """1 if an encounter started in (index_time, index_time + days], else 0."""
    end = index_time + timedelta(days=days)
    return int(any(index_time < start <= end for start in starts))


def label_predictions(store: Store, now: datetime) -> LabelCounts:
    """Label what can be labelled at ``now`` (the clinical clock: windows close against it)."""
    tasks = {task.registered_model: task for task in TASKS.values()}
    pending = [p for p in store.predictions_to_label(now) if p.model_name in tasks]
    labels = {}
    for name, task in tasks.items():
        mine = [p for p in pending if p.model_name == name]
        starts = encounter_starts(
            store, ((p.owner, p.patient_key) for p in mine), task.outcome_encounter_classes
        )
        for prediction in mine:
            labels[prediction.id] = event_within(
                starts[(prediction.owner, prediction.patient_key)],
                prediction.prediction_time,
                prediction.horizon_days,
            )
    if labels:
        store.set_labels(labels)  # type: ignore[arg-type]
    return LabelCounts(len(labels), sum(labels.values()))
