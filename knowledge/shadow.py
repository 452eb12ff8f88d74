"""Shadow mode: a candidate (a new rule, a new version of a rule, a challenger model) runs
silently beside the live recommender on every call, and what it would have shown is
compared with what the live one produced. Nothing a shadow computes reaches the clinician.

Both sides see the same evaluation context; the live side is the advice computed for the
call (before repeats of overridden cards are dropped), so the comparison is of the logic
and its thresholds, not of site suppression.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hooks.cards import Card
from knowledge.rule import Advice, EvaluationContext, Recommender

Agreement = Literal["both", "neither", "extra", "missed"]
"""both: live and shadow show a card; neither: both stay silent; extra: only the shadow
would show one; missed: only the live one does."""


@dataclass(frozen=True)
class ShadowComparison:
    shadow_id: str
    subject: str
    live_version: str
    candidate_version: str
    live: tuple[Card, ...]
    shadow: tuple[Card, ...]

    @property
    def agreement(self) -> Agreement:
        if self.live and self.shadow:
            return "both"
        if self.shadow:
            return "extra"
        return "missed" if self.live else "neither"

    @property
    def changed(self) -> bool:
        """Both show cards, but of other urgency or wording."""
        return self.agreement == "both" and Counter(
            (c.indicator, c.summary) for c in self.live
        ) != Counter((c.indicator, c.summary) for c in self.shadow)


@dataclass(frozen=True)
class Shadow:
    """A candidate compared with the live recommender whose id is ``subject``."""

    id: str
    subject: str
    candidate: Recommender

    @property
    def hooks(self) -> frozenset[str]:
        return self.candidate.hooks

    def compare(
        self, ctx: EvaluationContext, computed: Sequence[Advice], live_version: str
    ) -> ShadowComparison:
        """Run the candidate on ``ctx``; ``computed`` is all advice of the call's live side,
        ``live_version`` the live subject's version ("" for a new rule)."""
        return ShadowComparison(
            self.id,
            self.subject,
            live_version,
            self.candidate.version,
            tuple(a.card for a in computed if a.rule_id == self.subject),
            tuple(a.card for a in self.candidate.evaluate(ctx)),
        )
