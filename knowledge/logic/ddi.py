"""Pairwise drug interactions between the orders of a call and the patient's medications.

A rule names two value sets (its first two ``value_sets``): an interaction is an ingredient
of the first in one medication and an ingredient of the second in another. The orders of
this call (the selected drafts for order-select, all drafts for order-sign) are checked,
by RxNorm ingredient and in either direction, against the patient's active medications
and the other draft orders. When both value sets are the same the rule finds therapeutic
duplication (two NSAIDs, say), including the same ingredient in two products. Stopped,
completed or cancelled medications never count: only ``status = active`` requests from
the record and drafts of the call are used. One card per interacting pair of orders and
ingredients; drug names come from the ingredient map, not order text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fhir_client.record import MedicationEntry, medication_entry
from hooks.cards import Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.logic.common import delete_draft_suggestion, member_name, members
from knowledge.rule import EvaluationContext, Finding, Knowledge

_DRAFT_STATUSES = frozenset({"draft", "active"})


@dataclass(frozen=True)
class Partner:
    """A medication an order is checked against: active, or another draft of the call."""

    entry: MedicationEntry
    draft: bool


def drug_pair_interaction(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    first, second = artifact.value_sets[:2]
    symmetric = first == second
    findings: list[Finding] = []
    seen: set[tuple[frozenset[str], frozenset[str]]] = set()
    for order in ctx.draft_orders:
        for partner in partners(ctx, order):
            for a, b, first_is_draft in _pairs(knowledge, order, partner.entry, first, second):
                key = (
                    _pair_key(order, partner.entry),
                    frozenset((a, b)) if symmetric else frozenset((f"1:{a}", f"2:{b}")),
                )
                if key in seen:
                    continue
                seen.add(key)
                findings.append(_finding(artifact, knowledge, order, partner, a, b, first_is_draft))
    return findings


def partners(ctx: EvaluationContext, order: MedicationEntry) -> Iterator[Partner]:
    """Active medications, then the call's other draft medication orders."""
    for active in ctx.record.active_medications():
        if active.reference is None or active.reference != order.reference:
            yield Partner(active, draft=False)
    draft_resources = getattr(ctx.context, "draft_resources", None)
    resources = draft_resources() if callable(draft_resources) else []
    for resource in resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        entry = medication_entry(resource)
        if entry is None or entry.status not in _DRAFT_STATUSES:
            continue
        if entry.reference is not None and entry.reference == order.reference:
            continue
        yield Partner(entry, draft=True)


def _pairs(
    knowledge: Knowledge, order: MedicationEntry, partner: MedicationEntry, first: str, second: str
) -> Iterator[tuple[str, str, bool]]:
    """(first member, second member, first is in the draft order) per interacting pair, where a
    member is an ingredient of the value set or a product listed in it (see ``members``)."""
    for a in sorted(members(knowledge, order, first)):
        for b in sorted(members(knowledge, partner, second)):
            yield a, b, True
    for b in sorted(members(knowledge, order, second)):
        for a in sorted(members(knowledge, partner, first)):
            yield a, b, False


def _pair_key(a: MedicationEntry, b: MedicationEntry) -> frozenset[str]:
    return frozenset(
        {a.reference or f"unidentified:{id(a)}", b.reference or f"unidentified:{id(b)}"}
    )


def _finding(
    artifact: RuleArtifact,
    knowledge: Knowledge,
    order: MedicationEntry,
    partner: Partner,
    first: str,
    second: str,
    first_is_draft: bool,
) -> Finding:
    first_set, second_set = artifact.value_sets[:2]
    first_name = member_name(knowledge, first_set, first)
    second_name = member_name(knowledge, second_set, second)
    ordered, other = (first_name, second_name) if first_is_draft else (second_name, first_name)
    label = artifact.suggestion_labels["remove_draft"]
    suggestions: list[Suggestion] = []
    first_suggestion = delete_draft_suggestion(label.format(drug=ordered), order.reference)
    if first_suggestion is not None:
        suggestions.append(first_suggestion)
    if partner.draft:
        second_suggestion = delete_draft_suggestion(
            label.format(drug=other), partner.entry.reference, recommended=False
        )
        if second_suggestion is not None:
            suggestions.append(second_suggestion)
    return Finding(
        card="interaction",
        values={
            "first_drug": first_name,
            "second_drug": second_name,
            "ordered_drug": ordered,
            "other_drug": other,
            "other_status": "another draft order" if partner.draft else "an active medication",
        },
        suggestions=tuple(suggestions),
        selection_behavior="at-most-one",
    )
