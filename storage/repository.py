"""Writing and reading the store; each public method is one transaction."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, case, delete, func, insert, or_, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from evaluation.feedback_analytics import DELAY_BIN_EDGES, CardRow, CardTally, user_role
from fhir_client.fhirdates import as_utc
from fhir_client.outcomes import OutcomeInput
from hooks.cards import Card
from hooks.feedback import FeedbackItem
from storage.surveillance_store import SurveillanceStore
from storage.tables import (
    CardOverride,
    ChangeProposal,
    Experiment,
    ExperimentAssignment,
    FeedbackRecord,
    Invocation,
    IssuedCard,
    ModelDecision,
    OutcomeEvent,
    PredictionRecord,
    SeenJti,
    ShadowComparisonRecord,
    ShadowRun,
    utcnow,
)


@dataclass(frozen=True)
class IssuedCardInput:
    card: Card
    rule_id: str
    rule_version: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True)
class AssignmentInput:
    """A card produced under an experiment arm; ``shown`` False for a holdout's card."""

    experiment_id: str
    arm: str
    card: Card
    rule_id: str
    rule_version: str
    shown: bool
    index_time: datetime


@dataclass(frozen=True)
class ShadowInput:
    """What a shadow candidate would have shown on a call, beside the live side's cards."""

    shadow_id: str
    live_version: str
    candidate_version: str
    agreement: str
    changed: bool
    live: list[dict[str, Any]]
    shadow: list[dict[str, Any]]


@dataclass(frozen=True)
class PredictionInput:
    model_name: str
    model_version: str
    risk: float
    threshold: float | None
    features: Mapping[str, float]
    contributions: Mapping[str, float]
    prediction_time: datetime
    horizon_days: int
    card_uuid: str | None = None
    sex: str | None = None
    """The patient's sex, race and ethnicity (for fairness audits only; never a feature)."""
    race: str | None = None
    ethnicity: str | None = None


@dataclass(frozen=True)
class OutcomeCounts:
    stored: int
    updated: int
    duplicates: int


FEEDBACK_CLOCK_SKEW = timedelta(minutes=5)
# Rows per IN (...) list: well under the bound-parameter limits of SQLite and PostgreSQL.
_IN_LIST_CHUNK = 1000
"""How far ahead of ours an EHR's clock may run before a feedback time counts as impossible."""


@dataclass(frozen=True)
class FeedbackOutcome:
    stored: int
    duplicates: int
    unknown_cards: list[str] = field(default_factory=list)
    adjusted: list[tuple[int, str]] = field(default_factory=list)
    """(position among the items, why): an outcomeTimestamp that cannot be true (before the
    card was issued, or after the item arrived) is stored as the nearest possible time."""


def feedback_dedupe_key(service_id: str, raw_item: Any) -> str:
    """The same item re-sent (same service, same JSON content) gets the same key."""
    canonical = json.dumps(
        [service_id, raw_item], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# Built once: this runs on the hot path, and constructing a statement costs more than running it.
_OVERRIDDEN = select(
    CardOverride.rule_id, CardOverride.fingerprint, CardOverride.overridden_at
).where(
    col(CardOverride.owner) == bindparam("owner"),
    col(CardOverride.patient_key) == bindparam("patient_key"),
    col(CardOverride.rule_id).in_(bindparam("rule_ids", expanding=True)),
    col(CardOverride.overridden_at) >= bindparam("since"),
)


CallRows = tuple[
    Invocation,
    Sequence[IssuedCardInput],
    Sequence[PredictionInput],
    Sequence[AssignmentInput],
    Sequence[ShadowInput],
]
"""One call as stored: the invocation, its cards, predictions, arms and shadow comparisons."""


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._last_jti_purge = 0.0
        self.surveillance = SurveillanceStore(engine, self._insert)

    def record_invocation(
        self,
        invocation: Invocation,
        cards: Sequence[IssuedCardInput],
        predictions: Sequence[PredictionInput] = (),
        assignments: Sequence[AssignmentInput] = (),
        shadows: Sequence[ShadowInput] = (),
    ) -> int:
        """Store a call, the cards it returned, its models' predictions, the experiment arms
        its cards were produced under and its shadow comparisons, all or nothing."""
        (invocation_id,) = self.record_invocations(
            [(invocation, cards, predictions, assignments, shadows)]
        )
        return invocation_id

    def record_invocations(self, calls: Sequence[CallRows]) -> list[int]:
        """Store several calls with their cards in one transaction (group commit).

        Core inserts with RETURNING (executemany): this runs for every hook call, and the
        ORM's unit of work costs more than the insert itself.
        """
        if not calls:
            return []
        with self.engine.begin() as connection:
            ids = list(
                connection.execute(
                    insert(Invocation).returning(Invocation.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
                    [invocation.model_dump(exclude={"id"}) for invocation, *_ in calls],
                ).scalars()
            )
            now = utcnow()
            card_rows = [
                {
                    "uuid": issued.card.uuid,
                    "invocation_id": invocation_id,
                    "service_id": invocation.service_id,
                    "rule_id": issued.rule_id,
                    "rule_version": issued.rule_version,
                    "indicator": issued.card.indicator,
                    "summary": issued.card.summary,
                    "card": issued.card.model_dump(mode="json", exclude_none=True),
                    "suggestion_uuids": [s.uuid for s in issued.card.suggestions or ()],
                    "created_at": now,
                    "patient_key": invocation.patient_key,
                    "inputs": dict(issued.inputs),
                    "fingerprint": issued.fingerprint,
                    "owner": invocation.owner,
                }
                for invocation_id, (invocation, cards, *_) in zip(ids, calls, strict=True)
                for issued in cards
            ]
            if card_rows:
                connection.execute(insert(IssuedCard), card_rows)
            prediction_rows = [
                {
                    "invocation_id": invocation_id,
                    "service_id": invocation.service_id,
                    "patient_key": invocation.patient_key,
                    "model_name": p.model_name,
                    "model_version": p.model_version,
                    "risk": p.risk,
                    "threshold": p.threshold,
                    "features": dict(p.features),
                    "contributions": dict(p.contributions),
                    "card_uuid": p.card_uuid,
                    "predicted_at": now,
                    "prediction_time": p.prediction_time,
                    "horizon_days": p.horizon_days,
                    "sex": p.sex,
                    "race": p.race,
                    "ethnicity": p.ethnicity,
                    "owner": invocation.owner,
                }
                for invocation_id, (invocation, _, predictions, *_) in zip(ids, calls, strict=True)
                for p in predictions
            ]
            if prediction_rows:
                connection.execute(insert(PredictionRecord), prediction_rows)
            assignment_rows = [
                {
                    "invocation_id": invocation_id,
                    "experiment_id": a.experiment_id,
                    "arm": a.arm,
                    "patient_key": invocation.patient_key,
                    "rule_id": a.rule_id,
                    "rule_version": a.rule_version,
                    "card_uuid": a.card.uuid,
                    "shown": a.shown,
                    "card": a.card.model_dump(mode="json", exclude_none=True),
                    "index_time": a.index_time,
                    "assigned_at": now,
                }
                for invocation_id, (invocation, *_, assignments, _) in zip(ids, calls, strict=True)
                for a in assignments
            ]
            if assignment_rows:
                connection.execute(insert(ExperimentAssignment), assignment_rows)
            shadow_rows = [
                {
                    **dataclasses.asdict(shadow),
                    "invocation_id": invocation_id,
                    "patient_key": invocation.patient_key,
                    "compared_at": now,
                }
                for invocation_id, (invocation, *_, shadows) in zip(ids, calls, strict=True)
                for shadow in shadows
            ]
            if shadow_rows:
                connection.execute(insert(ShadowComparisonRecord), shadow_rows)
        for invocation_id, (invocation, *_) in zip(ids, calls, strict=True):
            invocation.id = invocation_id
        return ids

    def record_feedback(
        self,
        owner: str,
        service_id: str,
        items: Sequence[FeedbackItem],
        raw_items: Sequence[Any],
    ) -> FeedbackOutcome:
        """Store once each the items on cards this service showed ``owner``.

        Items naming any other card (never issued, issued by another service, or shown to
        another client) are not stored: they are returned as unknown, so that nobody can
        write into the learning data about cards they were not shown.
        """
        if not items:
            return FeedbackOutcome(0, 0)
        card_uuids = {item.card for item in items}
        with Session(self.engine) as session:
            known = {
                uuid: (patient, rule, fingerprint, issued_at)
                for uuid, patient, rule, fingerprint, issued_at in session.exec(
                    select(
                        IssuedCard.uuid,
                        IssuedCard.patient_key,
                        IssuedCard.rule_id,
                        IssuedCard.fingerprint,
                        IssuedCard.created_at,
                    ).where(
                        col(IssuedCard.uuid).in_(card_uuids),
                        IssuedCard.owner == owner,
                        IssuedCard.service_id == service_id,
                    )
                )
            }
            stored = 0
            adjusted: list[tuple[int, str]] = []
            received_at = utcnow()
            for position, (item, raw) in enumerate(zip(items, raw_items, strict=True)):
                if item.card not in known:
                    continue
                reason = item.overrideReason.reason if item.overrideReason else None
                timestamp = as_utc(item.outcomeTimestamp)
                issued_at = known[item.card][3]
                # Time to action is measured from these: an impossible time would make it
                # negative (or longer than it was) in every analysis downstream. A time in
                # the second the card was issued is not before it: EHRs often send whole
                # seconds, and that second contains the issue time (stored as the issue time).
                if timestamp < issued_at.replace(microsecond=0):
                    adjusted.append(
                        (
                            position,
                            f"before the card was issued ({issued_at.isoformat()}); stored as the issue time",
                        )
                    )
                    timestamp = issued_at
                elif timestamp > received_at + FEEDBACK_CLOCK_SKEW:
                    adjusted.append(
                        (
                            position,
                            f"after the feedback arrived ({received_at.isoformat()}); stored as the arrival time",
                        )
                    )
                    timestamp = received_at
                timestamp = max(timestamp, issued_at)
                values = {
                    "dedupe_key": feedback_dedupe_key(service_id, raw),
                    "service_id": service_id,
                    "card_uuid": item.card,
                    "issued_card_uuid": item.card,
                    "outcome": item.outcome,
                    "accepted_suggestions": [s.id for s in item.acceptedSuggestions or ()],
                    "override_reason_system": reason.system if reason else None,
                    "override_reason_code": reason.code if reason else None,
                    "override_reason_display": reason.display if reason else None,
                    "user_comment": item.overrideReason.userComment
                    if item.overrideReason
                    else None,
                    "outcome_timestamp": timestamp,
                    "received_at": received_at,
                    "raw": raw,
                    "owner": owner,
                }
                statement = (
                    self._insert(FeedbackRecord)
                    .values(**values)
                    .on_conflict_do_nothing(index_elements=["dedupe_key"])
                    .returning(FeedbackRecord.id)  # type: ignore[arg-type]
                )
                # A row comes back only when the item was new (rowcount is not reliable here).
                new = session.connection().execute(statement).first()
                stored += new is not None
                if new is not None and item.outcome == "overridden":
                    patient, rule, fingerprint, _ = known[item.card]
                    session.add(
                        CardOverride(
                            feedback_id=new[0],
                            owner=owner,
                            patient_key=patient,
                            rule_id=rule,
                            fingerprint=fingerprint,
                            overridden_at=timestamp,
                        )
                    )
            session.commit()
        unknown = sorted(card_uuids - known.keys())
        return FeedbackOutcome(
            stored=stored,
            duplicates=sum(item.card in known for item in items) - stored,
            unknown_cards=unknown,
            adjusted=adjusted,
        )

    def claim_jtis(self, claims: Sequence[tuple[str, datetime]]) -> list[bool]:
        """Record JWT ids (hashed) until they expire; True for each one not seen before."""
        with self.engine.begin() as connection:
            if time.monotonic() - self._last_jti_purge > 60:
                connection.execute(delete(SeenJti).where(col(SeenJti.expires_at) < utcnow()))
                self._last_jti_purge = time.monotonic()
            results = []
            for key, expires_at in claims:
                statement = (
                    self._insert(SeenJti)
                    .values(key=key, expires_at=expires_at)
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(SeenJti.key)  # type: ignore[arg-type]
                )
                results.append(connection.execute(statement).first() is not None)
            return results

    def overridden_since(
        self, owner: str, patient_key: str, rule_ids: Sequence[str], since: datetime
    ) -> set[tuple[str, str, datetime]]:
        """(rule id, fingerprint, when) of this patient's cards that the ``owner`` client's
        clinicians overrode since ``since``."""
        if not rule_ids:
            return set()
        parameters = {
            "owner": owner,
            "patient_key": patient_key,
            "rule_ids": list(rule_ids),
            "since": since,
        }
        with self.engine.connect() as connection:
            return {
                (rule, fingerprint, when)
                for rule, fingerprint, when in connection.execute(_OVERRIDDEN, parameters)
            }

    @property
    def is_embedded(self) -> bool:
        """SQLite in this process: short reads are cheaper inline than via a worker thread."""
        return self.engine.dialect.name == "sqlite"

    # --- reading -----------------------------------------------------------------------------

    def invocations(self, limit: int = 100) -> list[Invocation]:
        with Session(self.engine) as session:
            statement = select(Invocation).order_by(col(Invocation.id).desc()).limit(limit)
            return list(session.exec(statement))

    def predictions(
        self, model_name: str | None = None, limit: int = 1000
    ) -> list[PredictionRecord]:
        """The latest predictions (of one model, or all), newest first."""
        query = select(PredictionRecord).order_by(col(PredictionRecord.id).desc()).limit(limit)
        if model_name is not None:
            query = query.where(PredictionRecord.model_name == model_name)
        with Session(self.engine) as session:
            return list(session.exec(query))

    def record_outcomes(self, items: Sequence[OutcomeInput]) -> OutcomeCounts:
        """Store outcome events; a re-sent resource is a duplicate, a changed one replaces it."""
        latest: dict[str, OutcomeInput] = {}
        for item in items:  # the same resource twice in one batch: its last version counts
            latest[item.resource_key] = item
        for attempt in range(2):
            try:
                return self._record_outcomes(list(latest.values()), len(items) - len(latest))
            except IntegrityError:
                if attempt:  # a concurrent writer stored the same new resource twice over
                    raise
        raise AssertionError("unreachable")

    def _record_outcomes(self, items: list[OutcomeInput], repeated: int) -> OutcomeCounts:
        now = utcnow()
        with self.engine.begin() as connection:
            existing = (
                dict(
                    connection.execute(
                        select(OutcomeEvent.resource_key, OutcomeEvent.content_hash).where(
                            col(OutcomeEvent.resource_key).in_([i.resource_key for i in items])
                        )
                    ).all()
                )
                if items
                else {}
            )
            new = [i for i in items if i.resource_key not in existing]
            changed = [
                i
                for i in items
                if i.resource_key in existing and existing[i.resource_key] != i.content_hash
            ]
            if new:
                connection.execute(
                    insert(OutcomeEvent),
                    # vars, not asdict: the fields are flat, and asdict deep-copies every list.
                    [{**vars(i), "received_at": now} for i in new],
                )
            for item in changed:
                connection.execute(
                    update(OutcomeEvent)
                    .where(col(OutcomeEvent.resource_key) == item.resource_key)
                    .values(**vars(item), received_at=now)
                )
        return OutcomeCounts(
            stored=len(new),
            updated=len(changed),
            duplicates=len(items) - len(new) - len(changed) + repeated,
        )

    def outcome_events(self, patients: Sequence[tuple[str, str]]) -> list[OutcomeEvent]:
        """The outcome events of these (owner, patient key) pairs, and those the operator fed
        in for their patient keys (owner "", e.g. `lhs sync`): a client's predictions and
        cards are never linked to outcomes another client sent."""
        found: list[OutcomeEvent] = []
        pair = tuple_(col(OutcomeEvent.owner), col(OutcomeEvent.patient_key))
        with Session(self.engine) as session:
            for start in range(0, len(patients), _IN_LIST_CHUNK):
                chunk = list(patients[start : start + _IN_LIST_CHUNK])
                operator_fed = [("", key) for _, key in chunk]
                query = select(OutcomeEvent).where(pair.in_(sorted(set(chunk + operator_fed))))
                found.extend(session.exec(query))
        return found

    def invocation_owners(self, invocation_ids: Collection[int]) -> dict[int, str]:
        """The owner of each of these invocations."""
        ids = sorted(invocation_ids)
        owners: dict[int, str] = {}
        with Session(self.engine) as session:
            for start in range(0, len(ids), _IN_LIST_CHUNK):
                query = select(Invocation.id, Invocation.owner).where(
                    col(Invocation.id).in_(ids[start : start + _IN_LIST_CHUNK])
                )
                owners.update((i, o) for i, o in session.exec(query) if i is not None)
        return owners

    def predictions_to_label(self, now: datetime) -> list[PredictionRecord]:
        """Predictions whose window has closed and that have no label yet, or whose patient
        had outcome data arrive after they were labelled (late data)."""
        latest_arrival = (
            select(
                OutcomeEvent.owner,
                OutcomeEvent.patient_key,
                func.max(OutcomeEvent.received_at).label("arrived"),
            )
            .group_by(col(OutcomeEvent.owner), col(OutcomeEvent.patient_key))
            .subquery()
        )
        query = (
            select(PredictionRecord)
            .outerjoin(
                latest_arrival,
                (latest_arrival.c.patient_key == PredictionRecord.patient_key)
                & col(latest_arrival.c.owner).in_([PredictionRecord.owner, ""]),
            )
            .where(
                or_(
                    col(PredictionRecord.labelled_at).is_(None),
                    latest_arrival.c.arrived > PredictionRecord.labelled_at,
                )
            )
        )
        with Session(self.engine) as session:
            # A prediction joins its client's arrivals and the operator's: at most twice.
            found = {p.id: p for p in session.exec(query)}
        return [
            p for p in found.values() if p.prediction_time + timedelta(days=p.horizon_days) <= now
        ]

    def set_labels(self, labels: Mapping[int, int]) -> None:
        """Store labels, stamped with the wall-clock time (compared with outcomes' arrival)."""
        if not labels:
            return
        now = utcnow()
        with self.engine.begin() as connection:
            for prediction_id, label in labels.items():
                connection.execute(
                    update(PredictionRecord)
                    .where(col(PredictionRecord.id) == prediction_id)
                    .values(label=label, labelled_at=now)
                )

    def record_decision(self, decision: ModelDecision) -> None:
        with Session(self.engine) as session:
            session.add(decision)
            session.commit()

    def decisions(self, model_name: str) -> list[ModelDecision]:
        """Decisions about a model, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(ModelDecision)
                .where(ModelDecision.model_name == model_name)
                .order_by(col(ModelDecision.id))
            )
            return list(session.exec(query))

    def latest_feedback(self, card_uuids: Sequence[str]) -> dict[str, str]:
        """The latest feedback outcome (accepted, overridden) per card we issued."""
        return {uuid: outcome for uuid, (outcome, _) in self.feedback_actions(card_uuids).items()}

    def feedback_actions(self, card_uuids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """The latest feedback outcome per card we issued, with when the clinician acted."""
        if not card_uuids:
            return {}
        query = (
            select(
                FeedbackRecord.issued_card_uuid,
                FeedbackRecord.outcome,
                FeedbackRecord.outcome_timestamp,
            )
            .where(col(FeedbackRecord.issued_card_uuid).in_(card_uuids))
            .order_by(col(FeedbackRecord.outcome_timestamp))
        )
        with Session(self.engine) as session:
            return {uuid: (outcome, when) for uuid, outcome, when in session.exec(query) if uuid}

    def accepted_invocations(self, invocation_ids: Sequence[int]) -> set[int]:
        """The calls of which at least one card was accepted (any rule or model)."""
        if not invocation_ids:
            return set()
        query = (
            select(IssuedCard.invocation_id)
            .join(FeedbackRecord, col(FeedbackRecord.issued_card_uuid) == col(IssuedCard.uuid))
            .where(col(IssuedCard.invocation_id).in_(invocation_ids))
            .where(FeedbackRecord.outcome == "accepted")
        )
        with Session(self.engine) as session:
            return set(session.exec(query))

    def start_experiment(self, experiment: Experiment) -> None:
        """Record an experiment as active; raises ValueError if that id was used before."""
        with Session(self.engine) as session:
            if session.get(Experiment, experiment.id) is not None:
                raise ValueError(f"experiment {experiment.id} exists; ids are never reused")
            session.add(experiment)
            session.commit()

    def stop_experiment(self, experiment_id: str, reason: str) -> bool:
        with Session(self.engine) as session:
            found = session.get(Experiment, experiment_id)
            if found is None or found.status != "active":
                return False
            found.status, found.stopped_at, found.stop_reason = "stopped", utcnow(), reason
            session.add(found)
            session.commit()
            return True

    def experiments(self, active_only: bool = False) -> list[Experiment]:
        query = select(Experiment).order_by(col(Experiment.started_at))
        if active_only:
            query = query.where(Experiment.status == "active")
        with Session(self.engine) as session:
            return list(session.exec(query))

    def experiment(self, experiment_id: str) -> Experiment | None:
        with Session(self.engine) as session:
            return session.get(Experiment, experiment_id)

    def assignments(self, experiment_id: str) -> list[ExperimentAssignment]:
        """Every card produced under the experiment, oldest first."""
        query = (
            select(ExperimentAssignment)
            .where(ExperimentAssignment.experiment_id == experiment_id)
            .order_by(col(ExperimentAssignment.id))
        )
        with Session(self.engine) as session:
            return list(session.exec(query))

    def start_shadow(self, run: ShadowRun) -> None:
        """Record a shadow run as active; raises ValueError if that id was used before."""
        with Session(self.engine, expire_on_commit=False) as session:
            if session.get(ShadowRun, run.id) is not None:
                raise ValueError(f"shadow run {run.id} exists; ids are never reused")
            session.add(run)
            session.commit()

    def stop_shadow(self, shadow_id: str) -> bool:
        with Session(self.engine) as session:
            found = session.get(ShadowRun, shadow_id)
            if found is None or found.status != "active":
                return False
            found.status, found.stopped_at = "stopped", utcnow()
            session.add(found)
            session.commit()
            return True

    def shadow_runs(self, active_only: bool = False) -> list[ShadowRun]:
        query = select(ShadowRun).order_by(col(ShadowRun.started_at))
        if active_only:
            query = query.where(ShadowRun.status == "active")
        with Session(self.engine) as session:
            return list(session.exec(query))

    def shadow_comparisons(
        self, shadow_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[ShadowComparisonRecord]:
        query = select(ShadowComparisonRecord).where(ShadowComparisonRecord.shadow_id == shadow_id)
        if since is not None:
            query = query.where(col(ShadowComparisonRecord.compared_at) >= since)
        if until is not None:
            query = query.where(col(ShadowComparisonRecord.compared_at) < until)
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(col(ShadowComparisonRecord.id))))

    def add_proposal(self, proposal: ChangeProposal) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(proposal)
            session.commit()
            assert proposal.id is not None
            return proposal.id

    def proposal(self, proposal_id: int) -> ChangeProposal | None:
        with Session(self.engine) as session:
            return session.get(ChangeProposal, proposal_id)

    def proposals(self, rule_id: str | None = None) -> list[ChangeProposal]:
        query = select(ChangeProposal).order_by(col(ChangeProposal.id))
        if rule_id is not None:
            query = query.where(ChangeProposal.rule_id == rule_id)
        with Session(self.engine) as session:
            return list(session.exec(query))

    def decide_proposal(
        self, proposal_id: int, status: str, reviewed_by: str, note: str
    ) -> ChangeProposal:
        """Record a review; ValueError unless the proposal is still waiting for one."""
        with Session(self.engine, expire_on_commit=False) as session:
            found = session.get(ChangeProposal, proposal_id)
            if found is None:
                raise ValueError(f"no proposal {proposal_id}")
            if found.status != "proposed":
                raise ValueError(f"proposal {proposal_id} was {found.status} already")
            found.status, found.reviewed_by, found.review_note = status, reviewed_by, note
            found.reviewed_at = utcnow()
            session.add(found)
            session.commit()
            return found

    def labelled_predictions(self, model_name: str) -> list[PredictionRecord]:
        with Session(self.engine) as session:
            query = select(PredictionRecord).where(
                PredictionRecord.model_name == model_name,
                col(PredictionRecord.label).is_not(None),
            )
            return list(session.exec(query.order_by(col(PredictionRecord.prediction_time))))

    def card_feedback_rows(
        self,
        since: datetime,
        until: datetime,
        rule_id: str | None = None,
        *,
        owner: str | None = None,
    ) -> list[CardRow]:
        """Every card shown in [since, until) (of one rule, to one owner, if given) with its
        call's hook and user and its latest feedback.

        Only the columns the rows need are read (never the stored card or its inputs), and
        the feedback of the whole window comes in one query: analytics windows hold tens of
        thousands of cards.
        """
        window = [col(IssuedCard.created_at) >= since, col(IssuedCard.created_at) < until]
        if rule_id is not None:
            window.append(IssuedCard.rule_id == rule_id)
        if owner is not None:
            window.append(IssuedCard.owner == owner)
        cards = (
            select(
                IssuedCard.uuid,
                IssuedCard.rule_id,
                IssuedCard.rule_version,
                IssuedCard.indicator,
                IssuedCard.created_at,
                IssuedCard.patient_key,
                IssuedCard.owner,
                Invocation.hook,
                Invocation.user_reference,
            )
            .join(Invocation, col(Invocation.id) == col(IssuedCard.invocation_id))
            .where(*window)
        )
        answers = (
            select(
                FeedbackRecord.issued_card_uuid,
                FeedbackRecord.outcome,
                FeedbackRecord.override_reason_display,
                FeedbackRecord.override_reason_code,
                FeedbackRecord.outcome_timestamp,
                FeedbackRecord.user_comment,
            )
            .join(IssuedCard, col(IssuedCard.uuid) == col(FeedbackRecord.issued_card_uuid))
            .where(*window)
            .order_by(col(FeedbackRecord.outcome_timestamp))
        )
        with Session(self.engine) as session:
            shown = session.exec(cards).all()
            latest = {answer[0]: answer for answer in session.exec(answers)}  # the last one wins
        rows = []
        for uuid, rule, version, indicator, created_at, patient, card_owner, hook, user in shown:
            answer = latest.get(uuid)
            rows.append(
                CardRow(
                    rule_id=rule,
                    rule_version=version,
                    hook=hook,
                    indicator=indicator,
                    user_role=user_role(user),
                    shown_at=created_at,
                    outcome=answer[1] if answer else None,
                    override_reason=(answer[2] or answer[3]) if answer else None,
                    answered_at=answer[4] if answer else None,
                    override_code=answer[3] if answer else None,
                    comment=answer[5] if answer else None,
                    patient_key=patient,
                    owner=card_owner,
                )
            )
        return rows

    def card_tallies(
        self, since: datetime, until: datetime, *, owner: str | None = None
    ) -> list[CardTally]:
        """The cards shown in [since, until) (to one owner, if given), counted in the database
        by rule version, hook, user, day and latest feedback; the time to action is read only
        for the answered ones."""
        window = [col(IssuedCard.created_at) >= since, col(IssuedCard.created_at) < until]
        if owner is not None:
            window.append(IssuedCard.owner == owner)
        ranked = (
            select(
                col(FeedbackRecord.issued_card_uuid).label("card"),
                col(FeedbackRecord.outcome).label("outcome"),
                func.coalesce(
                    FeedbackRecord.override_reason_display, FeedbackRecord.override_reason_code
                ).label("reason"),
                col(FeedbackRecord.outcome_timestamp).label("answered_at"),
                func.row_number()
                .over(
                    partition_by=FeedbackRecord.issued_card_uuid,
                    order_by=(
                        col(FeedbackRecord.outcome_timestamp).desc(),
                        col(FeedbackRecord.id).desc(),
                    ),
                )
                .label("rank"),
            )
            .join(IssuedCard, col(IssuedCard.uuid) == col(FeedbackRecord.issued_card_uuid))
            .where(*window)
            .subquery()
        )
        day = self._utc_day(IssuedCard.created_at)
        kind = (
            IssuedCard.rule_id,
            IssuedCard.rule_version,
            Invocation.hook,
            Invocation.user_reference,
            day,
            ranked.c.outcome,
            ranked.c.reason,
        )
        shown = (
            select(*kind, func.count())
            .join(Invocation, col(Invocation.id) == col(IssuedCard.invocation_id))
            .outerjoin(ranked, (ranked.c.card == col(IssuedCard.uuid)) & (ranked.c.rank == 1))
            .where(*window)
            .group_by(*kind)
        )
        seconds = self._seconds_between(IssuedCard.created_at, ranked.c.answered_at)
        # The histogram bin of evaluation.feedback_analytics.delay_bin, as a CASE (portable:
        # SQLite need not have log()).
        delay_bin = case(
            *((seconds < edge, index) for index, edge in enumerate(DELAY_BIN_EDGES)),
            else_=len(DELAY_BIN_EDGES),
        ).label("bin")
        answered = (
            select(*kind, delay_bin, func.count())
            .join(Invocation, col(Invocation.id) == col(IssuedCard.invocation_id))
            .join(ranked, (ranked.c.card == col(IssuedCard.uuid)) & (ranked.c.rank == 1))
            .where(*window)
            .group_by(*kind, delay_bin)
        )
        with Session(self.engine) as session:
            counted = session.exec(shown).all()
            delays: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
            for *key, index, cards in session.exec(answered):
                delays[tuple(key)].append((int(index), int(cards)))
        return [
            CardTally(
                rule,
                version,
                hook,
                user_role(user),
                date.fromisoformat(str(day_)),
                outcome,
                reason,
                count,
                tuple(sorted(delays.get((rule, version, hook, user, day_, outcome, reason), ()))),
            )
            for rule, version, hook, user, day_, outcome, reason, count in counted
        ]

    def _utc_day(self, moment: Any) -> Any:
        """The UTC calendar day of a timestamp column, in SQL."""
        if self.engine.dialect.name == "postgresql":
            return func.date(func.timezone("UTC", moment))
        return func.date(moment)  # SQLite keeps UTC timestamps as text

    def _seconds_between(self, start: Any, end: Any) -> Any:
        if self.engine.dialect.name == "postgresql":
            return func.extract("epoch", end - start)
        return (func.julianday(end) - func.julianday(start)) * 86400.0

    def cards_per_call(
        self, since: datetime, until: datetime, *, owner: str | None = None
    ) -> dict[str, float]:
        """The mean number of cards returned by the answered calls in [since, until) (of one
        owner, if given), per hook (alert burden; calls without a card count as 0)."""
        query = (
            select(Invocation.hook, func.avg(Invocation.card_count))
            .where(
                col(Invocation.received_at) >= since,
                col(Invocation.received_at) < until,
                col(Invocation.status_code) == 200,
            )
            .group_by(Invocation.hook)
        )
        if owner is not None:
            query = query.where(Invocation.owner == owner)
        with Session(self.engine) as session:
            return {hook: float(mean) for hook, mean in session.exec(query)}

    def prediction_for_card(self, card_uuid: str) -> PredictionRecord | None:
        with Session(self.engine) as session:
            query = select(PredictionRecord).where(PredictionRecord.card_uuid == card_uuid)
            return session.exec(query).first()

    def cards_for_invocation(self, invocation_id: int) -> list[IssuedCard]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(IssuedCard).where(IssuedCard.invocation_id == invocation_id))
            )

    def card(self, card_uuid: str) -> IssuedCard | None:
        with Session(self.engine) as session:
            return session.get(IssuedCard, card_uuid)

    def feedback_for_card(self, card_uuid: str) -> list[FeedbackRecord]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(FeedbackRecord).where(FeedbackRecord.card_uuid == card_uuid))
            )

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {
                table.__tablename__: session.exec(select(func.count()).select_from(table)).one()  # type: ignore[attr-defined]
                for table in (Invocation, IssuedCard, FeedbackRecord)
            }
