"""A rule: an artifact (thresholds, wording, citations) plus the pure function it names.

Rules and predictive models share one small interface, ``Recommender``: given the
evaluation context of a hook call, return advice (cards with their provenance).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from fhir_client.record import MedicationEntry, PatientRecord, encounter_entry
from hooks.cards import Card, Coding, Link, Source, Suggestion
from hooks.context import HookContext
from knowledge.artifact import RuleArtifact
from knowledge.signals import ActiveSignal
from knowledge.syndromes import Syndrome
from knowledge.terminology import MedicationIndex, ValueSet

RULE_TOPIC_SYSTEM = "urn:lhs:codesystem:rule"
OVERRIDE_REASON_SYSTEM = "urn:lhs:codesystem:override-reason"

# Offered on every card so that overrides are analysable; the CDS client may add its own.
OVERRIDE_REASONS: tuple[Coding, ...] = (
    Coding(
        system=OVERRIDE_REASON_SYSTEM,
        code="not-applicable",
        display="Not applicable to this patient",
    ),
    Coding(
        system=OVERRIDE_REASON_SYSTEM,
        code="already-addressed",
        display="Already addressed or being managed",
    ),
    Coding(
        system=OVERRIDE_REASON_SYSTEM,
        code="benefit-outweighs-risk",
        display="Benefit outweighs risk",
    ),
    Coding(system=OVERRIDE_REASON_SYSTEM, code="patient-declined", display="Patient declined"),
    Coding(
        system=OVERRIDE_REASON_SYSTEM, code="data-incorrect", display="Record data are incorrect"
    ),
)


@dataclass(frozen=True)
class UncheckedCheck:
    """A rule's card that was not shown because data it relies on could not be fetched."""

    rule_id: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationContext:
    """Everything a rule may look at for one hook call."""

    hook: str
    context: HookContext
    record: PatientRecord
    as_of: datetime
    draft_orders: Sequence[MedicationEntry] = ()
    """Medication orders of this call (draftOrders; for order-select only the selected ones)."""
    service_url: str | None = None
    """This service's external base URL, for links to its own pages (e.g. model cards)."""
    subject_key: str | None = None
    """The patient's keyed pseudonym, for stable randomization in experiments (None offline)."""
    signals: Sequence[ActiveSignal] = ()
    """Outbreak signals active now (population surveillance), for cards about what circulates."""
    unchecked: list[UncheckedCheck] = field(default_factory=list)
    """Checks that could not be completed on this call's data (filled while rules run)."""

    @property
    def index_time(self) -> datetime:
        """The clinical moment the call is about, from which outcome windows count: the end
        of the call's encounter once it has ended (a discharge), else the evaluation time."""
        encounter_id = getattr(self.context, "encounterId", None)
        stay = self.record.resolve(f"Encounter/{encounter_id}") if encounter_id else None
        end = encounter_entry(stay).end if stay is not None else None
        return min(end or self.as_of, self.as_of)


@dataclass(frozen=True)
class ArmAssignment:
    experiment_id: str
    arm: str


@dataclass(frozen=True)
class Advice:
    """A card, the rule (or model) that produced it, and the patient values that triggered it."""

    card: Card
    rule_id: str
    rule_version: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    assignment: ArmAssignment | None = None
    """The experiment arm this card was produced under, if any."""
    withheld: str | None = None
    """Why the card is logged but not shown (an experiment's holdout arm); None: shown."""

    @property
    def fingerprint(self) -> str:
        """Identifies the triggering data: a repeat card after an override is suppressed only
        while this stays the same."""
        canonical = json.dumps([self.rule_id, sorted(self.inputs.items())], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    """What a rule's logic decided: which card template applies, with which values."""

    card: str
    values: Mapping[str, object] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: Literal["at-most-one", "any"] = "at-most-one"
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Knowledge:
    """Terminology shared by all rules."""

    value_sets: Mapping[str, ValueSet]
    medications: MedicationIndex
    syndromes: Mapping[str, Syndrome] = field(default_factory=dict)
    """Syndromes under population surveillance (knowledge/data/syndromes)."""


RuleLogic = Callable[[EvaluationContext, RuleArtifact, Knowledge], list[Finding]]


class Recommender(Protocol):
    id: str
    version: str
    hooks: frozenset[str]

    def evaluate(self, ctx: EvaluationContext) -> list[Advice]: ...


@dataclass(frozen=True)
class Rule:
    artifact: RuleArtifact
    logic: RuleLogic
    knowledge: Knowledge

    @property
    def id(self) -> str:
        return self.artifact.id

    @property
    def version(self) -> str:
        return self.artifact.version

    @property
    def hooks(self) -> frozenset[str]:
        return frozenset(self.artifact.hooks)

    def evaluate(self, ctx: EvaluationContext) -> list[Advice]:
        advice = []
        for finding in self.logic(ctx, self.artifact, self.knowledge):
            needed = self.artifact.cards[finding.card].requires_complete
            missing = tuple(t for t in needed if not ctx.record.is_complete(t))
            if missing:
                # "No HbA1c on record" from a server that timed out would be false.
                ctx.unchecked.append(UncheckedCheck(self.id, missing))
                continue
            advice.append(
                Advice(
                    render_card(self.artifact, finding),
                    self.id,
                    self.version,
                    {key: str(value) for key, value in finding.values.items()},
                )
            )
        return advice


def render_card(artifact: RuleArtifact, finding: Finding) -> Card:
    """Fill the artifact's template for a finding and attach source, citations and provenance."""
    template = artifact.cards[finding.card]
    values = dict(finding.values)
    citations = "\n".join(
        f"- {c.title}. {c.publisher}, {c.year}. <{c.url}>"
        + (f" (evidence: {c.evidence_grade})" if c.evidence_grade else "")
        for c in artifact.citations
    )
    detail = (
        f"{template.detail.format_map(values).rstrip()}\n\n**Evidence**\n{citations}\n\n"
        f"_Rule {artifact.id} v{artifact.version}_"
    )
    primary = artifact.primary_citation
    return Card(
        summary=template.summary.format_map(values),
        detail=detail,
        indicator=template.indicator,
        source=Source(
            label=f"{primary.publisher} {primary.year}",
            url=primary.url,
            topic=Coding(system=RULE_TOPIC_SYSTEM, code=artifact.id, display=artifact.title),
        ),
        suggestions=list(finding.suggestions) or None,
        selectionBehavior=finding.selection_behavior if finding.suggestions else None,
        overrideReasons=list(OVERRIDE_REASONS),
        links=list(finding.links) or None,
    )
