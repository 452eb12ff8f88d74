"""The CDS Hooks 2.0 response: cards, their sources, suggestions, actions and links
(https://cds-hooks.hl7.org/2.0/#cds-service-response).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AnyUrl, Field, StringConstraints, field_validator, model_validator

from hooks.wire import NonEmptyStr, WireResponse

Indicator = Literal["info", "warning", "critical"]
INDICATOR_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


class Coding(WireResponse):
    system: str | None = None
    code: NonEmptyStr
    display: str | None = None


class Source(WireResponse):
    label: NonEmptyStr
    url: AnyUrl | None = None
    icon: AnyUrl | None = None
    topic: Coding | None = None


class Action(WireResponse):
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


class Suggestion(WireResponse):
    label: NonEmptyStr
    uuid: str = Field(default_factory=lambda: str(uuid.uuid4()))
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(WireResponse):
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


class Card(WireResponse):
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


class CDSResponse(WireResponse):
    cards: list[Card]
    systemActions: list[Action] | None = None
