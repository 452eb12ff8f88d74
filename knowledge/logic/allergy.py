"""Draft medication orders against the patient's active drug allergies.

An allergy coded in RxNorm (an ingredient or a product) names its ingredients; the order
matches when it contains one of them (critical: a documented allergy to this very drug), or
when it contains an ingredient of the same cross-reactive class listed in the artifact
(warning). An allergy coded as a SNOMED CT finding ("allergy to penicillin") names its class
through the artifact's class value sets. Refuted and inactive allergies never count.
"""

from __future__ import annotations

from knowledge.artifact import RuleArtifact
from knowledge.logic.common import (
    delete_draft_suggestion,
    drug_names,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge


def drug_allergy(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    if not ctx.draft_orders:
        return []
    t = artifact.thresholds
    cross_reactive = frozenset(threshold(t, "cross_reactive_classes"))
    class_sets = {
        klass: value_set(knowledge, value_set_id)
        for klass, value_set_id in threshold(t, "allergy_class_value_sets").items()
    }
    meds = knowledge.medications
    allergen_ingredients: set[str] = set()
    allergen_classes: set[str] = set()
    for allergy in ctx.record.active_allergies():
        ingredients = meds.ingredients(allergy.codes)
        allergen_ingredients |= ingredients
        allergen_classes |= meds.classes(allergy.codes) & cross_reactive
        allergen_classes |= {k for k, codes in class_sets.items() if allergy.codes & codes}
    if not allergen_ingredients and not allergen_classes:
        return []
    findings = []
    for order in ctx.draft_orders:
        ordered = meds.ingredients(order.codes)
        same = ordered & allergen_ingredients
        related = {
            rx
            for rx in ordered - same
            if meds.ingredient_classes.get(rx, frozenset()) & allergen_classes
        }
        if not same and not related:
            continue
        card = "same_ingredient" if same else "same_class"
        drug = drug_names(knowledge, same or related)
        classes = sorted(
            {
                c
                for rx in related
                for c in meds.ingredient_classes.get(rx, ())
                if c in allergen_classes
            }
        )
        suggestion = delete_draft_suggestion(
            artifact.suggestion_labels["remove_order"].format(drug=drug), order.reference
        )
        findings.append(
            Finding(
                card=card,
                values={"drug": drug, "drug_class": ", ".join(classes) or "-"},
                suggestions=(suggestion,) if suggestion else (),
            )
        )
    return findings
