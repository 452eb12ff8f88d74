"""What is circulating: a card when an outbreak signal is active in the patient's area and
the patient has a recent diagnosis of that syndrome."""

from __future__ import annotations

from datetime import timedelta

from fhir_client.area import coarse_area, home_postal_code
from hooks.cards import Action, Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.logic.common import proposed_service_request, threshold
from knowledge.rule import EvaluationContext, Finding, Knowledge
from knowledge.syndromes import Syndrome


def outbreak_signal(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    patient = ctx.record.patient
    area = coarse_area(home_postal_code(patient)) if patient else None
    if area is None or not ctx.signals:
        return []
    t = artifact.thresholds
    today = ctx.as_of.date()
    active_since = today - timedelta(days=threshold(t, "signal_active_days") - 1)
    recent = ctx.as_of - timedelta(days=threshold(t, "symptom_lookback_days"))
    findings = []
    for syndrome_id in sorted({s.syndrome for s in ctx.signals}):
        syndrome = knowledge.syndromes.get(syndrome_id)
        here = [
            s
            for s in ctx.signals
            if s.syndrome == syndrome_id and s.area == area and active_since <= s.day <= today
        ]
        if syndrome is None or not here or syndrome_id not in artifact.cards:
            continue  # a syndrome without reviewed wording gets no card
        codes = {(c.system, c.code) for c in syndrome.conditions}
        ill = [
            c
            for c in ctx.record.active_conditions(as_of=ctx.as_of)
            if not codes.isdisjoint(c.codes) and c.onset is not None and recent <= c.onset
        ]
        if not ill:
            continue
        latest = max(here, key=lambda s: s.day)
        methods = ", ".join(sorted({s.method for s in here}))
        label = artifact.suggestion_labels.get(syndrome_id)
        findings.append(
            Finding(
                syndrome_id,
                {
                    "syndrome": syndrome.title,
                    "area": area,
                    "signal_day": latest.day.isoformat(),
                    "methods": methods,
                    "diagnosed": min(c.onset for c in ill).date().isoformat(),  # type: ignore[union-attr]
                },
                suggestions=(_testing(label, syndrome, ctx.record.patient_id),) if label else (),
            )
        )
    return findings


def _testing(label: str, syndrome: Syndrome, patient_id: str) -> Suggestion:
    """Draft orders for the syndrome's confirmatory laboratory tests."""
    return Suggestion(
        label=label,
        actions=[
            Action(
                type="create",
                description=f"Order {test.display}",
                resource=proposed_service_request(
                    patient_id,
                    {
                        "coding": [
                            {"system": test.system, "code": test.code, "display": test.display}
                        ]
                    },
                    f"{syndrome.title} circulating in the area",
                ),
            )
            for test in syndrome.lab_tests
        ],
    )
