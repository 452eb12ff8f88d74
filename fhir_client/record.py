"""The patient record a hook call works on, built once per request from FHIR resources.

Resources from prefetch and from the FHIR server are indexed by type and by code
(LOINC, SNOMED CT, RxNorm, ...), so rules ask "latest systolic pressure" or "active
statin" with dictionary lookups instead of evaluating FHIRPath per request.
Bad resources are skipped and counted, never fatal: one malformed Observation must not
stop the service from warning about a dangerous order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from fhir_client.codes import (
    ICD10CM,
    LOINC,
    OMB_RACE,
    SYSTEM_NAMES,
    US_CORE_RACE,
    icd10cm_ancestors,
    normalize_code,
    normalize_system,
)
from fhir_client.dosage import Dosage, dosages
from fhir_client.fhirdates import age_in_years, parse_fhir_date, parse_fhir_datetime
from fhir_client.units import UnitError, convert

_T = TypeVar("_T")

Code = tuple[str, str]
"""A coding as (system, code)."""

_INVALID_OBSERVATION_STATUS = frozenset({"entered-in-error", "cancelled", "registered"})
_ACTIVE_CONDITION_STATUS = frozenset({"active", "recurrence", "relapse"})
_REFUTED_VERIFICATION = frozenset({"refuted", "entered-in-error"})


def codes_of(concept: object) -> frozenset[Code]:
    """The (system, code) pairs of a CodeableConcept, normalised; tolerant of missing parts.

    An ICD-10-CM code comes with the categories above it (see ``icd10cm_ancestors``).
    """
    if not isinstance(concept, dict):
        return frozenset()
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return frozenset()
    found: set[Code] = set()
    for coding in codings:
        if isinstance(coding, dict) and coding.get("code") is not None:
            system = normalize_system(str(coding.get("system", "")))
            code = normalize_code(system, str(coding["code"]))
            found.add((system, code))
            if system == ICD10CM:
                found.update((system, category) for category in icd10cm_ancestors(code))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Measurement:
    """A numeric observation value (or a component of a panel such as blood pressure).

    ``comparator`` is the quantity's comparator ("<", "<=", ">=", ">"): such a value is a
    bound (a laboratory's "<15"), not a measurement, and lookups do not use it as one.
    ``reference_high`` is the upper limit of the reference range the laboratory reported with
    the value (``referenceRange.high``), in ``unit``; None when it gave none in that unit.
    """

    code: Code
    value: float
    unit: str
    effective: datetime | None
    reference: str | None
    comparator: str | None = None
    reference_high: float | None = None

    @property
    def text(self) -> str:
        return f"{self.comparator or ''}{self.value:g} {self.unit}".strip()


@dataclass(frozen=True, slots=True)
class UnreadableValue:
    """An observation value that a rule asked for but that cannot be read as a number."""

    code: Code
    text: str
    effective: datetime | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class DataIssue:
    """A value in the record that could not be used, said in words for the clinician.

    Carries codes, dates and the value as sent, never names or identifiers.
    """

    item: str
    problem: str


@dataclass(frozen=True, slots=True)
class CodedObservation:
    """An observation whose value is a CodeableConcept (e.g. tobacco smoking status)."""

    code: Code
    values: frozenset[Code]
    effective: datetime | None


@dataclass(frozen=True, slots=True)
class ConditionEntry:
    codes: frozenset[Code]
    onset: datetime | None
    active: bool
    reference: str | None


@dataclass(frozen=True, slots=True)
class MedicationEntry:
    """A MedicationRequest (or draft order) reduced to what matching needs: its codes, the
    names it is given (coding displays and text, e.g. an RxNorm product name stating the
    strength) and its dosage instructions."""

    codes: frozenset[Code]
    status: str
    authored: datetime | None
    reference: str | None
    text: str | None
    names: tuple[str, ...] = ()
    dosages: tuple[Dosage, ...] = ()


@dataclass(frozen=True, slots=True)
class EventEntry:
    """A dated coded event: an Immunization (CVX codes) or a Procedure (SNOMED/CPT codes)."""

    codes: frozenset[Code]
    when: datetime | None
    status: str
    reference: str | None


@dataclass(frozen=True, slots=True)
class AllergyEntry:
    codes: frozenset[Code]
    active: bool
    criticality: str | None
    categories: frozenset[str]
    reference: str | None


@dataclass(frozen=True, slots=True)
class EncounterEntry:
    class_code: str | None
    types: frozenset[Code]
    start: datetime | None
    end: datetime | None
    status: str
    reference: str | None


_DONE_EVENT_STATUS = frozenset({"completed"})


def _period(value: object) -> tuple[datetime | None, datetime | None]:
    if not isinstance(value, dict):
        return None, None
    return parse_fhir_datetime(value.get("start")), parse_fhir_datetime(value.get("end"))


def _reference_of(resource: Mapping[str, Any]) -> str | None:
    return f"{resource['resourceType']}/{resource['id']}" if "id" in resource else None


def event_entry(resource: Mapping[str, Any]) -> EventEntry:
    """An Immunization or Procedure reduced to its codes, date and status."""
    if resource["resourceType"] == "Immunization":
        codes = codes_of(resource.get("vaccineCode"))
        when = parse_fhir_datetime(resource.get("occurrenceDateTime"))
    else:
        codes = codes_of(resource.get("code"))
        start, end = _period(resource.get("performedPeriod"))
        when = parse_fhir_datetime(resource.get("performedDateTime")) or end or start
    return EventEntry(codes, when, str(resource.get("status", "")), _reference_of(resource))


def allergy_entry(resource: Mapping[str, Any]) -> AllergyEntry:
    clinical = {c for _, c in codes_of(resource.get("clinicalStatus"))}
    verification = {c for _, c in codes_of(resource.get("verificationStatus"))}
    # As for conditions: an allergy without a clinical status is taken as active.
    active = (not clinical or "active" in clinical) and not verification & _REFUTED_VERIFICATION
    categories = resource.get("category") or []
    return AllergyEntry(
        codes=codes_of(resource.get("code")),
        active=active,
        criticality=resource.get("criticality"),
        categories=frozenset(c for c in categories if isinstance(c, str)),
        reference=_reference_of(resource),
    )


def encounter_entry(resource: Mapping[str, Any]) -> EncounterEntry:
    klass = resource.get("class")
    start, end = _period(resource.get("period"))
    return EncounterEntry(
        class_code=str(klass["code"]) if isinstance(klass, dict) and klass.get("code") else None,
        types=frozenset().union(*(codes_of(t) for t in resource.get("type") or ())),
        start=start,
        end=end,
        status=str(resource.get("status", "")),
        reference=_reference_of(resource),
    )


def _effective(resource: Mapping[str, Any]) -> datetime | None:
    for key in ("effectiveDateTime", "effectiveInstant", "issued"):
        if key in resource:
            return parse_fhir_datetime(resource[key])
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        return parse_fhir_datetime(period.get("end") or period.get("start"))
    return None


def _reference_id(reference: object) -> str | None:
    """The id in ``Patient/123``, ``urn:uuid:123`` or an absolute URL ending in ``Patient/123``."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str) or not ref:
        return None
    if ref.startswith("urn:uuid:"):
        return ref.removeprefix("urn:uuid:")
    return ref.rstrip("/").rsplit("/", 1)[-1]


def patient_id_of(resource: Mapping[str, Any]) -> str | None:
    """The id of the patient a resource belongs to: a Patient's own id, else the id in its
    ``subject`` or ``patient`` reference; None for resources of no patient (Organization,
    Practitioner, Medication ...)."""
    if resource.get("resourceType") == "Patient":
        return str(resource["id"]) if resource.get("id") else None
    return _reference_id(resource.get("subject") or resource.get("patient"))


@dataclass
class PatientRecord:
    """One patient's FHIR data, indexed for the lookups rules and models make."""

    patient_id: str
    patient: dict[str, Any] | None = None
    skipped: int = 0
    foreign: int = 0
    unavailable: frozenset[str] = frozenset()
    """Resource types that could not be fetched: their absence here says nothing."""
    _by_type: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _issues: dict[tuple[str, str], DataIssue] = field(default_factory=dict)

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def from_resources(
        cls,
        patient_id: str,
        items: Iterable[object],
        *,
        unavailable: Iterable[str] = (),
    ) -> PatientRecord:
        """Index resources and Bundles (their entries are flattened) for ``patient_id``.

        Resources that name another patient as their subject are dropped and counted in
        ``foreign``: a hostile or buggy prefetch must not put another patient's data on
        this patient's cards. ``unavailable`` names the resource types that could not be
        fetched, so that rules do not mistake missing data for data that does not exist.
        """
        record = cls(patient_id=patient_id, unavailable=frozenset(unavailable))
        for resource in _flatten(items):
            record._add(resource)
        return record

    def _add(self, resource: object) -> None:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            self.skipped += 1
            return
        resource_type = resource["resourceType"]
        if resource_type == "Patient":
            if str(resource.get("id")) == self.patient_id or (
                self.patient is None and "id" not in resource
            ):
                self.patient = resource
                birth = resource.get("birthDate")
                if birth is not None and parse_fhir_date(birth) is None:
                    self.note_issue(
                        "Patient birth date",
                        f"'{str(birth)[:40]}' is not a valid date: checks that depend on age "
                        "could not run",
                    )
            else:
                self.foreign += 1
            return
        subject_id = _reference_id(resource.get("subject") or resource.get("patient"))
        if subject_id is not None and subject_id != self.patient_id:
            self.foreign += 1
            return
        self._by_type[resource_type].append(resource)

    # Indexes are built on first use: a hook call pays only for the resource types its
    # rules look at. A resource that cannot be indexed is skipped and counted.

    def _entries(
        self, resource_type: str, build: Callable[[dict[str, Any]], _T | None]
    ) -> list[_T]:
        entries: list[_T] = []
        for resource in self._by_type.get(resource_type, ()):
            try:
                entry = build(resource)
            except (TypeError, ValueError, AttributeError, KeyError):
                self.skipped += 1
                continue
            if entry is not None:
                entries.append(entry)
        return entries

    @cached_property
    def _observations(self) -> _ObservationIndex:
        index = _ObservationIndex()
        self._entries("Observation", index.add)
        index.sort()
        return index

    @cached_property
    def _by_reference(self) -> dict[str, dict[str, Any]]:
        """Resources by relative reference, built only if a reference is followed."""
        return {
            f"{resource_type}/{resource['id']}": resource
            for resource_type, resources in self._by_type.items()
            for resource in resources
            if isinstance(resource.get("id"), str)
        }

    @cached_property
    def _conditions(self) -> list[ConditionEntry]:
        return self._entries("Condition", self._condition)

    @cached_property
    def _medications(self) -> list[MedicationEntry]:
        return self._entries("MedicationRequest", self._medication)

    @cached_property
    def _immunizations(self) -> list[EventEntry]:
        return self._entries("Immunization", event_entry)

    @cached_property
    def _procedures(self) -> list[EventEntry]:
        return self._entries("Procedure", event_entry)

    @cached_property
    def _allergies(self) -> list[AllergyEntry]:
        return self._entries("AllergyIntolerance", allergy_entry)

    @cached_property
    def _encounters(self) -> list[EncounterEntry]:
        return self._entries("Encounter", encounter_entry)

    @staticmethod
    def _condition(condition: Mapping[str, Any]) -> ConditionEntry:
        clinical = {c for _, c in codes_of(condition.get("clinicalStatus"))}
        verification = {c for _, c in codes_of(condition.get("verificationStatus"))}
        # R4 allows clinicalStatus to be absent; absent and not abated counts as active,
        # which errs toward showing a safety card rather than hiding one.
        active = (
            bool(clinical & _ACTIVE_CONDITION_STATUS)
            or (not clinical and "abatementDateTime" not in condition)
        ) and not verification & _REFUTED_VERIFICATION
        onset = parse_fhir_datetime(condition.get("onsetDateTime") or condition.get("recordedDate"))
        reference = f"Condition/{condition['id']}" if "id" in condition else None
        return ConditionEntry(codes_of(condition.get("code")), onset, active, reference)

    def _medication(self, request: Mapping[str, Any]) -> MedicationEntry | None:
        return medication_entry(request, self._by_reference)

    # --- lookups ----------------------------------------------------------------------------

    @property
    def gender(self) -> str | None:
        return self.patient.get("gender") if self.patient else None

    @property
    def birth_date(self) -> date | None:
        return parse_fhir_date(self.patient.get("birthDate")) if self.patient else None

    @property
    def deceased(self) -> bool:
        if not self.patient:
            return False
        return bool(self.patient.get("deceasedBoolean") or self.patient.get("deceasedDateTime"))

    @property
    def omb_race_codes(self) -> frozenset[str]:
        """OMB race category codes from the US Core race extension (empty when not recorded)."""
        found: set[str] = set()
        for extension in (self.patient or {}).get("extension") or ():
            if not isinstance(extension, Mapping) or extension.get("url") != US_CORE_RACE:
                continue
            for part in extension.get("extension") or ():
                if not isinstance(part, Mapping):
                    continue
                coding = part.get("valueCoding")
                if (
                    part.get("url") == "ombCategory"
                    and isinstance(coding, Mapping)
                    and coding.get("system") == OMB_RACE
                    and coding.get("code")
                ):
                    found.add(str(coding["code"]))
        return frozenset(found)

    def age(self, on: date) -> int | None:
        birth = self.birth_date
        return age_in_years(birth, on) if birth else None

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        return list(self._by_type.get(resource_type, ()))

    def resolve(self, reference: str) -> dict[str, Any] | None:
        return self._by_reference.get(reference)

    def note_issue(self, item: str, problem: str) -> None:
        """Record a data-quality finding once; it reaches the data-availability card."""
        self._issues.setdefault((item, problem), DataIssue(item, problem))

    @property
    def issues(self) -> list[DataIssue]:
        """Values that rules needed but could not read (noted when the rules asked for them)."""
        return list(self._issues.values())

    def is_complete(self, resource_type: str) -> bool:
        """Whether the record holds every resource of this type the EHR has (as far as we know)."""
        return resource_type not in self.unavailable

    def measurements(
        self, codes: Collection[Code], *, as_of: datetime | None = None
    ) -> list[Measurement]:
        """All numeric values for any of ``codes``, newest first, none after ``as_of``.

        Bounds ("<15") and unreadable values are left out; the newest of them is noted as a
        data-quality issue when it is newer than every value returned.
        """
        found = _in_window(self._observations.exact(codes), as_of)
        unusable = self._newest_unusable(codes, as_of)
        if unusable is not None and _is_newer(unusable, found[0] if found else None):
            self._note_unusable(unusable)
        return found

    def _newest_unusable(
        self, codes: Collection[Code], as_of: datetime | None
    ) -> Measurement | UnreadableValue | None:
        unusable = _in_window(self._observations.unusable(codes), as_of)
        return unusable[0] if unusable else None

    def _note_unusable(self, value: Measurement | UnreadableValue) -> None:
        system, code = value.code
        when = value.effective.date().isoformat() if value.effective else "undated"
        name = {LOINC: "LOINC"}.get(system, system)
        problem = (
            f"reported as '{value.text}', a bound rather than a value"
            if isinstance(value, Measurement)
            else f"value '{value.text}' could not be read as a number"
        )
        self.note_issue(f"Observation {name} {code} of {when}", problem)

    def latest_value(
        self,
        codes: Collection[Code],
        unit: str,
        *,
        as_of: datetime | None = None,
        max_age: timedelta | None = None,
        molar_mass: float | None = None,
    ) -> Measurement | None:
        """The newest value for any of ``codes`` converted to ``unit``; None if none qualifies.

        Values in units that cannot be converted are passed over (and the next older one
        is used), never misread. If the newest result is a bound or unreadable, there is no
        latest value (an older one would misstate the present): None, and the result is noted
        as a data-quality issue.
        """
        unusable = self._newest_unusable(codes, as_of)
        for measurement in self.measurements(codes, as_of=as_of):
            too_old = (
                max_age is not None
                and as_of is not None
                and (measurement.effective is None or measurement.effective < as_of - max_age)
            )
            if too_old:
                return None
            if unusable is not None and _is_newer(unusable, measurement):
                self._note_unusable(unusable)
                return None
            try:
                value = convert(measurement.value, measurement.unit, unit, molar_mass)
            except UnitError:
                continue
            high = measurement.reference_high
            try:
                high = convert(high, measurement.unit, unit, molar_mass) if high else None
            except UnitError:
                high = None
            return Measurement(
                measurement.code,
                value,
                unit,
                measurement.effective,
                measurement.reference,
                reference_high=high,
            )
        return None

    def latest_coded(
        self, codes: Collection[Code], *, as_of: datetime | None = None
    ) -> CodedObservation | None:
        """The newest coded answer for any of ``codes``. If a newer entry holds free text
        instead (e.g. "confused" typed for an ACVPU level), there is no latest coded answer:
        None, and the entry is noted as a data-quality issue, as ``latest_value`` does."""
        found = [c for code in codes for c in self._observations.coded.get(code, ())]
        found.sort(key=_newest_first)
        latest = next(
            (c for c in found if as_of is None or c.effective is None or c.effective <= as_of), None
        )
        unusable = self._newest_unusable(codes, as_of)
        if isinstance(unusable, UnreadableValue) and (
            latest is None or _newest_first(unusable) < _newest_first(latest)
        ):
            system, code = unusable.code
            when = unusable.effective.date().isoformat() if unusable.effective else "undated"
            self.note_issue(
                f"Observation {SYSTEM_NAMES.get(system, system)} {code} of {when}",
                f"value '{unusable.text}' is free text, not a coded answer",
            )
            return None
        return latest

    def active_conditions(self, *, as_of: datetime | None = None) -> list[ConditionEntry]:
        return [
            c
            for c in self._conditions
            if c.active and (as_of is None or c.onset is None or c.onset <= as_of)
        ]

    def has_active_condition(
        self, codes: Collection[Code], *, as_of: datetime | None = None
    ) -> bool:
        wanted = set(codes)
        return any(c.codes & wanted for c in self.active_conditions(as_of=as_of))

    def active_medications(self) -> list[MedicationEntry]:
        return [m for m in self._medications if m.status == "active"]

    def medications(self) -> list[MedicationEntry]:
        """Every MedicationRequest, whatever its status (history, e.g. for prior therapy)."""
        return list(self._medications)

    def _done_events(
        self, kind: str, codes: Collection[Code] | None, as_of: datetime | None
    ) -> list[EventEntry]:
        wanted = set(codes) if codes is not None else None
        found = [
            e
            for e in (self._immunizations if kind == "Immunization" else self._procedures)
            if e.status in _DONE_EVENT_STATUS
            and (wanted is None or e.codes & wanted)
            and (as_of is None or e.when is None or e.when <= as_of)
        ]
        found.sort(key=lambda e: (e.when is None, -e.when.timestamp() if e.when else 0.0))
        return found

    def immunizations(
        self, codes: Collection[Code] | None = None, *, as_of: datetime | None = None
    ) -> list[EventEntry]:
        """Completed immunizations (optionally only these CVX codes), newest first."""
        return self._done_events("Immunization", codes, as_of)

    def procedures(
        self, codes: Collection[Code] | None = None, *, as_of: datetime | None = None
    ) -> list[EventEntry]:
        """Completed procedures (optionally only these codes), newest first."""
        return self._done_events("Procedure", codes, as_of)

    def active_allergies(self) -> list[AllergyEntry]:
        return [a for a in self._allergies if a.active]

    def encounters(self, *, as_of: datetime | None = None) -> list[EncounterEntry]:
        """Encounters that started by ``as_of``, newest first (class AMB, EMER, IMP, ...)."""
        found = [
            e for e in self._encounters if as_of is None or e.start is None or e.start <= as_of
        ]
        found.sort(key=lambda e: (e.start is None, -e.start.timestamp() if e.start else 0.0))
        return found


def medication_entry(
    request: Mapping[str, Any], references: Mapping[str, Mapping[str, Any]] | None = None
) -> MedicationEntry | None:
    """Reduce a MedicationRequest (or a draft one) to its codes; None if it names no drug.

    ``medicationReference`` is followed to a contained Medication or to one in ``references``.
    """
    concept = request.get("medicationCodeableConcept")
    codes = codes_of(concept)
    ref = request.get("medicationReference")
    if not codes and isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
        target: Mapping[str, Any] | None = None
        if ref["reference"].startswith("#"):
            target = next(
                (
                    c
                    for c in request.get("contained") or ()
                    if f"#{c.get('id')}" == ref["reference"]
                ),
                None,
            )
        elif references is not None:
            target = references.get(ref["reference"])
        if target:
            concept = target.get("code")
            codes = codes_of(concept)
    if not codes:
        return None
    text = concept.get("text") if isinstance(concept, Mapping) else None
    reference = f"{request.get('resourceType')}/{request['id']}" if "id" in request else None
    return MedicationEntry(
        codes=codes,
        status=str(request.get("status", "")),
        authored=parse_fhir_datetime(request.get("authoredOn")),
        reference=reference,
        text=text if isinstance(text, str) else None,
        names=_concept_names(concept),
        dosages=dosages(request),
    )


def _concept_names(concept: Mapping[str, Any]) -> tuple[str, ...]:
    names = [c.get("display") for c in concept.get("coding") or () if isinstance(c, Mapping)]
    names.append(concept.get("text"))
    return tuple(n for n in names if isinstance(n, str) and n)


def _reference_high(holder: Mapping[str, Any], unit: str) -> float | None:
    """The first reference range's upper limit, if it is stated in the value's own unit."""
    ranges = holder.get("referenceRange")
    for reference_range in ranges if isinstance(ranges, list) else ():
        high = reference_range.get("high") if isinstance(reference_range, Mapping) else None
        if not isinstance(high, Mapping):
            continue
        value = high.get("value")
        same_unit = str(high.get("code") or high.get("unit") or unit) == unit
        if isinstance(value, int | float) and not isinstance(value, bool) and same_unit:
            return float(value) if value > 0 else None
        return None
    return None


class _ObservationIndex:
    """Observation values by code: numbers, bounds and unreadable values, and coded answers."""

    def __init__(self) -> None:
        self.numbers: dict[Code, list[Measurement]] = defaultdict(list)
        self.bounds: dict[Code, list[Measurement | UnreadableValue]] = defaultdict(list)
        self.coded: dict[Code, list[CodedObservation]] = defaultdict(list)

    def add(self, observation: dict[str, Any]) -> None:
        if observation.get("status") in _INVALID_OBSERVATION_STATUS:
            return
        effective = _effective(observation)
        reference = f"Observation/{observation['id']}" if "id" in observation else None
        for holder in [observation, *(observation.get("component") or ())]:
            codes = codes_of(holder.get("code"))
            for code in codes:
                self._add_value(code, holder, effective, reference)
            concept = codes_of(holder.get("valueCodeableConcept"))
            if concept:
                for code in codes:
                    self.coded[code].append(CodedObservation(code, concept, effective))

    def _add_value(
        self, code: Code, holder: Mapping[str, Any], effective: datetime | None, ref: str | None
    ) -> None:
        quantity = holder.get("valueQuantity")
        if isinstance(quantity, dict) and "value" in quantity:
            unit = str(quantity.get("code") or quantity.get("unit") or "")
            value = quantity["value"]
            if isinstance(value, int | float) and not isinstance(value, bool):
                comparator = quantity.get("comparator")
                measurement = Measurement(
                    code,
                    float(value),
                    unit,
                    effective,
                    ref,
                    str(comparator) if comparator else None,
                    _reference_high(holder, unit),
                )
                (self.bounds if comparator else self.numbers)[code].append(measurement)
            else:
                text = f"{value} {unit}".strip()[:60]
                self.bounds[code].append(UnreadableValue(code, text, effective, ref))
        elif isinstance(holder.get("valueString"), str):
            text = holder["valueString"].strip()[:60]
            self.bounds[code].append(UnreadableValue(code, text, effective, ref))

    def sort(self) -> None:
        for index in (self.numbers, self.bounds, self.coded):
            for series in index.values():
                series.sort(key=_newest_first)

    def exact(self, codes: Collection[Code]) -> list[Measurement]:
        found = [m for code in codes for m in self.numbers.get(code, ())]
        found.sort(key=_newest_first)
        return found

    def unusable(self, codes: Collection[Code]) -> list[Measurement | UnreadableValue]:
        found = [m for code in codes for m in self.bounds.get(code, ())]
        found.sort(key=_newest_first)
        return found


_Dated = TypeVar("_Dated", Measurement, UnreadableValue, Measurement | UnreadableValue)


def _in_window(items: list[_Dated], as_of: datetime | None) -> list[_Dated]:
    return [m for m in items if as_of is None or m.effective is None or m.effective <= as_of]


def _is_newer(item: Measurement | UnreadableValue, than: Measurement | None) -> bool:
    """Whether ``item`` sorts before ``than`` newest-first (anything is newer than nothing)."""
    return than is None or _newest_first(item) < _newest_first(than)


def _newest_first(
    item: Measurement | CodedObservation | UnreadableValue,
) -> tuple[bool, float]:
    # Undated values sort last: a dated value is always preferred as "latest".
    return (item.effective is None, -item.effective.timestamp() if item.effective else 0.0)


def _flatten(items: Iterable[object]) -> Iterator[object]:
    for item in items:
        if isinstance(item, dict) and item.get("resourceType") == "Bundle":
            for entry in item.get("entry") or ():
                yield entry.get("resource") if isinstance(entry, dict) else entry
        elif item is not None:
            yield item
