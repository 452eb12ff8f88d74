"""The plots informaticians look at in MLflow: ROC, precision-recall, calibration, decision curve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; the service and CI have no display

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from evaluation.metrics import Array, DecisionCurve
from evaluation.spc import PChart


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(5.5, 4.5), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return figure, axes


def roc_plot(y: Array, scores: Mapping[str, Array]) -> Figure:
    figure, axes = _figure("ROC curve (test period)", "1 - specificity", "sensitivity")
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        axes.plot(fpr, tpr, label=name)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.legend(loc="lower right")
    return figure


def precision_recall_plot(y: Array, scores: Mapping[str, Array]) -> Figure:
    figure, axes = _figure("Precision-recall curve (test period)", "recall", "precision")
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        axes.plot(recall, precision, label=name)
    axes.axhline(float(np.mean(y)), linestyle=":", color="grey", label="prevalence")
    axes.legend(loc="upper right")
    return figure


def calibration_plot(
    y: Array, risks: Mapping[str, Array], bins: int = 10, title: str = "Calibration (test period)"
) -> Figure:
    """Observed rate against mean predicted risk, per quantile bin of each model's risk."""
    figure, axes = _figure(title, "predicted risk", "observed rate")
    top = 0.05
    for name, p in risks.items():
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=f"{name} ({bins} bins of risk)")
        top = float(max(top, np.max(p), np.max(observed)))
    axes.plot([0, top], [0, top], linestyle=":", color="grey", label="ideal")
    axes.legend(loc="upper left")
    return figure


def decision_curve_plot(curve: DecisionCurve, threshold: float | None) -> Figure:
    figure, axes = _figure("Decision curve", "threshold probability", "net benefit")
    axes.plot(curve.thresholds, curve.model, label="model")
    axes.plot(curve.thresholds, curve.treat_all, label="treat all")
    axes.axhline(0.0, color="grey", linestyle=":", label="treat none")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", label=f"chosen {threshold:.2f}")
    low = float(min(np.min(curve.model), 0.0))
    axes.set_ylim(low - 0.01, float(np.max(curve.treat_all[:1])) + 0.02)
    axes.legend(loc="upper right")
    return figure


def p_chart_plot(chart: PChart, title: str, changes: Sequence[tuple[str, str]] = ()) -> Figure:
    """A p-chart: proportion per period, center, 3-sigma limits, signals, version changes.

    `changes` are (period label, version) pairs, e.g. from `evaluation.spc.version_changes`;
    each gets a dashed vertical line labelled "v<version>" at that period.
    """
    figure, axes = _figure(title, "period", "proportion")
    labels = [point.label for point in chart.points]
    x = np.arange(len(labels))

    def values(attribute: str) -> np.ndarray:
        return np.array(
            [
                np.nan if getattr(p, attribute) is None else getattr(p, attribute)
                for p in chart.points
            ],
            dtype=float,
        )

    axes.plot(x, values("proportion"), marker="o", color="tab:blue", label="proportion")
    if chart.center is not None:
        axes.axhline(chart.center, color="black", label=f"center {chart.center:.3f}")
    axes.step(x, values("upper"), where="mid", color="grey", label="3-sigma limits")
    axes.step(x, values("lower"), where="mid", color="grey")
    flagged = [(i, p.proportion) for i, p in enumerate(chart.points) if p.signals]
    if flagged:
        axes.scatter(*zip(*flagged, strict=True), color="red", zorder=3, label="signal")
    for label, version in changes:
        if label not in labels:
            raise ValueError(f"version change at unknown period {label!r}")
        position = labels.index(label)
        axes.axvline(position, color="tab:purple", linestyle="--", linewidth=1)
        axes.text(position + 0.1, 0.98, f"v{version}", rotation=90, va="top", fontsize=8)
    axes.set_xticks(x, labels, rotation=45, ha="right")
    axes.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    axes.set_ylim(0.0, 1.0)
    axes.legend(loc="upper left", fontsize=8)
    return figure
