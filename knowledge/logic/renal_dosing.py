"""Renal dose checks by Cockcroft-Gault creatinine clearance, as drug labels are written.

For each draft order whose ingredient is in one of the artifact's drug entries, creatinine
clearance is computed from the latest serum creatinine and body weight within the lookback
window, with the patient's age on the day of the creatinine. Each entry gives a clearance
below which the drug is to be avoided and, optionally, one below which the dose must be
adjusted (with the label's advice as data). Clearance is rounded to a whole number and the
bands decided on that number, so the card never contradicts itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from knowledge.artifact import RuleArtifact
from knowledge.calculators.ckd_epi import CREATININE_MOLAR_MASS_G_PER_MOL
from knowledge.calculators.cockcroft_gault import creatinine_clearance
from knowledge.logic.common import (
    delete_draft_suggestion,
    drug_codes,
    drug_names,
    format_date,
    ingredients_in,
    round_half_up,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge


def renal_dosing_crcl(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    matched: list[tuple[Any, str, Mapping[str, Any]]] = []
    for order in ctx.draft_orders:
        for entry in threshold(t, "drugs"):
            found = ingredients_in(knowledge, order, drug_codes(knowledge, entry["value_set"]))
            if found:
                drug = drug_names(knowledge, found)
                matched.append((order, drug, entry))
    if not matched:
        return []
    clearance = _clearance(ctx, knowledge, threshold(t, "lookback_days"))
    if clearance is None:
        return []
    crcl, creatinine, weight, measured = clearance
    findings = []
    for order, drug, entry in matched:
        values = {
            "drug": drug,
            "crcl": crcl,
            "creatinine": f"{creatinine:.2f}",
            "weight": f"{weight:.1f}",
            "measured": measured,
        }
        if "avoid_below" in entry and crcl < entry["avoid_below"]:
            suggestion = delete_draft_suggestion(
                artifact.suggestion_labels["remove_order"].format(drug=drug), order.reference
            )
            findings.append(
                Finding(
                    card="avoid",
                    values={**values, "limit": entry["avoid_below"], "why": entry["avoid_reason"]},
                    suggestions=(suggestion,) if suggestion else (),
                )
            )
        elif "avoid_above" in entry and crcl > entry["avoid_above"]:
            findings.append(
                Finding(
                    card="avoid_above",
                    values={
                        **values,
                        "limit": entry["avoid_above"],
                        "why": entry["avoid_above_reason"].strip(),
                    },
                )
            )
        elif "adjust_below" in entry and crcl < entry["adjust_below"]:
            findings.append(
                Finding(
                    card="adjust_dose",
                    values={
                        **values,
                        "limit": entry["adjust_below"],
                        "advice": entry["adjust_advice"],
                    },
                )
            )
    return findings


def _clearance(
    ctx: EvaluationContext, knowledge: Knowledge, lookback_days: int
) -> tuple[int, float, float, str] | None:
    """(CrCl, creatinine mg/dL, weight kg, date) from recent results, or None if not computable."""
    record, window = ctx.record, timedelta(days=lookback_days)
    creatinine = record.latest_value(
        value_set(knowledge, "serum-creatinine"),
        "mg/dL",
        as_of=ctx.as_of,
        max_age=window,
        molar_mass=CREATININE_MOLAR_MASS_G_PER_MOL,
    )
    weight = record.latest_value(
        value_set(knowledge, "body-weight"), "kg", as_of=ctx.as_of, max_age=window
    )
    if creatinine is None or weight is None or record.gender not in ("female", "male"):
        return None
    age = record.age((creatinine.effective or ctx.as_of).date())
    if age is None or record.deceased:
        return None
    try:
        value = creatinine_clearance(
            creatinine.value,
            "mg/dL",
            age=age,
            weight=weight.value,
            weight_unit="kg",
            sex=record.gender,  # type: ignore[arg-type]
        )
    except ValueError:
        return None
    return round_half_up(value), creatinine.value, weight.value, format_date(creatinine.effective)
