"""CDS Hooks 2.0 wire models: requests, responses (cards) and feedback.

Field names and optionality follow the HL7 CDS Hooks 2.0 specification
(https://cds-hooks.hl7.org/2.0/). Request models accept unknown members
(the spec's ``extension`` mechanism and forward compatibility); response
models forbid them so that we never emit anything outside the spec.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class _Response(BaseModel):
    """Base for what we emit: strict, and serialised without unset optional members."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Request(BaseModel):
    """Base for what clients send: unknown members are tolerated and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- shared ------------------------------------------------------------------------------


class Coding(_Response):
    system: str | None = None
    code: NonEmptyStr
    display: str | None = None


class ClientCoding(_Request):
    """A Coding as a client sends it (override reasons in feedback)."""

    system: str | None = None
    code: NonEmptyStr
    display: str | None = None


# --- discovery -----------------------------------------------------------------------------


class ServiceDescription(_Response):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class DiscoveryResponse(_Response):
    services: list[ServiceDescription]


# --- request -------------------------------------------------------------------------------


class FhirAuthorization(_Request):
    access_token: NonEmptyStr
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: NonEmptyStr
    subject: NonEmptyStr
    patient: str | None = None


class HookRequest(_Request):
    """The body of ``POST /cds-services/{id}``. ``context`` is validated per hook in hooks/."""

    hook: NonEmptyStr
    hookInstance: uuid.UUID
    fhirServer: AnyUrl | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    # Values are FHIR resources or null; anything else (the spec example has a bare string)
    # is kept and treated as not usable, so the service fetches that key itself.
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> HookRequest:
        # Spec: fhirServer is CONDITIONAL, required whenever fhirAuthorization is present.
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self


# --- response ------------------------------------------------------------------------------

Indicator = Literal["info", "warning", "critical"]
INDICATOR_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


class Source(_Response):
    label: NonEmptyStr
    url: AnyUrl | None = None
    icon: AnyUrl | None = None
    topic: Coding | None = None


class Action(_Response):
    type: Literal["create", "update", "delete"]
    description: NonEmptyStr
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _target_present(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resourceId:
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(_Response):
    label: NonEmptyStr
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Response):
    label: NonEmptyStr
    url: AnyUrl
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid for smart links")
        return self


class Card(_Response):
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        return self

    @field_validator("overrideReasons")
    @classmethod
    def _override_reasons_have_display(cls, reasons: list[Coding] | None) -> list[Coding] | None:
        if reasons and any(not r.display for r in reasons):
            raise ValueError("every override reason needs a display")
        return reasons


class CDSResponse(_Response):
    cards: list[Card]
    systemActions: list[Action] | None = None


# --- feedback ------------------------------------------------------------------------------


class AcceptedSuggestion(_Request):
    id: NonEmptyStr


class OverrideReason(_Request):
    reason: ClientCoding | None = None
    userComment: str | None = None


class FeedbackItem(_Request):
    card: NonEmptyStr
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required for accepted outcomes")
        return self


class OutcomeBundle(_Request):
    """A FHIR Bundle of outcome resources; entries are validated one by one (see outcomes.py)."""

    resourceType: Literal["Bundle"]
    type: str
    entry: list[Any] = []


class OutcomeResponse(BaseModel):
    stored: int
    updated: int
    """Resources sent before whose content changed (corrections): the new version replaced them."""
    duplicates: int
    notifications: int
    """Subscription status entries acknowledged."""
    withoutResource: int
    """Entries that only reference a resource (id-only notifications); `lhs sync` fetches them."""


# A clinician answers a handful of cards per call; EHRs that batch feedback send tens.
MAX_FEEDBACK_ITEMS = 500


class FeedbackRequest(_Request):
    # Items are validated one by one (FeedbackItem) so that a malformed item is named
    # and rejected without losing the valid items sent with it.
    feedback: list[Any] = Field(
        max_length=MAX_FEEDBACK_ITEMS,
        description=f"Feedback items (at most {MAX_FEEDBACK_ITEMS} per request).",
    )
