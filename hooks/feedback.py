"""CDS Hooks 2.0 feedback (https://cds-hooks.hl7.org/2.0/#feedback)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


def validate_feedback_items(
    raw_items: list[Any],
) -> tuple[list[FeedbackItem], list[dict[str, Any]], list[dict[str, str]]]:
    """(valid items, their JSON as sent, problems): each item is validated on its own so that
    a malformed one is named (``feedback.<index>.<field>``) without losing the others."""
    valid: list[FeedbackItem] = []
    raw_valid: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append(FeedbackItem.model_validate(raw))
            raw_valid.append(raw)
        except ValidationError as error:
            problems.extend(
                {
                    "field": ".".join(["feedback", str(index), *(str(p) for p in e["loc"])]),
                    "message": e["msg"],
                }
                for e in error.errors(include_url=False, include_input=False)
            )
    return valid, raw_valid, problems
