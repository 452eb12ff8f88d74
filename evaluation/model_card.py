"""Model cards: what a model is for, what it was trained on, how well and for whom it works.

Section names follow the source attributes that ONC's HTI-1 rule requires for predictive
decision support interventions (45 CFR 170.315(b)(11)(iv)(B), Federal Register 2024,
https://www.federalregister.gov/d/2023-28857); the card is logged to MLflow as JSON and
Markdown with every model version and served by the CDS service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.fairness import SubgroupPerformance, fairness_gaps
from evaluation.metrics import Estimate


def _estimates(metrics: Mapping[str, Estimate]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "value": round(e.value, 4),
            "ci95_low": round(e.low, 4),
            "ci95_high": round(e.high, 4),
        }
        for name, e in metrics.items()
    }


def build_model_card(
    *,
    details: Mapping[str, Any],
    purpose: Mapping[str, Any],
    development: Mapping[str, Any],
    test_metrics: Mapping[str, Estimate],
    baseline: Mapping[str, Any],
    subgroups: Sequence[SubgroupPerformance],
    limitations: Sequence[str],
    maintenance: str,
) -> dict[str, Any]:
    return {
        "details_and_output_of_the_intervention": dict(details),
        "purpose_of_the_intervention": dict(purpose),
        "cautioned_out_of_scope_use": list(limitations),
        "intervention_development": dict(development),
        "quantitative_measures_of_performance": {
            "validity_of_prediction_in_test_data": _estimates(test_metrics),
            "comparison_with_published_baseline": dict(baseline),
            "fairness_of_prediction_in_test_data": [
                {
                    "attribute": s.attribute,
                    "group": s.group,
                    "n": s.n,
                    "events": s.events,
                    "observed_rate": round(s.observed_rate, 4),
                    "mean_predicted_risk": round(s.mean_predicted, 4),
                    "auroc": None if s.auroc is None else round(s.auroc, 4),
                    "calibration_intercept": None
                    if s.calibration_intercept is None
                    else round(s.calibration_intercept, 4),
                }
                for s in subgroups
            ],
            "fairness_gaps_in_test_data": fairness_gaps(list(subgroups)),
            "external_validation": "None yet: validated only on a later time period of the same "
            "data source (temporal validation).",
        },
        "ongoing_maintenance_of_intervention_implementation_and_use": maintenance,
    }


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _markdown_value(value: Any, depth: int) -> list[str]:
    indent = "  " * depth
    if isinstance(value, Mapping):
        lines = []
        for key, item in value.items():
            if isinstance(item, Mapping | list):
                lines.append(f"{indent}- **{_title(key)}**:")
                lines.extend(_markdown_value(item, depth + 1))
            else:
                lines.append(f"{indent}- **{_title(key)}**: {item}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, Mapping):
                lines.append(f"{indent}- " + ", ".join(f"{k}: {v}" for k, v in item.items()))
            else:
                lines.append(f"{indent}- {item}")
        return lines
    return [f"{indent}{value}"]


def model_card_markdown(card: Mapping[str, Any]) -> str:
    name = card["details_and_output_of_the_intervention"].get("name", "Model")
    lines = [f"# Model card: {name}", ""]
    for section, value in card.items():
        lines += [f"## {_title(section)}", "", *_markdown_value(value, 0), ""]
    return "\n".join(lines)
