"""Tables of the store. Patients appear only as keyed pseudonyms, never by their ids.

Timestamps are timezone-aware UTC on both SQLite (which keeps no zone: ``UTCDateTime``
restores it on load) and PostgreSQL (``timestamptz``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc_column(index: bool = False) -> Any:
    return Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index)
    )


def _json_column() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Invocation(SQLModel, table=True):
    """One call of a CDS service (answered or answered with 412)."""

    id: int | None = Field(default=None, primary_key=True)
    hook_instance: str = Field(index=True, max_length=64)
    service_id: str = Field(index=True, max_length=128)
    hook: str = Field(max_length=64)
    patient_key: str = Field(index=True, max_length=64)
    user_reference: str | None = Field(default=None, max_length=256)
    fhir_server: str | None = Field(default=None, max_length=2048)
    received_at: datetime = _utc_column(index=True)
    duration_ms: float = 0.0
    status_code: int
    card_count: int = 0
    prefetch_provided: list[str] = _json_column()
    prefetch_fetched: list[str] = _json_column()
    prefetch_unavailable: list[str] = _json_column()
    records_skipped: int = 0
    owner: str = Field(default="", index=True, max_length=512)
    """The CDS client that made the call (``iss``, with ``#tenant`` when the client has tenants);
    "" when authentication is off."""


class IssuedCard(SQLModel, table=True):
    """A card as sent, with the rule (and version) that produced it."""

    __tablename__ = "issued_card"

    uuid: str = Field(primary_key=True, max_length=64)
    invocation_id: int = Field(foreign_key="invocation.id", index=True)
    service_id: str = Field(max_length=128)
    rule_id: str = Field(index=True, max_length=128)
    rule_version: str = Field(max_length=32)
    indicator: str = Field(max_length=16)
    summary: str = Field(max_length=256)
    card: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    suggestion_uuids: list[str] = _json_column()
    created_at: datetime = _utc_column(index=True)
    patient_key: str = Field(default="", index=True, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    """The patient values that triggered the card (for explanation and audit)."""
    fingerprint: str = Field(default="", max_length=64)
    owner: str = Field(default="", index=True, max_length=512)
    """The CDS client that was shown the card (``iss``, with ``#tenant`` when the client has tenants);
    "" when authentication is off."""


class FeedbackRecord(SQLModel, table=True):
    """One feedback item; ``dedupe_key`` makes re-delivery of the same item a no-op."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=64)
    service_id: str = Field(index=True, max_length=128)
    card_uuid: str = Field(index=True, max_length=256)
    issued_card_uuid: str | None = Field(default=None, foreign_key="issued_card.uuid", index=True)
    outcome: str = Field(max_length=16)
    accepted_suggestions: list[str] = _json_column()
    override_reason_system: str | None = Field(default=None, max_length=2048)
    override_reason_code: str | None = Field(default=None, max_length=256)
    override_reason_display: str | None = Field(default=None, max_length=1024)
    user_comment: str | None = None
    outcome_timestamp: datetime = _utc_column()
    received_at: datetime = _utc_column()
    raw: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    owner: str = Field(default="", index=True, max_length=512)
    """The CDS client that sent the feedback (``iss``, with ``#tenant`` when the client has tenants);
    "" when authentication is off."""


class CardOverride(SQLModel, table=True):
    """An override of a card we issued, kept beside its feedback item for the alert-burden
    lookup on the hot path: a patient's overrides of a rule in a time window are one index
    range, however many cards the patient has been shown (derived from feedback and
    issued_card when the item is stored)."""

    __tablename__ = "card_override"
    __table_args__ = (
        Index("ix_card_override_lookup", "owner", "patient_key", "rule_id", "overridden_at"),
    )

    feedback_id: int = Field(primary_key=True, foreign_key="feedback.id")
    owner: str = Field(default="", max_length=512)
    """The client whose clinician overrode the card: repeats are suppressed for it alone."""
    patient_key: str = Field(max_length=64)
    rule_id: str = Field(max_length=128)
    fingerprint: str = Field(max_length=64)
    overridden_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SeenJti(SQLModel, table=True):
    """JWT ids already used by CDS clients, kept until the token expires (replay protection)."""

    __tablename__ = "seen_jti"

    key: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class RuleSetting(SQLModel, table=True):
    """This site's settings of a rule: on or off, thresholds within the artifact's bounds."""

    __tablename__ = "rule_setting"

    rule_id: str = Field(primary_key=True, max_length=128)
    enabled: bool = True
    thresholds: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    suppression_days: int | None = None
    updated_at: datetime = _utc_column()
    updated_by: str = Field(max_length=256)
    reason: str


class RuleSettingChange(SQLModel, table=True):
    """Audit trail: every change of a rule setting, who made it and why."""

    __tablename__ = "rule_setting_change"

    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(index=True, max_length=128)
    changed_at: datetime = _utc_column()
    changed_by: str = Field(max_length=256)
    reason: str
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PredictionRecord(SQLModel, table=True):
    """A model's prediction at a hook call, with the exact feature vector it was computed from.

    Stored whether or not a card was shown, for audit and for retraining on outcomes.
    """

    __tablename__ = "prediction"

    id: int | None = Field(default=None, primary_key=True)
    invocation_id: int = Field(foreign_key="invocation.id", index=True)
    service_id: str = Field(max_length=128)
    patient_key: str = Field(index=True, max_length=64)
    model_name: str = Field(index=True, max_length=128)
    model_version: str = Field(max_length=32)
    risk: float
    threshold: float | None = None
    features: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contributions: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    card_uuid: str | None = Field(default=None, max_length=64)
    predicted_at: datetime = _utc_column(index=True)
    prediction_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    """The clinical moment the features describe (the discharge), from which the outcome
    window runs; differs from ``predicted_at`` when historical data are replayed."""
    horizon_days: int = 30
    sex: str | None = Field(default=None, max_length=32)
    """The patient's administrative gender, race and ethnicity (US Core OMB categories) at the
    call: for fairness audits of the served model, never one of its features."""
    race: str | None = Field(default=None, max_length=64)
    ethnicity: str | None = Field(default=None, max_length=64)
    label: int | None = None
    """1 if the outcome happened within the window, 0 if not; None while the window is open."""
    labelled_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    owner: str = Field(default="", index=True, max_length=512)
    """The CDS client that made the call predicted on (``iss``, with ``#tenant`` when the client has tenants);
    "" when authentication is off."""


class OutcomeEvent(SQLModel, table=True):
    """A clinical event fed in after the fact (outcomes endpoint or ``lhs sync``), minimised.

    ``resource_key`` (a keyed hash of the sending client, the FHIR server and the resource
    id) makes a re-sent resource replace its earlier version, and only the client's own;
    nothing here identifies the patient.
    """

    __tablename__ = "outcome_event"

    id: int | None = Field(default=None, primary_key=True)
    resource_key: str = Field(unique=True, max_length=64)
    patient_key: str = Field(index=True, max_length=64)
    resource_type: str = Field(max_length=32)
    status: str = Field(default="", max_length=64)
    class_code: str | None = Field(default=None, max_length=32)
    codes: list[str] = _json_column()
    started_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    value: float | None = None
    unit: str | None = Field(default=None, max_length=64)
    content_hash: str = Field(max_length=64)
    received_at: datetime = _utc_column(index=True)
    value_codes: list[str] = _json_column()
    """A coded Observation value (``system|code``), e.g. a test's Detected."""
    area: str | None = Field(default=None, max_length=16)
    """Patient rows: the coarse area of residence (HIPAA Safe Harbor ZIP3)."""
    birth_year: int | None = None
    """Patient rows: the year of birth."""
    owner: str = Field(default="", index=True, max_length=512)
    """The CDS client that fed the outcome in (``iss``, with ``#tenant`` when the client has tenants);
    "" when authentication is off."""


class ModelDecision(SQLModel, table=True):
    """Each change, or refusal to change, of the model a service uses, with its reasons."""

    __tablename__ = "model_decision"

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=128)
    decision: str = Field(max_length=32)
    """promoted, rejected, awaiting-approval, approved, manual or rolled-back."""
    champion_version: str | None = Field(default=None, max_length=32)
    """The champion before the decision."""
    challenger_version: str | None = Field(default=None, max_length=32)
    """The version the decision is about (the new champion if it moved)."""
    reasons: list[str] = _json_column()
    mlflow_run_id: str | None = Field(default=None, max_length=64)
    decided_by: str = Field(max_length=256)
    decided_at: datetime = _utc_column(index=True)


class Experiment(SQLModel, table=True):
    """An experiment as started (its reviewed definition), and when and why it stopped."""

    id: str = Field(primary_key=True, max_length=128)
    rule_id: str = Field(index=True, max_length=128)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    """active or stopped."""
    started_by: str = Field(max_length=256)
    started_at: datetime = _utc_column()
    stopped_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    stop_reason: str | None = None


class ExperimentAssignment(SQLModel, table=True):
    """A card produced under an experiment arm, shown or withheld (holdout), per invocation."""

    __tablename__ = "experiment_assignment"

    id: int | None = Field(default=None, primary_key=True)
    invocation_id: int = Field(foreign_key="invocation.id", index=True)
    experiment_id: str = Field(index=True, max_length=128)
    arm: str = Field(max_length=64)
    patient_key: str = Field(index=True, max_length=64)
    rule_id: str = Field(max_length=128)
    rule_version: str = Field(max_length=32)
    card_uuid: str = Field(index=True, max_length=64)
    shown: bool
    card: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    index_time: datetime = _utc_column()
    """The clinical moment of the call (a discharge's end): the experiment's outcome window
    counts from it."""
    assigned_at: datetime = _utc_column(index=True)


class ShadowRun(SQLModel, table=True):
    """A candidate run in shadow mode: what it is, who started it, when it stopped."""

    __tablename__ = "shadow_run"

    id: str = Field(primary_key=True, max_length=128)
    kind: str = Field(max_length=16)
    """rule or model."""
    subject: str = Field(index=True, max_length=128)
    """The live rule or registered model it is compared with."""
    candidate_version: str = Field(max_length=32)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    started_by: str = Field(max_length=256)
    started_at: datetime = _utc_column()
    stopped_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class ShadowComparisonRecord(SQLModel, table=True):
    """Per call: what the live side and the shadow candidate produced."""

    __tablename__ = "shadow_comparison"

    id: int | None = Field(default=None, primary_key=True)
    invocation_id: int = Field(foreign_key="invocation.id", index=True)
    shadow_id: str = Field(index=True, max_length=128)
    patient_key: str = Field(max_length=64)
    live_version: str = Field(max_length=32)
    candidate_version: str = Field(max_length=32)
    agreement: str = Field(max_length=16)
    changed: bool
    live: list[Any] = _json_column()
    """The live side's cards (indicator and summary)."""
    shadow: list[Any] = _json_column()
    """The cards the candidate would have shown, whole."""
    compared_at: datetime = _utc_column(index=True)


class ChangeProposal(SQLModel, table=True):
    """A proposed new version of a rule, why and on what evidence, and its review."""

    __tablename__ = "change_proposal"

    id: int | None = Field(default=None, primary_key=True)
    rule_id: str = Field(index=True, max_length=128)
    from_version: str = Field(max_length=32)
    """The version it changes ("" for a new rule)."""
    to_version: str = Field(max_length=32)
    artifact_text: str
    """The proposed artifact, verbatim (it becomes the rule's file on approval)."""
    rationale: str
    source: str = Field(max_length=256)
    """What prompted it: clinician-comment, override-pattern, experiment:ID, shadow:ID, ..."""
    evidence: str = ""
    proposed_by: str = Field(max_length=256)
    proposed_at: datetime = _utc_column()
    status: str = Field(max_length=16)
    """proposed, approved or rejected."""
    reviewed_by: str | None = Field(default=None, max_length=256)
    review_note: str | None = None
    reviewed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class SurveillanceSignal(SQLModel, table=True):
    """A detected exceedance: more cases of a syndrome in an area on a day than its baseline
    explains, by one method."""

    __tablename__ = "surveillance_signal"
    __table_args__ = (UniqueConstraint("syndrome", "area", "day", "method"),)

    id: int | None = Field(default=None, primary_key=True)
    syndrome: str = Field(index=True, max_length=64)
    area: str = Field(index=True, max_length=16)
    day: date = Field(index=True)
    method: str = Field(max_length=32)
    observed: float
    expected: float
    threshold: float
    strength: float
    """The method's statistic (EARS: standard deviations above the baseline)."""
    raised_at: datetime = _utc_column()


class SyndromeCase(SQLModel, table=True):
    """A feed resource that is a case of a syndrome (a matching diagnosis or positive test),
    on its clinical day. Derived from ``outcome_event`` by the detection runs, which classify
    only what arrived since the previous run; the patient's area and age come from their
    Patient resource when counted, so a Patient that arrives later still places the case."""

    __tablename__ = "syndrome_case"
    __table_args__ = (
        UniqueConstraint("resource_key", "syndrome"),
        Index("ix_syndrome_case_syndrome_day", "syndrome", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    resource_key: str = Field(max_length=64)
    syndrome: str = Field(max_length=64)
    patient_key: str = Field(index=True, max_length=64)
    day: date


class SurveillanceRun(SQLModel, table=True):
    """One detection run: up to which moment of arrival the feed was classified, with which
    syndrome definitions, and how much it looked at (the next run starts from here)."""

    __tablename__ = "surveillance_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _utc_column()
    """Feed rows that arrived before this (less a safety overlap) were classified."""
    through_day: date
    definitions: str = Field(max_length=64)
    """sha256 of the syndrome definitions used; a change reclassifies the whole feed."""
    incremental: bool
    classified: int
    series: int
    signals: int
