"""Syndrome cases counted over a Bulk Data export, for regional volumes.

Each resource is reduced exactly as the feed reduces it (``fhir_client.outcomes``: the
patient as a keyed pseudonym, codes, the day in UTC; of a Patient its coarse area) and
classified by the same ``CaseClassifier`` as the live feed; a case is a patient with a
syndrome on a day, and cases are counted as distinct patients per syndrome, area and day,
as the store counts them. ``feed_facts`` is the per-resource step both engines run;
``count_cases`` is the counting in this process (``spark_counts`` the same on Spark).
Resources are not validated against the FHIR schema here (the import into the feed does
that): a count over an export is a volume, and validating a million resources would cost
more than counting them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date
from typing import Any, NamedTuple

from evaluation.syndromic import CaseClassifier, CaseCount
from fhir_client.fhirdates import as_utc
from fhir_client.outcomes import outcome_input
from knowledge.syndromes import Syndrome

SURVEILLANCE_TYPES = ("Patient", "Condition", "Observation")
"""The resource types a count reads: residents (area) and possible cases."""


class Case(NamedTuple):
    syndrome: str
    patient_key: str
    day: date


class Resident(NamedTuple):
    patient_key: str
    area: str | None


def feed_facts(
    resource: Mapping[str, Any], classify: CaseClassifier, secret: bytes, fhir_server: str | None
) -> list[Case | Resident]:
    """What one resource tells surveillance: a Patient where its patient lives, a Condition
    or Observation the syndromes it is a case of (none for a resource of no patient)."""
    try:
        item = outcome_input(resource, secret, fhir_server)
    except ValueError:
        return []
    if item.resource_type == "Patient":
        return [Resident(item.patient_key, item.area)]
    if item.started_at is None:
        return []
    day = as_utc(item.started_at).astimezone(UTC).date()
    return [
        Case(syndrome, item.patient_key, day)
        for syndrome in classify(item.resource_type, item.codes, item.value_codes)
    ]


def partition_facts(
    resources: Iterable[Mapping[str, Any]],
    syndromes: Mapping[str, Syndrome],
    secret: bytes,
    fhir_server: str | None,
) -> Iterator[Case | Resident]:
    """The facts of many resources, with one classifier (built once per partition)."""
    classify = CaseClassifier(syndromes)
    for resource in resources:
        yield from feed_facts(resource, classify, secret, fhir_server)


def count_cases(
    resources: Iterable[Mapping[str, Any]],
    syndromes: Mapping[str, Syndrome],
    secret: bytes,
    fhir_server: str | None = None,
) -> list[CaseCount]:
    """Distinct patients per syndrome, area and day, counted in this process."""
    areas: dict[str, str | None] = {}
    cases: set[Case] = set()
    for fact in partition_facts(resources, syndromes, secret, fhir_server):
        if isinstance(fact, Resident):
            areas[fact.patient_key] = fact.area
        else:
            cases.add(fact)
    counted = Counter((c.syndrome, areas.get(c.patient_key), c.day) for c in cases)
    return sorted_counts(CaseCount(s, area, day, n) for (s, area, day), n in counted.items())


def sorted_counts(counts: Iterable[CaseCount]) -> list[CaseCount]:
    """Counts in one order whatever the engine (an unknown area sorts first)."""
    return sorted(counts, key=lambda c: (c.syndrome, c.area or "", c.day))
