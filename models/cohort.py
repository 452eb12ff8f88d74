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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_client.bundles import bundle_patient_records
from fhir_client.demographics import demographics
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
    """OMB race category from the US Core race extension (fhir_client/demographics.py), for
    fairness checks and reports only (not a model input); "not recorded" for a served
    prediction stored before demographics were."""
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


@dataclass(frozen=True)
class Candidate:
    """An index discharge before the end of the data is known: whether it is excluded
    depends on that end, which only all patients together tell."""

    window_end: datetime
    event: bool
    died_in_window: bool
    example: Example | None
    """None when the stay gave no usable features."""


@dataclass(frozen=True)
class PatientCandidates:
    """One patient's part of the cohort, computed from the patient's record alone."""

    last_recorded: datetime | None
    """The last encounter end (or start) in the record."""
    candidates: list[Candidate]
    excluded: Counter[str]


def _last_recorded(encounters: list[EncounterEntry]) -> datetime | None:
    return max((e.end or e.start for e in encounters if e.start is not None), default=None)  # type: ignore[type-var]


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


def patient_candidates(
    record: PatientRecord,
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
) -> PatientCandidates:
    """The patient's index discharges with their outcome and features: the clinical logic of
    the cohort, one patient at a time (in this process or on a Spark executor)."""
    encounters = record.encounters()
    excluded: Counter[str] = Counter()
    died = _died(record)
    horizon = timedelta(days=task.horizon_days)
    candidates = []
    for stay in _index_encounters(encounters, excluded):
        discharged: datetime = stay.end  # type: ignore[assignment]
        window_end = discharged + horizon
        event = any(
            e.class_code in task.outcome_encounter_classes
            and e.start is not None
            and discharged < e.start <= window_end
            for e in encounters
        )
        resource = record.resolve(stay.reference) if stay.reference else None
        assessed = extractor.assess(record, resource, discharged) if resource else None
        example = None
        if assessed is not None:
            features, lace = assessed
            audit = demographics(record.patient)
            example = Example(
                patient_key=patient_key(pseudonym_key, None, record.patient_id),
                encounter=stay.reference or "",
                predicted_at=discharged,
                features=features,
                label=int(event),
                lace_score=lace.result.score,
                sex=audit.sex,
                age_band=age_band(record.age(discharged.date())),
                race=audit.race,
            )
        candidates.append(
            Candidate(window_end, event, died is not None and died <= window_end, example)
        )
    return PatientCandidates(_last_recorded(encounters), candidates, excluded)


def assemble_cohort(patients: Iterable[PatientCandidates]) -> Cohort:
    """The cohort from every patient's part: the end of the data, then the exclusions that
    depend on it, in a fixed order whatever order the parts come in."""
    parts = list(patients)
    cohort = Cohort(patients=len(parts))
    cohort.data_end = max((p.last_recorded for p in parts if p.last_recorded), default=None)
    for part in parts:
        cohort.excluded.update(part.excluded)
        for candidate in part.candidates:
            if not candidate.event and (
                cohort.data_end is None or candidate.window_end > cohort.data_end
            ):
                cohort.excluded["follow-up incomplete"] += 1
            elif not candidate.event and candidate.died_in_window:
                cohort.excluded["died without readmission"] += 1
            elif candidate.example is None:
                cohort.excluded["no usable encounter"] += 1
            else:
                cohort.examples.append(candidate.example)
    cohort.excluded = Counter(dict(sorted(cohort.excluded.items())))
    cohort.examples.sort(key=lambda e: (e.predicted_at, e.patient_key))
    return cohort


def cohort_from_records(
    records: Iterable[PatientRecord],
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
    *,
    progress: Callable[[int], Any] | None = None,
) -> Cohort:
    """Examples for ``task`` from patient records, one record in memory at a time."""

    def parts() -> Iterator[PatientCandidates]:
        for done, record in enumerate(records, start=1):
            yield patient_candidates(record, task, extractor, pseudonym_key)
            if progress is not None:
                progress(done)

    return assemble_cohort(parts())


def build_cohort(
    paths: Iterable[Path],
    task: PredictionTask,
    extractor: ReadmissionFeatures,
    pseudonym_key: bytes,
    *,
    progress: Callable[[int], Any] | None = None,
) -> Cohort:
    """Examples for ``task`` from patient Bundles (one patient's whole record per file)."""
    return cohort_from_records(
        bundle_patient_records(paths), task, extractor, pseudonym_key, progress=progress
    )


def feature_matrix(examples: list[Example]) -> list[list[float]]:
    return [[e.features[name] for name in FEATURE_NAMES] for e in examples]
