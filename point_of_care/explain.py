"""Why a card was shown: its rule (or model), citations, inputs, and what happened next."""

from __future__ import annotations

from typing import Any

import yaml

from knowledge import governance
from knowledge.artifact import RuleArtifact
from storage.repository import Store


def _artifact(rule_id: str, version: str) -> RuleArtifact | None:
    try:
        return RuleArtifact.model_validate(
            yaml.safe_load(governance.version_text(rule_id, version))
        )
    except KeyError:
        return None  # not a rule artifact (e.g. the data-availability notice) or an unknown version


def _prediction(store: Store, card_uuid: str) -> dict[str, Any] | None:
    """For a model's card: the model version, the risk and the features it was computed from."""
    prediction = store.prediction_for_card(card_uuid)
    if prediction is None:
        return None
    return {
        "model": prediction.model_name,
        "version": prediction.model_version,
        "risk": prediction.risk,
        "threshold": prediction.threshold,
        "features": prediction.features,
        "contributions": prediction.contributions,
    }


def explain_card(store: Store, card_uuid: str, owner: str | None = None) -> dict[str, Any] | None:
    """The card's provenance; None if there is no such card, or ``owner`` (when given) was
    not shown it (the same answer, so that other clients' card ids cannot be probed)."""
    card = store.card(card_uuid)
    if card is None or (owner is not None and card.owner != owner):
        return None
    artifact = _artifact(card.rule_id, card.rule_version)
    return {
        "card": card_uuid,
        "summary": card.summary,
        "indicator": card.indicator,
        "service": card.service_id,
        "issuedAt": card.created_at.isoformat(),
        "rule": {
            "id": card.rule_id,
            "version": card.rule_version,
            "title": artifact.title if artifact else None,
            "status": artifact.status if artifact else None,
        },
        "citations": [c.model_dump(mode="json", exclude_none=True) for c in artifact.citations]
        if artifact
        else [],
        "thresholds": artifact.thresholds if artifact else {},
        "inputs": card.inputs,
        "prediction": _prediction(store, card_uuid),
        "feedback": [
            {
                "outcome": f.outcome,
                "outcomeTimestamp": f.outcome_timestamp.isoformat(),
                "overrideReason": f.override_reason_code,
                "acceptedSuggestions": f.accepted_suggestions,
            }
            for f in store.feedback_for_card(card_uuid)
        ],
    }
