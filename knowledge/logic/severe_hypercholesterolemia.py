"""ACC/AHA 2018: LDL-C of 190 mg/dL or more in adults 20-75 calls for a statin.

In severe hypercholesterolemia the guideline recommends maximally tolerated statin therapy
without estimating 10-year risk (class I, level B-R). The LDL-C is the newest within the
artifact's lookback, reported or estimated from the panel (knowledge/logic/lipids.py); the
patient must not take a statin already and must not be pregnant (the guideline advises
stopping statins when pregnancy occurs).
"""

from __future__ import annotations

from datetime import timedelta

from knowledge.artifact import RuleArtifact
from knowledge.logic.common import format_date, living_age, threshold, value_set
from knowledge.logic.lipids import latest_ldl, lipid_molar_masses
from knowledge.rule import EvaluationContext, Finding, Knowledge


def severe_hypercholesterolemia(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    record = ctx.record
    age = living_age(record, ctx.as_of)
    if age is None or not threshold(t, "min_age") <= age <= threshold(t, "max_age"):
        return []
    statin = threshold(t, "statin_class")
    if any(statin in knowledge.medications.classes(m.codes) for m in record.active_medications()):
        return []
    pregnancy = value_set(knowledge, "preventive-pregnancy-conditions")
    if record.has_active_condition(pregnancy, as_of=ctx.as_of):
        return []
    ldl = latest_ldl(
        record,
        knowledge,
        as_of=ctx.as_of,
        max_age=timedelta(days=threshold(t, "lookback_days")),
        molar_masses=lipid_molar_masses(t),
    )
    # Compared on the whole number the card shows, so the card never contradicts its band.
    if ldl is None or round(ldl.value) < threshold(t, "ldl_at_or_above_mg_dl"):
        return []
    return [
        Finding(
            card="statin_recommended",
            values={
                "ldl_value": f"{ldl.value:.0f}",
                "ldl": ldl.text,
                "measured": format_date(ldl.measured),
                "age": age,
                "threshold": threshold(t, "ldl_at_or_above_mg_dl"),
                "lookback_days": threshold(t, "lookback_days"),
            },
        )
    ]
