"""A simulated clinician's answer to a card, as a CDS Hooks feedback item."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def feedback_item(
    card: dict[str, Any], accepted: bool, override_reason: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Accepted: the card's first suggestion; overridden: the reason given (by default the
    card's first override reason)."""
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "accepted" if accepted else "overridden",
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
    }
    if accepted:
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        item["overrideReason"] = {"reason": override_reason or card["overrideReasons"][0]}
    return item
