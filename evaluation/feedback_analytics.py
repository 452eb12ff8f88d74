"""What clinicians do with the cards: acceptance, overrides and their reasons, alert burden.

Computed from tallies (cards of one rule version, hook, user role and day with the same
latest feedback, counted), so the same numbers feed the CLI, the API and MLflow, and the
store can count in SQL instead of handing over a row per card: an analytics window holds
tens of thousands of cards. Rates are over cards that received feedback; cards without
feedback are counted separately (many EHRs send none for cards that were merely seen).

Times to action are counted the same way, in a histogram of geometric bins (each 10% wider
than the one before, from half a second to 30 days), so a tally stays small however many
cards it holds. A median is read from the merged histogram by interpolating within the
bin where half of the answered cards are reached: a time that splits the cards in half, to
within the bin's width (10%). With few cards far apart it is not their midpoint (30 s and
90 s give about 33 s, not 60 s), which the exact median would be.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
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
    owner: str = ""
    """The client the card was shown to (outcomes are linked within it)."""


@dataclass(frozen=True)
class Rates:
    shown: int
    answered: int
    accepted: int
    overridden: int
    acceptance_rate: float | None
    override_rate: float | None
    median_seconds_to_action: float | None


@dataclass(frozen=True)
class CardTally:
    """``count`` cards of one rule version, shown in one hook call kind to one user role on one
    day (UTC), whose latest feedback was ``outcome`` (None: no feedback) for ``override_reason``."""

    rule_id: str
    rule_version: str
    hook: str
    user_role: str
    day: date
    outcome: str | None
    override_reason: str | None
    count: int
    seconds_to_action: tuple[tuple[int, int], ...] = ()
    """For answered cards: the times from being shown to the feedback, as (bin, cards) of the
    ``DELAY_BIN_EDGES`` histogram."""


DELAY_BIN_GROWTH = 1.1
DELAY_BIN_EDGES: tuple[float, ...] = tuple(
    0.5 * DELAY_BIN_GROWTH**k
    for k in range(math.ceil(math.log(30 * 86400 / 0.5) / math.log(DELAY_BIN_GROWTH)) + 1)
)
"""Upper edges (seconds) of the time-to-action bins; bin i holds [edge i-1, edge i), bin 0
everything below half a second and the last bin everything from 30 days on."""


def delay_bin(seconds: float) -> int:
    """The histogram bin of a time to action (the store computes the same in SQL)."""
    return bisect.bisect_right(DELAY_BIN_EDGES, seconds)


def histogram_median(histogram: Mapping[int, int]) -> float | None:
    """The median of a time-to-action histogram, interpolated within its bin."""
    total = sum(histogram.values())
    if not total:
        return None
    middle = total / 2
    seen = 0
    for index in sorted(histogram):
        count = histogram[index]
        if seen + count >= middle:
            low = DELAY_BIN_EDGES[index - 1] if index > 0 else 0.0
            high = DELAY_BIN_EDGES[min(index, len(DELAY_BIN_EDGES) - 1)]
            return low + (high - low) * (middle - seen) / count
        seen += count
    return None  # unreachable: the counts sum to total


def user_role(user_reference: str | None) -> str:
    """The resource type of a hook's userId (Practitioner, PractitionerRole, Patient, ...)."""
    return (user_reference or "unknown").split("/", 1)[0]


def tally(rows: Iterable[CardRow]) -> list[CardTally]:
    """The tallies of card rows (what the store counts in SQL, counted here)."""
    groups: dict[tuple[Any, ...], list[CardRow]] = defaultdict(list)
    for row in rows:
        key = (row.rule_id, row.rule_version, row.hook, row.user_role, row.shown_at.date())
        groups[(*key, row.outcome, row.override_reason)].append(row)
    return [
        CardTally(
            *key,
            count=len(members),
            seconds_to_action=tuple(
                sorted(
                    Counter(
                        delay_bin((r.answered_at - r.shown_at).total_seconds())
                        for r in members
                        if r.outcome is not None and r.answered_at is not None
                    ).items()
                )
            ),
        )
        for key, members in groups.items()
    ]


def rates(tallies: Sequence[CardTally]) -> Rates:
    answered = [t for t in tallies if t.outcome is not None]
    accepted = sum(t.count for t in answered if t.outcome == "accepted")
    overridden = sum(t.count for t in answered if t.outcome == "overridden")
    delays: Counter[int] = Counter()
    for t in answered:
        for index, count in t.seconds_to_action:
            delays[index] += count
    total_answered = sum(t.count for t in answered)
    return Rates(
        shown=sum(t.count for t in tallies),
        answered=total_answered,
        accepted=accepted,
        overridden=overridden,
        acceptance_rate=accepted / total_answered if total_answered else None,
        override_rate=overridden / total_answered if total_answered else None,
        median_seconds_to_action=histogram_median(delays),
    )


def _grouped(tallies: Iterable[CardTally], key: Callable[[CardTally], str]) -> dict[str, Rates]:
    groups: dict[str, list[CardTally]] = defaultdict(list)
    for item in tallies:
        groups[key(item)].append(item)
    return {name: rates(members) for name, members in sorted(groups.items())}


def week_of(moment: date | datetime) -> str:
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
    tallies: Sequence[CardTally], cards_per_call: Mapping[str, float]
) -> FeedbackAnalytics:
    """``cards_per_call``: the mean number of cards per answered hook call, per hook."""
    reasons: Counter[str] = Counter()
    for item in tallies:
        if item.outcome == "overridden":
            reasons[item.override_reason or "(no reason given)"] += item.count
    return FeedbackAnalytics(
        overall=rates(tallies),
        by_rule=_grouped(tallies, lambda t: t.rule_id),
        by_rule_version=_grouped(tallies, lambda t: f"{t.rule_id}@{t.rule_version}"),
        by_hook=_grouped(tallies, lambda t: t.hook),
        by_role=_grouped(tallies, lambda t: t.user_role),
        by_week=_grouped(tallies, lambda t: week_of(t.day)),
        override_reasons=dict(reasons.most_common()),
        cards_per_call=dict(sorted(cards_per_call.items())),
    )


def version_in_use(rows: Sequence[CardRow]) -> list[tuple[str, str]]:
    """Per week, in order, the rule version of the week's last card."""
    latest: dict[str, CardRow] = {}
    for row in sorted(rows, key=lambda r: r.shown_at):
        latest[week_of(row.shown_at)] = row
    return [(week, row.rule_version) for week, row in sorted(latest.items())]
