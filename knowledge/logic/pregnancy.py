"""Drugs contraindicated in pregnancy, ordered for a patient with a current pregnancy.

A pregnancy is current when an active, unrefuted pregnancy condition began within the
artifact's window (a pregnancy recorded as active long ago is a stale problem-list entry,
not a pregnancy, and would otherwise stop all teratogen checking from meaning anything).
Every draft order containing an ingredient of the teratogen value set gets a card with a
suggestion to remove the draft.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fhir_client.record import ConditionEntry, PatientRecord
from knowledge.artifact import RuleArtifact
from knowledge.logic.common import (
    delete_draft_suggestion,
    drug_codes,
    drug_names,
    format_date,
    ingredients_in,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge


def pregnancy_teratogen(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    teratogens = drug_codes(knowledge, "teratogens-contraindicated-in-pregnancy")
    orders = [o for o in ctx.draft_orders if ingredients_in(knowledge, o, teratogens)]
    if not orders:
        return []
    pregnancy = _current_pregnancy(
        ctx.record,
        value_set(knowledge, "preventive-pregnancy-conditions"),
        ctx.as_of,
        threshold(artifact.thresholds, "pregnancy_max_days"),
    )
    if pregnancy is None:
        return []
    findings = []
    for order in orders:
        drugs = drug_names(knowledge, ingredients_in(knowledge, order, teratogens))
        suggestion = delete_draft_suggestion(
            artifact.suggestion_labels["remove_order"].format(drug=drugs), order.reference
        )
        findings.append(
            Finding(
                card="contraindicated_in_pregnancy",
                values={"drug": drugs, "pregnancy_recorded": format_date(pregnancy.onset)},
                suggestions=(suggestion,) if suggestion else (),
            )
        )
    return findings


def _current_pregnancy(
    record: PatientRecord, codes: frozenset[tuple[str, str]], as_of: datetime, max_days: int
) -> ConditionEntry | None:
    earliest = as_of - timedelta(days=max_days)
    current = [
        c
        for c in record.active_conditions(as_of=as_of)
        if c.codes & codes and (c.onset is None or c.onset >= earliest)
    ]
    return max(current, key=lambda c: c.onset or as_of, default=None)
