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

from datetime import datetime, timedelta

from fhir_client.record import EncounterEntry, encounter_entry
from knowledge.artifact import RuleArtifact
from knowledge.calculators.lace import LaceResult, charlson_score, lace_index
from knowledge.logic.common import ever_recorded_condition, format_date, threshold, value_set
from knowledge.rule import EvaluationContext, Finding, Knowledge

_EMERGENCY = "EMER"


def lace_readmission(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    encounter_id = getattr(ctx.context, "encounterId", None)
    resource = ctx.record.resolve(f"Encounter/{encounter_id}") if encounter_id else None
    if resource is None:
        return []
    stay = encounter_entry(resource)
    if stay.start is None:
        return []
    discharge = min(stay.end or ctx.as_of, ctx.as_of)
    link = timedelta(hours=threshold(t, "ed_admission_link_hours"))
    lookback = timedelta(days=threshold(t, "ed_lookback_days"))
    emergencies = [
        e
        for e in ctx.record.encounters(as_of=stay.start)
        if e.class_code == _EMERGENCY and e.reference != stay.reference and e.start is not None
    ]
    route = _admission_route(emergencies, stay.start, link)
    acute = stay.class_code == _EMERGENCY or route is not None
    prior_visits = sum(
        1
        for e in emergencies
        if e is not route and stay.start - lookback <= e.start < stay.start  # type: ignore[operator]
    )
    categories = [
        category
        for category, value_set_id in threshold(t, "charlson_value_sets").items()
        if ever_recorded_condition(ctx.record, value_set(knowledge, value_set_id), as_of=discharge)
    ]
    charlson = charlson_score(categories)
    days = max((discharge.date() - stay.start.date()).days, 0)
    result = lace_index(
        length_of_stay_days=days,
        acute_admission=acute,
        charlson=charlson,
        ed_visits_6_months=prior_visits,
    )
    if result.score < threshold(t, "high_risk_min_score"):
        return []
    return [
        Finding(
            card="high_risk",
            values=_values(result, days, acute, charlson, categories, prior_visits, stay, t),
        )
    ]


def _admission_route(
    emergencies: list[EncounterEntry], admitted: datetime, link: timedelta
) -> EncounterEntry | None:
    """The emergency visit the patient was admitted through, if one began just before."""
    candidates = [e for e in emergencies if admitted - link <= e.start <= admitted]  # type: ignore[operator]
    return max(candidates, key=lambda e: e.start, default=None)  # type: ignore[arg-type,return-value]


def _values(
    result: LaceResult,
    days: int,
    acute: bool,
    charlson: int,
    categories: list[str],
    prior_visits: int,
    stay: EncounterEntry,
    t: dict,
) -> dict[str, object]:
    return {
        "score": result.score,
        "high_risk_min": threshold(t, "high_risk_min_score"),
        "admitted": format_date(stay.start),
        "days": days,
        "l_points": result.length_of_stay_points,
        "acute": "yes" if acute else "no",
        "a_points": result.acuity_points,
        "charlson": charlson,
        "comorbidities": ", ".join(c.replace("-", " ") for c in sorted(categories))
        or "none recorded",
        "c_points": result.comorbidity_points,
        "ed_visits": prior_visits,
        "e_points": result.ed_visit_points,
    }
