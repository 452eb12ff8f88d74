"""Metformin orders against kidney function (FDA 2016 labeling; KDIGO 2022).

For every draft order containing metformin (by RxNorm ingredient), eGFR is computed with
CKD-EPI 2021 from the latest creatinine within the artifact's lookback window, at the
patient's age on the day of that measurement. The eGFR is rounded to a whole number, as
laboratories report it, and the bands are decided on that number, so the card never shows
a value that contradicts its band.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir_client.record import MedicationEntry, PatientRecord
from knowledge.artifact import RuleArtifact
from knowledge.calculators.ckd_epi import CREATININE_MOLAR_MASS_G_PER_MOL, egfr_ckd_epi_2021
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


@dataclass(frozen=True)
class _Egfr:
    value: int
    creatinine_mg_dl: float
    measured: datetime | None


def metformin_renal(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    metformin = drug_codes(knowledge, "metformin-ingredient")
    orders = [o for o in ctx.draft_orders if ingredients_in(knowledge, o, metformin)]
    if not orders:
        return []
    lookback_days = threshold(t, "creatinine_lookback_days")
    egfr, missing_reason = _latest_egfr(ctx.record, ctx.as_of, lookback_days, knowledge)
    continuing = any(
        ingredients_in(knowledge, m, metformin) for m in ctx.record.active_medications()
    )
    findings = []
    for order in orders:
        drug = drug_names(knowledge, ingredients_in(knowledge, order, metformin))
        finding = _finding(order, drug, egfr, missing_reason, continuing, artifact)
        if finding is not None:
            findings.append(finding)
    return findings


def _finding(
    order: MedicationEntry,
    drug: str,
    egfr: _Egfr | None,
    missing_reason: str,
    continuing: bool,
    artifact: RuleArtifact,
) -> Finding | None:
    t = artifact.thresholds
    if egfr is None:
        return Finding(
            card="no_recent_renal_function",
            values={
                "drug": drug,
                "reason": missing_reason,
                "lookback_days": threshold(t, "creatinine_lookback_days"),
            },
        )
    values: Mapping[str, object] = {
        "drug": drug,
        "egfr": egfr.value,
        "creatinine": f"{egfr.creatinine_mg_dl:.2f}",
        "measured": format_date(egfr.measured),
        "contraindicated_below": threshold(t, "contraindicated_below_egfr"),
        "initiation_max": threshold(t, "initiation_not_recommended_max_egfr"),
    }
    if egfr.value < threshold(t, "contraindicated_below_egfr"):
        suggestion = delete_draft_suggestion(
            artifact.suggestion_labels["remove_order"], order.reference
        )
        return Finding(
            card="contraindicated",
            values=values,
            suggestions=(suggestion,) if suggestion else (),
        )
    if egfr.value <= threshold(t, "initiation_not_recommended_max_egfr"):
        card = "reassess_continuing" if continuing else "initiation_not_recommended"
        return Finding(card=card, values=values)
    return None


def _latest_egfr(
    record: PatientRecord, as_of: datetime, lookback_days: int, knowledge: Knowledge
) -> tuple[_Egfr | None, str]:
    """(eGFR, "") from the latest creatinine in the window, or (None, why not)."""
    creatinine = record.latest_value(
        value_set(knowledge, "serum-creatinine"),
        "mg/dL",
        as_of=as_of,
        max_age=timedelta(days=lookback_days),
        molar_mass=CREATININE_MOLAR_MASS_G_PER_MOL,
    )
    if creatinine is None:
        return None, f"no serum creatinine result in the last {lookback_days} days"
    if record.gender not in ("female", "male"):
        return None, "the patient's sex, which CKD-EPI 2021 needs, is not recorded"
    measured_on = (creatinine.effective or as_of).date()
    age = record.age(measured_on)
    if age is None:
        return None, "the patient's birth date, which CKD-EPI 2021 needs, is not recorded"
    try:
        value = egfr_ckd_epi_2021(
            creatinine.value,
            "mg/dL",
            age=age,
            sex=record.gender,  # type: ignore[arg-type]
        )
    except ValueError as error:
        return None, f"eGFR could not be computed ({error})"
    return _Egfr(round(value), creatinine.value, creatinine.effective), ""
