"""A durable spool for writes the database could not take, replayed when it is back.

When the store is unavailable or locked, invocations (with their cards) and feedback are
appended to a JSON-lines file and fsync'ed before the client gets its answer, so nothing
acknowledged is lost. A drainer replays the spool into the store; replay is safe to
repeat because feedback is deduplicated by content and cards by uuid. Each process
appends to its own file; draining renames a file first, so appends never interleave
with a replay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hooks.cards import Card
from hooks.feedback import FeedbackItem
from storage.repository import (
    AssignmentInput,
    IssuedCardInput,
    PredictionInput,
    ShadowInput,
    Store,
)
from storage.tables import Invocation

logger = logging.getLogger(__name__)


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def _live_file(self) -> Path:
        return self.folder / f"spool-{os.getpid()}.jsonl"

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (fsync) before returning."""
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        descriptor = os.open(self._live_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def spool_invocation(
        self,
        invocation: Invocation,
        cards: list[IssuedCardInput],
        predictions: list[PredictionInput] | None = None,
        assignments: list[AssignmentInput] | None = None,
        shadows: list[ShadowInput] | None = None,
    ) -> None:
        self.append(
            {
                "kind": "invocation",
                "invocation": invocation.model_dump(mode="json", exclude={"id"}),
                "cards": [
                    {
                        "card": c.card.model_dump(mode="json", exclude_none=True),
                        "rule_id": c.rule_id,
                        "rule_version": c.rule_version,
                        "inputs": dict(c.inputs),
                        "fingerprint": c.fingerprint,
                    }
                    for c in cards
                ],
                "predictions": [dataclasses.asdict(p) for p in predictions or ()],
                "assignments": [
                    {
                        "experiment_id": a.experiment_id,
                        "arm": a.arm,
                        "card": a.card.model_dump(mode="json", exclude_none=True),
                        "rule_id": a.rule_id,
                        "rule_version": a.rule_version,
                        "shown": a.shown,
                        "index_time": a.index_time.isoformat(),
                    }
                    for a in assignments or ()
                ],
                "shadows": [dataclasses.asdict(s) for s in shadows or ()],
            }
        )

    def spool_feedback(self, owner: str, service_id: str, raw_items: list[Any]) -> None:
        self.append(
            {"kind": "feedback", "owner": owner, "service_id": service_id, "items": raw_items}
        )

    def pending(self) -> int:
        """Records waiting to be replayed."""
        return sum(1 for path in self.folder.glob("*.jsonl") for _ in _lines(path))

    def drain(self, store: Store) -> int:
        """Replay every spooled record into the store; returns how many were replayed.

        Stops at the first database error and keeps the rest for the next attempt.
        """
        replayed = 0
        for path in sorted(self.folder.glob("spool-*.jsonl")):
            # A unique, time-ordered name: an earlier file still waiting must not be replaced.
            path.rename(self.folder / f"draining-{time.time_ns():020d}-{path.stem}.jsonl")
        for draining in sorted(self.folder.glob("draining-*.jsonl")):
            try:
                for record in _lines(draining):
                    _replay(store, record)
                    replayed += 1
            except SQLAlchemyError:
                logger.warning("spool replay paused: database still unavailable")
                return replayed
            draining.unlink()
        return replayed


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            # A torn last line (crash mid-append, before fsync returned) was never acknowledged.
            if line.endswith("\n"):
                yield json.loads(line)


def _replay(store: Store, record: dict[str, Any]) -> None:
    if record["kind"] == "feedback":
        raw = record["items"]
        outcome = store.record_feedback(
            record.get("owner", ""),
            record["service_id"],
            [FeedbackItem.model_validate(i) for i in raw],
            raw,
        )
        if outcome.unknown_cards:
            logger.warning(
                "spooled feedback on %d card(s) never shown to its sender was not stored",
                len(outcome.unknown_cards),
            )
        return
    cards = [
        IssuedCardInput(
            Card.model_validate(c["card"]),
            c["rule_id"],
            c["rule_version"],
            c.get("inputs", {}),
            c.get("fingerprint", ""),
        )
        for c in record["cards"]
    ]
    # IntegrityError: replayed before, its cards' uuids are already stored.
    with contextlib.suppress(IntegrityError):
        store.record_invocation(
            Invocation.model_validate(record["invocation"]),
            cards,
            [
                PredictionInput(
                    **{**p, "prediction_time": datetime.fromisoformat(p["prediction_time"])}
                )
                for p in record.get("predictions", ())
            ],
            [
                AssignmentInput(
                    **{
                        **a,
                        "card": Card.model_validate(a["card"]),
                        "index_time": datetime.fromisoformat(a["index_time"]),
                    }
                )
                for a in record.get("assignments", ())
            ],
            [ShadowInput(**s) for s in record.get("shadows", ())],
        )
