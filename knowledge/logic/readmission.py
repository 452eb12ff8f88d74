"""Risk of early death or unplanned readmission at discharge: the LACE index.

The encounter being discharged is the context's ``encounterId``. Its period gives the
length of stay (calendar days from admission to discharge, the evaluation time when the
period has no end yet). The admission is acute when the encounter is an emergency one or
an emergency encounter began within the artifact's linking window before admission (the
patient came through the emergency department); that visit is then the admission route,
not a prior visit, and is not counted in E. Comorbidities are conditions recorded by
discharge, grouped into the LACE paper's Charlson categories by the artifact's value sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_client.record import EncounterEntry, PatientRecord, encounter_entry
from hooks.cards import Action, Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.calculators.lace import LaceResult, charlson_score, lace_index
from knowledge.logic.common import (
    ever_recorded_condition,
    format_date,
    proposed_service_request,
    threshold,
    value_set,
)
from knowledge.rule import EvaluationContext, Finding, Knowledge

_EMERGENCY = "EMER"


@dataclass(frozen=True)
class LaceAssessment:
    """LACE at one discharge, with the facts each component was computed from."""

    result: LaceResult
    stay: EncounterEntry
    length_of_stay_days: int
    acute_admission: bool
    charlson: int
    comorbidities: tuple[str, ...]
    ed_visits_6_months: int


def assess_lace(
    record: PatientRecord,
    stay_resource: Mapping[str, Any],
    discharge: datetime,
    thresholds: Mapping[str, Any],
    knowledge: Knowledge,
) -> LaceAssessment | None:
    """LACE for the stay ``stay_resource`` discharged at ``discharge``, from data recorded by then.

    None when the stay has no start. Nothing dated after ``discharge`` is looked at, so the
    same function serves the rule at the bedside and the models' training on history.
    """
    stay = encounter_entry(stay_resource)
    if stay.start is None:
        return None
    link = timedelta(hours=threshold(thresholds, "ed_admission_link_hours"))
    lookback = timedelta(days=threshold(thresholds, "ed_lookback_days"))
    emergencies = [
        e
        for e in record.encounters(as_of=stay.start)
        if e.class_code == _EMERGENCY and e.reference != stay.reference and e.start is not None
    ]
    route = _admission_route(emergencies, stay.start, link)
    acute = stay.class_code == _EMERGENCY or route is not None
    prior_visits = sum(
        1
        for e in emergencies
        if e is not route and stay.start - lookback <= e.start < stay.start  # type: ignore[operator]
    )
    categories = tuple(
        category
        for category, value_set_id in threshold(thresholds, "charlson_value_sets").items()
        if ever_recorded_condition(record, value_set(knowledge, value_set_id), as_of=discharge)
    )
    charlson = charlson_score(categories)
    days = max((discharge.date() - stay.start.date()).days, 0)
    result = lace_index(
        length_of_stay_days=days,
        acute_admission=acute,
        charlson=charlson,
        ed_visits_6_months=prior_visits,
    )
    return LaceAssessment(result, stay, days, acute, charlson, categories, prior_visits)


def lace_readmission(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    encounter_id = getattr(ctx.context, "encounterId", None)
    resource = ctx.record.resolve(f"Encounter/{encounter_id}") if encounter_id else None
    if resource is None:
        return []
    assessment = assess_lace(ctx.record, resource, ctx.index_time, t, knowledge)
    if assessment is None or assessment.result.score < threshold(t, "high_risk_min_score"):
        return []
    follow_up = transitional_care_suggestion(
        artifact.suggestion_labels["transitional_care"],
        ctx.record.patient_id,
        f"LACE index {assessment.result.score}",
    )
    return [Finding(card="high_risk", values=_values(assessment, t), suggestions=(follow_up,))]


FOLLOW_UP_DAYS = 7
"""Outpatient follow-up within 7 days of discharge went with fewer 30-day readmissions
(Hernandez 2010, cited by the LACE rule)."""


def transitional_care_suggestion(label: str, patient_id: str, reason: str) -> Suggestion:
    """A draft ServiceRequest proposing an early follow-up visit (what the LACE rule and the
    readmission model advise for patients at high risk)."""
    return Suggestion(
        label=label,
        actions=[
            Action(
                type="create",
                description=f"Transitional care follow-up within {FOLLOW_UP_DAYS} days",
                resource=proposed_service_request(
                    patient_id,
                    {
                        "text": "Transitional care follow-up visit within "
                        f"{FOLLOW_UP_DAYS} days of discharge"
                    },
                    reason,
                ),
            )
        ],
    )


def _admission_route(
    emergencies: list[EncounterEntry], admitted: datetime, link: timedelta
) -> EncounterEntry | None:
    """The emergency visit the patient was admitted through, if one began just before."""
    candidates = [e for e in emergencies if admitted - link <= e.start <= admitted]  # type: ignore[operator]
    return max(candidates, key=lambda e: e.start, default=None)  # type: ignore[arg-type,return-value]


def _values(assessment: LaceAssessment, t: Mapping[str, Any]) -> dict[str, object]:
    result = assessment.result
    return {
        "score": result.score,
        "high_risk_min": threshold(t, "high_risk_min_score"),
        "admitted": format_date(assessment.stay.start),
        "days": assessment.length_of_stay_days,
        "l_points": result.length_of_stay_points,
        "acute": "yes" if assessment.acute_admission else "no",
        "a_points": result.acuity_points,
        "charlson": assessment.charlson,
        "comorbidities": ", ".join(c.replace("-", " ") for c in sorted(assessment.comorbidities))
        or "none recorded",
        "c_points": result.comorbidity_points,
        "ed_visits": assessment.ed_visits_6_months,
        "e_points": result.ed_visit_points,
    }
