"""What clinicians did with each version of a rule while it was live: acceptance with its
95% Wilson interval, and the difference from the version before with Newcombe's interval.
A before/after difference is not randomized: read it beside the control charts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from evaluation.experiments import newcombe_interval, wilson_interval
from evaluation.feedback_analytics import CardRow
from knowledge.governance import version_key


@dataclass(frozen=True)
class VersionEffect:
    """What clinicians did with a version's cards while it was live."""

    version: str
    first_shown: datetime | None
    shown: int
    answered: int
    accepted: int
    acceptance_rate: float | None
    acceptance_ci: tuple[float, float] | None
    change_from_previous: tuple[float, float, float] | None
    """Acceptance difference against the version before, with its 95% Newcombe interval."""


def version_effects(rows: Sequence[CardRow]) -> dict[str, VersionEffect]:
    by_version: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows:
        by_version[row.rule_version].append(row)
    ordered = sorted(by_version, key=version_key)
    effects: dict[str, VersionEffect] = {}
    previous: VersionEffect | None = None
    for version in ordered:
        members = by_version[version]
        answered = [r for r in members if r.outcome is not None]
        accepted = sum(r.outcome == "accepted" for r in answered)
        change = None
        if previous is not None and previous.answered and answered:
            low, high = newcombe_interval(
                accepted, len(answered), previous.accepted, previous.answered
            )
            change = (accepted / len(answered) - previous.accepted / previous.answered, low, high)
        effect = VersionEffect(
            version=version,
            first_shown=min(r.shown_at for r in members),
            shown=len(members),
            answered=len(answered),
            accepted=accepted,
            acceptance_rate=accepted / len(answered) if answered else None,
            acceptance_ci=wilson_interval(accepted, len(answered)) if answered else None,
            change_from_previous=change,
        )
        effects[version] = previous = effect
    return effects
