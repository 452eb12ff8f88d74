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

from knowledge.syndromes import Syndrome, code_keys

MIN_CELL = 11
"""The smallest count shown (CMS: cells of 1 to 10 are suppressed)."""
AGE_BANDS = ((0, "0-4"), (5, "5-24"), (25, "25-49"), (50, "50-64"), (65, "65+"))
UNKNOWN = "unknown"


@dataclass(frozen=True)
class CaseCount:
    """Distinct patients who were cases of a syndrome on a day, in an area (None: no
    Patient resource received), of a birth year when counted by age."""

    syndrome: str
    area: str | None
    day: date
    patients: int
    birth_year: int | None = None


@dataclass(frozen=True, order=True)
class CountKey:
    syndrome: str
    area: str
    age_band: str
    day: date


class CaseClassifier:
    """Which syndromes a feed resource is a case of (codes as ``system|code`` strings, as
    stored). Each syndrome's codes become sets once: this runs for every resource fed in."""

    def __init__(self, syndromes: Mapping[str, Syndrome]) -> None:
        self._syndromes = [
            (s.id, code_keys(s.conditions), code_keys(s.lab_tests), code_keys(s.positive_results))
            for s in syndromes.values()
        ]

    def __call__(
        self, resource_type: str, codes: Sequence[str], value_codes: Sequence[str]
    ) -> list[str]:
        if resource_type == "Condition":
            return [
                i for i, conditions, _, _ in self._syndromes if not conditions.isdisjoint(codes)
            ]
        if resource_type == "Observation":
            return [
                i
                for i, _, tests, positives in self._syndromes
                if not tests.isdisjoint(codes) and not positives.isdisjoint(value_codes)
            ]
        return []


def age_band(birth_year: int | None, day: date) -> str:
    """The band of the age reached in the year of ``day`` (birth year only is kept)."""
    if birth_year is None or birth_year > day.year:
        return UNKNOWN
    age = day.year - birth_year
    return [label for lower, label in AGE_BANDS if age >= lower][-1]


def cells(counts: Iterable[CaseCount]) -> dict[CountKey, int]:
    """Cases per syndrome, area, age band and day, from counts by birth year (a patient has
    one birth year, so the distinct counts of a band's years add up)."""
    found: dict[CountKey, int] = defaultdict(int)
    for c in counts:
        found[CountKey(c.syndrome, c.area or UNKNOWN, age_band(c.birth_year, c.day), c.day)] += (
            c.patients
        )
    return dict(sorted(found.items()))


def area_series(
    counts: Iterable[CaseCount], first: date, last: date, step_days: int = 1
) -> dict[tuple[str, str], list[int]]:
    """Per syndrome and area, the cases of every ``step_days`` days (1: daily, 7: weekly
    from ``first``'s weekday) from first to last, all age bands together."""
    steps = (last - first).days // step_days + 1
    series: dict[tuple[str, str], list[int]] = {}
    for c in counts:
        offset = (c.day - first).days // step_days
        if 0 <= offset < steps and c.day <= last:
            series.setdefault((c.syndrome, c.area or UNKNOWN), [0] * steps)[offset] += c.patients
    return dict(sorted(series.items()))


def suppress(count: int, min_cell: int = MIN_CELL) -> int | None:
    """The count as it may be shown: None (shown as "<min_cell") for 1 to min_cell - 1."""
    return None if 0 < count < min_cell else count
