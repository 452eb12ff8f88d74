"""Chronic kidney disease evident from eGFR but missing from the problem list (KDIGO 2024).

KDIGO defines CKD as abnormalities of kidney structure or function present for more than
3 months; a GFR below 60 mL/min/1.73 m2 (categories G3a-G5) is such an abnormality on its
own. The rule looks at the patient's eGFR values, newest first: the latest must be recent
and below the threshold, and the values must have stayed below it (no value at or above it
in between) for at least the artifact's minimum span. Then, if no CKD diagnosis is active,
it suggests adding CKD with the stage of the latest eGFR as a problem-list Condition.

eGFR source: the laboratory's reported eGFR when the record has any (that is the number the
clinician sees and the laboratory's equation is applied consistently); only when no eGFR is
reported at all is it computed from serum creatinine with CKD-EPI 2021, at the patient's age
on each measurement day. eGFR values are rounded to whole numbers, as reported, before they
are compared and staged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.condition import Condition

from fhir_client.codes import SNOMED
from fhir_client.record import PatientRecord
from fhir_client.units import UnitError, convert, normalize_unit
from hooks.cards import Action, Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.calculators.ckd_epi import CREATININE_MOLAR_MASS_G_PER_MOL, egfr_ckd_epi_2021
from knowledge.logic.common import format_date, living_age, round_half_up, threshold, value_set
from knowledge.rule import EvaluationContext, Finding, Knowledge

# The eGFR LOINC codes are defined as normalised to 1.73 m2 body surface, so a result labelled
# plainly "mL/min" (as some records, Synthea among them, do) is the same quantity.
_EGFR_UNITS = frozenset({"mL/min/{1.73_m2}", "mL/min"})
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


@dataclass(frozen=True)
class _Egfr:
    value: int
    when: datetime
    reference: str | None


def ckd_not_on_problem_list(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    record, as_of = ctx.record, ctx.as_of
    age = living_age(record, as_of)
    if age is None or age < threshold(t, "min_age"):
        return []
    if record.has_active_condition(value_set(knowledge, "ckd-conditions"), as_of=as_of):
        return []
    series, source = _egfr_series(record, as_of, knowledge)
    run = _low_run(series, as_of, t)
    if run is None:
        return []
    latest, first = run[0], run[-1]
    span = (latest.when - first.when).days
    stage = _stage(latest.value, t)
    values: dict[str, object] = {
        "egfr": latest.value,
        "measured": format_date(latest.when),
        "first_low": format_date(first.when),
        "days": span,
        "count": len(run),
        "stage": stage["category"],
        "stage_range": stage["range"],
        "below": threshold(t, "egfr_below"),
        "min_days": threshold(t, "min_days_apart"),
        "source": source,
        "values": "\n".join(
            f"- {e.when.date().isoformat()}: {e.value} mL/min/1.73 m²"
            for e in run[: threshold(t, "values_listed")]
        ),
    }
    suggestion = _add_condition(ctx, artifact, stage, run, values)
    return [Finding(card="not_on_problem_list", values=values, suggestions=(suggestion,))]


def _egfr_series(
    record: PatientRecord, as_of: datetime, knowledge: Knowledge
) -> tuple[list[_Egfr], str]:
    """eGFR values newest first, and where they came from (reported or computed)."""
    reported: list[_Egfr] = []
    for m in record.measurements(value_set(knowledge, "ckd-egfr"), as_of=as_of):
        if m.effective is None:
            continue
        if normalize_unit(m.unit) not in _EGFR_UNITS:
            continue  # e.g. a value reported in mL/s: not converted, never misread
        reported.append(_Egfr(round_half_up(m.value), m.effective, m.reference))
    if reported:
        return reported, "eGFR as reported by the laboratory"
    computed: list[_Egfr] = []
    if record.gender in ("female", "male"):
        creatinine = value_set(knowledge, "serum-creatinine")
        for m in record.measurements(creatinine, as_of=as_of):
            age = record.age(m.effective.date()) if m.effective else None
            if age is None or m.effective is None:
                continue
            try:
                scr = convert(m.value, m.unit, "mg/dL", CREATININE_MOLAR_MASS_G_PER_MOL)
                value = egfr_ckd_epi_2021(scr, "mg/dL", age=age, sex=record.gender)  # type: ignore[arg-type]
            except (UnitError, ValueError):
                continue
            computed.append(_Egfr(round_half_up(value), m.effective, m.reference))
    return computed, "eGFR computed with the CKD-EPI 2021 creatinine equation (no eGFR reported)"


def _low_run(series: list[_Egfr], as_of: datetime, t: Mapping[str, Any]) -> list[_Egfr] | None:
    """The newest uninterrupted run of values below the threshold, if it qualifies."""
    if not series:
        return None
    below = threshold(t, "egfr_below")
    latest = series[0]
    if latest.when < as_of - timedelta(days=threshold(t, "latest_max_age_days")):
        return None
    run: list[_Egfr] = []
    for egfr in series:
        if egfr.value >= below:
            break
        run.append(egfr)
    if not run or (run[0].when - run[-1].when).days < threshold(t, "min_days_apart"):
        return None
    return run


def _stage(egfr: int, t: Mapping[str, Any]) -> dict[str, str]:
    """The KDIGO GFR category of a value below the CKD threshold, with its SNOMED CT code."""
    for stage in threshold(t, "gfr_categories"):
        if egfr >= stage["min"]:
            return stage
    raise ValueError(f"no GFR category for eGFR {egfr}")  # the artifact's last band has min 0


def _add_condition(
    ctx: EvaluationContext,
    artifact: RuleArtifact,
    stage: Mapping[str, Any],
    run: list[_Egfr],
    values: Mapping[str, object],
) -> Suggestion:
    t = artifact.thresholds
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": _CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {
            "coding": [
                {
                    "system": _CONDITION_VERIFICATION,
                    "code": threshold(t, "suggested_verification_status"),
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": _CONDITION_CATEGORY,
                        "code": "problem-list-item",
                        "display": "Problem List Item",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": SNOMED, "code": stage["snomed"], "display": stage["display"]}],
            "text": stage["display"],
        },
        "subject": {"reference": f"Patient/{ctx.context.patientId}"},
        "onsetDateTime": run[-1].when.date().isoformat(),
        "note": [
            {
                "text": (
                    f"eGFR below {values['below']} mL/min/1.73 m2 for {values['days']} days "
                    f"({values['first_low']} to {values['measured']}; latest {values['egfr']}). "
                    f"KDIGO GFR category {stage['category']}. Source: {values['source']}."
                )
            }
        ],
    }
    references = [e.reference for e in run if e.reference]
    if references:
        resource["evidence"] = [{"detail": [{"reference": ref} for ref in references]}]
    condition = Condition.model_validate(resource).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    label = f"{artifact.suggestion_labels['add_condition']}: {stage['display']}"
    return Suggestion(
        label=label,
        isRecommended=True,
        actions=[Action(type="create", description=label, resource=condition)],
    )
