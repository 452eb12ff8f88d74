"""Oral anticoagulation in atrial fibrillation by CHA2DS2-VASc (2023 ACC/AHA/ACCP/HRS).

For a living adult with an active atrial fibrillation condition and no active oral
anticoagulant, the CHA2DS2-VASc score is computed from the record (conditions ever
recorded by the evaluation time, age today, administrative sex). The artifact's thresholds
decide between "recommended" (class 1) and "reasonable" (class 2a) by sex; below both
there is no card.
"""

from __future__ import annotations

from knowledge.artifact import RuleArtifact
from knowledge.calculators.cha2ds2_vasc import Cha2ds2VascInputs, cha2ds2_vasc_points
from knowledge.logic.common import (
    ever_recorded_condition,
    living_age,
    medication_in,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge

_COMPONENT_NAMES = {
    "C": "heart failure",
    "H": "hypertension",
    "A2": "age 75 or over",
    "D": "diabetes",
    "S2": "prior stroke, TIA or thromboembolism",
    "V": "vascular disease",
    "A": "age 65-74",
    "Sc": "female sex",
}


def af_anticoagulation(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    record, as_of, t = ctx.record, ctx.as_of, artifact.thresholds
    age = living_age(record, as_of)
    if age is None or age < threshold(t, "min_age") or record.gender not in ("female", "male"):
        return []
    if not record.has_active_condition(
        value_set(knowledge, "atrial-fibrillation-conditions"), as_of=as_of
    ):
        return []
    anticoagulants = value_set(knowledge, "oral-anticoagulants")
    if any(medication_in(knowledge, m, anticoagulants) for m in record.active_medications()):
        return []

    def history(value_set_id: str) -> bool:
        return ever_recorded_condition(record, value_set(knowledge, value_set_id), as_of=as_of)

    points = cha2ds2_vasc_points(
        Cha2ds2VascInputs(
            age=age,
            sex=record.gender,  # type: ignore[arg-type]
            congestive_heart_failure=history("heart-failure-conditions"),
            hypertension=history("hypertension-conditions"),
            diabetes=history("diabetes-conditions"),
            stroke_tia_or_thromboembolism=history("stroke-tia-thromboembolism-conditions"),
            vascular_disease=history("myocardial-infarction-conditions"),
        )
    )
    score = sum(points.values())
    sex = record.gender
    if score >= threshold(t, f"recommended_min_score_{sex}"):
        card = "anticoagulation_recommended"
        cutoff = threshold(t, f"recommended_min_score_{sex}")
    elif score >= threshold(t, f"reasonable_min_score_{sex}"):
        card = "anticoagulation_reasonable"
        cutoff = threshold(t, f"reasonable_min_score_{sex}")
    else:
        return []
    factors = ", ".join(f"{_COMPONENT_NAMES[k]} (+{v})" for k, v in points.items())
    return [
        Finding(
            card=card,
            values={"score": score, "factors": factors, "sex": sex, "cutoff": cutoff},
        )
    ]
