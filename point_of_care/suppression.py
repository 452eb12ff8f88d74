"""Alert-burden control: a card the clinician overrode recently for this patient is not shown
again unless its triggering data changed (its fingerprint). Critical cards are never dropped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from knowledge.rule import Advice
from point_of_care.site_settings import EffectiveSetting

SuppressionWindow = Callable[[str], int]
"""Days a rule's overridden card stays suppressed (0: never)."""


def suppression_window(
    rule_settings: Mapping[str, EffectiveSetting], default_days: int
) -> SuppressionWindow:
    """The site's setting for a rule when it has one, else the deployment's default."""

    def window(rule_id: str) -> int:
        setting = rule_settings.get(rule_id)
        if setting is not None and setting.suppression_days is not None:
            return setting.suppression_days
        return default_days

    return window


def suppressible_rules(advice: Iterable[Advice], window: SuppressionWindow) -> list[str]:
    """The rules whose cards may be suppressed: not critical, with a window."""
    return sorted(
        {a.rule_id for a in advice if a.card.indicator != "critical" and window(a.rule_id)}
    )


def split_overridden_repeats(
    advice: list[Advice],
    overrides: Iterable[tuple[str, str, datetime]],
    window: SuppressionWindow,
    now: datetime,
) -> tuple[list[Advice], list[Advice]]:
    """(kept, suppressed): ``overrides`` are (rule, fingerprint, when) of this patient's
    overridden cards; each counts within its rule's window before ``now``."""
    overridden = {
        (rule, fingerprint)
        for rule, fingerprint, when in overrides
        if when >= now - timedelta(days=window(rule))
    }
    kept: list[Advice] = []
    suppressed: list[Advice] = []
    for item in advice:
        repeat = (
            item.card.indicator != "critical" and (item.rule_id, item.fingerprint) in overridden
        )
        (suppressed if repeat else kept).append(item)
    return kept, suppressed
