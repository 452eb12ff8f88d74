"""How a shadow candidate compares with the live side: agreement on whether to show a card,
chance-corrected (Cohen's kappa: Cohen J. A coefficient of agreement for nominal scales.
Educ Psychol Meas 1960;20:37-46), the cards it would add or miss, and whether it would miss
any critical card the live side shows, which blocks a promotion on safety grounds alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.experiments import wilson_interval

EXAMPLES = 5
"""How many of the most frequent extra and missed cards a summary lists."""


@dataclass(frozen=True)
class ShadowRow:
    """One compared call: the agreement class, and the cards each side produced (as JSON
    objects with at least ``indicator`` and ``summary``)."""

    agreement: str
    changed: bool
    live: Sequence[Mapping[str, Any]]
    shadow: Sequence[Mapping[str, Any]]
    patient_key: str


@dataclass(frozen=True)
class ShadowSummary:
    shadow_id: str
    subject: str
    live_versions: list[str]
    candidate_version: str
    calls: int
    patients: int
    both: int
    neither: int
    extra: int
    missed: int
    changed: int
    agreement_rate: float | None
    agreement_ci: tuple[float, float] | None
    kappa: float | None
    """Cohen's kappa of show/not-show; None when one side's decision never varies."""
    live_cards: dict[str, int]
    shadow_cards: dict[str, int]
    """Cards by indicator on each side."""
    missed_critical: int
    """Calls on which the live side showed a critical card and the candidate did not."""
    top_extra: list[tuple[str, int]]
    top_missed: list[tuple[str, int]]


def cohen_kappa(both: int, neither: int, extra: int, missed: int) -> float | None:
    n = both + neither + extra + missed
    if n == 0:
        return None
    observed = (both + neither) / n
    live_shows, shadow_shows = (both + missed) / n, (both + extra) / n
    expected = live_shows * shadow_shows + (1 - live_shows) * (1 - shadow_shows)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def _critical(cards: Sequence[Mapping[str, Any]]) -> bool:
    return any(card["indicator"] == "critical" for card in cards)


def summarize(
    shadow_id: str,
    subject: str,
    candidate_version: str,
    rows: Sequence[ShadowRow],
    live_versions: Sequence[str] = (),
) -> ShadowSummary:
    counts = Counter(row.agreement for row in rows)
    agreeing = counts["both"] + counts["neither"]
    return ShadowSummary(
        shadow_id=shadow_id,
        subject=subject,
        live_versions=sorted({v for v in live_versions if v}),
        candidate_version=candidate_version,
        calls=len(rows),
        patients=len({row.patient_key for row in rows}),
        both=counts["both"],
        neither=counts["neither"],
        extra=counts["extra"],
        missed=counts["missed"],
        changed=sum(row.changed for row in rows),
        agreement_rate=agreeing / len(rows) if rows else None,
        agreement_ci=wilson_interval(agreeing, len(rows)) if rows else None,
        kappa=cohen_kappa(counts["both"], counts["neither"], counts["extra"], counts["missed"]),
        live_cards=dict(Counter(card["indicator"] for row in rows for card in row.live)),
        shadow_cards=dict(Counter(card["indicator"] for row in rows for card in row.shadow)),
        missed_critical=sum(_critical(row.live) and not _critical(row.shadow) for row in rows),
        top_extra=Counter(
            card["summary"] for row in rows if row.agreement == "extra" for card in row.shadow
        ).most_common(EXAMPLES),
        top_missed=Counter(
            card["summary"] for row in rows if row.agreement == "missed" for card in row.live
        ).most_common(EXAMPLES),
    )


def render(summary: ShadowSummary) -> str:
    """The summary as text, for the CLI and the report."""
    s = summary
    live = ", ".join(s.live_versions) or "none"
    lines = [
        f"shadow {s.shadow_id}: {s.subject} {s.candidate_version} beside live {live}; "
        f"{s.calls} calls, {s.patients} patients",
        f"both show {s.both} (wording or urgency changed in {s.changed}), neither {s.neither}, "
        f"extra {s.extra}, missed {s.missed}",
    ]
    if s.agreement_rate is not None and s.agreement_ci is not None:
        kappa = "-" if s.kappa is None else f"{s.kappa:.2f}"
        lines.append(
            f"agreement {s.agreement_rate:.1%} (95% CI {s.agreement_ci[0]:.1%} to "
            f"{s.agreement_ci[1]:.1%}), Cohen's kappa {kappa}"
        )
    lines.append(
        "cards by indicator: live "
        + (", ".join(f"{k} {v}" for k, v in sorted(s.live_cards.items())) or "none")
        + "; shadow "
        + (", ".join(f"{k} {v}" for k, v in sorted(s.shadow_cards.items())) or "none")
    )
    if s.missed_critical:
        lines.append(f"SAFETY: the candidate misses a critical card on {s.missed_critical} calls")
    lines += [f"  extra: {n} x {text}" for text, n in s.top_extra]
    lines += [f"  missed: {n} x {text}" for text, n in s.top_missed]
    return "\n".join(lines)
