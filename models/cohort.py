"""The training cohort: index discharges, their features at discharge and their 30-day outcome.

An index encounter is a finished inpatient stay (class IMP) or emergency visit (EMER) with
a start and an end. The prediction time is its end. The label is 1 when an IMP or EMER
encounter starts within the horizon after it. Excluded, with counts reported:

- emergency visits followed within the admission-link window by an inpatient stay: the
  patient was admitted, not discharged (the stay is the index instead);
- discharges whose follow-up window reaches past the end of the data (outcome unknown);
- patients who died within the window without an event (a competing risk, not a negative);
- encounters with an implausible period (an emergency visit over 2 days, a stay over a year):
  data errors, not discharges.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_client.bundles import load_bundle
from fhir_client.fhirdates import parse_fhir_datetime
from fhir_client.pseudonym import patient_key
from fhir_client.record import EncounterEntry, PatientRecord
from models.features import FEATURE_NAMES, ReadmissionFeatures
from models.tasks import PredictionTask

_ACUTE = frozenset({"IMP", "EMER"})
_LINK = timedelta(hours=24)
_LONGEST_PLAUSIBLE = {"EMER": timedelta(days=2), "IMP": timedelta(days=365)}


@dataclass(frozen=True)
class Example:
    patient_key: str
    encounter: str
    """The index encounter's reference (kept for audit; not logged with the dataset)."""
    predicted_at: datetime
    features: dict[str, float]
    label: int
    lace_score: int
    sex: str
    age_band: str
    race: str = "not recorded"
    """OMB race category from the US Core race extension, for fairness reports only (not a
    model input); "multiple" when more than one is recorded."""
    feedback: str | None = None
    """For served predictions: the clinician's response to the card (accepted, overridden,
    none, no card); None for examples from the records."""
    weight: float = 1.0
    """Its weight in training (retraining up-weights recent served examples)."""


@dataclass
class Cohort:
    examples: list[Example] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    data_end: datetime | None = None

    def digest(self) -> str:
        """A content hash of the examples: the same data gives the same hash."""
        canonical = json.dumps(
            [
                [e.patient_key, e.predicted_at.isoformat(), e.label, e.features]
                for e in sorted(self.examples, key=lambda e: (e.predicted_at, e.patient_key))
            ],
            separators=(",", ":"),
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


OMB_RACE_DISPLAY = {
    "1002-5": "American Indian or Alaska Native",
    "2028-9": "Asian",
    "2054-5": "Black or African American",
    "2076-8": "Native Hawaiian or Other Pacific Islander",
    "2106-3": "White",
}
"""The OMB race categories (CDC Race & Ethnicity code set, as bound by US Core)."""


def race_category(codes: frozenset[str]) -> str:
    if not codes:
        return "not recorded"
    if len(codes) > 1:
        return "multiple"
    (code,) = codes
    return OMB_RACE_DISPLAY.get(code, "other")


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    if age < 18:
        return "0-17"
    if age < 45:
        return "18-44"
    if age < 65:
        return "45-64"
    return "65+"


def _records(paths: Iterable[Path]) -> Iterable[PatientRecord]:
    for path in paths:
        resources = [entry["resource"] for entry in load_bundle(path).get("entry", ())]
        patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
        if patient is not None:
            yield PatientRecord.from_resources(str(patient["id"]), resources)


def _data_end(records: list[PatientRecord]) -> datetime:
    """The last moment anything was recorded: follow-up beyond it is unknown."""
    return max(
        e.end or e.start  # type: ignore[type-var]
        for record in records
        for e in record.encounters()
        if e.start is not None
    )


def _died(record: PatientRecord) -> datetime | None:
    return parse_fhir_datetime((record.patient or {}).get("deceasedDateTime"))


def _index_encounters(
    encounters: list[EncounterEntry], excluded: Counter[str]
) -> list[EncounterEntry]:
    acute = [
        e
        for e in encounters
        if e.class_code in _ACUTE and e.start is not None and e.end is not None
    ]
    index = []
    for e in acute:
        if e.end - e.start > _LONGEST_PLAUSIBLE[e.class_code]:  # type: ignore[operator,index]
            excluded["implausible encounter period"] += 1
            continue
        admitted = e.class_code == "EMER" and any(
            f.class_code == "IMP" and e.end <= f.start <= e.end + _LINK  # type: ignore[operator]
            for f in acute
        )
        if admitted:
            excluded["emergency visit followed by admission"] += 1
        else:
            index.append(e)
    return index


def build_cohort(
    paths: Iterable[Path],
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
    *,
    progress: Callable[[int], Any] | None = None,
) -> Cohort:
    """Examples for ``task`` from patient Bundles (one patient's whole record per file)."""
    records = []
    for done, record in enumerate(_records(paths), start=1):
        records.append(record)
        if progress is not None:
            progress(done)
    cohort = Cohort(patients=len(records))
    if not records:
        return cohort
    cohort.data_end = _data_end(records)
    horizon = timedelta(days=task.horizon_days)
    for record in records:
        encounters = record.encounters()
        died = _died(record)
        for stay in _index_encounters(encounters, cohort.excluded):
            discharged: datetime = stay.end  # type: ignore[assignment]
            window_end = discharged + horizon
            event = any(
                e.class_code in task.outcome_encounter_classes
                and e.start is not None
                and discharged < e.start <= window_end
                for e in encounters
            )
            if not event and window_end > cohort.data_end:
                cohort.excluded["follow-up incomplete"] += 1
                continue
            if not event and died is not None and died <= window_end:
                cohort.excluded["died without readmission"] += 1
                continue
            resource = record.resolve(stay.reference) if stay.reference else None
            assessed = extractor.assess(record, resource, discharged) if resource else None
            if assessed is None:
                cohort.excluded["no usable encounter"] += 1
                continue
            features, lace = assessed
            cohort.examples.append(
                Example(
                    patient_key=patient_key(pseudonym_key, None, record.patient_id),
                    encounter=stay.reference or "",
                    predicted_at=discharged,
                    features=features,
                    label=int(event),
                    lace_score=lace.result.score,
                    sex=record.gender or "unknown",
                    age_band=age_band(record.age(discharged.date())),
                    race=race_category(record.omb_race_codes),
                )
            )
    cohort.examples.sort(key=lambda e: (e.predicted_at, e.patient_key))
    return cohort


def feature_matrix(examples: list[Example]) -> list[list[float]]:
    return [[e.features[name] for name in FEATURE_NAMES] for e in examples]
