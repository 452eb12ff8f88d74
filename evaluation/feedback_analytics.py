"""What clinicians do with the cards: acceptance, overrides and their reasons, alert burden.

Computed from plain rows (one per card shown, with the latest feedback on it, if any), so
the same numbers feed the CLI, the API and MLflow. Rates are over cards that received
feedback; cards without feedback are counted separately (many EHRs send none for cards
that were merely seen).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CardRow:
    rule_id: str
    rule_version: str
    hook: str
    indicator: str
    user_role: str
    """The resource type of the hook's userId: Practitioner, PractitionerRole, Patient, ..."""
    shown_at: datetime
    outcome: str | None
    override_reason: str | None
    answered_at: datetime | None
    override_code: str | None = None
    """The coded reason (e.g. not-applicable), where ``override_reason`` is its display."""
    comment: str | None = None
    """The clinician's free-text comment (the feedback's userComment)."""
    patient_key: str = ""
    """The patient's keyed pseudonym (to link outcomes)."""


@dataclass(frozen=True)
class Rates:
    shown: int
    answered: int
    accepted: int
    overridden: int
    acceptance_rate: float | None
    override_rate: float | None
    median_seconds_to_action: float | None


def rates(rows: Sequence[CardRow]) -> Rates:
    answered = [r for r in rows if r.outcome is not None]
    accepted = sum(r.outcome == "accepted" for r in answered)
    overridden = sum(r.outcome == "overridden" for r in answered)
    delays = [
        (r.answered_at - r.shown_at).total_seconds() for r in answered if r.answered_at is not None
    ]
    return Rates(
        shown=len(rows),
        answered=len(answered),
        accepted=accepted,
        overridden=overridden,
        acceptance_rate=accepted / len(answered) if answered else None,
        override_rate=overridden / len(answered) if answered else None,
        median_seconds_to_action=statistics.median(delays) if delays else None,
    )


def _grouped(rows: Iterable[CardRow], key: Callable[[CardRow], str]) -> dict[str, Rates]:
    groups: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {name: rates(members) for name, members in sorted(groups.items())}


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class FeedbackAnalytics:
    overall: Rates
    by_rule: dict[str, Rates]
    by_rule_version: dict[str, Rates]
    by_hook: dict[str, Rates]
    by_role: dict[str, Rates]
    by_week: dict[str, Rates]
    override_reasons: dict[str, int]
    cards_per_call: dict[str, float]
    """Mean cards per hook call, per hook (alert burden; calls with no card count as 0)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feedback_analytics(
    rows: Sequence[CardRow], cards_per_call_by_hook: dict[str, list[int]]
) -> FeedbackAnalytics:
    reasons = Counter(
        r.override_reason or "(no reason given)" for r in rows if r.outcome == "overridden"
    )
    return FeedbackAnalytics(
        overall=rates(rows),
        by_rule=_grouped(rows, lambda r: r.rule_id),
        by_rule_version=_grouped(rows, lambda r: f"{r.rule_id}@{r.rule_version}"),
        by_hook=_grouped(rows, lambda r: r.hook),
        by_role=_grouped(rows, lambda r: r.user_role),
        by_week=_grouped(rows, lambda r: week_of(r.shown_at)),
        override_reasons=dict(reasons.most_common()),
        cards_per_call={
            hook: sum(counts) / len(counts)
            for hook, counts in sorted(cards_per_call_by_hook.items())
            if counts
        },
    )


def version_in_use(rows: Sequence[CardRow]) -> list[tuple[str, str]]:
    """Per week, in order, the rule version of the week's last card."""
    latest: dict[str, CardRow] = {}
    for row in sorted(rows, key=lambda r: r.shown_at):
        latest[week_of(row.shown_at)] = row
    return [(week, row.rule_version) for week, row in sorted(latest.items())]
