"""The report's part on implementing improvements: control charts of each rule's acceptance
and of the model's outcome rate with version changes marked, what clinicians are saying,
shadow runs, experiments, and the knowledge changes proposed and decided in the period."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from evaluation.clinician_voice import RuleVoice
from evaluation.experiment_analysis import ExperimentAnalysis
from evaluation.html_parts import percent, png, table
from evaluation.plots import p_chart_plot
from evaluation.shadow_analysis import ShadowSummary
from evaluation.spc import CITATIONS, PChart
from evaluation.version_effects import VersionEffect


@dataclass(frozen=True)
class ControlChart:
    subject: str
    """A rule id or a registered model name."""
    metric: str
    chart: PChart
    changes: list[tuple[str, str]]
    """(period, version) where the subject's version changed."""


@dataclass(frozen=True)
class KnowledgeChange:
    rule_id: str
    from_version: str
    to_version: str
    status: str
    proposed_by: str
    proposed_at: datetime
    source: str
    rationale: str
    reviewed_by: str | None
    review_note: str | None
    effect: VersionEffect | None
    """Measured while the new version has been live (approved changes)."""


@dataclass(frozen=True)
class ImprovementData:
    charts: Sequence[ControlChart] = ()
    voices: Sequence[RuleVoice] = ()
    shadows: Sequence[ShadowSummary] = ()
    experiments: Sequence[ExperimentAnalysis] = ()
    changes: Sequence[KnowledgeChange] = ()


def render_improvements(data: ImprovementData) -> list[str]:
    """HTML sections, in the order a quality improvement meeting reads them."""
    return [
        *_chart_sections(data.charts),
        *_voice_sections(data.voices),
        *_shadow_sections(data.shadows),
        *_experiment_sections(data.experiments),
        *_change_sections(data.changes),
    ]


def _chart_sections(charts: Sequence[ControlChart]) -> list[str]:
    parts = [
        "<h2>Before and after: control charts</h2>",
        "<p>Weekly p-charts with 3-sigma limits for each week's number of cards; red points are "
        "special-cause signals (beyond the limits, 8 in a row on one side, 6 rising or falling, "
        "2 of 3 beyond 2 sigma); dashed lines mark a new version. Sources: "
        + "; ".join(html.escape(c) for c in CITATIONS)
        + "</p>",
    ]
    if not charts:
        return [*parts, "<p>Too few answered cards or labelled outcomes for a chart.</p>"]
    for c in charts:
        title = f"{c.subject}: {c.metric}"
        signals = [f"{p.label} ({', '.join(p.signals)})" for p in c.chart.signals]
        parts += [
            f"<h3>{html.escape(title)}</h3>",
            png(p_chart_plot(c.chart, title, c.changes)),
            "<p>Versions: "
            + (html.escape(", ".join(f"v{v} from {week}" for week, v in c.changes)) or "unchanged")
            + ". Signals: "
            + (html.escape("; ".join(signals)) or "none")
            + ".</p>",
        ]
    return parts


def _voice_sections(voices: Sequence[RuleVoice]) -> list[str]:
    parts = ["<h2>What clinicians are saying</h2>"]
    review = [v for v in voices if v.needs_review]
    parts.append(
        "<h3>Rules that most need review</h3>"
        + (
            table(
                ["rule", "answered", "overridden", "95% CI", "top reason", "suggests"],
                [
                    [
                        v.rule_id,
                        v.answered,
                        percent(v.override_rate),
                        f"{percent(v.override_ci[0])} to {percent(v.override_ci[1])}"
                        if v.override_ci
                        else "",
                        v.reasons[0][0] if v.reasons else "",
                        v.hint or "",
                    ]
                    for v in review
                ],
            )
            if review
            else "<p>No rule is overridden more than half the time with confidence.</p>"
        )
    )
    rows = [
        [
            v.rule_id,
            "; ".join(f"{n} x {reason}" for reason, n in v.reasons[:3]),
            " | ".join(v.comments),
        ]
        for v in voices
        if v.reasons or v.comments
    ]
    if rows:
        parts += [
            "<h3>Override reasons and comments per rule</h3>",
            table(["rule", "reasons", "latest comments"], rows),
        ]
    return parts


def _shadow_sections(shadows: Sequence[ShadowSummary]) -> list[str]:
    parts = ["<h2>Shadow mode</h2>"]
    if not shadows:
        return [*parts, "<p>No candidate ran in shadow mode in this period.</p>"]
    rows = [
        [
            s.shadow_id,
            f"{s.subject} {s.candidate_version} (live {', '.join(s.live_versions) or 'none'})",
            s.calls,
            percent(s.agreement_rate),
            "n/a" if s.kappa is None else f"{s.kappa:.2f}",
            s.both,
            s.changed,
            s.extra,
            s.missed,
            s.missed_critical,
        ]
        for s in shadows
    ]
    return [
        *parts,
        table(
            [
                "run",
                "candidate",
                "calls",
                "agreement",
                "kappa",
                "both",
                "reworded",
                "extra",
                "missed",
                "missed critical",
            ],
            rows,
        ),
    ]


def _experiment_sections(experiments: Sequence[ExperimentAnalysis]) -> list[str]:
    parts = ["<h2>Experiments</h2>"]
    if not experiments:
        return [*parts, "<p>No experiment ran in this period.</p>"]
    for e in experiments:
        parts += [
            f"<h3>{html.escape(e.experiment_id)} on {html.escape(e.rule)}</h3>",
            table(
                ["arm", "patients", "shown", "accepted", "outcome rate"],
                [
                    [
                        a.arm + (" (holdout)" if a.holdout else ""),
                        a.patients,
                        a.shown,
                        percent(a.acceptance_rate),
                        percent(a.outcome_rate),
                    ]
                    for a in e.arms
                ],
            ),
            table(
                ["comparison", "difference", "95% CI", "always-valid 95% CI", "always-valid p"],
                [
                    [
                        f"{metric}: {arm} - {e.control}",
                        f"{c.difference:+.3f}",
                        f"{c.ci_low:+.3f} to {c.ci_high:+.3f}",
                        f"{c.always_valid_low:+.3f} to {c.always_valid_high:+.3f}",
                        f"{c.always_valid_p:.3g}",
                    ]
                    for metric, comparisons in (
                        ("acceptance", e.acceptance),
                        ("outcome", e.outcome),
                    )
                    for arm, c in comparisons.items()
                ],
            ),
            f"<p>Recommendation: {html.escape(e.recommendation)}</p>",
        ]
    return parts


def _change_sections(changes: Sequence[KnowledgeChange]) -> list[str]:
    parts = ["<h2>Knowledge changes</h2>"]
    if not changes:
        return [*parts, "<p>No rule change was proposed or decided in this period.</p>"]
    rows = []
    for c in changes:
        effect = c.effect
        measured = ""
        if effect is not None and effect.acceptance_rate is not None:
            measured = f"{percent(effect.acceptance_rate)} accepted of {effect.answered}"
            if effect.change_from_previous is not None:
                d, low, high = effect.change_from_previous
                measured += f"; {d:+.0%} vs before (95% CI {low:+.0%} to {high:+.0%})"
        rows.append(
            [
                c.rule_id,
                f"{c.from_version or '(new)'} -> {c.to_version}",
                c.status,
                f"{c.proposed_by}, {c.source}: {c.rationale}",
                f"{c.reviewed_by}: {c.review_note}" if c.reviewed_by else "",
                measured,
            ]
        )
    return [
        *parts,
        table(["rule", "versions", "status", "proposed", "reviewed", "measured since"], rows),
    ]
