"""Randomized experiments on a rule: arms with other wording or thresholds, and holdouts.

An experiment is reviewed data, like a rule: which rule it varies, the arms and their
shares, the hypothesis, the primary metric and the sample size fixed in advance. Each
patient is assigned to an arm by a stable hash of the experiment id and the patient's
keyed pseudonym, so the same patient sees the same arm on every call and in every process,
and nothing identifying enters the hash. A holdout arm evaluates the rule but withholds its
card (logged, not shown); critical cards are never withheld, and an experiment may not hold
out a rule that can produce them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from knowledge.artifact import Citation, RuleArtifact, StrictModel
from knowledge.rule import Advice, ArmAssignment, EvaluationContext, Rule

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"


class CardWording(StrictModel):
    """Another wording of one of the rule's card templates (same fields, same indicator)."""

    summary: str | None = Field(default=None, max_length=139)
    detail: str | None = None


class Arm(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    share: float = Field(gt=0, le=1)
    description: str
    holdout: bool = False
    cards: dict[str, CardWording] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)


class Design(StrictModel):
    primary_metric: Literal["acceptance", "outcome"]
    baseline_rate: float = Field(gt=0, lt=1)
    """Expected rate of the primary metric in the control arm (for the sample size)."""
    min_detectable_difference: float = Field(gt=0, lt=1)
    """Also the spread (tau) of the mSPRT mixture: the size of effect worth finding."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)


class Outcome(StrictModel):
    name: str
    encounter_classes: list[str] = Field(min_length=1)
    within_days: int = Field(gt=0, le=365)


class ExperimentDefinition(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    rule: str
    hypothesis: str
    owner: str
    control: str
    arms: list[Arm] = Field(min_length=2)
    design: Design
    outcome: Outcome | None = None
    citations: list[Citation] = Field(min_length=1)

    @model_validator(mode="after")
    def _arms_are_consistent(self) -> ExperimentDefinition:
        ids = [arm.id for arm in self.arms]
        if len(set(ids)) != len(ids):
            raise ValueError("arm ids must be unique")
        if abs(sum(arm.share for arm in self.arms) - 1) > 1e-9:
            raise ValueError("arm shares must add up to 1")
        control = self.arm(self.control)
        if control is None or control.holdout:
            raise ValueError("control must name an arm that shows the rule's cards")
        if self.design.primary_metric == "outcome" and self.outcome is None:
            raise ValueError("an outcome experiment must define its outcome")
        return self

    def arm(self, arm_id: str) -> Arm | None:
        return next((arm for arm in self.arms if arm.id == arm_id), None)

    def assign(self, subject_key: str) -> Arm:
        """The patient's arm: a uniform number from the hash, cut at the cumulative shares."""
        digest = hashlib.sha256(f"{self.id}\x1f{subject_key}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        cumulative = 0.0
        for arm in self.arms:
            cumulative += arm.share
            if position < cumulative:
                return arm
        return self.arms[-1]

    def check_against(self, artifact: RuleArtifact) -> None:
        """Raise ValueError unless the arms fit the rule they vary."""
        if artifact.id != self.rule:
            raise ValueError(f"experiment {self.id} varies {self.rule}, not {artifact.id}")
        for arm in self.arms:  # the safety check first
            if arm.holdout and artifact.can_be_critical:
                raise ValueError(
                    f"arm {arm.id} holds out {artifact.id}, which can show critical cards"
                )
        for arm in self.arms:
            for name, wording in arm.cards.items():
                template = artifact.cards.get(name)
                if template is None:
                    raise ValueError(f"arm {arm.id}: {artifact.id} has no card {name!r}")
                extra = (
                    template.model_copy(update=wording.model_dump(exclude_none=True)).fields()
                    - template.fields()
                )
                if extra:
                    raise ValueError(
                        f"arm {arm.id}: card {name!r} uses values the rule does not provide: "
                        + ", ".join(sorted(extra))
                    )
            unknown = set(arm.thresholds) - set(artifact.thresholds)
            if unknown:
                raise ValueError(f"arm {arm.id}: unknown thresholds {', '.join(sorted(unknown))}")

    def variant(self, arm: Arm, artifact: RuleArtifact) -> RuleArtifact:
        """The rule as this arm shows it."""
        cards = {
            name: template.model_copy(update=arm.cards[name].model_dump(exclude_none=True))
            if name in arm.cards
            else template
            for name, template in artifact.cards.items()
        }
        return artifact.model_copy(
            update={"cards": cards, "thresholds": {**artifact.thresholds, **arm.thresholds}}
        )


def load_experiment(path: Path) -> ExperimentDefinition:
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    try:
        return ExperimentDefinition.model_validate(raw)
    except ValueError as error:
        raise ValueError(f"invalid experiment {path.name}: {error}") from error


@dataclass(frozen=True)
class ExperimentalRule:
    """A rule under an experiment: each patient gets their arm's variant of it."""

    definition: ExperimentDefinition
    arms: dict[str, Rule]

    @classmethod
    def of(cls, definition: ExperimentDefinition, rule: Rule) -> ExperimentalRule:
        definition.check_against(rule.artifact)
        return cls(
            definition,
            {
                arm.id: dataclasses.replace(rule, artifact=definition.variant(arm, rule.artifact))
                for arm in definition.arms
            },
        )

    @property
    def control(self) -> Rule:
        return self.arms[self.definition.control]

    @property
    def id(self) -> str:
        return self.control.id

    @property
    def version(self) -> str:
        return self.control.version

    @property
    def hooks(self) -> frozenset[str]:
        return self.control.hooks

    def evaluate(self, ctx: EvaluationContext) -> list[Advice]:
        if ctx.subject_key is None:
            return self.control.evaluate(ctx)  # no patient key (offline sweeps): no assignment
        arm = self.definition.assign(ctx.subject_key)
        assignment = ArmAssignment(self.definition.id, arm.id)
        return [
            dataclasses.replace(
                advice,
                assignment=assignment,
                withheld="holdout" if arm.holdout and advice.card.indicator != "critical" else None,
            )
            for advice in self.arms[arm.id].evaluate(ctx)
        ]
