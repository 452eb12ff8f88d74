"""Daily counts of syndromes by area and age band, from the minimised feed, and the
small-number suppression that makes them safe to show.

A case is a patient with a matching recorded diagnosis or positive test on a day; a
patient counts once per syndrome and day. Areas are HIPAA Safe Harbor ZIP3s and age bands
those of CDC's ILINet (0-4, 5-24, 25-49, 50-64, 65+ years;
https://www.cdc.gov/fluview/overview/index.html), so no count is finer than the data allow.
Counts shown to people go through ``suppress``: a count of 1 to MIN_CELL - 1 is replaced,
as in the CMS cell size suppression policy (no cell of 1 to 10 is displayed;
https://resdac.org/articles/cms-cell-size-suppression-policy), so that nobody can be
recognised from a small number. Detection runs on the unsuppressed counts, inside.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from knowledge.syndromes import Syndrome

MIN_CELL = 11
"""The smallest count shown (CMS: cells of 1 to 10 are suppressed)."""
AGE_BANDS = ((0, "0-4"), (5, "5-24"), (25, "25-49"), (50, "50-64"), (65, "65+"))
UNKNOWN = "unknown"


@dataclass(frozen=True)
class FeedEvent:
    patient_key: str
    day: date
    resource_type: str
    codes: Sequence[str]
    value_codes: Sequence[str] = ()


@dataclass(frozen=True)
class Resident:
    area: str | None
    birth_year: int | None


@dataclass(frozen=True, order=True)
class CountKey:
    syndrome: str
    area: str
    age_band: str
    day: date


def age_band(birth_year: int | None, day: date) -> str:
    """The band of the age reached in the year of ``day`` (birth year only is kept)."""
    if birth_year is None or birth_year > day.year:
        return UNKNOWN
    age = day.year - birth_year
    return [label for lower, label in AGE_BANDS if age >= lower][-1]


def daily_counts(
    events: Iterable[FeedEvent],
    residents: Mapping[str, Resident],
    syndromes: Mapping[str, Syndrome],
) -> dict[CountKey, int]:
    """Distinct patients per syndrome, area, age band and day."""
    cases: dict[CountKey, set[str]] = defaultdict(set)
    for event in events:
        resident = residents.get(event.patient_key, Resident(None, None))
        for syndrome in syndromes.values():
            if syndrome.is_case(event.resource_type, event.codes, event.value_codes):
                key = CountKey(
                    syndrome.id,
                    resident.area or UNKNOWN,
                    age_band(resident.birth_year, event.day),
                    event.day,
                )
                cases[key].add(event.patient_key)
    return {key: len(patients) for key, patients in sorted(cases.items())}


def area_series(
    counts: Mapping[CountKey, int], first: date, last: date
) -> dict[tuple[str, str], list[int]]:
    """Per syndrome and area, the daily counts of all age bands, every day from first to last."""
    days = (last - first).days + 1
    series: dict[tuple[str, str], list[int]] = {}
    for key, n in counts.items():
        offset = (key.day - first).days
        if 0 <= offset < days:
            series.setdefault((key.syndrome, key.area), [0] * days)[offset] += n
    return dict(sorted(series.items()))


def suppress(count: int, min_cell: int = MIN_CELL) -> int | None:
    """The count as it may be shown: None (shown as "<min_cell") for 1 to min_cell - 1."""
    return None if 0 < count < min_cell else count
