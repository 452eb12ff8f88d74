"""CDS Hooks 2.0 feedback (https://cds-hooks.hl7.org/2.0/#feedback)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import Field, ValidationError, model_validator

from hooks.wire import NonEmptyStr, WireRequest


class ClientCoding(WireRequest):
    """A Coding as a client sends it (override reasons in feedback)."""

    system: str | None = None
    code: NonEmptyStr
    display: str | None = None


class AcceptedSuggestion(WireRequest):
    id: NonEmptyStr


class OverrideReason(WireRequest):
    reason: ClientCoding | None = None
    userComment: str | None = None


class FeedbackItem(WireRequest):
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


# A clinician answers a handful of cards per call; EHRs that batch feedback send tens.
MAX_FEEDBACK_ITEMS = 500


class FeedbackRequest(WireRequest):
    # Items are validated one by one (FeedbackItem) so that a malformed item is named
    # and rejected without losing the valid items sent with it.
    feedback: list[Any] = Field(
        max_length=MAX_FEEDBACK_ITEMS,
        description=f"Feedback items (at most {MAX_FEEDBACK_ITEMS} per request).",
    )


class ValidatedFeedback(NamedTuple):
    items: list[FeedbackItem]
    raw_items: list[dict[str, Any]]
    """The valid items' JSON as sent."""
    indexes: list[int]
    """Each valid item's position in the request (to name it in answers)."""
    problems: list[dict[str, str]]
    """What is wrong with the others, by field (``feedback.<index>.<field>``)."""


def validate_feedback_items(raw_items: list[Any]) -> ValidatedFeedback:
    """Each item is validated on its own, so that a malformed one is named without losing
    the others."""
    validated = ValidatedFeedback([], [], [], [])
    for index, raw in enumerate(raw_items):
        try:
            validated.items.append(FeedbackItem.model_validate(raw))
        except ValidationError as error:
            validated.problems.extend(
                {
                    "field": ".".join(["feedback", str(index), *(str(p) for p in e["loc"])]),
                    "message": e["msg"],
                }
                for e in error.errors(include_url=False, include_input=False)
            )
            continue
        validated.raw_items.append(raw)
        validated.indexes.append(index)
    return validated
