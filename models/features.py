"""Features for readmission risk at discharge, from the patient record the rules use.

One function serves training (on history, at each past discharge) and the bedside (at the
discharge being planned), so the two cannot drift apart. Nothing recorded after the
prediction time is looked at: encounters that started later, conditions with a later
onset, or conditions resolved by then (as active ones) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_client.fhirdates import parse_fhir_datetime
from fhir_client.record import PatientRecord, codes_of
from knowledge.library import KnowledgeLibrary
from knowledge.logic.readmission import LaceAssessment, assess_lace

FEATURE_SET_VERSION = "1"

_ACUTE_CLASSES = frozenset({"IMP", "EMER"})
_REFUTED = frozenset({"refuted", "entered-in-error"})
_YEAR = timedelta(days=365)
MAX_STAY_DAYS = 30
"""Longer stays count as 30 days: LACE itself stops adding points at 14 days, and one
erroneous period (an "emergency visit" of 55 years occurs in the synthetic data) must not
dominate a linear model."""


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    """How the card names it for the clinician."""


READMISSION_FEATURES: tuple[Feature, ...] = (
    Feature("age_years", "age (years)"),
    Feature("male", "male sex"),
    Feature("length_of_stay_days", "length of stay (days)"),
    Feature("emergency_visit", "discharged from the emergency department"),
    Feature("acute_admission", "acute (emergency) admission"),
    Feature("charlson_index", "Charlson comorbidity score"),
    Feature("ed_visits_6m", "emergency visits in the 6 months before"),
    Feature("admissions_12m", "hospital admissions in the 12 months before"),
    Feature("ambulatory_visits_12m", "ambulatory visits in the 12 months before"),
    Feature("days_since_last_acute_visit", "days since the last admission or emergency visit"),
    Feature("active_conditions", "active conditions"),
    Feature("heart_failure", "heart failure"),
    Feature("chronic_pulmonary_disease", "chronic pulmonary disease"),
    Feature("diabetes", "diabetes"),
    Feature("renal_disease", "moderate or severe renal disease"),
    Feature("any_tumour", "cancer"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in READMISSION_FEATURES)
FEATURE_LABELS: Mapping[str, str] = {f.name: f.label for f in READMISSION_FEATURES}

_LACE_RULE = "lace-readmission-risk"
_COMORBIDITY_FEATURES: Mapping[str, tuple[str, ...]] = {
    "heart_failure": ("congestive-heart-failure",),
    "chronic_pulmonary_disease": ("chronic-pulmonary-disease",),
    "diabetes": ("diabetes-uncomplicated", "diabetes-end-organ-damage"),
    "renal_disease": ("moderate-severe-renal-disease",),
    "any_tumour": ("any-tumour", "metastatic-solid-tumour"),
}


@dataclass(frozen=True)
class ReadmissionFeatures:
    """Turns (record, discharged stay, prediction time) into the model's feature vector.

    LACE and its Charlson categories come from the knowledge library's LACE artifact, so
    the model and the rule read comorbidities with the same value sets.
    """

    library: KnowledgeLibrary

    def lace(
        self, record: PatientRecord, stay: Mapping[str, Any], at: datetime
    ) -> LaceAssessment | None:
        artifact = self.library.rule(_LACE_RULE).artifact
        return assess_lace(record, stay, at, artifact.thresholds, self.library.knowledge)

    def __call__(
        self, record: PatientRecord, stay: Mapping[str, Any], at: datetime
    ) -> dict[str, float] | None:
        """The feature vector at ``at`` (the discharge), or None when the stay has no start."""
        assessed = self.assess(record, stay, at)
        return assessed[0] if assessed else None

    def assess(
        self, record: PatientRecord, stay: Mapping[str, Any], at: datetime
    ) -> tuple[dict[str, float], LaceAssessment] | None:
        """The feature vector and the LACE assessment it was built from (computed once)."""
        lace = self.lace(record, stay, at)
        if lace is None:
            return None
        admitted = lace.stay.start
        earlier = [
            e
            for e in record.encounters(as_of=at)
            if e.reference != lace.stay.reference and e.start is not None and e.start < admitted
        ]
        last_acute = max(
            (e.end or e.start for e in earlier if e.class_code in _ACUTE_CLASSES),
            default=None,
        )
        age = record.age(at.date())
        comorbidities = set(lace.comorbidities)
        features = {
            "age_years": float(age) if age is not None else 0.0,
            "male": 1.0 if record.gender == "male" else 0.0,
            "length_of_stay_days": float(min(lace.length_of_stay_days, MAX_STAY_DAYS)),
            "emergency_visit": 1.0 if lace.stay.class_code == "EMER" else 0.0,
            "acute_admission": 1.0 if lace.acute_admission else 0.0,
            "charlson_index": float(lace.charlson),
            "ed_visits_6m": float(lace.ed_visits_6_months),
            "admissions_12m": float(
                sum(1 for e in earlier if e.class_code == "IMP" and e.start >= admitted - _YEAR)  # type: ignore[operator]
            ),
            "ambulatory_visits_12m": float(
                sum(1 for e in earlier if e.class_code == "AMB" and e.start >= admitted - _YEAR)  # type: ignore[operator]
            ),
            "days_since_last_acute_visit": float(
                min((admitted - last_acute).days, 365) if last_acute else 365
            ),
            "active_conditions": float(active_condition_count(record, at)),
        }
        for name, categories in _COMORBIDITY_FEATURES.items():
            features[name] = 1.0 if comorbidities.intersection(categories) else 0.0
        return {name: features[name] for name in FEATURE_NAMES}, lace


def active_condition_count(record: PatientRecord, at: datetime) -> int:
    """Distinct conditions with onset by ``at`` and not abated by then (refuted ones excluded)."""
    active: set[frozenset[tuple[str, str]]] = set()
    for condition in record.resources("Condition"):
        verification = {c for _, c in codes_of(condition.get("verificationStatus"))}
        if verification & _REFUTED:
            continue
        onset = parse_fhir_datetime(condition.get("onsetDateTime") or condition.get("recordedDate"))
        abated = parse_fhir_datetime(condition.get("abatementDateTime"))
        if onset is None or onset > at or (abated is not None and abated <= at):
            continue
        active.add(codes_of(condition.get("code")))
    return len(active)
