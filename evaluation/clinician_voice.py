"""What clinicians are saying about each rule: override reasons and comments grouped per rule,
and the rules that most need a reviewer's attention.

A rule needs review when clinicians override it often: ranked by the lower bound of the
95% Wilson interval of its override rate, so that a rule overridden 80 times in 100 ranks
above one overridden 3 times in 3. Each coded override reason points reviewers to a
different kind of fix (the rule's criteria, the data it reads, its wording or urgency).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.experiments import wilson_interval
from evaluation.feedback_analytics import CardRow

MIN_ANSWERED = 10
"""Fewer answered cards than this say too little about a rule to rank it."""
REVIEW_OVERRIDE_LOWER_BOUND = 0.5
"""A rule needs review when even the low end of its override rate's interval is above this."""
COMMENTS_SHOWN = 5

REASON_HINTS: dict[str, str] = {
    "not-applicable": "fires for patients it does not fit: review its criteria and thresholds",
    "already-addressed": "misses care already given: review the data it reads and its look-back",
    "benefit-outweighs-risk": "clinicians accept the risk: review the evidence and the urgency",
    "patient-declined": "patients decline: consider shared decision wording",
    "data-incorrect": "the record is wrong: a data quality issue to raise with the EHR team",
}
"""What each of the service's coded override reasons suggests looking at."""


@dataclass(frozen=True)
class RuleVoice:
    rule_id: str
    shown: int
    answered: int
    overridden: int
    override_rate: float | None
    override_ci: tuple[float, float] | None
    reasons: list[tuple[str, int]]
    """Override reasons, most frequent first."""
    comments: list[str]
    """The latest free-text comments, newest first."""
    needs_review: bool
    hint: str | None
    """What the most frequent coded reason suggests, when it is one of ours."""


def rule_voices(rows: Sequence[CardRow]) -> list[RuleVoice]:
    """One summary per rule, the rules that most need review first."""
    by_rule: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows:
        by_rule[row.rule_id].append(row)
    voices = [_voice(rule_id, members) for rule_id, members in by_rule.items()]
    return sorted(
        voices,
        key=lambda v: (-(v.override_ci[0] if v.override_ci else -1.0), -v.answered, v.rule_id),
    )


def _voice(rule_id: str, rows: Sequence[CardRow]) -> RuleVoice:
    answered = [r for r in rows if r.outcome is not None]
    overrides = [r for r in answered if r.outcome == "overridden"]
    reasons = Counter(r.override_reason or "(no reason given)" for r in overrides)
    codes = Counter(r.override_code for r in overrides if r.override_code)
    top_code = codes.most_common(1)[0][0] if codes else None
    comments = [
        r.comment.strip()
        for r in sorted(answered, key=lambda r: r.answered_at or r.shown_at, reverse=True)
        if r.comment and r.comment.strip()
    ][:COMMENTS_SHOWN]
    interval = (
        wilson_interval(len(overrides), len(answered)) if len(answered) >= MIN_ANSWERED else None
    )
    return RuleVoice(
        rule_id=rule_id,
        shown=len(rows),
        answered=len(answered),
        overridden=len(overrides),
        override_rate=len(overrides) / len(answered) if answered else None,
        override_ci=interval,
        reasons=reasons.most_common(),
        comments=comments,
        needs_review=interval is not None and interval[0] > REVIEW_OVERRIDE_LOWER_BOUND,
        hint=REASON_HINTS.get(top_code) if top_code else None,
    )


def render(voices: Sequence[RuleVoice]) -> str:
    lines = []
    for v in voices:
        rate = "-" if v.override_rate is None else f"{v.override_rate:.0%}"
        interval = (
            f" (95% CI {v.override_ci[0]:.0%} to {v.override_ci[1]:.0%})" if v.override_ci else ""
        )
        flag = "NEEDS REVIEW  " if v.needs_review else ""
        lines.append(
            f"{flag}{v.rule_id}: {v.shown} shown, {v.answered} answered, "
            f"{v.overridden} overridden {rate}{interval}"
        )
        lines += [f"    {n} x {reason}" for reason, n in v.reasons]
        if v.hint:
            lines.append(f"    suggests: {v.hint}")
        lines += [f'    "{comment}"' for comment in v.comments]
    return "\n".join(lines) if lines else "no cards in this period"
