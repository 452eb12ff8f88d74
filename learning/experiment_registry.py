"""Experiments as the service runs them: started from reviewed definitions, kept in the store."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from evaluation.experiment_analysis import ArmPatient
from knowledge.experiment import ExperimentDefinition
from knowledge.library import KnowledgeLibrary
from learning.labels import encounter_starts, event_within
from storage.repository import Store
from storage.tables import Experiment, ExperimentAssignment


def active_experiments(store: Store) -> dict[str, ExperimentDefinition]:
    return {
        e.id: ExperimentDefinition.model_validate(e.definition)
        for e in store.experiments(active_only=True)
    }


def start_experiment(
    store: Store, definition: ExperimentDefinition, library: KnowledgeLibrary, started_by: str
) -> None:
    """Check the definition against the rule it varies and record it as active. One active
    experiment per rule: two would randomize the same cards twice."""
    try:
        rule = library.rule(definition.rule)
    except KeyError:
        raise ValueError(f"no active rule {definition.rule!r} to experiment on") from None
    definition.check_against(rule.artifact)
    busy = [e.id for e in active_experiments(store).values() if e.rule == definition.rule]
    if busy:
        raise ValueError(f"rule {definition.rule} is already under experiment {busy[0]}")
    store.start_experiment(
        Experiment(
            id=definition.id,
            rule_id=definition.rule,
            definition=definition.model_dump(mode="json"),
            status="active",
            started_by=started_by,
        )
    )


def experiment_patients(
    store: Store, definition: ExperimentDefinition, now: datetime
) -> list[ArmPatient]:
    """Each patient of the experiment in the arm first assigned, with what followed: any
    card accepted, the minutes from the first card shown to the first action, and the
    outcome once its window (counted from the first assignment's clinical time) has closed."""
    rows = store.assignments(definition.id)
    # A patient is a pseudonym within the client that was called about them.
    owners = store.invocation_owners({r.invocation_id for r in rows})
    first: dict[tuple[str, str], ExperimentAssignment] = {}
    shown_cards: dict[tuple[str, str], list[ExperimentAssignment]] = defaultdict(list)
    for row in rows:
        patient = (owners.get(row.invocation_id, ""), row.patient_key)
        first.setdefault(patient, row)
        if row.shown:
            shown_cards[patient].append(row)
    actions = store.feedback_actions([r.card_uuid for r in rows if r.shown])
    outcome = definition.outcome
    events = (
        encounter_starts(store, first, frozenset(outcome.encounter_classes))
        if outcome is not None
        else {}
    )
    patients = []
    for key, row in first.items():
        cards = shown_cards[key]
        acted = sorted(actions[c.card_uuid][1] for c in cards if c.card_uuid in actions)
        label = None
        if outcome is not None and row.index_time + timedelta(days=outcome.within_days) <= now:
            label = event_within(events.get(key, []), row.index_time, outcome.within_days)
        patients.append(
            ArmPatient(
                arm=row.arm,
                first_seen=row.assigned_at,
                shown=bool(cards),
                accepted=any(actions.get(c.card_uuid, ("",))[0] == "accepted" for c in cards),
                minutes_to_action=(acted[0] - cards[0].assigned_at).total_seconds() / 60
                if acted
                else None,
                outcome=label,
            )
        )
    return patients
