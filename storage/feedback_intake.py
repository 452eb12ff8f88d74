"""Feedback kept durably: stored when the database takes it, spooled when it does not, and
spooled behind its card when the card itself still waits in the spool."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hooks.feedback import FeedbackItem
from storage.repository import Store
from storage.spool import Spool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackReceipt:
    stored: int
    duplicates: int
    spooled: int = 0
    unknown_cards: list[str] = field(default_factory=list)
    """Cards this client was never shown: their items were not stored."""
    adjusted: list[tuple[int, str]] = field(default_factory=list)
    """(position among the items, why) of timestamps stored as the nearest possible time."""


def keep_feedback(
    store: Store,
    spool: Spool,
    owner: str,
    service_id: str,
    items: Sequence[FeedbackItem],
    raw_items: list[dict[str, Any]],
) -> FeedbackReceipt:
    """Store valid feedback items once each; ``raw_items`` are their JSON as sent (the
    spool keeps and replays them as sent)."""
    try:
        outcome = store.record_feedback(owner, service_id, items, raw_items)
    except SQLAlchemyError:
        # The database is down or locked: keep the items durably, acknowledge them as spooled.
        logger.warning("feedback spooled: database unavailable")
        spool.spool_feedback(owner, service_id, raw_items)
        return FeedbackReceipt(stored=0, duplicates=0, spooled=len(raw_items))
    if outcome.unknown_cards and spool.pending():
        # Cards shown while the database was down wait in the spool: their feedback waits
        # behind them, and is matched to them when both are replayed.
        waiting = set(outcome.unknown_cards)
        late = [raw for item, raw in zip(items, raw_items, strict=True) if item.card in waiting]
        spool.spool_feedback(owner, service_id, late)
        return FeedbackReceipt(
            outcome.stored, outcome.duplicates, spooled=len(late), adjusted=outcome.adjusted
        )
    return FeedbackReceipt(
        outcome.stored,
        outcome.duplicates,
        unknown_cards=outcome.unknown_cards,
        adjusted=outcome.adjusted,
    )
