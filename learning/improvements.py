"""Gathering the report's improvement sections from the store: control charts, clinicians'
voice, shadow runs, experiments and knowledge changes of a period."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from evaluation.clinician_voice import rule_voices
from evaluation.experiment_analysis import analyze
from evaluation.feedback_analytics import CardRow, version_in_use, week_of
from evaluation.improvement_report import ControlChart, ImprovementData, KnowledgeChange
from evaluation.spc import Period, p_chart, version_changes
from evaluation.version_effects import version_effects
from knowledge.experiment import ExperimentDefinition
from learning.experiment_registry import experiment_patients
from learning.labels import encounter_starts, event_within
from learning.shadow_registry import shadow_summary
from models.tasks import READMISSION_30D, TASKS
from storage.repository import Store

CHART_WEEKS = 26
"""Control charts look back this far, so a change shows against the weeks before it."""
CHART_MIN_ANSWERED = 20
CHARTED_RULES = 6
"""The rules with the most answered cards get a chart; the rest are in the tables."""


def _weeks(start: datetime, until: datetime) -> list[str]:
    """Every ISO week from ``start`` to the last before ``until``, empty ones too."""
    weeks: list[str] = []
    moment = start
    while moment < until:
        weeks.append(week_of(moment))
        moment += timedelta(days=7)
    last = week_of(until - timedelta(microseconds=1))
    if not weeks or weeks[-1] != last:
        weeks.append(last)
    return weeks


def _acceptance_charts(rows: Sequence[CardRow], weeks: list[str]) -> list[ControlChart]:
    by_rule: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows:
        if row.outcome is not None:
            by_rule[row.rule_id].append(row)
    charted = sorted(
        (rule for rule, answered in by_rule.items() if len(answered) >= CHART_MIN_ANSWERED),
        key=lambda rule: -len(by_rule[rule]),
    )[:CHARTED_RULES]
    charts = []
    for rule in sorted(charted):
        answered = by_rule[rule]
        accepted: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        for row in answered:
            week = week_of(row.shown_at)
            total[week] += 1
            accepted[week] += row.outcome == "accepted"
        periods = [Period(week, accepted[week], total[week]) for week in weeks]
        charts.append(
            ControlChart(
                rule,
                "acceptance of answered cards",
                p_chart(periods),
                version_changes(version_in_use(answered)),
            )
        )
    return charts


def _outcome_charts(store: Store, weeks: list[str], start: datetime) -> list[ControlChart]:
    charts = []
    for task in TASKS.values():
        events: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        latest: dict[str, tuple[datetime, str]] = {}
        for p in store.labelled_predictions(task.registered_model):
            if p.prediction_time < start:
                continue
            week = week_of(p.prediction_time)
            total[week] += 1
            events[week] += int(p.label or 0)
            latest[week] = max(
                latest.get(week, (p.prediction_time, "")), (p.prediction_time, p.model_version)
            )
        if sum(total.values()) < CHART_MIN_ANSWERED:
            continue
        versions = [(week, latest[week][1]) for week in sorted(latest)]
        charts.append(
            ControlChart(
                task.registered_model,
                f"observed {task.horizon_days}-day outcome of scored discharges",
                p_chart([Period(week, events[week], total[week]) for week in weeks]),
                version_changes(versions),
            )
        )
    return charts


def _rule_outcome_charts(
    store: Store, rows: Sequence[CardRow], weeks: list[str], until: datetime
) -> list[ControlChart]:
    """For rules answered at discharge: the share of patients shown the card who had the
    readmission task's outcome within its horizon (windows closed by ``until``)."""
    task = READMISSION_30D
    horizon = timedelta(days=task.horizon_days)
    by_rule: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows:
        if row.hook == task.hook and row.patient_key and row.shown_at + horizon <= until:
            by_rule[row.rule_id].append(row)
    charts = []
    for rule, shown in sorted(by_rule.items()):
        if len(shown) < CHART_MIN_ANSWERED or rule == task.registered_model:
            continue  # the model's own outcome chart comes from its labelled predictions
        starts = encounter_starts(
            store, ((r.owner, r.patient_key) for r in shown), task.outcome_encounter_classes
        )
        events: dict[str, int] = defaultdict(int)
        total: dict[str, int] = defaultdict(int)
        for row in shown:
            week = week_of(row.shown_at)
            total[week] += 1
            events[week] += event_within(
                starts[(row.owner, row.patient_key)], row.shown_at, task.horizon_days
            )
        charts.append(
            ControlChart(
                rule,
                f"admission or emergency visit within {task.horizon_days} days of the card",
                p_chart([Period(week, events[week], total[week]) for week in weeks]),
                version_changes(version_in_use(shown)),
            )
        )
    return charts


def gather_improvements(store: Store, since: datetime, until: datetime) -> ImprovementData:
    chart_start = until - timedelta(weeks=CHART_WEEKS)
    weeks = _weeks(chart_start, until)
    history = store.card_feedback_rows(chart_start, until)
    if since >= chart_start:
        period = [r for r in history if since <= r.shown_at < until]
    else:
        period = store.card_feedback_rows(since, until)
    shadows = [
        shadow_summary(store, run, since, until)
        for run in store.shadow_runs()
        if run.started_at < until and (run.stopped_at is None or run.stopped_at >= since)
    ]
    experiments = [
        analyze(definition, experiment_patients(store, definition, until))
        for e in store.experiments()
        if e.started_at < until and (e.stopped_at is None or e.stopped_at >= since)
        for definition in [ExperimentDefinition.model_validate(e.definition)]
    ]
    changes = []
    for proposal in store.proposals():
        decided = proposal.reviewed_at
        if not (since <= proposal.proposed_at < until or (decided and since <= decided < until)):
            continue
        effect = None
        if proposal.status == "approved":
            rows = store.card_feedback_rows(
                datetime.min.replace(tzinfo=UTC), until, proposal.rule_id
            )
            effect = version_effects(rows).get(proposal.to_version)
        changes.append(
            KnowledgeChange(
                rule_id=proposal.rule_id,
                from_version=proposal.from_version,
                to_version=proposal.to_version,
                status=proposal.status,
                proposed_by=proposal.proposed_by,
                proposed_at=proposal.proposed_at,
                source=proposal.source,
                rationale=proposal.rationale,
                reviewed_by=proposal.reviewed_by,
                review_note=proposal.review_note,
                effect=effect,
            )
        )
    return ImprovementData(
        charts=_acceptance_charts(history, weeks)
        + _rule_outcome_charts(store, history, weeks, until)
        + _outcome_charts(store, weeks, chart_start),
        voices=rule_voices(period),
        shadows=shadows,
        experiments=experiments,
        changes=changes,
    )
