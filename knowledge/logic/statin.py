"""USPSTF 2022 statin for primary prevention: who qualifies, and the PCE risk behind the card.

All cut-offs (ages, lipid definitions, risk bands, lookback) come from the artifact
(knowledge/rules/statin-primary-prevention.yaml); this module only applies them.
Patients with missing or out-of-range inputs of the risk equations get no card: the card
must state a computed risk, and a rule that cannot compute one stays silent rather than
guess. LDL-C is not an input of the equations; it only tells whether dyslipidemia is a risk
factor and whether LDL-C is at the severe level handled by statin-severe-hypercholesterolemia.
Without a reported LDL-C it is estimated from the panel (knowledge/logic/lipids.py); without
either, the card is still given when another risk factor qualifies, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_client.record import MedicationEntry, PatientRecord
from hooks.cards import Action, Suggestion
from knowledge.artifact import RuleArtifact
from knowledge.calculators.pce import ten_year_ascvd_risk
from knowledge.logic.common import (
    ever_recorded_condition,
    format_date,
    medication_in,
    member_name,
    members,
    proposed_medication_request,
    threshold,
    value_set,
    yes_no,
)
from knowledge.logic.lipids import LdlReading, latest_ldl, lipid_molar_masses
from knowledge.rule import EvaluationContext, Finding, Knowledge

# The suggested simvastatin 20 mg must not be started with a drug the label contraindicates or
# with one that caps simvastatin at 10 mg daily.
_PRECLUDING = ("statin-label-contraindicated-drugs", "simvastatin-10mg-dose-cap-drugs")
_LDL_NOT_ON_RECORD = (
    "LDL-C not on record and not estimable (the risk estimate does not need it, but "
    "severe hypercholesterolemia, LDL-C >= 190 mg/dL, is not excluded)"
)


@dataclass(frozen=True)
class _Inputs:
    age: int
    sex: str
    african_american: bool
    total_cholesterol: float
    hdl: float
    ldl: LdlReading | None
    systolic: float
    lipids_measured: datetime | None
    bp_measured: datetime | None
    treated_bp: bool
    smoker: bool
    diabetes: bool
    hypertension: bool


def statin_primary_prevention(
    ctx: EvaluationContext, artifact: RuleArtifact, knowledge: Knowledge
) -> list[Finding]:
    t = artifact.thresholds
    record = ctx.record
    inputs = _inputs(record, ctx.as_of, t, knowledge)
    if inputs is None:
        return []
    if inputs.ldl is not None and inputs.ldl.value >= threshold(t, "exclude_ldl_at_or_above_mg_dl"):
        return []  # severe hypercholesterolemia: statin-severe-hypercholesterolemia
    risk_factors = _risk_factors(inputs, t)
    if not risk_factors:
        return []
    try:
        risk = 100.0 * ten_year_ascvd_risk(
            sex=inputs.sex,  # type: ignore[arg-type]
            african_american=inputs.african_american,
            age=inputs.age,
            total_cholesterol_mg_dl=inputs.total_cholesterol,
            hdl_mg_dl=inputs.hdl,
            systolic_mm_hg=inputs.systolic,
            treated_bp=inputs.treated_bp,
            current_smoker=inputs.smoker,
            diabetes=inputs.diabetes,
        )
    except ValueError:
        return []  # an input outside the equations' valid range: no estimate, no card
    risk = round(risk, 1)  # the band is decided on the value the card shows
    if risk >= threshold(t, "grade_b_min_risk_percent"):
        card = "grade_b"
    elif risk >= threshold(t, "grade_c_min_risk_percent"):
        card = "grade_c"
    else:
        return []
    values = _card_values(inputs, risk, risk_factors, t)
    suggestions: tuple[Suggestion, ...] = ()
    if card == "grade_b":
        precluding = _precluding_medications(record, knowledge)
        if precluding:
            card = "grade_b_no_suggestion"
            values["precluding_medications"] = ", ".join(precluding)
        else:
            suggestions = (_start_statin(ctx, artifact),)
    return [Finding(card=card, values=values, suggestions=suggestions)]


def _precluding_medications(record: PatientRecord, knowledge: Knowledge) -> list[str]:
    """Active medications with which the suggested simvastatin dose must not be started."""
    names: set[str] = set()
    for medication in record.active_medications():
        for value_set_id in _PRECLUDING:
            for member in members(knowledge, medication, value_set_id):
                names.add(member_name(knowledge, value_set_id, member))
    return sorted(names)


def _inputs(
    record: PatientRecord, as_of: datetime, t: Mapping[str, Any], knowledge: Knowledge
) -> _Inputs | None:
    """The PCE inputs, or None when the patient is out of scope or an input is missing."""
    if record.patient is None or record.deceased or record.gender not in ("female", "male"):
        return None
    age = record.age(as_of.date())
    if age is None or not threshold(t, "min_age") <= age <= threshold(t, "max_age"):
        return None
    if ever_recorded_condition(record, value_set(knowledge, "ascvd-conditions"), as_of=as_of):
        return None
    medications = record.active_medications()
    statin_class = threshold(t, "statin_class")
    if any(statin_class in knowledge.medications.classes(m.codes) for m in medications):
        return None
    lookback = timedelta(days=threshold(t, "lookback_days"))

    def latest(value_set_id: str, unit: str) -> Any:
        return record.latest_value(
            value_set(knowledge, value_set_id),
            unit,
            as_of=as_of,
            max_age=lookback,
            molar_mass=threshold(t, "cholesterol_molar_mass_g_per_mol"),
        )

    total, hdl = latest("total-cholesterol", "mg/dL"), latest("hdl-cholesterol", "mg/dL")
    systolic = latest("systolic-blood-pressure", "mm[Hg]")
    smoker = _current_smoker(record, as_of, lookback, knowledge)
    if total is None or hdl is None or systolic is None or smoker is None:
        return None
    ldl = latest_ldl(
        record, knowledge, as_of=as_of, max_age=lookback, molar_masses=lipid_molar_masses(t)
    )
    return _Inputs(
        age=age,
        sex=str(record.gender),
        african_american=threshold(t, "african_american_omb_code") in record.omb_race_codes,
        total_cholesterol=total.value,
        hdl=hdl.value,
        ldl=ldl,
        systolic=systolic.value,
        lipids_measured=total.effective,
        bp_measured=systolic.effective,
        treated_bp=any(_lowers_bp(m, t, knowledge) for m in medications),
        smoker=smoker,
        diabetes=record.has_active_condition(
            value_set(knowledge, "diabetes-conditions"), as_of=as_of
        ),
        hypertension=record.has_active_condition(
            value_set(knowledge, "hypertension-conditions"), as_of=as_of
        ),
    )


def _current_smoker(
    record: PatientRecord, as_of: datetime, lookback: timedelta, knowledge: Knowledge
) -> bool | None:
    """Current smoking from the latest smoking-status observation in the lookback window.

    Without one, an active current-smoker condition (some records code smoking as a
    Condition) counts; otherwise smoking status is unknown (None).
    """
    current = value_set(knowledge, "current-tobacco-smoker")
    status = record.latest_coded(value_set(knowledge, "smoking-status-observation"), as_of=as_of)
    if status is not None and status.effective is not None and status.effective >= as_of - lookback:
        return bool(status.values & current)
    if record.has_active_condition(current, as_of=as_of):
        return True
    return None


def _lowers_bp(medication: MedicationEntry, t: Mapping[str, Any], knowledge: Knowledge) -> bool:
    return medication_in(
        knowledge, medication, value_set(knowledge, "antihypertensive-medications")
    ) or threshold(t, "antihypertensive_class") in knowledge.medications.classes(medication.codes)


def _risk_factors(inputs: _Inputs, t: Mapping[str, Any]) -> list[str]:
    """USPSTF risk factors present: dyslipidemia, diabetes, hypertension, smoking."""
    found = []
    high_ldl = inputs.ldl is not None and inputs.ldl.value > threshold(
        t, "dyslipidemia_ldl_above_mg_dl"
    )
    if high_ldl or inputs.hdl < threshold(t, "dyslipidemia_hdl_below_mg_dl"):
        found.append("dyslipidemia")
    if inputs.diabetes:
        found.append("diabetes")
    if inputs.hypertension:
        found.append("hypertension")
    if inputs.smoker:
        found.append("current smoking")
    return found


def _card_values(
    inputs: _Inputs, risk: float, risk_factors: list[str], t: Mapping[str, Any]
) -> dict[str, object]:
    return {
        "risk_percent": f"{risk:.1f}",
        "age": inputs.age,
        "sex": inputs.sex,
        "equation_set": "African American" if inputs.african_american else "white/other",
        "total_cholesterol": f"{inputs.total_cholesterol:.0f}",
        "hdl": f"{inputs.hdl:.0f}",
        "ldl": inputs.ldl.text if inputs.ldl is not None else _LDL_NOT_ON_RECORD,
        "lipid_date": format_date(inputs.lipids_measured),
        "systolic": f"{inputs.systolic:.0f}",
        "bp_date": format_date(inputs.bp_measured),
        "bp_treated": "treated" if inputs.treated_bp else "untreated",
        "smoker": yes_no(inputs.smoker),
        "diabetes": yes_no(inputs.diabetes),
        "risk_factors": ", ".join(risk_factors),
        "grade_b_min": threshold(t, "grade_b_min_risk_percent"),
        "grade_c_min": threshold(t, "grade_c_min_risk_percent"),
        "lookback_days": threshold(t, "lookback_days"),
    }


def _start_statin(ctx: EvaluationContext, artifact: RuleArtifact) -> Suggestion:
    t = artifact.thresholds
    label = artifact.suggestion_labels["start_statin"]
    resource = proposed_medication_request(
        patient_id=ctx.context.patientId,
        rxnorm_code=threshold(t, "suggested_statin_rxnorm"),
        display=threshold(t, "suggested_statin_display"),
        dosage_text=threshold(t, "suggested_statin_dosage_text"),
    )
    return Suggestion(
        label=label,
        isRecommended=True,
        actions=[Action(type="create", description=label, resource=resource)],
    )
