"""Potentially inappropriate medications in older adults (AGS Beers Criteria 2023).

For patients at or above the artifact's minimum age, each draft order is checked against
the artifact's Beers categories (category -> value set); each category has its own card
template carrying the Beers rationale and recommendation, so wording stays reviewable data.
"""

from __future__ import annotations

from knowledge.artifact import RuleArtifact
from knowledge.logic.common import (
    delete_draft_suggestion,
    drug_codes,
    drug_names,
    ingredients_in,
    living_age,
    threshold,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge


def beers_potentially_inappropriate(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    age = living_age(ctx.record, ctx.as_of)
    if age is None or age < threshold(t, "min_age"):
        return []
    categories = {
        category: drug_codes(knowledge, value_set_id)
        for category, value_set_id in threshold(t, "categories").items()
    }
    findings = []
    for order in ctx.draft_orders:
        for category, ingredients in categories.items():
            found = ingredients_in(knowledge, order, ingredients)
            if not found:
                continue
            drug = drug_names(knowledge, found)
            suggestion = delete_draft_suggestion(
                artifact.suggestion_labels["remove_order"].format(drug=drug), order.reference
            )
            findings.append(
                Finding(
                    card=category,
                    values={"drug": drug, "age": age},
                    suggestions=(suggestion,) if suggestion else (),
                )
            )
    return findings
