"""The schema of a rule artifact: one YAML file per rule under knowledge/rules/.

Thresholds and wording live here, as reviewed data with citations and a change log;
the code a rule names only decides *whether* a finding applies and with what values.
The schema is checked at load, so a malformed artifact stops start-up instead of
producing malformed cards.
"""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_FORMATTER = string.Formatter()
_RECORD_RESOURCE_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Immunization",
        "Procedure",
        "AllergyIntolerance",
        "Encounter",
    }
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(StrictModel):
    title: str
    publisher: str
    year: int = Field(ge=1900, le=2100)
    url: AnyUrl
    evidence_grade: str | None = None


class CardTemplate(StrictModel):
    """Wording of one kind of card; ``{name}`` fields are filled from the finding's values."""

    indicator: Literal["info", "warning", "critical"]
    summary: str = Field(max_length=139)
    detail: str
    requires_complete: list[str] = Field(
        default_factory=list,
        description="FHIR resource types whose absence the card asserts (e.g. 'no HbA1c on "
        "record' needs every Observation): when one could not be fetched the card is not shown "
        "and the check is reported as not done",
    )

    @field_validator("requires_complete")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        unknown = set(types) - _RECORD_RESOURCE_TYPES
        if unknown:
            raise ValueError(f"unknown resource types {sorted(unknown)}")
        return types

    def fields(self) -> set[str]:
        return {
            name
            for text in (self.summary, self.detail)
            for _, name, _, _ in _FORMATTER.parse(text)
            if name
        }


class ThresholdBounds(StrictModel):
    """How far a site may move a threshold from the artifact's value (inclusive)."""

    min: float
    max: float


class ChangeEntry(StrictModel):
    date: date
    version: str
    change: str
    reason: str


class RuleArtifact(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    status: Literal["draft", "active", "retired"]
    hooks: list[Literal["patient-view", "order-select", "order-sign", "encounter-discharge"]]
    logic: str = Field(
        description="name of the function in knowledge.logic that evaluates this rule"
    )
    author: str
    reviewer: str
    citations: list[Citation] = Field(min_length=1)
    value_sets: list[str] = Field(default_factory=list)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    site_overridable: dict[str, ThresholdBounds] = Field(
        default_factory=dict,
        description="Thresholds a site may change (lhs knowledge configure), within these bounds",
    )
    cards: dict[str, CardTemplate] = Field(min_length=1)
    suggestion_labels: dict[str, str] = Field(default_factory=dict)
    changelog: list[ChangeEntry] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError("version must be MAJOR.MINOR.PATCH")
        return value

    @model_validator(mode="after")
    def _changelog_has_current_version(self) -> RuleArtifact:
        if self.version not in {entry.version for entry in self.changelog}:
            raise ValueError(f"changelog has no entry for version {self.version}")
        return self

    @model_validator(mode="after")
    def _overridable_thresholds_exist_within_bounds(self) -> RuleArtifact:
        for name, bounds in self.site_overridable.items():
            value = self.thresholds.get(name)
            if not isinstance(value, int | float) or not bounds.min <= value <= bounds.max:
                raise ValueError(
                    f"site_overridable {name!r} must be a numeric threshold within its bounds"
                )
        return self

    @property
    def can_be_critical(self) -> bool:
        return any(card.indicator == "critical" for card in self.cards.values())

    @property
    def primary_citation(self) -> Citation:
        return self.citations[0]


def load_artifact(path: Path) -> RuleArtifact:
    """Parse and validate one artifact; errors name the file."""
    with path.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    try:
        return RuleArtifact.model_validate(raw)
    except ValueError as error:
        raise ValueError(f"invalid rule artifact {path.name}: {error}") from error
