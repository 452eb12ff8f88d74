"""The learning community report: one self-contained HTML page for clinical teams and managers.

Plots are embedded as PNG data URIs, so the file can be mailed or attached as it is. Every
number in it comes from the same functions as the CLI and API (feedback analytics, metrics,
drift), computed here for a period and compared with the period before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from matplotlib.figure import Figure

from evaluation.drift import population_stability_index
from evaluation.fairness import equal_opportunity_gap, subgroup_performance, threshold_performance
from evaluation.feedback_analytics import FeedbackAnalytics, Rates
from evaluation.html_parts import percent, png, table
from evaluation.improvement_report import ImprovementData, render_improvements
from evaluation.metrics import Estimate, evaluate_risks
from evaluation.plots import calibration_plot
from evaluation.surveillance_report import SurveillanceData, render_surveillance

LOW_ACCEPTANCE = 0.3
LOW_ACCEPTANCE_MIN_ANSWERED = 5


@dataclass(frozen=True)
class LabelledPrediction:
    risk: float
    label: int
    sex: str
    age_band: str
    features: dict[str, float]
    model_version: str = ""
    treated: bool = False
    """A card of the call was accepted: the intervention may have changed the outcome."""
    threshold: float | None = None
    """The serving version's decision threshold: at or above it, the model showed a card."""
    race: str = "not recorded"
    ethnicity: str = "not recorded"


AUDITED_GROUPS: tuple[tuple[str, str], ...] = (
    ("sex", "sex"),
    ("age band", "age_band"),
    ("race", "race"),
    ("ethnicity", "ethnicity"),
)
"""(label, attribute) of the groups the model's performance is audited across."""


@dataclass(frozen=True)
class Decision:
    when: datetime
    model: str
    decision: str
    versions: str
    reasons: Sequence[str]


@dataclass(frozen=True)
class ReportData:
    since: datetime
    until: datetime
    feedback: FeedbackAnalytics
    previous_feedback: FeedbackAnalytics
    predictions: Sequence[LabelledPrediction]
    previous_predictions: Sequence[LabelledPrediction]
    decisions: Sequence[Decision]
    improvements: ImprovementData = field(default_factory=ImprovementData)
    surveillance: SurveillanceData = field(default_factory=SurveillanceData)


def acceptance_plot(by_week: dict[str, Rates]) -> Figure:
    figure = Figure(figsize=(6.5, 3.5), dpi=100)
    axes = figure.add_subplot()
    weeks = [w for w, r in by_week.items() if r.acceptance_rate is not None]
    axes.plot(weeks, [by_week[w].acceptance_rate for w in weeks], marker="o")
    axes.set_ylim(0, 1)
    axes.set_title("Acceptance of cards answered, by week")
    axes.set_ylabel("accepted / answered")
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def _rule_rows(feedback: FeedbackAnalytics, previous: FeedbackAnalytics) -> list[list[object]]:
    rows = []
    for rule, r in feedback.by_rule.items():
        before = previous.by_rule.get(rule)
        rows.append(
            [
                rule,
                r.shown,
                r.answered,
                percent(r.acceptance_rate),
                percent(before.acceptance_rate if before else None),
                percent(r.override_rate),
            ]
        )
    return rows


def render_report(data: ReportData) -> str:
    f = data.feedback
    sections = [
        f"<h1>Learning report, {data.since:%Y-%m-%d} to {data.until:%Y-%m-%d}</h1>",
        "<h2>What clinicians did with the cards</h2>",
        f"<p>{f.overall.shown} cards shown, {f.overall.answered} answered: "
        f"{percent(f.overall.acceptance_rate)} accepted and {percent(f.overall.override_rate)} "
        f"overridden (previous period: {percent(data.previous_feedback.overall.acceptance_rate)} "
        "accepted).</p>",
        png(acceptance_plot(f.by_week)) if f.by_week else "<p>No cards in this period.</p>",
        table(
            ["rule", "shown", "answered", "accepted", "accepted before", "overridden"],
            _rule_rows(f, data.previous_feedback),
        ),
        "<h3>Rules with low acceptance</h3>",
    ]
    low = [
        [rule, percent(r.acceptance_rate), r.answered]
        for rule, r in f.by_rule.items()
        if r.acceptance_rate is not None
        and r.acceptance_rate < LOW_ACCEPTANCE
        and r.answered >= LOW_ACCEPTANCE_MIN_ANSWERED
    ]
    sections.append(
        table(["rule", "accepted", "answered"], low)
        if low
        else f"<p>None below {LOW_ACCEPTANCE:.0%} with at least {LOW_ACCEPTANCE_MIN_ANSWERED} answers.</p>"
    )
    sections += [
        "<h3>Top override reasons</h3>",
        table(["reason", "overrides"], list(f.override_reasons.items())[:10]),
        "<h3>Alert burden</h3>",
        table(["hook", "cards per call"], [[h, f"{m:.2f}"] for h, m in f.cards_per_call.items()]),
        "<h2>How well the model predicted</h2>",
    ]
    sections += _model_sections(data.predictions, data.previous_predictions)
    sections.append("<h2>What changed since the last report</h2>")
    sections.append(
        table(
            ["when", "model", "decision", "versions", "reasons"],
            [
                [f"{d.when:%Y-%m-%d %H:%M}", d.model, d.decision, d.versions, "; ".join(d.reasons)]
                for d in data.decisions
            ],
        )
        if data.decisions
        else "<p>No model was promoted, refused or rolled back.</p>"
    )
    sections += render_improvements(data.improvements)
    sections += render_surveillance(data.surveillance)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem}"
        "th{background:#f3f3f3}img{max-width:100%}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Learning report {data.since:%Y-%m-%d} to {data.until:%Y-%m-%d}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )


def _model_sections(
    predictions: Sequence[LabelledPrediction], previous: Sequence[LabelledPrediction]
) -> list[str]:
    if not predictions:
        return ["<p>No prediction in this period has an outcome label yet.</p>"]
    y = np.array([p.label for p in predictions], dtype=float)
    risk = np.array([p.risk for p in predictions])
    parts = [
        f"<p>{len(predictions)} predictions with a known outcome: observed rate "
        f"{percent(float(y.mean()))}, mean predicted risk {percent(float(risk.mean()))}.</p>"
    ]
    if 0 < y.sum() < len(y):
        parts.append(
            png(
                calibration_plot(
                    y, {"model": risk}, bins=min(10, max(2, len(y) // 10)), title="Calibration"
                )
            )
        )
    parts += [
        "<h3>By model version and treatment</h3>",
        "<p>Each version judged on the patients it scored; treated patients (a card of the call "
        "was accepted) apart, since the intervention may have changed their outcome. AUROC "
        f"with a bootstrap 95% interval where at least {MIN_GROUP_EVENTS} of each outcome.</p>",
        table(
            ["version", "patients", "n", "events", "observed", "predicted", "O:E", "AUROC"],
            performance_by_version(predictions),
        ),
    ]
    rows = []
    for attribute, key in AUDITED_GROUPS:
        groups = [getattr(p, key) for p in predictions]
        for s in subgroup_performance(attribute, groups, y, risk):
            rows.append(
                [
                    s.attribute,
                    s.group,
                    s.n,
                    s.events,
                    percent(s.observed_rate),
                    percent(s.mean_predicted),
                    "n/a" if s.auroc is None else f"{s.auroc:.2f}",
                ]
            )
    parts.append(table(["", "group", "n", "events", "observed", "predicted", "AUROC"], rows))
    parts += threshold_sections(predictions)
    if previous:
        names = sorted(predictions[0].features)
        drift = [
            [
                name,
                f"{population_stability_index(np.array([p.features[name] for p in previous]), np.array([p.features[name] for p in predictions])):.3f}",
            ]
            for name in names
        ]
        parts += ["<h3>Drift against the previous period (PSI; above 0.25 is a major shift)</h3>"]
        parts.append(table(["feature", "PSI"], drift))
    return parts


MIN_GROUP_EVENTS = 5
"""Fewer events or non-events than this: the group is listed, its AUROC not judged."""


def performance_by_version(predictions: Sequence[LabelledPrediction]) -> list[list[object]]:
    """One row per model version and treated/untreated: pooled, a good version hides behind
    a poor one, and treated patients' outcomes reflect the treatment as well as the risk."""
    rows: list[list[object]] = []
    versions = sorted({p.model_version for p in predictions}, key=lambda v: (len(v), v))
    for version in versions:
        for treated in (False, True):
            group = [p for p in predictions if p.model_version == version and p.treated == treated]
            if not group:
                continue
            y = np.array([p.label for p in group], dtype=float)
            risk = np.array([p.risk for p in group])
            events = int(y.sum())
            auroc = (
                str(evaluate_risks(y, risk, rounds=200, seed=0, names=("auroc",))["auroc"])
                if min(events, len(y) - events) >= MIN_GROUP_EVENTS
                else "too few to judge"
            )
            rows.append(
                [
                    f"v{version}",
                    "treated" if treated else "untreated",
                    len(group),
                    events,
                    percent(float(y.mean())),
                    percent(float(risk.mean())),
                    f"{y.sum() / risk.sum():.2f}" if risk.sum() > 0 else "n/a",
                    auroc,
                ]
            )
    return rows


def _share(estimate: Estimate | None) -> str:
    if estimate is None:
        return "n/a"
    return f"{percent(estimate.value)} ({percent(estimate.low)}-{percent(estimate.high)})"


def threshold_sections(predictions: Sequence[LabelledPrediction]) -> list[str]:
    """Flag rate, sensitivity, PPV and NNE by sex, age band, race and ethnicity at each prediction's own
    threshold (a card or none), with Wilson intervals and the equal-opportunity gap; groups
    too small to judge are listed, marked, and left out of the gap."""
    scored = [p for p in predictions if p.threshold is not None]
    if not scored:
        return []
    y = np.array([p.label for p in scored], dtype=float)
    flagged = [p.risk >= p.threshold for p in scored]  # type: ignore[operator]
    rows: list[list[object]] = []
    gaps = []
    for attribute, key in AUDITED_GROUPS:
        found = threshold_performance(attribute, [getattr(p, key) for p in scored], y, flagged)
        gap = equal_opportunity_gap(found)
        gaps.append(f"{attribute}: {'n/a' if gap is None else f'{gap:.2f}'}")
        for r in found:
            nne = r.number_needed_to_evaluate
            rows.append(
                [
                    attribute,
                    r.group,
                    r.n,
                    r.events,
                    _share(r.flag_rate),
                    _share(r.sensitivity),
                    _share(r.ppv),
                    "n/a" if nne is None else f"{nne:.1f}",
                    "" if r.judged else f"too few to judge (< {MIN_GROUP_EVENTS} of an outcome)",
                ]
            )
    return [
        "<h3>At the decision threshold, by group (95% Wilson intervals)</h3>",
        table(
            ["", "group", "n", "events", "flagged", "sensitivity", "PPV", "NNE", ""],
            rows,
        ),
        "<p>Equal-opportunity gap (largest difference in sensitivity between judged groups): "
        + "; ".join(gaps)
        + ".</p>",
    ]
