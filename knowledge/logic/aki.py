"""Acute kidney injury by the NHS England algorithm (NHS/PSA/D/2014/010), and nephrotoxic orders.

The latest serum creatinine within the artifact's window is C1; it is staged against the
patient's earlier creatinine results by the algorithm (knowledge/calculators/aki.py), for
adults and children (for whom C1's own reference range gives the stage 3 limit). patient-view: a card with the stage, C1, the reference value and the ratio.
order-sign: a card for each draft order of a drug the artifact lists as nephrotoxic, while
the patient has AKI by the algorithm. No AKI by the algorithm, or no baseline, gives no card:
the rule never says that there is no AKI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from fhir_client.record import Code, MedicationEntry, PatientRecord
from fhir_client.units import UnitError
from knowledge.artifact import RuleArtifact
from knowledge.calculators.aki import (
    AKI_RATIO,
    PAEDIATRIC_STAGE_3_ULRI_MULTIPLE,
    RISE_48H_UMOL_L,
    STAGE_2_RATIO,
    STAGE_3_CREATININE_UMOL_L,
    STAGE_3_RATIO,
    AkiResult,
    CreatinineResult,
    creatinine_umol_l,
    nhs_aki_stage,
)
from knowledge.calculators.ckd_epi import CREATININE_MOLAR_MASS_G_PER_MOL, creatinine_mg_dl
from knowledge.logic.common import (
    delete_draft_suggestion,
    drug_codes,
    drug_names,
    format_date,
    ingredients_in,
    living_age,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge

_BASIS = {
    "RV1": "RV1, the lowest result in the 7 days before",
    "RV2": "RV2, the median of the results 8 to 365 days before",
}


def aki_nhs_england(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    orders = _nephrotoxic_orders(ctx.draft_orders, knowledge, threshold(t, "nephrotoxic_drugs"))
    if ctx.hook == "order-sign" and not orders:
        return []
    result = _assess(ctx, knowledge, threshold(t, "current_result_max_age_days"))
    if result is None or result.stage == 0:
        return []
    values = _values(result)
    # Stage 2 and 3 are a doubling of creatinine or more; the artifact explains the indicators.
    severity = "stage_1" if result.stage == 1 else "stage_2_3"
    if ctx.hook == "patient-view":
        return [Finding(card=f"aki_{severity}", values=values)]
    findings = []
    for order, drug, reason in orders:
        label = artifact.suggestion_labels["remove_order"].format(drug=drug)
        suggestion = delete_draft_suggestion(label, order.reference)
        findings.append(
            Finding(
                card=f"nephrotoxic_order_{severity}",
                values={**values, "drug": drug, "why": reason},
                suggestions=(suggestion,) if suggestion else (),
            )
        )
    return findings


def _nephrotoxic_orders(
    drafts: Sequence[MedicationEntry], knowledge: Knowledge, entries: Sequence[Mapping[str, Any]]
) -> list[tuple[MedicationEntry, str, str]]:
    """(order, drug names, why it is listed) for each draft order of a listed drug."""
    found = []
    for order in drafts:
        for entry in entries:
            wanted = drug_codes(knowledge, entry["value_set"])
            ingredients = ingredients_in(knowledge, order, wanted)
            if ingredients:
                found.append((order, drug_names(knowledge, ingredients), entry["reason"]))
    return found


def _assess(ctx: EvaluationContext, knowledge: Knowledge, max_age_days: int) -> AkiResult | None:
    """The algorithm's result for the latest creatinine, or None when it cannot be applied."""
    codes = value_set(knowledge, "serum-creatinine")
    # latest_value gives no value when the newest result is a bound or unreadable: C1 is
    # then unknown, and an older result must not stand in for it.
    latest = ctx.record.latest_value(
        codes,
        "umol/L",
        as_of=ctx.as_of,
        max_age=timedelta(days=max_age_days),
        molar_mass=CREATININE_MOLAR_MASS_G_PER_MOL,
    )
    if latest is None or latest.effective is None:
        return None
    age = living_age(ctx.record, latest.effective)
    if age is None:
        return None
    c1 = CreatinineResult(latest.value, latest.effective)
    try:
        return nhs_aki_stage(
            c1,
            _results_before(ctx.record, codes, c1.when),
            age=age,
            upper_reference_limit=latest.reference_high,
        )
    except ValueError:  # an impossible age or creatinine
        return None


def _results_before(
    record: PatientRecord, codes: frozenset[Code], before: datetime
) -> list[CreatinineResult]:
    """Dated creatinine results before ``before`` in umol/L, each Observation once."""
    seen: set[str] = set()
    results = []
    for measurement in record.measurements(codes, as_of=before):
        if measurement.effective is None or measurement.effective >= before:
            continue
        # An Observation coded with two creatinine codes is indexed under each of them.
        if measurement.reference is not None:
            if measurement.reference in seen:
                continue
            seen.add(measurement.reference)
        try:
            value = creatinine_umol_l(measurement.value, measurement.unit)
        except UnitError:
            continue  # a unit we cannot convert is left out, never misread
        results.append(CreatinineResult(value, measurement.effective))
    return results


def _values(result: AkiResult) -> dict[str, object]:
    # A staged result always has a reference value: without one the stage is 0.
    assert result.ratio is not None and result.basis is not None
    reference = result.reference_value
    assert reference is not None
    ratio = _ratio_text(result.ratio)
    rise = (
        f"{_creatinine_text(result.rise_48h)} above the lowest result within 48 hours"
        if result.rise_48h is not None
        else "no earlier result within 48 hours"
    )
    return {
        "stage": result.stage,
        "criterion": _criterion(result, ratio),
        "creatinine": _creatinine_text(result.c1.value),
        "measured": format_date(result.c1.when),
        "reference": _creatinine_text(reference),
        "basis": _BASIS[result.basis],
        "ratio": ratio,
        "rise_48h": rise,
    }


def _criterion(result: AkiResult, ratio: str) -> str:
    if result.criterion == "creatinine_above_354":
        return (
            f"C1 is above {STAGE_3_CREATININE_UMOL_L:g} µmol/L with a ratio C1/RV of {ratio} "
            f"(at least {AKI_RATIO:g})"
        )
    if result.criterion == "creatinine_above_3x_ulri":
        return (
            f"C1 is above {PAEDIATRIC_STAGE_3_ULRI_MULTIPLE:g} times the upper limit of the "
            f"laboratory's reference interval for the child with a ratio C1/RV of {ratio} "
            f"(at least {AKI_RATIO:g})"
        )
    if result.criterion == "rise_48h":
        return (
            f"a rise of more than {RISE_48H_UMOL_L:g} µmol/L within 48 hours "
            f"(the ratio C1/RV, {ratio}, is below {AKI_RATIO:g})"
        )
    bound = {1: AKI_RATIO, 2: STAGE_2_RATIO, 3: STAGE_3_RATIO}[result.stage]
    return f"the ratio C1/RV is {ratio} (at least {bound:g})"


def _ratio_text(ratio: float) -> str:
    # Truncated, not rounded: 2.996 is stage 2 and must not be shown as 3.00.
    return f"{math.floor(ratio * 100 + 1e-9) / 100:.2f}"


def _creatinine_text(umol_l: float) -> str:
    return (
        f"{umol_l:.1f}".removesuffix(".0")
        + f" µmol/L ({creatinine_mg_dl(umol_l, 'umol/L'):.2f} mg/dL)"
    )
